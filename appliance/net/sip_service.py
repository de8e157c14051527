"""Runs the sans-IO SIP front on an asyncio loop: listeners, one timer, outputs.

The transports only move bytes: each datagram or stream frame goes to
``SipFront.receive`` with the loop's monotonic time, and every ``Send`` that comes
back is written to the socket or connection its ``Peer`` names. One ``call_at``
timer follows ``SipFront.next_deadline``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from appliance.net.routes import SourceAddresses
from appliance.pbx.app_events import AppEvent
from appliance.pbx.b2bua import CallFinished
from appliance.pbx.call_apps import AppRequest, SaveRecording
from appliance.pbx.media_port import MediaEvent
from appliance.pbx.sip_front import FrontAction, Locked, Persist, SipFront
from appliance.sip.errors import ParseError
from appliance.sip.parser import StreamFramer
from appliance.sip.transaction import Send
from appliance.sip.transport import Peer

log = logging.getLogger(__name__)

UDP_BUFFER: Final = 4 * 1024 * 1024  # absorbs bursts of thousands of datagrams
MAX_CONNECTIONS: Final = 4096
IDLE_TIMEOUT: Final = 7200.0  # RFC 5626 flows send keep-alives far more often


@dataclass(frozen=True, slots=True)
class Listener:
    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


class SipService:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        front: SipFront,
        on_persist: Callable[[Persist], None],
        on_locked: Callable[[Locked], None],
        on_call: Callable[[CallFinished], None] | None = None,
        on_app: Callable[[AppRequest | SaveRecording], None] | None = None,
    ) -> None:
        self._loop = loop
        self.front = front
        self._on_persist = on_persist
        self._on_locked = on_locked
        self._on_call = on_call or (lambda finished: None)
        self._on_app = on_app or (lambda request: None)
        self._sources = SourceAddresses()
        self._by_address: dict[tuple[str, int], int] = {}  # stream peer -> connection id
        self._udp: dict[int, asyncio.DatagramTransport] = {}
        self._streams: dict[int, _SipStream] = {}
        self._servers: list[asyncio.Server] = []
        self._next_id = 1
        self._outbox: list[tuple[asyncio.DatagramTransport, bytes, tuple[str, int]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.listeners: list[Listener] = []

    # -- lifecycle -----------------------------------------------------------------

    async def listen(self, transport: str, host: str, port: int) -> Listener:
        """Open one listener; port 0 picks a free port (the listener says which)."""
        if transport == "udp":
            ident = self._new_id()
            udp, _ = await self._loop.create_datagram_endpoint(
                lambda: _SipDatagram(self, ident), local_addr=(host, port)
            )
            sock = udp.get_extra_info("socket")
            _grow_buffers(sock)
            self._udp[ident] = udp
            bound = sock.getsockname()
        elif transport == "tcp":
            server = await self._loop.create_server(
                lambda: _SipStream(self, "tcp"), host, port, reuse_address=True, backlog=1024
            )
            self._servers.append(server)
            bound = server.sockets[0].getsockname()
        else:
            raise ValueError(f"unsupported SIP transport {transport!r}")
        listener = Listener(transport, bound[0], bound[1])
        self.listeners.append(listener)
        return listener

    def close_idle(self, now: float) -> int:
        """Close connections silent for IDLE_TIMEOUT; the app calls this periodically
        (one sweep instead of re-arming a timer on every segment)."""
        idle = [s for s in self._streams.values() if now - s.last_activity > IDLE_TIMEOUT]
        for stream in idle:
            stream.close()
        return len(idle)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for server in self._servers:
            server.close()
        for stream in list(self._streams.values()):
            stream.close()
        for udp in self._udp.values():
            udp.close()
        for server in self._servers:
            await server.wait_closed()

    # -- bytes in ------------------------------------------------------------------

    def deliver(self, data: bytes, peer: Peer) -> None:
        self._apply(self.front.receive(data, peer, self._loop.time()))

    def hang_up_all(self) -> None:
        """End every call (shutdown): the front's B2BUA tells both phones."""
        self._apply(self.front.hang_up_all(self._loop.time()))
        self._flush_outbox()

    def media_event(self, event: MediaEvent) -> None:
        self._apply(self.front.media_event(event, self._loop.time()))

    def app_event(self, call: int, event: AppEvent) -> None:
        self._apply(self.front.app_event(call, event, self._loop.time()))

    def mailbox_changed(self, mailbox: str, new: int, old: int) -> None:
        self._apply(self.front.mailbox_changed(mailbox, new, old, self._loop.time()))

    def local_address(self, peer: Peer) -> tuple[str, int]:
        """Our address and port as ``peer`` should see them (Via, Contact).

        A listener on a wildcard address has no single address of its own: the one
        the kernel would send from towards ``peer`` is used (a connected UDP socket
        sends nothing; it only asks the routing table).
        """
        listener = next((x for x in self.listeners if x.transport == peer.transport), None)
        if listener is None:
            listener = self.listeners[0]
        if listener.host not in ("0.0.0.0", "::"):
            return listener.host, listener.port
        host = self._sources.towards(peer.host)
        return host, listener.port

    # -- actions out ---------------------------------------------------------------

    def _apply(self, actions: list[FrontAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(action)
            elif isinstance(action, Persist):
                self._on_persist(action)
            elif isinstance(action, CallFinished):
                self._on_call(action)
            elif isinstance(action, AppRequest | SaveRecording):
                self._on_app(action)
            else:
                self._on_locked(action)
        self._rearm()

    def _send(self, action: Send) -> None:
        peer = action.peer
        data = action.data if action.data is not None else bytes(action.message)
        if peer.reliable:
            connection = peer.connection or self._by_address.get((peer.host, peer.port), 0)
            stream = self._streams.get(connection)
            if stream is None:
                log.debug("connection %d to %s is gone; dropping a message", peer.connection, peer)
                return
            stream.write(data)
            return
        udp = self._udp.get(peer.connection) or next(iter(self._udp.values()), None)
        if udp is None:
            return
        # Datagrams leave together once the loop has read everything that was ready:
        # on a VM, waking the receiving process costs more than the send itself, and a
        # burst wakes it once. The delay is one loop iteration, not a timer.
        if not self._outbox:
            self._loop.call_soon(self._flush_outbox)
        self._outbox.append((udp, data, (peer.host, peer.port)))

    def _flush_outbox(self) -> None:
        outbox, self._outbox = self._outbox, []
        for udp, data, addr in outbox:
            udp.sendto(data, addr)

    def _rearm(self) -> None:
        deadline = self.front.next_deadline()
        if deadline is None:
            return
        if self._timer_at is not None and self._timer_at <= deadline:
            return  # the armed timer fires first; it re-arms when it does
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self._apply(self.front.handle_timer(self._loop.time()))

    # -- connections ---------------------------------------------------------------

    def _new_id(self) -> int:
        ident = self._next_id
        self._next_id += 1
        return ident

    def _opened(self, stream: _SipStream, address: tuple[str, int]) -> int | None:
        if len(self._streams) >= MAX_CONNECTIONS:
            return None
        ident = self._new_id()
        self._streams[ident] = stream
        # A registered phone on TCP is called over the connection it registered on
        # (RFC 5626 flows, simplified): its binding knows the address, not the id.
        self._by_address[address] = ident
        return ident

    def _closed(self, ident: int, address: tuple[str, int] | None) -> None:
        self._streams.pop(ident, None)
        if address is not None and self._by_address.get(address) == ident:
            del self._by_address[address]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop


def _grow_buffers(sock: socket.socket) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
        except OSError as exc:  # the kernel may cap it; the default still works
            log.debug("could not grow socket buffer: %s", exc)


class _SipDatagram(asyncio.DatagramProtocol):
    def __init__(self, service: SipService, ident: int) -> None:
        self._service = service
        self._ident = ident
        self._peers: dict[tuple[str, int], Peer] = {}  # phones talk from the same few ports

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        peer = self._peers.get(addr)
        if peer is None:
            if len(self._peers) >= 4096:
                self._peers.clear()
            # IPv6 sockets give (host, port, flowinfo, scope_id); the first two are ours.
            peer = self._peers[addr] = Peer("udp", addr[0], addr[1], self._ident)
        self._service.deliver(data, peer)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that went away: nothing to do on UDP.
        log.debug("UDP error: %s", exc)


class _SipStream(asyncio.Protocol):
    """One TCP connection: frames by Content-Length, answers CRLF keep-alives."""

    def __init__(self, service: SipService, transport_name: str) -> None:
        self._service = service
        self._name = transport_name
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self._ident = 0
        self.last_activity = 0.0  # loop time of the last bytes in; see SipService.sweep

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self._transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        ident = self._service._opened(self, (str(host), int(port)))
        if ident is None:
            log.warning("too many SIP connections; refusing one")
            self._transport.abort()
            return
        self._ident = ident
        self._peer = Peer(self._name, str(host), int(port), ident)
        self.last_activity = self._service.loop.time()

    def data_received(self, data: bytes) -> None:
        if self._peer is None:
            return
        self.last_activity = self._service.loop.time()
        try:
            frames = self._framer.feed(data)
        except ParseError as exc:  # framing lost: the stream cannot be trusted again
            log.info("closing %s: %s", self._peer, exc.reason)
            self.close()
            return
        if self._framer.pings:
            self._framer.pings = 0
            self.write(b"\r\n")  # RFC 5626 §3.5.1 pong
        for frame in frames:
            self._service.deliver(frame, self._peer)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        address = (self._peer.host, self._peer.port) if self._peer is not None else None
        self._service._closed(self._ident, address)
