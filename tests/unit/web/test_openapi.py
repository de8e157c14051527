"""The OpenAPI document matches the app: same routes, and real answers fit its schemas."""

from __future__ import annotations

import dataclasses
import datetime
import io
import re
import wave
from pathlib import Path
from typing import Any

import jsonschema
import peewee
import pytest

from appliance.config import write_default
from appliance.store.voicemail import VoicemailStore
from appliance.web import tls
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices

from .conftest import Client, signed_in
from .test_certificate_pages import pair
from .test_ssh_pages import public_key

KEY = public_key("openapi tour")


@pytest.fixture
def document(admin: Client) -> dict[str, Any]:
    response = admin.get("/api/openapi.json")
    assert response.status == 200
    doc: dict[str, Any] = response.json()
    return doc


def test_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "YakYak REST API"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["x-permission"], f"{method} {path}"
            assert operation["responses"], f"{method} {path}"
            for name in re.findall(r"{(\w+)}", path):
                assert name in [p["name"] for p in operation["parameters"]], path
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    jsonschema.Draft202012Validator.check_schema(media["schema"])


def test_operations_list_their_own_refusals(document: dict[str, Any]) -> None:
    upload = document["paths"]["/api/system/update"]["put"]["responses"]
    assert {"202", "400", "409", "411", "413", "415", "503"} <= set(upload)
    assert "503" in document["paths"]["/api/system/ssh"]["put"]["responses"]
    assert "409" not in document["paths"]["/api/system"]["get"]["responses"]


def test_every_api_route_is_documented_and_every_documented_path_exists(
    services: WebServices, document: dict[str, Any]
) -> None:
    app, _ = create_app(services)
    served = {
        (route.method.lower(), re.sub(r"<(\w+)(?::\w+)?>", r"{\1}", route.rule))
        for route in app.routes
        if route.rule.startswith("/api/")
    }
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert served == documented
    assert len(documented) >= 20


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path.split("?")[0]) and method.lower() in operations:
            operation: dict[str, Any] = operations[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not documented")


def test_real_answers_match_the_documented_schemas(
    services: WebServices, db: peewee.SqliteDatabase, tmp_path: Path, document: dict[str, Any]
) -> None:
    """A tour through every documented operation, each answer checked against its schema."""
    # a data folder (the database is tmp_path/yakyak.db) with a message in 101's mailbox
    store = VoicemailStore(db, tmp_path / "voicemail")
    store.create_mailbox("101", "1234")
    recording = store.new_recording_path()
    recording.write_bytes(_wav())
    message_id = store.store_message("101", recording, 0.25, "102", "Bob", True, 1.7e9)
    assert message_id is not None
    info = store.message("101", message_id)
    assert info is not None
    message = f"/api/voicemail/101/messages/{Path(info.recording.path).name}"
    write_default(tmp_path, "yakyak.local")  # a backup carries the configuration
    tls.ensure(tmp_path, ["yakyak.local"], datetime.datetime.now(datetime.UTC))
    cert, key = pair("pbx.example.com", services.clock())
    app, _ = create_app(dataclasses.replace(services, data_dir=tmp_path, updates_available=True))
    wrapped = SecurityHeaders(app)
    admin, alice = signed_in(wrapped, "admin"), signed_in(wrapped, "alice")
    archive = admin.get("/api/backup").body
    csrf = admin.csrf()
    tour: list[tuple[Client, str, str, object]] = [
        (admin, "GET", "/api/me", None),
        (admin, "POST", "/api/tokens", {"name": "tour"}),
        (admin, "GET", "/api/tokens", None),
        (admin, "DELETE", "/api/tokens/1", None),
        (admin, "GET", "/api/users", None),
        (admin, "POST", "/api/users", {"username": "t", "password": "tour-pass-1", "role": "user"}),
        (admin, "GET", "/api/users/t", None),
        (admin, "PATCH", "/api/users/t", {"role": "operator", "extension": "101"}),
        (admin, "POST", "/api/users/t/password", {"password": "tour-pass-2"}),
        (admin, "DELETE", "/api/users/t", None),
        (admin, "GET", "/api/roles", None),
        (admin, "POST", "/api/roles", {"name": "tour", "permissions": ["cdr:read"]}),
        (admin, "GET", "/api/roles/tour", None),
        (admin, "PATCH", "/api/roles/tour", {"description": "Tour", "permissions": []}),
        (admin, "DELETE", "/api/roles/tour", None),
        (admin, "GET", "/api/extensions", None),
        (admin, "POST", "/api/extensions", {"number": "170", "email": "desk@example.com"}),
        (admin, "GET", "/api/extensions/170", None),
        (admin, "POST", "/api/extensions/170/password", {}),
        (admin, "PATCH", "/api/extensions/170", {"name": "Desk", "enabled": False}),
        (admin, "POST", "/api/extensions/import", [{"number": 171, "password": "tour-pass-171"}]),
        (admin, "POST", "/api/extensions/import", [{"number": 172}]),
        (admin, "DELETE", "/api/extensions/170", None),
        (admin, "GET", "/api/routes", None),
        (
            admin,
            "POST",
            "/api/routes",
            {"name": "tour", "pattern": "_4XX", "target": {"type": "extension", "number": "101"}},
        ),
        (
            admin,
            "PUT",
            "/api/routes/tour",
            {"name": "tour", "pattern": "_4XX", "target": {"type": "reject", "cause": 21}},
        ),
        (admin, "DELETE", "/api/routes/tour", None),
        (admin, "GET", "/api/ivr", None),
        (admin, "PUT", "/api/ivr", {"menus": {"tour": {"greeting": ["welcome"]}}}),
        (admin, "GET", "/api/audit", None),
        (admin, "GET", "/api/cdr", None),
        (admin, "GET", "/api/certificate", None),
        (admin, "PUT", "/api/certificate", {"certificate": cert.decode(), "key": key.decode()}),
        (admin, "GET", "/api/voicemail", None),
        (admin, "GET", "/api/voicemail/101", None),
        (admin, "GET", message, None),
        (admin, "DELETE", message, None),
        (admin, "GET", "/api/backup", None),
        (admin, "GET", "/api/backup/restore", None),
        (admin, "POST", "/api/backup/restore", archive),
        (admin, "DELETE", "/api/backup/restore", None),
        (admin, "GET", "/api/live", None),
        (admin, "GET", "/api/health", None),
        (admin, "GET", "/api/system", None),
        (admin, "PUT", "/api/system/update", b"hsqs" + bytes(64)),  # a "bundle": its magic
        (admin, "GET", "/api/system/update", None),
        (admin, "PUT", "/api/system/ssh", {"enabled": True, "authorized_keys": [KEY]}),
        (admin, "GET", "/api/openapi.json", None),
        # Errors have their documented shape too.
        (admin, "POST", "/api/extensions", {"number": "x"}),
        (admin, "GET", "/api/users/nobody", None),
        (alice, "GET", "/api/users", None),
        (Client(admin.app), "GET", "/api/me", None),
    ]
    seen = set()
    for client, method, path, body in tour:
        headers = {} if method == "GET" else {"X-CSRF-Token": csrf if client is admin else ""}
        operation = _operation(document, method, path)
        if isinstance(body, bytes):  # an archive or a bundle, sent as it is
            (headers["Content-Type"],) = operation["requestBody"]["content"]
            response = client.request(method, path, body=body, headers=headers)
        else:
            response = client.request(method, path, json_body=body, headers=headers)
        documented = operation["responses"].get(str(response.status))
        assert documented is not None, f"{method} {path}: {response.status} {response.text}"
        content = documented.get("content", {})
        if "application/json" in content:
            jsonschema.validate(response.json(), content["application/json"]["schema"])
        elif content:  # a file: the type documented, and a body
            (media_type,) = content
            assert (response.header("Content-Type") or "").startswith(media_type), path
            assert response.body, f"{method} {path}"
        else:
            assert response.body == b"", f"{method} {path}"
        if response.status < 400:
            seen.add((method.lower(), operation["operationId"]))

    every = {
        (method, op["operationId"])
        for operations in document["paths"].values()
        for method, op in operations.items()
    }
    assert seen == every  # the tour reached every operation successfully


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x02" * 2000)
    return out.getvalue()
