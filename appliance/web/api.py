"""REST API routes (JSON): the signed-in account, API tokens, audit log, users, roles
and extensions. Each route parses, calls a store service, and returns a dict.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Final

import bottle

from appliance.store.api_tokens import TokenInfo, check_token_name
from appliance.store.audit import MAX_PAGE
from appliance.store.errors import NotFoundError
from appliance.store.extensions import (
    ExtensionInfo,
    check_email,
    check_name,
    check_number,
    check_password,
)
from appliance.store.permissions import check_permissions
from appliance.store.users import RoleInfo, UserInfo
from appliance.web import schemas
from appliance.web.audit_trail import change
from appliance.web.auth import Principal, current
from appliance.web.jsonio import Fields, read_object
from appliance.web.registry import SIGNED_IN, Registry
from appliance.web.services import WebServices

GENERATED_PASSWORD_BYTES: Final = 12  # 16 characters of base64url


def token_dict(info: TokenInfo) -> dict[str, object]:
    return dataclasses.asdict(info)


def user_dict(info: UserInfo) -> dict[str, object]:
    return dataclasses.asdict(info)


def role_dict(info: RoleInfo) -> dict[str, object]:
    return {**dataclasses.asdict(info), "permissions": list(info.permissions)}


def extension_dict(info: ExtensionInfo) -> dict[str, object]:
    algorithms = None if info.algorithms is None else list(info.algorithms)
    return {**dataclasses.asdict(info), "algorithms": algorithms}


def me_dict(principal: Principal) -> dict[str, object]:
    session = principal.session
    return {
        "username": principal.username,
        "role": principal.role,
        "extension": principal.extension,
        "permissions": sorted(principal.permissions),
        "must_change_password": principal.must_change_password,
        "auth": "token" if session is None else "session",
        # A script that signed in with the cookie needs this for its POSTs.
        "csrf_token": None if session is None else session.csrf_token,
    }


def _int_query(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bottle.HTTPError(400, f"query {name}: an integer from {low} to {high}")
    return int(raw)


def _may_grant(principal: Principal, services: WebServices, role: str) -> None:
    """Nobody hands out a role stronger than their own: no escalation by user:write."""
    permissions = services.accounts.get_role(role).permissions
    missing = sorted(p for p in permissions if not principal.may(p))
    if missing:
        raise bottle.HTTPError(403, f"role {role!r} has permissions you lack: {', '.join(missing)}")


def created() -> None:
    bottle.response.status = 201


def no_content() -> str:
    bottle.response.status = 204
    return ""


def register_api(reg: Registry, services: WebServices) -> None:
    accounts = services.accounts
    directory = services.directory

    # -- the signed-in account ---------------------------------------------------

    @reg.add(
        "GET",
        "/api/me",
        SIGNED_IN,
        "The signed-in account",
        response=schemas.ME,
        while_must_change=True,
    )
    def me() -> dict[str, object]:
        return me_dict(current())

    # -- API tokens (each account's own) -----------------------------------------

    @reg.add(
        "GET",
        "/api/tokens",
        "user:read_own",
        "List your API tokens",
        response=schemas.items(schemas.TOKEN),
    )
    def list_tokens() -> dict[str, object]:
        return {"items": [token_dict(t) for t in services.tokens.list(current().username)]}

    @reg.add(
        "POST",
        "/api/tokens",
        "user:write_own",
        "Create an API token (shown once)",
        request=schemas.TOKEN_NEW,
        response=schemas.TOKEN_CREATED,
        status=201,
    )
    def create_token() -> dict[str, object]:
        fields = Fields(read_object(), ("name",))
        name = fields.text("name", max_length=64)
        fields.check("name", name, check_token_name)
        fields.done()
        assert name is not None  # done() raised otherwise
        with change(services, "token.create", name):
            secret, info = services.tokens.create(current().username, name)
        created()
        return {"token": secret, "info": token_dict(info)}

    @reg.add(
        "DELETE", "/api/tokens/<token_id:int>", "user:write_own", "Revoke an API token", status=204
    )
    def revoke_token(token_id: int) -> str:
        with change(services, "token.revoke", str(token_id)):
            services.tokens.revoke(token_id, current().username)
        return no_content()

    # -- audit log ---------------------------------------------------------------

    @reg.add(
        "GET",
        "/api/audit",
        "audit:read",
        "Audit log, newest first",
        response=schemas.items(schemas.AUDIT_ENTRY),
    )
    def audit() -> dict[str, object]:
        limit = _int_query("limit", 100, 1, MAX_PAGE) or 100
        before = _int_query("before", None, 1, 2**62)
        actor = bottle.request.query.get("actor") or None
        entries = services.audit.entries(limit, before, actor)
        return {"items": [dataclasses.asdict(e) for e in entries]}

    # -- users -------------------------------------------------------------------

    @reg.add(
        "GET", "/api/users", "user:read", "List web accounts", response=schemas.items(schemas.USER)
    )
    def list_users() -> dict[str, object]:
        return {"items": [user_dict(u) for u in accounts.list_users()]}

    @reg.add("GET", "/api/users/<username>", "user:read", "One web account", response=schemas.USER)
    def get_user(username: str) -> dict[str, object]:
        return user_dict(accounts.get_user(username))

    @reg.add(
        "POST",
        "/api/users",
        "user:write",
        "Create a web account",
        request=schemas.USER_NEW,
        response=schemas.USER,
        status=201,
    )
    def create_user() -> dict[str, object]:
        fields = Fields(read_object(), ("username", "password", "role", "extension"))
        username = fields.text("username", max_length=64)
        password = fields.text("password", max_length=128)
        fields.check("password", password, check_password)
        role = fields.text("role", max_length=32)
        extension = fields.text("extension", required=False, max_length=15)
        fields.done()
        assert username is not None and password is not None and role is not None
        _may_grant(current(), services, role)
        with change(services, "user.create", username, f"role {role}"):
            info = accounts.create_user(username, password, role, extension=extension)
        created()
        return user_dict(info)

    @reg.add(
        "POST",
        "/api/users/<username>/password",
        "user:write",
        "Set a web account's password (it must be changed at next sign-in by default)",
        request=schemas.USER_PASSWORD,
        response=schemas.USER,
    )
    def set_user_password(username: str) -> dict[str, object]:
        fields = Fields(read_object(), ("password", "must_change_password"))
        password = fields.text("password", max_length=128)
        fields.check("password", password, check_password)
        must_change = fields.boolean("must_change_password", True)
        fields.done()
        assert password is not None
        _may_grant(current(), services, accounts.get_user(username).role)
        with change(services, "user.password", username):
            accounts.set_user_password(username, password, must_change_password=must_change)
            services.sessions.delete_for_user(username)  # whoever had it is signed out
        return user_dict(accounts.get_user(username))

    @reg.add("DELETE", "/api/users/<username>", "user:delete", "Delete a web account", status=204)
    def delete_user(username: str) -> str:
        principal = current()
        if username == principal.username:
            raise bottle.HTTPError(400, "you cannot delete your own account")
        _may_grant(principal, services, accounts.get_user(username).role)
        with change(services, "user.delete", username):
            accounts.delete_user(username)
        return no_content()

    # -- roles -------------------------------------------------------------------

    @reg.add(
        "GET",
        "/api/roles",
        "role:read",
        "List roles and their permissions",
        response=schemas.items(schemas.ROLE),
    )
    def list_roles() -> dict[str, object]:
        return {"items": [role_dict(r) for r in accounts.list_roles()]}

    @reg.add("GET", "/api/roles/<name>", "role:read", "One role", response=schemas.ROLE)
    def get_role(name: str) -> dict[str, object]:
        return role_dict(accounts.get_role(name))

    @reg.add(
        "POST",
        "/api/roles",
        "role:write",
        "Create a custom role",
        request=schemas.ROLE_NEW,
        response=schemas.ROLE,
        status=201,
    )
    def create_role() -> dict[str, object]:
        fields = Fields(read_object(), ("name", "description", "permissions"))
        name = fields.text("name", max_length=32)
        description = fields.text("description", required=False, max_length=200) or ""
        permissions = fields.strings("permissions")
        fields.check("permissions", permissions, check_permissions)
        fields.done()
        assert name is not None
        principal = current()
        missing = sorted(p for p in set(permissions) if not principal.may(p))
        if missing:
            raise bottle.HTTPError(403, f"you cannot grant what you lack: {', '.join(missing)}")
        with change(services, "role.create", name, ",".join(sorted(set(permissions)))):
            info = accounts.create_role(name, description, permissions)
        created()
        return role_dict(info)

    @reg.add("DELETE", "/api/roles/<name>", "role:delete", "Delete a custom role", status=204)
    def delete_role(name: str) -> str:
        with change(services, "role.delete", name):
            accounts.delete_role(name)
        return no_content()

    # -- extensions --------------------------------------------------------------

    def visible(number: str) -> None:
        """A user role sees only its own extension; others' look absent."""
        principal = current()
        if not principal.may("extension:read") and principal.extension != number:
            raise NotFoundError(f"no extension {number}")

    @reg.add(
        "GET",
        "/api/extensions",
        "extension:read_own",
        "List extensions (only your own without extension:read)",
        response=schemas.items(schemas.EXTENSION),
    )
    def list_extensions() -> dict[str, object]:
        principal = current()
        if principal.may("extension:read"):
            found = directory.list()
        elif principal.extension is not None:
            found = [directory.get(principal.extension)]
        else:
            found = []
        return {"items": [extension_dict(e) for e in found]}

    @reg.add(
        "GET",
        "/api/extensions/<number>",
        "extension:read_own",
        "One extension",
        response=schemas.EXTENSION,
    )
    def get_extension(number: str) -> dict[str, object]:
        visible(number)
        return extension_dict(directory.get(number))

    @reg.add(
        "POST",
        "/api/extensions",
        "extension:write",
        "Add an extension; its SIP password is generated unless given, and shown once",
        request=schemas.EXTENSION_NEW,
        response=schemas.EXTENSION_CREATED,
        status=201,
    )
    def create_extension() -> dict[str, object]:
        fields = Fields(read_object(), ("number", "password", "name", "email"))
        number = fields.text("number", max_length=15)
        fields.check("number", number, check_number)
        password = fields.text("password", required=False, max_length=128)
        fields.check("password", password, check_password)
        name = fields.text("name", required=False, max_length=64)
        fields.check("name", name, check_name)
        email = fields.text("email", required=False, max_length=254)
        fields.check("email", email, check_email)
        if number is not None and "number" not in fields.errors and directory.existing([number]):
            fields.errors["number"] = f"extension {number} already exists"
        fields.done()
        assert number is not None
        password = password or secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        with change(services, "extension.create", number):
            info = directory.add(number, password, name, email)
        created()
        return {"extension": extension_dict(info), "password": password}

    @reg.add(
        "POST",
        "/api/extensions/<number>/password",
        "extension:write",
        "Set or generate an extension's SIP password (shown once)",
        request=schemas.EXTENSION_PASSWORD,
        response=schemas.NEW_PASSWORD,
    )
    def reset_extension_password(number: str) -> dict[str, object]:
        fields = Fields(read_object(), ("password",))
        password = fields.text("password", required=False, max_length=128)
        fields.check("password", password, check_password)
        fields.done()
        password = password or secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        with change(services, "extension.password", number):
            directory.set_password(number, password)
        return {"password": password}

    @reg.add(
        "DELETE", "/api/extensions/<number>", "extension:delete", "Delete an extension", status=204
    )
    def delete_extension(number: str) -> str:
        with change(services, "extension.delete", number):
            directory.delete(number)
        return no_content()
