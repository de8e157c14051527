"""Media the engine generates towards one phone: our own RTP stream (RFC 3550 §5.1)
carrying tones and RFC 4733 events (§2.5.1), and its sender reports (§6.4.1).

Sans-IO: the engine feeds the media clock's tick times and sends the bytes returned.

The stream has its own random SSRC, sequence and timestamp origin (RFC 3550 §5.1),
separate from whatever the leg relays from the other phone, so a phone sees a new
source when a tone starts. RFC 4733 events we send use this stream too (§2.5.1 asks
for the audio's SSRC; while audio is relayed that SSRC is the other phone's, and
mixing our sequence numbers into its stream would corrupt it, so events go in ours).
Timestamps come from the media clock's grid time, not a packet count, so they keep
the wall-clock rate across pauses, skipped ticks and restarts of the clock.
"""

from __future__ import annotations

import dataclasses
import random
import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

from appliance.rtp.dtmf_event import DtmfEventSender
from appliance.rtp.packet import TS_MOD, RtpPacket, seq_add
from appliance.rtp.rtcp import ReportBlock, SourceDescription, serialize_compound
from appliance.rtp.stats import SenderStats

CLOCK_RATE: Final = 8000  # G.711 and its telephone-events (RFC 4733 §2.1)
_HEADER: Final = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class _Queued:
    due: float  # grid time at which the packet goes out
    packet: RtpPacket


class OutboundStream:
    """Our RTP stream to one phone: SSRC, next sequence number, timestamp origin."""

    def __init__(self, rng: random.Random, origin: float, cname: str) -> None:
        self.ssrc = rng.getrandbits(32)
        self.sequence = rng.getrandbits(16)  # RFC 3550 §5.1: random initial values
        self._ts0 = rng.getrandbits(32)
        self._origin = origin
        self.cname = cname
        self.sender = SenderStats(self.ssrc, CLOCK_RATE)
        self._events: deque[_Queued] = deque()
        self._events_end = origin  # when the last queued event packet goes out

    def timestamp_at(self, t: float) -> int:
        """The RTP timestamp of the sample due at loop time ``t``."""
        return (self._ts0 + round((t - self._origin) * CLOCK_RATE)) % TS_MOD

    def audio(self, payload_type: int, payload: bytes, t: float, marker: bool) -> bytes:
        """One audio packet for the frame due at ``t``; the sequence advances."""
        timestamp = self.timestamp_at(t)
        data = (
            _HEADER.pack(
                0x80, payload_type | (0x80 if marker else 0), self.sequence, timestamp, self.ssrc
            )
            + payload
        )
        self._sent(len(payload), timestamp, t)
        return data

    def queue_digit(
        self,
        digit: str,
        duration: float,
        payload_type: int,
        onset: float,
        gap: float,
    ) -> None:
        """Queue the packets of one key press (RFC 4733 §2.5.1).

        The press starts at ``onset``, or ``gap`` after the previous queued press's
        last packet so two digits do not merge (the receiver tells presses apart
        by their onset timestamps, RFC 4733 §2.5.1.2, but a phone playing them
        out needs a pause). Sequence numbers are set when a packet is sent, since
        tone frames may be interleaved.
        """
        if self._events:
            onset = max(onset, self._events_end + gap)
        sender = DtmfEventSender(payload_type, self.ssrc, CLOCK_RATE)
        packets = sender.packets(digit, duration, self.timestamp_at(onset), 0)
        for offset, packet in packets:
            self._events.append(_Queued(onset + offset, packet))
        self._events_end = onset + packets[-1][0]

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def due_events(self, t: float, tolerance: float) -> list[bytes]:
        """Queued event packets due at grid time ``t`` (within ``tolerance``)."""
        out: list[bytes] = []
        while self._events and self._events[0].due <= t + tolerance:
            packet = self._events.popleft().packet
            data = bytes(dataclasses.replace(packet, sequence=self.sequence))
            # the SR extrapolates from the last timestamp sent, so give it the grid's
            # time, not the event's onset (RFC 3550 §6.4.1 "RTP timestamp")
            self._sent(len(packet.payload), self.timestamp_at(t), t)
            out.append(data)
        return out

    def clear_events(self) -> None:
        self._events.clear()

    def _sent(self, payload_size: int, timestamp: int, t: float) -> None:
        self.sequence = seq_add(self.sequence, 1)
        self.sender.on_sent(payload_size, timestamp, t)

    def sender_report(
        self, now: float, wallclock: float, reports: tuple[ReportBlock, ...] = ()
    ) -> bytes:
        """A compound SR + SDES CNAME (RFC 3550 §6.1: every compound carries CNAME)."""
        report = self.sender.sender_report(now, wallclock, reports)
        return serialize_compound((report, SourceDescription.cname_only(self.ssrc, self.cname)))
