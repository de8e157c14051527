"""Brute-force protection as an attacker and an administrator see it (appliance/pbx/guard.py).

From an untrusted address, 5 failures lock the address out; from an address that has
registered successfully, they lock only that (address, extension) pair. `yakyak lockout
list` shows lockouts and `yakyak lockout clear` lifts them while the server runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SippResult, SippRunner, YakyakServer

pytestmark = pytest.mark.e2e

FAST = 200.0  # calls/s: sipp paces calls over calls/rate s and exits after the last
MAX_FAILURES = 5  # [auth] max_failures default
RELOADED = r"directory or lockouts changed: reloaded"
RELOAD_TIMEOUT = 5.0  # s: the server rereads the lockout table about every second
LOG_TIMEOUT = 5.0  # s


def fail_five_times(server: YakyakServer, sipp: SippRunner, number: str) -> None:
    """Five REGISTERs with a wrong password; the server refuses each (401, 407 or 403),
    records the lockout and rereads its table (so a later reload is someone else's)."""
    mark = server.log_mark()
    wrong = sipp(
        "register_wrong_password.xml",
        server,
        calls=MAX_FAILURES,
        users=[server.extension(number)],
        rate=FAST,
    )
    assert (wrong.returncode, wrong.successful) == (0, MAX_FAILURES), wrong.describe()
    assert server.wait_for_log(r"WARNING.*lockout: ", LOG_TIMEOUT, since=mark), server.log()
    assert server.wait_for_log(RELOADED, RELOAD_TIMEOUT, since=mark), server.log()


def register(server: YakyakServer, sipp: SippRunner, number: str) -> SippResult:
    return sipp("register_auth.xml", server, users=[server.extension(number)], rate=FAST)


def assert_refused(server: YakyakServer, sipp: SippRunner, number: str) -> None:
    """The right password for `number` gets 403 Forbidden, never 200."""
    refused = sipp("register_refused.xml", server, users=[server.extension(number)], rate=FAST)
    assert refused.returncode == 0, refused.describe()
    assert "SIP/2.0 403 Forbidden" in refused.messages, refused.describe()
    assert "SIP/2.0 200" not in refused.messages, refused.describe()


def registered(result: SippResult) -> bool:
    return result.returncode == 0


def clear(server: YakyakServer, target: str) -> str:
    """`yakyak lockout clear TARGET`, then waits for the server to reload its table."""
    mark = server.log_mark()
    lifted = server.cli("lockout", "clear", target).stdout
    assert server.wait_for_log(RELOADED, RELOAD_TIMEOUT, since=mark), server.log()
    return lifted


def test_untrusted_address_locked_out_until_cleared(
    yakyak_server: YakyakServer, sipp: SippRunner
) -> None:
    server = yakyak_server  # fresh: 127.0.0.1 has never authenticated here

    fail_five_times(server, sipp, "101")

    line = server.wait_for_log(r"WARNING.*lockout: address 127\.0\.0\.1 ", LOG_TIMEOUT)
    assert line is not None, server.log()
    assert_refused(server, sipp, "101")
    assert_refused(server, sipp, "103")  # the whole address, whichever extension
    listed = server.cli("lockout", "list").stdout
    assert any(row.split()[:2] == ["address", "127.0.0.1"] for row in listed.splitlines()), listed

    lifted = clear(server, "127.0.0.1")

    assert "lifted 1 lockout(s)" in lifted
    again = register(server, sipp, "101")
    assert registered(again), again.describe()
    assert "no lockouts" in server.cli("lockout", "list").stdout


def test_trusted_address_locks_only_the_attacked_extension(
    yakyak_server: YakyakServer, sipp: SippRunner
) -> None:
    server = yakyak_server
    first = register(server, sipp, "101")
    assert registered(first), first.describe()  # 127.0.0.1 is now trusted

    fail_five_times(server, sipp, "102")

    pair = r"WARNING.*lockout: address-extension 127\.0\.0\.1/102 "
    line = server.wait_for_log(pair, LOG_TIMEOUT)
    assert line is not None, server.log()
    assert_refused(server, sipp, "102")
    for number in ("101", "103"):
        other = register(server, sipp, number)
        assert registered(other), other.describe()
    listed = server.cli("lockout", "list").stdout
    rows = [row.split()[:2] for row in listed.splitlines()[1:]]
    assert rows == [["address-extension", "127.0.0.1/102"]], listed
    expected = {"101": 2, "102": 0, "103": 1}  # 101 from two sipp ports, 102 never
    assert server.wait_for_contacts(expected) == expected

    lifted = clear(server, "102")  # an extension lifts the pairs naming it

    assert "lifted 1 lockout(s)" in lifted
    again = register(server, sipp, "102")
    assert registered(again), again.describe()
