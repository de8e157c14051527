"""Two transaction layers back to back over a scripted lossy UDP link.

Every datagram crosses as bytes and is parsed again on the far side; the link
drops the packets it is told to by number. A phone (client) and the PBX (server)
complete OPTIONS and INVITE transactions through any single loss, and both
layers end empty: retransmission (Timers A, E, G), answers from Completed and
the TU's own 2xx retransmission (RFC 3261 §13.3.1.4) make up for it.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import pytest

from appliance.sip.message import Request, Response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import (
    Action,
    RequestReceived,
    ResponseReceived,
    Send,
    TransactionKey,
    TransactionLayer,
    make_ack,
)
from appliance.sip.transport import Peer

from .test_transaction_support import CONFIG, make_request, reply

PHONE = Peer("udp", "192.0.2.7", 5060)
PBX = Peer("udp", "192.0.2.1", 5060)
ONE_WAY = 0.01  # seconds on the wire


@dataclass
class Node:
    name: str
    address: Peer  # how the other side sees us
    layer: TransactionLayer
    got: list[Request | Response] = field(default_factory=list)  # what reached the TU


@dataclass
class Net:
    """The clock, the two nodes and the wire, with the packets to drop by number."""

    drop: set[int]
    now: float = 0.0
    sent: int = 0
    log: list[str] = field(default_factory=list)
    wire: list[tuple[float, int, str, bytes]] = field(default_factory=list)
    resend_at: list[tuple[float, str, float]] = field(default_factory=list)  # the PBX TU
    nodes: dict[str, Node] = field(default_factory=dict)
    ok_for_ack: dict[str, tuple[TransactionKey, Response]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, address in (("phone", PHONE), ("pbx", PBX)):
            self.nodes[name] = Node(name, address, TransactionLayer(CONFIG, random.Random(1)))

    def other(self, name: str) -> str:
        return "pbx" if name == "phone" else "phone"

    def transmit(self, source: str, data: bytes) -> None:
        self.sent += 1
        first = data.split(b"\r\n", 1)[0].decode()
        lost = self.sent in self.drop
        self.log.append(f"{self.now:.2f} #{self.sent} {source}: {first}{' LOST' if lost else ''}")
        if not lost:
            heapq.heappush(self.wire, (self.now + ONE_WAY, self.sent, self.other(source), data))

    def apply(self, node: Node, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                assert action.data is not None
                self.transmit(node.name, action.data)
            elif isinstance(action, RequestReceived):
                node.got.append(action.request)
                if node.name == "pbx" and action.key is not None:
                    self.pbx_answers(action.key, action.request)
                elif action.request.method == "ACK":
                    self.ok_for_ack.pop(action.request.call_id, None)  # stop resending 2xx
            elif isinstance(action, ResponseReceived):
                node.got.append(action.response)
                if node.name == "phone":
                    self.phone_acks(action.response)

    def pbx_answers(self, key: TransactionKey, request: Request) -> None:
        pbx = self.nodes["pbx"].layer
        if request.method != "INVITE":
            self.apply(self.nodes["pbx"], pbx.respond(key, reply(request, 200), self.now))
            return
        self.apply(self.nodes["pbx"], pbx.respond(key, reply(request, 180), self.now))
        status = 486 if "busy" in str(request.uri) else 200
        final = reply(request, status)
        self.apply(self.nodes["pbx"], pbx.respond(key, final, self.now))
        if status == 200:  # the UAS core retransmits its 2xx until the ACK (§13.3.1.4)
            self.ok_for_ack[request.call_id] = (key, final)
            heapq.heappush(self.resend_at, (self.now + CONFIG.t1, request.call_id, CONFIG.t1))

    def phone_acks(self, response: Response) -> None:
        if 200 <= response.status < 300 and response.cseq().method == "INVITE":
            # The dialog layer's ACK for a 2xx: a new branch, sent without a transaction.
            ack = make_ack(INVITE_OK, response)
            via = ack.headers[0][1].replace("z9hG4bKinv", "z9hG4bKack")
            ack = Request("ACK", ack.uri, (("Via", via), *ack.headers[1:]))
            self.transmit("phone", bytes(ack))

    def resend_2xx(self, call_id: str, interval: float) -> None:
        if call_id not in self.ok_for_ack:
            return  # the ACK came
        key, final = self.ok_for_ack[call_id]
        self.apply(self.nodes["pbx"], self.nodes["pbx"].layer.respond(key, final, self.now))
        step = min(2 * interval, CONFIG.t2)
        heapq.heappush(self.resend_at, (self.now + step, call_id, step))

    def run(self, until: float) -> None:
        while True:
            candidates = []
            if self.wire:
                candidates.append(self.wire[0][0])
            if self.resend_at:
                candidates.append(self.resend_at[0][0])
            for node in self.nodes.values():
                deadline = node.layer.next_deadline()
                if deadline is not None:
                    candidates.append(deadline)
            if not candidates or min(candidates) > until:
                self.now = until
                return
            self.now = max(self.now, min(candidates))
            while self.wire and self.wire[0][0] <= self.now:
                _, _, dest, data = heapq.heappop(self.wire)
                node = self.nodes[dest]
                source = self.nodes[self.other(dest)].address
                self.apply(node, node.layer.receive(parse_message(data), source, self.now))
            while self.resend_at and self.resend_at[0][0] <= self.now:
                _, call_id, interval = heapq.heappop(self.resend_at)
                self.resend_2xx(call_id, interval)
            for node in self.nodes.values():
                self.apply(node, node.layer.handle_timer(self.now))

    def start(self, request: Request) -> None:
        phone = self.nodes["phone"]
        _, actions = phone.layer.request(request, PBX, self.now)
        self.apply(phone, actions)


OPTIONS = make_request("OPTIONS", "z9hG4bKopt", sent_by="192.0.2.7:5060")
INVITE_OK = make_request("INVITE", "z9hG4bKinv", sent_by="192.0.2.7:5060")
INVITE_BUSY = make_request("INVITE", "z9hG4bKinv", uri="sip:busy@yakyak.local")


def statuses(got: list[Request | Response]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m in got]


@pytest.mark.parametrize("lost", [set(), {1}, {2}, {1, 2}, {1, 3}, {2, 3}])
def test_options_completes_through_loss(lost: set[int]) -> None:
    net = Net(lost)
    net.start(OPTIONS)
    net.run(100.0)
    assert statuses(net.nodes["phone"].got) == [200], net.log
    assert statuses(net.nodes["pbx"].got) == ["OPTIONS"], net.log  # once, however resent
    assert all(len(n.layer) == 0 for n in net.nodes.values())


def test_lost_options_response_is_answered_from_completed() -> None:
    net = Net({2})
    net.start(OPTIONS)
    net.run(100.0)
    assert net.log == [
        "0.00 #1 phone: OPTIONS sip:201@yakyak.local SIP/2.0",
        "0.01 #2 pbx: SIP/2.0 200 OK LOST",
        "0.50 #3 phone: OPTIONS sip:201@yakyak.local SIP/2.0",  # Timer E
        "0.51 #4 pbx: SIP/2.0 200 OK",  # the Completed server answers without its TU
    ]


@pytest.mark.parametrize("lost", [set(), {1}, {2}, {3}, {4}, {3, 5}, {4, 6}])
def test_rejected_invite_completes_through_loss(lost: set[int]) -> None:
    net = Net(lost)
    net.start(INVITE_BUSY)
    net.run(200.0)
    phone_saw = [s for s in statuses(net.nodes["phone"].got) if s != 180]
    assert phone_saw == [486], net.log  # passed up once, however often it came
    assert statuses(net.nodes["pbx"].got) == ["INVITE"], net.log  # ACK never passed up
    assert sum("phone: ACK" in line and "LOST" not in line for line in net.log) >= 1
    assert all(len(n.layer) == 0 for n in net.nodes.values())


@pytest.mark.parametrize("lost", [set(), {1}, {2}, {3}, {4}, {3, 4}, {3, 5}])
def test_accepted_invite_completes_through_loss(lost: set[int]) -> None:
    net = Net(lost)
    net.start(INVITE_OK)
    net.run(200.0)
    phone_saw = [s for s in statuses(net.nodes["phone"].got) if s != 180]
    assert phone_saw and set(phone_saw) == {200}, net.log  # 2xx retransmissions pass up
    assert statuses(net.nodes["pbx"].got)[0] == "INVITE"
    assert "ACK" in statuses(net.nodes["pbx"].got), net.log  # the ACK reached the PBX TU
    assert not net.ok_for_ack  # so it stopped resending the 200
    assert all(len(n.layer) == 0 for n in net.nodes.values())
