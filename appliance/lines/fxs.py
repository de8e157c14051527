"""The FXS port: one analog phone, fed and rung by us, as a sans-IO state machine.

The port hears the controller's debounced hook facts (``signals``), digits from its
audio, and call control's answers (``port_actions``); it returns line intents, media
actions and call actions. Time only enters as ``now``; ``next_deadline()`` names the
one moment the port wants ``TimerFired``.

States (``FxsState``)::

    IDLE --OffHook--> DIAL_TONE --digit--> COLLECTING --complete--> CALLING
    CALLING --RemoteAnswered--> TALKING <--Flash--> HELD
    CALLING --CallFailed/RemoteHungUp--> LOCKOUT (busy or congestion)
    DIAL_TONE --first-digit timeout (15 s)--> LOCKOUT (congestion)
    COLLECTING --inter-digit timeout--> CALLING with the digits so far
    TALKING/HELD --RemoteHungUp--> REMOTE_HUNG_UP (loop open) --0.8 s--> LOCKOUT (busy)
    IDLE --IncomingCallOffer--> RINGING --OffHook (ring-trip)--> TALKING
    any off-hook state --OnHook--> IDLE (or RINGING for a call still waiting)

Decisions (and why):

- Flash while dialling (DIAL_TONE, COLLECTING, CALLING) or in LOCKOUT starts over with
  fresh dial tone: it is the quickest way out of a misdial, and a call attempt in
  progress is hung up first (in LOCKOUT with a call still waiting, flash answers it).
  In REMOTE_HUNG_UP the loop is open and flashes are ignored.
- Flash in TALKING holds the call (``HoldCall``, HELD); with a call waiting it holds the
  call and answers the waiting one; with a call held it swaps (``ResumeCall``).
- A waiting call is never lost to the port: when the user hangs up, the phone rings for
  it (as public exchanges do); a held call is call control's (``HangUpCall`` says so).
- Caller ID goes in the first silence of the ring cadence long enough for it, 0.5 s after
  that silence starts (Telcordia GR-30-CORE, ETSI EN 300 659-1); the
  controller starts the cadence when it gets ``Ring``, so the port counts from there.
  A cadence with no such silence gets no caller ID (UK-style caller ID before the first
  ring, BT SIN 227, is not supported).
- A far end hanging up opens the loop for 0.8 s (the disconnect signal answering
  machines and line-powered devices look for), then busy tone; after 60 s of tone the
  port falls silent rather than play a howler we have no tone for.
- Unexpected inputs are not errors: a pair missing from ``_HANDLERS`` is an input with
  nothing to do in that state (the controller and call control race with the user).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from appliance.dsp.tones import ToneKind, tone_for
from appliance.lines.audio_requests import AudioRequests
from appliance.lines.digit_collector import (
    CollectResult,
    CompletionRule,
    Dial,
    DigitCollector,
    DigitTimers,
)
from appliance.lines.port_actions import (
    TONE_BUSY,
    TONE_CALL_WAITING,
    TONE_CONGESTION,
    TONE_DIAL,
    TONE_RINGBACK,
    TONE_STUTTER_DIAL,
    AnswerIncoming,
    CallerIdTiming,
    CallFailed,
    Detector,
    DigitInCall,
    DtmfDigit,
    HangUpCall,
    HoldCall,
    IncomingCallOffer,
    MessagesWaiting,
    OfferCancelled,
    PlaceCall,
    PlayTone,
    PortAction,
    PortInput,
    RejectOffer,
    RemoteAnswered,
    RemoteHungUp,
    RemoteProgress,
    ResumeCall,
    SendCallerId,
    StopTone,
    TimerFired,
)
from appliance.lines.signals import (
    PORT_SIGNALS,
    ControllerReset,
    Feed,
    FeedMode,
    Flash,
    OffHook,
    OnHook,
    PulseDigit,
    Ring,
)
from appliance.pbx.causes import Cause


class FxsState(Enum):
    IDLE = "idle"
    DIAL_TONE = "dial-tone"
    COLLECTING = "collecting"
    CALLING = "calling"
    TALKING = "talking"
    HELD = "held"
    RINGING = "ringing"
    REMOTE_HUNG_UP = "remote-hung-up"  # loop open: the disconnect signal
    LOCKOUT = "lockout"  # off hook with nothing to do: tone until on hook


ON_HOOK_STATES: Final = frozenset({FxsState.IDLE, FxsState.RINGING})
CALL_STATES: Final = frozenset({FxsState.CALLING, FxsState.TALKING, FxsState.HELD})
DIALLING_STATES: Final = frozenset({FxsState.DIAL_TONE, FxsState.COLLECTING})


def ring_cadence(country: str) -> tuple[int, ...]:
    """The ring cadence (on, off, ... ms) of ``country``: its ringback tone's cadence,
    which E.180 defines to follow the called phone's ringing."""
    tone = tone_for(country, ToneKind.RINGBACK)
    return tuple(ms for pair in tone.cadence_ms for ms in pair)


@dataclass(frozen=True, slots=True)
class FxsConfig:
    ring_cadence_ms: tuple[int, ...] = (2000, 4000)  # US; see ``ring_cadence``
    caller_id: bool = True
    cid_delay_s: float = 0.5  # after the ring burst ends (GR-30-CORE: at least 0.5 s)
    cid_min_gap_s: float = 2.5  # delay, ~1.5 s of FSK, 0.2 s guard before the next ring
    disconnect_open_s: float = 0.8
    lockout_tone_s: float = 60.0
    call_waiting: bool = True
    # Only the first burst of the call-waiting tone is played, then repeated: a tone
    # plan that repeats the tone (DE, GB) would otherwise mute the call for good.
    call_waiting_burst_s: float = 1.0
    call_waiting_repeat_s: float = 10.0
    stutter_dial: bool = True  # needs the "stutter-dial" tone in the media engine
    digit_timers: DigitTimers = field(default_factory=DigitTimers)

    def __post_init__(self) -> None:
        cadence = self.ring_cadence_ms
        if not cadence or len(cadence) % 2 or min(cadence) <= 0:
            raise ValueError(f"ring cadence {cadence}: (on, off) pairs of positive ms")
        durations = (
            self.cid_delay_s,
            self.cid_min_gap_s,
            self.disconnect_open_s,
            self.lockout_tone_s,
            self.call_waiting_burst_s,
        )
        if min(durations) <= 0:
            raise ValueError(f"FXS durations must be positive: {durations}")
        if self.call_waiting_repeat_s <= self.call_waiting_burst_s:
            raise ValueError("call-waiting repeat must be longer than its burst")

    def caller_id_offset(self) -> float | None:
        """Seconds from ``Ring`` on to sending caller ID, or None if no silence fits."""
        elapsed_ms = 0
        for on_ms, off_ms in zip(
            self.ring_cadence_ms[::2], self.ring_cadence_ms[1::2], strict=True
        ):
            elapsed_ms += on_ms
            if off_ms / 1000 >= self.cid_min_gap_s:
                return elapsed_ms / 1000 + self.cid_delay_s
            elapsed_ms += off_ms
        return None


class FxsPort:
    """One FXS port. Feed it with ``handle``; fire ``next_deadline`` as ``TimerFired``."""

    def __init__(
        self, port: int, completion: CompletionRule, config: FxsConfig | None = None
    ) -> None:
        self.port = port
        self.config = config if config is not None else FxsConfig()
        self._collector = DigitCollector(completion, self.config.digit_timers)
        self._state = FxsState.IDLE
        self._deadline: float | None = None  # the port's own timer (not the collector's)
        # What the port has asked for, so it asks only for changes and can undo them.
        self._tone: str | None = None
        self._requests = AudioRequests(Detector.DTMF)
        self._ringing = False
        self._feed: FeedMode | None = FeedMode.NORMAL  # None: unknown after a reset
        self._off_hook = False
        self._messages_waiting = False
        self._offer: IncomingCallOffer | None = None  # ringing, or waiting in a call
        self._other_held = False  # a second call is on hold while the user talks
        self._cw_cid_pending = False

    # -- observation ----------------------------------------------------------------

    @property
    def state(self) -> FxsState:
        return self._state

    @property
    def tone(self) -> str | None:
        return self._tone

    @property
    def audio_connected(self) -> bool:
        return self._requests.bridged

    @property
    def ringing(self) -> bool:
        return self._ringing

    @property
    def feed(self) -> FeedMode | None:
        return self._feed

    @property
    def detecting_digits(self) -> bool:
        return self._requests.detecting

    @property
    def off_hook(self) -> bool:
        return self._off_hook

    @property
    def messages_waiting(self) -> bool:
        return self._messages_waiting

    @property
    def dialled(self) -> str:
        """Digits collected so far in this dialling attempt."""
        return self._collector.digits

    # -- entry points ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self._state in DIALLING_STATES:
            return self._collector.next_deadline()
        return self._deadline

    def handle_timer(self, now: float) -> list[PortAction]:
        return self.handle(TimerFired(), now)

    def handle(self, event: PortInput, now: float) -> list[PortAction]:
        if isinstance(event, PORT_SIGNALS) and event.port != self.port:
            return []
        if isinstance(event, TimerFired):
            deadline = self.next_deadline()
            if deadline is None or now < deadline:
                return []  # stale: the timer was replaced or cancelled meanwhile
        if isinstance(event, OffHook | Flash | PulseDigit):
            self._off_hook = True  # a flash or a pulse digit can only come off hook
        elif isinstance(event, OnHook):
            self._off_hook = False
        handler = _HANDLERS.get((self._state, type(event)))
        if handler is None:
            return []
        return handler(self, event, now)

    # -- handlers, by (state, input type) in _HANDLERS ------------------------------

    def _lift(self, event: object, now: float) -> list[PortAction]:
        return self._start_dial_tone(now)

    def _lift_dialling(self, event: PulseDigit, now: float) -> list[PortAction]:
        return self._start_dial_tone(now) + self._digit(event, now)

    def _offered_idle(self, event: IncomingCallOffer, now: float) -> list[PortAction]:
        return self._start_ringing(event, now)

    def _digit(self, event: DtmfDigit | PulseDigit, now: float) -> list[PortAction]:
        result = self._collector.digit(event.digit, now)
        out: list[PortAction] = []
        if self._state is FxsState.DIAL_TONE and (self._collector.digits or result):
            out += self._stop_tone()  # dial tone stops on the first digit
            self._state = FxsState.COLLECTING
        if result is not None:
            out += self._collected(result, now)
        return out

    def _dial_timer(self, event: TimerFired, now: float) -> list[PortAction]:
        result = self._collector.handle_timer(now)
        return [] if result is None else self._collected(result, now)

    def _redial(self, event: object, now: float) -> list[PortAction]:
        out: list[PortAction] = []
        if self._state in CALL_STATES:
            out.append(HangUpCall(Cause.NORMAL_CLEARING))
        return out + self._disconnect() + self._start_dial_tone(now)

    def _progress(self, event: RemoteProgress, now: float) -> list[PortAction]:
        if event.early_media:
            return self._stop_tone() + self._connect()
        if self._requests.bridged:
            return []  # a later 180 does not end early media (RFC 3960 practice)
        return self._play(TONE_RINGBACK)

    def _answered(self, event: RemoteAnswered, now: float) -> list[PortAction]:
        self._state = FxsState.TALKING
        return self._stop_tone() + self._connect()

    def _call_failed(self, event: CallFailed | RemoteHungUp, now: float) -> list[PortAction]:
        busy = isinstance(event, RemoteHungUp) or event.cause is Cause.USER_BUSY
        return self._disconnect() + self._lockout(TONE_BUSY if busy else TONE_CONGESTION, now)

    def _busy_offer(self, event: IncomingCallOffer, now: float) -> list[PortAction]:
        return [RejectOffer(Cause.USER_BUSY)]

    def _far_end_gone(self, event: RemoteHungUp, now: float) -> list[PortAction]:
        if self._state is FxsState.TALKING and self._other_held:
            if event.held:
                self._other_held = False
                return []
            # The user is left with the held call only: as after a flash, silence.
            self._other_held = False
            self._state = FxsState.HELD
            self._deadline = None  # a waiting call waits on without its tone
            self._cw_cid_pending = False
            return self._stop_tone() + self._disconnect()
        self._other_held = False
        self._cw_cid_pending = False
        self._state = FxsState.REMOTE_HUNG_UP
        self._deadline = now + self.config.disconnect_open_s
        return self._stop_tone() + self._disconnect() + self._set_feed(FeedMode.OPEN)

    def _flash_talking(self, event: Flash, now: float) -> list[PortAction]:
        if self._offer is not None:
            self._offer = None
            self._other_held = True
            self._deadline = None
            self._cw_cid_pending = False
            return self._stop_tone() + [HoldCall(), AnswerIncoming()]
        if self._other_held:
            return [ResumeCall()]
        self._state = FxsState.HELD
        self._deadline = None
        return [HoldCall(), *self._disconnect()]

    def _flash_held(self, event: Flash, now: float) -> list[PortAction]:
        self._state = FxsState.TALKING
        return [ResumeCall(), *self._connect()]

    def _call_waiting(self, event: IncomingCallOffer, now: float) -> list[PortAction]:
        if not self.config.call_waiting or self._offer is not None or self._other_held:
            return [RejectOffer(Cause.USER_BUSY)]
        self._offer = event
        self._cw_cid_pending = self.config.caller_id
        self._deadline = now + self.config.call_waiting_burst_s
        return self._play(TONE_CALL_WAITING)

    def _call_waiting_timer(self, event: TimerFired, now: float) -> list[PortAction]:
        offer = self._offer
        if offer is None:
            self._deadline = None
            return []
        if self._tone == TONE_CALL_WAITING:
            out = self._stop_tone()
            if self._cw_cid_pending:
                self._cw_cid_pending = False
                out.append(SendCallerId(offer.caller, offer.name, CallerIdTiming.CALL_WAITING))
            self._deadline = (
                now + self.config.call_waiting_repeat_s - self.config.call_waiting_burst_s
            )
            return out
        self._deadline = now + self.config.call_waiting_burst_s
        return self._play(TONE_CALL_WAITING)

    def _waiting_cancelled(self, event: OfferCancelled, now: float) -> list[PortAction]:
        if self._offer is None:
            return []
        self._offer = None
        self._cw_cid_pending = False
        out: list[PortAction] = []
        if self._state is FxsState.TALKING:
            self._deadline = None
            if self._tone == TONE_CALL_WAITING:
                out += self._stop_tone()
        return out

    def _dtmf_in_call(self, event: PulseDigit, now: float) -> list[PortAction]:
        return [DigitInCall(event.digit)]

    def _ring_tripped(self, event: object, now: float) -> list[PortAction]:
        self._offer = None
        self._deadline = None
        self._state = FxsState.TALKING
        return self._ring(False) + [AnswerIncoming(), *self._connect()]

    def _ring_timer(self, event: TimerFired, now: float) -> list[PortAction]:
        self._deadline = None
        offer = self._offer
        if offer is None:
            return []
        return [SendCallerId(offer.caller, offer.name, CallerIdTiming.BETWEEN_RINGS)]

    def _ring_cancelled(self, event: object, now: float) -> list[PortAction]:
        return self._quiesce()

    def _loop_closed_again(self, event: TimerFired, now: float) -> list[PortAction]:
        return self._set_feed(FeedMode.NORMAL) + self._lockout(TONE_BUSY, now)

    def _lockout_timer(self, event: TimerFired, now: float) -> list[PortAction]:
        self._deadline = None
        return self._stop_tone()

    def _flash_lockout(self, event: Flash, now: float) -> list[PortAction]:
        if self._offer is not None:  # a call waited through the far end's hang-up
            self._offer = None
            self._deadline = None
            self._state = FxsState.TALKING
            return self._stop_tone() + [AnswerIncoming(), *self._connect()]
        return self._start_dial_tone(now)

    def _hung_up(self, event: OnHook, now: float) -> list[PortAction]:
        waiting = self._offer
        in_call = self._state in CALL_STATES
        out = self._quiesce()
        if in_call:
            out.append(HangUpCall(Cause.NORMAL_CLEARING))
        if waiting is not None:
            out += self._start_ringing(waiting, now)
        return out

    def _reset(self, event: ControllerReset, now: float) -> list[PortAction]:
        # The controller is idle and forgot its configuration: feed and ringing are
        # gone whatever we asked before, and the hook state is news to come.
        state, offer = self._state, self._offer
        self._ringing = False
        self._feed = None
        self._off_hook = False
        out = self._quiesce()
        if state in CALL_STATES:
            out.append(HangUpCall(Cause.TEMPORARY_FAILURE))
        if offer is not None and state is FxsState.RINGING:
            out += self._start_ringing(offer, now)  # the caller is still waiting
        elif offer is not None:
            out.append(RejectOffer(Cause.TEMPORARY_FAILURE))
        return out

    def _mwi(self, event: MessagesWaiting, now: float) -> list[PortAction]:
        self._messages_waiting = event.waiting
        if self._state is FxsState.DIAL_TONE:
            return self._play(self._dial_tone())
        return []

    # -- helpers ----------------------------------------------------------------------

    def _dial_tone(self) -> str:
        if self._messages_waiting and self.config.stutter_dial:
            return TONE_STUTTER_DIAL
        return TONE_DIAL

    def _start_dial_tone(self, now: float) -> list[PortAction]:
        self._state = FxsState.DIAL_TONE
        self._deadline = None
        self._collector.start(now)
        return self._play(self._dial_tone()) + self._detect(True)

    def _collected(self, result: CollectResult, now: float) -> list[PortAction]:
        out = self._detect(False)
        if isinstance(result, Dial):
            self._state = FxsState.CALLING
            return out + self._stop_tone() + [PlaceCall(result.number)]
        return out + self._lockout(TONE_CONGESTION, now)  # Abandon: no digit came

    def _lockout(self, tone: str, now: float) -> list[PortAction]:
        self._state = FxsState.LOCKOUT
        self._collector.stop()
        self._deadline = now + self.config.lockout_tone_s
        return self._detect(False) + self._play(tone)

    def _start_ringing(self, offer: IncomingCallOffer, now: float) -> list[PortAction]:
        self._state = FxsState.RINGING
        self._offer = offer
        offset = self.config.caller_id_offset() if self.config.caller_id else None
        self._deadline = None if offset is None else now + offset
        return self._ring(True)

    def _quiesce(self) -> list[PortAction]:
        """Back to IDLE with nothing asked of the line or the media."""
        self._state = FxsState.IDLE
        self._deadline = None
        self._offer = None
        self._other_held = False
        self._cw_cid_pending = False
        self._collector.stop()
        return (
            self._ring(False)
            + self._set_feed(FeedMode.NORMAL)
            + self._stop_tone()
            + self._disconnect()
            + self._detect(False)
        )

    def _play(self, tone: str) -> list[PortAction]:
        if self._tone == tone:
            return []
        self._tone = tone
        return [PlayTone(tone)]

    def _stop_tone(self) -> list[PortAction]:
        if self._tone is None:
            return []
        self._tone = None
        return [StopTone()]

    def _connect(self) -> list[PortAction]:
        return self._requests.connect()

    def _disconnect(self) -> list[PortAction]:
        return self._requests.disconnect()

    def _detect(self, on: bool) -> list[PortAction]:
        return self._requests.detect(on)

    def _ring(self, on: bool) -> list[PortAction]:
        if self._ringing == on:
            return []
        self._ringing = on
        cadence = self.config.ring_cadence_ms if on else ()
        return [Ring(self.port, on, cadence)]

    def _set_feed(self, mode: FeedMode) -> list[PortAction]:
        if self._feed is mode:
            return []
        self._feed = mode
        return [Feed(self.port, mode)]


_Handler = Callable[[FxsPort, Any, float], list[PortAction]]
S = FxsState
# Pairs missing here are inputs with nothing to do in that state (see the module doc).
_HANDLERS: Final[dict[tuple[FxsState, type[object]], _Handler]] = {
    (S.IDLE, OffHook): FxsPort._lift,
    (S.IDLE, Flash): FxsPort._lift,
    (S.IDLE, PulseDigit): FxsPort._lift_dialling,
    (S.IDLE, IncomingCallOffer): FxsPort._offered_idle,
    (S.DIAL_TONE, DtmfDigit): FxsPort._digit,
    (S.DIAL_TONE, PulseDigit): FxsPort._digit,
    (S.DIAL_TONE, TimerFired): FxsPort._dial_timer,
    (S.DIAL_TONE, Flash): FxsPort._redial,
    (S.DIAL_TONE, IncomingCallOffer): FxsPort._busy_offer,
    (S.COLLECTING, DtmfDigit): FxsPort._digit,
    (S.COLLECTING, PulseDigit): FxsPort._digit,
    (S.COLLECTING, TimerFired): FxsPort._dial_timer,
    (S.COLLECTING, Flash): FxsPort._redial,
    (S.COLLECTING, IncomingCallOffer): FxsPort._busy_offer,
    (S.CALLING, RemoteProgress): FxsPort._progress,
    (S.CALLING, RemoteAnswered): FxsPort._answered,
    (S.CALLING, CallFailed): FxsPort._call_failed,
    (S.CALLING, RemoteHungUp): FxsPort._call_failed,
    (S.CALLING, Flash): FxsPort._redial,
    (S.CALLING, IncomingCallOffer): FxsPort._busy_offer,
    (S.TALKING, RemoteHungUp): FxsPort._far_end_gone,
    (S.TALKING, Flash): FxsPort._flash_talking,
    (S.TALKING, IncomingCallOffer): FxsPort._call_waiting,
    (S.TALKING, OfferCancelled): FxsPort._waiting_cancelled,
    (S.TALKING, TimerFired): FxsPort._call_waiting_timer,
    (S.TALKING, PulseDigit): FxsPort._dtmf_in_call,
    (S.HELD, Flash): FxsPort._flash_held,
    (S.HELD, RemoteHungUp): FxsPort._far_end_gone,
    (S.HELD, IncomingCallOffer): FxsPort._busy_offer,
    (S.HELD, OfferCancelled): FxsPort._waiting_cancelled,
    (S.RINGING, OffHook): FxsPort._ring_tripped,
    (S.RINGING, Flash): FxsPort._ring_tripped,
    (S.RINGING, PulseDigit): FxsPort._ring_tripped,
    (S.RINGING, TimerFired): FxsPort._ring_timer,
    (S.RINGING, OfferCancelled): FxsPort._ring_cancelled,
    (S.RINGING, RemoteHungUp): FxsPort._ring_cancelled,
    (S.RINGING, CallFailed): FxsPort._ring_cancelled,
    (S.RINGING, IncomingCallOffer): FxsPort._busy_offer,
    (S.REMOTE_HUNG_UP, TimerFired): FxsPort._loop_closed_again,
    (S.REMOTE_HUNG_UP, IncomingCallOffer): FxsPort._busy_offer,
    (S.REMOTE_HUNG_UP, OfferCancelled): FxsPort._waiting_cancelled,
    (S.LOCKOUT, TimerFired): FxsPort._lockout_timer,
    (S.LOCKOUT, Flash): FxsPort._flash_lockout,
    (S.LOCKOUT, IncomingCallOffer): FxsPort._busy_offer,
    (S.LOCKOUT, OfferCancelled): FxsPort._waiting_cancelled,
    **{(state, OnHook): FxsPort._hung_up for state in FxsState if state not in ON_HOOK_STATES},
    **{(state, ControllerReset): FxsPort._reset for state in FxsState},
    **{(state, MessagesWaiting): FxsPort._mwi for state in FxsState},
}
del S
