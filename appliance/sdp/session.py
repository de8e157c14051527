"""SDP session descriptions as values: RFC 8866 §5 parse and serialize.

A ``SessionDescription`` holds the session-level lines and its ``MediaDescription``
sections (RFC 8866 §5, §5.14); attributes are kept in order as ``(name, value)``
pairs, unknown ones included (RFC 8866 §5.13: unknown attributes are ignored by
whoever reads them, not dropped). Lines whose type letter we do not know are skipped
(RFC 8866 §5 tells a parser to ignore the whole description; a PBX that answers
488 to every odd phone helps nobody, so we keep what we understand).

``str(s)`` writes CRLF lines in the RFC 8866 §5 order, and ``parse(str(s)) == s``
holds for every value ``parse`` returns. A capture in canonical order and spacing
round-trips byte for byte.

Errors are ``ParseError``: status 400 for syntax, 488 where the text parses but the
session cannot be used (no address for a media stream, too many media sections).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Final, Self

from appliance.sip.errors import ParseError

NOT_ACCEPTABLE: Final = 488  # RFC 3261 §21.4.26 Not Acceptable Here


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what ``parse`` will read (STYLE §2.5: every size is limited)."""

    max_bytes: int = 16384
    max_lines: int = 256
    max_line_length: int = 1024
    max_media: int = 8


DEFAULT_LIMITS: Final = Limits()


class Direction(enum.Enum):
    """Media direction attributes, RFC 8866 §6.7.1-§6.7.4."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, sends: bool, receives: bool) -> Direction:
        return _FROM_FLAGS[(sends, receives)]

    def reversed(self) -> Direction:
        """The same stream seen from the other end (RFC 3264 §6.1)."""
        return Direction.from_flags(self.receives, self.sends)


_FROM_FLAGS: Final[dict[tuple[bool, bool], Direction]] = {
    (True, True): Direction.SENDRECV,
    (True, False): Direction.SENDONLY,
    (False, True): Direction.RECVONLY,
    (False, False): Direction.INACTIVE,
}
_DIRECTIONS: Final = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=`` (RFC 8866 §5.2). ``sess_id`` is kept as text; the version is counted."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=`` (RFC 8866 §5.7). ``address`` keeps any multicast ``/ttl/count``."""

    nettype: str
    addrtype: str
    address: str

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_hold(self) -> bool:
        """RFC 3264 §8.4: ``c=IN IP4 0.0.0.0`` is the RFC 2543 way to put a call on hold."""
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (RFC 8866 §5.8)."""

    bwtype: str
    value: int

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=`` and its ``r=`` lines (RFC 8866 §5.9, §5.10); repeats are kept as text."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


Attribute = tuple[str, str | None]  # a=name or a=name:value (RFC 8866 §5.13)


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1


def _attr(attributes: tuple[Attribute, ...], name: str) -> list[str]:
    return [v for n, v in attributes if n == name and v is not None]


def _has_flag(attributes: tuple[Attribute, ...], name: str) -> bool:
    return any(n == name for n, _ in attributes)


def _direction_of(attributes: tuple[Attribute, ...]) -> Direction | None:
    for name, value in attributes:
        if value is None and name in _DIRECTIONS:
            return Direction(name)
    return None


def _digits(text: str, width: int = 10) -> bool:
    return 0 < len(text) <= width and text.isascii() and text.isdigit()


def _parse_rtpmap(value: str) -> RtpMap | None:
    pt_text, _, rest = value.partition(" ")
    parts = rest.strip().split("/")
    if not _digits(pt_text, 3) or len(parts) not in (2, 3) or not parts[0]:
        return None
    if not all(_digits(p) for p in parts[1:]):
        return None
    channels = int(parts[2]) if len(parts) == 3 else 1
    return RtpMap(int(pt_text), parts[0], int(parts[1]), channels)


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section (RFC 8866 §5.14) with its ``i= c= b= k= a=`` lines."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    title: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()

    def attribute_values(self, name: str) -> list[str]:
        return _attr(self.attributes, name)

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> rtpmap; malformed or duplicate lines are skipped (first wins)."""
        maps: dict[int, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            parsed = _parse_rtpmap(value)
            if parsed is not None and parsed.payload_type not in maps:
                maps[parsed.payload_type] = parsed
        return maps

    def rtpmap(self, payload_type: int) -> tuple[str, int, int] | None:
        """(encoding, clock rate, channels) for one payload type, from its a=rtpmap."""
        found = self.rtpmaps().get(payload_type)
        return None if found is None else (found.encoding, found.clock_rate, found.channels)

    def fmtp(self, payload_type: int) -> str | None:
        """The parameters of ``a=fmtp:<pt> <params>`` (RFC 8866 §6.15)."""
        for value in self.attribute_values("fmtp"):
            pt_text, _, params = value.partition(" ")
            if pt_text == str(payload_type):
                return params.strip()
        return None

    def direction(self, session: SessionDescription | None = None) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 8866 §6.7)."""
        own = _direction_of(self.attributes)
        if own is not None:
            return own
        if session is not None:
            return session.direction
        return Direction.SENDRECV

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in whole milliseconds (RFC 8866 §6.4); None if absent or unusable."""
        for value in self.attribute_values("ptime"):
            text = value.strip()
            if _digits(text) and 0 < int(text) <= 1000:
                return int(text)
        return None

    @property
    def rtcp_port(self) -> int | None:
        """The port of ``a=rtcp:<port> [...]`` (RFC 3605 §2.1), if present and valid."""
        for value in self.attribute_values("rtcp"):
            port_text = value.strip().split(" ", 1)[0]
            if _digits(port_text, 5) and int(port_text) <= 65535:
                return int(port_text)
        return None

    @property
    def rtcp_mux(self) -> bool:
        """``a=rtcp-mux`` (RFC 5761 §5.1.1)."""
        return _has_flag(self.attributes, "rtcp-mux")

    def effective_connection(self, session: SessionDescription) -> Connection | None:
        """Media ``c=`` wins over session ``c=`` (RFC 8866 §5.7)."""
        return self.connection if self.connection is not None else session.connection

    def lines(self) -> list[str]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        if self.title is not None:
            out.append(f"i={self.title}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(_attribute_line(a) for a in self.attributes)
        return out


def _attribute_line(attribute: Attribute) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body (RFC 8866 §5). ``version`` is the ``v=`` value, always 0."""

    origin: Origin
    name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timing: tuple[Timing, ...] = (Timing(),)
    zone: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = field(default=())

    @property
    def direction(self) -> Direction:
        """Session-level direction, sendrecv if absent (RFC 8866 §6.7)."""
        own = _direction_of(self.attributes)
        return Direction.SENDRECV if own is None else own

    def attribute_values(self, name: str) -> list[str]:
        return _attr(self.attributes, name)

    def with_media(self, media: tuple[MediaDescription, ...]) -> Self:
        return replace(self, media=media)

    def __str__(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.uri is not None:
            out.append(f"u={self.uri}")
        out.extend(f"e={e}" for e in self.emails)
        out.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        for t in self.timing:
            out.append(f"t={t.start} {t.stop}")
            out.extend(f"r={r}" for r in t.repeats)
        if self.zone is not None:
            out.append(f"z={self.zone}")
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(_attribute_line(a) for a in self.attributes)
        for m in self.media:
            out.extend(m.lines())
        return "\r\n".join(out) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


# ---------------------------------------------------------------------------
# Parsing

_KNOWN: Final = frozenset("vosiuepcbtrzkam")


def _fields(value: str, count: int, what: str) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise ParseError(f"bad {what} line: expected {count} fields")
    return parts


def _uint(text: str, what: str, maximum: int | None = None) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise ParseError(f"bad {what}: {text[:32]!r}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise ParseError(f"{what} out of range: {value}")
    return value


def _parse_origin(value: str) -> Origin:
    user, sess_id, version, nettype, addrtype, address = _fields(value, 6, "o=")
    return Origin(user, sess_id, _uint(version, "o= session version"), nettype, addrtype, address)


def _parse_connection(value: str) -> Connection:
    nettype, addrtype, address = _fields(value, 3, "c=")
    return Connection(nettype, addrtype, address)


def _parse_bandwidth(value: str) -> Bandwidth:
    bwtype, sep, amount = value.partition(":")
    if not sep or not bwtype or any(c.isspace() for c in bwtype):
        raise ParseError("bad b= line")
    return Bandwidth(bwtype, _uint(amount, "b= bandwidth"))


def _parse_attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    if not name:
        raise ParseError("bad a= line: empty attribute name")
    return (name, rest if sep else None)


def _parse_media_line(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise ParseError("bad m= line: expected media, port and proto")
    if len(parts) == 3:
        raise ParseError("bad m= line: no formats")
    media, port_text, proto, *formats = parts
    port_part, slash, count_part = port_text.partition("/")
    port = _uint(port_part, "m= port", 65535)
    count = _uint(count_part, "m= port count", 65535) if slash else None
    return MediaDescription(media, port, proto, tuple(formats), port_count=count)


def _split_lines(data: str | bytes, limits: Limits) -> list[str]:
    if len(data) > limits.max_bytes:
        raise ParseError(f"SDP larger than {limits.max_bytes} bytes", status=413)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("SDP is not UTF-8") from exc
    else:
        text = data
        if not text.isascii():
            try:
                text.encode("utf-8")  # lone surrogates could never be sent
            except UnicodeEncodeError as exc:
                raise ParseError("SDP is not UTF-8") from exc
    lines = text.split("\n")
    if len(lines) > limits.max_lines + 1:
        raise ParseError(f"more than {limits.max_lines} SDP lines")
    out: list[str] = []
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue  # a trailing or doubled line break, seen in the wild
        if len(line) > limits.max_line_length:
            raise ParseError(f"SDP line longer than {limits.max_line_length}")
        if "\r" in line or "\0" in line:
            raise ParseError("bare CR or NUL in SDP line")
        out.append(line)
    return out


class _Builder:
    """Collects the fields of one media section while its lines are read."""

    def __init__(self, m: MediaDescription) -> None:
        self.m = m
        self.title: str | None = None
        self.connection: Connection | None = None
        self.bandwidths: list[Bandwidth] = []
        self.key: str | None = None
        self.attributes: list[Attribute] = []

    def build(self) -> MediaDescription:
        return replace(
            self.m,
            title=self.title,
            connection=self.connection,
            bandwidths=tuple(self.bandwidths),
            key=self.key,
            attributes=tuple(self.attributes),
        )


def parse(data: str | bytes, limits: Limits = DEFAULT_LIMITS) -> SessionDescription:
    """Parse an SDP body (CRLF or bare LF) or raise ``ParseError``."""
    lines = _split_lines(data, limits)
    items: list[tuple[str, str]] = []
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise ParseError(f"bad SDP line: {line[:32]!r}")
        items.append((line[0], line[2:]))

    # RFC 8866 §5: v=, o=, s= open the description, in that order.
    if not items or items[0][0] != "v":
        raise ParseError("SDP must start with v=")
    if items[0][1] != "0":
        raise ParseError(f"unsupported SDP version {items[0][1][:8]!r}")
    if len(items) < 2 or items[1][0] != "o":
        raise ParseError("missing o= after v=")
    if len(items) < 3 or items[2][0] != "s":
        raise ParseError("missing s= after o=")
    origin = _parse_origin(items[1][1])
    name = items[2][1]

    information: str | None = None
    uri: str | None = None
    emails: list[str] = []
    phones: list[str] = []
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = []
    timing: list[Timing] = []
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = []
    media: list[_Builder] = []

    for kind, value in items[3:]:
        if kind in "vos":
            raise ParseError(f"{kind}= out of place")
        if kind not in _KNOWN:
            continue  # unknown type letter: skipped, see the module docstring
        if kind == "m":
            if len(media) >= limits.max_media:
                raise ParseError(
                    f"more than {limits.max_media} media sections", status=NOT_ACCEPTABLE
                )
            if not timing:
                raise ParseError("missing t= before m=")
            media.append(_Builder(_parse_media_line(value)))
            continue
        if media:
            current = media[-1]
            if kind == "a":
                current.attributes.append(_parse_attribute(value))
            elif kind == "c":
                if current.connection is not None:
                    raise ParseError("several c= lines in one media section", NOT_ACCEPTABLE)
                current.connection = _parse_connection(value)
            elif kind == "b":
                current.bandwidths.append(_parse_bandwidth(value))
            elif kind == "i" and current.title is None:
                current.title = value
            elif kind == "k" and current.key is None:
                current.key = value
            else:
                raise ParseError(f"{kind}= repeated or out of place in a media section")
            continue
        if kind == "a":
            attributes.append(_parse_attribute(value))
        elif kind == "t":
            start, stop = _fields(value, 2, "t=")
            timing.append(Timing(_uint(start, "t= start"), _uint(stop, "t= stop")))
        elif kind == "r":
            if not timing:
                raise ParseError("r= before t=")
            last = timing[-1]
            timing[-1] = replace(last, repeats=(*last.repeats, value))
        elif kind == "c":
            if connection is not None:
                raise ParseError("several session-level c= lines")
            connection = _parse_connection(value)
        elif kind == "b":
            bandwidths.append(_parse_bandwidth(value))
        elif kind == "e":
            emails.append(value)
        elif kind == "p":
            phones.append(value)
        elif kind == "i" and information is None:
            information = value
        elif kind == "u" and uri is None:
            uri = value
        elif kind == "z" and zone is None:
            zone = value
        elif kind == "k" and key is None:
            key = value
        else:
            raise ParseError(f"{kind}= repeated or out of place")

    if not timing:
        raise ParseError("missing t= line")
    built = tuple(b.build() for b in media)
    for index, m in enumerate(built):
        # RFC 8866 §5.7: every media stream needs an address. A rejected stream
        # (port 0) is let off: answerers often omit c= there.
        if m.port != 0 and m.connection is None and connection is None:
            raise ParseError(f"no c= for media section {index}", status=NOT_ACCEPTABLE)
    return SessionDescription(
        origin=origin,
        name=name,
        information=information,
        uri=uri,
        emails=tuple(emails),
        phones=tuple(phones),
        connection=connection,
        bandwidths=tuple(bandwidths),
        timing=tuple(timing),
        zone=zone,
        key=key,
        attributes=tuple(attributes),
        media=built,
    )


def bump_version(session: SessionDescription) -> SessionDescription:
    """The same description with ``o=`` sess-version + 1, for a re-offer (RFC 3264 §8)."""
    origin = replace(session.origin, sess_version=session.origin.sess_version + 1)
    return replace(session, origin=origin)
