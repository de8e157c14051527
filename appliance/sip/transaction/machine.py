"""What the four transaction state machines share (RFC 3261 §17, RFC 6026 §7).

Each machine keeps its states in an enum and its moves in a table keyed by
(state, event); a move missing from the table is illegal and raises
``TransactionError``. Network events (responses, request retransmissions, ACKs,
transport errors) have an entry in every live state, so input from the wire never
raises: only a TU that misuses a transaction does. Timers are events too: a
machine arms them in a dict of deadlines and fires the earliest due.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, TypeVar


class TransactionError(RuntimeError):
    """A TU asked for a move the transaction's state does not allow."""


class FastEnum(enum.Enum):
    """An enum hashed by identity: members are singletons, and the default
    ``Enum.__hash__`` (hash of the name, in Python) is slow on the hot path."""

    __hash__ = object.__hash__


class Event(FastEnum):
    # From the wire (clients receive responses; servers receive requests).
    REQUEST = "request retransmission"
    ACK = "ACK"
    # Responses: from the wire for a client, from the TU for a server.
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    TRANSPORT_ERROR = "transport error"
    CANCEL_SENT = "CANCEL sent"  # the TU CANCELled an INVITE client (§9.1)
    ABANDON = "abandon"  # the TU never answered a non-INVITE request
    # Timers. Where two are due at one instant, the one that ends the
    # transaction goes first (TIMER_RANK), so no send precedes a timeout.
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"
    TIMER_TRYING = "200 ms 100 Trying timer"
    TIMER_CANCEL = "§9.1 CANCEL timer"


TIMERS: Final = frozenset(e for e in Event if e.name.startswith("TIMER_"))
_RETRANSMIT: Final = frozenset({Event.TIMER_A, Event.TIMER_E, Event.TIMER_G, Event.TIMER_TRYING})
TIMER_RANK: Final[dict[Event, int]] = {e: int(e in _RETRANSMIT) for e in TIMERS}

S = TypeVar("S", bound=enum.Enum)


def next_state(table: Mapping[tuple[S, Event], S], state: S, event: Event) -> S:
    """The state after ``event`` in ``state``, or TransactionError if illegal."""
    try:
        return table[state, event]
    except KeyError:
        raise TransactionError(f"{event.value} in {state.name}") from None


def response_event(status: int) -> Event:
    """Classify a status code (RFC 3261 §7.2)."""
    if not 100 <= status <= 699:
        raise TransactionError(f"status {status} is not a SIP status code")
    if status < 200:
        return Event.PROVISIONAL
    if status < 300:
        return Event.SUCCESS
    return Event.FAILURE


def due_timer(timers: Mapping[Event, float], now: float) -> tuple[Event, float] | None:
    """The armed timer to fire next at ``now``, with its deadline, or None."""
    best: tuple[Event, float] | None = None
    for event, deadline in timers.items():
        if deadline > now:
            continue
        if (
            best is None
            or deadline < best[1]
            or (deadline == best[1] and TIMER_RANK[event] < TIMER_RANK[best[0]])
        ):
            best = (event, deadline)
    return best


def backoff(deadline: float, interval: float, cap: float | None, now: float) -> tuple[float, float]:
    """Next (deadline, interval) of a doubling retransmit timer (§17.1.1.2, §17.1.2.2).

    The interval doubles (capped at ``cap``) from the deadline that fired, so a late
    ``handle_timer`` keeps the RFC schedule. If the caller was so late that the next
    one is due already, those are skipped: one send per firing, never a burst.
    """
    while True:
        interval = 2 * interval if cap is None else min(2 * interval, cap)
        deadline += interval
        if deadline > now:
            return deadline, interval


class Timers:
    """The armed timers of one transaction: a small dict of absolute deadlines."""

    __slots__ = ("_armed",)

    def __init__(self) -> None:
        self._armed: dict[Event, float] = {}

    def arm(self, timer: Event, deadline: float) -> None:
        self._armed[timer] = deadline

    def disarm(self, timer: Event) -> None:
        self._armed.pop(timer, None)

    def clear(self) -> None:
        self._armed.clear()

    def get(self, timer: Event) -> float | None:
        return self._armed.get(timer)

    def next_deadline(self) -> float | None:
        return min(self._armed.values()) if self._armed else None

    def due(self, now: float) -> tuple[Event, float] | None:
        return due_timer(self._armed, now)

    def armed(self) -> dict[Event, float]:
        """A copy, for tests and logs."""
        return dict(self._armed)
