"""The transaction layer: every transaction of one SIP endpoint (RFC 3261 §17).

``receive`` matches requests (§17.2.3) and responses (§17.1.3) to transactions,
opens server transactions for new requests and passes up what matches nothing:
ACKs for 2xx and stray responses, with key None, for the dialog layer.
``request`` opens client transactions and ``respond`` answers server ones.

Timers. Machines with timers sit in one heap of (deadline, key), invalidated
lazily: an entry counts only while it equals the deadline last scheduled for its
key, and the heap is rebuilt when stale entries outnumber live ones.
``next_deadline`` is O(1) amortised and ``handle_timer`` O(log n) per firing.

Completed non-INVITE server transactions (the registrar's 200s, ~320,000 alive at
10,000 REGISTER/s with Timer J = 32 s) are not machines: the layer keeps only
key -> encoded final response, and a FIFO of (expiry, key, bytes), since every
entry has the same lifetime. A retransmitted request is answered from those
bytes, re-parsed to give ``Send`` its message; the answer goes to the peer the
retransmission came from. Non-INVITE server transactions whose TU stays silent
are abandoned after ``TimerConfig.tu_wait`` by a sweep, not a timer each, so the
hot path touches no heap at all. The FIFO assumes ``now`` never goes backwards
(the event loop's monotonic clock); if it does, entries expire late, never early.

INVITE transactions in RFC 6026 Accepted (after a 2xx, for Timer L or M = 64*T1)
are made compact the same way: a call keeps two of them for 32 s, and as full
machines holding parsed messages they were most of the objects the garbage
collector walked under call load (a million at 400 calls/s, with half-second
pauses). An Accepted entry keeps only its key, its peer and its expiry, and does
what the machine did: a server absorbs INVITE retransmissions and sends the TU's
2xx retransmissions, a client passes 2xx retransmissions up with its key.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from typing import Final

from appliance.sip.message import Request, Response
from appliance.sip.parser import parse_message
from appliance.sip.transaction.actions import (
    Action,
    RequestReceived,
    ResponseReceived,
    Send,
    Terminated,
    TransportFailed,
)
from appliance.sip.transaction.invite_client import InviteClient, InviteClientState
from appliance.sip.transaction.invite_server import InviteServer, InviteServerState
from appliance.sip.transaction.keys import (
    MAGIC_COOKIE,
    TransactionKey,
    client_key,
    new_branch,
    server_key,
)
from appliance.sip.transaction.machine import Event, TransactionError, response_event
from appliance.sip.transaction.non_invite_client import NonInviteClient
from appliance.sip.transaction.non_invite_server import (
    NonInviteServer,
    NonInviteServerState,
)
from appliance.sip.transaction.timers import TimerConfig
from appliance.sip.transport import Peer

Transaction = InviteClient | NonInviteClient | InviteServer | NonInviteServer
_PlainKey = tuple[bool, str, str, int, str]  # a TransactionKey's values, untracked by gc
_PlainPeer = tuple[str, str, int, int]  # a Peer's values, untracked by gc

_NIS_WAITING: Final = frozenset({NonInviteServerState.TRYING, NonInviteServerState.PROCEEDING})
# Sweeps for silent TUs run at most this often, as a fraction of tu_wait.
_SWEEP_FRACTION: Final = 8


class TransactionLayer:
    """Owns all transactions; sans-IO: fed messages and ``now``, returns actions."""

    def __init__(
        self, timers: TimerConfig, rng: random.Random, max_completed: int = 50_000
    ) -> None:
        self.timers = timers
        self.rng = rng  # only for new_branch(): matching itself is deterministic
        self._live: dict[TransactionKey, Transaction] = {}
        self._heap: list[tuple[float, TransactionKey]] = []
        self._scheduled: dict[TransactionKey, float] = {}
        # Completed non-INVITE server transactions on unreliable transports.
        # Keys are stored as plain tuples: the garbage collector untracks exact tuples
        # of atomic values, never NamedTuples, and 300,000 tracked keys made every
        # collection walk them all. A NamedTuple key finds them (same hash, ==).
        self._completed: dict[_PlainKey, bytes] = {}
        self._expiry: deque[tuple[float, _PlainKey, bytes]] = deque()
        # Memory bound for the compact store (~700 B each): past it the oldest
        # completed transactions end before Timer J. A retransmission that late is
        # then handled as a new request, which is what RFC 3261 §17.2.2 guards
        # against, but a small board must not swap under a REGISTER flood.
        self._max_completed = max_completed
        self._j = timers.timer_j(False)
        # RFC 6026 Accepted INVITE transactions, compact: key -> peer; FIFO of expiry.
        self._accepted: dict[_PlainKey, _PlainPeer] = {}
        self._accepted_fifo: deque[tuple[float, _PlainKey]] = deque()
        self._sweep_at: float | None = None
        self._waiting = 0  # non-INVITE servers in _live: all Trying or Proceeding

    def new_branch(self) -> str:
        """A Via branch for a request the TU is about to send (RFC 3261 §8.1.1.7)."""
        return new_branch(self.rng)

    def __len__(self) -> int:
        """Live transactions, compact Completed and Accepted ones included."""
        return len(self._live) + len(self._completed) + len(self._accepted)

    # -- input from the wire ------------------------------------------------------

    def receive(self, message: Request | Response, peer: Peer, now: float) -> list[Action]:
        """A parsed message from the edge.

        Raises ParseError if its top Via or CSeq cannot be read (the parser only
        checks they are present): the edge treats that like a parse failure.
        """
        if isinstance(message, Response):
            return self._receive_response(message, now)
        key = server_key(message)
        if message.method == "ACK":
            return self._receive_ack(key, message, peer, now)
        tx = self._live.get(key)  # a server: client keys have server=False
        if isinstance(tx, NonInviteServer | InviteServer):
            actions = tx.receive_request(message, now)
            self._after(key, tx, now, actions)
            return actions
        data = self._completed.get(key)
        if data is not None:
            # §17.2.2: a retransmission in Completed gets the final response again.
            return [Send(parse_message(data), peer, data)]
        if message.method == "INVITE":
            if key in self._accepted:
                return []  # RFC 6026 §8.5: absorbed in Accepted
            invite, actions = InviteServer.start(key, message, peer, self.timers, now)
            self._live[key] = invite
            self._after(key, invite, now, actions)
            return actions
        server, actions = NonInviteServer.start(key, message, peer, self.timers, now)
        self._live[key] = server
        self._waiting += 1
        if self._sweep_at is None:
            self._sweep_at = now + self.timers.tu_wait()
        return actions

    def _receive_response(self, response: Response, now: float) -> list[Action]:
        key = client_key(response)
        tx = self._live.get(key)
        if not isinstance(tx, InviteClient | NonInviteClient):
            if key in self._accepted:
                # RFC 6026 §8.4: in Accepted a 2xx goes to the TU, anything else is absorbed
                ok = 200 <= response.status < 300
                return [ResponseReceived(key, response)] if ok else []
            return [ResponseReceived(None, response)]  # a 2xx retransmission, or stray
        actions = tx.receive_response(response, now)
        self._after(key, tx, now, actions)
        return actions

    def _receive_ack(
        self, key: TransactionKey, ack: Request, peer: Peer, now: float
    ) -> list[Action]:
        tx = self._live.get(key)
        if not isinstance(tx, InviteServer):
            return [RequestReceived(None, ack, peer)]  # the ACK for a 2xx: §17.1.1.3
        actions = tx.receive_ack(ack, peer, now)
        self._after(key, tx, now, actions)
        return actions

    def transport_error(self, key: TransactionKey, now: float) -> list[Action]:
        """The edge could not send a message of transaction ``key``."""
        tx = self._live.get(key)
        if tx is not None:
            actions = tx.transport_error(now)
            self._after(key, tx, now, actions)
            return actions
        if self._completed.pop(key, None) is not None:
            return [TransportFailed(key), Terminated(key)]  # its FIFO entry goes stale
        if key in self._accepted:
            return [TransportFailed(key)]  # RFC 6026: Accepted stays, absorbing
        return []

    # -- input from the TU --------------------------------------------------------

    def request(
        self, request: Request, peer: Peer, now: float
    ) -> tuple[TransactionKey, list[Action]]:
        """Open a client transaction and send ``request`` to ``peer``.

        The TU supplies the top Via with a fresh branch (``new_branch``). A CANCEL
        reuses its INVITE's branch (§9.1) and starts the INVITE's §9.1 timer.
        """
        if request.method == "ACK":
            raise TransactionError("an ACK for a 2xx is sent without a transaction")
        key = client_key(request)
        if not key.branch.startswith(MAGIC_COOKIE):
            raise TransactionError(f"branch {key.branch!r} lacks the magic cookie")
        if key in self._live:
            raise TransactionError(f"branch {key.branch} is already in use for {key.method}")
        tx: InviteClient | NonInviteClient
        if request.method == "INVITE":
            tx, actions = InviteClient.start(key, request, peer, self.timers, now)
        else:
            tx, actions = NonInviteClient.start(key, request, peer, self.timers, now)
        self._live[key] = tx
        self._after(key, tx, now, actions)
        if request.method == "CANCEL":
            invite_key = key._replace(method="INVITE")
            invite = self._live.get(invite_key)
            if isinstance(invite, InviteClient):
                actions.extend(invite.cancel_sent(now))
                self._after(invite_key, invite, now, actions)
        return key, actions

    def respond(self, key: TransactionKey, response: Response, now: float) -> list[Action]:
        """Send the TU's response in server transaction ``key``.

        A response for a transaction that has ended is dropped, as §17.2.2 drops a
        second final; a response out of turn raises TransactionError.
        """
        tx = self._live.get(key)
        if type(tx) is NonInviteServer:  # the hot path: keep it short
            actions = tx.send_response(response, now)
            if tx.state is NonInviteServerState.COMPLETED:
                del self._live[key]
                self._left_waiting()
                if tx.peer.reliable:  # Timer J is 0
                    actions.append(Terminated(key))
                else:
                    sent = tx.last_sent
                    data = sent.data if sent is not None else None
                    if data is not None:
                        plain: _PlainKey = tuple.__new__(tuple, key)
                        self._completed[plain] = data
                        self._expiry.append((now + self._j, plain, data))
                        if len(self._completed) > self._max_completed:
                            self._evict_oldest(actions)
            return actions
        if isinstance(tx, InviteServer):
            actions = tx.send_response(response, now)
            self._after(key, tx, now, actions)
            return actions
        if not key.server or tx is not None:
            raise TransactionError(f"{key} is not a server transaction")
        accepted = self._accepted.get(key)
        if accepted is not None:
            if response_event(response.status) is not Event.SUCCESS:
                raise TransactionError(f"only a 2xx may follow the 2xx in {key}")
            return [Send(response, Peer(*accepted), bytes(response))]  # the TU's retransmission
        if key in self._completed and response_event(response.status) is Event.PROVISIONAL:
            raise TransactionError(f"provisional response after the final in {key}")
        return []

    def cancel_matching(self, cancel: Request) -> TransactionKey | None:
        """The live INVITE server transaction ``cancel`` targets, if any (§9.2).

        Matching follows §17.2.3 with the method taken as INVITE; the TU answers
        481 when this is None.
        """
        key = server_key(cancel, "INVITE")
        return key if isinstance(self._live.get(key), InviteServer) else None

    # -- timers -------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next run, or None while nothing is pending."""
        best = self._heap_top()
        fifo = self._fifo_top()
        if fifo is not None and (best is None or fifo < best):
            best = fifo
        accepted = self._accepted_top()
        if accepted is not None and (best is None or accepted < best):
            best = accepted
        if self._sweep_at is not None and (best is None or self._sweep_at < best):
            best = self._sweep_at
        return best

    def handle_timer(self, now: float) -> list[Action]:
        """Fire everything due at ``now``, earliest first."""
        actions: list[Action] = []
        while True:
            heap = self._heap_top()
            fifo = self._fifo_top()
            sweep = self._sweep_at
            accepted = self._accepted_top()
            candidates = (heap, fifo, sweep, accepted)
            first = min((d for d in candidates if d is not None), default=None)
            if first is None or first > now:
                return actions
            if first == accepted:
                _, plain = self._accepted_fifo.popleft()
                del self._accepted[plain]  # Timer L or M
                actions.append(Terminated(TransactionKey._make(plain)))
            elif first == heap:
                _, key = heapq.heappop(self._heap)
                del self._scheduled[key]
                tx = self._live[key]
                actions.extend(tx.handle_timer(now))
                self._after(key, tx, now, actions)
            elif first == fifo:
                _, plain, _ = self._expiry.popleft()
                del self._completed[plain]  # Timer J
                actions.append(Terminated(TransactionKey._make(plain)))
            else:
                self._sweep(now, actions)

    # -- internals ----------------------------------------------------------------

    def _after(
        self, key: TransactionKey, tx: Transaction, now: float, actions: list[Action]
    ) -> None:
        """Fire timers already due (D, I, K are 0 on reliable transports) into
        ``actions``, then forget ``tx`` if it ended or reschedule it."""
        deadline = tx.next_deadline()
        while deadline is not None and deadline <= now:
            actions.extend(tx.handle_timer(now))
            deadline = tx.next_deadline()
        if deadline is not None and _accepted(tx):
            self._make_compact(key, tx, deadline)
            return
        if tx.terminated:
            if self._live.get(key) is tx:
                del self._live[key]
                if type(tx) is NonInviteServer:
                    self._left_waiting()
            self._scheduled.pop(key, None)
            return
        if deadline is None:
            self._scheduled.pop(key, None)
        elif self._scheduled.get(key) != deadline:
            self._scheduled[key] = deadline
            heapq.heappush(self._heap, (deadline, key))
            if len(self._heap) > 64 and len(self._heap) > 4 * len(self._scheduled):
                self._heap = [(d, k) for k, d in self._scheduled.items()]
                heapq.heapify(self._heap)

    def _make_compact(self, key: TransactionKey, tx: Transaction, expiry: float) -> None:
        """Replace an Accepted INVITE machine by a compact entry until Timer L/M."""
        if self._live.get(key) is tx:
            del self._live[key]
        self._scheduled.pop(key, None)
        plain: _PlainKey = tuple.__new__(tuple, key)
        peer = tx.peer
        self._accepted[plain] = (peer.transport, peer.host, peer.port, peer.connection)
        self._accepted_fifo.append((expiry, plain))

    def _accepted_top(self) -> float | None:
        fifo = self._accepted_fifo
        while fifo:
            expires, key = fifo[0]
            if key in self._accepted:
                return expires
            fifo.popleft()  # stale: cannot happen today, kept for symmetry with _completed
        return None

    def _left_waiting(self) -> None:
        self._waiting -= 1
        if not self._waiting:
            self._sweep_at = None  # nothing left for a sweep to find

    def _heap_top(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, key = heap[0]
            if self._scheduled.get(key) == deadline:
                return deadline
            heapq.heappop(heap)  # stale: rescheduled or ended since
        return None

    def _evict_oldest(self, actions: list[Action]) -> None:
        while self._expiry and len(self._completed) > self._max_completed:
            _, plain, data = self._expiry.popleft()
            if self._completed.get(plain) is data:
                del self._completed[plain]
                actions.append(Terminated(TransactionKey._make(plain)))

    def _fifo_top(self) -> float | None:
        fifo = self._expiry
        while fifo:
            expires, key, data = fifo[0]
            if self._completed.get(key) is data:
                return expires
            fifo.popleft()  # stale: ended early by a transport error
        return None

    def _sweep(self, now: float, actions: list[Action]) -> None:
        """Abandon non-INVITE server transactions their TU left unanswered."""
        wait = self.timers.tu_wait()
        oldest: float | None = None
        for key, tx in list(self._live.items()):
            if type(tx) is not NonInviteServer or tx.state not in _NIS_WAITING:
                continue
            if tx.created + wait <= now:
                actions.extend(tx.abandon(now))
                del self._live[key]
                self._waiting -= 1
            elif oldest is None or tx.created < oldest:
                oldest = tx.created
        if oldest is None:
            self._sweep_at = None
        else:
            self._sweep_at = max(oldest + wait, now + wait / _SWEEP_FRACTION)


def _accepted(tx: Transaction) -> bool:
    """An INVITE transaction in RFC 6026 Accepted (only Timer L or M is armed)."""
    if type(tx) is InviteServer:
        return tx.state is InviteServerState.ACCEPTED
    if type(tx) is InviteClient:
        return tx.state is InviteClientState.ACCEPTED
    return False
