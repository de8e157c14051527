"""Extension pages: list (with live registration state), add with a generated password
shown once, edit, reset, delete; validation keeps input; every change is audited."""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import pytest

from appliance.sip.digest_hash import ha1
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.live import LiveSnapshot, RegistrationView
from appliance.web.provisioning import SipAccount, qr_svg
from appliance.web.services import WebServices

from .conftest import HOST, REALM, Client, signed_in


class FakeLive:
    """A LiveSource with 101 registered, or one that never answers."""

    def __init__(self, answers: bool = True) -> None:
        self.answers = answers

    def snapshot(self, timeout: float = 2.0) -> LiveSnapshot:
        if not self.answers:
            raise TimeoutError("the loop is busy")
        view = RegistrationView("101", "sip:101@192.0.2.7:5062", "udp:192.0.2.7:5062", "ua", 60)
        return LiveSnapshot(1.0, (view,), (), (), None)


def live_admin(services: WebServices, live: FakeLive) -> Client:
    app, _ = create_app(dataclasses.replace(services, live=live))
    return signed_in(SecurityHeaders(app), "admin")


def shown_password(text: str, number: str) -> str:
    match = re.search(rf'id="sip-password-{number}">([^<]+)</code>', text)
    assert match, text
    return html.unescape(match.group(1))


def actions(services: WebServices) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in services.audit.entries() if e.action != "login"]


def test_list_has_no_registered_column_without_a_pbx(admin: Client) -> None:
    text = admin.get("/extensions").text
    assert "<h1>Extensions</h1>" in text
    assert 'id="extension-101"' in text and "Alice" in text
    assert "Registered" not in text
    assert '<a href="/extensions">Extensions</a>' in text  # in the menu


def test_list_shows_who_is_registered_when_the_pbx_answers(services: WebServices) -> None:
    text = live_admin(services, FakeLive()).get("/extensions").text
    assert "<th>Registered</th>" in text
    rows = dict(re.findall(r'id="extension-(\d+)">.*?class="registered-(\w+)"', text))
    assert rows == {"101": "yes", "102": "no"}


def test_list_says_unknown_when_the_pbx_does_not_answer(services: WebServices) -> None:
    text = live_admin(services, FakeLive(answers=False)).get("/extensions").text
    assert text.count('class="registered-unknown"') == 2


def test_add_shows_the_generated_password_once_with_provisioning_info(
    admin: Client, services: WebServices
) -> None:
    response = admin.post(
        "/extensions",
        form={"number": "150", "name": "Front desk", "email": "", "csrf_token": admin.csrf()},
    )
    assert response.status == 201
    text = response.text
    password = shown_password(text, "150")
    assert len(password) >= 16
    assert f'id="sip-server-150">{HOST}</code>' in text
    assert 'id="sip-port-150">5060</code>, UDP or TCP' in text
    assert f'id="sip-realm-150">{REALM}</code>' in text
    account = SipAccount("150", password, HOST, REALM)
    assert account.uri == f"sip:150:{password}@{HOST}:5060"
    assert qr_svg(account.uri) in text  # the QR code of exactly those credentials
    assert "style=" not in text and "<script" not in text
    creds = services.directory.load_credentials()["150"]
    assert creds.ha1["MD5"] == ha1("MD5", "150", REALM, password)
    assert services.directory.get("150").name == "Front desk"
    assert password not in admin.get("/extensions").text  # shown once
    assert password not in admin.get("/extensions/150").text
    assert actions(services) == [("extension.create", "150")]
    assert all(password not in e.detail for e in services.audit.entries())


def test_the_server_is_the_host_the_browser_used(admin: Client) -> None:
    for host, shown in (("192.0.2.5:8443", "192.0.2.5"), ("[2001:db8::5]:443", "[2001:db8::5]")):
        response = admin.post(
            "/extensions/101/password",
            form={"csrf_token": admin.csrf()},
            headers={"Host": host, "Origin": f"https://{host}"},
        )
        assert response.status == 200, response.text
        assert f'id="sip-server-101">{shown}</code>' in response.text


def test_add_validates_each_field_and_keeps_what_was_typed(
    admin: Client, services: WebServices
) -> None:
    csrf = admin.csrf()
    response = admin.post(
        "/extensions",
        form={"number": "12a", "name": "Desk <1>", "email": "nope", "csrf_token": csrf},
    )
    assert response.status == 400
    text = response.text
    assert 'id="number-error">Bad extension number' in text
    assert 'id="email-error">Bad e-mail address' in text
    assert 'value="12a"' in text and 'value="Desk &lt;1&gt;"' in text and 'value="nope"' in text
    taken = admin.post("/extensions", form={"number": "101", "csrf_token": csrf})
    assert taken.status == 400 and 'id="number-error">Extension 101 already exists.' in taken.text
    assert actions(services) == []


def test_edit_changes_name_email_and_enabled(admin: Client, services: WebServices) -> None:
    csrf = admin.csrf()
    page = admin.get("/extensions/102").text
    assert "<h1>Extension 102</h1>" in page and 'id="enabled"' in page and "checked" in page
    response = admin.post(
        "/extensions/102",
        form={"name": "Bob B", "email": "bob@example.com", "csrf_token": csrf},
    )
    assert (response.status, response.header("Location")) == (303, "/extensions/102?notice=saved")
    info = services.directory.get("102")
    assert (info.name, info.email, info.enabled) == ("Bob B", "bob@example.com", False)
    assert "Changes saved." in admin.get("/extensions/102?notice=saved").text
    bad = admin.post(
        "/extensions/102",
        form={"name": "Bob", "email": "bob@", "enabled": "yes", "csrf_token": csrf},
    )
    assert bad.status == 400 and 'id="email-error"' in bad.text and 'value="bob@"' in bad.text
    assert services.directory.get("102").email == "bob@example.com"
    assert actions(services) == [("extension.change", "102")]
    assert services.audit.entries()[0].detail == "name, email, enabled"


def test_reset_replaces_the_password_and_shows_the_new_one(
    admin: Client, services: WebServices
) -> None:
    response = admin.post("/extensions/101/password", form={"csrf_token": admin.csrf()})
    assert response.status == 200 and "<h1>Extension 101</h1>" in response.text
    password = shown_password(response.text, "101")
    creds = services.directory.load_credentials()["101"]
    assert creds.ha1["SHA-256"] == ha1("SHA-256", "101", REALM, password)
    assert actions(services) == [("extension.password", "101")]


def test_delete_asks_first_then_deletes(admin: Client, services: WebServices) -> None:
    confirm = admin.get("/extensions/102/delete")
    assert "<h1>Delete extension 102?</h1>" in confirm.text and 'id="delete-submit"' in confirm.text
    assert services.directory.existing(["102"]) == ["102"]  # asking changed nothing
    response = admin.post("/extensions/102/delete", form={"csrf_token": admin.csrf()})
    assert response.header("Location") == "/extensions?notice=deleted"
    assert services.directory.existing(["102"]) == []
    assert admin.get("/extensions/102").status == 404
    assert admin.post("/extensions/102/delete", form={"csrf_token": admin.csrf()}).status == 404
    assert actions(services) == [("extension.delete", "102")]


def test_operator_reads_but_cannot_change(oper: Client, alice: Client) -> None:
    text = oper.get("/extensions").text
    assert 'id="extension-101"' in text and 'id="add-extension"' not in text
    assert 'id="edit-extension"' not in oper.get("/extensions/101").text
    assert oper.post("/extensions", form={"number": "160", "csrf_token": oper.csrf()}).status == 403
    assert alice.get("/extensions").status == 403


@pytest.mark.parametrize("path", ["/extensions", "/extensions/101", "/extensions/101/delete"])
def test_pages_have_no_inline_script_or_style(admin: Client, path: str) -> None:
    text: Any = admin.get(path).text
    assert "<script" not in text and "style=" not in text and "<style" not in text
    assert re.search(r"\son[a-z]+=", text) is None


def test_the_sip_port_shown_is_the_one_the_pbx_listens_on(services: WebServices) -> None:
    app, _ = create_app(dataclasses.replace(services, sip_port=5070))
    admin = signed_in(SecurityHeaders(app), "admin")
    response = admin.post(
        "/extensions",
        form={"number": "151", "name": "", "email": "", "csrf_token": admin.csrf()},
    )
    assert response.status == 201
    assert 'id="sip-port-151">5070</code>' in response.text
    password = shown_password(response.text, "151")
    assert qr_svg(SipAccount("151", password, HOST, REALM, 5070).uri) in response.text
