"""Playback and recording through UdpMediaEngine over real loopback UDP: prompts in
the leg's own RTP stream, PlaybackFinished, stopping, muting of relayed audio, loop
mode; recordings of what a phone sends, their stop conditions, and DTMF meanwhile.

Frames are paced by the media clock at 50 a second, so clips here are a few tenths
of a second. The clock may run a large burst: a loaded machine then sends late
frames back to back instead of skipping ticks, so RTP timestamps stay 160 apart
without any assertion about wall-clock time."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from media_harness import (
    HOST,
    LOOPS,
    TIMEOUT,
    Harness,
    drain,
    nothing_within,
    params,
    phone,
    recv,
    recv_packet,
    rtp,
    run,
)

from appliance.dsp.dtmf import COLS, DBM0_PEAK, KEYPAD, ROWS
from appliance.dsp.g711 import Codec, decode, encode
from appliance.media.clock import ClockConfig
from appliance.media.engine import EngineConfig, UdpMediaEngine, _Leg
from appliance.pbx.app_events import PlayItem, RecordEnd
from appliance.pbx.call_events import Dtmf, DtmfSource
from appliance.pbx.media_port import (
    DtmfDetected,
    MediaLeg,
    PlaybackFinished,
    RecordedAudio,
    RecordingStopped,
)
from appliance.rtp.dtmf_event import DtmfEventSender
from appliance.rtp.packet import RtpPacket


def finished(event: object, leg_id: str) -> bool:
    """A PlaybackFinished of ``leg_id`` (whatever its queue number)."""
    return isinstance(event, PlaybackFinished) and event.leg_id == leg_id


pytestmark = pytest.mark.timeout(30)

Clip = npt.NDArray[np.int16]
FRAME = 160


def sine(samples: int, freq: float = 440.0, amplitude: int = 8000, start: int = 0) -> Clip:
    n = np.arange(start, start + samples)
    clip: Clip = np.rint(amplitude * np.sin(2 * np.pi * freq * n / 8000)).astype(np.int16)
    return clip


def frames_of(codec: Codec, clip: Clip) -> list[bytes]:
    """The 160-byte payloads a clip plays as: encoded, the last one padded with silence."""
    whole = np.concatenate((clip, np.zeros(-clip.size % FRAME, dtype=np.int16)))
    data = encode(codec, whole)
    return [data[i : i + FRAME] for i in range(0, len(data), FRAME)]


class Clips:
    """A ClipLoader over a dict of prompt names, recording which it was asked for."""

    def __init__(self, clips: dict[str, Clip]) -> None:
        self.clips = clips
        self.asked: list[str] = []

    def __call__(self, item: PlayItem, language: str) -> Sequence[Clip]:
        assert isinstance(item, str)
        self.asked.append(item)
        return [self.clips[item]]  # KeyError (a LookupError) for an unknown prompt


class PlaybackHarness(Harness):
    """The shared harness with an engine that has a prompt library."""

    def __init__(self, clips: Clips | None = None) -> None:
        config = EngineConfig(clock=ClockConfig(max_burst=10_000))
        super().__init__(config=config)
        self.clips = clips or Clips({})
        self.engine = UdpMediaEngine(
            asyncio.get_running_loop(),
            self.pool,
            HOST,
            self._on_event,
            config=config,
            clips=self.clips,
        )

    async def quiet(self, seconds: float = 0.1) -> bool:
        """True when no event comes for ``seconds``."""
        await asyncio.sleep(seconds)
        return not self.events


async def packets_received(leg: MediaLeg, count: int) -> None:
    """Until the engine has taken ``count`` RTP packets from the leg's phone."""
    assert isinstance(leg, _Leg)
    async with asyncio.timeout(TIMEOUT):
        while leg.relay.packets_in < count:
            await asyncio.sleep(0.005)


def send_audio(sock: socket.socket, to: tuple[str, int], payloads: list[bytes], seq0: int) -> None:
    for i, payload in enumerate(payloads):
        sock.sendto(rtp(seq0 + i, pt=0, payload=payload, ts=(seq0 + i) * FRAME), to)


def as_pcm(audio: RecordedAudio) -> Clip:
    return np.frombuffer(audio.pcm, dtype="<i2").astype(np.int16)


def correlation(a: Clip, b: Clip) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


def dtmf_signal(digit: str, on_ms: int) -> Clip:
    """A key press in band: the Q.23 row and column tones at -10 dBm0 each."""
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    n = np.arange(on_ms * 8)
    tone = np.sin(2 * np.pi * ROWS[row] * n / 8000) + np.sin(2 * np.pi * COLS[col] * n / 8000)
    return np.rint(DBM0_PEAK * 10 ** (-10 / 20) * tone).astype(np.int16)


# -- playback -------------------------------------------------------------------------


@pytest.mark.parametrize(("loop", "codec"), [(LOOPS[0], Codec.PCMU), (LOOPS[1], Codec.PCMA)])
def test_two_clips_play_in_one_stream_then_playback_finished(loop: str, codec: Codec) -> None:
    first, second = sine(2000, 440), sine(1000, 1000)  # 12.5 and 6.25 frames
    expected = frames_of(codec, first) + frames_of(codec, second)

    async def scenario() -> None:
        h = PlaybackHarness(Clips({"first": first, "second": second}))
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, codec=codec.name))
        h.engine.play(a, ["first", "second"], "en")
        packets: list[RtpPacket] = [await recv_packet(pa) for _ in range(len(expected))]
        assert len(expected) == 20
        assert {p.payload_type for p in packets} == {codec.payload_type}
        assert {p.ssrc for p in packets} == {packets[0].ssrc}
        assert packets[0].marker and not any(p.marker for p in packets[1:])
        for before, after in zip(packets, packets[1:], strict=False):
            assert after.sequence == (before.sequence + 1) & 0xFFFF
            assert after.timestamp == (before.timestamp + FRAME) & 0xFFFFFFFF
        assert [p.payload for p in packets] == expected
        assert finished(await h.event(), "a")
        assert await nothing_within(pa, 0.1)
        assert not h.events  # once
        assert not h.engine.clock.running
        assert not h.engine.stop_playback(a)  # nothing is playing any more
        await h.close()
        pa.close()

    run(scenario, loop)


def test_stop_playback_mid_queue_stops_packets_without_an_event() -> None:
    async def scenario() -> None:
        clips = Clips({"long": sine(8000), "next": sine(8000, 600)})
        h = PlaybackHarness(clips)
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play(a, ["long", "next"], "en")
        for _ in range(5):
            await recv_packet(pa)
        assert h.engine.stop_playback(a)
        await asyncio.sleep(0.05)
        drain(pa)  # what was sent before the stop
        assert await nothing_within(pa, 0.1)
        assert await h.quiet()  # no PlaybackFinished for a queue that was stopped
        assert clips.asked == ["long"]  # the rest of the queue was never loaded
        assert not h.engine.stop_playback(a)
        await h.close()
        pa.close()

    run(scenario)


def test_a_missing_prompt_is_skipped_and_a_queue_of_them_finishes_at_once() -> None:
    async def scenario() -> None:
        clip = sine(320)
        h = PlaybackHarness(Clips({"ok": clip}))
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play(a, ["missing", "ok", "gone"], "en")
        payloads = [(await recv_packet(pa)).payload for _ in range(2)]
        assert payloads == frames_of(Codec.PCMU, clip)
        assert finished(await h.event(), "a")
        h.engine.play(a, ["missing"], "en")
        assert finished(await h.event(), "a")
        h.engine.play(a, ["missing", "gone"], "en", loop=True)  # music on hold without music
        assert finished(await h.event(), "a")
        assert await nothing_within(pa, 0.1)
        await h.close()
        pa.close()

    run(scenario)


def test_a_bridged_leg_hears_the_playback_not_the_other_phone_until_it_ends() -> None:
    clip = sine(2400)  # 15 frames

    async def scenario() -> None:
        h = PlaybackHarness(Clips({"prompt": clip}))
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        h.engine.play(b, ["prompt"], "en")
        played = [await recv_packet(pb)]
        for seq in range(5):  # A talks while B hears the prompt
            pa.sendto(rtp(seq), h.to(a))
            pb.sendto(rtp(seq, ssrc=0x5678), h.to(b))
        for _ in range(5):  # B is still heard by A: only the way to B is paused
            data, _ = await recv(pa)
            assert RtpPacket.parse(data).ssrc == 0x5678
        while len(played) < 15:
            played.append(await recv_packet(pb))
        assert [p.payload for p in played] == frames_of(Codec.PCMU, clip)  # nothing mixed in
        assert finished(await h.event(), "b")
        assert await nothing_within(pb, 0.05)
        pa.sendto(rtp(9), h.to(a))
        relayed = await recv_packet(pb)  # A again, in the stream the prompt went out in
        assert (relayed.ssrc, relayed.payload) == (played[0].ssrc, rtp(9)[12:])
        assert relayed.sequence == (played[-1].sequence + 1) & 0xFFFF
        assert relayed.marker and relayed.timestamp >= played[-1].timestamp + FRAME
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_a_codec_change_mid_prompt_changes_payload_type_and_payload_together() -> None:
    clip = sine(20 * FRAME, 700)

    async def scenario() -> None:
        h = PlaybackHarness(Clips({"prompt": clip}))
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, codec="PCMU"))
        h.engine.play(a, ["prompt"], "en")
        packets = [await recv_packet(pa) for _ in range(3)]
        h.engine.configure(a, params(pa, codec="PCMA"))  # a re-INVITE
        packets += [await recv_packet(pa) for _ in range(17)]
        types = [p.payload_type for p in packets]
        assert types[:3] == [0, 0, 0] and types[-1] == 8
        assert types == sorted(types)  # one switch
        frames = {0: frames_of(Codec.PCMU, clip), 8: frames_of(Codec.PCMA, clip)}
        assert [p.payload for p in packets] == [frames[t][i] for i, t in enumerate(types)]
        assert finished(await h.event(), "a")
        await h.close()
        pa.close()

    run(scenario)


def test_loop_mode_plays_until_stopped() -> None:
    clip = sine(800, 500)  # 5 frames

    async def scenario() -> None:
        clips = Clips({"moh": clip})
        h = PlaybackHarness(clips)
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play(a, ["moh"], "en", loop=True)
        packets = [await recv_packet(pa) for _ in range(22)]
        assert [p.payload for p in packets] == (frames_of(Codec.PCMU, clip) * 5)[:22]
        assert {p.ssrc for p in packets} == {packets[0].ssrc}
        assert [p.marker for p in packets].count(True) == 1  # one talkspurt, not one a round
        assert not h.events
        assert h.engine.stop_playback(a)
        await asyncio.sleep(0.05)
        drain(pa)
        assert await nothing_within(pa, 0.1)
        assert await h.quiet(0.0)
        assert clips.asked[:5] == ["moh"] * 5  # each round loads it again
        await h.close()
        pa.close()

    run(scenario)


def test_play_adds_to_the_queue_that_is_playing() -> None:
    first, second = sine(480, 300), sine(320, 900)

    async def scenario() -> None:
        h = PlaybackHarness(Clips({"first": first, "second": second}))
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play(a, ["first"], "en")
        packets = [await recv_packet(pa)]
        h.engine.play(a, ["second"], "en")
        packets += [await recv_packet(pa) for _ in range(4)]
        expected = frames_of(Codec.PCMU, first) + frames_of(Codec.PCMU, second)
        assert [p.payload for p in packets] == expected
        assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == list(range(5))
        assert finished(await h.event(), "a")
        assert await h.quiet(0.05)
        await h.close()
        pa.close()

    run(scenario)


# -- recording ------------------------------------------------------------------------


def test_a_recording_is_what_the_phone_sent_decoded() -> None:
    async def scenario() -> None:
        h = PlaybackHarness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.record(a, max_seconds=10, silence_seconds=5)
        signal = sine(50 * FRAME, 440)
        payloads = frames_of(Codec.PCMU, signal)  # one second in 50 packets of 20 ms
        send_audio(pa, h.to(a), payloads, seq0=1)
        await packets_received(a, 50)
        audio = h.engine.stop_recording(a)
        assert audio is not None and audio.end is RecordEnd.STOPPED
        heard = decode(Codec.PCMU, b"".join(payloads))
        recorded = as_pcm(audio)
        assert recorded.size == heard.size == 8000 and audio.seconds == pytest.approx(1.0)
        assert correlation(recorded, heard) > 0.99
        assert np.array_equal(recorded, heard)  # G.711 decoded exactly, in order
        assert h.engine.stop_recording(a) is None  # handed over once
        assert await h.quiet(0.05)  # stopped by call control: no event
        await h.close()
        pa.close()

    run(scenario)


def test_a_recording_while_bridged_still_relays_to_the_other_phone() -> None:
    async def scenario() -> None:
        h = PlaybackHarness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        h.engine.record(a, max_seconds=10, silence_seconds=0)
        payloads = frames_of(Codec.PCMU, sine(5 * FRAME))
        send_audio(pa, h.to(a), payloads, seq0=1)
        for payload in payloads:
            assert (await recv_packet(pb)).payload == payload
        audio = h.engine.stop_recording(a, RecordEnd.HANG_UP)
        assert audio is not None and audio.end is RecordEnd.HANG_UP
        assert np.array_equal(as_pcm(audio), decode(Codec.PCMU, b"".join(payloads)))
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_silence_after_speech_stops_the_recording_with_the_tail_cut() -> None:
    async def scenario() -> None:
        h = PlaybackHarness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.record(a, max_seconds=10, silence_seconds=0.5)
        tone = frames_of(Codec.PCMU, sine(50 * FRAME, 440))  # one second
        silence = frames_of(Codec.PCMU, np.zeros(30 * FRAME, dtype=np.int16))
        send_audio(pa, h.to(a), tone + silence, seq0=1)
        event = await h.event()
        assert isinstance(event, RecordingStopped) and event.leg_id == "a"
        assert event.audio.end is RecordEnd.SILENCE
        assert event.audio.seconds == pytest.approx(1.0)  # the 0.5 s of silence cut off
        heard = decode(Codec.PCMU, b"".join(tone))
        assert correlation(as_pcm(event.audio), heard) > 0.99
        assert h.engine.stop_recording(a) is None  # the engine ended it already
        send_audio(pa, h.to(a), silence, seq0=100)
        assert await h.quiet()  # reported once
        await h.close()
        pa.close()

    run(scenario)


def test_the_maximum_length_stops_the_recording() -> None:
    async def scenario() -> None:
        h = PlaybackHarness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, codec="PCMA"))
        h.engine.record(a, max_seconds=0.5, silence_seconds=2)
        signal = sine(40 * FRAME, 440)
        payloads = frames_of(Codec.PCMA, signal)
        for i, payload in enumerate(payloads):
            pa.sendto(rtp(i, pt=8, payload=payload), h.to(a))
        event = await h.event()
        assert isinstance(event, RecordingStopped)
        assert event.audio.end is RecordEnd.MAX_LENGTH
        heard = decode(Codec.PCMA, b"".join(payloads[:25]))
        assert np.array_equal(as_pcm(event.audio), heard)  # 0.5 s exactly
        assert h.engine.stop_recording(a) is None
        assert await h.quiet()
        await h.close()
        pa.close()

    run(scenario)


def test_inband_dtmf_is_detected_while_recording_and_a_digit_stop_trims() -> None:
    async def scenario() -> None:
        h = PlaybackHarness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, event_pt=None))  # DTMF only in band
        h.engine.record(a, max_seconds=10, silence_seconds=5)
        speech = sine(50 * FRAME, 440)  # one second, then "#" for 100 ms and 100 ms quiet
        press = np.concatenate((dtmf_signal("#", 100), np.zeros(800, dtype=np.int16)))
        payloads = frames_of(Codec.PCMU, np.concatenate((speech, press)))
        send_audio(pa, h.to(a), payloads, seq0=1)
        event = await h.event()
        assert isinstance(event, DtmfDetected) and not event.relay_as_info
        assert (event.leg_id, event.dtmf.digit, event.dtmf.source) == ("a", "#", DtmfSource.INBAND)
        await packets_received(a, len(payloads))
        audio = h.engine.stop_recording(a, RecordEnd.DIGIT)
        assert audio is not None and audio.end is RecordEnd.DIGIT
        heard = decode(Codec.PCMU, b"".join(payloads))
        kept = heard.size - 3200  # the last 0.4 s, with the key press in it, is cut
        assert np.array_equal(as_pcm(audio), heard[:kept])
        await h.close()
        pa.close()

    run(scenario)


def test_rfc4733_dtmf_is_detected_while_recording_and_is_not_in_the_audio() -> None:
    async def scenario() -> None:
        h = PlaybackHarness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.record(a, max_seconds=10, silence_seconds=5)
        payloads = frames_of(Codec.PCMU, sine(10 * FRAME))
        send_audio(pa, h.to(a), payloads, seq0=1)
        sender = DtmfEventSender(payload_type=101, ssrc=0x1234)
        events = [bytes(p) for _, p in sender.packets("7", 0.1, timestamp=1600, sequence=11)]
        for packet in events:
            pa.sendto(packet, h.to(a))
        event = await h.event()
        assert event == DtmfDetected("a", Dtmf("7", 100, DtmfSource.RFC4733), relay_as_info=False)
        await packets_received(a, len(payloads) + len(events))
        audio = h.engine.stop_recording(a)
        assert audio is not None
        assert np.array_equal(as_pcm(audio), decode(Codec.PCMU, b"".join(payloads)))
        await h.close()
        pa.close()

    run(scenario)


def test_closing_a_leg_drops_its_playback_and_recording_silently() -> None:
    async def scenario() -> None:
        h = PlaybackHarness(Clips({"long": sine(8000)}))
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play(a, ["long"], "en")
        h.engine.record(a, max_seconds=10, silence_seconds=5)
        await recv_packet(pa)
        send_audio(pa, h.to(a), frames_of(Codec.PCMU, sine(5 * FRAME)), seq0=1)
        await packets_received(a, 5)
        h.engine.close(a)
        await h.engine.wait_closed()
        assert await h.quiet()
        assert not h.engine.clock.running
        await h.close()
        pa.close()

    run(scenario)
