"""DTMF from one phone's RTP as call-control ``Dtmf`` values: RFC 4733 telephone-events
(through ``DtmfEventReceiver``) or in-band tones (``DtmfDetector`` on decoded G.711).

Sans-IO: fed packet bytes (and ``now`` for the events' loss timeout), returns digits.

Both report a key press once, when it is over: on the RFC 4733 end packet (§2.5.1.4)
or, if all end packets were lost, ``timeout`` after the last packet (§2.5.2.1); in
band when the detector sees the tone released. Reporting at the end delays a digit
by its length (typically 80-200 ms) but gives its duration, which SIP INFO
(``application/dtmf-relay``'s Duration) and call control's ``Dtmf`` carry.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from appliance.dsp.dtmf import DigitEnded, DigitStarted, DtmfDetector, DtmfLimits
from appliance.dsp.g711 import Codec, decode
from appliance.pbx.call_events import Dtmf, DtmfSource
from appliance.rtp.dtmf_event import DtmfEvent, DtmfEventReceiver, KeyPress
from appliance.rtp.packet import TS_MOD, RtpError, RtpPacket, ts_diff

CLOCK_RATE: Final = 8000  # G.711 and its telephone-events
# In band, a gap in the timestamps (loss, silence suppression) is fed as silence up to
# this many samples: 50 ms is more than the detector's 40 ms release, so a digit in
# progress ends cleanly; the rest of a longer gap is skipped.
MAX_FILL: Final = 400


def _ms(samples: int) -> int:
    return round(samples * 1000 / CLOCK_RATE)


class EventDigits:
    """RFC 4733 packets of one phone in, one ``Dtmf`` per key press out.

    A new SSRC (the phone restarted its stream) starts a new receiver, since event
    identity (the onset timestamp) and sequence order only hold within one source;
    a press of the old source still open is reported as it stands.
    """

    def __init__(self, timeout: float = 0.5) -> None:
        self._timeout = timeout
        self._receiver = DtmfEventReceiver(timeout)
        self._ssrc: int | None = None
        self.malformed = 0

    def feed(self, data: bytes, now: float) -> list[Dtmf]:
        try:  # where event bytes enter (STYLE §2.5)
            packet = RtpPacket.parse(data)
            event = DtmfEvent.parse(packet.payload)
        except RtpError:
            self.malformed += 1
            return []
        presses: list[KeyPress] = []
        if packet.ssrc != self._ssrc:
            presses += self._receiver.handle_timer(math.inf)
            self._receiver = DtmfEventReceiver(self._timeout)
            self._ssrc = packet.ssrc
        presses += self._receiver.receive_event(
            event, packet.timestamp, packet.marker, packet.sequence, now
        )
        return _digits(presses)

    def next_deadline(self) -> float | None:
        return self._receiver.next_deadline()

    def handle_timer(self, now: float) -> list[Dtmf]:
        return _digits(self._receiver.handle_timer(now))


def _digits(presses: list[KeyPress]) -> list[Dtmf]:
    # events 16 and up (flash, modem tones) are not key presses call control handles
    return [
        Dtmf(p.digit, _ms(p.duration), DtmfSource.RFC4733) for p in presses if p.digit is not None
    ]


class InbandDigits:
    """DTMF tones in one phone's G.711 audio.

    The detector needs contiguous samples, so time is the RTP timestamp, not the
    arrival time: jitter does not stretch a tone, a gap is filled with silence, and a
    late or repeated packet (timestamp before the next expected sample) is skipped.
    """

    def __init__(self, limits: DtmfLimits | None = None) -> None:
        self._limits = limits
        # Made on the first packet (a new SSRC makes a new one anyway): most legs are
        # opened before their SDP says they have RFC 4733, and never need one.
        self._detector: DtmfDetector | None = None
        self._ssrc: int | None = None
        self._next_ts = 0
        self._time = 0.0  # media time of the next expected sample, seconds
        self.malformed = 0

    def feed(self, codec: Codec, data: bytes) -> list[Dtmf]:
        try:  # where audio bytes enter (STYLE §2.5)
            packet = RtpPacket.parse(data)
        except RtpError:
            self.malformed += 1
            return []
        samples = decode(codec, packet.payload)
        detector = self._detector
        if packet.ssrc != self._ssrc or detector is None:
            self._ssrc = packet.ssrc
            detector = self._detector = DtmfDetector(self._limits)
            self._next_ts = packet.timestamp
        gap = ts_diff(packet.timestamp, self._next_ts)
        if gap < 0:
            return []
        ended: list[DigitEnded] = []
        if gap > 0:
            fill = min(gap, MAX_FILL)
            silence = np.zeros(fill, dtype=np.int16)
            ended += _ended(detector.feed(silence, self._time))
            self._time += gap / CLOCK_RATE
        ended += _ended(detector.feed(samples, self._time))
        self._time += samples.size / CLOCK_RATE
        self._next_ts = (packet.timestamp + samples.size) % TS_MOD
        return [Dtmf(e.digit, round(e.duration * 1000), DtmfSource.INBAND) for e in ended]


def _ended(events: list[DigitStarted | DigitEnded]) -> list[DigitEnded]:
    return [e for e in events if isinstance(e, DigitEnded)]
