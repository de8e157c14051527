"""Unknown extensions look exactly like known ones (README "Security defaults").

A REGISTER or INVITE for 999 (no such extension) and for 101 get the same answers: the
same 401 challenges, differing only in the nonce (RFC 7616 §3.3), and the same refusal
of a wrong password. Only the right password for 101 tells them apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RawSip, SipResponse, YakyakServer

    RawSipFactory = Callable[[YakyakServer], RawSip]

pytestmark = pytest.mark.e2e

NONCE = re.compile(r'nonce="[^"]*"')
ALGORITHMS = ["MD5", "SHA-256", "SHA-512-256"]  # README: MD5 first, then RFC 8760's
AUTHENTICATED = {"REGISTER": 200, "INVITE": 480}  # 102 has no registered phone


def challenges(response: SipResponse) -> list[str]:
    """The WWW-Authenticate values, in order, with each nonce blanked."""
    return [NONCE.sub('nonce="*"', value) for value in response.get_all("WWW-Authenticate")]


def algorithms(response: SipResponse) -> list[str]:
    return re.findall(r"algorithm=([\w-]+)", " ".join(challenges(response)))


def nonces(response: SipResponse) -> set[str]:
    return set(NONCE.findall(" ".join(response.get_all("WWW-Authenticate"))))


def shape(response: SipResponse) -> tuple[int, str, list[str], list[str]]:
    """What must not depend on the extension: status, reason, header names, challenges."""
    names = [name for name, _ in response.headers]
    return response.status, response.reason, names, challenges(response)


def request_uri(server: YakyakServer, method: str) -> str:
    return f"sip:{server.domain}" if method == "REGISTER" else f"sip:102@{server.domain}"


def ask(sip: RawSip, method: str, user: str, password: str | None = None) -> SipResponse:
    """`method` from `user`, first without credentials, then (given a password) answering
    the MD5 challenge; returns the last answer. INVITE answers are ACKed."""
    uri = request_uri(sip.server, method)
    request = sip.request(method, user, uri=uri)
    answer = sip.exchange(request)
    assert answer is not None, f"no answer to {method} from {user}"
    if method == "INVITE":
        sip.ack(request, answer)
    if password is None or answer.status != 401:
        return answer
    md5 = next(v for v in answer.get_all("WWW-Authenticate") if "algorithm=MD5" in v)
    auth = sip.digest(md5, method, uri, user, password)
    request = sip.request(method, user, uri=uri, cseq=2, headers=[("Authorization", auth)])
    answer = sip.exchange(request)
    assert answer is not None, f"no answer to {method} from {user} with credentials"
    if method == "INVITE" and answer.status >= 300:
        sip.ack(request, answer)
    return answer


@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_unknown_extension_gets_the_same_answers(
    yakyak_server: YakyakServer, raw_sip: RawSipFactory, method: str
) -> None:
    sip = raw_sip(yakyak_server)
    known = ask(sip, method, "101")
    unknown = ask(sip, method, "999")

    assert known.status == 401, known.raw
    assert shape(unknown) == shape(known), (known.raw, unknown.raw)
    assert algorithms(known) == ALGORITHMS, known.raw
    assert nonces(known).isdisjoint(nonces(unknown)), (known.raw, unknown.raw)  # fresh each time

    wrong = ask(sip, method, "101", password="not-the-password")
    guessed = ask(sip, method, "999", password="any-password")

    assert wrong.status in (401, 403), wrong.raw
    assert shape(guessed) == shape(wrong), (wrong.raw, guessed.raw)

    right = ask(sip, method, "101", password=yakyak_server.extension("101").password)

    assert right.status == AUTHENTICATED[method], right.raw
