"""sipsak as a second, independent peer: OPTIONS, and usrloc REGISTER with digest auth."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SipsakRunner, YakyakServer

pytestmark = pytest.mark.e2e


def test_options_answered_200(yakyak_server: YakyakServer, sipsak: SipsakRunner) -> None:
    result = sipsak(yakyak_server)

    assert result.returncode == 0, result.describe()
    assert "SIP/2.0 200 OK" in result.output, result.describe()
    assert "Via: SIP/2.0/UDP " in result.output, result.describe()
    assert "Allow: " in result.output and "REGISTER" in result.output, result.describe()


def test_usrloc_register_with_right_password(
    yakyak_server: YakyakServer, sipsak: SipsakRunner
) -> None:
    alice = yakyak_server.extension("101")

    result = sipsak(yakyak_server, "-U", "-x", "3600", user=alice.number, password=alice.password)

    assert result.returncode == 0, result.describe()
    assert yakyak_server.wait_for_contacts({"101": 1})["101"] == 1


def test_usrloc_register_with_wrong_password_fails(
    yakyak_server: YakyakServer, sipsak: SipsakRunner
) -> None:
    result = sipsak(yakyak_server, "-U", "-x", "3600", user="101", password="not-the-password")

    assert result.returncode != 0, result.describe()
    assert "authorization failed" in result.output, result.describe()
    assert yakyak_server.contacts()["101"] == 0
