"""Non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).

Trying retransmits on Timer E, doubling up to T2 (unreliable transports only);
Proceeding retransmits every T2. Timer F bounds the whole exchange; Completed
absorbs response retransmissions for Timer K.
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


class NonInviteClientState(FastEnum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_S = NonInviteClientState
_E = Event

TRANSITIONS: Final[dict[tuple[NonInviteClientState, Event], NonInviteClientState]] = {
    (_S.TRYING, _E.TIMER_E): _S.TRYING,  # retransmit, E = min(2E, T2)
    (_S.TRYING, _E.TIMER_F): _S.TERMINATED,  # inform TU
    (_S.TRYING, _E.PROVISIONAL): _S.PROCEEDING,  # 1xx to TU
    (_S.TRYING, _E.SUCCESS): _S.COMPLETED,  # final to TU
    (_S.TRYING, _E.FAILURE): _S.COMPLETED,
    (_S.TRYING, _E.TRANSPORT_ERROR): _S.TERMINATED,  # inform TU
    (_S.PROCEEDING, _E.TIMER_E): _S.PROCEEDING,  # retransmit, E = T2
    (_S.PROCEEDING, _E.TIMER_F): _S.TERMINATED,
    (_S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,
    (_S.PROCEEDING, _E.SUCCESS): _S.COMPLETED,
    (_S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_S.PROCEEDING, _E.TRANSPORT_ERROR): _S.TERMINATED,
    (_S.COMPLETED, _E.PROVISIONAL): _S.COMPLETED,  # absorbed
    (_S.COMPLETED, _E.SUCCESS): _S.COMPLETED,  # absorbed
    (_S.COMPLETED, _E.FAILURE): _S.COMPLETED,  # absorbed
    (_S.COMPLETED, _E.TRANSPORT_ERROR): _S.COMPLETED,  # stale: the answer is in
    (_S.COMPLETED, _E.TIMER_K): _S.TERMINATED,
    (_S.TERMINATED, _E.PROVISIONAL): _S.TERMINATED,
    (_S.TERMINATED, _E.SUCCESS): _S.TERMINATED,
    (_S.TERMINATED, _E.FAILURE): _S.TERMINATED,
    (_S.TERMINATED, _E.TRANSPORT_ERROR): _S.TERMINATED,
}


class NonInviteClient:
    """One non-INVITE request we sent (not ACK, which has no transaction)."""

    __slots__ = ("key", "request", "peer", "config", "state", "timers", "_send", "_e")

    def __init__(
        self, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.config = config
        self.state = NonInviteClientState.TRYING
        self.timers = Timers()
        self._send = Send(request, peer, bytes(request))
        self._e = config.timer_e()

    @classmethod
    def start(
        cls, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig, now: float
    ) -> tuple[Self, list[Action]]:
        """Enter Trying and send the request (§17.1.2.2)."""
        tx = cls(key, request, peer, config)
        if not peer.reliable:
            tx.timers.arm(Event.TIMER_E, now + tx._e)
        tx.timers.arm(Event.TIMER_F, now + config.timer_f())
        return tx, [tx._send]

    @property
    def terminated(self) -> bool:
        return self.state is NonInviteClientState.TERMINATED

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def receive_response(self, response: Response, now: float) -> list[Action]:
        event = response_event(response.status)
        old = self.state
        self.state = next_state(TRANSITIONS, old, event)
        if old is not _S.TRYING and old is not _S.PROCEEDING:
            return []
        if event is not Event.PROVISIONAL:
            self.timers.clear()
            self.timers.arm(Event.TIMER_K, now + self.config.timer_k(self.peer.reliable))
        return [ResponseReceived(self.key, response)]

    def transport_error(self, now: float) -> list[Action]:
        """The edge could not send the request (§17.1.4)."""
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
            old = self.state
            self.state = next_state(TRANSITIONS, old, event)
            if event is Event.TIMER_E:
                t2 = self.config.t2
                interval = self._e if old is _S.TRYING else t2  # Proceeding: E = T2
                next_e, self._e = backoff(deadline, interval, t2, now)
                self.timers.arm(Event.TIMER_E, next_e)
                actions.append(self._send)
                continue
            self.timers.clear()
            if event is Event.TIMER_F:
                actions.append(TimedOut(self.key))
            actions.append(Terminated(self.key))
        return actions
