"""The FXO port: one exchange line, where we are the phone, as a sans-IO state machine.

Inbound, the exchange rings the line: the port counts ring bursts, takes caller ID
(decoded by the audio side between the first and second ring, or just before the
first ring where the network sends it so) and offers the call to call control, which
routes it and answers by ``RemoteAnswered``; the port then goes off hook and cuts the
audio through. Outbound (``DialOut``), the port seizes the line, waits for dial tone,
dials, and cuts through.

States (``FxoState``)::

    IDLE --RingStart--> RING_DETECTED --2nd RingStart or caller ID--> OFFERED
    OFFERED --RemoteAnswered (Hook off)--> CONNECTED
    OFFERED --CallFailed/RemoteHungUp--> REJECTED (rings ignored)
    RING_DETECTED/OFFERED/REJECTED --no ring edge for 6 s--> IDLE
    IDLE --DialOut (Hook off)--> SEIZED --dial tone, or 3 s (blind)--> DIALING
    DIALING --digits sent--> CONNECTED, or PROGRESS until a polarity reversal
    SEIZED..CONNECTED --disconnect or RemoteHungUp--> IDLE (Hook on)

Decisions (and why):

- A line without answer supervision cannot say when the far end answers, so by default
  the outgoing call counts as answered when dialling ends (``OutboundProgress`` and
  ``OutboundAnswered`` together), as analog PBX channels commonly do. With
  ``answer_on_polarity`` the first reversal after dialling is the answer and only a
  later one a disconnect; without it every reversal while seized is a disconnect.
- Disconnect is whichever comes first of a polarity reversal, a loop-current drop (the
  controller debounces it) and busy/congestion tone on the line.
- The end of dialling is computed from the digits and the dialling timing the port
  itself asks for (``SendDtmf`` carries it; pulse timing is the controller's 10 pps
  with 0.8 s between digits), plus a margin; nothing has to report it.
- The ring timeout runs from the last ring edge: 6 s covers the longest silence of the
  cadences we know (4 s, North America and Germany) with margin.
- Unexpected inputs are not errors: a pair missing from ``_HANDLERS`` is an input with
  nothing to do in that state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from appliance.lines.audio_requests import AudioRequests
from appliance.lines.port_actions import (
    BusyToneDetected,
    CallerId,
    CallerIdReceived,
    CallFailed,
    Detector,
    DialOut,
    DialToneDetected,
    HangUpCall,
    IncomingCall,
    OutboundAnswered,
    OutboundProgress,
    PortAction,
    PortInput,
    RejectOffer,
    RemoteAnswered,
    RemoteHungUp,
    SendDtmf,
    TimerFired,
)
from appliance.lines.signals import (
    PORT_SIGNALS,
    ControllerReset,
    DialPulses,
    Hook,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
    RingStop,
)
from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import MAX_NUMBER_LENGTH

DTMF_DIAL_CHARS: Final = frozenset("0123456789*#ABCD")
PULSE_DIAL_CHARS: Final = frozenset("0123456789")


class FxoState(Enum):
    IDLE = "idle"
    RING_DETECTED = "ring-detected"  # ringing, not yet offered (waiting for caller ID)
    OFFERED = "offered"  # IncomingCall sent; call control routes it
    REJECTED = "rejected"  # call control refused it: let it ring out
    SEIZED = "seized"  # off hook for an outgoing call, waiting for dial tone
    DIALING = "dialing"
    PROGRESS = "progress"  # dialled and cut through, waiting for answer supervision
    CONNECTED = "connected"


RINGING_STATES: Final = frozenset({FxoState.RING_DETECTED, FxoState.OFFERED, FxoState.REJECTED})
SEIZED_STATES: Final = frozenset(
    {FxoState.SEIZED, FxoState.DIALING, FxoState.PROGRESS, FxoState.CONNECTED}
)


class DialMode(Enum):
    DTMF = "dtmf"
    PULSE = "pulse"  # loop-disconnect dialling, for exchanges without DTMF


@dataclass(frozen=True, slots=True)
class FxoConfig:
    ring_timeout_s: float = 6.0
    pre_ring_caller_id_s: float = 5.0  # caller ID this close before ring 1 belongs to it
    dial_tone_wait_s: float = 3.0
    blind_dial: bool = True  # dial when no dial tone was heard; else give up
    dial_mode: DialMode = DialMode.DTMF
    dtmf_on_ms: int = 100  # Q.24 receivers take >= 40 ms; generous for old exchanges
    dtmf_off_ms: int = 100
    pulse_break_ms: int = 100  # one pulse at the usual 10 pulses per second
    pulse_interdigit_ms: int = 800
    dial_margin_s: float = 0.3
    answer_on_polarity: bool = False

    def __post_init__(self) -> None:
        timeouts = (self.ring_timeout_s, self.dial_tone_wait_s, self.dial_margin_s)
        if min(timeouts) <= 0 or self.pre_ring_caller_id_s < 0:
            raise ValueError(f"FXO timeouts must be positive: {timeouts}")
        if min(self.dtmf_on_ms, self.pulse_break_ms) <= 0:
            raise ValueError("DTMF and pulse durations must be positive")
        if min(self.dtmf_off_ms, self.pulse_interdigit_ms) < 0:
            raise ValueError("dialling pauses must not be negative")

    def dialling_time(self, digits: str) -> float:
        """Seconds the line needs to take ``digits`` in this dial mode, with margin."""
        if self.dial_mode is DialMode.DTMF:
            ms = len(digits) * (self.dtmf_on_ms + self.dtmf_off_ms)
        else:  # "0" is ten breaks
            breaks = sum(int(d) or 10 for d in digits)
            ms = breaks * self.pulse_break_ms + len(digits) * self.pulse_interdigit_ms
        return ms / 1000 + self.dial_margin_s


class FxoPort:
    """One FXO port. Feed it with ``handle``; fire ``next_deadline`` as ``TimerFired``."""

    def __init__(self, port: int, config: FxoConfig | None = None) -> None:
        self.port = port
        self.config = config if config is not None else FxoConfig()
        self._state = FxoState.IDLE
        self._deadline: float | None = None
        self._off_hook = False
        self._requests = AudioRequests(Detector.PROGRESS_TONES)
        self._rings = 0
        self._number = ""
        self._early_caller_id: tuple[CallerId, float] | None = None

    @property
    def state(self) -> FxoState:
        return self._state

    @property
    def seized(self) -> bool:
        return self._off_hook

    @property
    def audio_connected(self) -> bool:
        return self._requests.bridged

    @property
    def detecting_tones(self) -> bool:
        return self._requests.detecting

    @property
    def rings(self) -> int:
        """Ring bursts counted for the current incoming call."""
        return self._rings

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> list[PortAction]:
        return self.handle(TimerFired(), now)

    def handle(self, event: PortInput, now: float) -> list[PortAction]:
        if isinstance(event, PORT_SIGNALS) and event.port != self.port:
            return []
        if isinstance(event, TimerFired) and (self._deadline is None or now < self._deadline):
            return []  # stale: the timer was replaced or cancelled meanwhile
        handler = _HANDLERS.get((self._state, type(event)))
        if handler is None:
            return []
        return handler(self, event, now)

    # -- inbound ------------------------------------------------------------------------

    def _early_id(self, event: CallerIdReceived, now: float) -> list[PortAction]:
        self._early_caller_id = (CallerId(event.number, event.name), now)
        return []

    def _first_ring(self, event: RingStart, now: float) -> list[PortAction]:
        self._state = FxoState.RING_DETECTED
        self._rings = 1
        self._deadline = now + self.config.ring_timeout_s
        early, self._early_caller_id = self._early_caller_id, None
        if early is not None and now - early[1] <= self.config.pre_ring_caller_id_s:
            return self._offer(early[0])
        return []

    def _ring_edge(self, event: RingStart | RingStop, now: float) -> list[PortAction]:
        self._deadline = now + self.config.ring_timeout_s
        if isinstance(event, RingStart):
            self._rings += 1
            if self._state is FxoState.RING_DETECTED:
                return self._offer(None)  # the second ring: no caller ID is coming
        return []

    def _caller_id(self, event: CallerIdReceived, now: float) -> list[PortAction]:
        return self._offer(CallerId(event.number, event.name))

    def _offer(self, caller_id: CallerId | None) -> list[PortAction]:
        self._state = FxoState.OFFERED
        return [IncomingCall(caller_id)]

    def _answer(self, event: RemoteAnswered, now: float) -> list[PortAction]:
        self._state = FxoState.CONNECTED
        self._deadline = None
        return self._hook(True) + self._detect(True) + self._connect()

    def _refused(self, event: object, now: float) -> list[PortAction]:
        self._state = FxoState.REJECTED
        return []

    def _rang_out(self, event: TimerFired, now: float) -> list[PortAction]:
        offered = self._state is FxoState.OFFERED
        out = self._release()
        if offered:
            out.append(HangUpCall(Cause.NORMAL_CLEARING))  # the caller gave up
        return out

    # -- outbound -----------------------------------------------------------------------

    def _seize(self, event: DialOut, now: float) -> list[PortAction]:
        allowed = DTMF_DIAL_CHARS if self.config.dial_mode is DialMode.DTMF else PULSE_DIAL_CHARS
        if len(event.number) > MAX_NUMBER_LENGTH or not set(event.number) <= allowed:
            return [RejectOffer(Cause.INVALID_NUMBER_FORMAT)]
        self._state = FxoState.SEIZED
        self._number = event.number
        self._early_caller_id = None
        self._deadline = now + self.config.dial_tone_wait_s
        return self._hook(True) + self._detect(True)

    def _line_busy(self, event: DialOut, now: float) -> list[PortAction]:
        return [RejectOffer(Cause.NO_CIRCUIT_AVAILABLE)]

    def _dial_tone(self, event: DialToneDetected, now: float) -> list[PortAction]:
        return self._dial(now)

    def _no_dial_tone(self, event: TimerFired, now: float) -> list[PortAction]:
        if self.config.blind_dial:
            return self._dial(now)
        return self._release() + [HangUpCall(Cause.NO_CIRCUIT_AVAILABLE)]

    def _dial(self, now: float) -> list[PortAction]:
        number = self._number
        if not number:
            return self._cut_through()
        self._state = FxoState.DIALING
        self._deadline = now + self.config.dialling_time(number)
        if self.config.dial_mode is DialMode.DTMF:
            return [SendDtmf(number, self.config.dtmf_on_ms, self.config.dtmf_off_ms)]
        return [DialPulses(self.port, number)]

    def _dialled(self, event: TimerFired, now: float) -> list[PortAction]:
        return self._cut_through()

    def _cut_through(self) -> list[PortAction]:
        self._deadline = None
        out = [*self._connect(), OutboundProgress()]
        if self.config.answer_on_polarity:
            self._state = FxoState.PROGRESS
            return out
        self._state = FxoState.CONNECTED
        return [*out, OutboundAnswered()]

    def _reversal(self, event: PolarityReversal, now: float) -> list[PortAction]:
        if not self.config.answer_on_polarity or self._state is FxoState.CONNECTED:
            return self._disconnected(event, now)
        if self._state is FxoState.PROGRESS:
            self._state = FxoState.CONNECTED
            return [OutboundAnswered()]
        return []  # before dialling ends: not the answer, and not a clear-down

    # -- clearing -----------------------------------------------------------------------

    def _disconnected(
        self, event: PolarityReversal | LoopCurrentDrop | BusyToneDetected, now: float
    ) -> list[PortAction]:
        if self._state is FxoState.SEIZED:
            cause = Cause.NO_CIRCUIT_AVAILABLE  # the line failed before we dialled
        elif isinstance(event, BusyToneDetected) and self._state is not FxoState.CONNECTED:
            cause = Cause.USER_BUSY
        else:
            cause = Cause.NORMAL_CLEARING
        return self._release() + [HangUpCall(cause)]

    def _cleared_by_pbx(self, event: object, now: float) -> list[PortAction]:
        return self._release()

    def _reset(self, event: ControllerReset, now: float) -> list[PortAction]:
        # The controller is idle: it dropped the line, so the call is gone. Ringing
        # states go on (the exchange still rings) and time out as usual.
        if self._state not in SEIZED_STATES:
            return []
        return self._release() + [HangUpCall(Cause.TEMPORARY_FAILURE)]

    # -- helpers ------------------------------------------------------------------------

    def _release(self) -> list[PortAction]:
        self._state = FxoState.IDLE
        self._deadline = None
        self._rings = 0
        self._number = ""
        out = self._disconnect() + self._detect(False)
        if self._off_hook:
            self._off_hook = False
            out.append(Hook(self.port, off=False))
        return out

    def _hook(self, off: bool) -> list[PortAction]:
        if self._off_hook == off:
            return []
        self._off_hook = off
        return [Hook(self.port, off=off)]

    def _connect(self) -> list[PortAction]:
        return self._requests.connect()

    def _disconnect(self) -> list[PortAction]:
        return self._requests.disconnect()

    def _detect(self, on: bool) -> list[PortAction]:
        return self._requests.detect(on)


_Handler = Callable[[FxoPort, Any, float], list[PortAction]]
S = FxoState
_DISCONNECTS: Final = (LoopCurrentDrop, BusyToneDetected)
# Pairs missing here are inputs with nothing to do in that state (see the module doc).
_HANDLERS: Final[dict[tuple[FxoState, type[object]], _Handler]] = {
    (S.IDLE, RingStart): FxoPort._first_ring,
    (S.IDLE, CallerIdReceived): FxoPort._early_id,
    (S.IDLE, DialOut): FxoPort._seize,
    (S.RING_DETECTED, CallerIdReceived): FxoPort._caller_id,
    (S.OFFERED, RemoteAnswered): FxoPort._answer,
    (S.OFFERED, CallFailed): FxoPort._refused,
    (S.OFFERED, RemoteHungUp): FxoPort._refused,
    (S.SEIZED, DialToneDetected): FxoPort._dial_tone,
    (S.SEIZED, TimerFired): FxoPort._no_dial_tone,
    (S.DIALING, TimerFired): FxoPort._dialled,
    **{
        (state, edge): FxoPort._ring_edge
        for state in RINGING_STATES
        for edge in (RingStart, RingStop)
    },
    **{(state, TimerFired): FxoPort._rang_out for state in RINGING_STATES},
    **{(state, DialOut): FxoPort._line_busy for state in FxoState if state is not S.IDLE},
    **{(state, PolarityReversal): FxoPort._reversal for state in SEIZED_STATES},
    **{
        (state, signal): FxoPort._disconnected for state in SEIZED_STATES for signal in _DISCONNECTS
    },
    **{(state, RemoteHungUp): FxoPort._cleared_by_pbx for state in SEIZED_STATES},
    **{(state, CallFailed): FxoPort._cleared_by_pbx for state in SEIZED_STATES},
    **{(state, ControllerReset): FxoPort._reset for state in FxoState},
}
del S
