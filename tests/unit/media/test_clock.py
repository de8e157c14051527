"""The media clock's frame schedule, sans-IO: fed ``now``, it says which ticks are due.
MediaClock is driven by a fake loop whose time only moves when the test says so."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from appliance.media.clock import ClockConfig, FrameSchedule, MediaClock

pytestmark = pytest.mark.timeout(30)


def test_an_hour_of_late_wakeups_stays_on_the_grid() -> None:
    t0 = 86_400.123  # a loop clock that has been up a day
    schedule = FrameSchedule(t0)
    rng = random.Random(1)
    ticks = 0
    for _ in range(180_000):  # one hour of 20 ms frames
        deadline = schedule.next_deadline()
        assert deadline == t0 + ticks * 0.020  # from t0 each time, nothing accumulates
        wakeup = deadline + rng.uniform(0.0, 0.008)  # timers fire up to 8 ms late
        assert list(schedule.due(wakeup)) == [ticks]
        ticks += 1
    assert schedule.next_deadline() == t0 + 180_000 * 0.020
    assert (schedule.ticks_run, schedule.late_ticks, schedule.skipped_ticks) == (180_000, 0, 0)


def test_nothing_is_due_before_the_deadline() -> None:
    schedule = FrameSchedule(10.0)
    assert list(schedule.due(10.0)) == [0]
    assert list(schedule.due(10.0)) == []
    assert list(schedule.due(10.015)) == []
    assert schedule.next_deadline() == 10.02


def test_a_wakeup_within_the_timer_resolution_counts_as_due() -> None:
    schedule = FrameSchedule(0.0, ClockConfig(resolution=0.001))
    schedule.due(0.0)
    assert list(schedule.due(0.0195)) == [1]  # 0.5 ms early: uvloop's 1 ms timers
    assert list(schedule.due(0.0385)) == []  # 1.5 ms early is early


def test_a_late_loop_catches_up_with_at_most_max_burst_frames() -> None:
    schedule = FrameSchedule(0.0, ClockConfig(max_burst=3, late_after=0.010))
    assert list(schedule.due(0.0)) == [0]
    # 100 ms stall: ticks 1-5 are due; 1 and 2 are skipped, 3-5 sent back to back
    assert list(schedule.due(0.100)) == [3, 4, 5]
    assert schedule.skipped_ticks == 2
    assert schedule.late_ticks == 2  # tick 3 (40 ms late) and 4 (20 ms); 5 is on time
    assert schedule.next_deadline() == pytest.approx(0.120)
    assert list(schedule.due(0.120)) == [6]


def test_a_short_stall_is_caught_up_without_skipping() -> None:
    schedule = FrameSchedule(0.0)
    schedule.due(0.0)
    assert list(schedule.due(0.045)) == [1, 2]
    assert (schedule.skipped_ticks, schedule.late_ticks) == (0, 1)  # tick 1 was 25 ms late


def test_due_is_exact_at_grid_points_of_an_awkward_t0() -> None:
    t0 = 12_345.678901
    schedule = FrameSchedule(t0, ClockConfig(resolution=0.0))
    for n in range(0, 5000, 7):
        due = list(schedule.due(schedule.time_of(n)))
        assert due and due[-1] == n


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        ClockConfig(period=0.0)
    with pytest.raises(ValueError):
        ClockConfig(max_burst=0)


@dataclass
class _Handle:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeLoop:
    """The two loop methods MediaClock uses; time moves only in ``advance``."""

    now: float = 500.0
    timers: list[_Handle] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(when, callback)
        self.timers.append(handle)
        return handle

    def fire(self, lateness: float) -> float:
        """Run the pending timer ``lateness`` after its due time; return that time."""
        (handle,) = [h for h in self.timers if not h.cancelled]
        self.timers.remove(handle)
        self.now = handle.when + lateness
        handle.callback()
        return handle.when


def test_media_clock_arms_one_timer_at_absolute_grid_times() -> None:
    loop = FakeLoop()
    ticks: list[tuple[int, float]] = []
    clock = MediaClock(loop, lambda tick, t: ticks.append((tick, t)))  # type: ignore[arg-type]
    clock.start()
    rng = random.Random(3)
    armed = [loop.fire(rng.uniform(0.0, 0.009)) for _ in range(1000)]
    assert armed == [500.0 + n * 0.020 for n in range(1000)]
    assert ticks == [(n, 500.0 + n * 0.020) for n in range(1000)]
    assert clock.ticks == 1000 and clock.late_ticks == 0


def test_media_clock_stops_from_a_tick_and_restarts_on_a_new_grid() -> None:
    loop = FakeLoop()
    seen: list[int] = []

    def on_tick(tick: int, t: float) -> None:
        seen.append(tick)
        if tick == 2:
            clock.stop()

    clock = MediaClock(loop, on_tick)  # type: ignore[arg-type]
    clock.start()
    for _ in range(3):
        loop.fire(0.0)
    assert seen == [0, 1, 2] and not clock.running
    assert not [h for h in loop.timers if not h.cancelled]
    loop.now = 600.0
    clock.start()
    assert clock.next_tick() == (0, 600.0)
    assert clock.ticks == 3
