"""/analog: the ports as the running PBX sees them, for system:read only."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from appliance.app import port_roles
from appliance.store.settings import ANALOG_ROLES_KEY, get_setting
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


def roles_client(services: WebServices) -> Client:
    app, _ = create_app(dataclasses.replace(services, live=FakeLive()))
    return signed_in(SecurityHeaders(app), "admin")


def test_roles_are_shown_as_running_and_saved_for_the_next_start(services: WebServices) -> None:
    admin = roles_client(services)
    text = admin.get("/analog").text
    assert 'id="role-1"' in text and 'value="201"' in text  # as the port runs now
    assert 'id="role-3"' in text and 'value="500"' in text
    form = {f"role-{p.port}": "" for p in SNAPSHOT.ports}
    form |= {"role-1": "101", "role-3": "*97", "csrf_token": admin.csrf()}
    response = admin.post("/analog", form=form)
    assert (response.status, response.header("Location")) == (303, "/analog?saved=1")
    assert get_setting(services.db, ANALOG_ROLES_KEY)["fxs"]["1"] == "101"  # type: ignore[index]
    assert "take their new roles when YakYak restarts" in admin.get("/analog?saved=1").text
    assert 'value="101"' in admin.get("/analog").text  # the saved role is what is shown
    assert [e.action for e in services.audit.entries(5)][0] == "analog.roles"


def test_a_role_that_cannot_work_is_refused_next_to_its_field(services: WebServices) -> None:
    admin = roles_client(services)
    form = {f"role-{p.port}": "" for p in SNAPSHOT.ports}
    form |= {"role-1": "777", "role-3": "5a0", "csrf_token": admin.csrf()}
    response = admin.post("/analog", form=form)
    assert response.status == 400
    assert "there is no extension 777: add it first" in response.text
    assert "a number to call: digits, *, # and +" in response.text
    assert 'value="777"' in response.text  # what was typed is kept
    assert get_setting(services.db, ANALOG_ROLES_KEY) is None


def test_roles_saved_in_the_web_ui_go_over_the_files() -> None:
    fxs, fxo = port_roles(
        {1: "201", 2: "202"},
        {3: "500"},
        {"fxs": {"1": "101", "2": ""}, "fxo": {"3": "5a0"}, "other": 5},
    )
    assert fxs == {1: "101"}  # saved empty: no role
    assert fxo == {3: "500"}  # not a number: the file's stays
    assert port_roles({1: "201"}, {}, None) == ({1: "201"}, {})
