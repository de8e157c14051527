"""The dashboard and /api/live: what each role sees of a fixed PBX snapshot, what the
page says when there is no PBX or it does not answer, and the page's other parts."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jsonschema
import pytest

from appliance.store.cdr import CdrRecord, CdrWriter, Disposition, HangupBy
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.live import CallView, LiveSnapshot, PortView, RegistrationView
from appliance.web.services import WebServices

from .conftest import Client, ManualClock, signed_in

SNAPSHOT = LiveSnapshot(
    taken_at=1_700_000_000.0,
    registrations=(
        RegistrationView("101", "sip:101@192.0.2.7:5062", "udp:192.0.2.7:5062", "Desk <b>", 3599.4),
        RegistrationView("102", "sip:102@192.0.2.8:5060", "tcp:192.0.2.8:40000", "Soft", 61.0),
    ),
    calls=(
        CallView(1, "101", "Alice", "102", "talking", 75.0, 70.2, "PCMU", False),
        CallView(2, "0301234567", None, "500", "application", 3725.0, 3720.0, "PCMA", True),
        CallView(3, "103", None, "102", "ringing", 4.0, None, None, False),
    ),
    ports=(
        PortView(1, "fxs", "Phone <1>", "extension 201", "idle", True),
        PortView(3, "fxo", "Line", "line to 500", "idle", None),
    ),
    line_controller_up=True,
)


class FakeLive:
    """A LiveSource with a snapshot the test sets; `silent` plays a PBX that hangs."""

    def __init__(self, snapshot: LiveSnapshot = SNAPSHOT) -> None:
        self.current = snapshot
        self.silent = False
        self.looks = 0

    def snapshot(self, timeout: float = 2.0) -> LiveSnapshot:
        self.looks += 1
        if self.silent:
            raise TimeoutError("the PBX did not answer within the time allowed")
        return self.current


@pytest.fixture
def fake_live() -> FakeLive:
    return FakeLive()


@pytest.fixture
def live_app(services: WebServices, fake_live: FakeLive) -> Any:
    app, _ = create_app(dataclasses.replace(services, live=fake_live))
    return SecurityHeaders(app)


def sign_in(app: Any, username: str, password: str) -> Client:
    client = Client(app)
    assert client.login(username, password).status == 303
    return client


def documented_schema(client: Client, path: str) -> dict[str, Any]:
    document = client.get("/api/openapi.json").json()
    schema: dict[str, Any] = document["paths"][path]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    return schema


def test_api_live_for_an_administrator_shows_everything_as_documented(live_app: Any) -> None:
    admin = signed_in(live_app, "admin")
    body = admin.get("/api/live").json()
    jsonschema.validate(body, documented_schema(admin, "/api/live"))
    assert body["available"] is True and body["reason"] is None
    assert body["taken_at"] == SNAPSHOT.taken_at
    assert body["scope"] == {"registrations": "all", "calls": "all", "ports": "all"}
    assert [r["aor"] for r in body["registrations"]] == ["101", "102"]
    assert [c["number"] for c in body["calls"]] == [1, 2, 3]
    assert body["calls"][1] == {
        "number": 2,
        "caller": "0301234567",
        "caller_name": None,
        "callee": "500",
        "state": "application",
        "duration_s": 3725.0,
        "talking_s": 3720.0,
        "codec": "PCMA",
        "external": True,
    }
    assert [p["port"] for p in body["ports"]] == [1, 3]
    assert body["line_controller_up"] is True


def test_a_user_sees_only_its_own_extension(live_app: Any) -> None:
    alice = signed_in(live_app, "alice")  # role user, extension 101
    body = alice.get("/api/live").json()
    jsonschema.validate(body, documented_schema(signed_in(live_app, "admin"), "/api/live"))
    assert body["scope"] == {"registrations": "own", "calls": "own", "ports": "none"}
    assert [r["aor"] for r in body["registrations"]] == ["101"]
    assert [c["number"] for c in body["calls"]] == [1]  # 101 -> 102 only
    assert body["ports"] is None and body["line_controller_up"] is None
    text = alice.get("/").text
    assert "sip:101@192.0.2.7:5062" in text and "sip:102@" not in text
    assert "0301234567" not in text and "Phone &lt;1&gt;" not in text
    assert "<h2>Your phone's registrations</h2>" in text
    assert '<dl id="health">' not in text  # no system:read


def test_an_outside_caller_showing_a_users_number_is_not_that_users_call(
    live_app: Any, fake_live: FakeLive
) -> None:
    spoofed = CallView(9, "101", "Alice?", "102", "talking", 5.0, 4.0, "PCMA", True)
    to_alice = CallView(10, "0301234567", None, "101", "ringing", 2.0, None, None, True)
    fake_live.current = dataclasses.replace(SNAPSHOT, calls=(spoofed, to_alice))
    body = signed_in(live_app, "alice").get("/api/live").json()
    assert [c["number"] for c in body["calls"]] == [10]


def test_an_operator_sees_every_call_and_port(live_app: Any) -> None:
    oper = signed_in(live_app, "oper")
    body = oper.get("/api/live").json()
    assert body["scope"] == {"registrations": "all", "calls": "all", "ports": "all"}
    assert len(body["calls"]) == 3 and len(body["ports"]) == 2


def test_a_user_without_an_extension_sees_no_live_state(
    live_app: Any, services: WebServices
) -> None:
    services.accounts.create_user("nobody", "nobody-password-1", "user", must_change_password=False)
    client = sign_in(live_app, "nobody", "nobody-password-1")
    body = client.get("/api/live").json()
    assert body["registrations"] is None and body["calls"] is None and body["ports"] is None
    text = client.get("/").text
    assert "your account has no extension" in text
    assert 'id="live-registrations"' not in text


def test_the_dashboard_shows_the_live_tables_escaped(live_app: Any) -> None:
    text = signed_in(live_app, "admin").get("/").text
    assert '<section id="live" data-events="/events">' in text
    assert "As of 2023-11-14 22:13:20 UTC." in text
    assert "<td>Desk &lt;b&gt;</td>" in text and "Desk <b>" not in text
    assert "<td>59:59</td>" in text  # 3599.4 s to expiry
    assert "<td>Alice &lt;101&gt;</td>" in text
    assert "<td>0301234567 (outside)</td>" in text and "<td>1:02:05</td>" in text
    assert "Line controller: up." in text and "<td>Phone &lt;1&gt;</td>" in text
    assert '<dl id="health">' in text


def test_the_page_loads_only_its_own_script_and_has_no_inline_code(live_app: Any) -> None:
    text = signed_in(live_app, "admin").get("/").text
    assert re.findall(r"<script[^>]*>", text) == ['<script src="/static/live.js" defer>']
    assert "</script>" in text and re.search(r"<script[^>]*>[^<]", text) is None
    assert "style=" not in text and "<style" not in text
    assert re.search(r"\son[a-z]+=", text) is None


@pytest.mark.parametrize(
    ("silent", "source", "says"),
    [
        (False, False, "this web server runs without a PBX"),
        (True, True, "the PBX did not answer in time"),
    ],
)
def test_without_an_answering_pbx_the_page_and_api_say_not_available(
    services: WebServices, fake_live: FakeLive, silent: bool, source: bool, says: str
) -> None:
    fake_live.silent = silent
    live = fake_live if source else None
    app, _ = create_app(dataclasses.replace(services, live=live))
    admin = signed_in(SecurityHeaders(app), "admin")
    page = admin.get("/")
    assert page.status == 200
    assert f"Live state not available: {says}." in page.text
    assert page.text.count("<td colspan") == 3  # each table says "Not available."
    assert "Line controller: not known." in page.text
    body = admin.get("/api/live").json()
    assert body["available"] is False and body["reason"] == says
    assert body["registrations"] == [] and body["taken_at"] is None


def test_notices_still_show(live_app: Any) -> None:
    admin = signed_in(live_app, "admin")
    assert (
        '<p class="notice">Your password has been changed.</p>'
        in admin.get("/?notice=password").text
    )
    assert 'class="notice"' not in admin.get("/?notice=<b>").text


def _cdr(call_id: str, start: float, caller: str, callee: str) -> CdrRecord:
    return CdrRecord(
        call_id=call_id,
        caller=caller,
        callee=callee,
        start_at=start,
        end_at=start + 30,
        answer_at=start + 2,
        disposition=Disposition.ANSWERED,
        hangup_cause=16,
        hangup_by=HangupBy.CALLER,
    )


def test_charts_need_cdr_permissions_and_a_user_sees_its_own_calls(
    live_app: Any, services: WebServices, clock: ManualClock
) -> None:
    now = clock.now
    CdrWriter(services.db, start=False).write(
        [
            _cdr("1", now - 3600, "101", "102"),
            _cdr("2", now - 3500, "102", "103"),
            _cdr("3", now - 60, "103", "102"),
        ]
    )
    admin = signed_in(live_app, "admin").get("/").text
    assert "Calls per hour (all calls)" in admin
    assert "3 in all, 3 answered" in admin
    assert 'id="plot-jitter"' in admin and 'id="plot-loss"' in admin
    alice = signed_in(live_app, "alice").get("/").text
    assert "Calls per hour (calls of extension 101)" in alice
    assert "1 in all, 1 answered" in alice
    services.accounts.create_role("watcher", "no call records", ["user:read_own"])
    services.accounts.create_user(
        "watch", "watch-password-1", "watcher", extension="102", must_change_password=False
    )
    watcher = sign_in(live_app, "watch", "watch-password-1").get("/").text
    assert "plot-calls" not in watcher and "Calls per hour" not in watcher


def test_the_dashboard_still_says_what_the_box_has(live_app: Any) -> None:
    admin = signed_in(live_app, "admin").get("/").text
    assert "2 extension(s)." in admin and "4 web account(s)." in admin
    assert 'href="/audit"' in admin
    oper = signed_in(live_app, "oper").get("/").text
    assert "Audit log" not in oper
    assert "Your extension is 101." in signed_in(live_app, "alice").get("/").text
