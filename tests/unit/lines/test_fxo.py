"""FXO port: ring counting and caller ID, answering, dialling out, disconnect detection."""

from __future__ import annotations

import pytest

from appliance.lines.fxo import (
    _HANDLERS,
    SEIZED_STATES,
    DialMode,
    FxoConfig,
    FxoPort,
    FxoState,
)
from appliance.lines.port_actions import (
    BusyToneDetected,
    CallerId,
    CallerIdReceived,
    CallFailed,
    ConnectAudio,
    Detect,
    Detector,
    DialOut,
    DialToneDetected,
    DisconnectAudio,
    HangUpCall,
    IncomingCall,
    OutboundAnswered,
    OutboundProgress,
    PortInput,
    RejectOffer,
    RemoteAnswered,
    RemoteHungUp,
    SendDtmf,
    TimerFired,
)
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Hook,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
    RingStop,
)
from appliance.pbx.causes import Cause

P = 3
TONES_ON = Detect(Detector.PROGRESS_TONES, True)
TONES_OFF = Detect(Detector.PROGRESS_TONES, False)
RELEASE = [DisconnectAudio(), TONES_OFF, Hook(P, off=False)]


def offered(caller_id: bool = True) -> FxoPort:
    port = FxoPort(P)
    port.handle(RingStart(P), 0.0)
    port.handle(RingStop(P), 2.0)
    if caller_id:
        port.handle(CallerIdReceived("5551234", "ALICE"), 3.0)
    else:
        port.handle(RingStart(P), 6.0)
    assert port.state is FxoState.OFFERED
    return port


def connected_inbound() -> FxoPort:
    port = offered()
    port.handle(RemoteAnswered(), 4.0)
    return port


def connected_outbound(config: FxoConfig | None = None) -> FxoPort:
    port = FxoPort(P, config)
    port.handle(DialOut("123"), 0.0)
    port.handle(DialToneDetected(), 0.5)
    port.handle_timer(port.next_deadline() or 0.0)
    return port


# -- inbound -------------------------------------------------------------------------


def test_caller_id_between_rings_offers_the_call() -> None:
    port = FxoPort(P)
    assert port.handle(RingStart(P), 0.0) == []
    assert port.state is FxoState.RING_DETECTED
    assert port.handle(RingStop(P), 2.0) == []
    assert port.next_deadline() == 8.0
    assert port.handle(CallerIdReceived("5551234", "ALICE"), 3.0) == [
        IncomingCall(CallerId("5551234", "ALICE"))
    ]
    assert port.state is FxoState.OFFERED
    assert port.handle(RingStart(P), 6.0) == []
    assert port.rings == 2
    assert port.handle(RemoteAnswered(), 7.0) == [Hook(P, off=True), TONES_ON, ConnectAudio()]
    assert port.state is FxoState.CONNECTED
    assert port.next_deadline() is None


def test_second_ring_offers_without_caller_id() -> None:
    port = FxoPort(P)
    port.handle(RingStart(P), 0.0)
    port.handle(RingStop(P), 2.0)
    assert port.handle(RingStart(P), 6.0) == [IncomingCall(None)]
    assert port.handle(CallerIdReceived("5551234", None), 6.5) == []  # too late


def test_caller_id_before_the_first_ring_is_used() -> None:
    port = FxoPort(P)
    assert port.handle(CallerIdReceived("01632960000", None), 10.0) == []
    assert port.handle(RingStart(P), 11.0) == [IncomingCall(CallerId("01632960000", None))]


def test_stale_caller_id_is_not_used() -> None:
    port = FxoPort(P)
    port.handle(CallerIdReceived("01632960000", None), 10.0)
    assert port.handle(RingStart(P), 20.0) == []
    assert port.state is FxoState.RING_DETECTED


def test_caller_giving_up_is_reported_after_the_ring_timeout() -> None:
    port = offered(caller_id=False)
    port.handle(RingStop(P), 8.0)
    assert port.next_deadline() == 14.0
    assert port.handle_timer(13.9) == []
    assert port.handle_timer(14.0) == [HangUpCall(Cause.NORMAL_CLEARING)]
    assert port.state is FxoState.IDLE
    assert port.rings == 0


def test_a_single_ring_times_out_silently() -> None:
    port = FxoPort(P)
    port.handle(RingStart(P), 0.0)
    port.handle(RingStop(P), 1.0)
    assert port.handle_timer(7.0) == []
    assert port.state is FxoState.IDLE


def test_refused_call_rings_out() -> None:
    port = offered()
    assert port.handle(CallFailed(Cause.UNALLOCATED_NUMBER), 3.5) == []
    assert port.state is FxoState.REJECTED
    assert port.handle(RingStart(P), 6.0) == []
    assert port.handle(RingStop(P), 8.0) == []
    assert port.handle(RemoteAnswered(), 8.5) == []
    assert port.handle_timer(14.0) == []
    assert port.state is FxoState.IDLE


@pytest.mark.parametrize(
    "signal",
    [PolarityReversal(P), LoopCurrentDrop(P), BusyToneDetected()],
    ids=lambda s: type(s).__name__,
)
def test_disconnect_in_a_call_releases_the_line(signal: PortInput) -> None:
    port = connected_inbound()
    assert port.handle(signal, 60.0) == [*RELEASE, HangUpCall(Cause.NORMAL_CLEARING)]
    assert port.state is FxoState.IDLE
    assert not port.seized


def test_call_control_hanging_up_releases_without_a_hang_up_back() -> None:
    port = connected_inbound()
    assert port.handle(RemoteHungUp(), 60.0) == RELEASE
    assert port.state is FxoState.IDLE


# -- outbound ------------------------------------------------------------------------


def test_dial_out_waits_for_dial_tone_then_dials_and_cuts_through() -> None:
    port = FxoPort(P)
    assert port.handle(DialOut("5551234"), 0.0) == [Hook(P, off=True), TONES_ON]
    assert port.state is FxoState.SEIZED
    assert port.next_deadline() == 3.0
    assert port.handle(DialToneDetected(), 0.5) == [SendDtmf("5551234", 100, 100)]
    assert port.state is FxoState.DIALING
    assert port.next_deadline() == pytest.approx(0.5 + 1.4 + 0.3)
    assert port.handle(DialToneDetected(), 0.6) == []
    assert port.handle_timer(2.2) == [ConnectAudio(), OutboundProgress(), OutboundAnswered()]
    assert port.state is FxoState.CONNECTED
    assert port.next_deadline() is None


def test_blind_dial_after_three_seconds() -> None:
    port = FxoPort(P)
    port.handle(DialOut("12"), 0.0)
    assert port.handle_timer(3.0) == [SendDtmf("12", 100, 100)]


def test_no_dial_tone_fails_without_blind_dialling() -> None:
    port = FxoPort(P, FxoConfig(blind_dial=False))
    port.handle(DialOut("12"), 0.0)
    assert port.handle_timer(3.0) == [
        TONES_OFF,
        Hook(P, off=False),
        HangUpCall(Cause.NO_CIRCUIT_AVAILABLE),
    ]
    assert not port.seized


def test_pulse_dialling_and_its_duration() -> None:
    port = FxoPort(P, FxoConfig(dial_mode=DialMode.PULSE))
    port.handle(DialOut("109"), 0.0)
    assert port.handle(DialToneDetected(), 1.0) == [DialPulses(P, "109")]
    # (1 + 10 + 9) breaks of 100 ms, 3 inter-digit pauses of 800 ms, 0.3 s margin
    assert port.next_deadline() == pytest.approx(1.0 + 2.0 + 2.4 + 0.3)


@pytest.mark.parametrize(
    ("mode", "number"),
    [(DialMode.PULSE, "*1"), (DialMode.DTMF, "12x"), (DialMode.DTMF, "1" * 33)],
)
def test_undiallable_numbers_are_refused(mode: DialMode, number: str) -> None:
    port = FxoPort(P, FxoConfig(dial_mode=mode))
    assert port.handle(DialOut(number), 0.0) == [RejectOffer(Cause.INVALID_NUMBER_FORMAT)]
    assert port.state is FxoState.IDLE


def test_empty_number_seizes_and_cuts_through() -> None:
    port = FxoPort(P)
    port.handle(DialOut(""), 0.0)
    assert port.handle(DialToneDetected(), 0.4) == [
        ConnectAudio(),
        OutboundProgress(),
        OutboundAnswered(),
    ]


def test_answer_on_polarity_reversal() -> None:
    port = connected_outbound(FxoConfig(answer_on_polarity=True))
    assert port.state is FxoState.PROGRESS
    assert port.audio_connected
    assert port.handle(PolarityReversal(P), 9.0) == [OutboundAnswered()]
    assert port.state is FxoState.CONNECTED
    assert port.handle(PolarityReversal(P), 30.0) == [*RELEASE, HangUpCall(Cause.NORMAL_CLEARING)]


def test_reversal_before_dialling_ends_is_ignored_with_answer_on_polarity() -> None:
    port = FxoPort(P, FxoConfig(answer_on_polarity=True))
    port.handle(DialOut("12"), 0.0)
    port.handle(DialToneDetected(), 0.5)
    assert port.handle(PolarityReversal(P), 0.6) == []
    assert port.state is FxoState.DIALING


def test_busy_tone_before_answer_is_user_busy() -> None:
    port = connected_outbound(FxoConfig(answer_on_polarity=True))
    assert port.handle(BusyToneDetected(), 5.0) == [*RELEASE, HangUpCall(Cause.USER_BUSY)]


def test_line_failing_before_dialling() -> None:
    port = FxoPort(P)
    port.handle(DialOut("12"), 0.0)
    assert port.handle(PolarityReversal(P), 1.0) == [
        TONES_OFF,
        Hook(P, off=False),
        HangUpCall(Cause.NO_CIRCUIT_AVAILABLE),
    ]


def test_dial_out_while_the_line_rings_or_is_busy_is_refused() -> None:
    port = FxoPort(P)
    port.handle(RingStart(P), 0.0)
    assert port.handle(DialOut("12"), 0.5) == [RejectOffer(Cause.NO_CIRCUIT_AVAILABLE)]
    port = connected_outbound()
    assert port.handle(DialOut("12"), 9.0) == [RejectOffer(Cause.NO_CIRCUIT_AVAILABLE)]


def test_call_control_cancelling_while_dialling() -> None:
    port = FxoPort(P)
    port.handle(DialOut("12"), 0.0)
    port.handle(DialToneDetected(), 0.5)
    assert port.handle(RemoteHungUp(), 0.6) == [TONES_OFF, Hook(P, off=False)]
    assert port.next_deadline() is None


# -- controller resets, stray input ----------------------------------------------------


def test_reset_in_a_call_drops_it() -> None:
    port = connected_outbound()
    assert port.handle(ControllerReset(), 9.0) == [*RELEASE, HangUpCall(Cause.TEMPORARY_FAILURE)]
    assert port.state is FxoState.IDLE


def test_reset_while_ringing_keeps_counting() -> None:
    port = offered()
    assert port.handle(ControllerReset(), 3.5) == []
    assert port.state is FxoState.OFFERED


def test_signals_for_other_ports_are_ignored() -> None:
    port = FxoPort(P)
    assert port.handle(RingStart(P + 1), 0.0) == []
    assert port.state is FxoState.IDLE


SAMPLES: list[PortInput] = [
    RingStart(P),
    RingStop(P),
    PolarityReversal(P),
    LoopCurrentDrop(P),
    CallerIdReceived("1", None),
    DialToneDetected(),
    BusyToneDetected(),
    DialOut("12"),
    RemoteAnswered(),
    RemoteHungUp(),
    CallFailed(Cause.USER_BUSY),
    ControllerReset(),
    TimerFired(),
]
ROUTES_TO: dict[FxoState, tuple[FxoConfig, list[PortInput]]] = {
    FxoState.IDLE: (FxoConfig(), []),
    FxoState.RING_DETECTED: (FxoConfig(), [RingStart(P)]),
    FxoState.OFFERED: (FxoConfig(), [RingStart(P), RingStart(P)]),
    FxoState.REJECTED: (FxoConfig(), [RingStart(P), RingStart(P), RemoteHungUp()]),
    FxoState.SEIZED: (FxoConfig(), [DialOut("12")]),
    FxoState.DIALING: (FxoConfig(), [DialOut("12"), DialToneDetected()]),
    FxoState.PROGRESS: (FxoConfig(answer_on_polarity=True), [DialOut(""), DialToneDetected()]),
    FxoState.CONNECTED: (FxoConfig(), [DialOut(""), DialToneDetected()]),
}


@pytest.mark.parametrize("state", list(FxoState))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda e: type(e).__name__)
def test_every_state_takes_every_input(state: FxoState, sample: PortInput) -> None:
    config, route = ROUTES_TO[state]
    port = FxoPort(P, config)
    for event in route:
        port.handle(event, 0.0)
    assert port.state is state
    deadline = port.next_deadline()
    now = deadline if isinstance(sample, TimerFired) and deadline is not None else 0.1
    actions = port.handle(sample, now)  # never raises
    if (state, type(sample)) not in _HANDLERS:  # a missing pair does nothing
        assert actions == []
        assert port.state is state
    after = port.next_deadline()
    assert after is None or after > now
    assert port.seized == (port.state in SEIZED_STATES)
