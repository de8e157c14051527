"""Structured SIP header values: names, Via, name-addr, CSeq (RFC 3261 §7.3, §20).

Messages keep header values as text; these dataclasses parse one value on demand
and serialize back to the same text (``str(Via.parse(x)) == x`` for canonical x).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Final, Self

from appliance.sip.errors import ParseError
from appliance.sip.grammar import (
    Params,
    find_unquoted_lt,
    format_params,
    is_token,
    param,
    parse_params,
    replace_param,
    unquote,
)
from appliance.sip.uri import Uri, parse_port

# RFC 3261 §7.3.3 and the IANA registry's compact forms.
COMPACT: Final[dict[str, str]] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN: Final = (
    "Accept Accept-Encoding Accept-Language Alert-Info Allow Allow-Events Authentication-Info "
    "Authorization Call-ID Call-Info Contact Content-Disposition Content-Encoding "
    "Content-Language Content-Length Content-Type CSeq Date Error-Info Event Expires From "
    "In-Reply-To Max-Forwards Min-Expires Min-SE MIME-Version Organization P-Asserted-Identity "
    "Path Priority Proxy-Authenticate Proxy-Authorization Proxy-Require RAck Reason "
    "Record-Route Refer-To Referred-By Reply-To Require Retry-After Route RSeq Server "
    "Session-Expires Subject Subscription-State Supported Timestamp To Unsupported "
    "User-Agent Via Warning WWW-Authenticate"
).split()

CANONICAL: Final[dict[str, str]] = {name.lower(): name for name in _KNOWN} | COMPACT


def canonical_name(name: str) -> str:
    """The canonical spelling of a known header; unknown names are kept as given."""
    return CANONICAL.get(name.lower(), name)


# Headers whose repeated lines are legal and whose values are comma lists (§7.3.1).
LIST_HEADERS: Final = frozenset(
    "Via Contact Route Record-Route Path Allow Supported Require Proxy-Require "
    "Unsupported Accept Accept-Encoding Accept-Language Allow-Events".split()
)
# Headers that must appear at most once.
SINGLE_HEADERS: Final = frozenset(
    "Call-ID CSeq From To Max-Forwards Content-Length Content-Type Expires Min-Expires".split()
)


# Everyday spellings matched in one step; anything else takes the general path.
_PLAIN_VIA: Final = re.compile(
    r"SIP/2\.0/([A-Za-z0-9\-.!%*_+`'~]+) "
    r"(\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\]|[A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?((?:;[^\"\s]*)?)"
)
_PLAIN_NAME_ADDR: Final = re.compile(
    r"(?:(\"(?:[^\"\\]|\\.)*\")|([A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*))?"
    r"[ \t]*<([^<>\"\s]+)>((?:;[^\"\s]*)?)"
)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value (RFC 3261 §20.42), e.g. ``SIP/2.0/UDP host:5060;branch=z9hG4bK1``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Self:
        match = _PLAIN_VIA.fullmatch(text)
        if match is not None:
            transport, host, port, ptext = match.groups()
            if port is None or int(port) <= 65535:
                params = parse_params(ptext) if ptext else ()
                return cls(transport, host, None if port is None else int(port), params)
        return cls._parse_general(text)

    @classmethod
    def _parse_general(cls, text: str) -> Self:
        head, semi, ptext = text.partition(";")
        params = parse_params(ptext) if semi else ()
        if '"' in head:
            raise ParseError(f"bad Via {text[:60]!r}")
        proto, sep, sent_by = head.rpartition("/")
        if not sep:
            raise ParseError(f"bad Via {text[:60]!r}")
        rest = sent_by.strip().split(None, 1)
        if len(rest) != 2:
            raise ParseError(f"bad Via sent-by {text[:60]!r}")
        transport, hostport = rest
        protocol = "/".join(part.strip() for part in proto.split("/"))
        if protocol.upper() != "SIP/2.0" or not is_token(transport):
            raise ParseError(f"bad Via protocol {text[:60]!r}")
        hostport = hostport.strip()
        if hostport.startswith("["):
            end = hostport.find("]")
            if end < 0:
                raise ParseError(f"bad Via host {text[:60]!r}")
            host, after = hostport[: end + 1], hostport[end + 1 :].strip()
            port = parse_port(after[1:].strip()) if after.startswith(":") else None
            if after and not after.startswith(":"):
                raise ParseError(f"bad Via host {text[:60]!r}")
        else:
            host, colon, port_text = hostport.partition(":")
            host = host.strip()
            port = parse_port(port_text.strip()) if colon else None
        if not host or any(c in host for c in " \t<>@,"):
            raise ParseError(f"bad Via host {text[:60]!r}")
        return cls(transport, host, port, params, protocol)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return param(self.params, "branch")

    def param(self, name: str) -> str | None:
        return param(self.params, name)

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=replace_param(self.params, name, value))


@dataclass(frozen=True, slots=True)
class NameAddr:
    """From, To, Contact, Route... values (RFC 3261 §20.10, §25.1 name-addr/addr-spec).

    ``display`` is kept as written (quoted or token form) so values round-trip;
    ``display_name`` gives its meaning. ``bracketed`` is False for the bare addr-spec
    form, where any ``;params`` belong to the header, not the URI (§20.10).
    """

    uri: Uri
    display: str | None = None
    params: Params = ()
    bracketed: bool = True

    @classmethod
    def parse(cls, text: str) -> Self:
        if cls is NameAddr:
            return _parse_name_addr_memo(text)  # type: ignore[return-value]  # Self is NameAddr
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Self:
        text = text.strip()
        match = _PLAIN_NAME_ADDR.fullmatch(text)
        if match is not None:
            quoted, tokens, uri, ptext = match.groups()
            return cls(Uri.parse(uri), quoted or tokens, parse_params(ptext) if ptext else ())
        return cls._parse_general(text)

    @classmethod
    def _parse_general(cls, text: str) -> Self:
        lt = find_unquoted_lt(text)
        if lt < 0:
            uri_text, semi, ptext = text.partition(";")
            if not uri_text or any(c in uri_text for c in ' \t",'):
                raise ParseError(f"bad address {text[:60]!r}")
            params = parse_params(ptext) if semi else ()
            return cls(Uri.parse(uri_text), None, params, bracketed=False)
        display = text[:lt].strip() or None
        if display is not None:
            if display.startswith('"'):
                unquote(display)  # validates quoting and escapes
            elif not all(is_token(word) for word in display.split()):
                raise ParseError(f"bad display name {display[:40]!r}")
        gt = text.find(">", lt)
        if gt < 0:
            raise ParseError(f"unterminated <URI> in {text[:60]!r}")
        uri = Uri.parse(text[lt + 1 : gt])
        rest = text[gt + 1 :].strip()
        if rest and rest[0] != ";":
            raise ParseError(f"junk after address {text[:60]!r}")
        return cls(uri, display, parse_params(rest), bracketed=True)

    def __str__(self) -> str:
        if not self.bracketed:
            return f"{self.uri}{format_params(self.params)}"
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"

    @property
    def display_name(self) -> str | None:
        if self.display is None:
            return None
        return unquote(self.display) if self.display.startswith('"') else self.display

    @property
    def tag(self) -> str | None:
        return param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return replace(self, params=replace_param(self.params, name, value))


MAX_CSEQ: Final = 2**31 - 1  # RFC 3261 §8.1.1.5


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> Self:
        if cls is CSeq:
            return _parse_cseq_memo(text)  # type: ignore[return-value]  # Self is CSeq
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Self:
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
            raise ParseError(f"bad CSeq {text[:40]!r}")
        number = int(parts[0])
        if number > MAX_CSEQ or not is_token(parts[1]):
            raise ParseError(f"bad CSeq {text[:40]!r}")
        return cls(number, parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


# To, Contact and CSeq values repeat from each phone; parsed values are immutable, so a
# small memo of the pure parse is safe (tags make From miss, which costs nothing).
_parse_name_addr_memo = functools.lru_cache(maxsize=4096)(NameAddr._parse)
_parse_cseq_memo = functools.lru_cache(maxsize=1024)(CSeq._parse)


def parse_uint(text: str, name: str, maximum: int = 2**32 - 1) -> int:
    """Delta-seconds and similar (RFC 3261 §25.1: 1*DIGIT), bounded."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise ParseError(f"bad {name} {text[:20]!r}")
    return min(int(text), maximum)
