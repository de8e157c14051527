"""Q.850 causes: RFC 3398 mappings both ways, PBX deviations, RFC 3326 Reason headers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.pbx.causes import (
    PBX_CAUSE_TO_STATUS,
    PBX_STATUS_TO_CAUSE,
    RFC3398_CAUSE_TO_STATUS,
    RFC3398_STATUS_TO_CAUSE,
    Cause,
    cause_for,
    parse_reason,
    reason_header,
    status_for,
)

# RFC 3398 §7.2.4.1, typed in again row by row from the RFC's table (cause -> status).
CAUSE_TO_STATUS_ROWS = [
    (1, 404),
    (2, 404),
    (3, 404),
    (17, 486),
    (18, 408),
    (19, 480),
    (20, 480),
    (21, 403),
    (22, 410),
    (23, 410),
    (26, 404),
    (27, 502),
    (28, 484),
    (29, 501),
    (31, 480),
    (34, 503),
    (38, 503),
    (41, 503),
    (42, 503),
    (47, 503),
    (55, 403),
    (57, 403),
    (58, 503),
    (65, 488),
    (70, 488),
    (79, 501),
    (87, 403),
    (102, 504),
    (111, 500),
    (127, 500),
]

# RFC 3398 §8.2.6.1 (status -> cause), likewise.
STATUS_TO_CAUSE_ROWS = [
    (400, 41),
    (401, 21),
    (402, 21),
    (403, 21),
    (404, 1),
    (405, 63),
    (406, 79),
    (407, 21),
    (408, 102),
    (410, 22),
    (413, 127),
    (414, 127),
    (415, 79),
    (416, 127),
    (420, 127),
    (421, 127),
    (423, 127),
    (480, 18),
    (481, 41),
    (482, 25),
    (483, 25),
    (484, 28),
    (485, 1),
    (486, 17),
    (500, 41),
    (501, 79),
    (502, 38),
    (503, 41),
    (504, 102),
    (505, 127),
    (513, 127),
    (600, 17),
    (603, 21),
    (604, 1),
]


@pytest.mark.parametrize(("cause", "status"), CAUSE_TO_STATUS_ROWS)
def test_status_for_follows_rfc3398_7_2_4_1(cause: int, status: int) -> None:
    assert RFC3398_CAUSE_TO_STATUS[Cause(cause)] == status
    assert status_for(Cause(cause)) == status


@pytest.mark.parametrize(("status", "cause"), STATUS_TO_CAUSE_ROWS)
def test_cause_for_follows_rfc3398_8_2_6_1(status: int, cause: int) -> None:
    assert RFC3398_STATUS_TO_CAUSE[status] == Cause(cause)
    assert cause_for(status) is Cause(cause)


def test_rfc_tables_hold_exactly_the_rows_of_the_rfc() -> None:
    listed = {c: s for c, s in RFC3398_CAUSE_TO_STATUS.items() if s is not None}
    assert listed == {Cause(c): s for c, s in CAUSE_TO_STATUS_ROWS} | {Cause(88): 503}
    assert [c for c, s in RFC3398_CAUSE_TO_STATUS.items() if s is None] == [16]
    listed_back = {s: c for s, c in RFC3398_STATUS_TO_CAUSE.items() if c is not None}
    assert listed_back == {s: Cause(c) for s, c in STATUS_TO_CAUSE_ROWS}
    assert [s for s, c in RFC3398_STATUS_TO_CAUSE.items() if c is None] == [487, 488, 606]


def test_pbx_deviations_are_exactly_the_listed_ones() -> None:
    # RFC 3398 gives 16 no response and 88 -> 503; the PBX answers 487 and 488.
    assert RFC3398_CAUSE_TO_STATUS[Cause.INCOMPATIBLE_DESTINATION] == 503
    assert PBX_CAUSE_TO_STATUS == {Cause.NORMAL_CLEARING: 487, Cause.INCOMPATIBLE_DESTINATION: 488}
    assert status_for(Cause.NORMAL_CLEARING) == 487
    assert status_for(Cause.INCOMPATIBLE_DESTINATION) == 488
    assert PBX_STATUS_TO_CAUSE.keys() == {487, 488, 606}
    assert cause_for(487) is Cause.NORMAL_CLEARING
    assert cause_for(488) is Cause.INCOMPATIBLE_DESTINATION
    assert cause_for(606) is Cause.INCOMPATIBLE_DESTINATION


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (486, Cause.USER_BUSY),
        (404, Cause.UNALLOCATED_NUMBER),
        (488, Cause.INCOMPATIBLE_DESTINATION),
    ],
)
def test_round_trips_the_pbx_relies_on(status: int, cause: Cause) -> None:
    assert cause_for(status) is cause
    assert status_for(cause) == status


def test_asymmetric_rows_are_as_the_rfc_prints_them() -> None:
    # 480 -> 18, but 18 -> 408 and 19 -> 480; 503 -> 41, and 34/41/42 -> 503.
    assert cause_for(480) is Cause.NO_USER_RESPONDING
    assert status_for(Cause.NO_USER_RESPONDING) == 408
    assert status_for(Cause.NO_ANSWER) == 480
    assert cause_for(503) is Cause.TEMPORARY_FAILURE
    assert {status_for(Cause(c)) for c in (34, 41, 42)} == {503}


def test_every_cause_has_a_status_and_unlisted_statuses_default() -> None:
    for cause in Cause:
        assert 400 <= status_for(cause) <= 699
    assert status_for(Cause.INVALID_MESSAGE) == 500  # listed in neither table
    assert cause_for(499) is Cause.INTERWORKING
    assert cause_for(699) is Cause.INTERWORKING


@pytest.mark.parametrize("status", [100, 180, 200, 302, 399, 700, -1])
def test_cause_for_refuses_non_failure_statuses(status: int) -> None:
    with pytest.raises(ValueError, match=f"SIP status {status} is not a failure"):
        cause_for(status)


def test_reason_header_text() -> None:
    assert reason_header(Cause.NORMAL_CLEARING) == 'Q.850;cause=16;text="Normal call clearing"'
    assert reason_header(Cause.USER_BUSY) == 'Q.850;cause=17;text="User busy"'


@pytest.mark.parametrize("cause", list(Cause))
def test_reason_header_round_trips(cause: Cause) -> None:
    assert parse_reason(reason_header(cause)) is cause


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Q.850;cause=16", Cause.NORMAL_CLEARING),
        ('q.850 ; cause = 17 ; text="User busy"', Cause.USER_BUSY),
        ('SIP;cause=200;text="Call completed elsewhere", Q.850;cause=31', Cause(31)),
        ('Q.850;text="a, b; c=\\"x\\"";cause=21', Cause.CALL_REJECTED),
        ("Q.850;cause=44", Cause.RESOURCE_UNAVAILABLE),  # unknown: class unspecified
        ("Q.850;cause=99", Cause.PROTOCOL_ERROR),
        ("Q.850;cause=0", None),
        ("Q.850;cause=128", None),
        ("Q.850;cause=0016", None),  # more than three digits
        ("Q.850;cause=abc", None),
        ("Q.850;cause=", None),
        ('Q.850;text="no cause"', None),
        ("SIP;cause=487", None),
        ("", None),
        ('Q.850;cause=16;text="unterminated', Cause.NORMAL_CLEARING),
        ("Q.850;cause=１６", None),  # fullwidth digits are not DIGIT
        ("Q.850;cause=16" + " " * 2000, None),  # over the length bound
    ],
)
def test_parse_reason_cases(value: str, expected: Cause | None) -> None:
    assert parse_reason(value) is expected


@given(st.text(max_size=300))
def test_parse_reason_never_raises(value: str) -> None:
    result = parse_reason(value)
    assert result is None or isinstance(result, Cause)


@given(
    st.text(alphabet='Q.850;=,"\\ causetx0123456789', max_size=80),
    st.sampled_from(list(Cause)),
)
def test_parse_reason_survives_junk_around_a_good_value(junk: str, cause: Cause) -> None:
    parse_reason(junk + reason_header(cause))
    # A well-formed value first always wins, whatever follows.
    assert parse_reason(reason_header(cause) + "," + junk) is cause
