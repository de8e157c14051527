"""INVITE server transaction: RFC 3261 §17.2.1, as updated by RFC 6026 §7.1 and §8.5-8.7.

Proceeding sends a 100 Trying 200 ms after the INVITE unless the TU answered
first, and answers INVITE retransmissions with the latest provisional response.
A 300-699 moves to Completed, which retransmits it on Timer G (unreliable
transports only) until the ACK arrives (Confirmed, absorbing ACKs for Timer I) or
Timer H gives up. A 2xx moves to Accepted (RFC 6026) for Timer L: INVITE
retransmissions are absorbed, the TU's own 2xx retransmissions are sent, and an
ACK that matches (a peer reusing the branch) is passed up as the ACK for a 2xx.
"""

from __future__ import annotations

from typing import Final, Self

from appliance.sip.message import Request, Response, make_response
from appliance.sip.transaction.actions import (
    Action,
    RequestReceived,
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


class InviteServerState(FastEnum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026 §7.1
    TERMINATED = "Terminated"


_S = InviteServerState
_E = Event

# RFC 3261 Figure 7 as redrawn by RFC 6026 Figure 7. PROVISIONAL, SUCCESS and
# FAILURE come from the TU here; REQUEST, ACK and TRANSPORT_ERROR from the wire.
TRANSITIONS: Final[dict[tuple[InviteServerState, Event], InviteServerState]] = {
    (_S.PROCEEDING, _E.REQUEST): _S.PROCEEDING,  # resend the last provisional
    (_S.PROCEEDING, _E.ACK): _S.PROCEEDING,  # no final yet: absorbed
    (_S.PROCEEDING, _E.TIMER_TRYING): _S.PROCEEDING,  # send 100 Trying
    (_S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,  # send
    (_S.PROCEEDING, _E.SUCCESS): _S.ACCEPTED,  # send
    (_S.PROCEEDING, _E.FAILURE): _S.COMPLETED,  # send
    (_S.PROCEEDING, _E.TRANSPORT_ERROR): _S.TERMINATED,  # inform TU
    (_S.COMPLETED, _E.REQUEST): _S.COMPLETED,  # resend the final response
    (_S.COMPLETED, _E.ACK): _S.CONFIRMED,  # absorbed, never passed up
    (_S.COMPLETED, _E.TIMER_G): _S.COMPLETED,  # resend, G = min(2G, T2)
    (_S.COMPLETED, _E.TIMER_H): _S.TERMINATED,  # no ACK: inform TU
    (_S.COMPLETED, _E.TRANSPORT_ERROR): _S.TERMINATED,  # inform TU
    (_S.CONFIRMED, _E.REQUEST): _S.CONFIRMED,  # absorbed
    (_S.CONFIRMED, _E.ACK): _S.CONFIRMED,  # absorbed
    (_S.CONFIRMED, _E.TRANSPORT_ERROR): _S.CONFIRMED,  # stale: the ACK came
    (_S.CONFIRMED, _E.TIMER_I): _S.TERMINATED,
    (_S.ACCEPTED, _E.REQUEST): _S.ACCEPTED,  # absorbed (RFC 6026 §8.5)
    (_S.ACCEPTED, _E.ACK): _S.ACCEPTED,  # ACK for the 2xx: to TU
    (_S.ACCEPTED, _E.SUCCESS): _S.ACCEPTED,  # the TU's 2xx retransmission: send
    # Inform TU but stay: ending early would let an INVITE retransmission open a
    # new transaction, the very hole RFC 6026 closes.
    (_S.ACCEPTED, _E.TRANSPORT_ERROR): _S.ACCEPTED,
    (_S.ACCEPTED, _E.TIMER_L): _S.TERMINATED,
    (_S.TERMINATED, _E.REQUEST): _S.TERMINATED,
    (_S.TERMINATED, _E.ACK): _S.TERMINATED,
    (_S.TERMINATED, _E.TRANSPORT_ERROR): _S.TERMINATED,
}


class InviteServer:
    """One INVITE we received. Create it with ``start``; the TU answers it."""

    __slots__ = ("key", "request", "peer", "config", "state", "timers", "_last", "_g")

    def __init__(
        self, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.config = config
        self.state = InviteServerState.PROCEEDING
        self.timers = Timers()
        self._last: Send | None = None  # the response a retransmission gets
        self._g = config.timer_g()

    @classmethod
    def start(
        cls, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig, now: float
    ) -> tuple[Self, list[Action]]:
        """Enter Proceeding and pass the INVITE to the TU (§17.2.1)."""
        tx = cls(key, request, peer, config)
        tx.timers.arm(Event.TIMER_TRYING, now + config.trying_delay)
        return tx, [RequestReceived(key, request, peer)]

    @property
    def terminated(self) -> bool:
        return self.state is InviteServerState.TERMINATED

    @property
    def last_sent(self) -> Send | None:
        """The latest response sent, encoded: what a retransmission gets."""
        return self._last

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission of the INVITE."""
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.REQUEST)
        if (old is _S.PROCEEDING or old is _S.COMPLETED) and self._last is not None:
            return [self._last]
        return []

    def receive_ack(self, ack: Request, peer: Peer, now: float) -> list[Action]:
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.ACK)
        if old is _S.COMPLETED:
            self.timers.clear()
            self.timers.arm(Event.TIMER_I, now + self.config.timer_i(self.peer.reliable))
        elif old is _S.ACCEPTED:
            return [RequestReceived(None, ack, peer)]
        return []

    def send_response(self, response: Response, now: float) -> list[Action]:
        """The TU's response (§17.2.1); raises TransactionError if out of turn."""
        event = response_event(response.status)
        old = self.state
        self.state = next_state(TRANSITIONS, old, event)
        send = Send(response, self.peer, bytes(response))
        if old is _S.PROCEEDING:
            self._last = send
            self.timers.disarm(Event.TIMER_TRYING)
            if event is Event.SUCCESS:
                self.timers.arm(Event.TIMER_L, now + self.config.timer_l())
            elif event is Event.FAILURE:
                if not self.peer.reliable:
                    self.timers.arm(Event.TIMER_G, now + self._g)
                self.timers.arm(Event.TIMER_H, now + self.config.timer_h())
        return [send]

    def transport_error(self, now: float) -> list[Action]:
        """The edge could not send a response (§17.2.4)."""
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.TRANSPORT_ERROR)
        if self.state is _S.TERMINATED and old is not _S.TERMINATED:
            self.timers.clear()
            return [TransportFailed(self.key), Terminated(self.key)]
        if old is _S.ACCEPTED:
            return [TransportFailed(self.key)]
        return []

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while (due := self.timers.due(now)) is not None:
            event, deadline = due
            self.state = next_state(TRANSITIONS, self.state, event)
            if event is Event.TIMER_TRYING:
                self.timers.disarm(Event.TIMER_TRYING)
                trying = make_response(self.request, 100)
                self._last = Send(trying, self.peer, bytes(trying))
                actions.append(self._last)
                continue
            if event is Event.TIMER_G:
                next_g, self._g = backoff(deadline, self._g, self.config.t2, now)
                self.timers.arm(Event.TIMER_G, next_g)
                if self._last is not None:  # always: Completed is entered by sending
                    actions.append(self._last)
                continue
            self.timers.clear()
            if event is Event.TIMER_H:
                actions.append(TimedOut(self.key))
            actions.append(Terminated(self.key))
        return actions
