"""``UdpMediaEngine``: the ``MediaEngine`` of ``appliance.pbx.media_port`` on asyncio UDP.

Each leg is an RTP/RTCP socket pair from the ``PortPool`` (RFC 3550 §11), bound with
the plain socket module inside ``open_leg`` so the port is known before it returns;
a task attaches the sockets to the loop, and datagrams that come first wait in the
kernel. Packets go through ``relay.rtp_path``: a leg that is not bridged latches,
counts and taps what its phone sends; two bridged legs relay to each other
(transcoding PCMU<->PCMA, mapping RFC 4733 event payload types).

Engine work around the relay:

* DTMF from a phone (reported through ``on_event`` as ``DtmfDetected``, once per key
  press, when it is over so the duration is known; see ``digits.py``): RFC 4733
  events when its SDP has a telephone-event payload type, else in-band detection
  on its decoded audio, which costs about 70 us a frame and so runs only there.
  Events towards a phone without events are dropped and reported ``relay_as_info``.
* Generated media (``outbound.py``, ``tone_player.py``): tones and RFC 4733 events in
  the leg's own RTP stream, paced by one ``MediaClock`` for all legs. While a tone
  plays, nothing is relayed towards that leg; a tone that does not repeat ends by
  itself and relaying resumes.
* One outgoing stream per leg: once the engine has generated media on a leg, or
  bridged it to a second source, everything sent to its phone (relayed audio and
  events too) goes out in that leg's ``OutboundStream``: one SSRC, sequence numbers
  one apart, timestamps that never go back (``relay.py`` rewrites the headers). A
  phone need not cope with a change of SSRC, and baresip 1.0.0 does not: its jitter
  buffer survives one, so when the callee's sequence numbers are below the
  ringback's it drops the whole call as late (``_own_stream``). When the phone was
  hearing a relayed stream unchanged, the leg's stream continues that one. Legs
  with neither keep the relay's fast path, packets untouched.
* One sweep timer (``EngineConfig.sweep_interval``) for all legs: RTP timeouts
  (``RtpStopped``), RFC 4733 presses whose end packets were all lost, and our SRs.
* RTCP is passed through, except the other phone's reports towards a leg with its own
  stream (they describe an SSRC it does not see); the phone's reports are parsed for
  the quality report. A leg with its own stream gets an SR every ``sr_interval``
  (RFC 3550 §6.2, randomised by [0.5, 1.5] as §6.3.1 suggests) while we send on it.

Generated media is always 20 ms frames, whatever ``ptime_ms`` says: the media clock
has one period, and a=ptime is only a recommendation to the sender (RFC 8866 §6.4);
relayed packets keep the size the phone sent.

Directions are from our side (``StreamDirection``, RFC 3264 §6.1): we send to a
phone (relay, tones, events) only when the leg is sendrecv or sendonly; its phone is
expected to send (the RTP timeout applies) when it is sendrecv or recvonly.

Events go to call control with ``loop.call_soon``, never from inside a packet or
timer callback, so call control may close legs in its handler.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.g711 import Codec, decode
from appliance.dsp.tones import ToneKind
from appliance.media.clock import ClockConfig, MediaClock
from appliance.media.digits import EventDigits, InbandDigits
from appliance.media.outbound import OutboundStream
from appliance.media.playback import ClipLoader, EncodedClips, Playback
from appliance.media.ports import PortPool, PortPoolError
from appliance.media.quality import RemoteReports, quality_report
from appliance.media.recorder import Recorder
from appliance.media.relay import LatchConfig, RelayLeg, RtpEndpoint, rtcp_path, rtp_path
from appliance.media.tone_player import ToneBank, tone_kind
from appliance.net.routes import SourceAddresses
from appliance.pbx.app_events import PlayItem, RecordEnd
from appliance.pbx.call_events import DTMF_DIGITS, Dtmf
from appliance.pbx.media_port import (
    DtmfDetected,
    LegQualityReport,
    MediaEvent,
    MediaLeg,
    MediaUnavailable,
    PlaybackFinished,
    RecordedAudio,
    RecordingStopped,
    RtpStopped,
    StreamDirection,
    StreamParams,
)
from appliance.rtp.packet import HEADER_SIZE, RtpError, RtpPacket, seq_after

log = logging.getLogger(__name__)

Address = tuple[str, int]

_WE_SEND: Final = frozenset({StreamDirection.SENDRECV, StreamDirection.SENDONLY})
_PHONE_SENDS: Final = frozenset({StreamDirection.SENDRECV, StreamDirection.RECVONLY})
_CODECS: Final = {codec.name: codec for codec in Codec}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Engine timings; the defaults are what the appliance runs with."""

    sweep_interval: float = 0.25  # RTP timeouts and lost RFC 4733 ends, all legs at once
    sr_interval: float = 5.0  # RFC 3550 §6.2: the minimum RTCP interval
    event_timeout: float = 0.5  # RFC 4733 press reported this long after its last packet
    digit_gap: float = 0.06  # pause between digits we send back to back
    latch: LatchConfig = LatchConfig()
    clock: ClockConfig = ClockConfig()


class _Leg:
    """The engine's state of one leg; what call control holds as a ``MediaLeg``."""

    def __init__(self, leg_id: str, host: str, endpoint: RtpEndpoint, relay: RelayLeg) -> None:
        self._leg_id = leg_id
        self._host = host
        self.endpoint = endpoint
        self.relay = relay
        self.params: StreamParams | None = None
        self.configured_at = 0.0
        self.peer: _Leg | None = None
        self.tone: ToneKind | None = None
        self.tone_start = 0  # media clock tick of the tone's frame 0
        self.tone_marker = True  # RFC 3551 §4.1: marker on a talkspurt's first packet
        self.stream: OutboundStream | None = None  # from the first tone, digit or re-bridge
        self.source: _Leg | None = None  # whose phone is (or was last) relayed to this one
        self.generated_sent = 0
        self.next_sr: float | None = None
        self.sr_packets = 0  # the stream's packet count in our last SR
        self.events: EventDigits | None = None
        self.inband: InbandDigits | None = None
        self.remote = RemoteReports()
        self.timeout_reported_for: float | None = None  # the silence already reported
        self.report: LegQualityReport | None = None  # set once closed
        self.playback: Playback | None = None
        self.playback_marker = True
        self.recorder: Recorder | None = None

    @property
    def leg_id(self) -> str:
        return self._leg_id

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def may_send(self) -> bool:
        """SDP lets us send to the phone; before any SDP, the latched source may get tones."""
        return self.params is None or (
            self.params.direction in _WE_SEND and self.relay.sdp_remote is not None
        )

    @property
    def generating(self) -> bool:
        return (
            self.tone is not None
            or self.playback is not None
            or (self.stream is not None and self.stream.has_events)
        )


class UdpMediaEngine:
    """RTP anchoring, relaying, tones and DTMF for call control (``MediaEngine``)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: PortPool,
        bind_host: str,
        on_event: Callable[[MediaEvent], None],
        country: str = "US",
        rtp_timeout: float = 30.0,
        *,
        config: EngineConfig | None = None,
        rng: random.Random | None = None,
        wallclock: Callable[[], float] = time.time,
        tones: ToneBank | None = None,
        clips: ClipLoader | None = None,
    ) -> None:
        self._loop = loop
        self._pool = pool
        self._bind_host = bind_host
        self._wildcard = bind_host in ("0.0.0.0", "::", "")
        self._v6 = ":" in bind_host
        self._on_event = on_event
        self.rtp_timeout = rtp_timeout
        self.config = config or EngineConfig()
        self._rng = rng or random.Random()
        self._wallclock = wallclock  # for SR NTP timestamps only (RFC 3550 §6.4.1)
        self._tones = tones or ToneBank(country)  # encodes every tone now, not mid-call
        self._clips = clips or _no_clips
        self._queues = 0  # playback queues made, for their numbers
        self._encoded = EncodedClips()  # prompts encoded once, shared by all legs
        self._legs: dict[str, _Leg] = {}
        self._generating: dict[str, _Leg] = {}
        self._clock = MediaClock(loop, self._tick, self.config.clock)
        self._sweep_at: float | None = None
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._sources = SourceAddresses(prefer_v6=self._v6)
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def clock(self) -> MediaClock:
        return self._clock

    @property
    def legs(self) -> int:
        return len(self._legs)

    # -- MediaEngine ---------------------------------------------------------------

    def open_leg(self, leg_id: str, peer_host: str) -> MediaLeg:
        if leg_id in self._legs:
            raise ValueError(f"media leg {leg_id!r} is already open")
        try:
            endpoint = RtpEndpoint.bind(self._pool, self._bind_host, self._loop)
        except (PortPoolError, OSError) as exc:
            raise MediaUnavailable(str(exc)) from exc
        relay = RelayLeg(endpoint, Codec.PCMU, None, latch=self.config.latch)
        leg = _Leg(leg_id, self._advertised_host(peer_host), endpoint, relay)
        leg.inband = InbandDigits()  # until SDP says the phone has events
        self._legs[leg_id] = leg
        self._rewire(leg)
        if self._sweep_handle is None:
            self._sweep_at = self._loop.time() + self.config.sweep_interval
            self._sweep_handle = self._loop.call_at(self._sweep_at, self._sweep)
        return leg

    def configure(self, leg: MediaLeg, params: StreamParams) -> None:
        state = self._state(leg)
        codec = _CODECS.get(params.codec.upper())
        if codec is None:
            raise ValueError(f"codec {params.codec!r} is not G.711 (PCMU or PCMA)")
        relay = state.relay
        relay.codec = codec
        relay.payload_type = params.payload_type
        relay.event_pt = params.telephone_event_pt
        relay.set_remote(*self._remote_addresses(params))
        state.params = params
        state.configured_at = self._loop.time()
        if params.telephone_event_pt is None:
            state.events = None
            state.inband = state.inband or InbandDigits()
        else:
            state.events = state.events or EventDigits(self.config.event_timeout)
            state.inband = None
        self._rewire(state)

    def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        sa, sb = self._state(a), self._state(b)
        if sa is sb:
            raise ValueError(f"cannot bridge media leg {sa.leg_id!r} to itself")
        now = self._loop.time()
        for state, other in ((sa, sb), (sb, sa)):
            old = state.peer
            if old is not None and old is not sa and old is not sb:
                old.peer = None
                self._rewire(old)
            self._stop_tone(state)
            if state.source is not other:
                if state.source is not None:  # a second source: its phone must not notice
                    self._own_stream(state, now)
                if state.stream is not None:
                    state.stream.new_source()
                state.source = other
        sa.peer, sb.peer = sb, sa
        self._rewire(sa)

    def play_tone(self, leg: MediaLeg, tone: str | None) -> None:
        state = self._state(leg)
        if tone is None:
            self._stop_tone(state)
            return
        kind = tone_kind(tone)
        if state.tone is kind:
            return  # already playing (a second 180 Ringing): do not restart the cadence
        tick, t = self._next_tick()
        state.tone = kind
        state.tone_start = tick
        state.tone_marker = True
        self._start_generating(state, t)
        self._update_mute(state)

    def play(
        self, leg: MediaLeg, items: Sequence[PlayItem], language: str, *, loop: bool = False
    ) -> int:
        state = self._state(leg)
        playback = state.playback
        if playback is None or playback.loop != loop:
            self._queues += 1
            playback = Playback(self._clips, state.relay.codec, loop, self._queues, self._encoded)
            state.playback = playback
            state.playback_marker = True
        playback.add(items, language)
        _, t = self._next_tick()
        self._start_generating(state, t)
        self._update_mute(state)
        return playback.ident

    def unbridge(self, leg: MediaLeg) -> None:
        state = self._state(leg)
        peer = state.peer
        if peer is None:
            return
        peer.peer = None
        state.peer = None
        self._rewire(peer)
        self._rewire(state)

    def stop_playback(self, leg: MediaLeg) -> bool:
        state = self._state(leg)
        if state.playback is None:
            return False
        state.playback = None
        self._update_mute(state)
        return True

    def record(self, leg: MediaLeg, max_seconds: float, silence_seconds: float) -> None:
        state = self._state(leg)
        state.recorder = Recorder(max_seconds, silence_seconds)
        self._rewire(state)  # the receive path binds the audio tap

    def stop_recording(
        self, leg: MediaLeg, end: RecordEnd = RecordEnd.STOPPED
    ) -> RecordedAudio | None:
        state = self._state(leg)
        recorder = state.recorder
        if recorder is None:
            return None
        state.recorder = None
        self._rewire(state)
        return recorder.finish(end)

    def send_dtmf(self, leg: MediaLeg, digit: str, duration_ms: int) -> None:
        state = self._state(leg)
        if digit not in DTMF_DIGITS:
            raise ValueError(f"{digit!r} is not a DTMF digit")
        if duration_ms <= 0:
            raise ValueError(f"DTMF duration {duration_ms} ms must be positive")
        event_pt = state.relay.event_pt
        if event_pt is None:
            raise ValueError(f"media leg {state.leg_id!r} has no telephone-event payload type")
        _, t = self._next_tick()
        stream = self._start_generating(state, t)
        stream.queue_digit(digit, duration_ms / 1000, event_pt, t, self.config.digit_gap)

    def close(self, leg: MediaLeg) -> LegQualityReport:
        if isinstance(leg, _Leg) and leg.report is not None:
            return leg.report  # closing twice is harmless
        state = self._state(leg)
        state.tone = None
        state.playback = None
        state.recorder = None
        if state.stream is not None:
            state.stream.clear_events()
        self._generating.pop(state.leg_id, None)
        peer = state.peer
        if peer is not None:
            peer.peer = None
            state.peer = None
            self._rewire(peer)
        state.endpoint.close()
        for proto in (state.endpoint.rtp, state.endpoint.rtcp):
            if not proto.lost.done():
                self._closing.add(proto.lost)
                proto.lost.add_done_callback(self._closing.discard)
        del self._legs[state.leg_id]
        relay = state.relay
        state.report = quality_report(
            relay.packets_in,
            relay.packets_out + state.generated_sent,
            relay.lost_before,
            relay.stats,
            state.remote,
        )
        # The taps close over the leg and its relay: unhook them so the leg's objects
        # go with reference counting (see _Socket.connection_lost).
        relay.audio_tap = relay.event_tap = relay.rtcp_tap = None
        state.source = None
        if not self._legs and self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        return state.report

    # -- life cycle ----------------------------------------------------------------

    def close_all(self) -> None:
        """Close every leg and stop the timers (shutdown)."""
        for leg in list(self._legs.values()):
            self.close(leg)
        self._clock.stop()

    async def wait_closed(self) -> None:
        """Until every closed leg's sockets are really closed (a loop turn or so)."""
        if self._closing:
            await asyncio.gather(*list(self._closing))

    # -- wiring --------------------------------------------------------------------

    def _state(self, leg: MediaLeg) -> _Leg:
        state = self._legs.get(leg.leg_id)
        if state is None or state is not leg:
            raise ValueError(f"media leg {leg.leg_id!r} is not open on this engine")
        return state

    def _rewire(self, leg: _Leg) -> None:
        """Rebuild the receive paths of ``leg`` and, if bridged, its peer's (each
        path binds both legs' codecs, payload types, latches and taps)."""
        peer = leg.peer
        self._set_taps(leg)
        self._update_mute(leg)
        pairs: list[tuple[_Leg, _Leg | None]] = [(leg, peer)]
        if peer is not None:
            self._set_taps(peer)
            self._update_mute(peer)
            pairs.append((peer, leg))
        for src, dst in pairs:
            dst_relay = dst.relay if dst is not None else None
            src.endpoint.rtp.receive = rtp_path(self._loop, src.relay, dst_relay)
            src.endpoint.rtcp.receive = rtcp_path(self._loop, src.relay, dst_relay)

    def _set_taps(self, leg: _Leg) -> None:
        relay = leg.relay
        relay.audio_tap = None
        relay.event_tap = None
        inband = leg.inband
        events = leg.events
        recorder = leg.recorder
        if recorder is not None:

            def record_tap(data: bytes, now: float) -> None:
                if inband is not None:
                    for dtmf in inband.feed(relay.codec, data):
                        self._emit(DtmfDetected(leg.leg_id, dtmf, relay_as_info=False))
                if leg.recorder is not recorder:
                    return
                try:
                    payload = RtpPacket.parse(data).payload
                except RtpError:
                    return
                end = recorder.feed(decode(relay.codec, payload))
                if end is not None:
                    leg.recorder = None
                    self._rewire(leg)
                    self._emit(RecordingStopped(leg.leg_id, recorder.finish(end)))

            relay.audio_tap = record_tap
        elif inband is not None:

            def audio_tap(data: bytes, now: float) -> None:
                for dtmf in inband.feed(relay.codec, data):
                    self._emit(DtmfDetected(leg.leg_id, dtmf, relay_as_info=False))

            relay.audio_tap = audio_tap
        if events is not None:

            def event_tap(data: bytes, now: float) -> None:
                self._report_events(leg, events.feed(data, now))

            relay.event_tap = event_tap

        def rtcp_tap(data: bytes, now: float) -> None:
            own = leg.stream.ssrc if leg.stream is not None else None
            leg.remote.feed(data, now, relay.stats, own)

        relay.rtcp_tap = rtcp_tap

    def _update_mute(self, leg: _Leg) -> None:
        leg.relay.mute = leg.tone is not None or leg.playback is not None or not leg.may_send

    def _report_events(self, leg: _Leg, digits: list[Dtmf]) -> None:
        if not digits:
            return
        # the other phone cannot take RFC 4733 events: call control sends SIP INFO
        peer = leg.peer
        as_info = peer is not None and peer.relay.event_pt is None
        for dtmf in digits:
            self._emit(DtmfDetected(leg.leg_id, dtmf, relay_as_info=as_info))

    def _emit(self, event: MediaEvent) -> None:
        self._loop.call_soon(self._on_event, event)

    def _remote_addresses(self, params: StreamParams) -> tuple[Address | None, Address | None]:
        host = params.remote_host
        if host in ("0.0.0.0", "::", ""):
            return None, None  # RFC 3264 §8.4: the old way of saying "do not send to me"
        if self._v6 and ":" not in host:
            host = "::ffff:" + host  # an IPv4 phone seen through our dual-stack socket
        rtcp = None if params.remote_rtcp_port is None else (host, params.remote_rtcp_port)
        return (host, params.remote_port), rtcp

    def _advertised_host(self, peer_host: str) -> str:
        """The address our SDP names: the bound one, or for a wildcard the source
        address the kernel routes from towards ``peer_host``."""
        if not self._wildcard:
            return self._bind_host
        return self._sources.towards(peer_host)

    # -- generated media -----------------------------------------------------------

    def _next_tick(self) -> tuple[int, float]:
        """The media clock tick that runs next (starting the clock if it is idle)."""
        self._clock.start()
        upcoming = self._clock.next_tick()
        if upcoming is None:  # start() always leaves a next tick
            raise RuntimeError("media clock did not start")
        return upcoming

    def _start_generating(self, leg: _Leg, t: float) -> OutboundStream:
        fresh = leg.stream is None
        stream = self._own_stream(leg, t)
        if fresh and leg.peer is not None:
            self._rewire(leg)  # what the peer relays to the leg now goes in its stream
        self._generating[leg.leg_id] = leg
        return stream

    def _own_stream(self, leg: _Leg, t: float) -> OutboundStream:
        """The leg's one outgoing stream, created on first use; every later packet to
        its phone goes out in it (``relay.rtp_path`` rewrites the relayed ones once
        the paths are rebuilt). When the phone has been hearing the other phone's
        stream relayed unchanged, the new one continues it (its SSRC, the next
        sequence number), so the phone sees no change at all.
        """
        stream = leg.stream
        if stream is not None:
            return stream
        cname = f"{self._rng.getrandbits(64):016x}@yakyak"  # RFC 7022: random CNAME
        stream = leg.stream = OutboundStream(self._rng, t, cname)
        source = leg.source
        heard = None if source is None else source.relay.last_header
        relay = leg.relay
        if source is not None and heard is not None and relay.packets_out:
            stats = source.relay.stats
            last_seq = heard.sequence
            if stats is not None and stats.ssrc == heard.ssrc:
                if seq_after(stats.max_seq, last_seq):  # the last packet came reordered
                    last_seq = stats.max_seq
            header = HEADER_SIZE * relay.packets_out  # an SR counts payload octets only
            stream.continue_from(
                heard.ssrc,
                last_seq,
                heard.timestamp,
                source.relay.last_received or t,
                relay.packets_out,
                max(relay.bytes_out - header, 0),
            )
            leg.sr_packets = relay.packets_out
        relay.rewrite = stream
        leg.next_sr = t + self._sr_delay()
        return stream

    def _stop_tone(self, leg: _Leg) -> None:
        if leg.tone is None:
            return
        leg.tone = None
        self._update_mute(leg)
        # the clock itself stops at its next tick when nothing is left to generate

    def _sr_delay(self) -> float:
        return self.config.sr_interval * self._rng.uniform(0.5, 1.5)  # RFC 3550 §6.3.1

    def _tick(self, tick: int, t: float) -> None:
        """One 20 ms frame for every generating leg; ``t`` is the tick's grid time."""
        tolerance = self.config.clock.period / 2
        for leg in list(self._generating.values()):
            stream = leg.stream
            if stream is None:
                continue
            target = leg.relay.rtp_latch.target if leg.may_send else None
            rtp = leg.endpoint.rtp
            kind = leg.tone
            if kind is not None:
                encoded = self._tones.get(kind, leg.relay.codec)
                index = tick - leg.tone_start
                if encoded.frames is not None and index >= encoded.frames:
                    self._stop_tone(leg)  # a tone that does not repeat is over
                elif target is not None:
                    data = stream.audio(
                        leg.relay.payload_type, encoded.frame(index), t, leg.tone_marker
                    )
                    leg.tone_marker = False
                    if rtp.send(data, target):
                        leg.generated_sent += 1
            elif leg.playback is not None:
                self._play_frame(leg, leg.playback, stream, target, t)
            if stream.has_events:
                for data in stream.due_events(t, tolerance):
                    if target is not None and rtp.send(data, target):
                        leg.generated_sent += 1
            if not leg.generating:
                del self._generating[leg.leg_id]
        if not self._generating:
            self._clock.stop()

    def _play_frame(
        self,
        leg: _Leg,
        playback: Playback,
        stream: OutboundStream,
        target: Address | None,
        t: float,
    ) -> None:
        playback.codec = leg.relay.codec  # a re-INVITE may have changed it
        frame = playback.next_frame()
        if frame is None:
            leg.playback = None
            self._update_mute(leg)
            self._emit(PlaybackFinished(leg.leg_id, playback.ident))
            return
        if target is None:
            return
        data = stream.audio(leg.relay.payload_type, frame, t, leg.playback_marker)
        leg.playback_marker = False
        if leg.endpoint.rtp.send(data, target):
            leg.generated_sent += 1

    def _send_sr(self, leg: _Leg, stream: OutboundStream, t: float) -> None:
        """Our SR for the leg's stream, when we sent on it since the last one (RFC 3550
        §6.4: a participant that has not sent sends no SR)."""
        leg.next_sr = t + self._sr_delay()
        target = leg.relay.rtcp_latch.target
        count = stream.sender.packet_count
        if target is None or not stream.sender.has_sent or count == leg.sr_packets:
            return
        leg.sr_packets = count
        stats = leg.relay.stats
        blocks = (stats.report_block(t),) if stats is not None and stats.expected else ()
        leg.endpoint.rtcp.send(stream.sender_report(t, self._wallclock(), blocks), target)

    # -- sweep ---------------------------------------------------------------------

    def _sweep(self) -> None:
        """RTP timeouts, lost RFC 4733 ends and SRs of every leg, on one timer."""
        now = self._loop.time()
        for leg in list(self._legs.values()):
            events = leg.events
            if events is not None:
                deadline = events.next_deadline()
                if deadline is not None and now >= deadline:
                    self._report_events(leg, events.handle_timer(now))
            self._check_timeout(leg, now)
            stream = leg.stream
            if stream is not None and leg.next_sr is not None and now >= leg.next_sr:
                self._send_sr(leg, stream, now)
        interval = self.config.sweep_interval
        at = (self._sweep_at or now) + interval
        if at <= now:  # the loop stalled for more than an interval: do not run in a burst
            at = now + interval
        self._sweep_at = at
        self._sweep_handle = self._loop.call_at(at, self._sweep)

    def _check_timeout(self, leg: _Leg, now: float) -> None:
        params = leg.params
        if params is None or leg.peer is None or params.direction not in _PHONE_SENDS:
            return
        last = leg.relay.last_received
        since = leg.configured_at if last is None else max(leg.configured_at, last)
        silent = now - since
        if silent >= self.rtp_timeout and leg.timeout_reported_for != since:
            leg.timeout_reported_for = since  # once per silence
            self._emit(RtpStopped(leg.leg_id, silent))


def _no_clips(item: PlayItem, language: str) -> list[npt.NDArray[np.int16]]:
    raise LookupError("this engine was built without a prompt library")
