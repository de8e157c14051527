"""UdpMediaEngine leg life cycle over real loopback UDP: ports from and back to the
pool, MediaUnavailable, double close, RTP timeout."""

from __future__ import annotations

import asyncio
import socket

import pytest
from media_harness import HOST, Harness, free_pool, params, phone, rtp, run

from appliance.media.engine import EngineConfig
from appliance.pbx.media_port import MediaUnavailable, RtpStopped, StreamDirection

pytestmark = pytest.mark.timeout(30)


def test_ports_go_back_to_the_pool_and_the_sockets_close() -> None:
    async def scenario() -> None:
        pool = free_pool(pairs=2)
        h = Harness(pool)
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        assert pool.in_use == 2
        with pytest.raises(MediaUnavailable):
            h.engine.open_leg("c", HOST)
        report = h.engine.close(a)
        assert pool.in_use == 1
        assert h.engine.close(a) is report  # double close is harmless
        h.engine.close(b)
        assert pool.in_use == 0 and h.engine.legs == 0
        await h.engine.wait_closed()
        for port in (a.port, a.port + 1, b.port, b.port + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((HOST, port))  # free again
            sock.close()
        c = h.engine.open_leg("c", HOST)
        assert c.port in (a.port, b.port)
        await h.close()

    run(scenario)


def test_a_port_taken_by_another_program_is_skipped() -> None:
    async def scenario() -> None:
        pool = free_pool(pairs=4)
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        squatter.bind((HOST, pool.low + (pool.low & 1) + 1))  # the first pair's RTCP port
        h = Harness(pool)
        a = h.engine.open_leg("a", HOST)
        assert a.port == pool.low + (pool.low & 1) + 2
        assert pool.in_use == 1
        await h.close()
        squatter.close()

    run(scenario)


def test_a_pool_whose_ports_are_all_taken_means_media_unavailable() -> None:
    async def scenario() -> None:
        pool = free_pool(pairs=1)
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        squatter.bind((HOST, pool.low + (pool.low & 1)))
        h = Harness(pool)
        with pytest.raises(MediaUnavailable):
            h.engine.open_leg("a", HOST)
        assert pool.in_use == 0
        await h.close()
        squatter.close()

    run(scenario)


def test_closing_in_the_same_turn_as_opening_still_closes_the_sockets() -> None:
    async def scenario() -> None:
        h = Harness()
        a = h.engine.open_leg("a", HOST)
        h.engine.close(a)  # the attach task has not run yet
        await h.engine.wait_closed()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, a.port))
        sock.close()
        await h.close()

    run(scenario)


def test_legs_are_known_by_identity() -> None:
    async def scenario() -> None:
        h = Harness()
        a = h.engine.open_leg("a", HOST)
        with pytest.raises(ValueError, match="already open"):
            h.engine.open_leg("a", HOST)
        h.engine.close(a)
        with pytest.raises(ValueError, match="not open"):
            h.engine.play_tone(a, "dial")
        await h.close()

    run(scenario)


def test_rtp_timeout_fires_once_for_a_silent_leg_that_should_send() -> None:
    async def scenario() -> None:
        config = EngineConfig(sweep_interval=0.05)
        h = Harness(rtp_timeout=0.3, config=config)
        phones = {name: phone() for name in "abcd"}
        legs = {name: h.engine.open_leg(name, HOST) for name in "abcd"}
        for name, leg in legs.items():
            # c is sendonly from our side: its phone holds the call and sends nothing
            direction = StreamDirection.SENDONLY if name == "c" else StreamDirection.SENDRECV
            h.engine.configure(leg, params(phones[name], direction=direction))
        h.engine.bridge(legs["a"], legs["b"])
        h.engine.bridge(legs["c"], legs["d"])
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.0
        seq = 0
        while loop.time() < end:  # b and d talk, a and c are silent
            for name in "bd":
                phones[name].sendto(rtp(seq), h.to(legs[name]))
            seq += 1
            await asyncio.sleep(0.02)
        assert len(h.events) == 1
        event = h.events[0]
        assert isinstance(event, RtpStopped) and event.leg_id == "a"
        assert 0.3 <= event.silent_for < 0.6
        await h.close()
        for sock in phones.values():
            sock.close()

    run(scenario)


def test_rtp_timeout_counts_from_the_last_packet_and_rearms_after_traffic() -> None:
    async def scenario() -> None:
        h = Harness(rtp_timeout=0.2, config=EngineConfig(sweep_interval=0.05))
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.configure(b, params(pb, direction=StreamDirection.SENDONLY))
        h.engine.bridge(a, b)
        pa.sendto(rtp(1), h.to(a))
        first = await h.event()
        assert isinstance(first, RtpStopped) and first.leg_id == "a"
        pa.sendto(rtp(2), h.to(a))  # it came back, then fell silent again
        second = await h.event()
        assert isinstance(second, RtpStopped) and second.leg_id == "a"
        await h.close()
        pa.close()
        pb.close()

    run(scenario)
