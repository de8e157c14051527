"""The one RTP stream a leg sends to its phone once the engine has generated media on
it (RFC 3550 §5.1): tones, RFC 4733 events (§2.5.1), relayed packets rewritten into
it, and its sender reports (§6.4.1).

Sans-IO: the engine feeds the media clock's tick times (or the loop time of a relayed
packet) and sends the bytes returned.

The stream has a random SSRC, sequence and timestamp origin (RFC 3550 §5.1), or
continues the stream the phone was already hearing (``continue_from``). Once it exists,
everything sent to the phone goes out in it: phones do not all cope with a change of
SSRC (baresip 1.0.0 keeps its jitter buffer across one and drops a new source whose
sequence numbers are lower as late, ``relayed`` below). A relayed packet gets our SSRC
and the next sequence number; its timestamp is the source's plus an offset fixed when
that source starts (or changes SSRC), so the source's own spacing (silence, RFC 4733
event durations) is kept while the stream stays monotonic. The first packet after such
a switch carries the marker bit (RFC 3551 §4.1: the start of a talkspurt).

Generated timestamps come from the media clock's grid time, not a packet count, so
they keep the wall-clock rate across pauses, skipped ticks and restarts of the clock;
when relayed timestamps ran ahead of that (the phone's clock, jitter), the origin moves
forward so the stream never goes back.
"""

from __future__ import annotations

import dataclasses
import random
import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

from appliance.rtp.dtmf_event import DtmfEventSender
from appliance.rtp.packet import TS_MOD, RtpPacket, seq_add, ts_diff
from appliance.rtp.rtcp import ReportBlock, SourceDescription, serialize_compound
from appliance.rtp.stats import SenderStats

CLOCK_RATE: Final = 8000  # G.711 and its telephone-events (RFC 4733 §2.1)
FRAME_SAMPLES: Final = 160  # 20 ms (STYLE §2.8)
_HEADER: Final = struct.Struct("!BBHII")
_REWRITE: Final = struct.Struct("!BHII")  # byte 1 (marker, PT), sequence, timestamp, SSRC
_MARKER: Final = 0x80


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
        self._floor: int | None = None  # no later audio may start before this timestamp
        self._source: int | None = None  # the relayed SSRC mapped in; None: re-time the next
        self._offset = 0  # added to the relayed source's timestamps

    def continue_from(
        self,
        ssrc: int,
        last_sequence: int,
        last_timestamp: int,
        at: float,
        packets: int,
        octets: int,
    ) -> None:
        """Take over the stream the phone has been hearing unchanged from one source.

        Its next packet follows ``last_sequence``; timestamps go on at the clock rate
        from ``last_timestamp``, sent at loop time ``at`` (a 20 ms frame is taken as
        covered), and packets still relayed from that source keep their timestamps
        (offset 0, no marker). ``packets`` and ``octets`` were already sent under
        ``ssrc``: our SRs count on from them (RFC 3550 §6.4.1).
        """
        self.ssrc = ssrc
        self.sequence = seq_add(last_sequence, 1)
        self._ts0 = last_timestamp
        self._origin = at
        self._floor = (last_timestamp + FRAME_SAMPLES) % TS_MOD
        self._source = ssrc
        self._offset = 0
        self.sender = SenderStats(ssrc, CLOCK_RATE)
        self.sender.packet_count = packets & 0xFFFFFFFF
        self.sender.octet_count = octets & 0xFFFFFFFF

    def timestamp_at(self, t: float) -> int:
        """The RTP timestamp of the sample due at loop time ``t``."""
        return (self._ts0 + round((t - self._origin) * CLOCK_RATE)) % TS_MOD

    def new_source(self) -> None:
        """The leg is bridged to another phone: its next relayed packet is re-timed."""
        self._source = None

    def relayed(
        self,
        packet: bytes | bytearray,
        ssrc: int,
        timestamp: int,
        payload_size: int,
        samples: int,
        now: float,
    ) -> bytearray:
        """A relayed RTP packet rewritten into this stream; a ``bytearray`` is changed in
        place (the transcoding copy), ``bytes`` copied once.

        ``ssrc`` and ``timestamp`` are the source's; ``samples`` is how many the payload
        covers (0 for events and comfort noise); ``now`` is the loop time.
        """
        out = packet if isinstance(packet, bytearray) else bytearray(packet)
        b1 = out[1]
        if ssrc != self._source:  # a new source, or the first one after a tone
            self._source = ssrc
            self._offset = (self._not_before(self.timestamp_at(now)) - timestamp) % TS_MOD
            b1 |= _MARKER  # RFC 3551 §4.1: a talkspurt starts
        ts = (timestamp + self._offset) % TS_MOD
        _REWRITE.pack_into(out, 1, b1, self.sequence, ts, self.ssrc)
        self._covered(ts, samples)
        self._sent(payload_size, ts, now)
        return out

    def audio(self, payload_type: int, payload: bytes, t: float, marker: bool) -> bytes:
        """One audio packet for the frame due at ``t``; the sequence advances."""
        timestamp = self.timestamp_at(t)
        ahead = ts_diff(self._not_before(timestamp), timestamp)
        if ahead:  # relayed timestamps ran ahead of our clock: move the origin with them
            self._ts0 = (self._ts0 + ahead) % TS_MOD
            timestamp = (timestamp + ahead) % TS_MOD
        self._source = None  # relaying was interrupted: re-time it when it resumes
        self._covered(timestamp, len(payload))  # G.711: one sample per byte
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
        start = self._not_before(self.timestamp_at(onset))  # not inside audio already sent
        packets = sender.packets(digit, duration, start, 0)
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

    def _not_before(self, timestamp: int) -> int:
        """``timestamp``, or the end of the audio already sent if that is later."""
        floor = self._floor
        if floor is not None and ts_diff(floor, timestamp) > 0:
            return floor
        return timestamp

    def _covered(self, timestamp: int, samples: int) -> None:
        """Audio up to ``timestamp + samples`` has been sent."""
        end = (timestamp + samples) % TS_MOD
        if self._floor is None or ts_diff(end, self._floor) > 0:
            self._floor = end

    def _sent(self, payload_size: int, timestamp: int, t: float) -> None:
        self.sequence = seq_add(self.sequence, 1)
        self.sender.on_sent(payload_size, timestamp, t)

    def sender_report(
        self, now: float, wallclock: float, reports: tuple[ReportBlock, ...] = ()
    ) -> bytes:
        """A compound SR + SDES CNAME (RFC 3550 §6.1: every compound carries CNAME)."""
        report = self.sender.sender_report(now, wallclock, reports)
        return serialize_compound((report, SourceDescription.cname_only(self.ssrc, self.cname)))
