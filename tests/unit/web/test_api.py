"""REST API behaviour: users, roles, extensions, audit; scope and escalation rules."""

from __future__ import annotations

from appliance.web.services import WebServices

from .conftest import Client


def call(client: Client, method: str, path: str, body: object = None) -> tuple[int, object]:
    headers = {"X-CSRF-Token": client.csrf()} if method != "GET" else {}
    response = client.request(method, path, json_body=body, headers=headers)
    return response.status, response.json() if response.body else None


def test_user_role_sees_only_its_own_extension(alice: Client) -> None:
    status, body = call(alice, "GET", "/api/extensions")
    assert status == 200
    assert [e["number"] for e in body["items"]] == ["101"]  # type: ignore[index]
    assert call(alice, "GET", "/api/extensions/101")[0] == 200
    assert call(alice, "GET", "/api/extensions/102") == (404, {"error": "no extension 102"})
    assert call(alice, "DELETE", "/api/extensions/101")[0] == 403


def test_operator_reads_every_extension_but_changes_none(oper: Client) -> None:
    status, body = call(oper, "GET", "/api/extensions")
    assert [e["number"] for e in body["items"]] == ["101", "102"]  # type: ignore[index]
    status, body = call(oper, "POST", "/api/extensions", {"number": "150"})
    assert status == 403
    assert body == {"error": "role 'operator' lacks permission extension:write"}


def test_extension_create_reset_delete_are_audited(admin: Client, services: WebServices) -> None:
    status, body = call(admin, "POST", "/api/extensions", {"number": "150", "name": "Desk"})
    assert status == 201
    password = body["password"]  # type: ignore[index]
    assert len(password) >= 16
    creds = services.directory.load_credentials()["150"]
    assert creds.ha1  # stored as HA1, the password itself nowhere
    status, body = call(admin, "POST", "/api/extensions/150/password", {})
    assert status == 200 and body["password"] != password  # type: ignore[index]
    status, body = call(admin, "POST", "/api/extensions/150/password", {"password": "given-pw-1"})
    assert body == {"password": "given-pw-1"}
    assert call(admin, "DELETE", "/api/extensions/150") == (204, None)
    assert call(admin, "DELETE", "/api/extensions/150")[0] == 404
    entries = services.audit.entries()
    assert [(e.actor, e.action, e.target, e.address) for e in entries[:4]] == [
        ("admin", "extension.delete", "150", "192.0.2.10"),
        ("admin", "extension.password", "150", "192.0.2.10"),
        ("admin", "extension.password", "150", "192.0.2.10"),
        ("admin", "extension.create", "150", "192.0.2.10"),
    ]
    assert all("given-pw-1" not in e.detail for e in entries)


def test_bad_fields_are_named_one_by_one(admin: Client, services: WebServices) -> None:
    status, body = call(
        admin,
        "POST",
        "/api/extensions",
        {"number": "12a", "password": "short", "email": "nope", "colour": "red"},
    )
    assert status == 400
    fields = body["fields"]  # type: ignore[index]
    assert set(fields) == {"number", "password", "email", "colour"}
    assert fields["number"] == "bad extension number '12a': must be 1 to 15 digits"
    assert fields["colour"] == "unknown field"
    status, body = call(admin, "POST", "/api/extensions", {"number": "101"})
    assert body["fields"] == {"number": "extension 101 already exists"}  # type: ignore[index]
    assert [e.action for e in services.audit.entries()] == ["login"]  # refusals change nothing


def test_not_json_is_refused(admin: Client) -> None:
    response = admin.request(
        "POST",
        "/api/tokens",
        body=b"name=x",
        headers={"X-CSRF-Token": admin.csrf(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 415
    response = admin.request(
        "POST",
        "/api/tokens",
        body=b"{not json",
        headers={"X-CSRF-Token": admin.csrf(), "Content-Type": "application/json"},
    )
    assert (response.status, response.json()) == (400, {"error": "body is not valid JSON"})
    response = admin.request(
        "POST", "/api/tokens", json_body=[1], headers={"X-CSRF-Token": admin.csrf()}
    )
    assert response.status == 400


def test_users_create_reset_delete(admin: Client, services: WebServices, app: object) -> None:
    status, body = call(
        admin,
        "POST",
        "/api/users",
        {"username": "bob", "password": "bob-password", "role": "user", "extension": "102"},
    )
    assert status == 201
    assert body["extension"] == "102" and body["must_change_password"]  # type: ignore[index]
    bob = Client(admin.app)
    assert bob.login("bob", "bob-password").header("Location") == "/password"
    status, body = call(admin, "POST", "/api/users/bob/password", {"password": "reset-pw-1"})
    assert status == 200 and body["must_change_password"]  # type: ignore[index]
    assert bob.get("/api/me").status == 401  # signed out by the reset
    assert call(admin, "DELETE", "/api/users/admin")[1] == {
        "error": "you cannot delete your own account"
    }
    assert call(admin, "DELETE", "/api/users/bob")[0] == 204
    assert call(admin, "GET", "/api/users/bob")[0] == 404
    actions = [e.action for e in services.audit.entries(actor="admin")]
    assert actions[:3] == ["user.delete", "user.password", "user.create"]


def test_nobody_grants_more_than_they_have(admin: Client, services: WebServices) -> None:
    services.accounts.create_role("helpdesk", "", ["user:read", "user:write", "role:write"])
    services.accounts.create_user("hd", "helpdesk-pw-1", "helpdesk", must_change_password=False)
    helpdesk = Client(admin.app)
    assert helpdesk.login("hd", "helpdesk-pw-1").status == 303
    status, body = call(
        helpdesk,
        "POST",
        "/api/users",
        {"username": "evil", "password": "evil-password", "role": "administrator"},
    )
    assert status == 403 and "permissions you lack" in body["error"]  # type: ignore[index]
    status, body = call(
        helpdesk, "POST", "/api/roles", {"name": "root", "permissions": ["system:write"]}
    )
    assert status == 403
    assert call(helpdesk, "POST", "/api/users/admin/password", {"password": "taken-over"})[0] == 403
    status, _ = call(
        helpdesk, "POST", "/api/roles", {"name": "readers", "permissions": ["user:read"]}
    )
    assert status == 201


def test_roles_create_list_delete(admin: Client) -> None:
    status, body = call(
        admin,
        "POST",
        "/api/roles",
        {"name": "night", "description": "Night shift", "permissions": ["call:make", "cdr:read"]},
    )
    assert (status, body["permissions"]) == (201, ["call:make", "cdr:read"])  # type: ignore[index]
    status, body = call(admin, "POST", "/api/roles", {"name": "x", "permissions": ["root:all"]})
    assert status == 400
    assert body["fields"]["permissions"].startswith("unknown permission(s): root:all")  # type: ignore[index]
    names = [r["name"] for r in call(admin, "GET", "/api/roles")[1]["items"]]  # type: ignore[index]
    assert names == ["administrator", "night", "operator", "user"]
    status, body = call(admin, "DELETE", "/api/roles/administrator")
    assert status == 400 and "system role" in body["error"]  # type: ignore[index]
    assert call(admin, "DELETE", "/api/roles/night")[0] == 204


def test_audit_log_pages_newest_first(admin: Client, services: WebServices) -> None:
    for n in range(5):
        services.audit.record("admin", "test.entry", str(n), "192.0.2.1")
    status, body = call(admin, "GET", "/api/audit?limit=2")
    items = body["items"]  # type: ignore[index]
    assert [i["target"] for i in items] == ["4", "3"]
    status, body = call(admin, "GET", f"/api/audit?limit=2&before={items[-1]['id']}")
    assert [i["target"] for i in body["items"]] == ["2", "1"]  # type: ignore[index]
    assert call(admin, "GET", "/api/audit?limit=0")[0] == 400
    assert call(admin, "GET", "/api/audit?limit=abc")[0] == 400
