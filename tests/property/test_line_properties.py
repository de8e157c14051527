"""Hypothesis: FXS and FXO ports and the digit collector survive any sequence of line
signals, call-control and audio inputs and timers, and keep the line sane.

Each run is driven as the edge adapter would drive it: before an input at time t, every
deadline up to t fires in order. A shadow of the line and media, built only from the
actions the port returned, must agree with what the port believes, and must never show
a phone rung while off hook, tone or audio left on after on-hook, or an FXO line still
seized after a disconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from appliance.lines.digit_collector import (
    Abandon,
    Dial,
    DigitCollector,
    DigitTimers,
    dialplan_completion,
)
from appliance.lines.fxo import SEIZED_STATES, DialMode, FxoConfig, FxoPort, FxoState
from appliance.lines.fxs import FxsConfig, FxsPort, FxsState
from appliance.lines.port_actions import (
    BusyToneDetected,
    CallerIdReceived,
    CallFailed,
    ConnectAudio,
    Detect,
    Detector,
    DialOut,
    DialToneDetected,
    DisconnectAudio,
    DtmfDigit,
    IncomingCall,
    IncomingCallOffer,
    MessagesWaiting,
    OfferCancelled,
    PlaceCall,
    PlayTone,
    PortAction,
    PortInput,
    RemoteAnswered,
    RemoteHungUp,
    RemoteProgress,
    StopTone,
    TimerFired,
)
from appliance.lines.signals import (
    ControllerReset,
    Feed,
    FeedMode,
    Flash,
    Hook,
    LoopCurrentDrop,
    OffHook,
    OnHook,
    PolarityReversal,
    PulseDigit,
    Ring,
    RingStart,
    RingStop,
)
from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import DIAL_CHARS, MAX_NUMBER_LENGTH, Dialplan, IvrTarget, Route
from appliance.pbx.dialplan import TrunkTarget as Trunk

P = 1
PLAN = Dialplan(
    [
        Route("0", IvrTarget("main"), "operator"),
        Route("_9.", Trunk("pstn", 1), "out"),
        Route("*21#", IvrTarget("fwd"), "fwd"),
    ]
)
RULE = dialplan_completion(PLAN, frozenset({"101", "102", "2010", "201"}))
MAX_FIRES = 1000  # per gap: more would mean a deadline that never moves on

# A run is brisk (no timer has time to run out, so states reached stay reached) or
# leisurely (timers fire between inputs, at the boundaries the ports use).
brisk = st.sampled_from([0.0, 0.05, 0.1, 0.2])
leisurely = st.one_of(
    st.sampled_from([0.0, 0.3, 0.8, 1.0, 2.5, 4.0, 15.0, 61.0]),
    st.floats(0.0, 20.0, allow_nan=False),
)
keys = st.sampled_from("0123456789*#A")

# Flat lists, so that each input is as likely as any other; a scripted prefix then
# puts the port in each of its states before the random part starts, as rare paths
# (a call answered, then the far end gone) are otherwise seldom drawn.
FXS_INPUTS: list[PortInput] = [
    OffHook(P),
    OnHook(P),
    OnHook(P),
    Flash(P),
    PulseDigit(P, "1"),
    PulseDigit(P, "0"),
    DtmfDigit("1"),
    DtmfDigit("0"),
    DtmfDigit("9"),
    DtmfDigit("#"),
    DtmfDigit("A"),
    IncomingCallOffer("200", "Bob"),
    IncomingCallOffer(None),
    OfferCancelled(),
    RemoteAnswered(),
    RemoteHungUp(),
    RemoteHungUp(held=True),
    RemoteProgress(),
    RemoteProgress(early_media=True),
    CallFailed(Cause.USER_BUSY),
    CallFailed(Cause.UNALLOCATED_NUMBER),
    MessagesWaiting(True),
    MessagesWaiting(False),
    ControllerReset(),
    TimerFired(),
    OffHook(P + 1),
    RingStart(P),
    DialToneDetected(),
]
_TALKING: list[PortInput] = [OffHook(P), DtmfDigit("0"), RemoteAnswered()]
FXS_PREFIXES: list[list[PortInput]] = [
    [],
    [OffHook(P)],
    [OffHook(P), DtmfDigit("1")],
    [OffHook(P), DtmfDigit("0")],
    _TALKING,
    [IncomingCallOffer("200"), OffHook(P)],
    [*_TALKING, IncomingCallOffer("300")],
    [*_TALKING, IncomingCallOffer("300"), Flash(P)],
    [*_TALKING, Flash(P)],
    [*_TALKING, RemoteHungUp()],
    [IncomingCallOffer("200", "Bob")],
]
FXO_INPUTS: list[PortInput] = [
    RingStart(P),
    RingStart(P),
    RingStop(P),
    RingStop(P),
    PolarityReversal(P),
    LoopCurrentDrop(P),
    DialToneDetected(),
    BusyToneDetected(),
    RemoteAnswered(),
    RemoteHungUp(),
    CallFailed(Cause.USER_BUSY),
    ControllerReset(),
    TimerFired(),
    RingStart(P + 1),
    OffHook(P),
    CallerIdReceived("555", None),
    CallerIdReceived(None, None),
    DialOut(""),
    DialOut("123"),
    DialOut("9*#"),
    DialOut("12x"),
]
FXO_PREFIXES: list[list[PortInput]] = [
    [],
    [RingStart(P)],
    [RingStart(P), RingStop(P), RingStart(P)],
    [RingStart(P), RingStop(P), RingStart(P), RemoteAnswered()],
    [RingStart(P), RingStop(P), RingStart(P), CallFailed(Cause.USER_BUSY)],
    [DialOut("123")],
    [DialOut("123"), DialToneDetected()],
    [DialOut(""), DialToneDetected()],
]


def runs(
    prefixes: list[list[PortInput]], inputs: list[PortInput]
) -> st.SearchStrategy[list[tuple[PortInput, float]]]:
    prefix = st.sampled_from(prefixes).map(lambda events: [(e, 0.1) for e in events])
    rest = st.sampled_from([brisk, leisurely]).flatmap(
        lambda gaps: st.lists(st.tuples(st.sampled_from(inputs), gaps), max_size=40)
    )
    return st.builds(lambda a, b: a + b, prefix, rest)


fxs_configs = st.builds(
    FxsConfig,
    ring_cadence_ms=st.sampled_from([(2000, 4000), (400, 200, 400, 2000), (1000, 4000)]),
    caller_id=st.booleans(),
    call_waiting=st.booleans(),
    stutter_dial=st.booleans(),
)
fxo_configs = st.builds(
    FxoConfig,
    answer_on_polarity=st.booleans(),
    blind_dial=st.booleans(),
    dial_mode=st.sampled_from(DialMode),
)


@dataclass
class Shadow:
    """The line and media as the port's actions left them."""

    tone: str | None = None
    audio: bool = False
    ringing: bool = False
    feed: FeedMode = FeedMode.NORMAL
    off_hook: bool = False  # FXO: the line is seized
    detectors: set[Detector] = field(default_factory=set)

    def apply(self, actions: list[PortAction]) -> None:
        for action in actions:
            if isinstance(action, PlayTone):
                self.tone = action.name
            elif isinstance(action, StopTone):
                self.tone = None
            elif isinstance(action, ConnectAudio | DisconnectAudio):
                self.audio = isinstance(action, ConnectAudio)
            elif isinstance(action, Ring):
                assert action.port == P
                assert not action.on or action.cadence_ms, "ringing needs a cadence"
                self.ringing = action.on
            elif isinstance(action, Feed):
                self.feed = action.mode
            elif isinstance(action, Hook):
                self.off_hook = action.off
            elif isinstance(action, Detect):
                if action.on:
                    self.detectors.add(action.detector)
                else:
                    self.detectors.discard(action.detector)


Port = FxsPort | FxoPort
Check = Callable[[PortInput | None, list[PortAction], float], None]


def drive(port: Port, steps: list[tuple[PortInput, float]], check: Check) -> None:
    """Feed the steps, firing every deadline that falls due in between."""
    now = 0.0
    for event, gap in steps:
        target = now + gap
        for _ in range(MAX_FIRES):
            deadline = port.next_deadline()
            if deadline is None or deadline > target:
                break
            assert deadline >= now, "a deadline in the past"
            now = deadline
            check(None, port.handle_timer(now), now)
        else:
            raise AssertionError("timers keep firing without time passing")
        now = target
        check(event, port.handle(event, now), now)


@given(fxs_configs, runs(FXS_PREFIXES, FXS_INPUTS))
def test_fxs_keeps_the_line_sane(config: FxsConfig, steps: list[tuple[PortInput, float]]) -> None:
    port = FxsPort(P, RULE, config)
    shadow = Shadow()
    phone_off_hook = False

    def check(event: PortInput | None, actions: list[PortAction], now: float) -> None:
        nonlocal phone_off_hook
        if isinstance(event, OffHook | Flash | PulseDigit) and event.port == P:
            phone_off_hook = True
        elif isinstance(event, OnHook | ControllerReset):
            phone_off_hook = False  # after a reset the controller reports the hook anew
        rang = any(isinstance(a, Ring) and a.on for a in actions)
        assert not (rang and phone_off_hook), "rang a phone that is off hook"
        shadow.apply(actions)
        assert (shadow.tone, shadow.audio, shadow.ringing) == (
            port.tone,
            port.audio_connected,
            port.ringing,
        )
        assert shadow.feed is port.feed
        assert (Detector.DTMF in shadow.detectors) == port.detecting_digits
        assert shadow.ringing == (port.state is FxsState.RINGING)
        assert not (shadow.ringing and port.off_hook)
        if shadow.audio:
            assert port.state in (FxsState.CALLING, FxsState.TALKING)
        if shadow.feed is not FeedMode.NORMAL:  # open only to signal the disconnect
            assert port.state is FxsState.REMOTE_HUNG_UP
        if port.state is FxsState.IDLE:
            assert shadow.tone is None and not shadow.detectors
        for action in actions:
            if isinstance(action, PlaceCall):
                assert 0 < len(action.number) <= MAX_NUMBER_LENGTH
                assert set(action.number) <= DIAL_CHARS
        if isinstance(event, OnHook) and event.port == P:
            assert port.state in (FxsState.IDLE, FxsState.RINGING)
            assert shadow.tone is None and not shadow.audio and not shadow.detectors
            assert shadow.feed is FeedMode.NORMAL
        deadline = port.next_deadline()
        assert deadline is None or deadline > now

    drive(port, steps, check)


@given(fxo_configs, runs(FXO_PREFIXES, FXO_INPUTS))
def test_fxo_never_stays_seized_after_a_disconnect(
    config: FxoConfig, steps: list[tuple[PortInput, float]]
) -> None:
    port = FxoPort(P, config)
    shadow = Shadow()
    offers = 0

    def check(event: PortInput | None, actions: list[PortAction], now: float) -> None:
        nonlocal offers
        shadow.apply(actions)
        assert shadow.off_hook == port.seized == (port.state in SEIZED_STATES)
        assert shadow.audio == port.audio_connected
        assert (Detector.PROGRESS_TONES in shadow.detectors) == port.detecting_tones
        assert not shadow.audio or shadow.off_hook, "audio on a line that is on hook"
        assert shadow.tone is None and not shadow.ringing  # an FXO port plays no tones
        offers += sum(isinstance(a, IncomingCall) for a in actions)
        assert offers <= 1, "one ringing call offered twice"
        if port.state is FxoState.IDLE:
            offers = 0
        disconnects: tuple[type, ...] = (LoopCurrentDrop, BusyToneDetected, RemoteHungUp)
        if not config.answer_on_polarity:
            disconnects += (PolarityReversal,)
        if isinstance(event, disconnects) and getattr(event, "port", P) == P:
            assert not shadow.off_hook, "still seized after a disconnect"
        deadline = port.next_deadline()
        assert deadline is None or deadline > now

    drive(port, steps, check)


@given(
    st.lists(st.tuples(keys, st.floats(0.0, 6.0, allow_nan=False)), max_size=50),
    st.builds(
        DigitTimers,
        first_digit=st.floats(0.5, 20.0),
        inter_digit=st.floats(0.5, 10.0),
        maybe_complete=st.floats(0.5, 5.0),
    ),
)
def test_collector_always_ends_in_a_diallable_number_or_abandon(
    presses: list[tuple[str, float]], timers: DigitTimers
) -> None:
    collector = DigitCollector(RULE, timers)
    collector.start(0.0)
    now = 0.0
    results: list[Dial | Abandon] = []
    for key, gap in presses:
        deadline = collector.next_deadline()
        if deadline is not None and deadline <= now + gap:
            if (r := collector.handle_timer(deadline)) is not None:
                results.append(r)
        now += gap
        if (r := collector.digit(key, now)) is not None:
            results.append(r)
        if results:
            break
    if not results:
        deadline = collector.next_deadline()
        assert deadline is not None and deadline > now
        result = collector.handle_timer(deadline)
        assert result is not None
        results.append(result)
    assert len(results) == 1
    assert not collector.active
    if isinstance(results[0], Dial):
        number = results[0].number
        assert 0 < len(number) <= MAX_NUMBER_LENGTH
        assert set(number) <= DIAL_CHARS
