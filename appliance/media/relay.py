"""Anchored media: an RTP/RTCP socket pair per call leg and a relay joining two legs.

Packets arriving on leg A's RTP socket leave leg B's RTP socket towards B's peer, and
the other way round; RTCP is passed through between the legs' RTCP sockets (RFC 3550
§6). Payloads are relayed undecoded (STYLE §2.8); when one leg speaks PCMU and the
other PCMA, the payload bytes are translated with the G.711 byte tables and the
payload type bits of byte 1 rewritten, the rest of the header kept (RFC 3550 §5.1).

Symmetric RTP (RFC 4961 §4) with latching: a leg sends to the address its SDP gave
until its peer's first packet arrives, then to that packet's source. It moves to a
new source only when that source sends ``confirm`` packets in a row while the latched
one has been silent for ``silence`` seconds, so a lone spoofed packet cannot steal the
stream. Packets from any other source are dropped and counted.

Every valid RTP packet feeds a ``ReceiverStats`` (RFC 3550 §A.1, §A.3, §A.8) from
``peek_header``: that costs about 1 us per packet on the CI machine, so it is not
sampled.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from appliance.dsp.g711 import ALAW_TO_ULAW, ULAW_TO_ALAW, Codec
from appliance.media.ports import PortPool
from appliance.rtp.packet import HEADER_SIZE, RtpError, peek_header
from appliance.rtp.stats import ReceiverStats

log = logging.getLogger(__name__)

Address = tuple[str, int]

BIND_ATTEMPTS: Final = 16  # ports of the range taken by other programs are skipped

_TRANSCODE: Final[dict[tuple[Codec, Codec], bytes]] = {
    (Codec.PCMU, Codec.PCMA): ULAW_TO_ALAW,
    (Codec.PCMA, Codec.PCMU): ALAW_TO_ULAW,
}


@dataclass(frozen=True, slots=True)
class LatchConfig:
    """When a new source may take over a latched stream."""

    confirm: int = 3  # packets in a row from the new source
    silence: float = 0.5  # seconds the latched source must have been quiet


class Latch:
    """Which remote address a socket sends to: the SDP one, then the latched source."""

    def __init__(self, remote: Address | None, config: LatchConfig) -> None:
        self.target = remote
        self.latched = False
        self.config = config
        self._last_seen = 0.0
        self._candidate: Address | None = None
        self._candidate_count = 0

    def accept(self, source: Address, now: float) -> bool:
        """True when a packet from ``source`` belongs to the stream (and is relayed)."""
        if source == self.target and self.latched:
            self._last_seen = now
            self._candidate = None
            return True
        if not self.latched:  # comedia: the first packet decides, wherever SDP pointed
            self.target = source
            self.latched = True
            self._last_seen = now
            return True
        if source != self._candidate:
            self._candidate = source
            self._candidate_count = 0
        self._candidate_count += 1
        if (
            self._candidate_count >= self.config.confirm
            and now - self._last_seen >= self.config.silence
        ):
            log.info("re-latched from %s to %s", self.target, source)
            self.target = source
            self._last_seen = now
            self._candidate = None
            return True
        return False


class _Socket(asyncio.DatagramProtocol):
    """One UDP socket; hands every datagram to ``receive`` (rebound by the relay)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.receive: Callable[[bytes, Address], None] = _drop
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a UDP endpoint

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.receive(data, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: keep relaying the other way
        log.debug("RTP socket error: %s", exc)


def _drop(data: bytes, addr: Address) -> None:
    return None


class RtpEndpoint:
    """An RTP socket on an even port and an RTCP socket on the next, from a pool."""

    def __init__(self, pool: PortPool, host: str, port: int, rtp: _Socket, rtcp: _Socket) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.rtp = rtp
        self.rtcp = rtcp
        self.closed = False

    @property
    def rtcp_port(self) -> int:
        return self.port + 1

    @classmethod
    async def open(cls, pool: PortPool, host: str) -> RtpEndpoint:
        """Bind a pair on ``host``; ports another program holds are skipped."""
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for _ in range(min(BIND_ATTEMPTS, pool.capacity)):
            port = pool.allocate()
            try:
                _, rtp = await loop.create_datagram_endpoint(_Socket, local_addr=(host, port))
            except OSError as exc:
                pool.release(port)
                error = exc
                continue
            try:
                _, rtcp = await loop.create_datagram_endpoint(_Socket, local_addr=(host, port + 1))
            except OSError as exc:
                if rtp.transport is not None:
                    rtp.transport.close()
                pool.release(port)
                error = exc
                continue
            for proto in (rtp, rtcp):
                if proto.transport is not None:
                    sock = proto.transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            return cls(pool, host, port, rtp, rtcp)
        raise OSError(f"no bindable RTP port pair on {host}: {error}")

    def close(self) -> None:
        """Close both sockets and give the port back to the pool (once)."""
        if self.closed:
            return
        self.closed = True
        for proto in (self.rtp, self.rtcp):
            proto.receive = _drop
            if proto.transport is not None:
                proto.transport.close()
        self.pool.release(self.port)

    async def wait_closed(self) -> None:
        """Until both sockets are really closed (asyncio closes them a loop turn later)."""
        await asyncio.gather(self.rtp.lost, self.rtcp.lost)


class RelayLeg:
    """One side of an anchored call: its endpoint, codec, peer and counters."""

    def __init__(
        self,
        endpoint: RtpEndpoint,
        codec: Codec,
        remote: Address | None,
        remote_rtcp: Address | None = None,
        latch: LatchConfig | None = None,
    ) -> None:
        config = latch or LatchConfig()
        if remote_rtcp is None and remote is not None:
            remote_rtcp = (remote[0], remote[1] + 1)  # RFC 3550 §11 unless SDP says a=rtcp
        self.endpoint = endpoint
        self.codec = codec
        self.rtp_latch = Latch(remote, config)
        self.rtcp_latch = Latch(remote_rtcp, config)
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        self.dropped = 0  # from a source that is not (yet) the latched one
        self.malformed = 0  # not RTP version 2, or shorter than its header
        self.rtcp_in = 0
        self.rtcp_out = 0
        self.last_received: float | None = None  # loop time, for "RTP stopped"
        self.stats: ReceiverStats | None = None  # the peer's current SSRC

    @property
    def remote(self) -> Address | None:
        return self.rtp_latch.target


class MediaRelay:
    """Joins two legs: RTP and RTCP from each goes out of the other's sockets."""

    def __init__(self, a: RelayLeg, b: RelayLeg) -> None:
        if a.codec is not b.codec and (a.codec, b.codec) not in _TRANSCODE:
            raise ValueError(f"cannot relay {a.codec.name} to {b.codec.name}")
        self.a = a
        self.b = b
        loop = asyncio.get_running_loop()
        a.endpoint.rtp.receive = self._rtp_path(loop, a, b)
        b.endpoint.rtp.receive = self._rtp_path(loop, b, a)
        a.endpoint.rtcp.receive = self._rtcp_path(loop, a, b)
        b.endpoint.rtcp.receive = self._rtcp_path(loop, b, a)

    @property
    def transcoding(self) -> bool:
        return self.a.codec is not self.b.codec

    def last_received(self) -> float | None:
        """The later of both legs' last RTP packet, for the "RTP stopped" timeout."""
        times = [t for t in (self.a.last_received, self.b.last_received) if t is not None]
        return max(times) if times else None

    def close(self) -> None:
        self.a.endpoint.close()
        self.b.endpoint.close()

    async def wait_closed(self) -> None:
        await self.a.endpoint.wait_closed()
        await self.b.endpoint.wait_closed()

    @staticmethod
    def _rtp_path(
        loop: asyncio.AbstractEventLoop, src: RelayLeg, dst: RelayLeg
    ) -> Callable[[bytes, Address], None]:
        latch = src.rtp_latch
        out_latch = dst.rtp_latch
        out = dst.endpoint.rtp
        in_pt = src.codec.payload_type
        out_pt = dst.codec.payload_type
        table = _TRANSCODE.get((src.codec, dst.codec))
        clock_rate = src.codec.clock_rate

        def receive(data: bytes, addr: Address) -> None:
            now = loop.time()
            try:  # the one place where RTP bytes enter (STYLE §2.5)
                peek = peek_header(data)
            except RtpError:
                src.malformed += 1
                return
            if not latch.accept(addr, now):
                src.dropped += 1
                return
            src.packets_in += 1
            src.bytes_in += len(data)
            src.last_received = now
            stats = src.stats
            if stats is None or stats.ssrc != peek.ssrc:
                stats = src.stats = ReceiverStats(peek.ssrc, clock_rate)
            stats.update(peek.sequence, peek.timestamp, now)
            target = out_latch.target
            if target is None or out.transport is None:
                return  # the other side has neither SDP nor a latched source yet
            if table is not None and peek.payload_type == in_pt:
                # other payload types (RFC 4733 events, comfort noise) pass as they are
                out.transport.sendto(_transcode(data, table, out_pt), target)
            else:
                out.transport.sendto(data, target)
            dst.packets_out += 1
            dst.bytes_out += len(data)

        return receive

    @staticmethod
    def _rtcp_path(
        loop: asyncio.AbstractEventLoop, src: RelayLeg, dst: RelayLeg
    ) -> Callable[[bytes, Address], None]:
        latch = src.rtcp_latch
        out_latch = dst.rtcp_latch
        out = dst.endpoint.rtcp

        def receive(data: bytes, addr: Address) -> None:
            if not latch.accept(addr, loop.time()):
                src.dropped += 1
                return
            src.rtcp_in += 1
            target = out_latch.target
            if target is None or out.transport is None:
                return
            out.transport.sendto(data, target)
            dst.rtcp_out += 1

        return receive


def _transcode(data: bytes, table: bytes, payload_type: int) -> bytes | bytearray:
    """Translate the payload of a validated RTP packet and set its payload type.

    The header (CSRCs, extension) and any padding (RFC 3550 §5.1) are copied as they
    are; only byte 1's low 7 bits change, the marker bit is kept.
    """
    b0 = data[0]
    start = HEADER_SIZE + 4 * (b0 & 0x0F)
    if b0 & 0x10 and start + 4 <= len(data):  # RFC 3550 §5.3.1 extension length in words
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data)
    if b0 & 0x20 and end > start:
        end -= data[-1]
    if start > end:  # inconsistent lengths: pass the bytes through untouched
        return data
    out = bytearray(data)
    out[1] = data[1] & 0x80 | payload_type
    out[start:end] = data[start:end].translate(table)
    return out
