"""Users and roles pages: add, change, reset, delete; system roles read-only; nobody
grants what they lack, whatever the form was made to send."""

from __future__ import annotations

import re

import pytest

from appliance.web.services import WebServices

from .conftest import Client


def changes(services: WebServices) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in services.audit.entries() if e.action != "login"]


def helpdesk(admin: Client, services: WebServices) -> Client:
    """Signed in with a custom role that may manage users and roles, but little else."""
    services.accounts.create_role(
        "helpdesk", "", ["user:read", "user:write", "user:delete", "role:read", "role:write"]
    )
    services.accounts.create_user("hd", "helpdesk-pw-1", "helpdesk", must_change_password=False)
    client = Client(admin.app)
    assert client.login("hd", "helpdesk-pw-1").status == 303
    return client


def test_users_list_and_add(admin: Client, services: WebServices) -> None:
    text = admin.get("/users").text
    assert "<h1>Users</h1>" in text and 'id="user-alice"' in text
    assert '<a href="/users">Users</a>' in text and '<a href="/roles">Roles</a>' in text
    response = admin.post(
        "/users",
        form={
            "username": "carol",
            "password": "carol-first-1",
            "role": "operator",
            "extension": "102",
            "csrf_token": admin.csrf(),
        },
    )
    assert response.header("Location") == "/users/carol?notice=saved"
    user = services.accounts.get_user("carol")
    assert (user.role, user.extension, user.must_change_password) == ("operator", "102", True)
    assert changes(services) == [("user.create", "carol")]
    carol = Client(admin.app)
    assert carol.login("carol", "carol-first-1").header("Location") == "/password"


def test_add_validates_and_keeps_everything_but_the_password(
    admin: Client, services: WebServices
) -> None:
    response = admin.post(
        "/users",
        form={
            "username": "alice",
            "password": "pw-tiny",
            "role": "root",
            "extension": "999",
            "csrf_token": admin.csrf(),
        },
    )
    assert response.status == 400
    text = response.text
    assert 'id="username-error">User alice already exists.' in text
    assert 'id="password-error">Password too short' in text
    assert 'id="role-error">Choose a role.' in text
    assert 'id="extension-error">There is no extension 999.' in text
    assert 'value="alice"' in text and 'value="999"' in text and "pw-tiny" not in text
    bad_name = admin.post(
        "/users",
        form={"username": "a b", "password": "long-enough-1", "role": "user", "csrf_token": ""},
        headers={"X-CSRF-Token": admin.csrf()},
    )
    assert bad_name.status == 400 and 'id="username-error">Bad username' in bad_name.text
    assert changes(services) == []


def test_change_role_and_extension(admin: Client, services: WebServices) -> None:
    page = admin.get("/users/alice").text
    assert "<h1>User alice</h1>" in page and 'id="role"' in page and 'value="101"' in page
    csrf = admin.csrf()
    response = admin.post(
        "/users/alice", form={"role": "operator", "extension": "", "csrf_token": csrf}
    )
    assert response.header("Location") == "/users/alice?notice=saved"
    user = services.accounts.get_user("alice")
    assert (user.role, user.extension) == ("operator", None)
    bad = admin.post(
        "/users/alice", form={"role": "operator", "extension": "7x", "csrf_token": csrf}
    )
    assert bad.status == 400 and 'id="extension-error"' in bad.text and 'value="7x"' in bad.text
    own = admin.post("/users/admin", form={"role": "user", "extension": "", "csrf_token": csrf})
    assert own.status == 400 and "You cannot change your own role." in own.text
    assert services.accounts.get_user("admin").role == "administrator"
    assert "you cannot change your own role" in admin.get("/users/admin").text
    assert changes(services) == [("user.change", "alice")]


def test_reset_password_signs_the_account_out_and_forces_a_change(
    admin: Client, alice: Client, services: WebServices
) -> None:
    csrf = admin.csrf()
    short = admin.post("/users/alice/password", form={"password": "short", "csrf_token": csrf})
    assert short.status == 400 and 'id="password-error"' in short.text
    response = admin.post(
        "/users/alice/password", form={"password": "temporary-pw-1", "csrf_token": csrf}
    )
    assert response.header("Location") == "/users/alice?notice=password"
    assert alice.get("/api/me").status == 401
    assert services.accounts.get_user("alice").must_change_password
    assert Client(admin.app).login("alice", "temporary-pw-1").header("Location") == "/password"
    assert changes(services) == [("user.password", "alice")]


def test_delete_asks_first_and_not_yourself(admin: Client, services: WebServices) -> None:
    assert "<h1>Delete alice?</h1>" in admin.get("/users/alice/delete").text
    assert 'id="delete-link"' not in admin.get("/users/admin").text
    response = admin.post("/users/alice/delete", form={"csrf_token": admin.csrf()})
    assert response.header("Location") == "/users?notice=deleted"
    assert admin.get("/users/alice").status == 404
    assert admin.post("/users/admin/delete", form={"csrf_token": admin.csrf()}).status == 400
    assert changes(services) == [("user.delete", "alice")]


def test_a_weaker_account_cannot_hand_out_or_touch_a_stronger_role(
    admin: Client, services: WebServices
) -> None:
    hd = helpdesk(admin, services)
    form = hd.get("/users").text
    offered = re.findall(r'<option value="([^"]+)"', form)
    assert offered == ["helpdesk"]  # "user" can make calls, which helpdesk cannot
    csrf = hd.csrf()
    forged = hd.post(
        "/users",
        form={"username": "evil", "password": "evil-password", "role": "administrator"}
        | {"csrf_token": csrf},
    )
    assert forged.status == 400 and "This role has permissions you lack" in forged.text
    assert 'id="edit-user"' not in hd.get("/users/admin").text
    assert (
        hd.post(
            "/users/admin/password", form={"password": "taken-over-1", "csrf_token": csrf}
        ).status
        == 403
    )
    assert hd.post("/users/admin/delete", form={"csrf_token": csrf}).status == 403
    # alice's role can make calls, which helpdesk cannot: her account is out of reach.
    assert hd.post("/users/alice", form={"role": "helpdesk", "csrf_token": csrf}).status == 403
    services.accounts.create_user("hd2", "helpdesk-pw-2", "helpdesk")
    climb = hd.post("/users/hd2", form={"role": "administrator", "csrf_token": csrf})
    assert (
        climb.status == 400 and 'id="role-error">This role has permissions you lack' in climb.text
    )
    assert services.accounts.get_user("alice").role == "user"
    assert services.accounts.get_user("hd2").role == "helpdesk"
    assert changes(services) == []


# -- roles -------------------------------------------------------------------------


def test_roles_list_add_edit_delete(admin: Client, services: WebServices) -> None:
    text = admin.get("/roles").text
    assert "<h1>Roles</h1>" in text and 'id="role-administrator"' in text
    assert 'id="permissions-call-make"' in text
    csrf = admin.csrf()
    response = admin.post(
        "/roles",
        body=b"name=night&description=Night+shift&permissions=call%3Amake&permissions=cdr%3Aread"
        + f"&csrf_token={csrf}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.header("Location") == "/roles/night?notice=saved"
    role = services.accounts.get_role("night")
    assert (role.description, role.permissions) == ("Night shift", ("call:make", "cdr:read"))
    page = admin.get("/roles/night").text
    assert 'id="permissions-cdr-read" name="permissions" value="cdr:read" checked' in page
    response = admin.post(
        "/roles/night",
        form={"description": "Late shift", "permissions": "cdr:read", "csrf_token": csrf},
    )
    assert response.status == 303
    assert services.accounts.get_role("night").permissions == ("cdr:read",)
    assert "<h1>Delete role night?</h1>" in admin.get("/roles/night/delete").text
    assert admin.post("/roles/night/delete", form={"csrf_token": csrf}).status == 303
    assert admin.get("/roles/night").status == 404
    assert changes(services) == [
        ("role.delete", "night"),
        ("role.change", "night"),
        ("role.create", "night"),
    ]


def test_role_form_errors_keep_the_ticks(admin: Client, services: WebServices) -> None:
    response = admin.post(
        "/roles",
        form={
            "name": "Bad Name",
            "description": "x",
            "permissions": "cdr:read",
            "csrf_token": admin.csrf(),
        },
    )
    assert response.status == 400
    assert 'id="name-error">Bad role name' in response.text
    assert 'value="Bad Name"' in response.text
    assert 'value="cdr:read" checked' in response.text
    taken = admin.post("/roles", form={"name": "operator", "csrf_token": admin.csrf()})
    assert 'id="name-error">Role operator already exists.' in taken.text
    unknown = admin.post(
        "/roles", form={"name": "x", "permissions": "root:all", "csrf_token": admin.csrf()}
    )
    assert 'id="permissions-error">Unknown permission(s): root:all.' in unknown.text
    assert changes(services) == []


def test_system_roles_are_read_only(admin: Client, services: WebServices) -> None:
    text = admin.get("/roles/operator").text
    assert "A system role: it cannot be changed." in text and 'id="edit-role"' not in text
    assert 'id="delete-link"' not in text
    csrf = admin.csrf()
    assert (
        admin.post(
            "/roles/operator", form={"permissions": "system:write", "csrf_token": csrf}
        ).status
        == 400
    )
    assert admin.get("/roles/operator/delete").status == 400
    assert admin.post("/roles/operator/delete", form={"csrf_token": csrf}).status == 400
    assert "system:write" not in services.accounts.get_role("operator").permissions


def test_a_role_in_use_is_kept(admin: Client, services: WebServices) -> None:
    services.accounts.create_role("night", "", [])
    services.accounts.create_user("nina", "nina-password-1", "night")
    response = admin.post("/roles/night/delete", form={"csrf_token": admin.csrf()})
    assert response.status == 400 and "still given to 1 user(s)" in response.text
    assert services.accounts.get_role("night").name == "night"


def test_role_boxes_one_lacks_are_disabled_and_refused(
    admin: Client, services: WebServices
) -> None:
    hd = helpdesk(admin, services)
    text = hd.get("/roles").text
    assert 'value="system:write" disabled' in text
    assert re.search(r'value="user:read"(?! disabled)', text)
    response = hd.post(
        "/roles", form={"name": "root", "permissions": "system:write", "csrf_token": hd.csrf()}
    )
    assert response.status == 400
    assert 'id="permissions-error">You cannot grant what you lack: system:write.' in response.text
    services.accounts.create_role("night", "", ["cdr:read"])
    assert 'id="edit-role"' not in hd.get("/roles/night").text  # holds what hd lacks
    refused = hd.post("/roles/night", form={"permissions": "user:read", "csrf_token": hd.csrf()})
    assert refused.status == 403
    assert services.accounts.get_role("night").permissions == ("cdr:read",)


@pytest.mark.parametrize(
    "path", ["/users", "/users/alice", "/users/alice/delete", "/roles", "/roles/operator"]
)
def test_pages_have_a_heading_and_no_inline_script_or_style(admin: Client, path: str) -> None:
    text = admin.get(path).text
    assert text.count("<h1>") == 1
    assert "<script" not in text and "style=" not in text and "<style" not in text
    assert re.search(r"\son[a-z]+=", text) is None
