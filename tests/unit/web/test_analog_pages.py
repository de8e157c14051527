"""/analog: the ports as the running PBX sees them, for system:read only."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.live import LiveSnapshot, PortView
from appliance.web.services import WebServices

from .conftest import Client, signed_in
from .test_dashboard import SNAPSHOT, FakeLive


def analog_page(services: WebServices, live: FakeLive | None, username: str = "admin") -> str:
    app, _ = create_app(dataclasses.replace(services, live=live))
    response = signed_in(SecurityHeaders(app), username).get("/analog")
    assert response.status == 200
    return response.text


def test_ports_with_their_roles_states_and_registration(services: WebServices) -> None:
    text = analog_page(services, FakeLive())
    assert "<h1>Analog ports</h1>" in text
    assert (
        "<tr><td>1</td><td>FXS</td><td>Phone &lt;1&gt;</td><td>extension 201</td>"
        "<td>idle</td><td>yes</td></tr>"
    ) in text
    assert (
        "<tr><td>3</td><td>FXO</td><td>Line</td><td>line to 500</td><td>idle</td><td></td></tr>"
        in text
    )
    assert "Line controller: up." in text
    assert "As of 2023-11-14 22:13:20 UTC." in text
    assert '<section id="live" data-events="/events">' in text  # live.js keeps it current
    assert '<script src="/static/live.js" defer></script>' in text
    assert "fxs_extensions" in text  # how to give a port its role


@pytest.mark.parametrize(
    ("up", "ports", "says"),
    [
        (False, SNAPSHOT.ports, "Line controller: DOWN (no answer from the board)."),
        (None, (), "Line controller: not running (no analog ports)."),
    ],
)
def test_the_line_controller_state(
    services: WebServices, up: bool | None, ports: tuple[PortView, ...], says: str
) -> None:
    snapshot: LiveSnapshot = dataclasses.replace(SNAPSHOT, line_controller_up=up, ports=ports)
    text = analog_page(services, FakeLive(snapshot))
    assert says in text
    if not ports:
        assert "No analog ports are running." in text


def test_without_a_pbx_the_page_says_not_available(services: WebServices) -> None:
    text = analog_page(services, None)
    assert "Live state not available: this web server runs without a PBX." in text
    assert "Line controller: not known." in text and "Not available." in text


def test_only_roles_with_system_read_see_it(services: WebServices, alice: Client) -> None:
    assert "Analog ports" in analog_page(services, FakeLive(), "oper")
    assert alice.get("/analog").status == 403
    assert 'href="/analog"' not in alice.get("/").text  # nor in the menu


def test_in_the_menu_after_the_dashboard(admin: Client, app: Any) -> None:
    text = admin.get("/").text
    assert text.index('<a href="/">Dashboard</a>') < text.index(
        '<a href="/analog">Analog ports</a>'
    )
