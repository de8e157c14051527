"""The bench's relay card and the timed relay moves the phone side makes with it.

``RelayCard`` is a USB serial relay board driven with pyserial, one frame per switch
(``RelayFrame``: by default the "LCUS" protocol, ``A0 <channel> <state> <checksum>``).
``RelaySequencer`` is sans-IO (STYLE §2.1): a port's relay moves queued with their
delays (a hook flash, rotary dialling, a ring burst), fired in order as its one
deadline passes, each move ``delay`` after the one before; what is queued while
earlier moves are pending starts after them, as ``SimPhone``'s scripts do.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from hil.bench_config import RelayCardSpec, RelayFrame

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S: Final = 0.5  # a 4-byte frame at 9600 baud takes about 4 ms


@dataclass(frozen=True, slots=True)
class Switch:
    """Set relay ``channel`` closed (``on``) or open."""

    channel: int
    on: bool


Step = tuple[float, Switch | None]  # (s after the previous step, move); None only waits


class ByteSink(Protocol):
    def write(self, data: bytes) -> int | None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class RelayCard:
    """The card's serial port; remembers what each channel was last set to."""

    def __init__(self, link: ByteSink, frame: RelayFrame) -> None:
        self._link = link
        self._frame = frame
        self.state: dict[int, bool] = {}

    @classmethod
    def open(cls, spec: RelayCardSpec) -> RelayCard:
        import serial  # type: ignore[import-untyped]  # pyserial ships no type stubs

        link = serial.Serial(spec.device, spec.baud, timeout=0, write_timeout=WRITE_TIMEOUT_S)
        return cls(link, spec.frame)

    def switch(self, channel: int, on: bool) -> None:
        self._link.write(self._frame.encode(channel, on))
        self._link.flush()
        self.state[channel] = on
        log.debug("relay %d %s", channel, "closed" if on else "open")

    def close(self) -> None:
        self._link.close()


class RelaySequencer:
    """One port's queued relay moves, each at an absolute time fixed when queued."""

    def __init__(self) -> None:
        self._steps: deque[tuple[float, Switch | None]] = deque()
        self._last_at: float | None = None  # when the last queued step fires

    def queue(self, steps: Iterable[Step], now: float) -> None:
        at = now if self._last_at is None else max(now, self._last_at)
        for delay, move in steps:
            at += delay
            self._steps.append((at, move))
        self._last_at = at

    @property
    def busy(self) -> bool:
        return bool(self._steps)

    def next_deadline(self) -> float | None:
        return self._steps[0][0] if self._steps else None

    def pending(self) -> list[tuple[float, Switch | None]]:
        """The moves still to come, with their times."""
        return list(self._steps)

    def handle_timer(self, now: float) -> list[tuple[float, Switch]]:
        """The moves due by ``now``, each with the time it was due."""
        due: list[tuple[float, Switch]] = []
        while self._steps and self._steps[0][0] <= now:
            at, move = self._steps.popleft()
            if move is not None:
                due.append((at, move))
        if not self._steps:
            self._last_at = None
        return due


def flash_steps(channel: int, ms: int) -> list[Step]:
    """A hook flash: the loop open for ``ms``, then closed again."""
    return [(0.0, Switch(channel, False)), (ms / 1000, Switch(channel, True))]


def pulse_steps(
    channel: int, digits: str, break_ms: int = 60, make_ms: int = 40, gap_ms: int = 700
) -> list[Step]:
    """Rotary dialling as ``SimPhone.dial_pulses`` does it: ``gap_ms`` before each digit
    and after the last, then per pulse the loop open ``break_ms`` and closed ``make_ms``
    (10 pulses for 0)."""
    steps: list[Step] = []
    for digit in digits:
        if digit not in "0123456789":
            raise ValueError(f"{digit!r} cannot be dialled by pulses")
        for pulse in range(int(digit) or 10):
            steps.append(((make_ms if pulse else gap_ms) / 1000, Switch(channel, False)))
            steps.append((break_ms / 1000, Switch(channel, True)))
    steps.append((gap_ms / 1000, None))
    return steps
