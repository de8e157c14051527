"""The UAS core's 2xx retransmission for INVITE, sans-IO: RFC 3261 §13.3.1.4.

The INVITE server transaction hands a 2xx to the transport once and leaves; RFC 6026
keeps it in Accepted, where the TU's own retransmissions pass through. This timer
says when: T1 after the first send, doubling up to T2, until the ACK arrives; with
no ACK after 64*T1 the TU should confirm and then end the session with BYE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from appliance.sip.dialog import DialogError
from appliance.sip.message import Response
from appliance.sip.transaction.timers import TimerConfig


class RetransmitState(enum.Enum):
    WAITING = "waiting"  # 2xx out, no ACK yet
    ACKED = "acked"
    GAVE_UP = "gave up"


@dataclass(frozen=True, slots=True)
class Resend:
    """Send ``response`` again (through the transaction layer's Accepted state)."""

    response: Response


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    """No ACK within 64*T1: the TU should send BYE (§13.3.1.4)."""

    response: Response


RetransmitAction = Resend | AckTimedOut


class TwoXxRetransmitter:
    """Resends one 2xx at T1, 2*T1, 4*T1... capped at T2, until ACK or 64*T1."""

    __slots__ = ("response", "state", "_timers", "_give_up_at", "_interval", "_next")

    def __init__(self, response: Response, now: float, timers: TimerConfig) -> None:
        """``response`` was just sent for the first time, at ``now``."""
        if not 200 <= response.status < 300:
            raise DialogError(f"only a 2xx is retransmitted by the TU, not {response.status}")
        self.response = response
        self.state = RetransmitState.WAITING
        self._timers = timers
        self._give_up_at = now + 64 * timers.t1
        self._interval = timers.t1
        self._next = now + timers.t1

    def next_deadline(self) -> float | None:
        if self.state is not RetransmitState.WAITING:
            return None
        return min(self._next, self._give_up_at)

    def handle_timer(self, now: float) -> list[RetransmitAction]:
        if self.state is not RetransmitState.WAITING:
            return []
        if now >= self._give_up_at:
            self.state = RetransmitState.GAVE_UP
            return [AckTimedOut(self.response)]
        if now < self._next:
            return []  # woken early: nothing is due
        self._interval = min(2 * self._interval, self._timers.t2)
        self._next = now + self._interval
        return [Resend(self.response)]

    def ack_received(self) -> None:
        """The ACK came (the TU matched it to this 2xx's dialog and CSeq)."""
        if self.state is RetransmitState.WAITING:
            self.state = RetransmitState.ACKED
