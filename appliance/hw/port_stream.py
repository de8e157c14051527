"""One analog port's RTP stream: the port's 20 ms frames to G.711 packets and back.

Sans-IO: ``outgoing(frame)`` returns the datagram to send for one captured frame,
``incoming(data, source)`` takes a received datagram and ``playout()`` gives the frame
for the sound card on each tick of the media clock. Between RTP and the sound card sits
the jitter buffer (``jitter_buffer``): the network's timing is not the codec's.

A port's calls share its one RTP socket; ``aim`` points the stream at the call the
user talks to. Packets from any other source (a held call, a stale stream) are
ignored, so swapping calls never mixes their audio.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from appliance.dsp.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw
from appliance.hw.jitter_buffer import JitterBuffer, JitterConfig
from appliance.lines.gateway import StreamTarget
from appliance.rtp.packet import RtpError, RtpPacket, seq_add

Frame = npt.NDArray[np.int16]
FRAME_SAMPLES = 160


@dataclass(slots=True)
class StreamCounters:
    sent: int = 0
    received: int = 0
    ignored: int = 0  # wrong source, payload type or size, unparseable


class PortStream:
    def __init__(self, rng: random.Random, jitter: JitterConfig | None = None) -> None:
        self._rng = rng
        self._jitter = JitterBuffer(jitter)
        self.counters = StreamCounters()
        self.target: StreamTarget | None = None
        self._ssrc = rng.getrandbits(32)
        self._seq = rng.randrange(0, 1 << 16)
        self._ts = rng.getrandbits(32)
        self._marker = True

    def aim(self, target: StreamTarget | None) -> None:
        """Send to and accept from ``target`` from now on (None: the port has no call
        audio). A new far end starts a new stream on both sides (RFC 3550 §8.2)."""
        previous = self.target
        self.target = target
        if (
            target is None
            or previous is None
            or (target.host, target.port)
            != (
                previous.host,
                previous.port,
            )
        ):
            self._jitter.reset()
            self._ssrc = self._rng.getrandbits(32)
            self._marker = True

    def outgoing(self, frame: Frame) -> bytes | None:
        """The RTP packet carrying one captured 20 ms frame, None when nothing is sent."""
        target = self.target
        if target is None:
            return None
        # the timestamp advances with the sampling clock even when nothing is sent
        ts = self._ts
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
        if not target.send:
            return None
        payload = encode_alaw(frame) if target.codec == "PCMA" else encode_ulaw(frame)
        packet = RtpPacket(
            payload_type=target.payload_type,
            sequence=self._seq,
            timestamp=ts,
            ssrc=self._ssrc,
            payload=payload,
            marker=self._marker,
        )
        self._seq = seq_add(self._seq, 1)
        self._marker = False
        self.counters.sent += 1
        return bytes(packet)

    def incoming(self, data: bytes, source: tuple[str, int]) -> None:
        target = self.target
        if target is None or source != (target.host, target.port):
            self.counters.ignored += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.counters.ignored += 1
            return
        if packet.payload_type != target.payload_type or len(packet.payload) != FRAME_SAMPLES:
            # telephone-event is not offered; other packet times are not ours to send
            self.counters.ignored += 1
            return
        decode = decode_alaw if target.codec == "PCMA" else decode_ulaw
        self._jitter.push(packet.timestamp, decode(packet.payload))
        self.counters.received += 1

    def playout(self) -> Frame | None:
        """The frame for the sound card this tick, None without call audio."""
        if self.target is None:
            return None
        return self._jitter.pop().frame
