"""Bindings survive a clean restart: SIGTERM commits pending writes, start-up reloads them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ServerFactory, SippRunner

pytestmark = pytest.mark.e2e

FAST = 200.0  # calls/s, so sipp exits right after its calls


def test_registrations_survive_restart(yakyak_servers: ServerFactory, sipp: SippRunner) -> None:
    first = yakyak_servers()
    registered = sipp("register_auth.xml", first, calls=3, rate=FAST)
    assert registered.returncode == 0, registered.describe()

    # At once, without waiting for `ext list`: shutdown must commit what is pending.
    assert first.stop() == 0, first.log()
    assert re.search(r"stopped cleanly", first.log()), first.log()
    second = yakyak_servers(first.data)

    ready = second.wait_for_log(r"\bready\b", timeout=0)
    assert ready is not None and "3 registrations restored" in ready, second.log()
    assert second.contacts() == {"101": 1, "102": 1, "103": 1}
