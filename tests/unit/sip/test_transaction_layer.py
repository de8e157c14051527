"""TransactionLayer: matching (RFC 3261 §17.1.3, §17.2.3), retransmissions, ACK and
CANCEL handling, stray messages, transport errors and the compact Completed store."""

from __future__ import annotations

import random
from typing import Any

import pytest

from appliance.sip.errors import ParseError
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import (
    RequestReceived,
    ResponseReceived,
    Send,
    Terminated,
    TimedOut,
    TimerConfig,
    TransactionError,
    TransactionKey,
    TransactionLayer,
    TransportFailed,
    make_cancel,
    new_branch,
    server_key,
)
from appliance.sip.transport import Peer

from .test_transaction_support import (
    CONFIG,
    PBX_UDP,
    TCP,
    UDP,
    ManualClock,
    kinds,
    make_request,
    reply,
    sends,
)

INVITE = make_request("INVITE")
REGISTER = make_request("REGISTER", "z9hG4bKreg1", cseq=7)


def new_layer() -> TransactionLayer:
    return TransactionLayer(CONFIG, random.Random(7))


def opened(layer: TransactionLayer, request: Request, now: float = 0.0) -> TransactionKey:
    actions = layer.receive(request, UDP, now)
    assert kinds(actions) == ["RequestReceived"]
    first = actions[0]
    assert isinstance(first, RequestReceived) and first.key is not None
    return first.key


def run_until(layer: TransactionLayer, clock: ManualClock, until: float) -> list[str]:
    out: list[str] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        clock.now = deadline
        out += [f"{clock.now:g} {k}" for k in kinds(layer.handle_timer(clock.now))]
    clock.now = until
    return out


def test_new_branch_is_the_cookie_and_64_random_bits() -> None:
    rng = random.Random(1)
    branch = new_branch(rng)
    assert branch.startswith("z9hG4bK") and len(branch) == 7 + 16
    assert branch != new_branch(rng)
    assert new_branch(random.Random(1)) == branch  # injected randomness only
    layer = TransactionLayer(CONFIG, random.Random(1))
    assert layer.new_branch() == branch


# -- non-INVITE server ------------------------------------------------------------


def test_request_opens_a_server_transaction_and_retransmissions_are_absorbed() -> None:
    layer = new_layer()
    key = opened(layer, REGISTER)
    assert key == TransactionKey(True, "z9hG4bKreg1", "192.0.2.7", 5060, "REGISTER")
    assert len(layer) == 1
    assert layer.receive(REGISTER, UDP, 0.5) == []  # Trying: the TU has not answered


def test_retransmission_gets_the_last_provisional_then_the_final() -> None:
    layer = new_layer()
    key = opened(layer, REGISTER)
    assert kinds(layer.respond(key, reply(REGISTER, 100), 0.1)) == ["Send 100"]
    assert kinds(layer.receive(REGISTER, UDP, 0.5)) == ["Send 100"]
    final = layer.respond(key, reply(REGISTER, 200), 0.6)
    again = layer.receive(REGISTER, UDP, 1.5)
    assert kinds(final) == kinds(again) == ["Send 200"]
    assert sends(again)[0].data == sends(final)[0].data  # the same bytes, encoded once
    assert sends(again)[0].message == sends(final)[0].message


def test_completed_non_invite_server_is_compact_and_expires_on_timer_j() -> None:
    clock = ManualClock()
    layer = new_layer()
    key = opened(layer, REGISTER)
    clock.now = 0.25
    layer.respond(key, reply(REGISTER, 200), clock.now)
    assert len(layer) == 1 and key not in layer._live and key in layer._completed
    assert layer.respond(key, reply(REGISTER, 500), 1.0) == []  # §17.2.2: discarded
    with pytest.raises(TransactionError, match="provisional"):
        layer.respond(key, reply(REGISTER, 180), 1.0)
    assert run_until(layer, clock, 100.0) == ["32.25 Terminated"]
    assert len(layer) == 0
    assert kinds(layer.receive(REGISTER, UDP, 100.0)) == ["RequestReceived"]  # a new one


def test_reliable_non_invite_server_ends_with_its_final_response() -> None:
    layer = new_layer()
    register = make_request("REGISTER", "z9hG4bKtcp", transport="TCP")
    (received,) = layer.receive(register, TCP, 0.0)
    assert isinstance(received, RequestReceived) and received.key is not None
    assert kinds(layer.respond(received.key, reply(register, 200), 0.1)) == [
        "Send 200",
        "Terminated",
    ]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_silent_tu_is_abandoned_without_a_408() -> None:
    clock = ManualClock()
    layer = new_layer()
    key = opened(layer, REGISTER)
    clock.now = 10.0
    answered = opened(layer, make_request("OPTIONS", "z9hG4bKopt", cseq=8), clock.now)
    layer.respond(answered, reply(REGISTER, 200), 10.0)
    fired = run_until(layer, clock, 50.0)
    assert fired == ["32 TimedOut", "32 Terminated", "42 Terminated"]  # RFC 4320 §4.1
    assert layer.respond(key, reply(REGISTER, 200), 50.0) == []  # too late: dropped
    assert len(layer) == 0 and layer.next_deadline() is None


def test_sweeps_for_silent_tus_are_rate_limited() -> None:
    clock = ManualClock()
    layer = new_layer()
    for i in range(100):
        opened(layer, make_request("OPTIONS", f"z9hG4bKs{i}"), i * 0.1)
    sweeps = 0
    while (deadline := layer.next_deadline()) is not None:
        clock.now = deadline
        layer.handle_timer(clock.now)
        sweeps += 1
    assert len(layer) == 0
    assert clock.now <= 9.9 + 32 + 32 / 8  # each abandoned within tu_wait + 1/8
    assert sweeps == 4  # at 32, 36, 40 and 44: not one per transaction


# -- INVITE server ------------------------------------------------------------------


def test_invite_server_retransmission_is_absorbed_until_a_provisional_exists() -> None:
    clock = ManualClock()
    layer = new_layer()
    opened(layer, INVITE)
    assert layer.receive(INVITE, UDP, 0.1) == []
    assert run_until(layer, clock, 0.3) == ["0.2 Send 100"]  # §17.2.1
    assert kinds(layer.receive(INVITE, UDP, 0.5)) == ["Send 100"]


def test_ack_for_a_non_2xx_stops_retransmissions_and_is_never_passed_up() -> None:
    clock = ManualClock()
    layer = new_layer()
    key = opened(layer, INVITE)
    layer.respond(key, reply(INVITE, 180), 0.05)
    layer.respond(key, reply(INVITE, 486), 0.1)
    assert run_until(layer, clock, 1.0) == ["0.6 Send 486"]  # Timer G
    assert kinds(layer.receive(INVITE, UDP, 1.0)) == ["Send 486"]  # retransmitted INVITE
    ack = make_request("ACK", to_tag="as83kd9bs")
    assert layer.receive(ack, UDP, 1.2) == []
    assert layer.receive(ack, UDP, 1.3) == []  # Confirmed absorbs ACK retransmissions
    assert layer.receive(INVITE, UDP, 1.4) == []
    assert run_until(layer, clock, 100.0) == ["6.2 Terminated"]  # Timer I
    assert len(layer) == 0


def test_ack_for_a_2xx_is_passed_up_with_no_key() -> None:
    layer = new_layer()
    key = opened(layer, INVITE)
    layer.respond(key, reply(INVITE, 200), 0.1)
    assert layer.receive(INVITE, UDP, 0.5) == []  # Accepted absorbs (RFC 6026)
    ack = make_request("ACK", "z9hG4bKnewbranch", to_tag="as83kd9bs")
    actions = layer.receive(ack, UDP, 0.6)
    assert actions == [RequestReceived(None, ack, UDP)]
    same_branch = make_request("ACK", to_tag="as83kd9bs")  # some UAs reuse the branch
    assert layer.receive(same_branch, UDP, 0.7) == [RequestReceived(None, same_branch, UDP)]
    assert kinds(layer.respond(key, reply(INVITE, 200), 1.0)) == ["Send 200"]  # TU resends


def test_invite_server_out_of_turn_response_raises() -> None:
    layer = new_layer()
    key = opened(layer, INVITE)
    layer.respond(key, reply(INVITE, 486), 0.1)
    with pytest.raises(TransactionError, match="in COMPLETED"):
        layer.respond(key, reply(INVITE, 200), 0.2)


def test_timer_h_reports_the_missing_ack() -> None:
    clock = ManualClock()
    layer = new_layer()
    key = opened(layer, INVITE)
    layer.respond(key, reply(INVITE, 603), 0.0)
    fired = run_until(layer, clock, 100.0)
    assert fired[-2:] == ["32 TimedOut", "32 Terminated"]
    assert fired.count("32 Send 603") == 0


# -- CANCEL ------------------------------------------------------------------------------


def test_cancel_has_its_own_transaction_and_finds_its_invite() -> None:
    layer = new_layer()
    invite_key = opened(layer, INVITE)
    cancel = make_cancel(INVITE)
    cancel_key = opened(layer, cancel)
    assert cancel_key == invite_key._replace(method="CANCEL")
    assert layer.cancel_matching(cancel) == invite_key  # §9.2
    other = make_cancel(make_request("INVITE", "z9hG4bKother"))
    assert layer.cancel_matching(other) is None  # the TU answers 481
    layer.respond(cancel_key, reply(cancel, 200), 0.1)
    layer.respond(invite_key, reply(INVITE, 487), 0.1)
    layer.receive(make_request("ACK", to_tag="as83kd9bs"), UDP, 0.2)
    layer.handle_timer(100.0)
    assert layer.cancel_matching(cancel) is None


def test_make_cancel_copies_what_section_9_1_requires() -> None:
    invite = make_request(
        "INVITE", routes=["<sip:proxy.example;lr>"], extra_vias=["SIP/2.0/UDP p;branch=z9hG4bKp"]
    )
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.get_all("Via") == [invite.get_all("Via")[0]]
    assert cancel.get_all("Route") == ["<sip:proxy.example;lr>"]
    for name in ("From", "To", "Call-ID"):
        assert cancel.get(name) == invite.get(name)
    assert cancel.get("CSeq") == "1 CANCEL"


# -- RFC 2543 peers ---------------------------------------------------------------------


def test_rfc2543_requests_match_without_the_magic_cookie() -> None:
    clock = ManualClock()
    layer = new_layer()
    old = make_request("INVITE", None, sent_by="198.51.100.9")
    key = opened(layer, old)
    assert key.branch.startswith("2543 ")
    layer.respond(key, reply(old, 404), 0.1)
    assert kinds(layer.receive(old, UDP, 0.3)) == ["Send 404"]
    ack = make_request("ACK", None, sent_by="198.51.100.9", to_tag="as83kd9bs")
    assert layer.receive(ack, UDP, 0.4) == []  # matched the INVITE: absorbed
    assert run_until(layer, clock, 100.0) == ["5.4 Terminated"]
    next_one = make_request("INVITE", None, sent_by="198.51.100.9", cseq=2)
    assert kinds(layer.receive(next_one, UDP, 100.0)) == ["RequestReceived"]


def test_rfc2543_cancel_finds_its_invite() -> None:
    layer = new_layer()
    old = make_request("INVITE", "1234-no-cookie")
    key = opened(layer, old)
    assert layer.cancel_matching(make_cancel(old)) == key
    other_call = make_cancel(make_request("INVITE", "1234-no-cookie", call_id="x@y"))
    assert layer.cancel_matching(other_call) is None


def test_branch_is_case_sensitive_and_sent_by_host_is_not() -> None:
    layer = new_layer()
    key = opened(layer, make_request("OPTIONS", "z9hG4bKAbC", sent_by="Phone.Example:5070"))
    assert key.host == "phone.example" and key.port == 5070
    same = make_request("OPTIONS", "z9hG4bKAbC", sent_by="phone.example:5070")
    assert layer.receive(same, UDP, 0.1) == []  # a retransmission
    other = make_request("OPTIONS", "z9hG4bKabc", sent_by="phone.example:5070")
    assert kinds(layer.receive(other, UDP, 0.1)) == ["RequestReceived"]
    elsewhere = make_request("OPTIONS", "z9hG4bKAbC", sent_by="phone.example:5071")
    assert kinds(layer.receive(elsewhere, UDP, 0.1)) == ["RequestReceived"]


def test_unusual_via_spellings_are_matched() -> None:
    raw = (
        b"OPTIONS sip:yakyak.local SIP/2.0\r\n"
        b"v: SIP / 2.0 / UDP [2001:db8::7] : 5062 ; Branch = z9hG4bKv6 ;rport\r\n"
        b"f: <sip:101@yakyak.local>;tag=1\r\nt: <sip:yakyak.local>\r\n"
        b"i: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"
    )
    message = parse_message(raw)
    assert isinstance(message, Request)
    assert server_key(message) == TransactionKey(
        True, "z9hG4bKv6", "[2001:db8::7]", 5062, "OPTIONS"
    )


def test_a_garbled_top_via_raises_parse_error() -> None:
    bad = Request("OPTIONS", INVITE.uri, (("Via", "garbage"), *INVITE.headers[1:]))
    with pytest.raises(ParseError):
        new_layer().receive(bad, UDP, 0.0)


# -- clients -----------------------------------------------------------------------------


def outgoing(method: str, branch: str = "z9hG4bKout1", **kw: Any) -> Request:
    return make_request(method, branch, sent_by="192.0.2.1:5060", **kw)


def test_client_transaction_routes_responses_by_branch_and_cseq_method() -> None:
    layer = new_layer()
    invite = outgoing("INVITE")
    key, actions = layer.request(invite, UDP, 0.0)
    assert key == TransactionKey(False, "z9hG4bKout1", "", 0, "INVITE")
    assert kinds(actions) == ["Send INVITE"]
    ringing = reply(invite, 180)
    assert layer.receive(ringing, UDP, 0.1) == [ResponseReceived(key, ringing)]
    cancel = make_cancel(invite)
    cancel_key, _ = layer.request(cancel, UDP, 1.0)
    ok_cancel = reply(cancel, 200)
    assert layer.receive(ok_cancel, UDP, 1.1) == [ResponseReceived(cancel_key, ok_cancel)]
    terminated = reply(invite, 487)
    actions = layer.receive(terminated, UDP, 1.2)
    assert kinds(actions) == ["ResponseReceived", "Send ACK"]


def test_client_acks_a_non_2xx_itself_as_section_17_1_1_3_says() -> None:
    layer = new_layer()
    invite = outgoing(
        "INVITE",
        routes=["<sip:p1.example;lr>", "<sip:p2.example;lr>"],
        extra_vias=["SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlower"],
    )
    layer.request(invite, UDP, 0.0)
    busy = reply(invite, 486, to_tag="callee-tag")
    (_, send) = layer.receive(busy, UDP, 0.5)
    assert isinstance(send, Send) and isinstance(send.message, Request)
    ack = send.message
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.get_all("Via") == ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKout1"]
    assert ack.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert ack.get("To") == busy.get("To") and ack.to_addr().tag == "callee-tag"
    assert ack.get("From") == invite.get("From") and ack.call_id == invite.call_id
    assert ack.get("CSeq") == "1 ACK" and ack.body == b""
    assert send.peer == UDP
    assert kinds(layer.receive(busy, UDP, 0.9)) == ["Send ACK"]  # not passed up twice


def test_2xx_after_timer_m_is_a_stray_passed_up_with_no_key() -> None:
    clock = ManualClock()
    layer = new_layer()
    invite = outgoing("INVITE")
    key, _ = layer.request(invite, UDP, 0.0)
    ok = reply(invite, 200)
    assert layer.receive(ok, UDP, 1.0) == [ResponseReceived(key, ok)]
    assert layer.receive(ok, UDP, 1.5) == [ResponseReceived(key, ok)]  # Accepted
    assert run_until(layer, clock, 100.0) == ["33 Terminated"]
    assert layer.receive(ok, UDP, 100.0) == [ResponseReceived(None, ok)]


def test_stray_responses_are_passed_up_with_no_key() -> None:
    layer = new_layer()
    stray = reply(outgoing("OPTIONS", "z9hG4bKnobody"), 200)
    assert layer.receive(stray, UDP, 0.0) == [ResponseReceived(None, stray)]
    no_branch = reply(make_request("OPTIONS", None), 200)
    assert layer.receive(no_branch, UDP, 0.0) == [ResponseReceived(None, no_branch)]


def test_request_rejects_ack_missing_cookie_and_reused_branch() -> None:
    layer = new_layer()
    with pytest.raises(TransactionError, match="ACK"):
        layer.request(outgoing("ACK"), UDP, 0.0)
    with pytest.raises(TransactionError, match="magic cookie"):
        layer.request(outgoing("OPTIONS", "abc"), UDP, 0.0)
    layer.request(outgoing("OPTIONS"), UDP, 0.0)
    with pytest.raises(TransactionError, match="already in use"):
        layer.request(outgoing("OPTIONS"), UDP, 0.0)


def test_respond_needs_a_server_key() -> None:
    layer = new_layer()
    key, _ = layer.request(outgoing("OPTIONS"), UDP, 0.0)
    with pytest.raises(TransactionError, match="not a server transaction"):
        layer.respond(key, reply(REGISTER, 200), 0.1)
    gone = TransactionKey(True, "z9hG4bKgone", "192.0.2.7", 5060, "BYE")
    assert layer.respond(gone, reply(REGISTER, 200), 0.1) == []


def test_reliable_invite_client_completes_and_ends_at_once() -> None:
    layer = new_layer()
    invite = outgoing("INVITE", transport="TCP")
    key, _ = layer.request(invite, TCP, 0.0)
    actions = layer.receive(reply(invite, 404), TCP, 0.2)
    assert kinds(actions) == ["ResponseReceived", "Send ACK", "Terminated"]  # Timer D = 0
    assert len(layer) == 0


def test_cancel_starts_the_invites_section_9_1_timer() -> None:
    clock = ManualClock()
    layer = new_layer()
    invite = outgoing("INVITE")
    key, _ = layer.request(invite, UDP, 0.0)
    layer.receive(reply(invite, 180), UDP, 0.1)
    clock.now = 2.0
    cancel_key, _ = layer.request(make_cancel(invite), UDP, clock.now)
    layer.receive(reply(make_cancel(invite), 200), UDP, 2.1)  # but no 487 ever comes
    fired = run_until(layer, clock, 100.0)
    assert fired == ["7.1 Terminated", "34 TimedOut", "34 Terminated"]
    assert len(layer) == 0


# -- transport errors ------------------------------------------------------------------------


def test_transport_errors_end_transactions_and_inform_the_tu() -> None:
    layer = new_layer()
    key, _ = layer.request(outgoing("INVITE"), UDP, 0.0)
    assert layer.transport_error(key, 0.1) == [TransportFailed(key), Terminated(key)]
    server = opened(layer, REGISTER)
    layer.respond(server, reply(REGISTER, 200), 0.2)
    assert layer.transport_error(server, 0.3) == [TransportFailed(server), Terminated(server)]
    assert len(layer) == 0 and layer.next_deadline() is None
    assert layer.transport_error(server, 0.4) == []  # unknown now
    assert kinds(layer.receive(REGISTER, UDP, 0.5)) == ["RequestReceived"]
    assert layer.handle_timer(100.0) == [TimedOut(server), Terminated(server)]  # stale FIFO


def test_transport_error_in_accepted_informs_but_keeps_absorbing() -> None:
    layer = new_layer()
    key = opened(layer, INVITE)
    layer.respond(key, reply(INVITE, 200), 0.1)
    assert layer.transport_error(key, 0.2) == [TransportFailed(key)]
    assert layer.receive(INVITE, UDP, 0.3) == []  # still absorbed (RFC 6026)


# -- timers across transactions ----------------------------------------------------------


def test_handle_timer_fires_everything_due_in_deadline_order() -> None:
    clock = ManualClock()
    layer = TransactionLayer(TimerConfig(t1=0.5), random.Random(3))
    for i in range(5):
        layer.request(outgoing("OPTIONS", f"z9hG4bKn{i}"), PBX_UDP, i * 0.1)
    times: list[float] = []
    while (deadline := layer.next_deadline()) is not None:
        assert deadline >= clock.now
        clock.now = deadline
        if layer.handle_timer(clock.now):
            times.append(clock.now)
    assert times[:5] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert len(layer) == 0 and clock.now == pytest.approx(32.4)


def test_heap_stays_bounded_under_rescheduling() -> None:
    layer = new_layer()
    invites = [outgoing("INVITE", f"z9hG4bKh{i}") for i in range(50)]
    for invite in invites:
        layer.request(invite, UDP, 0.0)
        layer.receive(reply(invite, 200), UDP, 0.1)
        for j in range(20):  # 2xx retransmissions: one live deadline each
            layer.receive(reply(invite, 200), UDP, 0.2 + j)
    assert len(layer._heap) <= 4 * len(layer._scheduled) + 64
    assert len(layer.handle_timer(100.0)) == 50
    assert len(layer) == 0


def test_bad_response_status_from_the_tu_raises() -> None:
    layer = new_layer()
    key = opened(layer, REGISTER)
    with pytest.raises(TransactionError, match="not a SIP status"):
        layer.respond(key, Response(99, "Odd", reply(REGISTER, 200).headers), 0.1)


def test_completed_store_is_bounded_oldest_first() -> None:
    layer = TransactionLayer(TimerConfig(), random.Random(1), max_completed=3)
    peer = Peer("udp", "192.0.2.1", 5060)
    ended = []
    for i in range(5):
        raw = (
            f"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\n"
            f"From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: {i}\r\nCSeq: 1 OPTIONS\r\n\r\n"
        ).encode()
        request = parse_message(raw)
        assert isinstance(request, Request)
        (received,) = layer.receive(request, peer, float(i))
        assert isinstance(received, RequestReceived) and received.key is not None
        actions = layer.respond(received.key, make_response(request, 200, to_tag="t"), float(i))
        ended += [a.key.branch for a in actions if isinstance(a, Terminated)]
    assert ended == ["z9hG4bK0", "z9hG4bK1"]
    assert len(layer) == 3
