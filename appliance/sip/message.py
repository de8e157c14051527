"""SIP requests and responses as values (RFC 3261 §7), and how to build replies.

Header lines are kept in order as ``(name, value)`` pairs with canonical names for
known headers (compact forms expanded) and unknown headers preserved as received.
Content-Length is framing, not content: it is never stored, and ``bytes(m)`` always
writes the true length last, so ``parse(bytes(m)) == m``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from appliance.sip.errors import ParseError
from appliance.sip.grammar import split_list
from appliance.sip.headers import (
    CANONICAL,
    LIST_HEADERS,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
)
from appliance.sip.uri import Uri

Header = tuple[str, str]

REASONS: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
}


class _Headers:
    """Header access shared by requests and responses (expects ``self.headers``)."""

    __slots__ = ()
    headers: tuple[Header, ...]

    def get(self, name: str) -> str | None:
        """The first value of a header, or None."""
        canon = canonical_name(name)
        for k, v in self.headers:
            if k == canon:
                return v
        lname = name.lower()
        if lname not in CANONICAL:  # unknown header: names compare case-insensitively
            for k, v in self.headers:
                if k.lower() == lname:
                    return v
        return None

    def get_all(self, name: str) -> list[str]:
        """All values of a header in order; comma lists split for list headers."""
        canon = canonical_name(name)
        if canon is name and canon.lower() not in CANONICAL:
            lname = canon.lower()  # unknown header: names compare case-insensitively
            values = [v for k, v in self.headers if k.lower() == lname]
        else:
            values = [v for k, v in self.headers if k == canon]
        if canon in LIST_HEADERS:
            return [item for v in values for item in split_list(v)]
        return values

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise ParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self.require("Call-ID")

    def cseq(self) -> CSeq:
        return CSeq.parse(self.require("CSeq"))

    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.get_all("Via")]

    def top_via(self) -> Via:
        first = self.require("Via")
        return Via.parse(split_list(first)[0])

    def from_addr(self) -> NameAddr:
        return NameAddr.parse(self.require("From"))

    def to_addr(self) -> NameAddr:
        return NameAddr.parse(self.require("To"))


@dataclass(frozen=True, slots=True)
class Request(_Headers):
    method: str
    uri: Uri
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    version: str = field(default="SIP/2.0")

    def __bytes__(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} {self.version}", self.headers, self.body)


@dataclass(frozen=True, slots=True)
class Response(_Headers):
    status: int
    reason: str
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    version: str = field(default="SIP/2.0")

    def __bytes__(self) -> bytes:
        return _serialize(f"{self.version} {self.status} {self.reason}", self.headers, self.body)


Message = Request | Response


def _serialize(start: str, headers: tuple[Header, ...], body: bytes) -> bytes:
    lines = [start]
    lines.extend(f"{k}: {v}" for k, v in headers)
    lines.append(f"Content-Length: {len(body)}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8") + body


# Headers a UAS copies from a request into its response (RFC 3261 §8.2.6.2).
_COPIED: Final = frozenset(("Via", "From", "To", "Call-ID", "CSeq"))


def response_headers(headers: Iterable[Header], to_tag: str | None = None) -> list[Header]:
    """Via/From/To/Call-ID/CSeq copied from a request, adding a To tag if it lacks one."""
    out: list[Header] = []
    for k, v in headers:
        if k in _COPIED:
            if k == "To" and to_tag is not None and not _has_tag(v):
                v = f"{v};tag={to_tag}"
            out.append((k, v))
    return out


def _has_tag(value: str) -> bool:
    if "tag" not in value.lower():
        return False  # the common case, decided without parsing
    return NameAddr.parse(value).tag is not None


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    extra: Iterable[Header] = (),
    body: bytes = b"",
    to_tag: str | None = None,
) -> Response:
    """A response to ``request`` (RFC 3261 §8.2.6)."""
    headers = response_headers(request.headers, to_tag)
    headers.extend(extra)
    return Response(status, reason or REASONS.get(status, "Unknown"), tuple(headers), body)
