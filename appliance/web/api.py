"""REST API routes (JSON): the signed-in account, API tokens, audit log, users, roles,
extensions and their bulk import. Each route parses, calls a store service, and
returns a dict.
"""

from __future__ import annotations

import dataclasses
import json
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
from appliance.store.importer import MAX_BYTES, Format, ImportIssue, ImportReport
from appliance.store.permissions import check_permissions
from appliance.store.users import RoleInfo, UserInfo
from appliance.web import schemas
from appliance.web.audit_trail import change
from appliance.web.auth import Principal, current
from appliance.web.grants import lacking, role_lacking
from appliance.web.import_pages import run_import
from appliance.web.jsonio import Fields, read_object
from appliance.web.provisioning import generate_password
from appliance.web.registry import SIGNED_IN, Registry, Schema
from appliance.web.services import WebServices

# Bodies of the changes below; kept here, next to the routes that read them.
EXTENSION_CHANGE: Final = schemas.obj(
    {
        "name": schemas.NULLABLE_STRING,
        "email": schemas.NULLABLE_STRING,
        "enabled": {"type": "boolean"},
    },
    required=(),
)
USER_CHANGE: Final = schemas.obj(
    {"role": {"type": "string"}, "extension": schemas.NULLABLE_STRING}, required=()
)
ROLE_CHANGE: Final = schemas.obj(
    {
        "description": {"type": "string"},
        "permissions": {"type": "array", "items": {"type": "string"}},
    },
    required=(),
)
# The rows are checked one by one by the importer, which names each bad row in its
# report (and, with ?partial=true, keeps the good ones): so the schema takes any row,
# and says in the description what a good row holds.
_ANY_ROW: Final[Schema] = {
    "description": (
        "any JSON value: a row that is not an object with these fields is reported. A "
        "good row: "
        "number (string or integer) and password (string) required; name and email "
        "optional (strings)"
    ),
}
IMPORT_REQUEST: Final[Schema] = {
    "description": (
        'The file itself: a JSON list of extensions or {"extensions": [...]}, or CSV '
        "sent as text/csv with a header row number,password[,name][,email]. A password "
        "is required on every row. Bad rows are reported, not refused by the schema."
    ),
    "oneOf": [
        {"type": "array", "items": _ANY_ROW},
        schemas.obj({"extensions": {"type": "array", "items": _ANY_ROW}}),
    ],
}
IMPORT_ISSUE: Final = schemas.obj(
    {
        "reason": {"type": "string"},
        "line": {"type": ["integer", "null"], "description": "CSV: physical line, from 1"},
        "index": {"type": ["integer", "null"], "description": "JSON: index in the list, from 0"},
        "number": schemas.NULLABLE_STRING,
    }
)
IMPORT_REPORT: Final = schemas.obj(
    {
        "imported": {"type": "array", "items": {"type": "string"}},
        "issues": {"type": "array", "items": IMPORT_ISSUE},
        "partial": {"type": "boolean"},
    }
)
IMPORT_FORMATS: Final = {"text/csv": Format.CSV, "application/json": Format.JSON}


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


def issue_key(issue: ImportIssue) -> str:
    if issue.line is not None:
        return f"line {issue.line}"
    return "file" if issue.index is None else f"index {issue.index}"


def report_dict(report: ImportReport, partial: bool) -> dict[str, object]:
    return {
        "imported": list(report.imported),
        "issues": [dataclasses.asdict(i) for i in report.issues],
        "partial": partial,
    }


def refused_import(report: ImportReport) -> bottle.HTTPResponse:
    """Nothing written: 400 in the one error shape, each bad row under its place."""
    fields: dict[str, str] = {}
    for issue in report.issues:
        where = issue_key(issue)
        reason = f"extension {issue.number}: {issue.reason}" if issue.number else issue.reason
        fields[where] = f"{fields[where]}; {reason}" if where in fields else reason
    what = "the file is unusable" if report.fatal else f"{len(report.issues)} bad row(s)"
    body = json.dumps({"error": f"nothing imported: {what}", "fields": fields})
    return bottle.HTTPResponse(body, 400, headers={"Content-Type": "application/json"})


def _read_upload() -> tuple[bytes, Format]:
    content_type = (bottle.request.content_type or "").split(";")[0].strip().lower()
    fmt = IMPORT_FORMATS.get(content_type)
    if fmt is None:
        raise bottle.HTTPError(415, "send the file as text/csv or application/json")
    if bottle.request.content_length > MAX_BYTES:
        raise bottle.HTTPError(413, f"file larger than {MAX_BYTES} bytes")
    return bottle.request.body.read(MAX_BYTES + 1), fmt


def _may_grant(principal: Principal, services: WebServices, role: str) -> None:
    """Nobody hands out a role stronger than their own: no escalation by user:write."""
    missing = role_lacking(principal, services.accounts, role)
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
        query=(("limit", "integer"), ("before", "integer"), ("actor", "string")),
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
        "PATCH",
        "/api/users/<username>",
        "user:write",
        "Change a web account's role or extension (null unties the extension)",
        request=USER_CHANGE,
        response=schemas.USER,
    )
    def change_user(username: str) -> dict[str, object]:
        data = read_object()
        fields = Fields(data, ("role", "extension"))
        role = fields.text("role", required=False, max_length=32)
        extension = fields.text("extension", required=False, max_length=15)
        fields.check("extension", extension, check_number)
        if role is not None and role not in {r.name for r in accounts.list_roles()}:
            fields.errors["role"] = f"no role {role!r}"
        if extension is not None and "extension" not in fields.errors:
            if not directory.existing([extension]):
                fields.errors["extension"] = f"no extension {extension}"
        fields.done()
        principal = current()
        old = accounts.get_user(username)
        _may_grant(principal, services, old.role)
        new_role = old.role if role is None else role
        new_extension = extension if "extension" in data else old.extension
        if new_role != old.role:
            if username == principal.username:
                raise bottle.HTTPError(400, "you cannot change your own role")
            _may_grant(principal, services, new_role)
        if (new_role, new_extension) == (old.role, old.extension):
            return user_dict(old)  # nothing to change, nothing to record
        detail = f"role {new_role}, extension {new_extension or 'none'}"
        with change(services, "user.change", username, detail):
            if new_role != old.role:
                accounts.set_user_role(username, new_role)
            if new_extension != old.extension:
                accounts.set_user_extension(username, new_extension)
        return user_dict(accounts.get_user(username))

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
        missing = lacking(current(), permissions)
        if missing:
            raise bottle.HTTPError(403, f"you cannot grant what you lack: {', '.join(missing)}")
        with change(services, "role.create", name, ",".join(sorted(set(permissions)))):
            info = accounts.create_role(name, description, permissions)
        created()
        return role_dict(info)

    @reg.add(
        "PATCH",
        "/api/roles/<name>",
        "role:write",
        "Change a custom role's description or permissions (system roles are fixed)",
        request=ROLE_CHANGE,
        response=schemas.ROLE,
    )
    def change_role(name: str) -> dict[str, object]:
        data = read_object()
        fields = Fields(data, ("description", "permissions"))
        description = fields.text("description", required=False, max_length=200)
        permissions = fields.strings("permissions") if "permissions" in data else None
        fields.check("permissions", permissions, check_permissions)
        fields.done()
        old = accounts.get_role(name)
        wanted = old.permissions if permissions is None else tuple(permissions)
        # Taking away what you lack counts too: a weaker account edits no stronger role.
        missing = lacking(current(), (*old.permissions, *wanted))
        if missing:
            raise bottle.HTTPError(403, f"you cannot grant what you lack: {', '.join(missing)}")
        if old.is_system:
            raise bottle.HTTPError(400, f"role {name!r} is a system role and cannot be changed")
        new_description = old.description if description is None else description
        if (new_description, check_permissions(wanted)) == (old.description, old.permissions):
            return role_dict(old)
        with change(services, "role.change", name, ",".join(check_permissions(wanted))):
            info = accounts.update_role(name, new_description, wanted)
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
        password = password or generate_password()
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
        password = password or generate_password()
        with change(services, "extension.password", number):
            directory.set_password(number, password)
        return {"password": password}

    @reg.add(
        "PATCH",
        "/api/extensions/<number>",
        "extension:write",
        "Change an extension's name, e-mail address or whether it may register",
        request=EXTENSION_CHANGE,
        response=schemas.EXTENSION,
    )
    def change_extension(number: str) -> dict[str, object]:
        data = read_object()
        fields = Fields(data, ("name", "email", "enabled"))
        name = fields.text("name", required=False, max_length=64)
        fields.check("name", name, check_name)
        email = fields.text("email", required=False, max_length=254)
        fields.check("email", email, check_email)
        enabled = fields.boolean("enabled", True) if "enabled" in data else None
        fields.done()
        old = directory.get(number)
        details = (
            name if "name" in data else old.name,
            email if "email" in data else old.email,
        )
        now_enabled = old.enabled if enabled is None else enabled
        changed = [
            what
            for what, before, after in (
                ("name", old.name, check_name(details[0])),
                ("email", old.email, check_email(details[1])),
                ("enabled", old.enabled, now_enabled),
            )
            if before != after
        ]
        if not changed:
            return extension_dict(old)
        with change(services, "extension.change", number, ", ".join(changed)):
            directory.set_details(number, *details)
            directory.set_enabled(number, now_enabled)
        return extension_dict(directory.get(number))

    @reg.add(
        "POST",
        "/api/extensions/import",
        "extension:write",
        "Add extensions from a CSV or JSON file; ?partial=true keeps the good rows "
        "when some are bad (otherwise nothing is written unless every row is good)",
        request=IMPORT_REQUEST,
        response=IMPORT_REPORT,
        query=(("partial", "boolean"),),
    )
    def import_extensions() -> dict[str, object] | bottle.HTTPResponse:
        raw = bottle.request.query.get("partial") or "false"
        if raw not in ("true", "false"):
            raise bottle.HTTPError(400, "query partial: true or false")
        partial = raw == "true"
        data, fmt = _read_upload()
        report = run_import(services, data, fmt, partial)
        if report.fatal or (report.issues and not partial):
            return refused_import(report)
        return report_dict(report, partial)

    @reg.add(
        "DELETE", "/api/extensions/<number>", "extension:delete", "Delete an extension", status=204
    )
    def delete_extension(number: str) -> str:
        with change(services, "extension.delete", number):
            directory.delete(number)
        return no_content()
