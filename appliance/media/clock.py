"""The media clock: one 20 ms frame schedule shared by every generated stream.

Frame n is due at ``t0 + n * period`` on the loop clock (STYLE §2.8). The schedule is
computed from the start time, never as "now + 20 ms", so lateness of one wake-up
does not push every later frame back: over an hour the frames stay on the grid to
the float's precision, where relative sleeps would drift by the sum of every
wake-up's delay.

``FrameSchedule`` is the sans-IO part: it is fed ``now`` and says which ticks are
due. When the loop was late, the missed ticks are run back to back, but at most
``max_burst`` of them: older ones are skipped (and counted), so a phone's jitter
buffer gets a short catch-up rather than a burst of a whole second of frames.
``MediaClock`` is the asyncio edge: one ``loop.call_at`` timer re-armed at the next
deadline, calling ``on_tick(tick, due_time)`` for each due tick.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """Pacing of generated frames."""

    period: float = 0.020  # STYLE §2.8: 160 samples of G.711 at 8 kHz
    max_burst: int = 3  # frames sent back to back at most when the loop was late
    # A timer may fire up to this much before its deadline: uvloop's clock and
    # timers have 1 ms resolution, and treating that as "not yet" would spin.
    resolution: float = 0.001
    late_after: float = 0.010  # a tick run this long after its due time counts as late

    def __post_init__(self) -> None:
        if self.period <= 0 or self.max_burst < 1 or self.resolution < 0:
            raise ValueError("clock period and resolution must be positive, max_burst >= 1")


class FrameSchedule:
    """Which ticks of the grid ``t0 + n * period`` are due at ``now`` (sans-IO)."""

    def __init__(self, t0: float, config: ClockConfig | None = None) -> None:
        self.t0 = t0
        self.config = config or ClockConfig()
        self.next_tick = 0
        self.ticks_run = 0
        self.late_ticks = 0  # run more than ``late_after`` after their due time
        self.skipped_ticks = 0  # never run: the loop was more than max_burst frames late

    def time_of(self, tick: int) -> float:
        """The due time of ``tick``: computed from t0, so nothing accumulates."""
        return self.t0 + tick * self.config.period

    def next_deadline(self) -> float:
        return self.time_of(self.next_tick)

    def due(self, now: float) -> range:
        """The ticks to run now, oldest first; they are consumed."""
        config = self.config
        horizon = now + config.resolution
        first = self.next_tick
        if horizon < self.time_of(first):
            return range(0)
        last = max(first, math.floor((horizon - self.t0) / config.period))
        # floor() of a float quotient can be one off either way at a grid point
        while self.time_of(last + 1) <= horizon:
            last += 1
        while last > first and self.time_of(last) > horizon:
            last -= 1
        if last - first + 1 > config.max_burst:
            skip_to = last - config.max_burst + 1
            self.skipped_ticks += skip_to - first
            first = skip_to
        for tick in range(first, last + 1):
            if now - self.time_of(tick) > config.late_after:
                self.late_ticks += 1
        self.next_tick = last + 1
        self.ticks_run += last + 1 - first
        return range(first, last + 1)


class MediaClock:
    """One loop timer driving ``on_tick(tick, due_time)`` on the frame grid.

    ``start()`` begins a grid at the current loop time (the first tick is due at
    once); ``stop()`` cancels the timer, so an idle engine has no 50 Hz wake-ups.
    Tick numbers restart at 0 with each start; ``due_time`` is the tick's exact
    grid time, which is what generated RTP timestamps are derived from.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_tick: Callable[[int, float], None],
        config: ClockConfig | None = None,
    ) -> None:
        self._loop = loop
        self._on_tick = on_tick
        self.config = config or ClockConfig()
        self._schedule: FrameSchedule | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._done_ticks = 0  # totals of earlier runs
        self._done_late = 0
        self._done_skipped = 0

    @property
    def running(self) -> bool:
        return self._schedule is not None

    @property
    def ticks(self) -> int:
        return self._done_ticks + (self._schedule.ticks_run if self._schedule else 0)

    @property
    def late_ticks(self) -> int:
        return self._done_late + (self._schedule.late_ticks if self._schedule else 0)

    @property
    def skipped_ticks(self) -> int:
        return self._done_skipped + (self._schedule.skipped_ticks if self._schedule else 0)

    def next_tick(self) -> tuple[int, float] | None:
        """The tick that runs next and its due time; None when stopped."""
        if self._schedule is None:
            return None
        return self._schedule.next_tick, self._schedule.next_deadline()

    def start(self) -> None:
        if self._schedule is not None:
            return
        self._schedule = FrameSchedule(self._loop.time(), self.config)
        self._arm(self._schedule)

    def stop(self) -> None:
        schedule = self._schedule
        if schedule is None:
            return
        self._done_ticks += schedule.ticks_run
        self._done_late += schedule.late_ticks
        self._done_skipped += schedule.skipped_ticks
        self._schedule = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, schedule: FrameSchedule) -> None:
        self._handle = self._loop.call_at(schedule.next_deadline(), self._fire)

    def _fire(self) -> None:
        self._handle = None
        schedule = self._schedule
        if schedule is None:
            return
        for tick in schedule.due(self._loop.time()):
            self._on_tick(tick, schedule.time_of(tick))
            if self._schedule is not schedule:
                return  # on_tick stopped (or restarted) the clock
        self._arm(schedule)
