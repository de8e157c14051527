"""DTMF through UdpMediaEngine over real loopback UDP: RFC 4733 payload type mapping,
events reported for SIP INFO, in-band detection, and events we send."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from media_harness import (
    HOST,
    LOOPS,
    Harness,
    nothing_within,
    params,
    phone,
    recv,
    recv_packet,
    rtp,
    run,
)

from appliance.dsp.dtmf import COLS, DBM0_PEAK, KEYPAD, ROWS
from appliance.dsp.g711 import Codec, encode
from appliance.pbx.call_events import Dtmf, DtmfSource
from appliance.pbx.media_port import DtmfDetected
from appliance.rtp.dtmf_event import DtmfEventReceiver, DtmfEventSender, KeyPress
from appliance.rtp.packet import RtpPacket

pytestmark = pytest.mark.timeout(30)


def event_packets(digit: str, ms: int, pt: int = 101, seq: int = 100) -> list[bytes]:
    sender = DtmfEventSender(payload_type=pt, ssrc=0x1234)
    return [bytes(p) for _, p in sender.packets(digit, ms / 1000, timestamp=16000, sequence=seq)]


def dtmf_audio(digit: str, on_ms: int, off_ms: int, codec: Codec) -> list[bytes]:
    """20 ms G.711 frames: the digit's two Q.23 tones at -10 dBm0 each, then silence."""
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    n = np.arange((on_ms + off_ms) * 8)
    amplitude = DBM0_PEAK * 10 ** (-10 / 20)
    tone = np.sin(2 * np.pi * ROWS[row] * n / 8000) + np.sin(2 * np.pi * COLS[col] * n / 8000)
    signal = np.where(n < on_ms * 8, np.rint(amplitude * tone), 0).astype(np.int16)
    return [encode(codec, signal[i : i + 160]) for i in range(0, signal.size, 160)]


@pytest.mark.parametrize("loop", LOOPS)
def test_events_are_mapped_to_the_other_legs_payload_type_and_reported(loop: str) -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.configure(b, params(pb, event_pt=96))
        h.engine.bridge(a, b)
        sent = event_packets("7", 100, pt=101)
        for packet in sent:
            pa.sendto(packet, h.to(a))
            data, _ = await recv(pb)
            assert data[1] & 0x7F == 96 and data[1] & 0x80 == packet[1] & 0x80
            assert data[:1] + data[2:] == packet[:1] + packet[2:]
        event = await h.event()
        assert event == DtmfDetected("a", Dtmf("7", 100, DtmfSource.RFC4733), relay_as_info=False)
        assert await nothing_within(pb, 0.05) and not h.events  # one report per key press
        await h.close()
        pa.close()
        pb.close()

    run(scenario, loop)


def test_events_towards_a_leg_without_events_are_dropped_and_reported_for_info() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.configure(b, params(pb, event_pt=None))
        h.engine.bridge(a, b)
        for packet in event_packets("#", 160):
            pa.sendto(packet, h.to(a))
        pa.sendto(rtp(5), h.to(a))
        assert (await recv(pb))[0] == rtp(5)  # the audio, and none of the events before it
        event = await h.event()
        assert event == DtmfDetected("a", Dtmf("#", 160, DtmfSource.RFC4733), relay_as_info=True)
        await asyncio.sleep(0.05)
        assert not h.events
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_an_event_whose_end_packets_are_lost_is_reported_after_the_timeout() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.configure(b, params(pb, event_pt=None))
        h.engine.bridge(a, b)
        for packet in event_packets("3", 100)[:3]:  # updates only, no end packet
            pa.sendto(packet, h.to(a))
        event = await h.event(timeout=3.0)  # event_timeout 0.5 s + one sweep interval
        assert event == DtmfDetected("a", Dtmf("3", 60, DtmfSource.RFC4733), relay_as_info=True)
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


@pytest.mark.parametrize("codec", [Codec.PCMU, Codec.PCMA])
def test_inband_dtmf_is_detected_on_a_leg_without_events(codec: Codec) -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, codec=codec.name, event_pt=None))
        h.engine.configure(b, params(pb, codec=codec.name, event_pt=101))
        h.engine.bridge(a, b)
        frames = dtmf_audio("5", 100, 100, codec)
        for seq, payload in enumerate(frames):
            pa.sendto(rtp(seq, pt=codec.payload_type, payload=payload), h.to(a))
            await recv(pb)  # relayed unchanged: the other phone hears the tones
        event = await h.event()
        assert isinstance(event, DtmfDetected)
        assert (event.leg_id, event.dtmf.digit, event.dtmf.source) == ("a", "5", DtmfSource.INBAND)
        assert not event.relay_as_info
        assert abs(event.dtmf.duration_ms - 100) <= 10
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_no_inband_detection_on_a_leg_with_events() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.configure(b, params(pb, event_pt=101))
        h.engine.bridge(a, b)
        for seq, payload in enumerate(dtmf_audio("5", 100, 100, Codec.PCMU)):
            pa.sendto(rtp(seq, payload=payload), h.to(a))
            await recv(pb)
        await asyncio.sleep(0.05)
        assert not h.events  # its digits come as events; audio tones are not looked for
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_send_dtmf_produces_events_the_receiver_decodes(loop: str) -> None:
    async def scenario() -> None:
        h = Harness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.send_dtmf(a, "9", 120)
        receiver = DtmfEventReceiver()
        running = asyncio.get_running_loop()
        presses: list[KeyPress] = []
        packets: list[RtpPacket] = []
        while len(packets) < 8:  # 120 ms: 5 updates, then 3 end packets (RFC 4733 §2.5.1.4)
            packets.append(await recv_packet(pa))
            presses += receiver.receive(packets[-1], running.time())
        assert [(p.digit, p.duration, p.end_seen) for p in presses] == [("9", 960, True)]
        assert {p.payload_type for p in packets} == {101}
        assert packets[0].marker and len({p.timestamp for p in packets}) == 1
        assert all(
            b.sequence == (a.sequence + 1) & 0xFFFF
            for a, b in zip(packets, packets[1:], strict=False)
        )
        assert await nothing_within(pa, 0.1)
        await h.close()
        pa.close()

    run(scenario, loop)


def test_digits_sent_back_to_back_are_separate_presses() -> None:
    async def scenario() -> None:
        h = Harness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.send_dtmf(a, "1", 60)
        h.engine.send_dtmf(a, "2", 60)
        receiver = DtmfEventReceiver()
        presses: list[KeyPress] = []
        while len(presses) < 2:
            presses += receiver.receive(await recv_packet(pa), 0.0)
        assert [(p.digit, p.duration) for p in presses] == [("1", 480), ("2", 480)]
        assert presses[1].timestamp - presses[0].timestamp >= 480
        await h.close()
        pa.close()

    run(scenario)


def test_send_dtmf_needs_a_telephone_event_payload_type() -> None:
    async def scenario() -> None:
        h = Harness()
        pa = phone()
        a = h.engine.open_leg("a", HOST)
        h.engine.configure(a, params(pa, event_pt=None))
        with pytest.raises(ValueError, match="no telephone-event"):
            h.engine.send_dtmf(a, "1", 100)
        with pytest.raises(ValueError, match="not a DTMF digit"):
            h.engine.send_dtmf(a, "x", 100)
        await h.close()
        pa.close()

    run(scenario)
