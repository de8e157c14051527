"""The board's analog ports, running: the line controller over its serial link, one
FXS or FXO state machine per port, and every port's audio each 20 ms.

Signals from the controller and what the audio side detects go into the port
machines; what they ask comes back out: line intents to the controller, tones,
caller ID and DTMF to the port's audio, and call actions (``PlaceCall``,
``IncomingCall``...) to call control through ``on_call``. Call control answers with
``offer(port, input)``. The media clock (t0 + n x 20 ms, as the RTP engine's) paces all ports'
audio; each port machine has its one timer on the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final, Protocol

from appliance.hw.board_spec import BoardSpec, CallerIdMode
from appliance.hw.pcm import Pcm
from appliance.hw.port_audio import SILENCE, CidMode, Frame, PortAudio
from appliance.hw.serial_link import SerialLink, port_configs
from appliance.lines.controller_link import (
    ControllerLink,
    LinkConfig,
    LinkDown,
    LinkNotice,
    LinkUp,
)
from appliance.lines.digit_collector import CompletionRule
from appliance.lines.fxo import FxoPort
from appliance.lines.fxs import FxsConfig, FxsPort, FxsState, ring_cadence
from appliance.lines.port_actions import (
    AnswerIncoming,
    CallAction,
    CallerIdTiming,
    CallInput,
    ConnectAudio,
    Detect,
    Detector,
    DialOut,
    DisconnectAudio,
    IncomingCallOffer,
    OfferCancelled,
    PlayTone,
    PortAction,
    PortInput,
    RejectOffer,
    SendCallerId,
    SendDtmf,
    StopTone,
)
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Feed,
    Hook,
    LineSignal,
    PortType,
    Ring,
)
from appliance.media.clock import MediaClock
from appliance.pbx.causes import Cause

log = logging.getLogger(__name__)

REOPEN_INTERVAL: Final = 5.0  # s between attempts to open a serial device that failed

CallSink = Callable[[int, CallAction], None]


class CallAudio(Protocol):
    """A port's call media (``port_stream`` behind an RTP socket)."""

    def capture(self, frame: Frame) -> None:
        """What the port's phone or line said in the last 20 ms."""

    def playout(self) -> Frame | None:
        """What the call says for the next 20 ms; None without call audio."""


class AnalogPorts:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        board: BoardSpec,
        device: str,
        pcms: Mapping[int, Pcm],
        completion: CompletionRule,
        on_call: CallSink | None = None,
        link_config: LinkConfig | None = None,
    ) -> None:
        self._loop = loop
        self.board = board
        self._pcms = dict(pcms)
        self._on_call = on_call or (lambda port, action: None)
        self.ports: dict[int, FxsPort | FxoPort] = {}
        self.audio: dict[int, PortAudio] = {}
        for spec in board.ports:
            modes = spec.fxs.caller_id if spec.fxs else spec.fxo.caller_id if spec.fxo else ()
            cid = _cid_mode(modes)
            if spec.type is PortType.FXS:
                config = FxsConfig(ring_cadence_ms=ring_cadence(board.country))
                self.ports[spec.number] = FxsPort(spec.number, completion, config)
            else:
                self.ports[spec.number] = FxoPort(spec.number)
            self.audio[spec.number] = PortAudio(board.country, cid)
        for number, port in self.ports.items():
            if isinstance(port, FxoPort):
                self.audio[number].listen_caller_id(True)  # caller ID comes between rings
        link = ControllerLink(port_configs(board), link_config)
        self.serial = SerialLink(link, device, self._deliver, board.controller.baud, loop)
        self._timers: dict[int, asyncio.TimerHandle] = {}
        # the same frame grid as the media engine's (catches up at most 3 frames)
        self.clock = MediaClock(loop, self._on_tick)
        self.link_up = False
        # inputs that arrive while a port's actions are being carried out (call control
        # answering a call action at once) wait their turn: no nesting, no reordering
        self._inputs: list[tuple[int, PortInput]] = []
        self._busy = False
        self._reopen: asyncio.TimerHandle | None = None
        self.call_audio: dict[int, CallAudio] = {}  # set by call control, per port

    def connect_calls(self, on_call: CallSink, audio: Mapping[int, CallAudio]) -> None:
        """Hand the ports' call actions and call audio to call control."""
        self._on_call = on_call
        self.call_audio = dict(audio)

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        for pcm in self._pcms.values():
            pcm.open()
        self.serial.open()
        self.clock.start()

    def close(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        self.clock.stop()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.serial.close()
        for pcm in self._pcms.values():
            pcm.close()

    # -- call control in -----------------------------------------------------------

    def offer(self, port: int, event: CallInput) -> None:
        """What call control tells a port (an incoming call, the far end answered...).
        While the line controller is unreachable a new call is refused at once (cause
        41, temporary failure) rather than left ringing nowhere."""
        if not self.link_up and isinstance(event, IncomingCallOffer | DialOut):
            self._on_call(port, RejectOffer(Cause.TEMPORARY_FAILURE))
            return
        self._feed(port, event)

    # -- controller in ------------------------------------------------------------

    def _deliver(self, item: LineSignal | LinkNotice) -> None:
        if isinstance(item, ControllerReset):
            log.warning("line controller restarted: ports re-configured")
            for number in self.ports:
                self._feed(number, item)
            return
        port = getattr(item, "port", None)
        if isinstance(port, int) and port in self.ports:
            self._feed(port, item)  # type: ignore[arg-type]  # a LineSignal with a port
            return
        if isinstance(item, LinkUp):
            self.link_up = True
        elif isinstance(item, LinkDown):
            self.link_up = False
            self._schedule_reopen()
            self._link_lost()
        log.info("line controller: %s", item)

    def _link_lost(self) -> None:
        """Nothing reaches the lines while the controller is unreachable: their calls are
        over (cause 41, as for a reset) and a call ringing a phone is refused, rather than
        left up with nobody able to hear or hang up. The STATUS after the link returns
        tells the ports their hook state anew."""
        for number, port in self.ports.items():
            self._feed(number, ControllerReset())
            if isinstance(port, FxsPort) and port.state is FxsState.RINGING:
                self._feed(number, OfferCancelled())
                self._on_call(number, RejectOffer(Cause.TEMPORARY_FAILURE))

    def _schedule_reopen(self) -> None:
        if self.serial.is_open or self._reopen is not None:
            return
        self._reopen = self._loop.call_later(REOPEN_INTERVAL, self._try_reopen)

    def _try_reopen(self) -> None:
        self._reopen = None
        if self.serial.reopen():
            log.info("line controller device %s open again", self.serial.device)
        else:
            self._schedule_reopen()

    # -- the port machines ---------------------------------------------------------

    def _feed(self, number: int, event: PortInput) -> None:
        if number not in self.ports:
            return
        self._inputs.append((number, event))
        if self._busy:
            return  # the loop below takes it once the current actions are done
        self._busy = True
        try:
            while self._inputs:
                port_number, pending = self._inputs.pop(0)
                port = self.ports[port_number]
                self._apply(port_number, port.handle(pending, self._loop.time()))
        finally:
            self._busy = False

    def _apply(self, number: int, actions: list[PortAction]) -> None:
        try:
            for action in actions:
                try:
                    self._do(number, action)
                except Exception:  # one bad action must not cost the port its timer
                    log.exception("port %d: %s failed", number, type(action).__name__)
        finally:
            self._rearm(number)

    def _do(self, number: int, action: PortAction) -> None:
        audio = self.audio[number]
        if isinstance(action, Ring | Feed | Hook | DialPulses):
            if isinstance(action, Hook) and not action.off:
                audio.cancel_queued()  # digits not yet dialled must not reach the next call
            self.serial.send_intent(action)
        elif isinstance(action, PlayTone):
            audio.play_tone(action.name)
        elif isinstance(action, StopTone):
            audio.stop_tone()
        elif isinstance(action, SendCallerId):
            if action.when is CallerIdTiming.BETWEEN_RINGS:
                audio.send_caller_id(action.number, action.name, datetime.now())
            # Off-hook (type 2) caller ID needs the alerting signal and the phone's
            # acknowledgement first; without them it is modem noise in the call.
        elif isinstance(action, ConnectAudio):
            audio.connected = True
        elif isinstance(action, DisconnectAudio):
            audio.connected = False
        elif isinstance(action, Detect):
            if action.detector is Detector.DTMF:
                audio.detect_dtmf(action.on)
            else:
                audio.detect_progress(action.on)
        elif isinstance(action, SendDtmf):
            audio.send_dtmf(action.digits, action.on_ms, action.off_ms)
        else:
            if isinstance(action, AnswerIncoming):
                audio.cancel_queued()  # answered mid caller ID: the rest is not for the call
            self._on_call(number, action)

    def _rearm(self, number: int) -> None:
        handle = self._timers.pop(number, None)
        if handle is not None:
            handle.cancel()
        deadline = self.ports[number].next_deadline()
        if deadline is not None:
            self._timers[number] = self._loop.call_at(deadline, self._fire, number)

    def _fire(self, number: int) -> None:
        self._timers.pop(number, None)
        self._apply(number, self.ports[number].handle_timer(self._loop.time()))

    # -- audio, every 20 ms --------------------------------------------------------

    def _on_tick(self, tick: int, t: float) -> None:
        self._frame(t)

    def _frame(self, t: float) -> None:
        for number, audio in self.audio.items():
            try:
                pcm = self._pcms.get(number)
                captured = pcm.read_frame() if pcm is not None else None
                out, heard = audio.tick(captured, t)
                call = self.call_audio.get(number)
                if call is not None and audio.connected:
                    if captured is not None:
                        call.capture(captured)
                    from_call = call.playout()
                    if out is None:  # a tone or caller ID of ours goes first
                        out = from_call
                for event in heard.inputs:
                    self._feed(number, event)
                if pcm is not None:
                    pcm.write_frame(out if out is not None else SILENCE)
            except Exception:  # a failing sound card stops its own port, not the others
                log.exception("port %d: audio failed", number)


def _cid_mode(modes: tuple[CallerIdMode, ...]) -> str | None:
    """The first caller-ID modulation a board file lists for a port; None: no caller ID."""
    for mode in modes:
        if mode.value in (CidMode.FSK_BELL, CidMode.FSK_V23, CidMode.DTMF):
            return mode.value
    return None
