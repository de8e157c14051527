"""Registrar: RFC 3261 §10.3 processing steps 5-8 and the location service."""

from __future__ import annotations

from appliance.pbx.location import Binding
from appliance.pbx.registrar import Registrar, RegistrarConfig, Remove, Upsert
from appliance.sip.message import Request
from appliance.sip.parser import parse_message
from appliance.sip.transport import Peer

PEER = Peer("udp", "192.0.2.7", 40000)
CFG = RegistrarConfig(min_expires=60, max_expires=3600, default_expires=1800, max_contacts=3)


def register(
    contacts: list[str], expires: str | None = None, cseq: int = 1, call_id: str = "c1"
) -> Request:
    lines = [
        "REGISTER sip:yakyak.local SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1",
        "From: <sip:101@yakyak.local>;tag=1",
        "To: <sip:101@yakyak.local>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: TestPhone/1.0",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_register_query_refresh_and_remove() -> None:
    reg = Registrar(CFG)
    answer, changes = reg.register(register(["<sip:101@10.0.0.2:5060>"]), "101", PEER, 1000.0)
    assert answer.status == 200
    assert ("Contact", "<sip:101@10.0.0.2:5060>;expires=1800") in answer.headers
    (change,) = changes
    assert isinstance(change, Upsert)
    assert change.binding.source_host == "192.0.2.7" and change.binding.source_port == 40000
    assert change.binding.user_agent == "TestPhone/1.0"
    # A query (no Contact) lists the bindings without changing them.
    answer, changes = reg.register(register([], cseq=2), "101", PEER, 1100.0)
    assert changes == [] and ("Contact", "<sip:101@10.0.0.2:5060>;expires=1700") in answer.headers
    # Refresh with a per-contact expires that is capped at max_expires.
    answer, _ = reg.register(
        register(["<sip:101@10.0.0.2:5060>;expires=99999"], cseq=3), "101", PEER, 1200.0
    )
    assert ("Contact", "<sip:101@10.0.0.2:5060>;expires=3600") in answer.headers
    answer, changes = reg.register(
        register(["<sip:101@10.0.0.2:5060>"], "0", cseq=4), "101", PEER, 1300.0
    )
    assert answer.status == 200 and changes == [Remove("101", "sip:101@10.0.0.2:5060")]
    assert reg.lookup("101", 1300.0) == []


def test_interval_too_brief() -> None:
    answer, changes = Registrar(CFG).register(register(["<sip:101@h>"], "30"), "101", PEER, 0.0)
    assert answer.status == 423 and ("Min-Expires", "60") in answer.headers and changes == []


def test_wildcard_needs_expires_zero_and_removes_all() -> None:
    reg = Registrar(CFG)
    reg.register(register(["<sip:101@a>", "<sip:101@b>"]), "101", PEER, 0.0)
    assert reg.register(register(["*"], "60", cseq=2), "101", PEER, 1.0)[0].status == 400
    assert (
        reg.register(register(["*", "<sip:101@c>"], "0", cseq=2), "101", PEER, 1.0)[0].status == 400
    )
    answer, changes = reg.register(register(["*"], "0", cseq=3), "101", PEER, 1.0)
    assert answer.status == 200 and len(changes) == 2 and len(reg) == 0


def test_out_of_order_cseq_on_same_call_id_fails() -> None:
    reg = Registrar(CFG)
    reg.register(register(["<sip:101@a>"], cseq=5), "101", PEER, 0.0)
    assert reg.register(register(["<sip:101@a>"], cseq=5), "101", PEER, 1.0)[0].status == 400
    # Another Call-ID (a rebooted phone) replaces the binding whatever its CSeq.
    assert (
        reg.register(register(["<sip:101@a>"], cseq=1, call_id="c2"), "101", PEER, 1.0)[0].status
        == 200
    )


def test_multiple_contacts_limit_and_q_order() -> None:
    reg = Registrar(CFG)
    answer, _ = reg.register(
        register(["<sip:101@a>;q=0.1", "<sip:101@b>;q=0.9", "<sip:101@c>"]), "101", PEER, 0.0
    )
    assert answer.status == 200
    assert [b.contact for b in reg.lookup("101", 1.0)] == ["sip:101@c", "sip:101@b", "sip:101@a"]
    answer, _ = reg.register(register(["<sip:101@d>"], cseq=2), "101", PEER, 1.0)
    assert answer.status == 403 and len(reg) == 3


def test_contact_identity_ignores_host_case_but_not_port() -> None:
    reg = Registrar(CFG)
    reg.register(register(["<sip:101@PHONE.lan:5060>"]), "101", PEER, 0.0)
    reg.register(register(["<sip:101@phone.lan:5060>"], cseq=2), "101", PEER, 0.0)
    assert len(reg) == 1
    reg.register(register(["<sip:101@phone.lan:5062>"], cseq=3), "101", PEER, 0.0)
    assert len(reg) == 2


def test_expiry_and_restore_from_store() -> None:
    reg = Registrar(CFG)
    reg.register(register(["<sip:101@a>;expires=60", "<sip:101@b>;expires=600"]), "101", PEER, 0.0)
    assert reg.expire(61.0) == [Remove("101", "sip:101@a")]
    stored = [Binding("102", "sip:102@x", 500.0, "c", 1)]
    assert [b.contact for b in Registrar(CFG, stored).lookup("102", 100.0)] == ["sip:102@x"]


def test_refreshed_binding_is_not_expired_by_its_old_time() -> None:
    reg = Registrar(CFG)
    reg.register(register(["<sip:101@a>;expires=60"]), "101", PEER, 0.0)
    reg.register(register(["<sip:101@a>;expires=600"], cseq=2), "101", PEER, 30.0)
    assert reg.expire(100.0) == []
    assert reg.expire(631.0) == [Remove("101", "sip:101@a")]
    assert len(reg) == 0


def test_deleted_extensions_lose_their_bindings() -> None:
    reg = Registrar(CFG)
    reg.register(register(["<sip:101@a>"]), "101", PEER, 0.0)
    assert reg.drop_aors(["102"]) == [Remove("101", "sip:101@a")]
    assert reg.lookup("101", 1.0) == []


def test_plain_refreshes_reach_the_store_only_past_half_the_interval() -> None:
    reg = Registrar(CFG)
    contact = ["<sip:101@a>;expires=1000"]
    _, changes = reg.register(register(contact, cseq=1), "101", PEER, 0.0)
    assert len(changes) == 1  # new binding: stored
    _, changes = reg.register(register(contact, cseq=2), "101", PEER, 100.0)
    assert changes == []  # stored expiry 1000 still covers half of the new interval
    assert reg.lookup("101", 1050.0)[0].expires_at == 1100.0  # but memory has the refresh
    _, changes = reg.register(register(contact, cseq=3), "101", PEER, 600.0)
    assert len(changes) == 1  # stored expiry 1000 < 600 + 1000 / 2
    moved = Peer("udp", "192.0.2.8", 40000)
    _, changes = reg.register(register(contact, cseq=4), "101", moved, 601.0)
    assert len(changes) == 1  # a phone that moved is written at once
