"""FXS port: dialling, calling, ringing with caller ID, disconnect, flash, resets.

Every test drives the port with explicit ``now`` values and asserts the exact actions.
"""

from __future__ import annotations

import pytest

from appliance.lines.digit_collector import DigitTimers, dialplan_completion
from appliance.lines.fxs import _HANDLERS, FxsConfig, FxsPort, FxsState, ring_cadence
from appliance.lines.port_actions import (
    AnswerIncoming,
    CallerIdTiming,
    CallFailed,
    ConnectAudio,
    Detect,
    Detector,
    DigitInCall,
    DisconnectAudio,
    DtmfDigit,
    HangUpCall,
    HoldCall,
    IncomingCallOffer,
    MessagesWaiting,
    OfferCancelled,
    PlaceCall,
    PlayTone,
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
from appliance.pbx.dialplan import Dialplan, IvrTarget, Route, TrunkTarget

P = 1
US_RING = (2000, 4000)
PLAN = Dialplan(
    [Route("0", IvrTarget("main"), "operator"), Route("_9.", TrunkTarget("pstn", 1), "out")]
)
RULE = dialplan_completion(PLAN, frozenset({"101", "102"}))
DTMF_ON = Detect(Detector.DTMF, True)
DTMF_OFF = Detect(Detector.DTMF, False)


def make(config: FxsConfig | None = None) -> FxsPort:
    return FxsPort(P, RULE, config)


def dial(port: FxsPort, digits: str, now: float) -> list[object]:
    out: list[object] = []
    for d in digits:
        out += port.handle(DtmfDigit(d), now)
    return out


def calling(now: float = 0.0) -> FxsPort:
    port = make()
    port.handle(OffHook(P), now)
    dial(port, "101", now)
    assert port.state is FxsState.CALLING
    return port


def talking(now: float = 0.0) -> FxsPort:
    port = calling(now)
    port.handle(RemoteAnswered(), now)
    assert port.state is FxsState.TALKING
    return port


# -- dialling ------------------------------------------------------------------------


def test_off_hook_gives_dial_tone_and_digit_detection() -> None:
    port = make()
    assert port.handle(OffHook(P), 10.0) == [PlayTone("dial"), DTMF_ON]
    assert port.state is FxsState.DIAL_TONE
    assert port.next_deadline() == 25.0  # first-digit timeout


def test_dtmf_digits_stop_dial_tone_and_place_the_call() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    assert port.handle(DtmfDigit("1"), 1.0) == [StopTone()]
    assert port.state is FxsState.COLLECTING
    assert port.handle(DtmfDigit("0"), 1.5) == []
    assert port.dialled == "10"
    assert port.handle(DtmfDigit("1"), 2.0) == [DTMF_OFF, PlaceCall("101")]
    assert port.state is FxsState.CALLING
    assert port.next_deadline() is None


def test_pulse_digits_dial_too() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    assert port.handle(PulseDigit(P, "0"), 2.0) == [StopTone(), DTMF_OFF, PlaceCall("0")]


def test_first_digit_timeout_gives_congestion() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    assert port.handle_timer(14.0) == []  # early: ignored
    assert port.handle_timer(15.0) == [DTMF_OFF, PlayTone("congestion")]
    assert port.state is FxsState.LOCKOUT
    assert port.next_deadline() == 75.0
    assert port.handle_timer(75.0) == [StopTone()]  # silence rather than a howler
    assert port.next_deadline() is None
    assert port.handle(OnHook(P), 80.0) == []
    assert port.state is FxsState.IDLE


def test_inter_digit_timeout_dials_what_was_collected() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    dial(port, "10", 1.0)
    assert port.next_deadline() == 5.0
    assert port.handle(TimerFired(), 5.0) == [DTMF_OFF, PlaceCall("10")]


def test_pattern_waits_the_short_timeout_and_hash_dials_now() -> None:
    port = FxsPort(P, RULE, FxsConfig(digit_timers=DigitTimers(maybe_complete=3.0)))
    port.handle(OffHook(P), 0.0)
    dial(port, "9555", 1.0)
    assert port.next_deadline() == 4.0
    assert port.handle(DtmfDigit("#"), 2.0) == [DTMF_OFF, PlaceCall("9555")]


def test_flash_while_dialling_restarts_dial_tone() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    dial(port, "10", 1.0)
    assert port.handle(Flash(P), 3.0) == [PlayTone("dial")]
    assert port.state is FxsState.DIAL_TONE
    assert port.dialled == ""
    assert port.next_deadline() == 18.0
    assert port.handle(Flash(P), 4.0) == []  # already fresh dial tone: timer restarts
    assert port.next_deadline() == 19.0


def test_stutter_dial_tone_when_messages_wait() -> None:
    port = make()
    assert port.handle(MessagesWaiting(True), 0.0) == []
    assert port.handle(OffHook(P), 1.0) == [PlayTone("stutter-dial"), DTMF_ON]
    assert port.handle(MessagesWaiting(False), 2.0) == [PlayTone("dial")]
    plain = make(FxsConfig(stutter_dial=False))
    plain.handle(MessagesWaiting(True), 0.0)
    assert plain.handle(OffHook(P), 1.0) == [PlayTone("dial"), DTMF_ON]


# -- calling -------------------------------------------------------------------------


def test_ringback_then_answer_connects_audio() -> None:
    port = calling()
    assert port.handle(RemoteProgress(), 1.0) == [PlayTone("ringback")]
    assert port.handle(RemoteAnswered(), 5.0) == [StopTone(), ConnectAudio()]
    assert port.state is FxsState.TALKING
    assert port.audio_connected


def test_early_media_is_not_replaced_by_ringback() -> None:
    port = calling()
    assert port.handle(RemoteProgress(early_media=True), 1.0) == [ConnectAudio()]
    assert port.handle(RemoteProgress(), 2.0) == []
    assert port.handle(RemoteAnswered(), 3.0) == []
    assert port.state is FxsState.TALKING


@pytest.mark.parametrize(
    ("cause", "tone"),
    [(Cause.USER_BUSY, "busy"), (Cause.UNALLOCATED_NUMBER, "congestion")],
)
def test_failed_call_gives_busy_or_congestion(cause: Cause, tone: str) -> None:
    port = calling()
    port.handle(RemoteProgress(), 1.0)
    assert port.handle(CallFailed(cause), 2.0) == [PlayTone(tone)]
    assert port.state is FxsState.LOCKOUT


def test_far_end_clearing_early_media_gives_busy() -> None:
    port = calling()
    port.handle(RemoteProgress(early_media=True), 1.0)
    assert port.handle(RemoteHungUp(), 2.0) == [DisconnectAudio(), PlayTone("busy")]


def test_flash_while_calling_abandons_and_gives_dial_tone() -> None:
    port = calling()
    port.handle(RemoteProgress(), 1.0)
    assert port.handle(Flash(P), 2.0) == [
        HangUpCall(Cause.NORMAL_CLEARING),
        PlayTone("dial"),
        DTMF_ON,
    ]
    assert port.state is FxsState.DIAL_TONE


def test_flash_in_lockout_gives_dial_tone() -> None:
    port = calling()
    port.handle(CallFailed(Cause.USER_BUSY), 1.0)
    assert port.handle(Flash(P), 2.0) == [PlayTone("dial"), DTMF_ON]


# -- talking, hanging up -------------------------------------------------------------


def test_on_hook_in_a_call_hangs_it_up() -> None:
    port = talking()
    assert port.handle(OnHook(P), 9.0) == [DisconnectAudio(), HangUpCall(Cause.NORMAL_CLEARING)]
    assert port.state is FxsState.IDLE


def test_far_end_hang_up_opens_the_loop_then_busy_tone() -> None:
    port = talking()
    assert port.handle(RemoteHungUp(), 10.0) == [DisconnectAudio(), Feed(P, FeedMode.OPEN)]
    assert port.state is FxsState.REMOTE_HUNG_UP
    assert port.next_deadline() == pytest.approx(10.8)
    assert port.handle(Flash(P), 10.5) == []  # loop open: ignored
    assert port.handle_timer(10.8) == [Feed(P, FeedMode.NORMAL), PlayTone("busy")]
    assert port.state is FxsState.LOCKOUT
    assert port.handle(OnHook(P), 12.0) == [StopTone()]
    assert port.state is FxsState.IDLE


def test_on_hook_during_the_open_loop_restores_feed() -> None:
    port = talking()
    port.handle(RemoteHungUp(), 10.0)
    assert port.handle(OnHook(P), 10.3) == [Feed(P, FeedMode.NORMAL)]
    assert port.state is FxsState.IDLE
    assert port.next_deadline() is None


def test_flash_holds_and_resumes() -> None:
    port = talking()
    assert port.handle(Flash(P), 1.0) == [HoldCall(), DisconnectAudio()]
    assert port.state is FxsState.HELD
    assert port.handle(Flash(P), 2.0) == [ResumeCall(), ConnectAudio()]
    assert port.state is FxsState.TALKING


def test_held_party_hanging_up_gives_disconnect() -> None:
    port = talking()
    port.handle(Flash(P), 1.0)
    assert port.handle(RemoteHungUp(), 2.0) == [Feed(P, FeedMode.OPEN)]


def test_pulse_digit_in_a_call_is_passed_on() -> None:
    port = talking()
    assert port.handle(PulseDigit(P, "3"), 1.0) == [DigitInCall("3")]
    assert port.handle(DtmfDigit("3"), 1.0) == []  # DTMF travels in the audio


# -- ringing and caller ID -----------------------------------------------------------


def test_incoming_call_rings_sends_caller_id_between_rings_and_answers() -> None:
    port = make()
    offer = IncomingCallOffer("5551234", "Alice")
    assert port.handle(offer, 0.0) == [Ring(P, True, US_RING)]
    assert port.state is FxsState.RINGING
    assert port.next_deadline() == 2.5  # 2 s burst, then 0.5 s
    assert port.handle_timer(2.5) == [
        SendCallerId("5551234", "Alice", CallerIdTiming.BETWEEN_RINGS)
    ]
    assert port.next_deadline() is None
    assert port.handle(OffHook(P), 7.0) == [Ring(P, False), AnswerIncoming(), ConnectAudio()]
    assert port.state is FxsState.TALKING


def test_answer_before_caller_id_cancels_it() -> None:
    port = make()
    port.handle(IncomingCallOffer("5551234"), 0.0)
    assert port.handle(OffHook(P), 1.0) == [Ring(P, False), AnswerIncoming(), ConnectAudio()]
    assert port.next_deadline() is None


def test_caller_gives_up_while_ringing() -> None:
    port = make()
    port.handle(IncomingCallOffer(None), 0.0)
    assert port.handle(OnHook(P), 1.0) == []  # on hook already: ringing goes on
    assert port.handle(OfferCancelled(), 3.0) == [Ring(P, False)]
    assert port.state is FxsState.IDLE
    assert port.next_deadline() is None


def test_no_caller_id_when_switched_off() -> None:
    port = make(FxsConfig(caller_id=False))
    port.handle(IncomingCallOffer("5551234"), 0.0)
    assert port.next_deadline() is None


def test_offer_while_off_hook_is_busy() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    assert port.handle(IncomingCallOffer("200"), 1.0) == [RejectOffer(Cause.USER_BUSY)]
    port = make()
    port.handle(IncomingCallOffer("200"), 0.0)
    assert port.handle(IncomingCallOffer("300"), 1.0) == [RejectOffer(Cause.USER_BUSY)]


@pytest.mark.parametrize(
    ("country", "cadence", "offset"),
    [
        ("US", (2000, 4000), 2.5),
        ("DE", (1000, 4000), 1.5),
        ("ES", (1500, 3000), 2.0),
        ("GB", (400, 200, 400, 2000), None),  # UK caller ID comes before the ring
    ],
)
def test_caller_id_goes_in_the_first_long_silence(
    country: str, cadence: tuple[int, ...], offset: float | None
) -> None:
    assert ring_cadence(country) == cadence
    assert FxsConfig(ring_cadence_ms=cadence).caller_id_offset() == offset


def test_caller_id_skips_a_short_silence() -> None:
    config = FxsConfig(ring_cadence_ms=(400, 200, 400, 3000))
    assert config.caller_id_offset() == pytest.approx(1.5)


@pytest.mark.parametrize("cadence", [(), (2000,), (2000, 0), (2000, -1, 400, 200)])
def test_bad_ring_cadence_is_refused(cadence: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="cadence"):
        FxsConfig(ring_cadence_ms=cadence)


# -- call waiting --------------------------------------------------------------------


def test_call_waiting_tone_caller_id_and_answer_by_flash() -> None:
    port = talking()
    assert port.handle(IncomingCallOffer("200", "Bob"), 10.0) == [PlayTone("call-waiting")]
    assert port.next_deadline() == 11.0
    assert port.handle_timer(11.0) == [
        StopTone(),
        SendCallerId("200", "Bob", CallerIdTiming.CALL_WAITING),
    ]
    assert port.next_deadline() == 20.0
    assert port.handle_timer(20.0) == [PlayTone("call-waiting")]
    assert port.handle(IncomingCallOffer("300"), 20.2) == [RejectOffer(Cause.USER_BUSY)]
    assert port.handle(Flash(P), 20.5) == [StopTone(), HoldCall(), AnswerIncoming()]
    assert port.state is FxsState.TALKING
    assert port.next_deadline() is None
    assert port.handle(Flash(P), 30.0) == [ResumeCall()]  # swap
    assert port.handle(RemoteHungUp(held=True), 31.0) == []
    assert port.handle(Flash(P), 32.0) == [HoldCall(), DisconnectAudio()]


def test_waiting_caller_gives_up() -> None:
    port = talking()
    port.handle(IncomingCallOffer("200"), 10.0)
    assert port.handle(OfferCancelled(), 10.5) == [StopTone()]
    assert port.next_deadline() is None
    assert port.handle(Flash(P), 11.0) == [HoldCall(), DisconnectAudio()]


def test_hanging_up_on_a_waiting_call_rings_for_it() -> None:
    port = talking()
    port.handle(IncomingCallOffer("200", "Bob"), 10.0)
    port.handle_timer(11.0)
    assert port.handle(OnHook(P), 12.0) == [
        DisconnectAudio(),
        HangUpCall(Cause.NORMAL_CLEARING),
        Ring(P, True, US_RING),
    ]
    assert port.state is FxsState.RINGING
    assert port.next_deadline() == 14.5


def test_active_party_leaving_with_a_call_held_leaves_the_held_call() -> None:
    port = talking()
    port.handle(IncomingCallOffer("200"), 10.0)
    port.handle(Flash(P), 10.5)
    assert port.handle(RemoteHungUp(), 11.0) == [DisconnectAudio()]
    assert port.state is FxsState.HELD
    assert port.handle(Flash(P), 12.0) == [ResumeCall(), ConnectAudio()]


def test_call_waiting_switched_off_rejects() -> None:
    port = FxsPort(P, RULE, FxsConfig(call_waiting=False))
    port.handle(IncomingCallOffer("100"), 0.0)
    port.handle(OffHook(P), 1.0)
    assert port.handle(IncomingCallOffer("200"), 2.0) == [RejectOffer(Cause.USER_BUSY)]


# -- controller resets, stray input ----------------------------------------------------


def test_reset_during_a_call_hangs_it_up() -> None:
    port = talking()
    assert port.handle(ControllerReset(), 5.0) == [
        Feed(P, FeedMode.NORMAL),
        DisconnectAudio(),
        HangUpCall(Cause.TEMPORARY_FAILURE),
    ]
    assert port.state is FxsState.IDLE
    assert not port.off_hook


def test_reset_while_ringing_rings_again() -> None:
    port = make()
    port.handle(IncomingCallOffer("200"), 0.0)
    port.handle_timer(2.5)
    assert port.handle(ControllerReset(), 5.0) == [
        Feed(P, FeedMode.NORMAL),
        Ring(P, True, US_RING),
    ]
    assert port.state is FxsState.RINGING
    assert port.next_deadline() == 7.5


def test_reset_while_idle_restores_feed() -> None:
    assert make().handle(ControllerReset(), 0.0) == [Feed(P, FeedMode.NORMAL)]


def test_reset_while_dialling_goes_idle() -> None:
    port = make()
    port.handle(OffHook(P), 0.0)
    assert port.handle(ControllerReset(), 1.0) == [
        Feed(P, FeedMode.NORMAL),
        StopTone(),
        DTMF_OFF,
    ]
    assert port.state is FxsState.IDLE


def test_signals_for_other_ports_are_ignored() -> None:
    port = make()
    assert port.handle(OffHook(2), 0.0) == []
    assert port.state is FxsState.IDLE


def test_flash_or_pulse_digit_while_idle_means_off_hook() -> None:
    port = make()
    assert port.handle(PulseDigit(P, "1"), 0.0) == [PlayTone("dial"), DTMF_ON, StopTone()]
    assert port.state is FxsState.COLLECTING
    assert port.off_hook


SAMPLES: list[PortInput] = [
    OffHook(P),
    OnHook(P),
    Flash(P),
    PulseDigit(P, "1"),
    DtmfDigit("1"),
    IncomingCallOffer("200"),
    OfferCancelled(),
    RemoteProgress(),
    RemoteAnswered(),
    RemoteHungUp(),
    CallFailed(Cause.USER_BUSY),
    MessagesWaiting(True),
    ControllerReset(),
    TimerFired(),
]
ROUTES_TO: dict[FxsState, list[PortInput]] = {
    FxsState.IDLE: [],
    FxsState.DIAL_TONE: [OffHook(P)],
    FxsState.COLLECTING: [OffHook(P), DtmfDigit("1")],
    FxsState.CALLING: [OffHook(P), DtmfDigit("0")],
    FxsState.TALKING: [IncomingCallOffer("200"), OffHook(P)],
    FxsState.HELD: [IncomingCallOffer("200"), OffHook(P), Flash(P)],
    FxsState.RINGING: [IncomingCallOffer("200")],
    FxsState.REMOTE_HUNG_UP: [IncomingCallOffer("200"), OffHook(P), RemoteHungUp()],
    FxsState.LOCKOUT: [OffHook(P), DtmfDigit("0"), CallFailed(Cause.USER_BUSY)],
}


@pytest.mark.parametrize("state", list(FxsState))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_state_takes_every_input(state: FxsState, sample: PortInput) -> None:
    port = make()
    for event in ROUTES_TO[state]:
        port.handle(event, 0.0)
    assert port.state is state
    deadline = port.next_deadline()
    now = deadline if isinstance(sample, TimerFired) and deadline is not None else 0.5
    actions = port.handle(sample, now)  # never raises
    if (state, type(sample)) not in _HANDLERS:  # a missing pair does nothing
        assert actions == []
        assert port.state is state
    after = port.next_deadline()
    assert after is None or after > now


def test_table_covers_on_hook_in_every_off_hook_state() -> None:
    for state in FxsState:
        expected = state not in (FxsState.IDLE, FxsState.RINGING)
        assert ((state, OnHook) in _HANDLERS) is expected
