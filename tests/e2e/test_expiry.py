"""Binding lifetimes (RFC 3261 §10.2.1, §10.3 step 7): expiry, and 423 below Min-Expires."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ServerFactory, SippRunner, SipsakRunner, YakyakServer

pytestmark = pytest.mark.e2e

FAST = 200.0  # calls/s, so sipp exits right after its one call
SHORT_EXPIRES = 3  # s: long enough to see the binding in `ext list` first
EXPIRY_TIMEOUT = 15.0  # s after the 200: the lifetime plus the server's periodic sweep


@pytest.mark.timeout(60)
def test_binding_expires(yakyak_servers: ServerFactory, sipp: SippRunner) -> None:
    server = yakyak_servers(config={"sip.min_expires": "1"})
    alice = [server.extension("101")]

    result = sipp(
        "register_expires.xml",
        server,
        users=alice,
        rate=FAST,
        extra=("-key", "expires", str(SHORT_EXPIRES)),
    )

    assert result.returncode == 0, result.describe()
    assert f";expires={SHORT_EXPIRES}" in result.messages, result.describe()
    assert server.wait_for_contacts({"101": 1}, timeout=SHORT_EXPIRES - 1)["101"] == 1
    # `ext list` counts unexpired bindings, so this is what an administrator sees; the
    # sweep that deletes the row is not visible from outside.
    assert server.wait_for_contacts({"101": 0}, timeout=EXPIRY_TIMEOUT)["101"] == 0


def test_expires_below_minimum_gets_423(yakyak_server: YakyakServer, sipsak: SipsakRunner) -> None:
    """sipsak asks for Expires 15 when not told otherwise; our default minimum is 60."""
    alice = yakyak_server.extension("101")

    result = sipsak(yakyak_server, "-U", user=alice.number, password=alice.password)

    assert result.returncode != 0, result.describe()
    assert "SIP/2.0 423 Interval Too Brief" in result.output, result.describe()
    assert "Min-Expires: 60" in result.output, result.describe()
    assert yakyak_server.contacts()["101"] == 0
