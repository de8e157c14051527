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

What the media engine adds stays off the audio fast path. RFC 4733 telephone-events
(RFC 4733 §2.1: their own payload type) are told apart from audio by payload type
and mapped to the destination leg's event payload type, or dropped when it has none
(the engine then reports the digit for SIP INFO). Taps on a leg see what its phone
sends (audio for in-band DTMF, events, RTCP); a leg with none costs nothing extra.
``mute`` on a leg stops relaying towards it (a tone owns its stream, or its SDP
direction forbids sending, RFC 3264 §6.1). A leg that is not bridged gets a receive
path without a destination, so it latches, counts and taps all the same.

``rewrite`` on a leg (set by the engine once it has generated media on the leg, or
bridged it to a second source) puts what is relayed towards it into that leg's own
RTP stream (``outbound.OutboundStream.relayed``: SSRC, sequence, timestamp, marker),
in the same copy as the transcoding; the source's RTCP, which describes an SSRC that
phone no longer sees, is then not passed on (our own SRs describe the stream). A leg
without it keeps the fast path: its packets leave exactly as they came.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from appliance.dsp.g711 import ALAW_TO_ULAW, ULAW_TO_ALAW, Codec
from appliance.media.outbound import OutboundStream
from appliance.media.ports import PortPool
from appliance.rtp.packet import HEADER_SIZE, HeaderPeek, RtpError, peek_header
from appliance.rtp.stats import ReceiverStats

log = logging.getLogger(__name__)

Address = tuple[str, int]

BIND_ATTEMPTS: Final = 16  # ports of the range taken by other programs are skipped
RCVBUF: Final = 1 << 18  # 256 KiB: a loop stall of ~1 s at 400 calls does not drop

_TRANSCODE: Final[dict[tuple[Codec, Codec], bytes]] = {
    (Codec.PCMU, Codec.PCMA): ULAW_TO_ALAW,
    (Codec.PCMA, Codec.PCMU): ALAW_TO_ULAW,
}
# Same codec under different payload type numbers: the transcoding path with a table
# that changes no byte, so the common case pays for no extra test.
_IDENTITY: Final = bytes(range(256))
NO_PT: Final = -1  # "no such payload type": never equal to a 7-bit one


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

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.receive: Callable[[bytes, Address], None] = _drop
        self.lost: asyncio.Future[None] = (loop or asyncio.get_running_loop()).create_future()
        self.closed = False
        self._sock: socket.socket | None = None  # bound but not yet attached to the loop
        self.attaching: asyncio.Task[None] | None = None  # the loop keeps only weak refs

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a UDP endpoint
        self._sock = None
        if self.closed:  # closed while the socket was being attached
            self.transport.close()

    async def attach(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """Hand a bound socket to the loop; datagrams wait in the kernel until then."""
        self._sock = sock
        try:
            await loop.create_datagram_endpoint(lambda: self, sock=sock)
        except OSError as exc:
            log.warning("cannot attach RTP socket: %s", exc)
            sock.close()
            self.connection_lost(exc)

    def send(self, data: bytes, addr: Address) -> bool:
        """Send through the transport, or the bare socket before it is attached."""
        if self.transport is not None:
            self.transport.sendto(data, addr)
            return True
        if self._sock is None or self.closed:
            return False
        try:
            self._sock.sendto(data, addr)
        except OSError:  # full buffer or unreachable: a lost datagram, as UDP may lose
            return False
        return True

    def close(self) -> None:
        self.closed = True
        self.receive = _drop
        if self.transport is not None:
            self.transport.close()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.receive(data, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        # Drop the references that make cycles (transport <-> protocol, the relay's
        # closures): a call's objects are then freed by reference counting when it
        # ends, not left for the garbage collector, whose pauses under call load
        # made phones retransmit.
        self.transport = None
        self.attaching = None
        self._sock = None
        self.receive = _drop
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
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            return cls(pool, host, port, rtp, rtcp)
        raise OSError(f"no bindable RTP port pair on {host}: {error}")

    @classmethod
    def bind(cls, pool: PortPool, host: str, loop: asyncio.AbstractEventLoop) -> RtpEndpoint:
        """Bind a pair on ``host`` now, without awaiting, so the port is known at once.

        The sockets are attached to the loop by a task; until it has run (the next
        loop turn) datagrams wait in the kernel's buffer. Raises ``PortsExhausted``
        when the pool is empty, ``OSError`` when no pair could be bound.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        error: OSError | None = None
        for _ in range(min(BIND_ATTEMPTS, pool.capacity)):
            port = pool.allocate()
            socks: list[socket.socket] = []
            try:
                for p in (port, port + 1):
                    sock = socket.socket(family, socket.SOCK_DGRAM)
                    socks.append(sock)
                    sock.setblocking(False)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                    sock.bind((host, p))
            except OSError as exc:  # taken by another program: try the next pair
                for sock in socks:
                    sock.close()
                pool.release(port)
                error = exc
                continue
            rtp, rtcp = _Socket(loop), _Socket(loop)
            for proto, sock in zip((rtp, rtcp), socks, strict=True):
                proto.attaching = loop.create_task(proto.attach(loop, sock))
            return cls(pool, host, port, rtp, rtcp)
        raise OSError(f"no bindable RTP port pair on {host}: {error}")

    def close(self) -> None:
        """Close both sockets and give the port back to the pool (once)."""
        if self.closed:
            return
        self.closed = True
        self.rtp.close()
        self.rtcp.close()
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
        self.payload_type = codec.payload_type  # the number SDP agreed for the codec
        self.event_pt: int | None = None  # RFC 4733 telephone-event PT, None: no events
        self.latch_config = config
        self.sdp_remote = remote
        self.sdp_rtcp = remote_rtcp
        self._sdp_seen = remote is not None
        self.rtp_latch = Latch(remote, config)
        self.rtcp_latch = Latch(remote_rtcp, config)
        # Not relayed towards this leg: a tone owns its stream, or SDP says we must not
        # send to it. Read per packet, so it may change without rebuilding the relay.
        self.mute = False
        # What this leg's phone sends, for the engine. Read when a path is built.
        self.audio_tap: Callable[[bytes, float], None] | None = None
        self.event_tap: Callable[[bytes, float], None] | None = None
        self.rtcp_tap: Callable[[bytes, float], None] | None = None
        # Relayed packets towards this leg go out in this stream (see the module
        # docstring). Read when a path is built.
        self.rewrite: OutboundStream | None = None
        self.last_header: HeaderPeek | None = None  # of the last packet its phone sent
        self.lost_before = 0  # packets lost by earlier SSRCs of the phone (RFC 3550 §A.3)
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

    def set_remote(self, remote: Address | None, remote_rtcp: Address | None = None) -> None:
        """The address from a (re)negotiated SDP.

        A leg that latched before its first SDP arrived keeps the latched source
        (symmetric RTP, RFC 4961 §4: the source is right behind a NAT, SDP may not
        be); a new address in a later SDP means the phone moved, so latching starts
        again there. Paths capture the latches: rebuild them after this.
        """
        if remote_rtcp is None and remote is not None:
            remote_rtcp = (remote[0], remote[1] + 1)  # RFC 3550 §11 unless SDP says a=rtcp
        first = not self._sdp_seen
        if not first and (remote, remote_rtcp) == (self.sdp_remote, self.sdp_rtcp):
            return
        self._sdp_seen = True
        self.sdp_remote, self.sdp_rtcp = remote, remote_rtcp
        if not (first and self.rtp_latch.latched):
            self.rtp_latch = Latch(remote, self.latch_config)
        if not (first and self.rtcp_latch.latched):
            self.rtcp_latch = Latch(remote_rtcp, self.latch_config)


class MediaRelay:
    """Joins two legs: RTP and RTCP from each goes out of the other's sockets."""

    def __init__(self, a: RelayLeg, b: RelayLeg) -> None:
        if a.codec is not b.codec and (a.codec, b.codec) not in _TRANSCODE:
            raise ValueError(f"cannot relay {a.codec.name} to {b.codec.name}")
        self.a = a
        self.b = b
        loop = asyncio.get_running_loop()
        a.endpoint.rtp.receive = rtp_path(loop, a, b)
        b.endpoint.rtp.receive = rtp_path(loop, b, a)
        a.endpoint.rtcp.receive = rtcp_path(loop, a, b)
        b.endpoint.rtcp.receive = rtcp_path(loop, b, a)

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


def rtp_path(
    loop: asyncio.AbstractEventLoop, src: RelayLeg, dst: RelayLeg | None
) -> Callable[[bytes, Address], None]:
    """The receive function of ``src``'s RTP socket: relay to ``dst``, or only account
    and tap when ``dst`` is None. Everything that is fixed per leg is bound here, so
    the per-packet work is the header peek, the latch, the counters and a few tests."""
    latch = src.rtp_latch
    in_pt = src.payload_type
    in_ev = NO_PT if src.event_pt is None else src.event_pt
    clock_rate = src.codec.clock_rate
    audio_tap = src.audio_tap
    event_tap = src.event_tap
    out: _Socket | None = None
    out_latch = latch
    out_pt = out_ev = NO_PT
    table: bytes | None = None
    rewrite: OutboundStream | None = None
    if dst is not None:
        rewrite = dst.rewrite
        out = dst.endpoint.rtp
        out_latch = dst.rtp_latch
        out_pt = dst.payload_type
        out_ev = NO_PT if dst.event_pt is None else dst.event_pt
        table = _TRANSCODE.get((src.codec, dst.codec))
        if table is None and in_pt != out_pt:
            table = _IDENTITY

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
        src.last_header = peek
        stats = src.stats
        if stats is None or stats.ssrc != peek.ssrc:
            if stats is not None:
                src.lost_before += max(stats.lost, 0)
            stats = src.stats = ReceiverStats(peek.ssrc, clock_rate)
        stats.update(peek.sequence, peek.timestamp, now)
        packet: bytes | bytearray = data  # other payload types (comfort noise) pass as they are
        pt = peek.payload_type
        if pt == in_pt:
            if audio_tap is not None:
                audio_tap(data, now)
            if table is not None:
                packet = _transcode(data, table, out_pt)
        elif pt == in_ev:
            if event_tap is not None:
                event_tap(data, now)
            if out_ev != pt:
                if out_ev == NO_PT:
                    return  # the other phone takes no events: the engine reports SIP INFO
                packet = _set_payload_type(data, out_ev)
        if out is None or dst is None or dst.mute:
            return
        target = out_latch.target
        if target is None or out.transport is None:
            return  # the other side has neither SDP nor a latched source yet
        if rewrite is not None:
            packet = _rewrite(rewrite, packet, peek, pt == in_pt, now)
        out.transport.sendto(packet, target)
        dst.packets_out += 1
        dst.bytes_out += len(packet)

    return receive


def rtcp_path(
    loop: asyncio.AbstractEventLoop, src: RelayLeg, dst: RelayLeg | None
) -> Callable[[bytes, Address], None]:
    """The receive function of ``src``'s RTCP socket: passed through to ``dst`` as it
    is (RFC 3550 §6: also when RTP is muted or one-way, RTCP keeps flowing), unless
    ``dst`` hears a rewritten stream: then we send it a stream of our own, as a mixer
    does, and a mixer passes no SR or RR through (RFC 3550 §7.3); ``src``'s reports
    describe an SSRC that phone does not see."""
    latch = src.rtcp_latch
    tap = src.rtcp_tap
    out = None if dst is None or dst.rewrite is not None else dst.endpoint.rtcp
    out_latch = latch if dst is None else dst.rtcp_latch

    def receive(data: bytes, addr: Address) -> None:
        now = loop.time()
        if not latch.accept(addr, now):
            src.dropped += 1
            return
        src.rtcp_in += 1
        if tap is not None:
            tap(data, now)
        target = out_latch.target
        if out is None or dst is None or target is None or out.transport is None:
            return
        out.transport.sendto(data, target)
        dst.rtcp_out += 1

    return receive


def _rewrite(
    stream: OutboundStream, packet: bytes | bytearray, peek: HeaderPeek, audio: bool, now: float
) -> bytearray:
    """``packet`` put into the destination leg's own stream (changed in place when it
    is already a copy)."""
    bounds = _payload_bounds(packet)
    size = 0 if bounds is None else bounds[1] - bounds[0]
    samples = size if audio else 0  # G.711: one byte per sample; events cover none
    return stream.relayed(packet, peek.ssrc, peek.timestamp, size, samples, now)


def _payload_bounds(data: bytes | bytearray) -> tuple[int, int] | None:
    """Where the payload of a validated RTP packet starts and ends: after the CSRCs
    and extension, before any padding (RFC 3550 §5.1, §5.3.1); None when the lengths
    are inconsistent."""
    b0 = data[0]
    start = HEADER_SIZE + 4 * (b0 & 0x0F)
    if b0 & 0x10 and start + 4 <= len(data):  # RFC 3550 §5.3.1 extension length in words
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data)
    if b0 & 0x20 and end > start:
        end -= data[-1]
    if start > end:
        return None
    return start, end


def _set_payload_type(data: bytes, payload_type: int) -> bytearray:
    """A copy of a validated RTP packet with another payload type (marker kept)."""
    out = bytearray(data)
    out[1] = data[1] & 0x80 | payload_type
    return out


def _transcode(data: bytes, table: bytes, payload_type: int) -> bytes | bytearray:
    """Translate the payload of a validated RTP packet and set its payload type.

    The header (CSRCs, extension) and any padding (RFC 3550 §5.1) are copied as they
    are; only byte 1's low 7 bits change, the marker bit is kept.
    """
    bounds = _payload_bounds(data)
    if bounds is None:  # inconsistent lengths: pass the bytes through untouched
        return data
    start, end = bounds
    out = bytearray(data)
    out[1] = data[1] & 0x80 | payload_type
    out[start:end] = data[start:end].translate(table)
    return out
