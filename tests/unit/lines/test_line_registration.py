"""An FXS port's registration machine: states, refresh timing, retries, challenge answers."""

from __future__ import annotations

import pytest

from appliance.lines.line_registration import (
    MIN_REFRESH_S,
    RETRY_S,
    LineRegistration,
    RegState,
)


def state(reg: LineRegistration) -> RegState:
    """The state, read through a call so mypy does not keep an earlier narrowing."""
    return reg.state


def fresh() -> LineRegistration:
    return LineRegistration(port=3, user="203", call_id="abc@yakyak-gw")


def test_starts_unregistered_and_due_at_once() -> None:
    reg = fresh()
    assert reg.state is RegState.UNREGISTERED
    assert reg.due == 0.0
    assert reg.cseq == 0
    assert reg.answered_nonce is None and reg.last_status is None
    assert reg.expires == 600


def test_cseq_counts_up_from_one() -> None:
    reg = fresh()
    assert [reg.next_cseq() for _ in range(4)] == [1, 2, 3, 4]
    assert reg.cseq == 4


def test_sent_moves_to_registering_and_clears_due() -> None:
    reg = fresh()
    reg.sent()
    assert reg.state is RegState.REGISTERING
    assert reg.due is None


def test_accepted_registers_and_refreshes_at_half_the_granted_time() -> None:
    reg = fresh()
    reg.sent()
    reg.accepted(600, now=1000.0)
    assert reg.state is RegState.REGISTERED
    assert reg.last_status == 200
    assert reg.due == 1000.0 + 300.0


@pytest.mark.parametrize(
    ("granted", "delay"),
    [
        (3600, 1800.0),
        (60, 30.0),
        (21, 10.5),
        (20, MIN_REFRESH_S),
        (19, MIN_REFRESH_S),
        (1, MIN_REFRESH_S),
        (0, MIN_REFRESH_S),
    ],
)
def test_refresh_delay_has_a_floor(granted: int, delay: float) -> None:
    reg = fresh()
    reg.sent()
    reg.accepted(granted, now=50.0)
    assert reg.due == pytest.approx(50.0 + delay)
    assert reg.due is not None and reg.due - 50.0 >= MIN_REFRESH_S


def test_refresh_keeps_the_line_registered_while_out() -> None:
    reg = fresh()
    reg.sent()
    reg.accepted(600, now=0.0)
    reg.sent()  # the refresh REGISTER
    assert reg.state is RegState.REGISTERED
    assert reg.due is None
    reg.accepted(120, now=300.0)
    assert reg.state is RegState.REGISTERED and reg.due == 360.0


@pytest.mark.parametrize("status", [403, 404, 500, 503, None])
def test_failure_retries_after_retry_s(status: int | None) -> None:
    reg = fresh()
    reg.sent()
    reg.failed(status, now=77.0)
    assert reg.state is RegState.FAILED
    assert reg.last_status == status
    assert reg.due == 77.0 + RETRY_S
    reg.sent()  # the retry
    assert state(reg) is RegState.REGISTERING and reg.due is None
    reg.accepted(600, now=200.0)
    assert state(reg) is RegState.REGISTERED and reg.last_status == 200


def test_failed_refresh_unregisters_the_line() -> None:
    reg = fresh()
    reg.sent()
    reg.accepted(600, now=0.0)
    reg.sent()
    reg.failed(None, now=300.0)  # the refresh timed out
    assert reg.state is RegState.FAILED
    assert reg.due == 300.0 + RETRY_S


def test_may_answer_refuses_the_same_nonce_twice() -> None:
    reg = fresh()
    assert reg.may_answer("n1", stale=False) is True
    assert reg.answered_nonce == "n1"
    assert reg.may_answer("n1", stale=False) is False  # answered and refused: wrong password
    assert reg.may_answer("n1", stale=False) is False
    assert reg.may_answer("n2", stale=False) is True  # a new nonce is worth one try
    assert reg.may_answer("n2", stale=False) is False


def test_may_answer_same_nonce_again_when_stale() -> None:
    reg = fresh()
    assert reg.may_answer("n1", stale=False) is True
    assert reg.may_answer("n1", stale=True) is True
    assert reg.may_answer("n1", stale=False) is False


def test_accept_and_failure_forget_the_answered_nonce() -> None:
    reg = fresh()
    assert reg.may_answer("n1", stale=False)
    reg.accepted(600, now=0.0)
    assert reg.answered_nonce is None
    assert reg.may_answer("n1", stale=False) is True  # a later challenge may reuse it
    reg.failed(401, now=10.0)
    assert reg.answered_nonce is None
    assert reg.may_answer("n1", stale=False) is True
