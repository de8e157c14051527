"""Hook decoding: raw on/off-hook transitions with times into hook, pulse-digit and
flash signals, as the line controller does for an FXS port.

A rotary (or pulse-dialling) phone dials by breaking the loop: each break is one
pulse, ten for "0". Between pulses the loop is made again briefly; a longer make
ends the digit. A hook flash is a longer break, and a break longer still is the
phone being hung up. The windows that tell these apart are the board's (CONFIG
``debounce``, ``break``, ``make``, ``interdigit``, ``flash``). Typical values, and
the defaults here, for a 10 pulses/s dial with a 60/40 break/make ratio:

* debounce 30 ms: a lift must hold this long before it counts (contact bounce);
* break 30-80 ms: one pulse; a break under 30 ms is a glitch and ignored;
* make 20-80 ms between pulses; a make under 20 ms is bounce inside one break;
* inter-digit: a make longer than 300 ms ends the digit;
* flash 80-800 ms: a break in this window is a hook flash;
* on-hook: a break longer than the flash window (800 ms) is a hang-up.

Where the pulse and flash windows overlap (the UK's timed-break recall starts at
60 ms) a break short enough to be a pulse is a pulse; a break that fits neither
window (between them, when they do not meet) is ignored. Times are the controller's
integer milliseconds, so the windows compare exactly. Pulse counts other than 1-10
(and the inverted or offset dials of a few countries) are not decoded: such a digit
is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from appliance.lines.signals import Flash, LineSignal, OffHook, OnHook, PulseDigit


@dataclass(frozen=True, slots=True)
class PulseWindows:
    """The hook decoder's timing windows, in milliseconds (see the module text)."""

    debounce_ms: int = 30
    break_min_ms: int = 30
    break_max_ms: int = 80
    make_min_ms: int = 20
    make_max_ms: int = 80
    interdigit_ms: int = 300
    flash_min_ms: int = 80
    flash_max_ms: int = 800

    def __post_init__(self) -> None:
        if not 0 <= self.debounce_ms <= 1000:
            raise ValueError("debounce must be 0-1000 ms")
        if not 0 < self.break_min_ms <= self.break_max_ms < self.flash_max_ms:
            raise ValueError("break window needs 0 < min <= max < flash max")
        if not 0 < self.make_min_ms <= self.make_max_ms <= self.interdigit_ms <= 65535:
            raise ValueError("make window needs 0 < min <= max <= inter-digit")
        if not 0 < self.flash_min_ms <= self.flash_max_ms <= 65535:
            raise ValueError("flash window needs 0 < min <= max <= 65535")


class HookState(Enum):
    ON_HOOK = "on_hook"  # hung up, idle
    LIFTING = "lifting"  # off hook from idle, not yet held for the debounce time
    OFF_HOOK = "off_hook"  # off hook, no digit in progress
    BREAK = "break"  # on hook from off hook: a pulse, a flash or a hang-up
    MAKE = "make"  # off hook again after a pulse: the next pulse or the digit's end


class _Input(Enum):
    ON = "on"  # loop broken (on hook)
    OFF = "off"  # loop made (off hook)
    TIMER = "timer"


OFF_HOOK_STATES: Final = frozenset({HookState.OFF_HOOK, HookState.BREAK, HookState.MAKE})
CLOCK_MASK: Final = 2**32 - 1  # a controller's millisecond clock wraps after 49.7 days


def elapsed_ms(now: int, then: int) -> int:
    """Milliseconds from ``then`` to ``now`` on the wrapping 32-bit clock."""
    return (now - then) & CLOCK_MASK


def reached(now: int, deadline: int) -> bool:
    """``now`` is at or past ``deadline`` (both on the wrapping clock, < 24 days apart)."""
    return elapsed_ms(now, deadline) < 2**31


class HookDecoder:
    """One FXS port's hook decoder. Feed ``hook()`` with level changes and their
    times; call ``handle_timer()`` at ``next_deadline()``. Both return signals.

    Repeating the current level is harmless (it is not a transition). A transition
    fed after a passed deadline first runs the timer, so late callers stay correct.
    """

    def __init__(self, port: int, windows: PulseWindows, off_hook: bool = False) -> None:
        self.port = port
        self.windows = windows
        self.state = HookState.OFF_HOOK if off_hook else HookState.ON_HOOK
        self.pulses = 0  # pulses counted in the digit being dialled
        self.dropped_digits = 0  # digits with more than ten pulses
        self._since = 0  # when the current state began (ms)
        self._break_start = 0  # MAKE: when the pulse before it began, to undo bounce
        self._before_break = HookState.OFF_HOOK  # BREAK: the state a glitch returns to
        self._before_since = 0

    @property
    def off_hook(self) -> bool:
        """The hook state as last reported (a break is off hook until it is a hang-up)."""
        return self.state in OFF_HOOK_STATES

    def hook(self, off_hook: bool, at_ms: int) -> list[LineSignal]:
        out = self.handle_timer(at_ms)
        handler = _TABLE.get((self.state, _Input.OFF if off_hook else _Input.ON))
        if handler is not None:  # absent: the level did not change
            out += handler(self, at_ms)
        return out

    def next_deadline(self) -> int | None:
        w = self.windows
        match self.state:
            case HookState.LIFTING:
                return (self._since + w.debounce_ms) & CLOCK_MASK
            case HookState.BREAK:
                return (self._since + w.flash_max_ms + 1) & CLOCK_MASK  # longer than a flash
            case HookState.MAKE:
                return (self._since + w.interdigit_ms + 1) & CLOCK_MASK  # ends the digit
        return None

    def handle_timer(self, at_ms: int) -> list[LineSignal]:
        out: list[LineSignal] = []
        while (deadline := self.next_deadline()) is not None and reached(at_ms, deadline):
            out += _TABLE[(self.state, _Input.TIMER)](self, deadline)
        return out

    # -- transitions ------------------------------------------------------------------

    def _go(self, state: HookState, at_ms: int) -> None:
        self.state = state
        self._since = at_ms

    def _lift(self, at_ms: int) -> list[LineSignal]:
        self._go(HookState.LIFTING, at_ms)
        return self._lifted(at_ms) if self.windows.debounce_ms == 0 else []

    def _lift_bounced(self, at_ms: int) -> list[LineSignal]:
        self._go(HookState.ON_HOOK, at_ms)
        return []

    def _lifted(self, at_ms: int) -> list[LineSignal]:
        self._go(HookState.OFF_HOOK, at_ms)
        return [OffHook(self.port)]

    def _break(self, at_ms: int) -> list[LineSignal]:
        out: list[LineSignal] = []
        if self.state is HookState.MAKE:
            if elapsed_ms(at_ms, self._since) < self.windows.make_min_ms:
                # bounce inside one break: the earlier break goes on, uncounted
                self.pulses -= 1
                self._go(HookState.BREAK, self._break_start)
                return out
            if elapsed_ms(at_ms, self._since) > self.windows.make_max_ms:
                out += self._end_digit()  # too long for a make: the next digit begins
        self._before_break, self._before_since = self.state, self._since
        self._go(HookState.BREAK, at_ms)
        return out

    def _made(self, at_ms: int) -> list[LineSignal]:
        w = self.windows
        length = elapsed_ms(at_ms, self._since)
        if length < w.break_min_ms:  # a glitch: as if it never happened
            self._go(self._before_break, self._before_since)
            return []
        if length <= w.break_max_ms:
            self.pulses += 1
            self._break_start = self._since
            self._go(HookState.MAKE, at_ms)
            return []
        out = self._end_digit()
        self._go(HookState.OFF_HOOK, at_ms)
        if w.flash_min_ms <= length:  # never above flash max: the timer hung up first
            out.append(Flash(self.port))
        return out

    def _hung_up(self, at_ms: int) -> list[LineSignal]:
        self.pulses = 0  # a digit cut short by hanging up is abandoned
        self._go(HookState.ON_HOOK, at_ms)
        return [OnHook(self.port)]

    def _digit_done(self, at_ms: int) -> list[LineSignal]:
        out = self._end_digit()
        self._go(HookState.OFF_HOOK, at_ms)
        return out

    def _end_digit(self) -> list[LineSignal]:
        pulses, self.pulses = self.pulses, 0
        if 1 <= pulses <= 10:
            return [PulseDigit(self.port, str(pulses % 10))]
        if pulses:
            self.dropped_digits += 1
        return []


_Handler = Callable[[HookDecoder, int], list[LineSignal]]
_TABLE: Final[dict[tuple[HookState, _Input], _Handler]] = {
    (HookState.ON_HOOK, _Input.OFF): HookDecoder._lift,
    (HookState.LIFTING, _Input.ON): HookDecoder._lift_bounced,
    (HookState.LIFTING, _Input.TIMER): HookDecoder._lifted,
    (HookState.OFF_HOOK, _Input.ON): HookDecoder._break,
    (HookState.BREAK, _Input.OFF): HookDecoder._made,
    (HookState.BREAK, _Input.TIMER): HookDecoder._hung_up,
    (HookState.MAKE, _Input.ON): HookDecoder._break,
    (HookState.MAKE, _Input.TIMER): HookDecoder._digit_done,
}
