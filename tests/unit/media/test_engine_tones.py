"""Tones from UdpMediaEngine over real loopback UDP: pacing by the media clock, RTP
fields, spectrum, muting of relayed audio, SRs. Rates are checked with wide margins
(the machine runs other work); the clock's exactness is tested sans-IO in test_clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from media_harness import (
    HOST,
    LOOPS,
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

from appliance.dsp.g711 import ALAW_DECODE, ULAW_DECODE
from appliance.media.engine import EngineConfig
from appliance.rtp.packet import RtpPacket
from appliance.rtp.rtcp import SenderReport, SourceDescription, parse_compound

pytestmark = pytest.mark.timeout(30)


def spectrum_peaks(samples: np.ndarray, count: int) -> set[int]:
    """The ``count`` strongest frequencies (1 Hz bins over one second of audio)."""
    magnitude = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return {int(f) for f in np.argsort(magnitude)[-count:]}


@pytest.mark.parametrize("loop", LOOPS)
def test_ringback_is_paced_at_50_packets_per_second_with_us_frequencies(loop: str) -> None:
    async def scenario() -> None:
        h = Harness(country="US")
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play_tone(a, "ringback")
        packets: list[RtpPacket] = []
        for _ in range(50):
            packets.append(await recv_packet(pa))
        first = packets[0]
        assert first.marker and not any(p.marker for p in packets[1:])
        assert {p.payload_type for p in packets} == {0}
        assert {p.ssrc for p in packets} == {first.ssrc}
        for before, after in zip(packets, packets[1:], strict=False):
            assert after.sequence == (before.sequence + 1) & 0xFFFF
            assert after.timestamp == (before.timestamp + 160) & 0xFFFFFFFF
            assert len(after.payload) == 160
        # Pacing in time is the clock's job, tested sans-IO in test_clock.py (no wall
        # clock is asserted here): on the wire, 160 samples per packet, no gaps.
        audio = ULAW_DECODE[np.frombuffer(b"".join(p.payload for p in packets), np.uint8)]
        assert spectrum_peaks(audio, 2) == {440, 480}  # US ringback, 2 s on / 4 s off
        await h.close()
        pa.close()

    run(scenario, loop)


def test_busy_tone_in_pcma_for_germany() -> None:
    async def scenario() -> None:
        h = Harness(country="DE")
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, codec="PCMA"))
        h.engine.play_tone(a, "busy")  # 425 Hz, 480 ms on / 480 ms off
        packets = [await recv_packet(pa) for _ in range(20)]
        assert {p.payload_type for p in packets} == {8}
        audio = ALAW_DECODE[np.frombuffer(b"".join(p.payload for p in packets[:20]), np.uint8)]
        magnitude = np.abs(np.fft.rfft(audio.astype(np.float64)))  # 400 ms: 2.5 Hz bins
        assert abs(np.argmax(magnitude) * 2.5 - 425) <= 2.5
        await h.close()
        pa.close()

    run(scenario)


def test_tone_to_an_unconfigured_leg_goes_to_the_latched_source() -> None:
    async def scenario() -> None:
        h = Harness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.play_tone(a, "dial")  # nowhere to send yet: nothing is sent
        assert await nothing_within(pa, 0.1)
        pa.sendto(rtp(1), h.to(a))  # the phone's first packet latches the leg
        packet = await recv_packet(pa)
        assert packet.payload_type == 0 and packet.marker  # the first one actually sent
        await h.close()
        pa.close()

    run(scenario)


def test_a_tone_mutes_relayed_audio_until_it_stops() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        h.engine.play_tone(b, "busy")
        tone_ssrc = (await recv_packet(pb)).ssrc
        for seq in range(5):
            pa.sendto(rtp(seq), h.to(a))
        from_a = {rtp(seq)[12:] for seq in range(5)}
        for _ in range(10):
            assert (await recv_packet(pb)).payload not in from_a  # no mixing: A is not heard
        h.engine.play_tone(b, None)
        await asyncio.sleep(0.05)
        drain(pb)
        pa.sendto(rtp(9), h.to(a))
        relayed = await recv_packet(pb)  # A again, in the stream the tone went out in
        assert (relayed.ssrc, relayed.payload) == (tone_ssrc, rtp(9)[12:]) and relayed.marker
        assert await nothing_within(pb, 0.1)  # the tone is over
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_bridge_stops_the_tone() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play_tone(a, "ringback")
        await recv_packet(pa)
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        await asyncio.sleep(0.05)
        drain(pa)
        assert await nothing_within(pa, 0.1)
        assert not h.engine.clock.running  # nothing left to generate: no 50 Hz timer
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_us_call_waiting_beeps_once_then_relaying_resumes() -> None:
    async def scenario() -> None:
        h = Harness(country="US")
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        pa.sendto(rtp(1), h.to(a))
        assert (await recv(pb))[0] == rtp(1)  # nothing generated yet: relayed untouched
        h.engine.play_tone(b, "call-waiting")  # 440 Hz for 300 ms, once
        beep = [await recv_packet(pb) for _ in range(15)]  # 300 ms = 15 frames
        # the beep continues the stream B was hearing (A's, relayed), not a new one
        assert {p.ssrc for p in beep} == {0x1234}
        assert [p.sequence for p in beep] == list(range(2, 17))
        assert await nothing_within(pb, 0.1)
        pa.sendto(rtp(2), h.to(a))
        relayed = await recv_packet(pb)
        assert (relayed.ssrc, relayed.sequence, relayed.payload) == (0x1234, 17, rtp(2)[12:])
        assert relayed.marker  # a talkspurt after the beep (RFC 3551 §4.1)
        assert relayed.timestamp >= beep[-1].timestamp + 160
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_sender_reports_while_a_tone_plays() -> None:
    async def scenario() -> None:
        h = Harness(config=EngineConfig(sr_interval=0.1))
        pa, ca = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, rtcp=ca))
        h.engine.play_tone(a, "dial")
        ssrc = (await recv_packet(pa)).ssrc
        data, source = await recv(ca)
        assert source == h.to_rtcp(a)
        sr, sdes = parse_compound(data)
        assert isinstance(sr, SenderReport) and sr.ssrc == ssrc and sr.packet_count >= 1
        assert sr.octet_count == 160 * sr.packet_count
        assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname
        await h.close()
        pa.close()
        ca.close()

    run(scenario)


def test_unknown_tone_name_is_refused() -> None:
    async def scenario() -> None:
        h = Harness()
        a = h.engine.open_leg("a", HOST)
        with pytest.raises(ValueError, match="unknown tone 'howler'"):
            h.engine.play_tone(a, "howler")
        await h.close()

    run(scenario)
