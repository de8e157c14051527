"""REGISTER with digest auth from sipp, checked through `yakyak ext list` (RFC 3261 §10).

Registration, refresh and removal (one contact, and `Contact: *`) over UDP; the same
over TCP is in test_tcp.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SippRunner, YakyakServer

pytestmark = pytest.mark.e2e

# sipp spreads `calls` evenly over calls/rate seconds and exits after the last one, so
# its default pace of one second per run would dominate these tests.
FAST = 200.0  # calls/s
ALL_ONE = {"101": 1, "102": 1, "103": 1}
ALL_NONE = {"101": 0, "102": 0, "103": 0}


def test_three_extensions_register(yakyak_server: YakyakServer, sipp: SippRunner) -> None:
    assert yakyak_server.contacts() == ALL_NONE

    result = sipp("register_auth.xml", yakyak_server, rate=FAST, calls=3)

    assert result.returncode == 0, result.describe()
    assert (result.successful, result.failed) == (3, 0), result.describe()
    assert result.messages.count("SIP/2.0 401 Unauthorized") == 3, result.describe()
    assert result.messages.count("SIP/2.0 200 OK") == 3, result.describe()
    assert yakyak_server.wait_for_contacts(ALL_ONE) == ALL_ONE


def test_refresh_keeps_one_contact_per_extension(
    yakyak_server: YakyakServer, sipp: SippRunner
) -> None:
    """The same contact registered twice is one binding, refreshed (§10.3 step 7)."""
    first = sipp("register_auth.xml", yakyak_server, rate=FAST, calls=3)
    assert first.returncode == 0, first.describe()
    port = first.local_port
    assert yakyak_server.wait_for_contacts(ALL_ONE) == ALL_ONE

    again = sipp("register_auth.xml", yakyak_server, rate=FAST, calls=3, local_port=port)

    assert again.returncode == 0, again.describe()
    assert (again.successful, again.failed) == (3, 0), again.describe()
    assert yakyak_server.contacts() == ALL_ONE
    # Each refresh's 200 lists the extension's one current binding (§10.3 step 8).
    assert again.messages.count(";expires=") == 3, again.describe()


def test_unregister_removes_that_contact(yakyak_server: YakyakServer, sipp: SippRunner) -> None:
    alice = [yakyak_server.extension("101")]
    registered = sipp("register_auth.xml", yakyak_server, rate=FAST, users=alice)
    assert registered.returncode == 0, registered.describe()
    port = registered.local_port
    other = sipp("register_auth.xml", yakyak_server, rate=FAST, users=alice)
    assert other.returncode == 0, other.describe()
    assert yakyak_server.wait_for_contacts({"101": 2}) == {**ALL_NONE, "101": 2}

    removed = sipp("unregister.xml", yakyak_server, rate=FAST, users=alice, local_port=port)

    assert removed.returncode == 0, removed.describe()
    assert yakyak_server.wait_for_contacts({"101": 1}) == {**ALL_NONE, "101": 1}


def test_unregister_all_removes_every_contact(
    yakyak_server: YakyakServer, sipp: SippRunner
) -> None:
    alice = [yakyak_server.extension("101")]
    for _ in range(2):
        result = sipp("register_auth.xml", yakyak_server, rate=FAST, users=alice)
        assert result.returncode == 0, result.describe()
    bob = sipp(
        "register_auth.xml", yakyak_server, rate=FAST, users=[yakyak_server.extension("102")]
    )
    assert bob.returncode == 0, bob.describe()
    assert yakyak_server.wait_for_contacts({"101": 2, "102": 1})["101"] == 2

    removed = sipp("unregister_all.xml", yakyak_server, rate=FAST, users=alice)

    assert removed.returncode == 0, removed.describe()
    expected = {"101": 0, "102": 1, "103": 0}
    assert yakyak_server.wait_for_contacts(expected) == expected
