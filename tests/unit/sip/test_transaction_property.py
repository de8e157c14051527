"""Hypothesis: any interleaving of wire input, TU answers, transport errors and timer
firings never raises, never passes a retransmission up, and leaves no transaction
alive 70 s after the traffic stops (RFC 3261 §17: every machine ends)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from appliance.sip.message import Request
from appliance.sip.transaction import (
    Action,
    RequestReceived,
    ResponseReceived,
    Terminated,
    TransactionKey,
    TransactionLayer,
    client_key,
    make_cancel,
    server_key,
)
from appliance.sip.transport import Peer

from .test_transaction_support import CONFIG, TCP, UDP, make_request, reply, sends

# Requests a peer sends us: cookie and RFC 2543 INVITEs, non-INVITEs on UDP and TCP.
INBOUND: list[tuple[Request, Peer]] = [
    (make_request("INVITE", "z9hG4bKs0"), UDP),
    (make_request("INVITE", None, sent_by="198.51.100.9", call_id="old@2543"), UDP),
    (make_request("REGISTER", "z9hG4bKs1", cseq=5), UDP),
    (make_request("BYE", "z9hG4bKs2", transport="TCP", cseq=6), TCP),
    (make_request("OPTIONS", "z9hG4bKs3", cseq=7), UDP),
    (make_cancel(make_request("INVITE", "z9hG4bKs0")), UDP),
    (make_request("INVITE", "z9hG4bKs4", transport="TCP", cseq=9), TCP),
]
ACKS: list[tuple[Request, Peer]] = [
    (make_request("ACK", "z9hG4bKs0", to_tag="as83kd9bs"), UDP),  # for a non-2xx
    (make_request("ACK", "z9hG4bKfresh", to_tag="as83kd9bs"), UDP),  # for a 2xx
    (make_request("ACK", None, sent_by="198.51.100.9", call_id="old@2543", to_tag="t"), UDP),
    (make_request("ACK", "z9hG4bKs4", transport="TCP", cseq=9, to_tag="t"), TCP),
]
# Requests we send.
OUTBOUND: list[tuple[Request, Peer]] = [
    (make_request("INVITE", "z9hG4bKc0", sent_by="192.0.2.1"), UDP),
    (make_request("INVITE", "z9hG4bKc1", transport="TCP", sent_by="192.0.2.1"), TCP),
    (make_request("OPTIONS", "z9hG4bKc2", sent_by="192.0.2.1"), UDP),
    (make_request("REGISTER", "z9hG4bKc3", transport="TCP", sent_by="192.0.2.1"), TCP),
]
STATUSES = [100, 180, 200, 200, 202, 302, 404, 486, 487, 603]
BY_KEY = {server_key(request): request for request, _ in INBOUND}

ops = st.one_of(
    st.tuples(st.just("advance"), st.floats(0.0, 40.0)),
    st.tuples(st.just("inbound"), st.integers(0, len(INBOUND) - 1)),
    st.tuples(st.just("again"), st.integers(0, 7)),  # retransmit a request already sent
    st.tuples(st.just("ack"), st.integers(0, len(ACKS) - 1)),
    st.tuples(st.just("respond"), st.integers(0, 7), st.sampled_from(STATUSES)),
    st.tuples(st.just("respond"), st.integers(0, 7), st.sampled_from(STATUSES)),
    st.tuples(st.just("start"), st.integers(0, len(OUTBOUND) - 1)),
    st.tuples(st.just("cancel"), st.integers(0, 1)),
    st.tuples(st.just("response"), st.integers(0, 7), st.sampled_from(STATUSES)),
    st.tuples(st.just("response"), st.integers(0, 7), st.sampled_from(STATUSES)),
    st.tuples(st.just("error"), st.integers(0, len(INBOUND) + len(OUTBOUND) - 1)),
)


@dataclass
class Tu:
    """What a well-behaved TU remembers, so it only makes legal calls."""

    layer: TransactionLayer
    now: float = 0.0
    servers: dict[TransactionKey, int | None] = field(default_factory=dict)  # key -> final
    clients: dict[int, TransactionKey] = field(default_factory=dict)
    seen: list[int] = field(default_factory=list)  # INBOUND indices the peer has sent
    finals: dict[TransactionKey, int] = field(default_factory=dict)  # passed up, per client

    def take(self, actions: list[Action]) -> None:
        sends(actions)  # Send.data is bytes(message)
        for action in actions:
            if isinstance(action, RequestReceived) and action.key is not None:
                assert action.key not in self.servers, "a retransmission was passed up"
                self.servers[action.key] = None
            elif isinstance(action, ResponseReceived) and action.key is not None:
                status = action.response.status
                first = self.finals.get(action.key)
                if status >= 200:
                    # One final per transaction, except 2xx to INVITE (RFC 6026 Accepted).
                    repeat_ok = action.key.method == "INVITE" and status < 300
                    assert first is None or (repeat_ok and first < 300), "final passed up twice"
                    self.finals.setdefault(action.key, status)
                else:
                    assert first is None, "provisional passed up after a final"
            elif isinstance(action, Terminated):
                self.servers.pop(action.key, None)
                self.finals.pop(action.key, None)
                for i, key in list(self.clients.items()):
                    if key == action.key:
                        del self.clients[i]

    def respond(self, key: TransactionKey, status: int) -> None:
        request = BY_KEY[key]
        final = self.servers[key]
        if final is not None:
            if status < 200:
                return  # 1xx after a final: a TU bug, tested elsewhere
            if request.method == "INVITE" and not (final < 300 and status < 300):
                return  # only 2xx retransmissions follow a 2xx; nothing follows a 3xx-6xx
        actions = self.layer.respond(key, reply(request, status), self.now)
        if status >= 200 and final is None:
            self.servers[key] = status
        self.take(actions)

    def advance(self, until: float) -> None:
        while (deadline := self.layer.next_deadline()) is not None and deadline <= until:
            assert deadline >= self.now - 1e-9
            self.now = max(self.now, deadline)
            self.take(self.layer.handle_timer(self.now))
        self.now = until

    def step(self, op: tuple[object, ...]) -> None:
        layer = self.layer
        match op:
            case ("advance", float(dt)):
                self.advance(self.now + dt)
            case ("inbound", int(i)):
                self.seen.append(i)
                self.take(layer.receive(INBOUND[i][0], INBOUND[i][1], self.now))
            case ("again", int(n)) if self.seen:
                i = self.seen[n % len(self.seen)]
                self.take(layer.receive(INBOUND[i][0], INBOUND[i][1], self.now))
            case ("ack", int(i)):
                self.take(layer.receive(ACKS[i][0], ACKS[i][1], self.now))
            case ("respond", int(n), int(status)) if self.servers:
                self.respond(sorted(self.servers)[n % len(self.servers)], status)
            case ("start", int(i)) if i not in self.clients:
                key, actions = layer.request(OUTBOUND[i][0], OUTBOUND[i][1], self.now)
                self.clients[i] = key
                self.take(actions)
            case ("cancel", int(i)) if i in self.clients and 10 + i not in self.clients:
                cancel = make_cancel(OUTBOUND[i][0])
                key, actions = layer.request(cancel, OUTBOUND[i][1], self.now)
                self.clients[10 + i] = key
                self.take(actions)
            case ("response", int(n), int(status)):
                live = sorted(i for i in self.clients if i < 10)  # responses to a CANCEL
                i = live[n % len(live)] if live and n < 6 else n % len(OUTBOUND)  # are strays
                self.take(layer.receive(reply(OUTBOUND[i][0], status), UDP, self.now))
            case ("error", int(i)):
                if i < len(INBOUND):
                    key = server_key(INBOUND[i][0])
                else:
                    key = client_key(OUTBOUND[i - len(INBOUND)][0])
                self.take(layer.transport_error(key, self.now))


@given(st.lists(ops, max_size=60))
def test_any_interleaving_ends_with_every_transaction_terminated(
    script: list[tuple[object, ...]],
) -> None:
    tu = Tu(TransactionLayer(CONFIG, random.Random(0)))
    for op in script:
        tu.step(op)
    # The traffic stops: the TU answers what it still holds, the far ends send finals.
    for key in list(tu.servers):
        tu.respond(key, 487)
    for request, peer in OUTBOUND:
        tu.take(tu.layer.receive(reply(request, 487), peer, tu.now))
    tu.advance(tu.now + 70.0)
    assert len(tu.layer) == 0
    assert tu.layer.next_deadline() is None
    assert not tu.servers and not tu.clients
