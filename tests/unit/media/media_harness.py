"""Shared pieces of the media engine tests: fake phones on loopback UDP sockets, a
port pool from a free range, event collection, and a runner per event loop."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Final

import uvloop

from appliance.media.engine import EngineConfig, UdpMediaEngine
from appliance.media.ports import PortPool
from appliance.pbx.media_port import MediaEvent, MediaLeg, StreamDirection, StreamParams
from appliance.rtp.packet import RtpPacket

HOST: Final = "127.0.0.1"
TIMEOUT: Final = 5.0
LOOPS: Final = ("asyncio", "uvloop")
Address = tuple[str, int]


def run(scenario: Callable[[], Awaitable[None]], loop: str = "asyncio") -> None:
    """Run ``scenario`` on a fresh loop of the named kind, bounded in time."""

    async def bounded() -> None:
        await asyncio.wait_for(scenario(), 4 * TIMEOUT)

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(bounded())


def free_pool(pairs: int = 64) -> PortPool:
    """A range starting at a port the OS just found free; taken ports are skipped."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((HOST, 0))
    low = probe.getsockname()[1] & ~1
    probe.close()
    low = min(low, 65535 - 2 * pairs)
    return PortPool(low, low + 2 * pairs - 1)


def phone() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def addr(sock: socket.socket) -> Address:
    host, port = sock.getsockname()
    return (host, port)


def rtp(
    seq: int,
    pt: int = 0,
    payload: bytes | None = None,
    marker: bool = False,
    ssrc: int = 0x1234,
    ts: int | None = None,
) -> bytes:
    body = payload if payload is not None else bytes((seq * 7 + i) & 0xFF for i in range(160))
    timestamp = seq * 160 if ts is None else ts
    header = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, timestamp, ssrc)
    return header + body


async def recv(sock: socket.socket, timeout: float = TIMEOUT) -> tuple[bytes, Address]:
    """The next datagram on ``sock`` (uvloop has no ``sock_recvfrom``: a reader instead)."""
    try:
        data, source = sock.recvfrom(2048)
        return data, (source[0], source[1])
    except BlockingIOError:
        pass
    loop = asyncio.get_running_loop()
    got: asyncio.Future[tuple[bytes, Address]] = loop.create_future()

    def readable() -> None:
        try:
            data, source = sock.recvfrom(2048)
        except BlockingIOError:
            return
        loop.remove_reader(sock.fileno())  # nothing after this one is consumed here
        if not got.done():
            got.set_result((data, (source[0], source[1])))

    loop.add_reader(sock.fileno(), readable)
    try:
        return await asyncio.wait_for(got, timeout)
    finally:
        loop.remove_reader(sock.fileno())


async def recv_packet(sock: socket.socket, timeout: float = TIMEOUT) -> RtpPacket:
    data, _ = await recv(sock, timeout)
    return RtpPacket.parse(data)


async def nothing_within(sock: socket.socket, seconds: float) -> bool:
    """True when no datagram arrives for ``seconds``."""
    try:
        await recv(sock, seconds)
    except TimeoutError:
        return True
    return False


def drain(sock: socket.socket) -> int:
    """Discard what is queued on ``sock``; how many datagrams that was."""
    count = 0
    while True:
        try:
            sock.recv(2048)
        except BlockingIOError:
            return count
        count += 1


def params(
    remote: socket.socket | Address | None,
    codec: str = "PCMU",
    event_pt: int | None = 101,
    direction: StreamDirection = StreamDirection.SENDRECV,
    rtcp: socket.socket | None = None,
) -> StreamParams:
    host, port = (
        ("0.0.0.0", 9)
        if remote is None
        else (addr(remote) if isinstance(remote, socket.socket) else remote)
    )
    return StreamParams(
        remote_host=host,
        remote_port=port,
        remote_rtcp_port=None if rtcp is None else addr(rtcp)[1],
        codec=codec,
        payload_type=0 if codec == "PCMU" else 8,
        telephone_event_pt=event_pt,
        direction=direction,
    )


class Harness:
    """An engine on the running loop, recording the events it reports."""

    def __init__(
        self,
        pool: PortPool | None = None,
        bind_host: str = HOST,
        rtp_timeout: float = 30.0,
        config: EngineConfig | None = None,
        country: str = "US",
    ) -> None:
        self.pool = pool or free_pool()
        self.events: list[MediaEvent] = []
        self._arrived = asyncio.Event()
        self.engine = UdpMediaEngine(
            asyncio.get_running_loop(),
            self.pool,
            bind_host,
            self._on_event,
            country=country,
            rtp_timeout=rtp_timeout,
            config=config,
        )

    def _on_event(self, event: MediaEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def event(self, timeout: float = TIMEOUT) -> MediaEvent:
        """The oldest event not yet taken, waiting for one if need be."""
        async with asyncio.timeout(timeout):
            while not self.events:
                self._arrived.clear()
                await self._arrived.wait()
        return self.events.pop(0)

    def to(self, leg: MediaLeg) -> Address:
        return (HOST, leg.port)

    def to_rtcp(self, leg: MediaLeg) -> Address:
        return (HOST, leg.port + 1)

    async def close(self) -> None:
        self.engine.close_all()
        await self.engine.wait_closed()
