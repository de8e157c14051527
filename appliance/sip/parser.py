"""Bytes to SIP messages (RFC 3261 §7, §18.3), and stream framing for TCP.

Any input either parses or raises ``ParseError``: that is the contract the
property tests hold us to. Every size and count is bounded by ``Limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from appliance.sip.errors import ParseError
from appliance.sip.grammar import is_token
from appliance.sip.headers import CANONICAL, SINGLE_HEADERS, CSeq
from appliance.sip.message import Header, Message, Request, Response
from appliance.sip.uri import Uri


@dataclass(frozen=True, slots=True)
class Limits:
    max_message: int = 65535  # the largest UDP payload
    max_headers: int = 128
    max_body: int = 65535


DEFAULT_LIMITS: Final = Limits()
_REQUIRED: Final = ("Via", "From", "To", "Call-ID", "CSeq")
# Names as phones usually spell them, mapped without lower-casing first.
_EXACT_NAMES: Final[dict[str, str]] = {name: name for name in CANONICAL.values()}


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """One whole message (a datagram, or a frame cut by ``StreamFramer``)."""
    if len(data) > limits.max_message:
        raise ParseError("message too large", 513)
    # RFC 3261 §7.5: CRLFs before the start line are ignored.
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    sep = b"\r\n\r\n"
    end = data.find(sep)
    if end < 0:
        sep = b"\n\n"  # tolerate bare-LF senders (RFC 3261 §7.5 asks for CRLF)
        end = data.find(sep)
        if end < 0:
            raise ParseError("no empty line after the headers")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("headers are not UTF-8") from None
    lines = head.split("\r\n") if sep == b"\r\n\r\n" else head.split("\n")
    start = lines[0]
    if not start:
        raise ParseError("empty message")
    headers, content_length = _parse_headers(lines, 1, limits)
    body = data[end + len(sep) :]
    if content_length is not None:
        if len(body) < content_length:
            raise ParseError("body shorter than Content-Length", headers=headers)
        body = body[:content_length]  # RFC 3261 §18.3: extra bytes are discarded
    if len(body) > limits.max_body:
        raise ParseError("body too large", 413, headers)
    if start.startswith("SIP/"):
        return _response(start, headers, body)
    return _request(start, headers, body)


def _parse_headers(
    lines: list[str], first: int, limits: Limits
) -> tuple[tuple[Header, ...], int | None]:
    if len(lines) - first > limits.max_headers:
        raise ParseError("too many headers", 513)
    headers: list[Header] = []
    content_length: int | None = None
    seen_single: set[str] = set()
    exact = _EXACT_NAMES
    for i in range(first, len(lines)):
        line = lines[i]
        name, colon, value = line.partition(":")
        canon = exact.get(name)
        if canon is None:
            if line[:1] in (" ", "\t"):
                # Line folding (RFC 3261 §7.3.1): continuation becomes one space.
                if not headers:
                    raise ParseError("continuation line before any header")
                prev_name, prev_value = headers[-1]
                headers[-1] = (prev_name, f"{prev_value} {line.strip()}".strip())
                continue
            if not colon:
                raise ParseError(
                    f"header line without a colon: {line[:40]!r}", headers=tuple(headers)
                )
            name = name.rstrip(" \t")
            canon = CANONICAL.get(name.lower())
            if canon is None:
                if not is_token(name):
                    raise ParseError(f"bad header name {name[:40]!r}", headers=tuple(headers))
                canon = name
        value = value.strip(" \t")
        if canon in SINGLE_HEADERS:
            if canon in seen_single:
                raise ParseError(f"more than one {canon} header", headers=tuple(headers))
            seen_single.add(canon)
            if canon == "Content-Length":
                if not value.isdigit() or not value.isascii() or len(value) > 9:
                    raise ParseError(f"bad Content-Length {value[:20]!r}", headers=tuple(headers))
                content_length = int(value)
                continue
        headers.append((canon, value))
    return tuple(headers), content_length


def _request(start: str, headers: tuple[Header, ...], body: bytes) -> Request:
    parts = start.split(" ")
    if len(parts) != 3:
        raise ParseError(f"bad request line {start[:60]!r}", headers=headers)
    method, uri_text, version = parts
    if not is_token(method):
        raise ParseError(f"bad method {method[:20]!r}", headers=headers)
    _check_required(headers)
    try:
        cseq = CSeq.parse(_first(headers, "CSeq"))
        uri = Uri.parse(uri_text)
    except ParseError as exc:
        raise ParseError(exc.reason, exc.status, headers) from None
    if cseq.method != method:
        raise ParseError("CSeq method does not match the request method", headers=headers)
    if version != "SIP/2.0":
        if version.upper() == "SIP/2.0":
            version = "SIP/2.0"
        else:
            raise ParseError(f"SIP version {version[:20]!r} not supported", 505, headers)
    return Request(method, uri, headers, body, version)


def _response(start: str, headers: tuple[Header, ...], body: bytes) -> Response:
    version, _, rest = start.partition(" ")
    code, _, reason = rest.partition(" ")
    if version != "SIP/2.0":
        raise ParseError(f"bad status line {start[:60]!r}")
    if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] == "0":
        raise ParseError(f"bad status code {code[:10]!r}")
    _check_required(headers)
    CSeq.parse(_first(headers, "CSeq"))
    return Response(int(code), reason, headers, body, version)


def _check_required(headers: tuple[Header, ...]) -> None:
    present = {name for name, _ in headers}
    for name in _REQUIRED:
        if name not in present:
            raise ParseError(f"missing {name} header", headers=headers)


def _first(headers: tuple[Header, ...], name: str) -> str:
    for k, v in headers:
        if k == name:
            return v
    raise ParseError(f"missing {name} header", headers=headers)


class StreamFramer:
    """Cuts a byte stream (TCP, TLS) into messages by Content-Length (RFC 3261 §18.3).

    ``feed`` returns complete frames; keep-alive CRLFs between messages are skipped
    and reported so the transport can answer a double-CRLF ping (RFC 5626 §3.5.1).
    A ParseError from ``feed`` means the stream cannot be resynchronised: close it.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buf = bytearray()
        self._limits = limits
        self.pings = 0  # double-CRLF keep-alives seen and not yet answered

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            self._skip_keepalives()
            if not self._buf:
                return frames
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > self._limits.max_message:
                    raise ParseError("header section too large", 513)
                return frames
            length = _content_length(bytes(self._buf[:end]))
            total = end + 4 + length
            if total > self._limits.max_message:
                raise ParseError("message too large", 513)
            if len(self._buf) < total:
                return frames
            frames.append(bytes(self._buf[:total]))
            del self._buf[:total]

    def _skip_keepalives(self) -> None:
        n = 0
        while n < len(self._buf) and self._buf[n] in (0x0D, 0x0A):
            n += 1
        if n:
            self.pings += self._buf[:n].count(b"\r\n\r\n")
            del self._buf[:n]


def _content_length(head: bytes) -> int:
    for raw in head.split(b"\r\n")[1:]:
        name, colon, value = raw.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit() or len(text) > 9:
                raise ParseError("bad Content-Length")
            return int(text)
    raise ParseError("Content-Length is required on stream transports")
