"""An extension attacked from many addresses closes to addresses that never registered as
it (appliance/pbx/guard.py: 20 failures in 300 s, all addresses together), however the
attacker paces the addresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RawSip, SipResponse, YakyakServer

pytestmark = pytest.mark.e2e

RELOADED = r"directory or lockouts changed: reloaded"
ATTACKERS = [f"127.0.0.{n}" for n in range(2, 8)]  # 6 x 5 = 30 failures > 20


def register(sip: RawSip, user: str, password: str) -> SipResponse:
    uri = f"sip:{sip.server.domain}"
    first = sip.exchange(sip.request("REGISTER", user))
    assert first is not None
    if first.status != 401:
        return first
    md5 = next(v for v in first.get_all("WWW-Authenticate") if "algorithm=MD5" in v)
    auth = sip.digest(md5, "REGISTER", uri, user, password)
    answer = sip.exchange(sip.request("REGISTER", user, cseq=2, headers=[("Authorization", auth)]))
    assert answer is not None
    return answer


@pytest.mark.timeout(60)
def test_extension_locked_after_failures_from_addresses_one_per_second(
    yakyak_server: YakyakServer, raw_sip: Callable[..., RawSip]
) -> None:
    server = yakyak_server
    for address in ATTACKERS:
        mark = server.log_mark()
        sip = raw_sip(server, source=address)
        for _ in range(5):
            assert register(sip, "101", "guess").status in (401, 403)
        if server.wait_for_log(r"lockout: extension 101", 0.2, since=mark):
            break  # 20 failures in all: the extension is closed to strangers
        # The address is locked and recorded; let the server pick its own write up.
        assert server.wait_for_log(RELOADED, 5.0, since=mark), server.log()

    listed = server.cli("lockout", "list").stdout
    assert any(row.split()[:2] == ["extension", "101"] for row in listed.splitlines()), listed
    stranger = register(raw_sip(server, source="127.0.0.50"), "101", "e2e-pass-101")
    assert stranger.status == 403, stranger.raw
