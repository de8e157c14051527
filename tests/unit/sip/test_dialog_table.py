"""DialogTable matching and forking (RFC 3261 §12.2.2, §13.2.2.4), the UAS 2xx
retransmitter (§13.3.1.4), and a property: in-dialog event sequences raise nothing
but DialogError."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.sip.dialog import Dialog, DialogError, DialogState
from appliance.sip.dialog_retransmit import (
    AckTimedOut,
    Resend,
    RetransmitState,
    TwoXxRetransmitter,
)
from appliance.sip.dialog_table import DialogTable
from appliance.sip.message import make_response
from appliance.sip.transaction import TimerConfig

from .test_dialog import (
    BOB,
    CALLEE_INVITE,
    CALLER_INVITE,
    LOOSE_RR,
    PBX_CONTACT,
    callee_response,
    in_dialog,
    uas_dialog,
)
from .test_transaction_support import ManualClock

# -- table ----------------------------------------------------------------------------


def test_match_request_by_call_id_and_tags() -> None:
    table = DialogTable()
    dialog = uas_dialog()
    table.add(dialog)
    assert table.match_request(in_dialog("BYE", 314160)) is dialog
    assert table.match_request(in_dialog("BYE", 314160, to_tag="nope")) is None
    assert table.match_request(CALLER_INVITE) is None  # no To tag: not in a dialog
    assert dialog.id in table and len(table) == 1
    with pytest.raises(DialogError, match="already exists"):
        table.add(dialog)


def test_match_response_and_remove() -> None:
    table = DialogTable()
    outcome = table.uac_response(CALLEE_INVITE, callee_response("200 OK", "bob9", "", BOB), 0)
    assert outcome.created and outcome.dialog is not None
    info = outcome.dialog.request("INFO", 1.0, rng=random.Random(1))
    answer = make_response(info, 200)
    assert table.match_response(answer) is outcome.dialog
    assert table.remove(outcome.dialog.id) is outcome.dialog
    assert table.match_response(answer) is None and len(table) == 0


def test_forking_two_early_dialogs_then_one_2xx() -> None:
    table = DialogTable()
    assert table.uac_response(CALLEE_INVITE, callee_response("100 Trying", "", ""), 0).dialog is (
        None
    )
    first = table.uac_response(CALLEE_INVITE, callee_response("180 Ringing", "bob9", ""), 0.1)
    second = table.uac_response(CALLEE_INVITE, callee_response("183 Progress", "carol", ""), 0.2)
    again = table.uac_response(CALLEE_INVITE, callee_response("180 Ringing", "bob9", ""), 0.3)
    assert first.created and second.created and not again.created
    assert again.dialog is first.dialog
    assert len(table) == 2
    assert all(d.state is DialogState.EARLY for d in table)
    ok = table.uac_response(CALLEE_INVITE, callee_response("200 OK", "carol", LOOSE_RR, BOB), 1)
    assert ok.dialog is second.dialog and not ok.created
    assert ok.dialog is not None and ok.dialog.state is DialogState.CONFIRMED
    assert ok.to_end == (first.dialog,)  # the TU CANCELs/BYEs the losing fork
    # A late 2xx from the losing fork: its dialog is itself to be ended (ACK, BYE).
    late = table.uac_response(CALLEE_INVITE, callee_response("200 OK", "bob9", "", BOB), 2)
    assert late.dialog is first.dialog and late.to_end == (first.dialog,)


def test_final_error_ends_all_early_forks() -> None:
    table = DialogTable()
    table.uac_response(CALLEE_INVITE, callee_response("180 Ringing", "bob9", ""), 0)
    table.uac_response(CALLEE_INVITE, callee_response("180 Ringing", "carol", ""), 0)
    outcome = table.uac_response(CALLEE_INVITE, callee_response("486 Busy Here", "x", ""), 1)
    assert outcome.dialog is None
    assert {d.id.remote_tag for d in outcome.terminated} == {"bob9", "carol"}
    assert all(d.state is DialogState.TERMINATED for d in outcome.terminated)
    assert len(table) == 0


def test_tagless_2xx_is_refused_and_table_is_bounded() -> None:
    table = DialogTable(limit=1)
    with pytest.raises(DialogError, match="To tag"):
        table.uac_response(CALLEE_INVITE, callee_response("200 OK", "", ""), 0)
    table.add(uas_dialog())
    with pytest.raises(DialogError, match="full") as info:
        table.uac_response(CALLEE_INVITE, callee_response("180 Ringing", "bob9", ""), 0)
    assert info.value.status == 503


def test_remove_terminated() -> None:
    table = DialogTable()
    dialog = uas_dialog()
    table.add(dialog)
    dialog.receive_request(in_dialog("BYE", 314160), 1.0)
    assert table.remove_terminated() == [dialog]
    assert len(table) == 0 and table.forks(dialog.id.call_id, dialog.id.local_tag) == []


# -- 2xx retransmitter ------------------------------------------------------------------

OK = make_response(CALLER_INVITE, 200, to_tag="pbxtag1")


def test_2xx_retransmits_capped_at_t2_and_gives_up_at_64_t1() -> None:
    clock = ManualClock()
    timer = TwoXxRetransmitter(OK, clock.now, TimerConfig(t1=0.5, t2=4.0))
    resent: list[float] = []
    gave_up: list[float] = []
    while (deadline := timer.next_deadline()) is not None:
        clock.now = deadline
        for action in timer.handle_timer(clock.now):
            if isinstance(action, Resend):
                assert action.response is OK
                resent.append(clock.now)
            elif isinstance(action, AckTimedOut):
                gave_up.append(clock.now)
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert gave_up == [32.0]
    assert timer.state is RetransmitState.GAVE_UP


def test_2xx_retransmits_stop_at_ack() -> None:
    timer = TwoXxRetransmitter(OK, 10.0, TimerConfig())
    assert timer.next_deadline() == 10.5
    assert timer.handle_timer(10.2) == []  # early wake-up: nothing due
    assert timer.handle_timer(10.5) == [Resend(OK)]
    timer.ack_received()
    assert timer.state is RetransmitState.ACKED
    assert timer.next_deadline() is None and timer.handle_timer(50.0) == []


def test_retransmitter_takes_only_2xx() -> None:
    with pytest.raises(DialogError, match="only a 2xx"):
        TwoXxRetransmitter(make_response(CALLER_INVITE, 180), 0.0, TimerConfig())


# -- property ---------------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "recv-INVITE",
                "recv-UPDATE",
                "recv-INFO",
                "recv-BYE",
                "recv-ACK",
                "send-200",
                "send-486",
                "send-BYE",
                "send-INVITE",
                "send-ACK",
                "send-CANCEL",
                "send-INFO",
                "terminate",
            ]
        ),
        st.integers(min_value=314150, max_value=314170),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.sampled_from([180, 200]))
def test_random_in_dialog_events_raise_only_dialog_error(
    events: list[tuple[str, int]], status: int
) -> None:
    dialog = Dialog.from_uas(
        CALLER_INVITE, make_response(CALLER_INVITE, status, to_tag="pbxtag1"), PBX_CONTACT
    )
    rng = random.Random(0)
    last = CALLER_INVITE
    for now, (event, cseq) in enumerate(events):
        kind, _, method = event.partition("-")
        try:
            if kind == "recv":
                last = in_dialog(method, cseq, "<sip:alice@198.51.100.7>")
                dialog.receive_request(last, float(now))
            elif kind == "send" and method.isdigit():
                dialog.response_sent(make_response(last, int(method)), float(now))
            elif kind == "send":
                dialog.request(method, float(now), rng=rng)
            else:
                dialog.terminate()
        except DialogError:
            pass
        assert dialog.state in DialogState
        if dialog.local_seq is not None:
            assert 0 < dialog.local_seq < 2**31


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["180", "183", "200", "486", "481"]), max_size=10))
def test_random_uac_responses_raise_only_dialog_error(statuses: list[str]) -> None:
    table = DialogTable()
    for now, status in enumerate(statuses):
        response = callee_response(f"{status} X", random.Random(now).choice(["a", "b"]), "")
        try:
            table.uac_response(CALLEE_INVITE, response, float(now))
        except DialogError:
            pass
