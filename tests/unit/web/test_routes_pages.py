"""Routes pages and API: the dialplan in rank order, yakyak.toml's routes read-only and
first, add/edit/delete checked by the dialplan's parser with errors beside the fields,
targets chosen from what exists; every change audited."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import pytest

from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import (
    AnalogTarget,
    ExtensionTarget,
    IvrTarget,
    RejectTarget,
    Route,
    VoicemailTarget,
)
from appliance.store.ivr import save_ivr
from appliance.store.routes import add_route, load_routes
from appliance.store.voicemail import VoicemailStore
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.live import LiveSnapshot, PortView
from appliance.web.services import WebServices

from .conftest import Client, signed_in

TOML = """\
[dialplan]
routes = [
  { name = "operator", pattern = "0", target = { type = "extension", number = "101" } },
  { name = "outside", pattern = "_9.", target = { type = "reject", cause = "call_rejected" } },
]
"""


class FakeLive:
    """A LiveSource whose board has ports 1 (FXS) and 3 (FXO)."""

    def snapshot(self, timeout: float = 2.0) -> LiveSnapshot:
        ports = (
            PortView(1, "fxs", "FXS 1", "extension 201", "idle", True),
            PortView(3, "fxo", "FXO 3", "line to 500", "idle", None),
        )
        return LiveSnapshot(1.0, (), (), ports, True)


@pytest.fixture
def with_toml(services: WebServices, tmp_path: Path) -> WebServices:
    (tmp_path / "yakyak.toml").write_text(TOML, encoding="utf-8")
    VoicemailStore(services.db, tmp_path / "voicemail").create_mailbox("102", None)
    save_ivr(services.db, {"menus": {"main": {"greeting": ["welcome"]}}})
    return dataclasses.replace(services, data_dir=tmp_path)


def client_for(services: WebServices, username: str = "admin") -> Client:
    app, _ = create_app(services)
    return signed_in(SecurityHeaders(app), username)


@pytest.fixture
def admin_t(with_toml: WebServices) -> Client:
    return client_for(with_toml)


def form(client: Client, **values: str) -> dict[str, str]:
    base = {"name": "", "pattern": "", "target_type": "", "csrf_token": client.csrf()}
    return {**base, **values}


def actions(services: WebServices) -> list[tuple[str, str, str]]:
    return [(e.action, e.target, e.detail) for e in services.audit.entries() if e.action != "login"]


def error_of(text: str, name: str) -> str:
    match = re.search(rf'<p class="error" id="{name}-error">([^<]*)</p>', text)
    assert match, text
    return html.unescape(match.group(1))


def order(text: str) -> list[str]:
    return re.findall(r'<tr id="route-([^"]+)">', text)


def test_the_list_explains_ranking_and_shows_toml_routes_read_only(admin_t: Client) -> None:
    text = admin_t.get("/routes").text
    assert '<a href="/routes">Routes</a>' in text  # in the menu
    assert 'id="ranking"' in text and "fewest wildcard positions" in text
    assert order(text) == ["operator", "extensions", "outside", "otherwise"]
    assert re.search(r'id="route-operator">.*?<td class="source">yakyak.toml</td>', text)
    assert '<a href="/routes/operator">' not in text  # not editable here
    assert 'id="route-form"' in text


def test_routes_are_listed_in_the_order_the_dialplan_tries_them(
    admin_t: Client, with_toml: WebServices
) -> None:
    db = with_toml.db
    add_route(db, Route("_X.", IvrTarget("main"), "anything"))
    add_route(db, Route("_1[2-4]X", ExtensionTarget("102"), "narrow"))
    add_route(db, Route("_1XX", ExtensionTarget("101"), "wide"))
    add_route(db, Route("555", RejectTarget(Cause.USER_BUSY), "busy"))
    text = admin_t.get("/routes").text
    assert order(text) == [
        "operator",
        "busy",
        "extensions",
        "narrow",  # one wildcard position: X
        "wide",  # two
        "outside",  # open-ended, from yakyak.toml, so before the later one on a tie
        "anything",
        "otherwise",
    ]
    assert '<a href="/routes/narrow">narrow</a>' in text


def test_try_a_number(admin_t: Client) -> None:
    text = admin_t.get("/routes?number=912345").text
    assert "912345</code>: reject: Call rejected (cause 21) (by route outside)" in text
    text = admin_t.get("/routes?number=102").text
    assert "ring extension 102 (by the built-in rule)" in text


def test_add_a_route_with_each_kind_of_target(admin_t: Client, with_toml: WebServices) -> None:
    cases = {
        "to-ext": ("_1XX", "extension", "target_extension", "102"),
        "to-vm": ("800", "voicemail", "target_mailbox", "102"),
        "to-ivr": ("_5XXX", "ivr", "target_ivr", "main"),
        "to-port": ("_7.", "analog", "target_port", "2"),  # no PBX: any port number
        "refuse": ("666", "reject", "target_cause", "user_busy"),
    }
    for name, (pattern, kind, key, value) in cases.items():
        response = admin_t.post(
            "/routes",
            form=form(admin_t, name=name, pattern=pattern, target_type=kind, **{key: value}),
        )
        assert response.status == 303, response.text
        assert response.header("Location") == "/routes?notice=added"
    assert [r.target for r in load_routes(with_toml.db)] == [
        ExtensionTarget("102"),
        VoicemailTarget("102"),
        IvrTarget("main"),
        AnalogTarget(2),
        RejectTarget(Cause.USER_BUSY),
    ]
    assert ("route.create", "to-ivr", "_5XXX") in actions(with_toml)
    assert "The route has been added." in admin_t.get("/routes?notice=added").text


def test_errors_are_shown_beside_the_fields_and_the_values_kept(admin_t: Client) -> None:
    response = admin_t.post(
        "/routes",
        form=form(
            admin_t,
            name="bad name",
            pattern="_1[X",
            target_type="extension",
            target_extension="",
        ),
    )
    assert response.status == 400
    text = response.text
    assert error_of(text, "name").startswith("A route name is 1-64 letters")
    assert error_of(text, "pattern") == "Unclosed '[' in '_1[X'."
    assert 'value="bad name"' in text and 'value="_1[X"' in text
    assert 'id="type-extension" value="extension" checked' in text

    response = admin_t.post("/routes", form=form(admin_t, name="x", pattern="_1XX", target_type=""))
    assert error_of(response.text, "target_type") == "Choose what the route does."

    response = admin_t.post(
        "/routes",
        form=form(admin_t, name="x", pattern="_1XX", target_type="extension", target_extension="7"),
    )
    assert response.status == 400
    assert error_of(response.text, "target_extension") == "No extension 7."
    assert '<option value="7" selected>7 (does not exist)</option>' in response.text

    response = admin_t.post(
        "/routes",
        form=form(admin_t, name="x", pattern="_1XX", target_type="voicemail", target_mailbox="101"),
    )
    assert error_of(response.text, "target_mailbox") == "Extension 101 has no mailbox."

    response = admin_t.post(
        "/routes",
        form=form(admin_t, name="x", pattern="_1XX", target_type="analog", target_port="two"),
    )
    assert error_of(response.text, "target_port") == "Enter the port's number."


def test_a_route_may_not_clash_with_yakyak_toml(admin_t: Client, with_toml: WebServices) -> None:
    response = admin_t.post(
        "/routes",
        form=form(admin_t, name="mine", pattern="_9.", target_type="ivr", target_ivr="main"),
    )
    assert response.status == 400
    assert error_of(response.text, "pattern") == (
        "Pattern '_9.' is used by route 'outside' of yakyak.toml; choose another."
    )
    response = admin_t.post(
        "/routes",
        form=form(admin_t, name="operator", pattern="8", target_type="ivr", target_ivr="main"),
    )
    assert "route 'operator' of yakyak.toml" in error_of(response.text, "name")
    assert load_routes(with_toml.db) == ()


def test_analog_ports_come_from_the_running_pbx(with_toml: WebServices) -> None:
    admin = client_for(dataclasses.replace(with_toml, live=FakeLive()))
    text = admin.get("/routes").text
    assert '<option value="3">port 3</option>' in text
    response = admin.post(
        "/routes",
        form=form(admin, name="p", pattern="_7.", target_type="analog", target_port="2"),
    )
    assert error_of(response.text, "target_port") == "The board has no analog port 2."
    response = admin.post(
        "/routes",
        form=form(admin, name="p", pattern="_7.", target_type="analog", target_port="3"),
    )
    assert response.status == 303


def test_edit_rename_and_delete(admin_t: Client, with_toml: WebServices) -> None:
    add_route(with_toml.db, Route("_1XX", ExtensionTarget("101"), "local"))
    page_text = admin_t.get("/routes/local").text
    assert 'value="_1XX"' in page_text
    assert '<option value="101" selected>101</option>' in page_text
    bad = admin_t.post(
        "/routes/local",
        form=form(admin_t, name="local", pattern="_1XX", target_type="ivr", target_ivr="nope"),
    )
    assert bad.status == 400
    assert error_of(bad.text, "target_ivr") == "No auto-attendant menu or schedule 'nope'."
    response = admin_t.post(
        "/routes/local",
        form=form(admin_t, name="hundreds", pattern="_1XX", target_type="ivr", target_ivr="main"),
    )
    assert response.status == 303
    assert response.header("Location") == "/routes/hundreds?notice=saved"
    assert load_routes(with_toml.db) == (Route("_1XX", IvrTarget("main"), "hundreds"),)
    assert "Delete hundreds" in admin_t.get("/routes/hundreds/delete").text
    response = admin_t.post("/routes/hundreds/delete", form={"csrf_token": admin_t.csrf()})
    assert response.header("Location") == "/routes?notice=deleted"
    assert load_routes(with_toml.db) == ()
    assert actions(with_toml)[:2] == [
        ("route.delete", "hundreds", "_1XX"),
        ("route.change", "hundreds", "renamed local"),
    ]
    assert admin_t.get("/routes/hundreds").status == 404


def test_a_reader_sees_routes_but_cannot_change_them(with_toml: WebServices) -> None:
    add_route(with_toml.db, Route("_1XX", ExtensionTarget("101"), "local"))
    oper = client_for(with_toml, "oper")
    text = oper.get("/routes").text
    assert 'id="routes"' in text and 'id="route-form"' not in text
    assert 'id="route-form"' not in oper.get("/routes/local").text
    csrf = oper.csrf()
    assert oper.post("/routes/local/delete", form={"csrf_token": csrf}).status == 403
    assert oper.post("/routes", form=form(oper, name="x", pattern="1")).status == 403


def test_a_stored_route_that_clashes_with_a_later_toml_edit_is_listed_as_not_in_use(
    admin_t: Client, with_toml: WebServices
) -> None:
    add_route(with_toml.db, Route("0", ExtensionTarget("102"), "zero"))  # before the toml had it
    text = admin_t.get("/routes").text
    assert 'id="left-out"' in text and "pattern used by route &#x27;operator&#x27;" in text
    items = admin_t.get("/api/routes").json()["items"]
    assert items[-1] == {
        "name": "zero",
        "pattern": "0",
        "target": {"type": "extension", "number": "102"},
        "source": "web",
        "active": False,
        "note": "pattern used by route 'operator'",
    }


def test_api_add_replace_delete(admin_t: Client, with_toml: WebServices) -> None:
    headers = {"X-CSRF-Token": admin_t.csrf()}
    route = {"name": "api", "pattern": "_4XX", "target": {"type": "ivr", "menu": "main"}}
    response = admin_t.request("POST", "/api/routes", json_body=route, headers=headers)
    assert response.status == 201 and response.json() == route
    items = admin_t.get("/api/routes").json()["items"]
    assert [(i["name"], i["source"]) for i in items] == [
        ("operator", "yakyak.toml"),
        ("outside", "yakyak.toml"),
        ("api", "web"),
    ]
    bad = {**route, "target": {"type": "analog", "port": "3"}}
    response = admin_t.request("PUT", "/api/routes/api", json_body=bad, headers=headers)
    assert response.status == 400
    assert response.json()["fields"] == {"target.port": "expected int, got '3'"}
    trunk = {**route, "target": {"type": "trunk", "name": "sip"}}
    response = admin_t.request("PUT", "/api/routes/api", json_body=trunk, headers=headers)
    assert response.json()["fields"] == {
        "target": "trunk calls are not supported yet: the PBX would refuse them"
    }
    clash = {**route, "pattern": "_9."}
    response = admin_t.request("PUT", "/api/routes/api", json_body=clash, headers=headers)
    assert list(response.json()["fields"]) == ["pattern"]
    good = {**route, "target": {"type": "reject", "cause": 17}}
    response = admin_t.request("PUT", "/api/routes/api", json_body=good, headers=headers)
    assert response.status == 200
    assert response.json()["target"] == {"type": "reject", "cause": "user_busy"}
    assert admin_t.request("DELETE", "/api/routes/api", headers=headers).status == 204
    assert admin_t.request("DELETE", "/api/routes/api", headers=headers).status == 404
    assert [a[0] for a in actions(with_toml)] == ["route.delete", "route.change", "route.create"]


def test_without_a_config_file_only_stored_routes_are_listed(
    admin: Client, services: WebServices
) -> None:
    add_route(services.db, Route("_1XX", ExtensionTarget("101"), "local"))
    text = admin.get("/routes").text
    assert order(text) == ["extensions", "local", "otherwise"]


def test_an_unreadable_config_file_is_said(services: WebServices, tmp_path: Path) -> None:
    (tmp_path / "yakyak.toml").write_text("[dialplan\n", encoding="utf-8")
    admin = client_for(dataclasses.replace(services, data_dir=tmp_path))
    text = admin.get("/routes").text
    assert 'id="config-error"' in text and "not valid TOML" in text


def test_values_are_escaped(admin_t: Client, with_toml: WebServices) -> None:
    response = admin_t.post(
        "/routes",
        form=form(admin_t, name='"><b>', pattern="<i>", target_type="extension"),
    )
    assert response.status == 400
    assert '"><b>' not in response.text and "<i>" not in response.text
