"""RTCP packets and compound packets: RFC 3550 §6.4.1 (SR), §6.4.2 (RR), §6.5 (SDES),
§6.6 (BYE), §6.1 and §A.2 (compound packets and their validity checks), §4 (NTP time).

Every packet type here round-trips exactly, padding included; types we do not
interpret (APP, feedback, XR, ...) are kept as ``RtcpUnknown`` so a compound packet
still serialises to the bytes it came from.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Self

from appliance.rtp.packet import RTP_VERSION, RtpError

PT_SR: Final = 200
PT_RR: Final = 201
PT_SDES: Final = 202
PT_BYE: Final = 203
SDES_END: Final = 0
SDES_CNAME: Final = 1
NTP_UNIX_OFFSET: Final = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 3550 §4)
MAX_COMPOUND: Final = 65_536  # no UDP datagram is longer

_BLOCK: Final = struct.Struct("!IB3sIIII")
_SR_INFO: Final = struct.Struct("!IIIIII")


def ntp_from_unix(t: float) -> tuple[int, int]:
    """Unix seconds as a 64-bit NTP timestamp ``(seconds, fraction)`` (RFC 3550 §4).

    The seconds wrap modulo 2**32 (NTP era 1 starts in 2036), as the field does.
    """
    seconds = int(t // 1)
    fraction = int((t - seconds) * (1 << 32))
    return (seconds + NTP_UNIX_OFFSET) & 0xFFFFFFFF, min(fraction, 0xFFFFFFFF)


def unix_from_ntp(seconds: int, fraction: int) -> float:
    """The inverse of ``ntp_from_unix`` within NTP era 0 (until 2036)."""
    return seconds - NTP_UNIX_OFFSET + fraction / (1 << 32)


def ntp_middle32(seconds: int, fraction: int) -> int:
    """The middle 32 bits of an NTP timestamp, as sent in LSR (RFC 3550 §6.4.1)."""
    return (seconds & 0xFFFF) << 16 | fraction >> 16


def _check_padding(padding: bytes) -> None:
    if padding and (padding[-1] != len(padding) or len(padding) % 4):
        raise RtpError(
            f"RTCP padding of {len(padding)} bytes must be whole words ending in its count"
        )


def _header(count: int, packet_type: int, body_len: int, padding: bytes) -> bytes:
    total = 4 + body_len + len(padding)
    if total % 4:
        raise RtpError(f"RTCP packet of {total} bytes is not whole 32-bit words")
    if total // 4 - 1 > 0xFFFF:
        raise RtpError(f"RTCP packet of {total} bytes is too long for the length field")
    b0 = RTP_VERSION << 6 | (0x20 if padding else 0) | count
    return struct.pack("!BBH", b0, packet_type, total // 4 - 1)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point, lost/expected * 256 over the interval
    cumulative_lost: int  # signed 24-bit; negative when duplicates arrived
    highest_seq: int  # extended: cycles << 16 | highest sequence
    jitter: int  # timestamp units
    lsr: int = 0  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    dlsr: int = 0  # 1/65536 s since that SR arrived

    def __post_init__(self) -> None:
        if not 0 <= self.fraction_lost <= 0xFF:
            raise RtpError(f"fraction lost {self.fraction_lost} is not 8-bit")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtpError(f"cumulative lost {self.cumulative_lost} is not signed 24-bit")
        for name in ("ssrc", "highest_seq", "jitter", "lsr", "dlsr"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise RtpError(f"report block {name} is not 32-bit")

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> Self:
        if offset + _BLOCK.size > len(data):
            raise RtpError("report block truncated")
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost = self.cumulative_lost.to_bytes(3, "big", signed=True)
        return _BLOCK.pack(
            self.ssrc, self.fraction_lost, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr
        )


def _blocks(data: bytes, offset: int, count: int, end: int) -> tuple[ReportBlock, ...]:
    if offset + count * _BLOCK.size > end:
        raise RtpError(f"{count} report blocks do not fit the packet length")
    return tuple(ReportBlock.parse(data, offset + i * _BLOCK.size) for i in range(count))


def _check_blocks(blocks: tuple[ReportBlock, ...], extension: bytes) -> None:
    if len(blocks) > 31:
        raise RtpError(f"{len(blocks)} report blocks, at most 31 fit the RC field")
    if len(extension) % 4:
        raise RtpError("profile-specific extension is not whole 32-bit words")


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1). ``extension`` is the profile-specific tail, kept verbatim."""

    ssrc: int
    ntp_seconds: int
    ntp_fraction: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    def __post_init__(self) -> None:
        _check_blocks(self.reports, self.extension)
        _check_padding(self.padding)
        for name in ("ssrc", "ntp_seconds", "ntp_fraction", "rtp_timestamp"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise RtpError(f"SR {name} is not 32-bit")
        if not (0 <= self.packet_count <= 0xFFFFFFFF and 0 <= self.octet_count <= 0xFFFFFFFF):
            raise RtpError("SR counts are not 32-bit")

    @property
    def ntp_middle32(self) -> int:
        return ntp_middle32(self.ntp_seconds, self.ntp_fraction)

    @classmethod
    def _parse(cls, data: bytes, count: int, end: int, padding: bytes) -> Self:
        if 4 + _SR_INFO.size > end:
            raise RtpError("SR shorter than its sender info")
        ssrc, sec, frac, ts, packets, octets = _SR_INFO.unpack_from(data, 4)
        start = 4 + _SR_INFO.size
        blocks = _blocks(data, start, count, end)
        tail = bytes(data[start + count * _BLOCK.size : end])
        return cls(ssrc, sec, frac, ts, packets, octets, blocks, tail, padding)

    def __bytes__(self) -> bytes:
        body = _SR_INFO.pack(
            self.ssrc,
            self.ntp_seconds,
            self.ntp_fraction,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        body += b"".join(bytes(b) for b in self.reports) + self.extension
        return _header(len(self.reports), PT_SR, len(body), self.padding) + body + self.padding


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    def __post_init__(self) -> None:
        _check_blocks(self.reports, self.extension)
        _check_padding(self.padding)
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError("RR SSRC is not 32-bit")

    @classmethod
    def _parse(cls, data: bytes, count: int, end: int, padding: bytes) -> Self:
        if 8 > end:
            raise RtpError("RR shorter than its SSRC")
        (ssrc,) = struct.unpack_from("!I", data, 4)
        blocks = _blocks(data, 8, count, end)
        return cls(ssrc, blocks, bytes(data[8 + count * _BLOCK.size : end]), padding)

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc)
        body += b"".join(bytes(b) for b in self.reports) + self.extension
        return _header(len(self.reports), PT_RR, len(body), self.padding) + body + self.padding


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk (RFC 3550 §6.5): an SSRC and its ``(type, value)`` items."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError("SDES SSRC is not 32-bit")
        for kind, value in self.items:
            if not 1 <= kind <= 0xFF or len(value) > 0xFF:
                raise RtpError(f"SDES item type {kind} with {len(value)} bytes is not encodable")

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        raw = struct.pack("!I", self.ssrc)
        raw += b"".join(bytes((kind, len(value))) + value for kind, value in self.items)
        # RFC 3550 §6.5: one to four null octets end the list and pad to a word
        return raw + b"\0" * (4 - len(raw) % 4)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5)."""

    chunks: tuple[SdesChunk, ...] = ()
    padding: bytes = b""

    def __post_init__(self) -> None:
        _check_padding(self.padding)
        if len(self.chunks) > 31:
            raise RtpError(f"{len(self.chunks)} SDES chunks, at most 31 fit the SC field")

    @classmethod
    def cname_only(cls, ssrc: int, cname: str) -> Self:
        return cls((SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),)),))

    @classmethod
    def _parse(cls, data: bytes, count: int, end: int, padding: bytes) -> Self:
        chunks: list[SdesChunk] = []
        offset = 4
        for _ in range(count):
            if offset + 4 > end:
                raise RtpError("SDES chunk truncated")
            (ssrc,) = struct.unpack_from("!I", data, offset)
            offset += 4
            items: list[tuple[int, bytes]] = []
            while True:
                if offset >= end:
                    raise RtpError("SDES item list not terminated")
                kind = data[offset]
                if kind == SDES_END:
                    break
                if offset + 2 > end or offset + 2 + data[offset + 1] > end:
                    raise RtpError("SDES item overruns the packet")
                length = data[offset + 1]
                items.append((kind, bytes(data[offset + 2 : offset + 2 + length])))
                offset += 2 + length
            stop = (offset // 4 + 1) * 4  # the null run fills up to the next word
            if stop > end or any(data[offset:stop]):
                raise RtpError("SDES chunk not ended by null octets to a word boundary")
            offset = stop
            chunks.append(SdesChunk(ssrc, tuple(items)))
        if offset != end:
            raise RtpError(f"{end - offset} bytes after the {count} SDES chunks")
        return cls(tuple(chunks), padding)

    def __bytes__(self) -> bytes:
        body = b"".join(bytes(c) for c in self.chunks)
        return _header(len(self.chunks), PT_SDES, len(body), self.padding) + body + self.padding


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (RFC 3550 §6.6), with its optional reason."""

    ssrcs: tuple[int, ...] = ()
    reason: bytes | None = None
    padding: bytes = b""

    def __post_init__(self) -> None:
        _check_padding(self.padding)
        if len(self.ssrcs) > 31:
            raise RtpError(f"{len(self.ssrcs)} BYE sources, at most 31 fit the SC field")
        if any(not 0 <= s <= 0xFFFFFFFF for s in self.ssrcs):
            raise RtpError("BYE SSRC is not 32-bit")
        if self.reason is not None and len(self.reason) > 0xFF:
            raise RtpError("BYE reason longer than 255 bytes")

    @classmethod
    def _parse(cls, data: bytes, count: int, end: int, padding: bytes) -> Self:
        offset = 4 + 4 * count
        if offset > end:
            raise RtpError(f"BYE with {count} sources overruns the packet")
        ssrcs = struct.unpack_from(f"!{count}I", data, 4)
        reason = None
        if offset < end:
            length = data[offset]
            stop = offset + 1 + length
            padded = (stop + 3) // 4 * 4
            if padded != end or any(data[stop:end]):
                raise RtpError("BYE reason does not fill the packet up to null padding")
            reason = bytes(data[offset + 1 : stop])
        return cls(ssrcs, reason, padding)

    def __bytes__(self) -> bytes:
        body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason is not None:
            raw = bytes((len(self.reason),)) + self.reason
            body += raw + b"\0" * (-len(raw) % 4)
        return _header(len(self.ssrcs), PT_BYE, len(body), self.padding) + body + self.padding


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """An RTCP packet type we carry but do not interpret (APP, RTPFB, PSFB, XR, ...)."""

    packet_type: int
    count: int
    body: bytes = b""
    padding: bytes = b""

    def __post_init__(self) -> None:
        _check_padding(self.padding)
        if not 0 <= self.count <= 31 or not 0 <= self.packet_type <= 0xFF:
            raise RtpError("RTCP count or packet type out of range")

    def __bytes__(self) -> bytes:
        head = _header(self.count, self.packet_type, len(self.body), self.padding)
        return head + self.body + self.padding


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | RtcpUnknown


def _parse_one(data: bytes, count: int, packet_type: int, padding: bytes) -> RtcpPacket:
    end = len(data) - len(padding)
    if packet_type == PT_SR:
        return SenderReport._parse(data, count, end, padding)
    if packet_type == PT_RR:
        return ReceiverReport._parse(data, count, end, padding)
    if packet_type == PT_SDES:
        return SourceDescription._parse(data, count, end, padding)
    if packet_type == PT_BYE:
        return Bye._parse(data, count, end, padding)
    return RtcpUnknown(packet_type, count, bytes(data[4:end]), padding)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Split and parse a compound RTCP packet (RFC 3550 §6.1, checks of §A.2).

    Each packet must be version 2 and its length field must stay inside the
    datagram, and the lengths must add up to the datagram; only the last packet
    may be padded. (That the first packet is an SR or RR is not enforced, so
    reduced-size RTCP, RFC 5506, also parses.)
    """
    if len(data) > MAX_COMPOUND:
        raise RtpError(f"RTCP datagram of {len(data)} bytes is too long")
    if not data:
        raise RtpError("empty RTCP packet")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise RtpError(f"{len(data) - offset} bytes left, shorter than an RTCP header")
        b0, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTCP version {b0 >> 6}, expected 2")
        stop = offset + 4 * (words + 1)
        if stop > len(data):
            raise RtpError(
                f"RTCP length field says {4 * (words + 1)} bytes, {len(data) - offset} left"
            )
        chunk = data[offset:stop]
        padding = b""
        if b0 & 0x20:
            if stop != len(data):
                raise RtpError("padding on an RTCP packet that is not the last in the compound")
            pad = chunk[-1]
            if pad == 0 or pad % 4 or pad > len(chunk) - 4:
                raise RtpError(f"RTCP padding count {pad} is invalid")
            padding = bytes(chunk[-pad:])
            if padding[-1] != len(padding):
                raise RtpError("RTCP padding does not end with its count")
        packets.append(_parse_one(chunk, b0 & 0x1F, packet_type, padding))
        offset = stop
    return packets


def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """The compound packet's bytes: its packets back to back (RFC 3550 §6.1)."""
    return b"".join(bytes(p) for p in packets)
