"""Dialogs: creation (RFC 3261 §12.1), in-dialog requests (§12.2.1.1, §12.2.2),
ACK for 2xx (§13.2.2.4), target refresh, glare (§14) and the state table."""

from __future__ import annotations

import random

import pytest

from appliance.sip.dialog import (
    TRANSITIONS,
    Accept,
    Dialog,
    DialogError,
    DialogEvent,
    DialogId,
    DialogState,
    Ignore,
    Reject,
    Role,
    next_state,
    request_uri,
)
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.uri import Uri


def req(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def resp(text: str) -> Response:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Response)
    return message


# The caller leg: Alice's INVITE reached us through two loose-routing proxies.
CALLER_INVITE = req(
    """INVITE sip:201@10.0.0.2 SIP/2.0
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2x
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1x
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa1;rport
Max-Forwards: 68
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;lr>
From: "Alice" <sip:alice@example.com>;tag=a73kszlfl
To: <sip:201@example.com>
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.10
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060>
Content-Length: 0

"""
)
PBX_CONTACT = "<sip:pbx@10.0.0.2:5060>"

# The callee leg: our INVITE to Bob, answered through p1 (next to us) and p2.
CALLEE_INVITE = req(
    """INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKpbx1;rport
Max-Forwards: 70
From: <sip:201@10.0.0.2>;tag=pbx77
To: <sip:bob@biloxi.example.com>
Call-ID: b2b-leg-2@10.0.0.2
CSeq: 1 INVITE
Contact: <sip:pbx@10.0.0.2:5060>
Content-Length: 0

"""
)


def callee_response(status: str, tag: str, record_route: str, contact: str = "") -> Response:
    contact_line = f"Contact: {contact}\n" if contact else ""
    to_tag = f";tag={tag}" if tag else ""
    return resp(
        f"""SIP/2.0 {status}
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKpbx1;rport=5060
{record_route}From: <sip:201@10.0.0.2>;tag=pbx77
To: <sip:bob@biloxi.example.com>{to_tag}
Call-ID: b2b-leg-2@10.0.0.2
CSeq: 1 INVITE
{contact_line}Content-Length: 0

"""
    )


LOOSE_RR = "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\n"
STRICT_RR = "Record-Route: <sip:p2.example.com>\nRecord-Route: <sip:p1.example.com>\n"
BOB = "<sip:bob@192.0.2.4:5062>"


def uas_dialog(status: int = 200) -> Dialog:
    response = make_response(CALLER_INVITE, status, to_tag="pbxtag1")
    return Dialog.from_uas(CALLER_INVITE, response, PBX_CONTACT)


def uac_dialog(status: str = "200 OK", rr: str = LOOSE_RR) -> Dialog:
    return Dialog.from_uac(CALLEE_INVITE, callee_response(status, "bob9", rr, BOB))


def in_dialog(method: str, cseq: int, contact: str = "", to_tag: str = "pbxtag1") -> Request:
    contact_line = f"Contact: {contact}\n" if contact else ""
    return req(
        f"""{method} sip:pbx@10.0.0.2:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{method}{cseq}
Max-Forwards: 70
From: "Alice" <sip:alice@example.com>;tag=a73kszlfl
To: <sip:201@example.com>;tag={to_tag}
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.10
CSeq: {cseq} {method}
{contact_line}Content-Length: 0

"""
    )


# -- creation ----------------------------------------------------------------------


def test_uas_dialog_from_invite_and_200() -> None:
    dialog = uas_dialog()
    assert dialog.id == DialogId("1j9FpLxk3uxtm8tn@192.0.2.10", "pbxtag1", "a73kszlfl")
    assert dialog.role is Role.UAS
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r) for r in dialog.route_set] == [
        "<sip:p2.example.com;lr>",
        "<sip:p1.example.com;lr>",
    ]  # §12.1.1: in order
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"
    assert dialog.remote_seq == 314159
    assert dialog.local_seq is None
    assert str(dialog.local_addr) == "<sip:201@example.com>;tag=pbxtag1"
    assert str(dialog.remote_addr) == '"Alice" <sip:alice@example.com>;tag=a73kszlfl'
    assert dialog.secure is False


def test_uas_dialog_from_180_is_early_then_confirmed_by_our_200() -> None:
    dialog = uas_dialog(180)
    assert dialog.state is DialogState.EARLY
    ok = make_response(CALLER_INVITE, 200, to_tag="pbxtag1")
    assert dialog.response_sent(ok, 1.0) is DialogState.CONFIRMED


def test_uas_early_dialog_ends_with_our_486() -> None:
    dialog = uas_dialog(180)
    busy = make_response(CALLER_INVITE, 486, to_tag="pbxtag1")
    assert dialog.response_sent(busy, 1.0) is DialogState.TERMINATED


def test_uac_dialog_reverses_record_route() -> None:
    dialog = uac_dialog()
    assert dialog.id == DialogId("b2b-leg-2@10.0.0.2", "pbx77", "bob9")
    assert dialog.role is Role.UAC
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r) for r in dialog.route_set] == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
    ]  # §12.1.2: reversed
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4:5062"
    assert dialog.local_seq == 1
    assert dialog.remote_seq is None


def test_creation_refuses_a_tagless_or_final_error_response() -> None:
    no_tag = make_response(CALLER_INVITE, 180)
    with pytest.raises(DialogError, match="To tag"):
        Dialog.from_uas(CALLER_INVITE, no_tag, PBX_CONTACT)
    busy = callee_response("486 Busy Here", "bob9", "")
    with pytest.raises(DialogError, match="does not create a dialog"):
        Dialog.from_uac(CALLEE_INVITE, busy)
    trying = callee_response("100 Trying", "bob9", "")
    with pytest.raises(DialogError, match="100 does not create"):
        Dialog.from_uac(CALLEE_INVITE, trying)


def test_secure_flag_follows_sips_request_uri() -> None:
    invite = Request("INVITE", Uri.parse("sips:201@10.0.0.2"), CALLER_INVITE.headers)
    dialog = Dialog.from_uas(invite, make_response(invite, 200, to_tag="t"), PBX_CONTACT)
    assert dialog.secure is True


def test_missing_contact_falls_back_to_request_uri() -> None:
    dialog = Dialog.from_uac(CALLEE_INVITE, callee_response("180 Ringing", "bob9", ""))
    assert str(dialog.remote_target) == "sip:bob@biloxi.example.com"


# -- building requests ---------------------------------------------------------------


def test_uas_bye_exact_headers() -> None:
    dialog = uas_dialog()
    bye = dialog.request("BYE", 5.0, rng=random.Random(1))
    assert bye.method == "BYE"
    assert str(bye.uri) == "sip:alice@192.0.2.10:5060"
    names = [k for k, _ in bye.headers]
    assert names == ["Via", "Max-Forwards", "Route", "Route", "From", "To", "Call-ID", "CSeq"]
    values = dict(bye.headers)
    assert values["Via"].startswith("SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK")
    assert bye.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert values["From"] == "<sip:201@example.com>;tag=pbxtag1"
    assert values["To"] == '"Alice" <sip:alice@example.com>;tag=a73kszlfl'
    assert values["Call-ID"] == "1j9FpLxk3uxtm8tn@192.0.2.10"
    assert values["Max-Forwards"] == "70"
    number = bye.cseq().number
    assert 1 <= number < 2**16 and bye.cseq().method == "BYE"
    assert dialog.state is DialogState.TERMINATED  # §15.1.1
    with pytest.raises(DialogError, match="terminated"):
        dialog.request("BYE", 6.0, rng=random.Random(1))


def test_uac_reinvite_exact_text_loose_routing() -> None:
    dialog = uac_dialog()
    sdp = b"v=0\r\n"
    reinvite = dialog.request(
        "INVITE", 10.0, sdp, (("Content-Type", "application/sdp"),), rng=random.Random(3)
    )
    branch = reinvite.top_via().branch
    assert branch is not None and branch != "z9hG4bKpbx1"
    expected = (
        "INVITE sip:bob@192.0.2.4:5062 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.2:5060;rport;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "Route: <sip:p1.example.com;lr>\r\n"
        "Route: <sip:p2.example.com;lr>\r\n"
        "From: <sip:201@10.0.0.2>;tag=pbx77\r\n"
        "To: <sip:bob@biloxi.example.com>;tag=bob9\r\n"
        "Call-ID: b2b-leg-2@10.0.0.2\r\n"
        "CSeq: 2 INVITE\r\n"
        "Contact: <sip:pbx@10.0.0.2:5060>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 5\r\n"
        "\r\n"
        "v=0\r\n"
    )
    assert bytes(reinvite).decode() == expected


def test_strict_routing_rewrites_request_uri() -> None:
    dialog = uac_dialog(rr=STRICT_RR)
    bye = dialog.request("BYE", 1.0, rng=random.Random(2))
    assert str(bye.uri) == "sip:p1.example.com"  # §12.2.1.1: first route
    assert bye.get_all("Route") == ["<sip:p2.example.com>", "<sip:bob@192.0.2.4:5062>"]


def test_no_route_set_goes_to_remote_target() -> None:
    dialog = uac_dialog(rr="")
    info = dialog.request("INFO", 1.0, rng=random.Random(2))
    assert str(info.uri) == "sip:bob@192.0.2.4:5062"
    assert info.get("Route") is None and info.get("Contact") is None
    assert info.cseq().number == 2


def test_request_uri_drops_method_param_and_headers() -> None:
    uri = Uri.parse("sip:bob@h;method=INVITE;lr?Subject=x")
    assert str(request_uri(uri)) == "sip:bob@h;lr"


def test_cseq_increments_but_ack_and_cancel_reuse_invites() -> None:
    dialog = uac_dialog()
    rng = random.Random(4)
    assert dialog.request("INFO", 1.0, rng=rng).cseq().number == 2
    reinvite = dialog.request("INVITE", 2.0, rng=rng)
    assert reinvite.cseq().number == 3
    cancel = dialog.request("CANCEL", 2.1, rng=rng)
    assert str(cancel.cseq()) == "3 CANCEL"
    assert cancel.top_via() == reinvite.top_via()  # §9.1: same branch
    assert cancel.uri == reinvite.uri
    ack = dialog.request("ACK", 2.2, rng=rng)
    assert str(ack.cseq()) == "3 ACK"
    assert ack.top_via().branch != reinvite.top_via().branch
    assert dialog.request("UPDATE", 3.0, rng=rng).cseq().number == 4


def test_uas_first_request_chooses_local_cseq_from_rng() -> None:
    first = uas_dialog().request("INFO", 0.0, rng=random.Random(9)).cseq().number
    again = uas_dialog().request("INFO", 0.0, rng=random.Random(9)).cseq().number
    assert first == again  # injected randomness only


def test_ack_for_2xx() -> None:
    dialog = Dialog.from_uac(CALLEE_INVITE, callee_response("180 Ringing", "bob9", "", BOB))
    ok = callee_response("200 OK", "bob9", LOOSE_RR, BOB)
    assert dialog.receive_response(ok, 1.0) is DialogState.CONFIRMED
    ack = dialog.ack_for_2xx(ok, rng=random.Random(5))
    assert ack.method == "ACK"
    assert str(ack.cseq()) == "1 ACK"  # §13.2.2.4
    assert ack.top_via().branch not in (None, "z9hG4bKpbx1")
    # The route set was recomputed from the 2xx.
    assert ack.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(ack.uri) == "sip:bob@192.0.2.4:5062"
    assert ack.get("Contact") is None
    assert dialog.local_seq == 1  # not advanced by the ACK
    with pytest.raises(DialogError, match="only a 2xx"):
        dialog.ack_for_2xx(callee_response("180 Ringing", "bob9", ""), rng=random.Random(5))


def test_uas_may_not_bye_an_early_dialog() -> None:
    dialog = uas_dialog(180)
    with pytest.raises(DialogError, match="early"):
        dialog.request("BYE", 0.0, rng=random.Random(1))


def test_cancel_needs_a_pending_invite() -> None:
    with pytest.raises(DialogError, match="CANCEL"):
        uac_dialog().request("CANCEL", 0.0, rng=random.Random(1))
    early = Dialog.from_uac(CALLEE_INVITE, callee_response("183 Session Progress", "b", ""))
    cancel = early.request("CANCEL", 0.0, rng=random.Random(1))
    assert cancel.top_via().branch == "z9hG4bKpbx1"


def test_bad_method_is_refused() -> None:
    with pytest.raises(DialogError, match="bad method"):
        uac_dialog().request("by e", 0.0, rng=random.Random(1))


# -- receiving requests --------------------------------------------------------------


def test_cseq_lower_than_remote_gets_500() -> None:
    dialog = uas_dialog()
    assert dialog.receive_request(in_dialog("INFO", 314160), 1.0) == Accept()
    assert dialog.remote_seq == 314160
    decision = dialog.receive_request(in_dialog("INFO", 314159), 2.0)
    assert isinstance(decision, Reject) and decision.status == 500
    answer = decision.response(in_dialog("INFO", 314159))
    assert answer.status == 500 and answer.reason == "CSeq out of order"
    assert dialog.remote_seq == 314160
    # Gaps are allowed (§12.2.2: only lower is out of order).
    assert dialog.receive_request(in_dialog("INFO", 314170), 3.0) == Accept()


def test_wrong_tags_get_481() -> None:
    dialog = uas_dialog()
    decision = dialog.receive_request(in_dialog("BYE", 314160, to_tag="other"), 1.0)
    assert decision == Reject(481, "Call/Transaction Does Not Exist")


def test_bye_terminates_and_later_requests_get_481() -> None:
    dialog = uas_dialog()
    assert dialog.receive_request(in_dialog("BYE", 314160), 1.0) == Accept()
    assert dialog.state is DialogState.TERMINATED
    decision = dialog.receive_request(in_dialog("INFO", 314161), 2.0)
    assert isinstance(decision, Reject) and decision.status == 481


def test_ack_matches_the_invite_cseq_only() -> None:
    dialog = uas_dialog()
    assert dialog.receive_request(in_dialog("ACK", 314159), 0.1) == Accept()
    assert isinstance(dialog.receive_request(in_dialog("ACK", 1), 0.1), Ignore)


def test_reinvite_target_refresh_applies_on_our_2xx() -> None:
    dialog = uas_dialog()
    reinvite = in_dialog("INVITE", 314160, "<sip:alice@198.51.100.7:5070>")
    assert dialog.receive_request(reinvite, 1.0) == Accept()
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"  # not yet
    dialog.response_sent(make_response(reinvite, 200), 1.1)
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7:5070"
    bye = dialog.request("BYE", 2.0, rng=random.Random(1))
    assert str(bye.uri) == "sip:alice@198.51.100.7:5070"


def test_refused_reinvite_keeps_the_target() -> None:
    dialog = uas_dialog()
    reinvite = in_dialog("INVITE", 314160, "<sip:alice@198.51.100.7:5070>")
    dialog.receive_request(reinvite, 1.0)
    assert dialog.response_sent(make_response(reinvite, 488), 1.1) is DialogState.CONFIRMED
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060"


def test_uac_target_refresh_on_2xx_to_update() -> None:
    dialog = uac_dialog()
    update = dialog.request("UPDATE", 1.0, rng=random.Random(1))
    ok = resp(
        bytes(make_response(update, 200, extra=(("Contact", "<sip:bob@203.0.113.9>"),)))
        .decode()
        .replace("\r\n", "\n")
    )
    dialog.receive_response(ok, 1.2)
    assert str(dialog.remote_target) == "sip:bob@203.0.113.9"


def test_glare_second_invite_gets_500_retry_after_and_ours_491() -> None:
    dialog = uas_dialog()
    assert dialog.receive_request(in_dialog("INVITE", 314160), 1.0) == Accept()
    decision = dialog.receive_request(in_dialog("INVITE", 314161), 1.1)
    assert decision == Reject(500, "Previous INVITE pending", (("Retry-After", "1"),))
    with pytest.raises(DialogError, match="in progress") as info:
        dialog.request("INVITE", 1.2, rng=random.Random(1))
    assert info.value.status == 491
    dialog.response_sent(make_response(in_dialog("INVITE", 314160), 200), 1.3)
    dialog.request("INVITE", 1.4, rng=random.Random(1))
    decision = dialog.receive_request(in_dialog("INVITE", 314162), 1.5)
    assert decision == Reject(491, "Request Pending")


def test_481_to_our_request_ends_the_dialog() -> None:
    dialog = uac_dialog()
    info = dialog.request("INFO", 1.0, rng=random.Random(1))
    gone = make_response(info, 481, to_tag=None)
    assert dialog.receive_response(gone, 1.1) is DialogState.TERMINATED


def test_early_uac_dialog_ends_on_final_error() -> None:
    dialog = Dialog.from_uac(CALLEE_INVITE, callee_response("180 Ringing", "bob9", "", BOB))
    assert dialog.receive_response(callee_response("180 Ringing", "bob9", ""), 1.0) is (
        DialogState.EARLY
    )
    busy = callee_response("486 Busy Here", "bob9", "")
    assert dialog.receive_response(busy, 2.0) is DialogState.TERMINATED
    # A late retransmission changes nothing and raises nothing.
    assert dialog.receive_response(busy, 3.0) is DialogState.TERMINATED


def test_response_from_another_fork_is_refused() -> None:
    dialog = uac_dialog()
    with pytest.raises(DialogError, match="another fork"):
        dialog.receive_response(callee_response("200 OK", "carol1", ""), 1.0)


def test_local_contact_may_be_given_parsed() -> None:
    contact = NameAddr.parse("<sips:pbx@10.0.0.2:5061;transport=tls>")
    response = make_response(CALLER_INVITE, 200, to_tag="x")
    dialog = Dialog.from_uas(CALLER_INVITE, response, contact)
    assert str(dialog.via_template) == "SIP/2.0/TLS 10.0.0.2:5061;rport"


# -- the state table ------------------------------------------------------------------


def test_walk_every_state_and_event() -> None:
    legal = 0
    for state in DialogState:
        for event in DialogEvent:
            if (state, event) in TRANSITIONS:
                assert next_state(state, event) is TRANSITIONS[(state, event)]
                legal += 1
            else:
                with pytest.raises(DialogError, match=f"{event.name} is illegal in state"):
                    next_state(state, event)
    assert legal == 5
    assert not any(s is DialogState.TERMINATED for s, _ in TRANSITIONS)


def test_terminate_twice_is_illegal() -> None:
    dialog = uac_dialog()
    dialog.terminate()
    with pytest.raises(DialogError, match="END is illegal in state TERMINATED"):
        dialog.terminate()
