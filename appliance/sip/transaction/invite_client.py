"""INVITE client transaction: RFC 3261 §17.1.1, as updated by RFC 6026 §7.2 and §8.4.

Calling retransmits the INVITE on Timer A (unreliable transports only) until a
response or Timer B. A 300-699 is ACKed here (§17.1.1.3) and Completed absorbs
its retransmissions, re-ACKing each, until Timer D. A 2xx moves to Accepted
(RFC 6026) for Timer M, so every 2xx retransmission and every 2xx from another
fork still reaches the TU, which ACKs them itself (§13.2.2.4).
"""

from __future__ import annotations

from typing import Final, Self

from appliance.sip.message import Request, Response
from appliance.sip.transaction.actions import (
    Action,
    ResponseReceived,
    Send,
    Terminated,
    TimedOut,
    TransportFailed,
)
from appliance.sip.transaction.build import make_ack
from appliance.sip.transaction.keys import TransactionKey
from appliance.sip.transaction.machine import (
    Event,
    FastEnum,
    Timers,
    backoff,
    next_state,
    response_event,
)
from appliance.sip.transaction.timers import TimerConfig
from appliance.sip.transport import Peer


class InviteClientState(FastEnum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"  # RFC 6026 §7.2
    TERMINATED = "Terminated"


_S = InviteClientState
_E = Event

# RFC 3261 Figure 5 as redrawn by RFC 6026 Figure 5. Moves that only absorb a
# message are listed too, so wire input is legal in every state.
TRANSITIONS: Final[dict[tuple[InviteClientState, Event], InviteClientState]] = {
    (_S.CALLING, _E.TIMER_A): _S.CALLING,  # retransmit the INVITE
    (_S.CALLING, _E.TIMER_B): _S.TERMINATED,  # inform TU
    (_S.CALLING, _E.PROVISIONAL): _S.PROCEEDING,  # 1xx to TU
    (_S.CALLING, _E.SUCCESS): _S.ACCEPTED,  # 2xx to TU
    (_S.CALLING, _E.FAILURE): _S.COMPLETED,  # to TU, send ACK
    (_S.CALLING, _E.TRANSPORT_ERROR): _S.TERMINATED,  # inform TU
    (_S.CALLING, _E.CANCEL_SENT): _S.CALLING,  # arm the §9.1 timer
    (_S.CALLING, _E.TIMER_CANCEL): _S.TERMINATED,
    (_S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,  # 1xx to TU
    (_S.PROCEEDING, _E.SUCCESS): _S.ACCEPTED,
    (_S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_S.PROCEEDING, _E.TRANSPORT_ERROR): _S.PROCEEDING,  # stale: nothing is sent here
    (_S.PROCEEDING, _E.CANCEL_SENT): _S.PROCEEDING,
    (_S.PROCEEDING, _E.TIMER_CANCEL): _S.TERMINATED,  # §9.1: give up 64*T1 after CANCEL
    (_S.COMPLETED, _E.PROVISIONAL): _S.COMPLETED,  # absorbed
    (_S.COMPLETED, _E.SUCCESS): _S.COMPLETED,  # absorbed
    (_S.COMPLETED, _E.FAILURE): _S.COMPLETED,  # retransmission: ACK again, not to TU
    (_S.COMPLETED, _E.TRANSPORT_ERROR): _S.TERMINATED,  # the ACK failed: inform TU
    (_S.COMPLETED, _E.CANCEL_SENT): _S.COMPLETED,
    (_S.COMPLETED, _E.TIMER_D): _S.TERMINATED,
    (_S.ACCEPTED, _E.PROVISIONAL): _S.ACCEPTED,  # absorbed
    (_S.ACCEPTED, _E.SUCCESS): _S.ACCEPTED,  # 2xx to TU (RFC 6026 §8.4)
    (_S.ACCEPTED, _E.FAILURE): _S.ACCEPTED,  # absorbed
    (_S.ACCEPTED, _E.TRANSPORT_ERROR): _S.ACCEPTED,  # stale: nothing is sent here
    (_S.ACCEPTED, _E.CANCEL_SENT): _S.ACCEPTED,
    (_S.ACCEPTED, _E.TIMER_M): _S.TERMINATED,
    (_S.TERMINATED, _E.PROVISIONAL): _S.TERMINATED,
    (_S.TERMINATED, _E.SUCCESS): _S.TERMINATED,
    (_S.TERMINATED, _E.FAILURE): _S.TERMINATED,
    (_S.TERMINATED, _E.TRANSPORT_ERROR): _S.TERMINATED,
}


class InviteClient:
    """One INVITE we sent. Create it with ``start``; feed it responses and timers."""

    __slots__ = ("key", "request", "peer", "config", "state", "timers", "_send", "_ack", "_a")

    def __init__(
        self, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.config = config
        self.state = InviteClientState.CALLING
        self.timers = Timers()
        self._send = Send(request, peer, bytes(request))
        self._ack: Send | None = None
        self._a = config.timer_a()

    @classmethod
    def start(
        cls, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig, now: float
    ) -> tuple[Self, list[Action]]:
        """Enter Calling and send the INVITE (§17.1.1.2)."""
        tx = cls(key, request, peer, config)
        if not peer.reliable:
            tx.timers.arm(Event.TIMER_A, now + tx._a)
        tx.timers.arm(Event.TIMER_B, now + config.timer_b())
        return tx, [tx._send]

    @property
    def terminated(self) -> bool:
        return self.state is InviteClientState.TERMINATED

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def receive_response(self, response: Response, now: float) -> list[Action]:
        event = response_event(response.status)
        old = self.state
        self.state = next_state(TRANSITIONS, old, event)
        live = old is _S.CALLING or old is _S.PROCEEDING
        if event is Event.PROVISIONAL:
            if not live:
                return []
            self.timers.disarm(Event.TIMER_A)  # §17.1.1.2: no retransmits in Proceeding
            self.timers.disarm(Event.TIMER_B)
            return [ResponseReceived(self.key, response)]
        if event is Event.SUCCESS:
            if live:
                self.timers.clear()
                self.timers.arm(Event.TIMER_M, now + self.config.timer_m())
                return [ResponseReceived(self.key, response)]
            if old is _S.ACCEPTED:
                return [ResponseReceived(self.key, response)]
            return []
        if live:
            ack = make_ack(self.request, response)
            self._ack = Send(ack, self.peer, bytes(ack))
            self.timers.clear()
            self.timers.arm(Event.TIMER_D, now + self.config.timer_d(self.peer.reliable))
            return [ResponseReceived(self.key, response), self._ack]
        if old is _S.COMPLETED and self._ack is not None:
            return [self._ack]  # §17.1.1.2: re-ACK, do not pass up
        return []

    def cancel_sent(self, now: float) -> list[Action]:
        """The TU sent a CANCEL for this INVITE: give up 64*T1 later (§9.1)."""
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.CANCEL_SENT)
        if old is _S.CALLING or old is _S.PROCEEDING:
            if self.timers.get(Event.TIMER_CANCEL) is None:
                self.timers.arm(Event.TIMER_CANCEL, now + self.config.cancel_wait())
        return []

    def transport_error(self, now: float) -> list[Action]:
        """The edge could not send the INVITE or the ACK (§17.1.4)."""
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.TRANSPORT_ERROR)
        if self.state is _S.TERMINATED and old is not _S.TERMINATED:
            self.timers.clear()
            return [TransportFailed(self.key), Terminated(self.key)]
        return []

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while (due := self.timers.due(now)) is not None:
            event, deadline = due
            self.state = next_state(TRANSITIONS, self.state, event)
            if event is Event.TIMER_A:
                next_a, self._a = backoff(deadline, self._a, None, now)
                self.timers.arm(Event.TIMER_A, next_a)
                actions.append(self._send)
                continue
            self.timers.clear()
            if event is not Event.TIMER_D and event is not Event.TIMER_M:
                actions.append(TimedOut(self.key))  # Timer B, or §9.1 after a CANCEL
            actions.append(Terminated(self.key))
        return actions
