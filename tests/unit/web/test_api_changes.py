"""PATCH routes of the API: an extension's details, a user's role and extension, a
custom role; the escalation rule holds for each."""

from __future__ import annotations

from appliance.web.services import WebServices

from .conftest import Client


def call(client: Client, method: str, path: str, body: object = None) -> tuple[int, object]:
    headers = {"X-CSRF-Token": client.csrf()} if method != "GET" else {}
    response = client.request(method, path, json_body=body, headers=headers)
    return response.status, response.json() if response.body else None


def test_extension_details_change_only_where_given(admin: Client, services: WebServices) -> None:
    status, body = call(admin, "PATCH", "/api/extensions/101", {"email": "alice@example.com"})
    assert status == 200
    assert (body["name"], body["email"], body["enabled"]) == ("Alice", "alice@example.com", True)  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/extensions/101", {"name": None, "enabled": False})
    assert (body["name"], body["email"], body["enabled"]) == (None, "alice@example.com", False)  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/extensions/101", {"email": "x", "colour": "red"})
    assert status == 400 and set(body["fields"]) == {"email", "colour"}  # type: ignore[index]
    assert call(admin, "PATCH", "/api/extensions/999", {})[0] == 404
    details = [e.detail for e in services.audit.entries() if e.action == "extension.change"]
    assert details == ["name, enabled", "email"]
    assert call(admin, "PATCH", "/api/extensions/101", {"email": "alice@example.com"})[0] == 200
    assert len(services.audit.entries()) == 3  # sign-in and two changes: a no-op is not one


def test_a_users_role_and_extension_change(admin: Client, services: WebServices) -> None:
    status, body = call(admin, "PATCH", "/api/users/alice", {"role": "operator"})
    assert (status, body["role"], body["extension"]) == (200, "operator", "101")  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/users/alice", {"extension": None})
    assert body["extension"] is None  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/users/alice", {"role": "root", "extension": "999"})
    assert status == 400
    assert body["fields"] == {"role": "no role 'root'", "extension": "no extension 999"}  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/users/admin", {"role": "user"})
    assert (status, body) == (400, {"error": "you cannot change your own role"})
    assert services.accounts.get_user("admin").role == "administrator"
    assert [e.detail for e in services.audit.entries() if e.action == "user.change"] == [
        "role operator, extension none",
        "role operator, extension 101",
    ]


def test_a_custom_role_changes_within_what_the_editor_holds(
    admin: Client, services: WebServices
) -> None:
    services.accounts.create_role("helpdesk", "", ["user:read", "user:write", "role:write"])
    services.accounts.create_role("night", "Night", ["user:read"])
    services.accounts.create_user("hd", "helpdesk-pw-1", "helpdesk", must_change_password=False)
    helpdesk = Client(admin.app)
    assert helpdesk.login("hd", "helpdesk-pw-1").status == 303
    status, body = call(helpdesk, "PATCH", "/api/roles/night", {"permissions": ["system:write"]})
    assert status == 403 and "system:write" in body["error"]  # type: ignore[index]
    status, body = call(helpdesk, "PATCH", "/api/roles/night", {"description": "Late"})
    assert (status, body["description"], body["permissions"]) == (200, "Late", ["user:read"])  # type: ignore[index]
    assert call(helpdesk, "PATCH", "/api/users/admin", {"extension": "101"})[0] == 403
    assert call(helpdesk, "PATCH", "/api/users/alice", {"role": "administrator"})[0] == 403
    status, body = call(admin, "PATCH", "/api/roles/operator", {"description": "mine"})
    assert status == 400 and "system role" in body["error"]  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/roles/night", {"permissions": ["root"]})
    assert status == 400 and "unknown permission" in body["fields"]["permissions"]  # type: ignore[index]
    status, body = call(admin, "PATCH", "/api/roles/night", {"permissions": ["system:write"]})
    assert (status, body["permissions"]) == (200, ["system:write"])  # type: ignore[index]
    # Now night holds what helpdesk lacks: helpdesk cannot even take it away.
    assert call(helpdesk, "PATCH", "/api/roles/night", {"permissions": []})[0] == 403
