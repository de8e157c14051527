"""UdpMediaEngine relaying over real loopback UDP: bridge, transcoding, directions,
re-INVITEs, RTCP. Fake phones are plain sockets; the engine runs on a real loop."""

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
    rtp,
    run,
)

from appliance.dsp.g711 import ALAW_DECODE, ALAW_ENCODE, ULAW_DECODE, ULAW_ENCODE
from appliance.pbx.media_port import StreamDirection
from appliance.rtp.rtcp import ReceiverReport, ReportBlock

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("loop", LOOPS)
def test_open_configure_bridge_relays_both_ways(loop: str) -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        assert (a.host, b.host) == (HOST, HOST)
        assert a.port % 2 == 0 and b.port % 2 == 0 and a.port != b.port
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        for seq in range(5):
            pa.sendto(rtp(seq), h.to(a))
            assert await recv(pb) == (rtp(seq), h.to(b))  # symmetric: B hears B's port
        pb.sendto(rtp(100, ssrc=0x9999), h.to(b))
        assert await recv(pa) == (rtp(100, ssrc=0x9999), h.to(a))
        report_a = h.engine.close(a)
        report_b = h.engine.close(b)
        assert (report_a.packets_received, report_a.packets_sent) == (5, 1)
        assert (report_b.packets_received, report_b.packets_sent) == (1, 5)
        await h.close()
        pa.close()
        pb.close()

    run(scenario, loop)


def test_packets_sent_before_the_loop_attaches_the_socket_are_relayed() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        pa.sendto(rtp(1), h.to(a))  # the port is bound, the loop has not seen it yet
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        assert (await recv(pb))[0] == rtp(1)  # waited in the kernel buffer
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_pcmu_pcma_transcoding_is_exact_against_the_g711_tables() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, codec="PCMU"))
        h.engine.configure(b, params(pb, codec="PCMA"))
        h.engine.bridge(a, b)
        every = bytes(range(256))
        pa.sendto(rtp(1, pt=0, payload=every, marker=True), h.to(a))
        data, _ = await recv(pb)
        assert data[1] == 0x80 | 8  # marker kept, PT 0 -> 8
        expected = ALAW_ENCODE[ULAW_DECODE[np.arange(256)].view(np.uint16)].tobytes()
        assert data[12:] == expected
        pb.sendto(rtp(2, pt=8, payload=every), h.to(b))
        data, _ = await recv(pa)
        assert data[1] == 0
        assert data[12:] == ULAW_ENCODE[ALAW_DECODE[np.arange(256)].view(np.uint16)].tobytes()
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_we_do_not_send_to_a_recvonly_leg_but_count_what_arrives() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        # recvonly from our side: B's phone holds us (it sent a=sendonly)
        h.engine.configure(b, params(pb, direction=StreamDirection.RECVONLY))
        h.engine.bridge(a, b)
        for seq in range(3):
            pa.sendto(rtp(seq), h.to(a))
        pb.sendto(rtp(50, ssrc=0x9999), h.to(b))
        assert (await recv(pa))[0] == rtp(50, ssrc=0x9999)  # its phone still sends to us
        assert await nothing_within(pb, 0.2)
        h.engine.configure(b, params(pb))  # resumed: a re-INVITE back to sendrecv
        pa.sendto(rtp(3), h.to(a))
        assert (await recv(pb))[0] == rtp(3)
        report = h.engine.close(a)
        assert report.packets_received == 4
        assert h.engine.close(b).packets_sent == 1
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_reinvite_moves_the_stream_and_changes_the_codec() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb, pb2 = phone(), phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        pb.sendto(rtp(1, ssrc=0x9999), h.to(b))  # B latched to pb
        assert (await recv(pa))[0] == rtp(1, ssrc=0x9999)
        h.engine.configure(b, params(pb2, codec="PCMA"))  # B moved (new c=/m=) and is PCMA
        pa.sendto(rtp(2, payload=bytes(160)), h.to(a))
        data, _ = await recv(pb2)
        silence = ULAW_DECODE[np.zeros(160, dtype=np.uint8)]
        assert data[1] == 8 and data[12:] == ALAW_ENCODE[silence.view(np.uint16)].tobytes()
        assert await nothing_within(pb, 0.1)
        await h.close()
        for sock in (pa, pb, pb2):
            sock.close()

    run(scenario)


def test_a_leg_latches_before_it_is_configured_and_keeps_the_source() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, nat_b, sdp_b = phone(), phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.bridge(a, b)  # B's answer is not in yet
        nat_b.sendto(rtp(1, ssrc=0x9999), h.to(b))
        assert (await recv(pa))[0] == rtp(1, ssrc=0x9999)
        h.engine.configure(b, params(sdp_b))  # SDP names another address (NAT)
        pa.sendto(rtp(1), h.to(a))
        assert (await recv(nat_b))[0] == rtp(1)  # symmetric RTP: the source wins
        assert await nothing_within(sdp_b, 0.1)
        await h.close()
        for sock in (pa, nat_b, sdp_b):
            sock.close()

    run(scenario)


def test_rtcp_passes_through_and_the_phones_report_reaches_the_quality_report() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb, ca, cb = phone(), phone(), phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, rtcp=ca))
        h.engine.configure(b, params(pb, rtcp=cb))
        h.engine.bridge(a, b)
        block = ReportBlock(0x9999, fraction_lost=64, cumulative_lost=3, highest_seq=10, jitter=80)
        report = bytes(ReceiverReport(0x1234, (block,)))
        ca.sendto(report, h.to_rtcp(a))
        assert await recv(cb) == (report, h.to_rtcp(b))
        ca.sendto(b"\x80\xc9\x00", h.to_rtcp(a))  # garbage: passed on, not understood
        assert (await recv(cb))[0] == b"\x80\xc9\x00"
        quality = h.engine.close(a)
        assert quality.remote_loss_fraction == 0.25  # 64 / 256
        assert quality.remote_jitter_ms == 10.0  # 80 timestamp units at 8 kHz
        assert h.engine.close(b).remote_loss_fraction is None
        await h.close()
        for sock in (pa, pb, ca, cb):
            sock.close()

    run(scenario)


def test_quality_report_counts_loss_and_jitter_of_what_the_phone_sent() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        for seq in range(10):
            if seq != 5:  # lost on the way
                pa.sendto(rtp(seq), h.to(a))
                await recv(pb)
        report = h.engine.close(a)
        assert (report.packets_received, report.packets_lost) == (9, 1)
        assert report.jitter_ms >= 0.0
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_closing_one_leg_leaves_the_other_counting() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        h.engine.close(b)
        pa.sendto(rtp(1), h.to(a))
        pa.sendto(rtp(2), h.to(a))
        await asyncio.sleep(0.05)
        assert drain(pb) == 0
        assert h.engine.close(a).packets_received == 2
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_wildcard_bind_names_the_address_that_routes_to_the_phone() -> None:
    async def scenario() -> None:
        h = Harness(bind_host="0.0.0.0")
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", "127.0.0.1")
        assert a.host == "127.0.0.1" and b.host == "127.0.0.1"
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        pa.sendto(rtp(1), (a.host, a.port))
        assert (await recv(pb))[0] == rtp(1)
        await h.close()
        pa.close()
        pb.close()

    run(scenario)
