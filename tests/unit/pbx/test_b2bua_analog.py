"""The B2BUA's ``analog`` routes: a call rings an analog port through the gateway's user
agent (sans-IO, with the rig and recording media of test_b2bua)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_b2bua import ALICE, BOB1, Rig, sdp_answer  # noqa: E402

from appliance.pbx.call_events import Disposition, Side  # noqa: E402
from appliance.pbx.causes import Cause, status_for  # noqa: E402
from appliance.pbx.dialplan import Dialplan  # noqa: E402
from appliance.sip.transport import Peer  # noqa: E402

GATEWAY = ("192.0.2.50", 5070)
GW = Peer("udp", *GATEWAY)

PLAN = Dialplan.from_dicts(
    [
        {"name": "out", "pattern": "_9.", "target": {"type": "analog", "port": 3}},
        {"name": "door", "pattern": "200", "target": {"type": "analog", "port": 0}},
    ]
)


def rig(gateway: tuple[str, int] | None = GATEWAY) -> Rig:
    r = Rig(dialplan=PLAN)
    # Rig has no parameter for it; the attribute is what B2bua.__init__ stores.
    r.calls.analog_gateway = gateway
    return r


def final_statuses(r: Rig) -> list[int]:
    return [m.status for m in r.responses(ALICE) if m.status >= 200]


def test_analog_route_forks_to_the_gateway_with_the_number_and_line() -> None:
    r = rig()
    r.invite("95551234")
    (b_invite,) = r.requests(GW, "INVITE")
    assert str(b_invite.uri) == f"sip:95551234@{GATEWAY[0]}:{GATEWAY[1]};line=3"
    assert b_invite.uri.user == "95551234"
    assert b_invite.uri.host == GATEWAY[0] and b_invite.uri.port == GATEWAY[1]
    assert b_invite.uri.param("line") == "3"
    assert b_invite.call_id != "call-a"
    assert "<sip:101@" in (b_invite.get("From") or "")  # the authenticated caller
    assert "<sip:95551234@" in (b_invite.get("To") or "")
    assert not r.requests(BOB1, "INVITE")  # nobody else rings
    assert not final_statuses(r)  # still ringing


def test_analog_route_to_an_fxs_port_uses_the_dialled_number() -> None:
    r = rig()
    r.invite("200")
    (b_invite,) = r.requests(GW, "INVITE")
    assert str(b_invite.uri) == f"sip:200@{GATEWAY[0]}:{GATEWAY[1]};line=0"


def test_analog_call_answers_bridges_and_leaves_a_cdr() -> None:
    r = rig()
    r.invite("95551234")
    (b_invite,) = r.requests(GW, "INVITE")
    r.take(GW)
    r.answer(GW, b_invite, 180, "g1")
    assert [m.status for m in r.responses(ALICE)] == [180]
    r.take(ALICE)
    r.answer(GW, b_invite, 200, "g1", sdp_answer(GATEWAY[0], codec_pt=8, events=False))
    assert r.requests(GW, "ACK")
    (ok,) = r.responses(ALICE)
    assert ok.status == 200
    assert r.media.bridges == [("1a", "1b")]
    assert r.media.params["1b"].codec == "PCMA"
    r.take(ALICE)
    r.ack(ok)
    r.in_dialog(ALICE, ok, "BYE", 3)
    (bye,) = r.requests(GW, "BYE")
    assert bye.call_id == b_invite.call_id
    (done,) = r.finished
    assert done.record.disposition is Disposition.ANSWERED
    assert done.record.ended_by is Side.CALLER
    assert done.record.caller.number == "101" and done.record.callee == "95551234"


def test_analog_route_over_ipv6_brackets_the_host_in_the_uri_only() -> None:
    r = rig(("2001:db8::5", 5070))
    r.invite("95551234")
    (b_invite,) = r.requests(Peer("udp", "2001:db8::5", 5070), "INVITE")
    assert str(b_invite.uri) == "sip:95551234@[2001:db8::5]:5070;line=3"


def test_analog_route_without_gateway_fails_with_no_circuit() -> None:
    r = rig(None)
    r.invite("95551234")
    expected = status_for(Cause.NO_CIRCUIT_AVAILABLE)
    (final,) = [m for m in r.responses(ALICE) if m.status >= 200]
    assert final.status == expected
    assert f"cause={Cause.NO_CIRCUIT_AVAILABLE.value}" in (final.get("Reason") or "")
    assert not r.media.legs  # no ports taken for a call that cannot ring
    assert len(r.calls) == 0
    assert not r.requests(GW, "INVITE")


def test_gateway_refusal_is_passed_to_the_caller() -> None:
    r = rig()
    r.invite("95551234")
    (b_invite,) = r.requests(GW, "INVITE")
    r.take(GW)
    r.answer(GW, b_invite, 486, "g1")  # the line is in use
    assert r.requests(GW, "ACK")
    assert final_statuses(r) == [486]
    (done,) = r.finished
    assert done.record.disposition is Disposition.BUSY
    assert sorted(r.media.closed) == ["1a", "1b"]


def test_extensions_are_not_routed_to_the_gateway() -> None:
    r = rig()
    r.invite("102")
    assert r.requests(BOB1, "INVITE")
    assert not r.requests(GW, "INVITE")


def test_an_escaped_hash_is_dialled_as_a_hash_and_escaped_again_to_the_line() -> None:
    """A phone (or our gateway) sends '#' as %23 (RFC 3261 §25.1): the dialplan sees
    '9*67#5', and the line's INVITE carries it escaped, which the gateway undoes."""
    r = rig()
    r.invite("9*67%235")
    (b_invite,) = r.requests(GW, "INVITE")
    assert b_invite.uri.user == "9*67%235"
    assert b_invite.uri.param("line") == "3"
