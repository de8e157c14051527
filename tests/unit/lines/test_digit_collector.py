"""Digit collection: completion from the dialplan, the three timeouts, '#' as dial-now."""

from __future__ import annotations

import pytest

from appliance.lines.digit_collector import (
    Abandon,
    Completion,
    Dial,
    DigitCollector,
    DigitTimers,
    dialplan_completion,
)
from appliance.pbx.dialplan import Dialplan, IvrTarget, Route, TrunkTarget, VoicemailTarget

C = Completion
PLAN = Dialplan(
    [
        Route("0", IvrTarget("main"), "operator"),
        Route("_9.", TrunkTarget("pstn", strip=1), "outside"),
        Route("*97", VoicemailTarget("101"), "voicemail"),
        Route("*21#", IvrTarget("forward-off"), "forward-off"),
        Route("_3XX", IvrTarget("conference"), "conference"),
    ]
)
EXTENSIONS = frozenset({"101", "102", "201", "2010"})
RULE = dialplan_completion(PLAN, EXTENSIONS)


def feed(collector: DigitCollector, digits: str, start: float = 0.0) -> list[Dial | Abandon]:
    """Dial ``digits`` one per second from ``start``; the results seen."""
    results: list[Dial | Abandon] = []
    for i, d in enumerate(digits):
        if (r := collector.digit(d, start + i)) is not None:
            results.append(r)
    return results


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("101", C.COMPLETE),  # an extension nothing else extends
        ("1", C.NEEDS_MORE),
        ("10", C.NEEDS_MORE),
        ("201", C.MAYBE_COMPLETE),  # 2010 is an extension too
        ("2010", C.COMPLETE),
        ("0", C.COMPLETE),
        ("9", C.NEEDS_MORE),  # "_9." needs at least one more character
        ("91", C.MAYBE_COMPLETE),  # ... and takes any number of them
        ("9" * 32, C.COMPLETE),  # the longest number the dialplan routes
        ("9" * 33, C.INVALID),
        ("3", C.NEEDS_MORE),
        ("345", C.COMPLETE),
        ("3456", C.INVALID),
        ("*9", C.NEEDS_MORE),
        ("*97", C.COMPLETE),
        ("*21", C.NEEDS_MORE),
        ("*21#", C.COMPLETE),
        ("5", C.INVALID),
        ("1011", C.INVALID),
        ("", C.INVALID),
        ("1a", C.INVALID),
    ],
)
def test_dialplan_completion(number: str, expected: Completion) -> None:
    assert RULE(number) is expected


def test_dialplan_completion_reads_extensions_live() -> None:
    extensions = {"101"}
    rule = dialplan_completion(Dialplan([]), extensions)
    assert rule("101") is C.COMPLETE
    extensions.add("1012")
    assert rule("101") is C.MAYBE_COMPLETE
    assert rule("1012") is C.COMPLETE


def test_first_digit_timeout_abandons() -> None:
    collector = DigitCollector(RULE)
    collector.start(100.0)
    assert collector.next_deadline() == 115.0
    assert collector.handle_timer(114.9) is None
    assert collector.handle_timer(115.0) == Abandon()
    assert not collector.active
    assert collector.next_deadline() is None


def test_complete_number_dials_at_once() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "101") == [Dial("101")]
    assert not collector.active


def test_incomplete_number_dials_after_inter_digit_timeout() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "10", start=1.0) == []
    assert collector.digits == "10"
    assert collector.next_deadline() == 6.0  # 4 s after the digit at t=2
    assert collector.handle_timer(5.9) is None
    assert collector.handle_timer(6.0) == Dial("10")  # call control rejects it


def test_maybe_complete_waits_the_short_timeout() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "201") == []
    assert collector.next_deadline() == 4.0  # 2 s after the digit at t=2
    assert collector.digit("0", 3.0) == Dial("2010")


def test_maybe_complete_times_out_to_the_shorter_number() -> None:
    collector = DigitCollector(RULE, DigitTimers(maybe_complete=1.5))
    collector.start(0.0)
    feed(collector, "9123")
    assert collector.handle_timer(3.0 + 1.5) == Dial("9123")


def test_hash_dials_now_and_is_not_dialled() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "91#") == [Dial("91")]


def test_hash_kept_where_it_completes_a_number() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "*21#") == [Dial("*21#")]


def test_lone_hash_is_ignored_unless_a_number_starts_with_it() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert collector.digit("#", 1.0) is None
    assert collector.digits == ""
    assert collector.next_deadline() == 15.0  # the first-digit timer runs on
    plan = Dialplan([Route("#5", IvrTarget("night"), "night")])
    hashing = DigitCollector(dialplan_completion(plan, ()))
    hashing.start(0.0)
    assert feed(hashing, "#5") == [Dial("#5")]


def test_invalid_prefix_dials_at_once() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "5") == [Dial("5")]


def test_keys_a_to_d_and_idle_digits_are_ignored() -> None:
    collector = DigitCollector(RULE)
    assert collector.digit("1", 0.0) is None  # not started
    collector.start(0.0)
    assert collector.digit("A", 1.0) is None
    assert collector.digit("12", 1.0) is None
    assert collector.digits == ""
    assert collector.next_deadline() == 15.0


def test_number_is_cut_at_the_dialplan_maximum() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    assert feed(collector, "9" * 40) == [Dial("9" * 32)]


def test_start_again_clears_digits() -> None:
    collector = DigitCollector(RULE)
    collector.start(0.0)
    feed(collector, "10")
    collector.start(5.0)
    assert collector.digits == ""
    assert collector.next_deadline() == 20.0


def test_timers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        DigitTimers(inter_digit=0.0)
