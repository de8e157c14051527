"""The SIP front's caller for an authenticated INVITE: the account itself, or for a
trunk of ours (``Account.asserts_caller``, the analog gateway's FXO lines) the number
its From asserts. Observed where the B2BUA uses it: the b-leg INVITE's From and the CDR
(sans-IO, with the rig of test_b2bua)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_b2bua import ALICE, BOB1, OFFER, REALM, Rig  # noqa: E402
from test_b2bua_apps import Apps  # noqa: E402

from appliance.pbx.app_events import StartMailboxAccess  # noqa: E402
from appliance.pbx.auth import Account, Authenticator  # noqa: E402
from appliance.sip.digest import NonceBook  # noqa: E402
from appliance.sip.digest_client import authorization, pick  # noqa: E402
from appliance.sip.digest_hash import ALGORITHMS, ha1  # noqa: E402

TRUNK = "gateway-trunk"
TRUNK_PW = "trunk-secret"
PHONE = "101"
PHONE_PW = "pw-101"


def keys(user: str, password: str) -> dict[str, str]:
    return {alg: ha1(alg, user, REALM, password) for alg in ALGORITHMS}


def trunk_rig(apps: Apps | None = None) -> Rig:
    rig = Rig() if apps is None else Rig(contacts=(), apps=apps)
    accounts = {
        PHONE: Account(PHONE, keys(PHONE, PHONE_PW)),
        TRUNK: Account(TRUNK, keys(TRUNK, TRUNK_PW), asserts_caller=True),
    }
    secret = b"t" * 32
    # The rig's own authenticator knows 101-103 only; give the front one with a trunk.
    rig.front.auth = Authenticator(REALM, accounts, NonceBook(secret, 1, 300), secret)
    return rig


def invite(rig: Rig, user: str, password: str, from_header: str, callee: str = "102") -> None:
    """An INVITE answered 401, then again with credentials of ``user`` (digest_client)."""

    def build(auth: str, cseq: int) -> str:
        return (
            f"INVITE sip:{callee}@{REALM} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {ALICE.host}:{ALICE.port};branch=z9hG4bKtc{cseq};rport\r\n"
            f"From: {from_header};tag=a1\r\nTo: <sip:{callee}@{REALM}>\r\n"
            f"Call-ID: trunk-call\r\nCSeq: {cseq} INVITE\r\n"
            f"Contact: <sip:{user}@{ALICE.host}:{ALICE.port}>\r\n{auth}"
            f"Content-Type: application/sdp\r\nContent-Length: {len(OFFER)}\r\n\r\n{OFFER}"
        )

    rig.deliver(build("", 1), ALICE)
    (challenge,) = rig.responses(ALICE)
    assert challenge.status == 401
    rig.take(ALICE)
    secrets = keys(user, password)
    chosen = pick(challenge.get_all("WWW-Authenticate"), secrets)
    assert chosen is not None
    value = authorization(
        chosen,
        username=user,
        ha1=secrets[chosen.algorithm],
        method="INVITE",
        uri=f"sip:{callee}@{REALM}",
        cnonce="cn",
    )
    rig.deliver(build(f"Authorization: {value}\r\n", 2), ALICE)
    assert not [r for r in rig.responses(ALICE) if r.status in (401, 403, 407)]


def handed_caller(rig: Rig) -> str:
    """The caller the B2BUA got: the b-leg INVITE's From user, checked against the CDR
    after the callee refuses the call."""
    (b_invite,) = rig.requests(BOB1, "INVITE")
    from_user = b_invite.from_addr().uri.user
    assert from_user is not None
    rig.take(BOB1)
    rig.answer(BOB1, b_invite, 486, "b1")
    (done,) = rig.finished
    assert done.record.caller.number == from_user
    return from_user


@pytest.mark.parametrize(
    ("from_header", "caller"),
    [
        (f"<sip:5551234@{REALM}>", "5551234"),
        (f'"Jane Roe" <sip:+15551234567@{REALM}>', "+15551234567"),
        (f"<sip:*67#@{REALM}>", "*67#"),
        (f"<sip:{'1' * 32}@{REALM}>", "1" * 32),  # 32 characters: still a number
        (f"<sip:{'1' * 33}@{REALM}>", "anonymous"),  # longer than 32
        (f"<sip:{REALM}>", "anonymous"),  # no user part: withheld
        (f"<sip:anonymous@{REALM}>", "anonymous"),
        (f"<sip:alice@{REALM}>", "anonymous"),  # not a number
        (f"<sip:555-1234@{REALM}>", "anonymous"),  # punctuation is not a number
        (f"<sip:12a3@{REALM}>", "anonymous"),
    ],
)
def test_trunk_caller_is_the_number_from_asserts(from_header: str, caller: str) -> None:
    rig = trunk_rig()
    invite(rig, TRUNK, TRUNK_PW, from_header)
    assert handed_caller(rig) == caller


def test_trunk_caller_keeps_the_display_name() -> None:
    rig = trunk_rig()
    invite(rig, TRUNK, TRUNK_PW, f'"Jane Roe" <sip:5551234@{REALM}>')
    (b_invite,) = rig.requests(BOB1, "INVITE")
    assert b_invite.from_addr().display_name == "Jane Roe"
    assert b_invite.from_addr().uri.user == "5551234"


@pytest.mark.parametrize(
    "from_header",
    [
        f"<sip:{PHONE}@{REALM}>",
        f"<sip:5551234@{REALM}>",  # a phone cannot claim an outside number
        f"<sip:103@{REALM}>",  # nor another extension
        f"<sip:{REALM}>",
        f"<sip:alice@{REALM}>",
    ],
)
def test_normal_account_is_the_caller_whatever_from_says(from_header: str) -> None:
    rig = trunk_rig()
    invite(rig, PHONE, PHONE_PW, from_header)
    assert handed_caller(rig) == PHONE


def test_trunk_caller_owns_no_mailbox() -> None:
    """An outside caller showing an extension's number ("102") dialling the own-mailbox
    code is asked which mailbox, and no application trusts it as that mailbox's owner."""
    apps = Apps(mailboxes={"102"})
    rig = trunk_rig(apps)
    invite(rig, TRUNK, TRUNK_PW, "<sip:102@pstn.example>", callee="*97")
    assert [app.target for app in apps.made] == [StartMailboxAccess(None)]
    assert apps.trusted == [False]


def test_extension_dialling_its_mailbox_is_trusted() -> None:
    apps = Apps(mailboxes={"101"})
    rig = trunk_rig(apps)
    invite(rig, PHONE, PHONE_PW, f"<sip:{PHONE}@{REALM}>", callee="*97")
    assert [app.target for app in apps.made] == [StartMailboxAccess(PHONE)]
    assert apps.trusted == [True]
