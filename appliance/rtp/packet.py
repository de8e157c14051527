"""RTP data packets and wrap-safe sequence maths: RFC 3550 §5.1, §5.3.1, §A.1.

``RtpPacket`` is a frozen value that parses from and serialises to the exact bytes
on the wire, padding and header extension included. ``peek_header`` reads only the
fixed 12-byte header (RFC 3550 §5.1) so a relay can forward without decoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple, Self

RTP_VERSION: Final = 2
HEADER_SIZE: Final = 12  # RFC 3550 §5.1: the fixed header
SEQ_MOD: Final = 1 << 16
TS_MOD: Final = 1 << 32

_FIXED: Final = struct.Struct("!BBHII")


class RtpError(ValueError):
    """Bytes that are not a valid RTP or RTCP packet (or a value that cannot be sent)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def seq_after(a: int, b: int) -> bool:
    """RTP sequence ``a`` follows ``b``, modulo 2**16 (RFC 3550 §A.1)."""
    return 0 < (a - b) & 0xFFFF < 0x8000


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` modulo 2**16, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_add(a: int, n: int) -> int:
    """Sequence number ``n`` packets after ``a``, modulo 2**16."""
    return (a + n) & 0xFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between RTP timestamps, modulo 2**32 (RFC 3550 §5.1)."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class HeaderPeek(NamedTuple):
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int


def peek_header(data: bytes) -> HeaderPeek:
    """The fixed header fields a relay needs, without touching CSRCs or payload."""
    if len(data) < HEADER_SIZE:
        raise RtpError(f"RTP packet of {len(data)} bytes is shorter than the 12-byte header")
    b0, b1, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    return HeaderPeek(b1 & 0x7F, sequence, timestamp, ssrc)


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1): 16-bit profile word and 32-bit-aligned data."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise RtpError(f"extension profile {self.profile} is not 16-bit")
        if len(self.data) % 4 or len(self.data) > 0xFFFF * 4:
            raise RtpError(f"extension data of {len(self.data)} bytes is not whole 32-bit words")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 §5.1); the version is always 2.

    ``padding`` holds the padding octets exactly as received, its last octet being
    their count (RFC 3550 §5.1 "P"); empty means the P bit is clear.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 0x7F:
            raise RtpError(f"payload type {self.payload_type} is not 7-bit")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpError(f"sequence {self.sequence} is not 16-bit")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"timestamp {self.timestamp} is not 32-bit")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError(f"SSRC {self.ssrc} is not 32-bit")
        if len(self.csrcs) > 15:
            raise RtpError(f"{len(self.csrcs)} CSRCs, at most 15 fit the CC field")
        if any(not 0 <= c <= 0xFFFFFFFF for c in self.csrcs):
            raise RtpError("a CSRC is not 32-bit")
        if self.padding and self.padding[-1] != len(self.padding):
            raise RtpError(
                f"padding of {len(self.padding)} bytes must end with its count, "
                f"not {self.padding[-1]}"
            )

    @property
    def version(self) -> int:
        return RTP_VERSION

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """Parse one RTP packet; any malformed input raises ``RtpError``."""
        if len(data) < HEADER_SIZE:
            raise RtpError(f"RTP packet of {len(data)} bytes is shorter than the 12-byte header")
        b0, b1, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        count = b0 & 0x0F
        offset = HEADER_SIZE + 4 * count
        if offset > len(data):
            raise RtpError(f"CSRC count {count} needs {offset} bytes, packet has {len(data)}")
        csrcs = struct.unpack_from(f"!{count}I", data, HEADER_SIZE)
        extension = None
        if b0 & 0x10:
            if offset + 4 > len(data):
                raise RtpError("header extension bit set but no room for the extension header")
            profile, words = struct.unpack_from("!HH", data, offset)
            start, offset = offset + 4, offset + 4 + 4 * words
            if offset > len(data):
                raise RtpError(
                    f"header extension of {words} words overruns the {len(data)}-byte packet"
                )
            extension = RtpExtension(profile, bytes(data[start:offset]))
        end = len(data)
        if b0 & 0x20:
            pad = data[-1]
            if pad == 0:
                raise RtpError("padding bit set but the padding count is 0")
            if pad > end - offset:
                raise RtpError(f"padding of {pad} bytes is longer than the {end - offset} left")
            end -= pad
        return cls(
            payload_type=b1 & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(b1 & 0x80),
            csrcs=csrcs,
            extension=extension,
            padding=bytes(data[end:]),
        )

    def __bytes__(self) -> bytes:
        b0 = RTP_VERSION << 6 | len(self.csrcs)
        if self.padding:
            b0 |= 0x20
        parts = [
            _FIXED.pack(
                b0 | (0x10 if self.extension else 0),
                self.payload_type | (0x80 if self.marker else 0),
                self.sequence,
                self.timestamp,
                self.ssrc,
            ),
            struct.pack(f"!{len(self.csrcs)}I", *self.csrcs),
        ]
        if self.extension is not None:
            ext = self.extension
            parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4) + ext.data)
        parts += (self.payload, self.padding)
        return b"".join(parts)
