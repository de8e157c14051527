"""Hook decoding: debounce, pulse digits, flash and hang-up from timed transitions."""

from __future__ import annotations

import pytest

from appliance.lines.pulse import HookDecoder, HookState, PulseWindows
from appliance.lines.signals import Flash, LineSignal, OffHook, OnHook, PulseDigit

PORT = 1


def run(
    decoder: HookDecoder, transitions: list[tuple[int, bool]], until: int | None = None
) -> list[tuple[int, LineSignal]]:
    """Feed (ms, off_hook) transitions, firing timers in between; (when, signal) out."""
    fired: list[tuple[int, LineSignal]] = []
    end = until if until is not None else transitions[-1][0] + 5000
    for at, off in transitions:
        while (deadline := decoder.next_deadline()) is not None and deadline <= at:
            fired += [(deadline, s) for s in decoder.handle_timer(deadline)]
        fired += [(at, s) for s in decoder.hook(off, at)]
    while (deadline := decoder.next_deadline()) is not None and deadline <= end:
        fired += [(deadline, s) for s in decoder.handle_timer(deadline)]
    return fired


def pulses(start: int, count: int, brk: int = 60, make: int = 40) -> list[tuple[int, bool]]:
    """``count`` breaks from ``start``; returns transitions ending with the last make."""
    out: list[tuple[int, bool]] = []
    at = start
    for _ in range(count):
        out += [(at, False), (at + brk, True)]
        at += brk + make
    return out


def signals(fired: list[tuple[int, LineSignal]]) -> list[LineSignal]:
    return [s for _, s in fired]


def lifted() -> HookDecoder:
    return HookDecoder(PORT, PulseWindows(), off_hook=True)


def test_lift_counts_after_the_debounce() -> None:
    decoder = HookDecoder(PORT, PulseWindows())
    assert run(decoder, [(1000, True)]) == [(1030, OffHook(PORT))]
    assert decoder.state is HookState.OFF_HOOK
    assert decoder.off_hook


def test_lift_shorter_than_the_debounce_is_bounce() -> None:
    decoder = HookDecoder(PORT, PulseWindows())
    assert run(decoder, [(1000, True), (1029, False)]) == []
    assert decoder.state is HookState.ON_HOOK


def test_zero_debounce_reports_at_once() -> None:
    decoder = HookDecoder(PORT, PulseWindows(debounce_ms=0))
    assert decoder.hook(True, 5) == [OffHook(PORT)]


def test_hang_up_is_a_break_longer_than_the_flash_window() -> None:
    assert run(lifted(), [(1000, False)]) == [(1801, OnHook(PORT))]


@pytest.mark.parametrize(
    ("length", "expected"), [(80, []), (81, [Flash(PORT)]), (800, [Flash(PORT)])]
)
def test_flash_window_edges(length: int, expected: list[LineSignal]) -> None:
    # 80 ms is still a pulse: a lone "1" followed by a long make, then nothing else
    fired = signals(run(lifted(), [(1000, False), (1000 + length, True)]))
    assert [s for s in fired if not isinstance(s, PulseDigit)] == expected


@pytest.mark.parametrize(("digit", "count"), [("1", 1), ("5", 5), ("9", 9), ("0", 10)])
def test_pulse_digits(digit: str, count: int) -> None:
    fired = run(lifted(), pulses(1000, count))
    last_make = 1000 + count * 100 - 40
    assert fired == [(last_make + 301, PulseDigit(PORT, digit))]


def test_several_digits_with_inter_digit_pauses() -> None:
    transitions = pulses(1000, 1) + pulses(2000, 10) + pulses(4000, 3)
    assert signals(run(lifted(), transitions)) == [
        PulseDigit(PORT, "1"),
        PulseDigit(PORT, "0"),
        PulseDigit(PORT, "3"),
    ]


def test_window_edges_of_break_and_make() -> None:
    edges = pulses(1000, 2, brk=30, make=20) + pulses(2000, 2, brk=80, make=80)
    assert signals(run(lifted(), edges)) == [PulseDigit(PORT, "2"), PulseDigit(PORT, "2")]


def test_a_break_shorter_than_a_pulse_is_a_glitch() -> None:
    decoder = lifted()
    assert run(decoder, [(1000, False), (1029, True)]) == []
    assert decoder.state is HookState.OFF_HOOK


def test_a_glitch_inside_a_digit_leaves_it_alone() -> None:
    transitions = pulses(1000, 2) + [(1190, False), (1200, True)] + pulses(1230, 1)
    assert signals(run(lifted(), transitions)) == [PulseDigit(PORT, "3")]


def test_make_bounce_joins_two_breaks_into_one_pulse() -> None:
    # 30 ms break, 10 ms bounce (under make min 20), 30 ms more: one 70 ms pulse
    transitions = [(1000, False), (1030, True), (1040, False), (1070, True)]
    assert signals(run(lifted(), transitions)) == [PulseDigit(PORT, "1")]


def test_a_long_make_ends_the_digit_at_the_next_break() -> None:
    # 150 ms make: above make max (80), below inter-digit (300): the digit ends there
    transitions = pulses(1000, 2, make=150)
    fired = run(lifted(), transitions)
    assert fired == [(1210, PulseDigit(PORT, "1")), (1571, PulseDigit(PORT, "1"))]


def test_flash_after_pulses_reports_the_digit_first() -> None:
    transitions = pulses(1000, 2) + [(1250, False), (1550, True)]
    assert signals(run(lifted(), transitions)) == [PulseDigit(PORT, "2"), Flash(PORT)]


def test_hanging_up_mid_digit_abandons_it() -> None:
    transitions = pulses(1000, 2) + [(1200, False)]
    assert signals(run(lifted(), transitions)) == [OnHook(PORT)]


def test_more_than_ten_pulses_is_no_digit() -> None:
    decoder = lifted()
    assert run(decoder, pulses(1000, 11)) == []
    assert decoder.dropped_digits == 1


def test_a_break_between_the_windows_is_ignored() -> None:
    windows = PulseWindows(break_max_ms=60, flash_min_ms=100)
    decoder = HookDecoder(PORT, windows, off_hook=True)
    assert run(decoder, [(1000, False), (1080, True)]) == []
    assert decoder.state is HookState.OFF_HOOK


def test_overlapping_windows_favour_the_pulse() -> None:
    # the UK's timed-break recall: flash 60-150 ms overlaps the pulse window
    windows = PulseWindows(flash_min_ms=60, flash_max_ms=150)
    assert signals(run(HookDecoder(PORT, windows, True), [(1000, False), (1070, True)])) == [
        PulseDigit(PORT, "1")
    ]
    assert signals(run(HookDecoder(PORT, windows, True), [(1000, False), (1100, True)])) == [
        Flash(PORT)
    ]
    assert run(HookDecoder(PORT, windows, True), [(1000, False)]) == [(1151, OnHook(PORT))]


def test_repeating_a_level_is_not_a_transition() -> None:
    decoder = lifted()
    assert decoder.hook(True, 1000) == []
    assert decoder.state is HookState.OFF_HOOK
    on = HookDecoder(PORT, PulseWindows())
    assert on.hook(False, 1000) == []


def test_a_late_transition_runs_the_passed_timer_first() -> None:
    decoder = lifted()
    decoder.hook(False, 1000)
    # nobody called handle_timer at 1801: the lift at 5000 first hangs up, then lifts
    assert decoder.hook(True, 5000) == [OnHook(PORT)]
    assert decoder.state is HookState.LIFTING


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"debounce_ms": -1}, "debounce must be 0-1000 ms"),
        ({"break_min_ms": 0}, "break window needs 0 < min <= max < flash max"),
        ({"break_max_ms": 900}, "break window needs 0 < min <= max < flash max"),
        ({"make_max_ms": 400}, "make window needs 0 < min <= max <= inter-digit"),
        ({"flash_min_ms": 900}, "flash window needs 0 < min <= max <= 65535"),
    ],
)
def test_bad_windows(kwargs: dict[str, int], reason: str) -> None:
    with pytest.raises(ValueError) as info:
        PulseWindows(**kwargs)
    assert str(info.value) == reason


def test_pulses_are_counted_across_the_clock_wrap() -> None:
    from appliance.lines.pulse import CLOCK_MASK, HookDecoder, PulseWindows
    from appliance.lines.signals import PulseDigit

    start = CLOCK_MASK - 150  # the 32-bit millisecond clock wraps mid-digit
    decoder = HookDecoder(1, PulseWindows(), off_hook=True)
    out = []
    t = start
    for _ in range(3):  # three breaks of 60 ms, makes of 40 ms
        out += decoder.hook(False, t & CLOCK_MASK)
        t += 60
        out += decoder.hook(True, t & CLOCK_MASK)
        t += 40
    out += decoder.handle_timer((t + 1000) & CLOCK_MASK)
    assert out == [PulseDigit(1, "3")]
