"""Bad input from the network (STYLE §2.5: it becomes a protocol answer, or silence).

Over UDP: malformed requests get 400 with a reason naming the problem (RFC 3261 §21.4.1),
SIP/3.0 gets 505 (§21.5.7), an unknown Require gets 420 with Unsupported (§8.2.2.3);
garbage and truncated datagrams get nothing; a burst of 2,000 garbled datagrams leaves
the server answering. TCP framing is in test_tcp.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RawSip, SippRunner, YakyakServer

    RawSipFactory = Callable[[YakyakServer], RawSip]

pytestmark = pytest.mark.e2e

ANSWER_TIMEOUT = 2.0  # s, for an answer on loopback
CLOSE_TIMEOUT = 5.0  # s, for the server to close a TCP connection it gave up on
BURST = 2000  # datagrams
SEED = 20261125


def edit(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with `old` replaced once; fails loudly if the request changed shape."""
    if old not in data:
        raise ValueError(f"{old!r} not in the request")
    return data.replace(old, new, 1)


# name -> (how to break a fresh REGISTER from 101, status, reason that must appear)
MALFORMED: dict[str, tuple[Callable[[bytes], bytes], int, str]] = {
    "bad CSeq number": (
        lambda r: edit(r, b"CSeq: 1 REGISTER", b"CSeq: one REGISTER"),
        400,
        "bad CSeq",
    ),
    "CSeq method differs": (
        lambda r: edit(r, b"CSeq: 1 REGISTER", b"CSeq: 1 OPTIONS"),
        400,
        "CSeq method does not match the request method",
    ),
    "header line without a colon": (
        lambda r: edit(r, b"Content-Length", b"no colon here\r\nContent-Length"),
        400,
        "header line without a colon",
    ),
    "two Call-IDs": (
        lambda r: edit(r, b"Content-Length", b"Call-ID: second@e2e\r\nContent-Length"),
        400,
        "more than one Call-ID header",
    ),
    "bad Content-Length": (
        lambda r: edit(r, b"Content-Length: 0", b"Content-Length: zero"),
        400,
        "bad Content-Length",
    ),
    "body shorter than Content-Length": (
        lambda r: edit(r, b"Content-Length: 0", b"Content-Length: 300"),
        400,
        "body shorter than Content-Length",
    ),
    "bad method": (
        lambda r: edit(r, b"REGISTER sip:", b"REG/STER sip:"),
        400,
        "bad method",
    ),
    "bad request line": (
        lambda r: edit(r, b" SIP/2.0\r\n", b"\r\n"),
        400,
        "bad request line",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_request_gets_400_naming_the_problem(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory, case: str
) -> None:
    breaks, status, reason = MALFORMED[case]
    sip = raw_sip(shared_yakyak_server)

    answer = sip.exchange(breaks(sip.request("REGISTER", "101")), ANSWER_TIMEOUT)

    assert answer is not None, f"no answer to a request with {case}"
    assert (answer.status, reason in answer.reason) == (status, True), answer.raw
    assert answer.get("Call-ID") is not None, answer.raw


@pytest.mark.parametrize("header", ["Call-ID", "CSeq", "From", "To"])
def test_request_missing_a_mandatory_header_gets_400_naming_it(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory, header: str
) -> None:
    """RFC 3261 §8.1.1 makes them mandatory; §21.4.1's example reason is this one."""
    sip = raw_sip(shared_yakyak_server)

    answer = sip.exchange(sip.request("REGISTER", "101", omit=[header]), ANSWER_TIMEOUT)

    assert answer is not None, f"no answer to a REGISTER without {header}"
    assert (answer.status, answer.reason) == (400, f"missing {header} header"), answer.raw


def test_bad_header_line_right_after_via_gets_400(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory
) -> None:
    """Parsing stops at the bad line, so only Via is known: enough to route a 400."""
    sip = raw_sip(shared_yakyak_server)
    request = edit(
        sip.request("REGISTER", "101"), b"\r\nMax-Forwards:", b"\r\nno colon\r\nMax-Forwards:"
    )

    answer = sip.exchange(request, ANSWER_TIMEOUT)

    assert answer is not None, "no answer to a REGISTER with a bad line after Via"
    assert answer.status == 400 and "header line without a colon" in answer.reason, answer.raw


def test_sip_3_0_gets_505(shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory) -> None:
    sip = raw_sip(shared_yakyak_server)

    answer = sip.exchange(sip.request("OPTIONS", "101", version="SIP/3.0"), ANSWER_TIMEOUT)

    assert answer is not None
    assert (answer.status, answer.reason) == (505, "Version Not Supported"), answer.raw


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER"])
def test_unknown_require_gets_420_with_unsupported(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory, method: str
) -> None:
    sip = raw_sip(shared_yakyak_server)
    request = sip.request(method, "101", headers=[("Require", "foo, path")])

    answer = sip.exchange(request, ANSWER_TIMEOUT)

    assert answer is not None
    assert answer.status == 420, answer.raw
    assert answer.get_all("Unsupported") == ["foo"], answer.raw  # path is supported


def call_id(message: bytes) -> bytes:
    return message.split(b"\r\nCall-ID: ", 1)[1].split(b"\r\n", 1)[0]


def unanswerable(sip: RawSip) -> dict[str, bytes]:
    """Input no answer can be built for: not SIP, cut short, or nowhere to reply."""
    register = sip.request("REGISTER", "101")
    return {
        "binary garbage": bytes(range(256)),
        "text garbage": b"hello yakyak, are you there?\r\n\r\n",
        "cut in the request line": register[:9],
        "cut in the headers": register[: register.index(b"Call-ID")],
        "no empty line after the headers": register[: register.index(b"\r\n\r\n")],
        "no Via to answer to": edit(register, b"Via: ", b"X-Not-Via: "),
        "a response nobody asked for": b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "an ACK with a broken CSeq": edit(
            sip.request("ACK", "101"), b"CSeq: 1 ACK", b"CSeq: x ACK"
        ),
        "CRLF keep-alive": b"\r\n\r\n",
    }


def test_unanswerable_datagrams_get_silence(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory
) -> None:
    sip = raw_sip(shared_yakyak_server)
    for data in unanswerable(sip).values():
        sip.send(data)
    probe = sip.request("OPTIONS", "e2e")

    sip.send(probe)

    # One socket, one server loop, loopback: answers come back in the order of the
    # datagrams, so the first datagram back must be the 200 for the probe.
    sip.sock.settimeout(ANSWER_TIMEOUT)
    first = sip.sock.recv(65535)
    assert first.startswith(b"SIP/2.0 200 OK\r\n"), first
    assert call_id(first) == call_id(probe), first


def garble(rng: random.Random, samples: list[bytes]) -> bytes:
    """Random bytes, or a real request with bytes flipped, cut, duplicated or spliced."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 1400))
    data = bytearray(rng.choice(samples))
    if kind == 1:
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:
        del data[rng.randrange(1, len(data)) :]
    elif kind == 3:
        start = rng.randrange(len(data))
        data[start:start] = data[start : start + rng.randrange(1, 200)]
    else:
        other = rng.choice(samples)
        data = data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]
    return bytes(data)


@pytest.mark.timeout(90)
def test_burst_of_garbled_datagrams(
    yakyak_server: YakyakServer, raw_sip: RawSipFactory, sipp: SippRunner
) -> None:
    rng = random.Random(SEED)
    attacker = raw_sip(yakyak_server)
    samples = [
        attacker.request("REGISTER", "101"),
        attacker.request("OPTIONS", "102"),
        attacker.request("INVITE", "103", uri=f"sip:101@{yakyak_server.domain}"),
        attacker.request("REGISTER", "999", headers=[("Expires", "60")]),
        *unanswerable(attacker).values(),
    ]

    for _ in range(BURST):
        attacker.send(garble(rng, samples))

    assert yakyak_server.process.poll() is None, yakyak_server.log()
    probe = raw_sip(yakyak_server).options(timeout=5.0)
    assert probe is not None and probe.status == 200, yakyak_server.log()[-4000:]
    options = sipp("options.xml", yakyak_server, rate=200.0)
    assert options.returncode == 0, options.describe()
    assert "Traceback" not in yakyak_server.log(), yakyak_server.log()[-4000:]
