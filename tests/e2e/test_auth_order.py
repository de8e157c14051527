"""Challenge order: MD5 first by default, per-extension order set with `yakyak ext auth`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RawSip, YakyakServer

pytestmark = pytest.mark.e2e

RELOADED = r"directory or lockouts changed: reloaded"


def offered(sip: RawSip, user: str) -> list[str]:
    answer = sip.exchange(sip.request("REGISTER", user))
    assert answer is not None and answer.status == 401
    return [v.split("algorithm=")[1].split(",")[0] for v in answer.get_all("WWW-Authenticate")]


def test_default_and_per_extension_order(
    yakyak_server: YakyakServer, raw_sip: Callable[..., RawSip]
) -> None:
    sip = raw_sip(yakyak_server)
    assert offered(sip, "101") == ["MD5", "SHA-256", "SHA-512-256"]
    mark = yakyak_server.log_mark()
    yakyak_server.cli("ext", "auth", "101", "--algorithms", "SHA-256")
    assert yakyak_server.wait_for_log(RELOADED, 5.0, since=mark), yakyak_server.log()
    assert offered(sip, "101") == ["SHA-256"]
    assert offered(sip, "102") == ["MD5", "SHA-256", "SHA-512-256"]
