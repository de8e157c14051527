"""The board's analog ports joined to call control, on the event loop.

Composes the hardware side (``hw.analog_ports``: line controller, port machines, port
audio), the ports' SIP user agent (``lines.gateway``) on its own UDP socket, and one
RTP socket per port (``hw.port_stream``). On the sim board the line controller is the
emulator on a pseudo-terminal (``hw.sim``) and the audio goes through ALSA's file
plugin; ``yakyak serve`` points the files at /dev/zero and /dev/null so a long run
neither fills the disk nor runs out of input, while the HIL rig lays out real files
first and they are kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

from appliance.hw.analog_ports import AnalogPorts
from appliance.hw.board_spec import BoardSpec
from appliance.hw.pcm import install_alsa_config, port_pcms, sim_audio_files
from appliance.hw.port_audio import Frame
from appliance.hw.port_stream import PortStream
from appliance.hw.sim.controller import SimController
from appliance.hw.sim.pty_controller import PtyController
from appliance.lines.digit_collector import CompletionRule
from appliance.lines.gateway import (
    AimStream,
    AnalogGateway,
    GatewayAction,
    GatewayConfig,
    LineAccount,
    ToPort,
)
from appliance.lines.port_actions import CallAction, CallFailed, IncomingCall, PlaceCall
from appliance.lines.signals import PortType
from appliance.pbx.causes import Cause
from appliance.sip.transaction import Send, TimerConfig
from appliance.sip.transport import Peer
from appliance.web.live import PortView

log = logging.getLogger(__name__)

LOOPBACK: Final = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class PortRole:
    """What one port is to the PBX: an FXS port's extension, an FXO line's inbound
    number; ``ha1`` the credentials it authenticates with (the extension's, or the
    trunk account's for FXO)."""

    port: int
    user: str
    ha1: Mapping[str, str]
    inbound: str = ""


class _RtpSocket(asyncio.DatagramProtocol):
    """One port's RTP socket around its ``PortStream``: the call audio of ``AnalogPorts``."""

    def __init__(self, stream: PortStream) -> None:
        self.stream = stream
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stream.incoming(data, (addr[0], addr[1]))

    def capture(self, frame: Frame) -> None:
        data = self.stream.outgoing(frame)
        target = self.stream.target
        if data is not None and target is not None and self.transport is not None:
            self.transport.sendto(data, (target.host, target.port))

    def playout(self) -> Frame | None:
        return self.stream.playout()


class _SipSocket(asyncio.DatagramProtocol):
    def __init__(self, service: AnalogService) -> None:
        self._service = service
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._service.datagram(data, Peer("udp", addr[0], addr[1]))


class AnalogService:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        board: BoardSpec,
        run_dir: Path,
        completion: CompletionRule,
        rng: random.Random,
    ) -> None:
        self._loop = loop
        self.board = board
        self.run_dir = run_dir
        self._completion = completion
        self._rng = rng
        self.sim: SimController | None = None
        self._pty: PtyController | None = None
        self.ports: AnalogPorts | None = None
        self.gateway: AnalogGateway | None = None
        self._sip: _SipSocket | None = None
        self._rtp: dict[int, _RtpSocket] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._queue: list[tuple[str, int, object]] = []
        self._busy = False
        self.address: tuple[str, int] | None = None  # where the gateway's SIP listens

    async def start(self, server: Peer, roles: Mapping[int, PortRole]) -> None:
        loop = self._loop
        self.run_dir.mkdir(parents=True, exist_ok=True)
        device = self.board.controller.device
        if self.board.alsa_config:
            for path, capture in sim_audio_files(self.board, self.run_dir):
                _keep_or_link(path, capture)
            os.environ["ALSA_CONFIG_PATH"] = install_alsa_config(
                self.board.alsa_config, self.run_dir
            )
        if device == "pty":
            self.sim = SimController([p.type for p in self.board.ports], now=loop.time())
            self._pty = PtyController(self.sim, loop)
            device = self._pty.open()
        sip_transport, sip = await loop.create_datagram_endpoint(
            lambda: _SipSocket(self), local_addr=(LOOPBACK, 0)
        )
        self._sip = sip
        host, port = sip_transport.get_extra_info("sockname")[:2]
        self.address = (host, port)
        lines: list[LineAccount] = []
        for spec in self.board.ports:
            rtp_transport, rtp = await loop.create_datagram_endpoint(
                lambda: _RtpSocket(PortStream(random.Random(self._rng.getrandbits(64)))),
                local_addr=(LOOPBACK, 0),
            )
            self._rtp[spec.number] = rtp
            role = roles.get(spec.number)
            if role is None:
                log.warning("port %d (%s) has no extension or line set", spec.number, spec.type)
                continue
            lines.append(
                LineAccount(
                    port=spec.number,
                    type=spec.type,
                    user=role.user,
                    ha1=role.ha1,
                    rtp_port=rtp_transport.get_extra_info("sockname")[1],
                    inbound=role.inbound,
                )
            )
        config = GatewayConfig(host=host, port=port, server=server, media_host=LOOPBACK)
        self.gateway = AnalogGateway(config, lines, TimerConfig(), self._rng)
        pcms = port_pcms(self.board, self.run_dir)
        self.ports = AnalogPorts(loop, self.board, device, pcms, self._completion)
        self.ports.connect_calls(self._port_call, self._rtp)
        self.ports.start()
        self._rearm()

    def close(self) -> None:
        gateway = self.gateway
        if gateway is not None:
            self._carry_out(gateway.stop(self._loop.time()))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.ports is not None:
            self.ports.close()
        if self._pty is not None:
            self._pty.close()
        for rtp in self._rtp.values():
            if rtp.transport is not None:
                rtp.transport.close()
        if self._sip is not None and self._sip.transport is not None:
            self._sip.transport.close()

    # -- inputs ---------------------------------------------------------------------

    def datagram(self, data: bytes, peer: Peer) -> None:
        self._enqueue("sip", 0, (data, peer))

    def _port_call(self, port: int, action: CallAction) -> None:
        self._enqueue("port", port, action)

    def _enqueue(self, kind: str, port: int, item: object) -> None:
        # A port answering synchronously (a RejectOffer while an offer is delivered)
        # comes back here: it waits its turn, so messages go out in order.
        self._queue.append((kind, port, item))
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                kind, port, item = self._queue.pop(0)
                try:
                    self._handle(kind, port, item)
                except Exception:  # one bad message must not stop the ports' calls
                    log.exception("analog gateway: %s input failed", kind)
        finally:
            self._busy = False
            self._rearm()

    def _handle(self, kind: str, port: int, item: object) -> None:
        gateway = self.gateway
        if gateway is None:
            return
        now = self._loop.time()
        if kind == "sip":
            data, peer = cast(tuple[bytes, Peer], item)
            self._carry_out(gateway.receive(data, peer, now))
        elif kind == "port":
            if port not in gateway.lines and isinstance(item, PlaceCall | IncomingCall):
                # a port with no extension (FXS) or inbound number (FXO) set
                if self.ports is not None:
                    self.ports.offer(port, CallFailed(Cause.NO_ROUTE_DESTINATION))
                return
            self._carry_out(gateway.port_action(port, cast(CallAction, item), now))
        elif kind == "timer":
            self._carry_out(gateway.handle_timer(now))

    def _carry_out(self, actions: list[GatewayAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                sip = self._sip
                if sip is not None and sip.transport is not None:
                    data = action.data if action.data is not None else bytes(action.message)
                    sip.transport.sendto(data, (action.peer.host, action.peer.port))
            elif isinstance(action, ToPort):
                if self.ports is not None:
                    self.ports.offer(action.port, action.event)
            elif isinstance(action, AimStream):
                rtp = self._rtp.get(action.port)
                if rtp is not None:
                    rtp.stream.aim(action.target)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gateway = self.gateway
        deadline = gateway.next_deadline() if gateway is not None else None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._enqueue("timer", 0, None)

    # -- what the rest of the appliance may ask ------------------------------------------

    def status(self) -> dict[int, str]:
        """Per port: its type and, for FXS, whether its extension is registered."""
        out: dict[int, str] = {}
        gateway = self.gateway
        for spec in self.board.ports:
            if spec.type is PortType.FXS and gateway is not None:
                state = "registered" if gateway.registered(spec.number) else "not registered"
            else:
                state = "line"
            out[spec.number] = f"{spec.type.value} {state}"
        return out

    def views(self) -> list[PortView]:
        """Each port for the web UI: what it is to the PBX and what it is doing."""
        views: list[PortView] = []
        gateway = self.gateway
        for spec in self.board.ports:
            line = gateway.lines.get(spec.number) if gateway is not None else None
            if line is None:
                role = "not set"
            elif spec.type is PortType.FXS:
                role = f"extension {line.user}"
            else:
                role = f"line to {line.inbound}"
            machine = self.ports.ports.get(spec.number) if self.ports is not None else None
            state = machine.state.value if machine is not None else "stopped"
            registered = None
            if spec.type is PortType.FXS:
                registered = gateway is not None and gateway.registered(spec.number)
            views.append(
                PortView(spec.number, spec.type.value, spec.label, role, state, registered)
            )
        return views


def _keep_or_link(path: Path, capture: bool) -> None:
    """A sim audio file the rig laid out is kept; else capture reads /dev/zero for ever
    and playback goes to /dev/null (a long run must not fill the data partition)."""
    if path.exists() or path.is_symlink():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to("/dev/zero" if capture else "/dev/null")
