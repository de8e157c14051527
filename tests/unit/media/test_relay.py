"""MediaRelay over real loopback UDP: two fake phones talk through the relay."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

from appliance.dsp.g711 import Codec, alaw_to_ulaw, ulaw_to_alaw
from appliance.media.ports import PortPool
from appliance.media.relay import MediaRelay, RelayLeg, RtpEndpoint

HOST = "127.0.0.1"
TIMEOUT = 5.0
Address = tuple[str, int]


def rtp(seq: int, pt: int = 0, marker: bool = False, ssrc: int = 0x1234) -> bytes:
    payload = bytes((seq * 7 + i) & 0xFF for i in range(160))
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, seq * 160, ssrc) + payload


def phone() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def addr(sock: socket.socket) -> Address:
    host, port = sock.getsockname()
    return (host, port)


def free_pool(pairs: int = 64) -> PortPool:
    """A range starting at a port the OS just found free; taken ports are skipped."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((HOST, 0))
    low = probe.getsockname()[1] & ~1
    probe.close()
    low = min(low, 65535 - 2 * pairs)
    return PortPool(low, low + 2 * pairs - 1)


async def recv(sock: socket.socket) -> tuple[bytes, Address]:
    loop = asyncio.get_running_loop()
    data, source = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), TIMEOUT)
    return data, (source[0], source[1])


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), 4 * TIMEOUT)

    asyncio.run(bounded())


async def two_legs(
    pool: PortPool,
    remote_a: Address | None,
    remote_b: Address | None,
    codec_a: Codec = Codec.PCMU,
    codec_b: Codec = Codec.PCMU,
) -> MediaRelay:
    a = RelayLeg(await RtpEndpoint.open(pool, HOST), codec_a, remote_a)
    b = RelayLeg(await RtpEndpoint.open(pool, HOST), codec_b, remote_b)
    return MediaRelay(a, b)


def test_relay_is_byte_identical_both_ways_and_counts() -> None:
    async def scenario() -> None:
        pool = free_pool()
        pa, pb = phone(), phone()
        relay = await two_legs(pool, addr(pa), addr(pb))
        to_a = (HOST, relay.a.endpoint.port)
        to_b = (HOST, relay.b.endpoint.port)
        sent = [rtp(seq) for seq in range(10) if seq != 5]  # seq 5 lost on the way in
        for packet in sent:
            pa.sendto(packet, to_a)
            data, source = await recv(pb)
            assert data == packet
            assert source == to_b  # symmetric RTP: B hears us from its own port
        back = rtp(100, ssrc=0x9999)
        pb.sendto(back, to_b)
        assert (await recv(pa)) == (back, to_a)
        a, b = relay.a, relay.b
        assert (a.packets_in, a.bytes_in) == (9, 9 * 172)
        assert (b.packets_out, b.bytes_out) == (9, 9 * 172)
        assert (b.packets_in, a.packets_out) == (1, 1)
        assert a.stats is not None and a.stats.ssrc == 0x1234
        assert (a.stats.expected, a.stats.received, a.stats.lost) == (9, 8, 1)  # 1st: probation
        assert a.last_received is not None and relay.last_received() == b.last_received
        relay.close()
        pa.close()
        pb.close()

    run(scenario)


def test_pcmu_to_pcma_transcodes_payload_and_rewrites_pt() -> None:
    async def scenario() -> None:
        pool = free_pool()
        pa, pb = phone(), phone()
        relay = await two_legs(pool, addr(pa), addr(pb), Codec.PCMU, Codec.PCMA)
        assert relay.transcoding
        packet = rtp(1, pt=0, marker=True)
        pa.sendto(packet, (HOST, relay.a.endpoint.port))
        data, _ = await recv(pb)
        assert data[0] == packet[0] and data[1] == 0x80 | 8  # marker kept, PT 0 -> 8
        assert data[2:12] == packet[2:12]
        assert data[12:] == ulaw_to_alaw(packet[12:])
        event = rtp(2, pt=101)  # RFC 4733 event: not audio, passes untouched
        pa.sendto(event, (HOST, relay.a.endpoint.port))
        assert (await recv(pb))[0] == event
        reply = rtp(7, pt=8)
        pb.sendto(reply, (HOST, relay.b.endpoint.port))
        data, _ = await recv(pa)
        assert data[1] == 0 and data[12:] == alaw_to_ulaw(reply[12:])
        relay.close()
        pa.close()
        pb.close()

    run(scenario)


def test_transcode_keeps_csrcs_and_padding() -> None:
    async def scenario() -> None:
        pool = free_pool()
        pa, pb = phone(), phone()
        relay = await two_legs(pool, addr(pa), addr(pb), Codec.PCMA, Codec.PCMU)
        header = struct.pack("!BBHIII", 0xA1, 8, 1, 160, 5, 0xCAFE)  # P=1, CC=1
        payload = bytes(range(40))
        padding = b"\x00\x00\x00\x04"
        pa.sendto(header + payload + padding, (HOST, relay.a.endpoint.port))
        data, _ = await recv(pb)
        assert data == bytes([0xA1, 0]) + header[2:] + alaw_to_ulaw(payload) + padding
        relay.close()
        pa.close()
        pb.close()

    run(scenario)


def test_latches_to_nated_source_and_ignores_a_spoofed_packet() -> None:
    async def scenario() -> None:
        pool = free_pool()
        sdp_a, nat_a, pb, spoof = phone(), phone(), phone(), phone()
        relay = await two_legs(pool, addr(sdp_a), addr(pb))
        to_a = (HOST, relay.a.endpoint.port)
        to_b = (HOST, relay.b.endpoint.port)
        pb.sendto(rtp(1), to_b)  # before A has sent anything: the SDP address is used
        assert (await recv(sdp_a))[0] == rtp(1)
        nat_a.sendto(rtp(1), to_a)  # A's first packet comes from behind a NAT
        assert (await recv(pb))[0] == rtp(1)
        assert relay.a.remote == addr(nat_a)
        pb.sendto(rtp(2), to_b)
        assert (await recv(nat_a))[0] == rtp(2)  # latched
        spoof.sendto(rtp(999, ssrc=666), to_a)  # one stray packet from a third address
        nat_a.sendto(rtp(2), to_a)
        assert (await recv(pb))[0] == rtp(2)  # the spoofed one was not relayed
        assert relay.a.dropped == 1
        assert relay.a.remote == addr(nat_a)
        pb.sendto(rtp(3), to_b)
        assert (await recv(nat_a))[0] == rtp(3)
        relay.close()
        for sock in (sdp_a, nat_a, pb, spoof):
            sock.close()

    run(scenario)


def test_rtcp_passes_through_and_malformed_rtp_is_counted() -> None:
    async def scenario() -> None:
        pool = free_pool()
        pa, pb = phone(), phone()
        rtcp_a, rtcp_b = phone(), phone()
        a = RelayLeg(await RtpEndpoint.open(pool, HOST), Codec.PCMU, addr(pa), addr(rtcp_a))
        b = RelayLeg(await RtpEndpoint.open(pool, HOST), Codec.PCMU, addr(pb), addr(rtcp_b))
        relay = MediaRelay(a, b)
        report = bytes([0x81, 201, 0, 7]) + bytes(28)  # an RR with one block
        rtcp_a.sendto(report, (HOST, a.endpoint.rtcp_port))
        assert (await recv(rtcp_b)) == (report, (HOST, b.endpoint.rtcp_port))
        rtcp_b.sendto(report, (HOST, b.endpoint.rtcp_port))
        assert (await recv(rtcp_a))[0] == report
        assert (a.rtcp_in, b.rtcp_out, b.rtcp_in, a.rtcp_out) == (1, 1, 1, 1)
        pa.sendto(b"\x00" * 20, (HOST, a.endpoint.port))  # version 0
        pa.sendto(b"\x80\x00", (HOST, a.endpoint.port))  # short
        pa.sendto(rtp(1), (HOST, a.endpoint.port))
        assert (await recv(pb))[0] == rtp(1)
        assert a.malformed == 2 and a.packets_in == 1
        relay.close()
        for sock in (pa, pb, rtcp_a, rtcp_b):
            sock.close()

    run(scenario)


def test_close_releases_ports_and_sockets() -> None:
    async def scenario() -> None:
        pool = free_pool()
        relay = await two_legs(pool, None, None)
        ports = [relay.a.endpoint.port, relay.b.endpoint.port]
        assert pool.in_use == 2
        assert all(p % 2 == 0 for p in ports)
        relay.close()
        relay.close()  # idempotent: the pool is not asked twice
        assert pool.in_use == 0
        await relay.wait_closed()
        for port in ports:
            for p in (port, port + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((HOST, p))  # free again
                sock.close()

    run(scenario)


def test_no_remote_yet_drops_quietly() -> None:
    async def scenario() -> None:
        pool = free_pool()
        pa, pb = phone(), phone()
        relay = await two_legs(pool, None, None)
        seen = asyncio.Event()
        inner = relay.a.endpoint.rtp.receive

        def spy(data: bytes, source: Address) -> None:
            inner(data, source)
            seen.set()

        relay.a.endpoint.rtp.receive = spy
        pa.sendto(rtp(1), (HOST, relay.a.endpoint.port))  # B's address is still unknown
        await asyncio.wait_for(seen.wait(), TIMEOUT)
        pb.sendto(rtp(1), (HOST, relay.b.endpoint.port))  # latches B
        assert (await recv(pa))[0] == rtp(1)  # A latched on its first packet
        assert relay.a.packets_in == 1 and relay.b.packets_out == 0
        relay.close()
        pa.close()
        pb.close()

    run(scenario)
