"""Collecting the digits an analog user dials, and knowing when the number is complete.

Overlap dialling has no "send" key, so the exchange decides: after each digit it asks
the dialplan whether the digits so far make a number (``Completion``) and either dials
at once, or waits for more with a timeout. Each network sets its own timeouts; ours
follow common PBX practice: 15 s for the first digit, 4 s between digits, 2 s once a
number could already be complete but a longer one is possible (``_9.`` after "91", or
extension 10 beside 101). ``#`` after some digits dials at once;
it is kept as part of the number only where that completes one outright ("*21#"), and
a leading ``#`` is a digit if some number starts with it.

A number that can never route (``INVALID``) is dialled at once too: call control owns
rejection (cause, announcement, CDR), and the user hears the answer without waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import Final

from appliance.pbx.dialplan import DIAL_CHARS, MAX_NUMBER_LENGTH, Dialplan, Pattern

DIAL_NOW: Final = "#"


class Completion(Enum):
    COMPLETE = "complete"  # a number, and no longer one is possible: dial now
    MAYBE_COMPLETE = "maybe-complete"  # a number, but longer ones exist: short timeout
    NEEDS_MORE = "needs-more"  # a prefix of some number: normal timeout
    INVALID = "invalid"  # no number starts like this: dial now, call control rejects


CompletionRule = Callable[[str], Completion]


@dataclass(frozen=True, slots=True)
class DigitTimers:
    first_digit: float = 15.0
    inter_digit: float = 4.0
    maybe_complete: float = 2.0

    def __post_init__(self) -> None:
        if min(self.first_digit, self.inter_digit, self.maybe_complete) <= 0:
            raise ValueError(f"digit timeouts must be positive: {self}")


@dataclass(frozen=True, slots=True)
class Dial:
    """Collection is over: dial ``number`` (never empty)."""

    number: str


@dataclass(frozen=True, slots=True)
class Abandon:
    """No digit came before the first-digit timeout."""


CollectResult = Dial | Abandon


class DigitCollector:
    """One dialling attempt: ``start``, then ``digit``/``handle_timer`` until a result."""

    def __init__(self, completion: CompletionRule, timers: DigitTimers | None = None) -> None:
        self._completion = completion
        self._timers = timers if timers is not None else DigitTimers()
        self._digits = ""
        self._deadline: float | None = None

    @property
    def digits(self) -> str:
        return self._digits

    @property
    def active(self) -> bool:
        return self._deadline is not None

    def start(self, now: float) -> None:
        """Begin (or begin again): no digits, the first-digit timer running."""
        self._digits = ""
        self._deadline = now + self._timers.first_digit

    def stop(self) -> None:
        self._digits = ""
        self._deadline = None

    def next_deadline(self) -> float | None:
        return self._deadline

    def digit(self, digit: str, now: float) -> CollectResult | None:
        """Feed one dialled character; a result ends the attempt."""
        if self._deadline is None or len(digit) != 1 or digit not in DIAL_CHARS:
            return None  # not collecting, or A-D keys: nothing a dialplan can hold
        if digit == DIAL_NOW and self._digits:
            # An open tail ("_9.") takes '#' too, so it only stays part of the number
            # where it completes one outright ("*21#").
            if self._completion(self._digits + digit) is Completion.COMPLETE:
                self._digits += digit
            return self._finish()
        if digit == DIAL_NOW and self._completion(digit) is Completion.INVALID:
            return None  # a lone '#' starts no number here
        self._digits += digit
        if len(self._digits) >= MAX_NUMBER_LENGTH:
            return self._finish()
        completion = self._completion(self._digits)
        if completion in (Completion.COMPLETE, Completion.INVALID):
            return self._finish()
        wait = (
            self._timers.maybe_complete
            if completion is Completion.MAYBE_COMPLETE
            else self._timers.inter_digit
        )
        self._deadline = now + wait
        return None

    def handle_timer(self, now: float) -> CollectResult | None:
        if self._deadline is None or now < self._deadline:
            return None
        if not self._digits:
            self.stop()
            return Abandon()
        return self._finish()

    def _finish(self) -> Dial:
        number = self._digits
        self.stop()
        return Dial(number)


def dialplan_completion(dialplan: Dialplan, extensions: Collection[str]) -> CompletionRule:
    """A ``CompletionRule`` from the dialplan's routes and the extension numbers.

    ``extensions`` is read at every call, so a live set follows extensions being added
    or removed; the dialplan is immutable and compiled once.
    """
    patterns = tuple(Pattern.parse(route.pattern) for route in dialplan.routes)

    def completion(number: str) -> Completion:
        if not number or len(number) > MAX_NUMBER_LENGTH or not set(number) <= DIAL_CHARS:
            return Completion.INVALID
        complete = number in extensions or any(p.matches(number) for p in patterns)
        longer = len(number) < MAX_NUMBER_LENGTH and (
            any(len(e) > len(number) and e.startswith(number) for e in extensions)
            or any(_could_extend(p, number) for p in patterns)
        )
        if complete:
            return Completion.MAYBE_COMPLETE if longer else Completion.COMPLETE
        return Completion.NEEDS_MORE if longer else Completion.INVALID

    return completion


def _could_extend(pattern: Pattern, number: str) -> bool:
    """Whether some number longer than ``number`` and starting with it matches."""
    fixed = len(pattern.positions)
    if len(number) >= fixed and not pattern.open_ended:
        return False
    # An open-ended pattern takes any characters past its fixed positions.
    return all(c in allowed for c, allowed in zip(number, pattern.positions, strict=False))
