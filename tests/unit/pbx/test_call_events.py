"""Call events, the per-call state table (every edge), and CDRs from CallLog."""

from __future__ import annotations

import itertools
import re

import pytest

from appliance.pbx.call_events import (
    BEFORE_ANSWER,
    CALL_TRANSITIONS,
    CONNECTED,
    FINAL_STATES,
    Answer,
    CallEvent,
    CallLog,
    CallState,
    CallStateError,
    Disposition,
    Dtmf,
    DtmfSource,
    EventKind,
    Fail,
    Hangup,
    Hold,
    Leg,
    MediaOffer,
    Party,
    Progress,
    Resume,
    Setup,
    Side,
    kind_of,
    next_call_state,
)
from appliance.pbx.causes import Cause

OFFER = MediaOffer(("PCMU", "PCMA"), telephone_event=True, address="192.0.2.10", port=40000)
SETUP = Setup(Party("101", "Alice"), "102", OFFER, "call-1")

SAMPLE: dict[EventKind, CallEvent] = {
    EventKind.SETUP: SETUP,
    EventKind.PROGRESS: Progress(ringing=True),
    EventKind.EARLY_MEDIA: Progress(ringing=False, early_media=OFFER),
    EventKind.ANSWER: Answer(OFFER),
    EventKind.HOLD: Hold(),
    EventKind.RESUME: Resume(),
    EventKind.DTMF: Dtmf("5", 100, DtmfSource.RFC4733),
    EventKind.HANGUP: Hangup(Cause.NORMAL_CLEARING),
    EventKind.FAIL: Fail(Cause.USER_BUSY),
}

St, K = CallState, EventKind
# The legal moves, written out independently of the module's table.
LEGAL = {
    (St.SETUP, K.SETUP): St.ROUTING,
    (St.ROUTING, K.PROGRESS): St.RINGING,
    (St.ROUTING, K.EARLY_MEDIA): St.EARLY_MEDIA,
    (St.ROUTING, K.ANSWER): St.ANSWERED,
    (St.ROUTING, K.HANGUP): St.ENDED,
    (St.ROUTING, K.FAIL): St.ENDED,
    (St.RINGING, K.PROGRESS): St.RINGING,
    (St.RINGING, K.EARLY_MEDIA): St.EARLY_MEDIA,
    (St.RINGING, K.ANSWER): St.ANSWERED,
    (St.RINGING, K.HANGUP): St.ENDED,
    (St.RINGING, K.FAIL): St.ENDED,
    (St.EARLY_MEDIA, K.PROGRESS): St.EARLY_MEDIA,
    (St.EARLY_MEDIA, K.EARLY_MEDIA): St.EARLY_MEDIA,
    (St.EARLY_MEDIA, K.DTMF): St.EARLY_MEDIA,
    (St.EARLY_MEDIA, K.ANSWER): St.ANSWERED,
    (St.EARLY_MEDIA, K.HANGUP): St.ENDED,
    (St.EARLY_MEDIA, K.FAIL): St.ENDED,
    (St.ANSWERED, K.DTMF): St.ANSWERED,
    (St.ANSWERED, K.HOLD): St.HELD,
    (St.ANSWERED, K.HANGUP): St.ENDED,
    (St.HELD, K.HOLD): St.HELD,
    (St.HELD, K.RESUME): St.ANSWERED,
    (St.HELD, K.DTMF): St.HELD,
    (St.HELD, K.HANGUP): St.ENDED,
}


def test_table_is_exactly_the_specified_moves() -> None:
    assert CALL_TRANSITIONS == LEGAL


@pytest.mark.parametrize(
    ("state", "kind"),
    list(itertools.product(CallState, EventKind)),
    ids=lambda x: x.name,
)
def test_every_edge(state: CallState, kind: EventKind) -> None:
    event = SAMPLE[kind]
    assert kind_of(event) is kind
    if (state, kind) in LEGAL:
        assert next_call_state(state, event) is LEGAL[(state, kind)]
    else:
        with pytest.raises(CallStateError) as info:
            next_call_state(state, event)
        assert info.value.state is state
        assert info.value.event is event


@pytest.mark.parametrize(
    ("state", "event", "message"),
    [
        (CallState.ENDED, Answer(None), "Answer (answer) in ENDED"),
        (CallState.ENDED, Hangup(), "Hangup (hangup) in ENDED"),
        (CallState.ANSWERED, Fail(Cause.USER_BUSY), "Fail (fail) in ANSWERED"),
        (CallState.ANSWERED, Resume(), "Resume (resume) in ANSWERED"),
        (CallState.RINGING, Setup(Party("1"), "2", None, "x"), "Setup (setup) in RINGING"),
        (CallState.SETUP, Hangup(), "Hangup (hangup) in SETUP"),
        (CallState.ANSWERED, Progress(True, OFFER), "Progress (early-media) in ANSWERED"),
    ],
)
def test_illegal_moves_name_event_and_state(
    state: CallState, event: CallEvent, message: str
) -> None:
    with pytest.raises(CallStateError, match=f"^{re.escape(message)}$"):
        next_call_state(state, event)


def test_state_sets() -> None:
    assert FINAL_STATES == {CallState.ENDED}
    assert not any(s is CallState.ENDED for s, _ in CALL_TRANSITIONS)
    assert BEFORE_ANSWER | CONNECTED | FINAL_STATES | {CallState.SETUP} == set(CallState)
    # Every state is reachable from SETUP and every non-final one can end.
    reached = {CallState.SETUP}
    while True:
        more = {new for (old, _), new in CALL_TRANSITIONS.items() if old in reached} - reached
        if not more:
            break
        reached |= more
    assert reached == set(CallState)
    for state in set(CallState) - FINAL_STATES - {CallState.SETUP}:
        assert CALL_TRANSITIONS[(state, EventKind.HANGUP)] is CallState.ENDED


def test_event_values_are_validated() -> None:
    with pytest.raises(ValueError, match="'E' is not a DTMF digit"):
        Dtmf("E", 100, DtmfSource.INFO)
    with pytest.raises(ValueError, match="negative"):
        Dtmf("1", -1, DtmfSource.INBAND)
    with pytest.raises(ValueError, match="at least one codec"):
        MediaOffer((), telephone_event=False, address="192.0.2.1", port=4000)
    with pytest.raises(ValueError, match="port 70000 out of range"):
        MediaOffer(("PCMU",), telephone_event=False, address="192.0.2.1", port=70000)
    with pytest.raises(ValueError, match="ptime"):
        MediaOffer(("PCMU",), telephone_event=False, address="192.0.2.1", port=1, ptime_ms=0)
    assert Hangup().cause is Cause.NORMAL_CLEARING


def test_common_codecs_keep_own_preference() -> None:
    analog = MediaOffer(("PCMA", "pcmu"), telephone_event=False, address="127.0.0.1", port=5004)
    assert OFFER.common_codecs(analog) == ("PCMU", "PCMA")
    assert analog.common_codecs(OFFER) == ("PCMA", "pcmu")


class EchoLeg:
    """A minimal leg: answers any Setup. Checks the Protocol is implementable."""

    def __init__(self) -> None:
        self.leg_id = "echo-1"
        self.state = CallState.SETUP

    def handle(self, event: CallEvent, now: float) -> list[CallEvent]:
        if isinstance(event, Setup):
            return [Answer(event.media)]
        return []


def test_leg_protocol_is_structural() -> None:
    leg: Leg = EchoLeg()
    assert leg.handle(SETUP, 0.0) == [Answer(OFFER)]


def run(events: list[tuple[float, Side, CallEvent]]) -> CallLog:
    log = CallLog()
    for now, side, event in events:
        log.record(event, side, now)
    return log


def test_answered_call_cdr() -> None:
    log = run(
        [
            (100.0, Side.CALLER, SETUP),
            (100.25, Side.CALLEE, Progress(ringing=True)),
            (104.5, Side.CALLEE, Answer(OFFER)),
            (110.0, Side.CALLER, Hold()),
            (120.0, Side.CALLER, Resume()),
            (164.5, Side.CALLEE, Hangup(Cause.NORMAL_CLEARING)),
        ]
    )
    cdr = log.cdr()
    assert cdr.disposition is Disposition.ANSWERED
    assert (cdr.start, cdr.answer, cdr.end) == (100.0, 104.5, 164.5)
    assert cdr.duration == 64.5
    assert cdr.billable == 60.0
    assert cdr.ended_by is Side.CALLEE
    assert cdr.cause is Cause.NORMAL_CLEARING
    assert (cdr.call_id, cdr.caller, cdr.callee) == ("call-1", Party("101", "Alice"), "102")


@pytest.mark.parametrize(
    ("last", "disposition"),
    [
        ((130.0, Side.SYSTEM, Fail(Cause.NO_ANSWER)), Disposition.NO_ANSWER),
        ((130.0, Side.CALLEE, Fail(Cause.NO_USER_RESPONDING)), Disposition.NO_ANSWER),
        ((130.0, Side.CALLEE, Fail(Cause.USER_BUSY)), Disposition.BUSY),
        ((130.0, Side.CALLER, Hangup(Cause.NORMAL_CLEARING)), Disposition.CANCELLED),
        ((130.0, Side.CALLEE, Fail(Cause.TEMPORARY_FAILURE)), Disposition.FAILED),
        ((130.0, Side.CALLEE, Hangup(Cause.CALL_REJECTED)), Disposition.FAILED),
        ((130.0, Side.SYSTEM, Fail(Cause.UNALLOCATED_NUMBER)), Disposition.FAILED),
    ],
)
def test_unanswered_call_cdrs(
    last: tuple[float, Side, CallEvent], disposition: Disposition
) -> None:
    log = run([(100.0, Side.CALLER, SETUP), (101.0, Side.CALLEE, Progress(True)), last])
    cdr = log.cdr()
    assert cdr.disposition is disposition
    assert cdr.answer is None
    assert cdr.duration == 30.0
    assert cdr.billable == 0.0
    assert cdr.ended_by is last[1]
    assert isinstance(last[2], Hangup | Fail)
    assert cdr.cause is last[2].cause


def test_failed_during_routing_without_progress() -> None:
    log = run([(5.0, Side.CALLER, SETUP), (5.0, Side.SYSTEM, Fail(Cause.UNALLOCATED_NUMBER))])
    assert log.cdr().disposition is Disposition.FAILED
    assert log.cdr().duration == 0.0


def test_calllog_rejects_illegal_moves_and_keeps_its_state() -> None:
    log = run([(0.0, Side.CALLER, SETUP), (1.0, Side.CALLEE, Fail(Cause.USER_BUSY))])
    with pytest.raises(CallStateError, match="Answer .* in ENDED"):
        log.record(Answer(None), Side.CALLEE, 2.0)
    assert log.state is CallState.ENDED
    assert log.cdr().end == 1.0


def test_calllog_needs_caller_setup_and_an_ended_call() -> None:
    log = CallLog()
    with pytest.raises(ValueError, match="Setup must come from the caller, not CALLEE"):
        log.record(SETUP, Side.CALLEE, 0.0)
    assert log.state is CallState.SETUP
    log.record(SETUP, Side.CALLER, 0.0)
    assert log.disposition is None
    with pytest.raises(ValueError, match="call has not ended \\(state ROUTING\\)"):
        log.cdr()
