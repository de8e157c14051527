"""Auto-attendant pages and API: list, one menu, the JSON editor (errors naming the
place, text kept), uploads, the business-hours form; stored documents bump the revision
the PBX polls; every change audited."""

from __future__ import annotations

import copy
import html
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from appliance.pbx.ivr.menu import parse_ivr
from appliance.store.ivr import load_ivr, save_ivr
from appliance.store.migrations import DIRECTORY_REVISION_KEY
from appliance.store.settings import get_setting
from appliance.store.voicemail import VoicemailStore
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices

from .conftest import Client, Response, signed_in

DOC: dict[str, Any] = {
    "menus": {
        "main": {
            "greeting": ["welcome"],
            "options": {
                "1": {"action": "transfer", "extension": "101"},
                "9": {"action": "voicemail", "mailbox": "102"},
            },
        },
        "closed": {"greeting": ["goodbye"]},
    },
    "schedules": {
        "office": {
            "timezone": "Europe/Berlin",
            "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:30", "menu": "main"}],
            "holidays": [{"date": "12-25", "menu": "closed"}],
            "otherwise": "closed",
        }
    },
}
EMPTY_WEEK = {f"{edge}_{day}": "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
              for edge in ("open", "close")}  # fmt: skip


@pytest.fixture
def ivr_services(services: WebServices, tmp_path: Path) -> WebServices:
    VoicemailStore(services.db, tmp_path / "voicemail").create_mailbox("102", None)
    save_ivr(services.db, DOC)
    return services


def client_for(services: WebServices, username: str = "admin") -> Client:
    app, _ = create_app(services)
    return signed_in(SecurityHeaders(app), username)


@pytest.fixture
def admin_i(ivr_services: WebServices) -> Client:
    return client_for(ivr_services)


def actions(services: WebServices) -> list[tuple[str, str]]:
    return [(e.action, e.detail) for e in services.audit.entries() if e.action != "login"]


def error_of(text: str, name: str) -> str:
    match = re.search(rf'<p class="error" id="{name}-error">([^<]*)</p>', text)
    assert match, text
    return html.unescape(match.group(1))


def textarea(text: str, name: str) -> str:
    match = re.search(rf'<textarea id="{name}"[^>]*>([^<]*)</textarea>', text)
    assert match, text
    return html.unescape(match.group(1))


def revision(services: WebServices) -> object:
    return get_setting(services.db, DIRECTORY_REVISION_KEY)


def upload(client: Client, data: bytes, mode: str) -> Response:
    """POST /ivr/upload as a browser sends a file: multipart/form-data."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{client.csrf()}\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="mode"\r\n\r\n{mode}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="menus.json"'
        "\r\nContent-Type: application/json\r\n\r\n",
    ]
    body = "".join(parts).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return client.request("POST", "/ivr/upload", body=body, headers=headers)


def hours_form(client: Client, **values: str) -> dict[str, str]:
    base = {
        "name": "office",
        "existing": "yes",
        "timezone": "Europe/Berlin",
        "open_menu": "main",
        "closed_menu": "closed",
        "holidays": "",
        **EMPTY_WEEK,
        "csrf_token": client.csrf(),
    }
    return {**base, **values}


def test_the_overview_lists_menus_and_schedules(admin_i: Client) -> None:
    text = admin_i.get("/ivr").text
    assert '<a href="/ivr">Auto-attendant</a>' in text  # in the menu
    assert re.search(r'id="menu-main">.*?1: transfer 101; 9: voicemail 102', text)
    assert re.search(
        r'id="schedule-office">.*?Europe/Berlin.*?mon-fri 09:00-17:30 -&gt; main', text
    )
    assert 'href="/ivr/hours?name=office"' in text
    assert 'id="upload"' in text and 'id="new-schedule"' in text


def test_one_menu(admin_i: Client) -> None:
    text = admin_i.get("/ivr/menus/main").text
    assert re.search(r'id="key-9"><td>9</td><td>voicemail 102</td>', text)
    assert "Schedules that may pick it: office." in text
    assert (
        json.loads(html.unescape(re.search(r'id="menu-json">([^<]*)<', text)[1]))
        == (  # type: ignore[index]  # the page has it
            DOC["menus"]["main"]
        )
    )
    assert admin_i.get("/ivr/menus/nope").status == 404


def test_the_json_editor_saves_a_valid_document(admin_i: Client, ivr_services: WebServices) -> None:
    shown = json.loads(textarea(admin_i.get("/ivr/document").text, "document"))
    assert shown == DOC
    changed = copy.deepcopy(DOC)
    changed["menus"]["main"]["options"]["0"] = {"action": "repeat"}
    before = revision(ivr_services)
    response = admin_i.post(
        "/ivr/document", form={"document": json.dumps(changed), "csrf_token": admin_i.csrf()}
    )
    assert response.status == 303 and response.header("Location") == "/ivr?notice=saved"
    assert load_ivr(ivr_services.db) == changed
    assert revision(ivr_services) != before  # the running PBX reloads its menus
    assert actions(ivr_services) == [("ivr.change", "menus: main, closed; schedules: office")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"menus": {', "Not JSON: line 1, column 12: Expecting property name enclosed in"),
        (
            '{"menus": {"main": {"greeting": ["welcome"], "options": {"2": {"action": "menu", '
            '"menu": "sales"}}}}}',
            "Menus.main.options.2: menu 'sales' does not exist.",
        ),
        ('{"menus": {}, "extra": 1}', "Extra: unknown section; expected menus, schedules."),
        ("[]", "Ivr: expected a table, got list."),
    ],
)
def test_the_json_editor_shows_the_error_and_keeps_the_text(
    admin_i: Client, ivr_services: WebServices, text: str, message: str
) -> None:
    response = admin_i.post("/ivr/document", form={"document": text, "csrf_token": admin_i.csrf()})
    assert response.status == 400
    assert error_of(response.text, "document").startswith(message)
    assert textarea(response.text, "document") == text
    assert load_ivr(ivr_services.db) == DOC


def test_upload_merges_or_replaces(admin_i: Client, ivr_services: WebServices) -> None:
    night = {"menus": {"night": {"greeting": ["goodbye"]}}}
    response = upload(admin_i, json.dumps(night).encode(), "merge")
    assert response.status == 303, response.text
    stored = load_ivr(ivr_services.db)
    assert isinstance(stored, dict)
    assert set(stored["menus"]) == {"main", "closed", "night"}
    assert set(stored["schedules"]) == {"office"}
    response = upload(admin_i, json.dumps(night).encode(), "replace")
    assert response.status == 303
    assert load_ivr(ivr_services.db) == night
    assert [a for a, _ in actions(ivr_services)] == ["ivr.upload", "ivr.upload"]


def test_a_bad_upload_changes_nothing_and_opens_the_editor(
    admin_i: Client, ivr_services: WebServices
) -> None:
    # The merged document is what is checked, and what the editor then shows.
    response = upload(admin_i, b'{"menus": {"closed": {"greeting": []}}}', "merge")
    assert response.status == 400
    assert error_of(response.text, "document") == (
        "Menus.closed.greeting: needs at least one prompt."
    )
    shown = json.loads(textarea(response.text, "document"))
    assert shown["menus"]["closed"] == {"greeting": []} and "main" in shown["menus"]
    response = upload(admin_i, b"\xff\xfe", "merge")
    assert (
        response.status == 400 and error_of(response.text, "ivr") == "The file is not UTF-8 text."
    )
    response = upload(admin_i, b"x" * (64 * 1024 + 1), "merge")
    assert error_of(response.text, "ivr") == "The file is larger than 64 KiB."
    assert load_ivr(ivr_services.db) == DOC


def test_the_hours_form_shows_a_schedule(admin_i: Client) -> None:
    text = admin_i.get("/ivr/hours?name=office").text
    assert (
        'id="open_mon" name="open_mon" type="text" size="5" placeholder="HH:MM" value="09:00"'
        in text
    )
    assert (
        'id="close_fri" name="close_fri" type="text" size="5" placeholder="HH:MM" value="17:30"'
        in text
    )
    assert 'id="open_sat" name="open_sat" type="text" size="5" placeholder="HH:MM" value=""' in text
    assert '<option value="main" selected>main</option>' in text
    assert textarea(text, "holidays") == "12-25"
    assert '<input type="hidden" name="name" value="office">' in text


def test_the_hours_form_writes_the_schedule(admin_i: Client, ivr_services: WebServices) -> None:
    week = {f"open_{d}": "08:00" for d in ("mon", "tue", "wed", "thu")}
    week |= {f"close_{d}": "18:00" for d in ("mon", "tue", "wed", "thu")}
    week |= {"open_fri": "08:00", "close_fri": "14:00", "open_sat": "22:00", "close_sat": "02:00"}
    response = admin_i.post(
        "/ivr/hours",
        form=hours_form(admin_i, holidays="2026-12-24 main\n12-25\n\n01-01", **week),
    )
    assert response.status == 303, response.text
    stored = load_ivr(ivr_services.db)
    assert isinstance(stored, dict)
    assert stored["schedules"]["office"] == {
        "timezone": "Europe/Berlin",
        "hours": [
            {"days": "mon-thu", "from": "08:00", "to": "18:00", "menu": "main"},
            {"days": "fri", "from": "08:00", "to": "14:00", "menu": "main"},
            {"days": "sat", "from": "22:00", "to": "02:00", "menu": "main"},  # past midnight
        ],
        "holidays": [
            {"date": "2026-12-24", "menu": "main"},
            {"date": "12-25", "menu": "closed"},
            {"date": "01-01", "menu": "closed"},
        ],
        "otherwise": "closed",
    }
    assert stored["menus"] == DOC["menus"]
    assert actions(ivr_services) == [("ivr.hours", "office")]
    # and it reads back into the same form
    text = admin_i.get("/ivr/hours?name=office").text
    assert (
        'id="close_sat" name="close_sat" type="text" size="5" placeholder="HH:MM" value="02:00"'
        in text
    )
    assert textarea(text, "holidays") == "2026-12-24 main\n12-25\n01-01"


def test_the_hours_form_shows_errors_beside_the_fields_and_keeps_values(
    admin_i: Client, ivr_services: WebServices
) -> None:
    response = admin_i.post(
        "/ivr/hours",
        form=hours_form(
            admin_i,
            timezone="Mars/Olympus",
            open_mon="25:00",
            close_mon="18:00",
            open_tue="09:00",
            open_wed="10:00",
            close_wed="10:00",
            closed_menu="",
            holidays="12-25\n13-01",
        ),
    )
    assert response.status == 400
    text = response.text
    assert (
        error_of(text, "timezone")
        == "'Mars/Olympus' is not a known time zone like 'Europe/Berlin'."
    )
    assert error_of(text, "open_mon") == "'25:00' is not a time HH:MM."
    assert error_of(text, "close_tue") == "Give both times, or neither for a closed day."
    assert error_of(text, "close_wed").startswith("The same as opening")
    assert error_of(text, "closed_menu") == "Choose the menu that answers when closed."
    assert error_of(text, "holidays") == "Line 2: '13-01' is not a date of the calendar."
    assert 'value="Mars/Olympus"' in text and 'value="25:00"' in text
    assert textarea(text, "holidays") == "12-25\n13-01"
    assert load_ivr(ivr_services.db) == DOC


def test_a_new_schedule_and_name_rules(admin_i: Client, ivr_services: WebServices) -> None:
    text = admin_i.get("/ivr/hours?name=weekend").text
    assert '<input id="name" name="name" type="text" value="weekend"' in text
    taken = admin_i.post("/ivr/hours", form=hours_form(admin_i, name="office", existing=""))
    assert error_of(taken.text, "name").startswith("Schedule office exists")
    menu = admin_i.post("/ivr/hours", form=hours_form(admin_i, name="main", existing=""))
    assert error_of(menu.text, "name") == "There is a menu named main; choose another name."
    response = admin_i.post(
        "/ivr/hours",
        form=hours_form(admin_i, name="weekend", existing="", open_sat="10:00", close_sat="24:00"),
    )
    assert response.status == 303
    stored = load_ivr(ivr_services.db)
    assert isinstance(stored, dict)
    assert stored["schedules"]["weekend"]["hours"] == [
        {"days": "sat", "from": "10:00", "to": "24:00", "menu": "main"}
    ]
    assert admin_i.get("/ivr/hours?name=bad%20name").status == 400


def test_a_schedule_the_form_cannot_show_is_sent_to_the_json_editor(
    admin_i: Client, ivr_services: WebServices
) -> None:
    document = copy.deepcopy(DOC)
    document["schedules"]["office"]["hours"].append(
        {"days": "sat", "from": "10:00", "to": "12:00", "menu": "closed"}
    )
    save_ivr(ivr_services.db, document)
    text = admin_i.get("/ivr/hours?name=office").text
    assert 'id="not-a-form"' in text and "more than one menu" in text
    assert 'id="hours-form"' not in text


def test_delete_a_menu_or_a_schedule(admin_i: Client, ivr_services: WebServices) -> None:
    csrf = admin_i.csrf()
    response = admin_i.post("/ivr/menus/closed/delete", form={"csrf_token": csrf})
    assert response.status == 400  # the schedule needs it
    assert "closed was not deleted: schedules.office" in error_of(response.text, "ivr")
    response = admin_i.post("/ivr/schedules/office/delete", form={"csrf_token": csrf})
    assert response.header("Location") == "/ivr?notice=deleted"
    response = admin_i.post("/ivr/menus/closed/delete", form={"csrf_token": csrf})
    assert response.status == 303
    assert load_ivr(ivr_services.db) == {"menus": {"main": DOC["menus"]["main"]}, "schedules": {}}
    assert [a for a, _ in actions(ivr_services)] == ["ivr.menu.delete", "ivr.schedule.delete"]


def test_a_stored_document_that_no_longer_loads_is_said(
    admin_i: Client, ivr_services: WebServices
) -> None:
    ivr_services.directory.delete("101")  # option 1 of main transfers to it
    text = admin_i.get("/ivr").text
    assert "menus.main.options.1: extension &#x27;101&#x27; does not exist" in text
    editor = admin_i.get("/ivr/document").text
    assert error_of(editor, "document").startswith("Menus.main.options.1")


def test_a_reader_sees_but_cannot_change(ivr_services: WebServices) -> None:
    oper = client_for(ivr_services, "oper")
    text = oper.get("/ivr").text
    assert 'id="menus"' in text and 'id="upload"' not in text
    assert "readonly" in oper.get("/ivr/document").text
    assert "<fieldset disabled>" in oper.get("/ivr/hours?name=office").text
    csrf = oper.csrf()
    assert oper.post("/ivr/document", form={"document": "{}", "csrf_token": csrf}).status == 403


def test_api_get_and_replace(admin_i: Client, ivr_services: WebServices) -> None:
    assert admin_i.get("/api/ivr").json() == {"document": DOC, "error": None}
    headers = {"X-CSRF-Token": admin_i.csrf()}
    bad = {"menus": {"main": {"greeting": []}}}
    response = admin_i.request("PUT", "/api/ivr", json_body=bad, headers=headers)
    assert response.status == 400
    assert response.json()["fields"] == {"menus.main.greeting": "needs at least one prompt"}
    good = {"menus": {"main": {"greeting": ["welcome"]}}}
    response = admin_i.request("PUT", "/api/ivr", json_body=good, headers=headers)
    assert response.status == 200 and response.json() == {"document": good, "error": None}
    assert parse_ivr(load_ivr(ivr_services.db), (), ()).menus["main"].greeting == ("welcome",)


def test_no_document_yet(admin: Client, services: WebServices) -> None:
    assert admin.get("/api/ivr").json() == {"document": None, "error": None}
    text = admin.get("/ivr").text
    assert 'id="no-menus"' in text and 'id="no-schedules"' in text
    assert 'id="no-menus"' in admin.get("/ivr/hours?name=office").text


def test_the_live_pbx_reloads_menus_on_the_revision(ivr_services: WebServices) -> None:
    """What the running PBX watches: `ivr_menu` writes bump `revision.directory`."""
    before = revision(ivr_services)
    save_ivr(ivr_services.db, {"menus": {}})
    assert revision(ivr_services) != before
