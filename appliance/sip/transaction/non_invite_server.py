"""Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).

Trying absorbs request retransmissions until the TU answers; Proceeding answers
them with the latest provisional response and Completed with the final one until
Timer J. Finals after the first are discarded. ``abandon`` ends a transaction the
TU never answered (see ``TimerConfig.tu_wait``).

``TransactionLayer`` keeps only the encoded final response of a Completed
transaction (see layer.py); this class is the full machine for everything else.
"""

from __future__ import annotations

from typing import Final, Self

from appliance.sip.message import Request, Response
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
    next_state,
    response_event,
)
from appliance.sip.transaction.timers import TimerConfig
from appliance.sip.transport import Peer


class NonInviteServerState(FastEnum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_S = NonInviteServerState
_E = Event

TRANSITIONS: Final[dict[tuple[NonInviteServerState, Event], NonInviteServerState]] = {
    (_S.TRYING, _E.REQUEST): _S.TRYING,  # absorbed: the TU has not answered
    (_S.TRYING, _E.PROVISIONAL): _S.PROCEEDING,  # send
    (_S.TRYING, _E.SUCCESS): _S.COMPLETED,  # send
    (_S.TRYING, _E.FAILURE): _S.COMPLETED,  # send
    (_S.TRYING, _E.TRANSPORT_ERROR): _S.TRYING,  # stale: nothing was sent
    (_S.TRYING, _E.ABANDON): _S.TERMINATED,
    (_S.PROCEEDING, _E.REQUEST): _S.PROCEEDING,  # resend the last provisional
    (_S.PROCEEDING, _E.PROVISIONAL): _S.PROCEEDING,
    (_S.PROCEEDING, _E.SUCCESS): _S.COMPLETED,
    (_S.PROCEEDING, _E.FAILURE): _S.COMPLETED,
    (_S.PROCEEDING, _E.TRANSPORT_ERROR): _S.TERMINATED,  # inform TU
    (_S.PROCEEDING, _E.ABANDON): _S.TERMINATED,
    (_S.COMPLETED, _E.REQUEST): _S.COMPLETED,  # resend the final
    (_S.COMPLETED, _E.SUCCESS): _S.COMPLETED,  # discarded (§17.2.2)
    (_S.COMPLETED, _E.FAILURE): _S.COMPLETED,  # discarded (§17.2.2)
    (_S.COMPLETED, _E.TRANSPORT_ERROR): _S.TERMINATED,  # inform TU
    (_S.COMPLETED, _E.TIMER_J): _S.TERMINATED,
    (_S.TERMINATED, _E.REQUEST): _S.TERMINATED,
    (_S.TERMINATED, _E.TRANSPORT_ERROR): _S.TERMINATED,
}


class NonInviteServer:
    """One non-INVITE request we received (not ACK). ``created`` is its arrival."""

    __slots__ = ("key", "request", "peer", "config", "state", "timers", "created", "_last")

    def __init__(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        config: TimerConfig,
        created: float,
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.config = config
        self.state = NonInviteServerState.TRYING
        self.timers = Timers()
        self.created = created
        self._last: Send | None = None

    @classmethod
    def start(
        cls, key: TransactionKey, request: Request, peer: Peer, config: TimerConfig, now: float
    ) -> tuple[Self, list[Action]]:
        """Enter Trying and pass the request to the TU (§17.2.2)."""
        return cls(key, request, peer, config, now), [RequestReceived(key, request, peer)]

    @property
    def terminated(self) -> bool:
        return self.state is NonInviteServerState.TERMINATED

    @property
    def last_sent(self) -> Send | None:
        """The latest response sent, encoded: what a retransmission gets."""
        return self._last

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def receive_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission of the request."""
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.REQUEST)
        if old is _S.TRYING or old is _S.TERMINATED or self._last is None:
            return []
        return [self._last]

    def send_response(self, response: Response, now: float) -> list[Action]:
        """The TU's response (§17.2.2); raises TransactionError if out of turn."""
        event = response_event(response.status)
        old = self.state
        self.state = next_state(TRANSITIONS, old, event)
        if old is _S.COMPLETED:
            return []  # §17.2.2: later finals are discarded
        send = Send(response, self.peer, bytes(response))
        self._last = send
        if event is not Event.PROVISIONAL:
            self.timers.arm(Event.TIMER_J, now + self.config.timer_j(self.peer.reliable))
        return [send]

    def transport_error(self, now: float) -> list[Action]:
        """The edge could not send a response (§17.2.4)."""
        old = self.state
        self.state = next_state(TRANSITIONS, old, Event.TRANSPORT_ERROR)
        if self.state is _S.TERMINATED and old is not _S.TERMINATED:
            self.timers.clear()
            return [TransportFailed(self.key), Terminated(self.key)]
        return []

    def abandon(self, now: float) -> list[Action]:
        """Give up on a TU that never answered: TimedOut, no response sent.

        RFC 4320 §4.1 forbids answering a non-INVITE with 408, and the client
        has stopped listening anyway.
        """
        self.state = next_state(TRANSITIONS, self.state, Event.ABANDON)
        self.timers.clear()
        return [TimedOut(self.key), Terminated(self.key)]

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while (due := self.timers.due(now)) is not None:
            event, _ = due
            self.state = next_state(TRANSITIONS, self.state, event)
            self.timers.clear()
            actions.append(Terminated(self.key))
        return actions
