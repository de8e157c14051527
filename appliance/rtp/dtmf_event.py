"""RFC 4733 telephone-events: the payload (§2.3), a receiver that turns a stream of
event packets into one key press each (§2.5.2), and a sender (§2.5.1).

Both ends are sans-IO: the receiver is fed packets with ``now`` and has one
deadline for an event whose end packets were all lost; the sender returns the
packets of a key press with the offsets at which to send them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final, Self

from appliance.rtp.packet import RtpError, RtpPacket, seq_add, seq_after

DIGITS: Final = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0-15
MAX_VOLUME: Final = 63
_PAYLOAD: Final = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One telephone-event payload (RFC 4733 §2.3): 4 bytes.

    ``volume`` is the power level as a positive number, 0 to 63 meaning 0 to -63 dBm0;
    ``duration`` is in timestamp units since the event's onset; ``reserved`` is the R
    bit, zero from senders and ignored by receivers, but kept to round-trip.
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0
    reserved: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 0xFF:
            raise RtpError(f"event code {self.event} is not 8-bit")
        if not 0 <= self.volume <= MAX_VOLUME:
            raise RtpError(f"volume {self.volume} is outside 0-63")
        if not 0 <= self.duration <= 0xFFFF:
            raise RtpError(f"duration {self.duration} is not 16-bit")

    @classmethod
    def for_digit(cls, digit: str, end: bool = False, volume: int = 10, duration: int = 0) -> Self:
        index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
        if index < 0:
            raise RtpError(f"{digit!r} is not a DTMF digit")
        return cls(index, end, volume, duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit for events 0-15, None for other events (flash, tones, ...)."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    @classmethod
    def parse(cls, data: bytes) -> Self:
        if len(data) != _PAYLOAD.size:
            raise RtpError(f"telephone-event payload of {len(data)} bytes, expected 4")
        event, flags, duration = _PAYLOAD.unpack(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration, bool(flags & 0x40))

    def __bytes__(self) -> bytes:
        flags = self.volume | (0x80 if self.end else 0) | (0x40 if self.reserved else 0)
        return _PAYLOAD.pack(self.event, flags, self.duration)


@dataclass(frozen=True, slots=True)
class KeyPress:
    """One key press as received: reported once, when it ended or timed out."""

    event: int
    timestamp: int  # RTP timestamp of the onset, shared by all its packets
    duration: int  # timestamp units, the longest seen
    start_seen: bool  # False when the marker packet was lost (RFC 4733 §2.5.2.1)
    end_seen: bool  # False when every end packet was lost and the timeout fired

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


@dataclass(slots=True)
class _Current:
    event: int
    timestamp: int
    duration: int
    start_seen: bool
    last_packet: float


class DtmfEventReceiver:
    """Telephone-event packets of one SSRC in, exactly one ``KeyPress`` per key out.

    An event is identified by its RTP timestamp (RFC 4733 §2.5.1.2: all packets of an
    event carry the onset timestamp). Retransmitted starts and the three end packets
    (§2.5.1.4) share it and are absorbed. A packet with a new timestamp begins a new
    event only if its sequence number follows the highest seen; otherwise it is a
    late packet of an older event and is dropped. If no end packet arrives within
    ``timeout`` seconds of the last packet, the event is reported anyway.
    Not handled: long-event segments (§2.5.1.3), which report as separate presses.
    """

    def __init__(self, timeout: float = 0.5) -> None:
        self.timeout = timeout
        self._current: _Current | None = None
        self._finished_ts: int | None = None  # onset of the last reported event
        self._highest_seq: int | None = None

    def receive(self, packet: RtpPacket, now: float) -> list[KeyPress]:
        """Feed one RTP packet of the telephone-event payload type."""
        return self.receive_event(
            DtmfEvent.parse(packet.payload), packet.timestamp, packet.marker, packet.sequence, now
        )

    def receive_event(
        self, event: DtmfEvent, timestamp: int, marker: bool, sequence: int, now: float
    ) -> list[KeyPress]:
        out: list[KeyPress] = []
        newest = self._highest_seq is None or seq_after(sequence, self._highest_seq)
        if newest:
            self._highest_seq = sequence
        current = self._current
        if current is not None and timestamp == current.timestamp:
            current.duration = max(current.duration, event.duration)
            current.start_seen = current.start_seen or marker
            current.last_packet = now
        elif timestamp == self._finished_ts or not newest:
            return out  # a repeated end packet or a late packet of an earlier event
        else:
            if current is not None:  # its end was lost; a new key began
                out.append(self._finish(current, end_seen=False))
            current = _Current(event.event, timestamp, event.duration, marker, now)
            self._current = current
        if event.end:
            out.append(self._finish(current, end_seen=True))
        return out

    def _finish(self, current: _Current, end_seen: bool) -> KeyPress:
        self._current = None
        self._finished_ts = current.timestamp
        return KeyPress(
            current.event, current.timestamp, current.duration, current.start_seen, end_seen
        )

    def next_deadline(self) -> float | None:
        if self._current is None:
            return None
        return self._current.last_packet + self.timeout

    def handle_timer(self, now: float) -> list[KeyPress]:
        deadline = self.next_deadline()
        if self._current is None or deadline is None or now < deadline:
            return []
        return [self._finish(self._current, end_seen=False)]


@dataclass(frozen=True, slots=True)
class DtmfEventSender:
    """The packets of one key press (RFC 4733 §2.5.1), sharing the audio's SSRC and
    sequence space.

    Packet k (from 0) goes out ``(k + 1) * ptime`` after the onset, carrying the
    duration so far; the first has the marker bit (§2.5.1.2). The last update is
    followed by ``end_repeats`` end packets (§2.5.1.4: three), one per ``ptime``,
    all with the full duration and the onset timestamp, each a new sequence number.
    """

    payload_type: int
    ssrc: int
    clock_rate: int = 8000
    ptime: float = 0.020
    volume: int = 10
    end_repeats: int = 3

    def packets(
        self, digit: str, duration: float, timestamp: int, sequence: int
    ) -> list[tuple[float, RtpPacket]]:
        """``(offset seconds, packet)`` pairs for ``digit`` held ``duration`` seconds."""
        step = round(self.ptime * self.clock_rate)
        total = min(round(duration * self.clock_rate), 0xFFFF)
        if step <= 0 or total <= 0 or self.end_repeats < 1:
            raise RtpError("duration, ptime and end repeats must be positive")
        updates = math.ceil(total / step)  # the last of them is the first end packet
        out: list[tuple[float, RtpPacket]] = []
        for k in range(updates - 1 + self.end_repeats):
            end = k >= updates - 1
            payload = DtmfEvent.for_digit(
                digit, end=end, volume=self.volume, duration=min((k + 1) * step, total)
            )
            packet = RtpPacket(
                payload_type=self.payload_type,
                sequence=seq_add(sequence, k),
                timestamp=timestamp,
                ssrc=self.ssrc,
                payload=bytes(payload),
                marker=k == 0,
            )
            out.append(((k + 1) * self.ptime, packet))
        return out
