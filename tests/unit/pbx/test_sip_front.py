"""The SIP front, sans-IO: bytes in, answers out, with a manual clock and no sockets."""

from __future__ import annotations

import random

import pytest

from appliance.pbx.auth import Account, Authenticator
from appliance.pbx.guard import AuthGuard, GuardConfig, LockKind
from appliance.pbx.registrar import Registrar, RegistrarConfig, Upsert
from appliance.pbx.sip_front import Locked, Persist, SipFront
from appliance.sip.digest import Credentials, NonceBook, expected_response
from appliance.sip.digest_hash import ha1
from appliance.sip.message import Response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import Send, TimerConfig, TransactionLayer
from appliance.sip.transport import Peer

REALM = "yakyak.local"
PHONE = Peer("udp", "192.0.2.7", 5062, 1)


def make_front(**guard: float) -> SipFront:
    accounts = {
        "101": Account(
            "101", {alg: ha1(alg, "101", REALM, "pw-101-secret") for alg in ("MD5", "SHA-256")}
        )
    }
    secret = b"k" * 32
    auth = Authenticator(REALM, accounts, NonceBook(secret, 1, 300), secret)
    return SipFront(
        TransactionLayer(TimerConfig(), random.Random(1)),
        auth,
        AuthGuard(GuardConfig(**guard)),  # type: ignore[arg-type]
        Registrar(RegistrarConfig()),
        random.Random(2),
        wall_clock=lambda now: now + 1_800_000_000.0,
    )


def request(
    method: str = "REGISTER", user: str = "101", extra: str = "", branch: str = "b1"
) -> bytes:
    return (
        f"{method} sip:{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK{branch};rport\r\n"
        f"From: <sip:{user}@{REALM}>;tag=f1\r\nTo: <sip:{user}@{REALM}>\r\n"
        f"Call-ID: c-{branch}\r\nCSeq: 1 {method}\r\n"
        f"Contact: <sip:{user}@10.0.0.2:5062>\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def answers(actions: list[object]) -> list[Response]:
    out = []
    for action in actions:
        if isinstance(action, Send):
            message = parse_message(bytes(action.message))
            assert isinstance(message, Response)
            out.append(message)
    return out


def authorization(challenge: Response, user: str, password: str, method: str = "REGISTER") -> str:
    header = challenge.get("WWW-Authenticate") or ""
    nonce = header.split('nonce="')[1].split('"')[0]
    creds = Credentials(user, REALM, nonce, f"sip:{REALM}", "", "MD5", "c0ffee", "auth", "00000001")
    response = expected_response(creds, ha1("MD5", user, REALM, password), method)
    return (
        f'Authorization: Digest username="{user}", realm="{REALM}", nonce="{nonce}", '
        f'uri="sip:{REALM}", response="{response}", algorithm=MD5, cnonce="c0ffee", '
        f"qop=auth, nc=00000001\r\n"
    )


def test_register_challenge_then_200_and_rport_filled_in() -> None:
    front = make_front()
    (challenge,) = answers(front.receive(request(), PHONE, 0.0))
    assert challenge.status == 401
    assert [
        v.split("algorithm=")[1].split(",")[0] for v in challenge.get_all("WWW-Authenticate")
    ] == [
        "MD5",
        "SHA-256",
        "SHA-512-256",
    ]
    assert challenge.top_via().param("rport") == "5062"
    assert challenge.top_via().param("received") == "192.0.2.7"
    actions = front.receive(
        request(extra=authorization(challenge, "101", "pw-101-secret"), branch="b2"), PHONE, 0.1
    )
    (ok,) = answers(actions)
    assert ok.status == 200 and ok.get("Contact") == "<sip:101@10.0.0.2:5062>;expires=3600"
    (persist,) = [a for a in actions if isinstance(a, Persist)]
    assert isinstance(persist.change, Upsert) and persist.change.binding.source_host == "192.0.2.7"
    # A retransmission of the authenticated REGISTER is answered from the transaction.
    (again,) = answers(
        front.receive(
            request(extra=authorization(challenge, "101", "pw-101-secret"), branch="b2"), PHONE, 0.6
        )
    )
    assert again.status == 200


def test_unknown_and_known_users_get_the_same_answers() -> None:
    front = make_front()
    (known,) = answers(front.receive(request(user="101"), PHONE, 0.0))
    (unknown,) = answers(front.receive(request(user="999", branch="b9"), PHONE, 0.0))

    def strip(r: Response) -> list[str]:  # the challenges without their nonces
        return [v.split("nonce=")[0] + v.split('", ', 2)[-1] for v in r.get_all("WWW-Authenticate")]

    assert known.status == unknown.status == 401 and strip(known) == strip(unknown)
    (wrong,) = answers(
        front.receive(request(extra=authorization(known, "101", "nope"), branch="c1"), PHONE, 1.0)
    )
    (ghost,) = answers(
        front.receive(
            request(user="999", extra=authorization(unknown, "999", "nope"), branch="c2"),
            PHONE,
            1.0,
        )
    )
    assert wrong.status == ghost.status == 401


def test_five_failures_lock_the_address_and_log_it() -> None:
    front = make_front()
    locks: list[Locked] = []
    for i in range(5):
        (challenge,) = answers(front.receive(request(branch=f"x{i}"), PHONE, float(i)))
        actions = front.receive(
            request(extra=authorization(challenge, "101", "bad"), branch=f"y{i}"), PHONE, float(i)
        )
        locks += [a for a in actions if isinstance(a, Locked)]
    assert [lock.lockout.kind for lock in locks] == [LockKind.ADDRESS]
    (refused,) = answers(front.receive(request(branch="z"), PHONE, 10.0))
    assert refused.status == 403


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request().replace(b"Call-ID: c-b1\r\n", b""), 400),
        (request().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (request(extra="Require: foo, path\r\n"), 420),
        (request(method="OPTIONS"), 200),
        (request(method="INVITE"), 401),
    ],
)
def test_answers_without_credentials(raw: bytes, status: int) -> None:
    (send,) = [a for a in make_front().receive(raw, PHONE, 0.0) if isinstance(a, Send)]
    answer = send.message
    assert isinstance(answer, Response)
    assert answer.status == status
    if status == 420:
        assert answer.get("Unsupported") == "foo"
    if status == 400:
        assert answer.reason == "missing Call-ID header"


@pytest.mark.parametrize(
    "raw", [b"", b"\r\n\r\n", b"garbage", b"SIP/2.0 200 OK\r\n\r\n", request()[:60]]
)
def test_garbage_gets_no_answer(raw: bytes) -> None:
    assert answers(make_front().receive(raw, PHONE, 0.0)) == []


def test_flood_from_an_untrusted_address_is_throttled() -> None:
    front = make_front(unauth_rate=10, unauth_burst=20)
    answered = sum(
        len(answers(front.receive(request(branch=f"f{i}"), PHONE, 0.0))) for i in range(100)
    )
    assert answered == 20
