"""The first-run wizard: each step validates and stores, the network check reports what
it finds, the first extensions come with their passwords once, and finishing is kept."""

from __future__ import annotations

import re
import socket

import pytest

from appliance.sip.digest_hash import ha1
from appliance.store.errors import StoreError
from appliance.store.settings import get_setting, set_setting
from appliance.web import wizard
from appliance.web.services import WebServices

from .conftest import HOST, REALM, Client


def changes(services: WebServices) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in services.audit.entries() if e.action != "login"]


def test_setup_is_in_the_menu_of_administrators_only(admin: Client, oper: Client) -> None:
    menu = re.findall(r"<nav>.*?</nav>", admin.get("/setup").text, re.S)[0]
    labels = re.findall(r'<a href="[^"]+">([^<]+)</a>', menu)
    assert labels[labels.index("Setup") - 1] == "Dashboard"  # nav_order 5: right after it
    assert 'href="/setup"' not in oper.get("/extensions").text
    assert oper.get("/setup").status == 403


def test_the_steps_page_lists_what_is_set(admin: Client, services: WebServices) -> None:
    set_setting(services.db, wizard.SETUP_DONE, False)  # a fresh box
    text = admin.get("/setup").text
    assert "<h1>Setup</h1>" in text
    assert "<strong>Time zone</strong>: not set" in text
    assert "<strong>First extensions</strong>: 2 so far" in text
    assert 'id="step-timezone"' in text and 'id="finish-submit"' in text
    assert not wizard.setup_done(services)


def test_time_zone_is_checked_against_the_zone_database(
    admin: Client, services: WebServices
) -> None:
    form = admin.get("/setup/timezone").text
    assert 'id="timezone" name="timezone" type="text" value="UTC"' in form
    assert '<option value="Europe/Berlin">' in form
    csrf = admin.csrf()
    bad = admin.post("/setup/timezone", form={"timezone": "Mars/Olympus", "csrf_token": csrf})
    assert bad.status == 400
    assert 'id="timezone-error">Enter a time zone name' in bad.text
    assert 'value="Mars/Olympus"' in bad.text
    good = admin.post("/setup/timezone", form={"timezone": "Europe/Berlin", "csrf_token": csrf})
    assert good.header("Location") == "/setup/country"
    assert get_setting(services.db, wizard.TIME_ZONE) == "Europe/Berlin"
    assert "<strong>Time zone</strong>: Europe/Berlin" in admin.get("/setup").text
    assert changes(services) == [("setup.time_zone", "Europe/Berlin")]


def test_country_is_one_the_tone_tables_know(admin: Client, services: WebServices) -> None:
    form = admin.get("/setup/country").text
    codes = re.findall(r'<option value="([A-Z]{2})"', form)
    assert codes == ["DE", "ES", "FR", "GB", "US"]
    csrf = admin.csrf()
    bad = admin.post("/setup/country", form={"country": "XX", "csrf_token": csrf})
    assert bad.status == 400 and 'id="country-error">Choose one of the countries' in bad.text
    good = admin.post("/setup/country", form={"country": "gb", "csrf_token": csrf})
    assert good.header("Location") == "/setup/network"
    assert get_setting(services.db, wizard.COUNTRY) == "GB"
    assert "United Kingdom" in admin.get("/setup").text


def test_network_check_lists_addresses_and_probes_the_sip_port(
    admin: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wizard, "host_addresses", lambda name: ("192.0.2.20", "127.0.1.1"))
    monkeypatch.setattr(wizard, "tcp_answers", lambda host, port, timeout: True)
    text = admin.get("/setup/network").text
    assert "<h1>Setup: network check</h1>" in text
    assert "<li><code>192.0.2.20</code></li><li><code>127.0.1.1</code></li>" in text
    assert f'id="web-host">{HOST}</code>' in text
    assert "SIP port 5060 (UDP and TCP" in text and "TCP answers." in text
    assert "without the PBX attached" in text


def test_tcp_probe_tells_a_listener_from_a_closed_port() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        assert wizard.tcp_answers("127.0.0.1", port, 2.0)
    finally:
        listener.close()
    assert not wizard.tcp_answers("127.0.0.1", port, 2.0)


def test_host_addresses_put_loopback_last(monkeypatch: pytest.MonkeyPatch) -> None:
    infos = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.1.1", 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.20", 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.20", 0)),
    ]
    monkeypatch.setattr(wizard.socket, "getaddrinfo", lambda *a, **kw: infos)
    assert wizard.host_addresses("box") == ("192.0.2.20", "127.0.1.1")

    def unresolvable(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror("no such name")

    monkeypatch.setattr(wizard.socket, "getaddrinfo", unresolvable)
    assert wizard.host_addresses("box") == ()


def test_first_extensions_are_made_with_passwords_shown_once(
    admin: Client, services: WebServices
) -> None:
    form = admin.get("/setup/extensions").text
    assert 'id="first" name="first" type="text" value="201"' in form
    response = admin.post(
        "/setup/extensions", form={"first": "0201", "count": "3", "csrf_token": admin.csrf()}
    )
    assert response.status == 201
    shown = dict(re.findall(r'id="password-(\d+)">([^<]+)</code>', response.text))
    assert sorted(shown) == ["0201", "0202", "0203"]
    assert f'id="sip-server">{HOST}</code>' in response.text
    assert f'id="sip-realm">{REALM}</code>' in response.text
    creds = services.directory.load_credentials()
    for number, password in shown.items():
        assert creds[number].ha1["MD5"] == ha1("MD5", number, REALM, password)
    assert all(p not in admin.get("/setup/extensions").text for p in shown.values())
    assert changes(services) == [("extension.create", "0201-0203")]


def test_first_extensions_are_validated(admin: Client, services: WebServices) -> None:
    csrf = admin.csrf()
    taken = admin.post("/setup/extensions", form={"first": "100", "count": "3", "csrf_token": csrf})
    assert taken.status == 400 and 'id="first-error">Already taken: 101, 102.' in taken.text
    assert 'value="100"' in taken.text and 'value="3"' in taken.text
    for count in ("0", "51", "x"):
        bad = admin.post(
            "/setup/extensions", form={"first": "300", "count": count, "csrf_token": csrf}
        )
        assert bad.status == 400 and 'id="count-error"' in bad.text
    full = admin.post(
        "/setup/extensions", form={"first": "9" * 15, "count": "2", "csrf_token": csrf}
    )
    assert full.status == 400 and 'id="first-error"' in full.text
    assert [e.number for e in services.directory.list()] == ["101", "102"]


def test_first_numbers_keep_their_width() -> None:
    assert wizard.first_numbers("0998", 3) == ["0998", "0999", "1000"]
    assert wizard.first_numbers("99", 2) == ["99", "100"]
    with pytest.raises(StoreError):
        wizard.first_numbers("", 1)


def test_finishing_is_remembered(admin: Client, services: WebServices) -> None:
    response = admin.post("/setup/done", form={"csrf_token": admin.csrf()})
    assert response.header("Location") == "/"
    assert wizard.setup_done(services)
    assert "Setup is finished" in admin.get("/setup").text
    assert changes(services) == [("setup.done", "")]


@pytest.mark.parametrize(
    "path", ["/setup", "/setup/timezone", "/setup/country", "/setup/network", "/setup/extensions"]
)
def test_pages_have_a_heading_and_no_inline_script_or_style(admin: Client, path: str) -> None:
    text = admin.get(path).text
    assert text.count("<h1>") == 1
    assert "<script" not in text and "style=" not in text and "<style" not in text
    assert re.search(r"\son[a-z]+=", text) is None


def test_an_administrators_first_visit_goes_to_the_wizard_until_it_is_finished(
    admin: Client, oper: Client, services: WebServices
) -> None:
    set_setting(services.db, wizard.SETUP_DONE, False)
    first = admin.get("/")
    assert first.status == 303 and first.header("Location").endswith("/setup")
    assert oper.get("/").status == 200  # an operator cannot set the box up: no detour
    set_setting(services.db, wizard.SETUP_DONE, True)
    assert admin.get("/").status == 200
