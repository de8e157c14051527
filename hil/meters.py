"""What the bench reads from its GPIO inputs, sample by sample (sans-IO, STYLE §2.1).

``RingMeter`` turns a ring detector's samples into ring bursts and their cadence. A
detector (an optocoupler across the line) pulses with the ring frequency, so pulses
closer together than ``hold_ms`` are one burst. A burst lasts from its first active
sample to its last plus one sample period; the silence after it, from there to the next
burst's first active sample. The cadence is those lengths in ms, on and off in turn,
as ``SimPhone.cadence`` gives the controller's.

``LoopMeter`` says whether the board has opened the feed (the disconnect signal): the
phone side is off hook and no loop current has flowed for ``open_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RingMeter:
    sample_s: float
    hold_s: float
    gap_max_s: float
    segments_ms: list[int] = field(default_factory=list)  # on, off, on, off... completed
    _first: float | None = None  # the burst going on: its first active sample
    _last: float | None = None  # the last active sample seen
    _ended: float | None = None  # the end of the last completed burst

    def feed(self, at: float, active: bool) -> None:
        if active:
            if self._first is None:
                if self._ended is not None and at - self._ended >= self.gap_max_s:
                    self.reset()  # a new ringing, not the next burst of the last one
                if self._ended is not None:
                    self.segments_ms.append(round((at - self._ended) * 1000))
                self._first = at
            self._last = at
        elif self._first is not None and self._last is not None:
            if at - self._last >= self.hold_s:
                self._ended = self._last + self.sample_s
                self.segments_ms.append(round((self._ended - self._first) * 1000))
                self._first = None

    def ringing(self, now: float) -> bool:
        """A burst is on, or the last ended less than ``gap_max_s`` ago."""
        if self._first is not None:
            return True
        return self._ended is not None and now - self._ended < self.gap_max_s

    def in_burst(self) -> bool:
        return self._first is not None

    def cadence(self, count: int | None = None) -> tuple[int, ...]:
        """The first ``count`` completed segments (all when None)."""
        return tuple(self.segments_ms if count is None else self.segments_ms[:count])

    def reset(self) -> None:
        """Forget the ringing so far: the next burst starts a new cadence."""
        self.segments_ms.clear()
        self._first = self._last = self._ended = None


@dataclass
class LoopMeter:
    open_s: float
    _current_at: float | None = None  # the last sample with loop current
    _off_hook_since: float | None = None

    def feed(self, at: float, current: bool, off_hook: bool) -> None:
        if not off_hook:
            self._off_hook_since = None
            return
        if self._off_hook_since is None:
            self._off_hook_since = at
        if current:
            self._current_at = at

    def open(self, now: float) -> bool:
        if self._off_hook_since is None:
            return False
        since = self._off_hook_since
        if self._current_at is not None and self._current_at > since:
            since = self._current_at
        return now - since >= self.open_s
