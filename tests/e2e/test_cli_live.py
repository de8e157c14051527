"""`yakyak ext add` / `ext del` on a running server's data dir take effect without a
restart: the server rereads the directory about every second and logs that it did."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Extension, SippResult, SippRunner, YakyakServer

pytestmark = pytest.mark.e2e

FAST = 200.0  # calls/s, so sipp exits right after its call
RELOADED = r"directory or lockouts changed: reloaded"
RELOAD_TIMEOUT = 5.0  # s


def register(server: YakyakServer, sipp: SippRunner, ext: Extension) -> SippResult:
    return sipp("register_auth.xml", server, users=[ext], rate=FAST)


def test_extension_added_while_serving_can_register(
    yakyak_server: YakyakServer, sipp: SippRunner, extension_record: type[Extension]
) -> None:
    dave = extension_record("104", "e2e-pass-104", "Dave")
    before = register(yakyak_server, sipp, dave)
    assert before.returncode != 0, before.describe()
    mark = yakyak_server.log_mark()

    yakyak_server.cli("ext", "add", dave.number, "--password", dave.password)

    assert yakyak_server.wait_for_log(RELOADED, RELOAD_TIMEOUT, since=mark), yakyak_server.log()
    after = register(yakyak_server, sipp, dave)
    assert after.returncode == 0, after.describe()
    assert yakyak_server.wait_for_contacts({"104": 1})["104"] == 1


def test_extension_deleted_while_serving_cannot_register(
    yakyak_server: YakyakServer, sipp: SippRunner
) -> None:
    bob = yakyak_server.extension("102")
    before = register(yakyak_server, sipp, bob)
    assert before.returncode == 0, before.describe()
    mark = yakyak_server.log_mark()

    yakyak_server.cli("ext", "del", bob.number)

    assert yakyak_server.wait_for_log(RELOADED, RELOAD_TIMEOUT, since=mark), yakyak_server.log()
    after = register(yakyak_server, sipp, bob)
    assert after.returncode != 0, after.describe()
    # Refused the way a wrong password is: challenged again, never 200.
    assert "SIP/2.0 401 Unauthorized" in after.messages, after.describe()
    assert "SIP/2.0 200" not in after.messages, after.describe()
    assert "102" not in yakyak_server.contacts()


@pytest.mark.parametrize(
    ("board", "says"),
    [
        ("nosuch", "unknown board 'nosuch'; known boards: bbb, rpi4, rpi5, sim"),
        ("rpi4", "board 'rpi4': missing"),  # no line-interface board on a CI machine
    ],
)
def test_serve_refuses_an_unknown_board_or_missing_devices(
    tmp_path: Path, board: str, says: str
) -> None:
    data = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # never bound: refused first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yakyak = [sys.executable, "-m", "appliance"]
    init = [*yakyak, "init", "--data", str(data), "--admin-password", "e2e-admin-pw"]
    subprocess.run(init, cwd=tmp_path, capture_output=True, timeout=30, check=True)
    result = subprocess.run(
        [*yakyak, "serve", "--data", str(data), "--board", board, "--sip", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert says in result.stdout + result.stderr
