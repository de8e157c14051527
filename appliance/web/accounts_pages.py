"""Web accounts and roles pages: list, add, change, reset a password, delete; custom
roles with a permission check box each (system roles are shown read-only).

Nobody grants a permission they lack (`appliance.web.grants`): the role list offers
only roles the signed-in account could hand out, boxes it could not tick are
disabled, and the server checks both again.
"""

from __future__ import annotations

import html
from typing import Final

import bottle

from appliance.store.errors import StoreError
from appliance.store.extensions import check_number, check_password
from appliance.store.permissions import PERMISSIONS
from appliance.store.users import MAX_DESCRIPTION, RoleInfo, UserInfo
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.choice_fields import checkbox_list, form_all, select_field
from appliance.web.grants import lacking, role_lacking
from appliance.web.pages import field, form_text, hidden_csrf, page, sentence
from appliance.web.registry import Registry
from appliance.web.services import WebServices

NOTICES: Final = {
    "saved": "Changes saved.",
    "password": "Password set. The account must choose a new one at its next sign-in.",
    "deleted": "Deleted.",
}


def _notice() -> str:
    text = NOTICES.get(bottle.request.query.get("notice") or "", "")
    return f'<p class="notice" role="status">{html.escape(text)}</p>' if text else ""


def _table(table_id: str, head: tuple[str, ...], rows: list[str]) -> str:
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return (
        f'<table id="{table_id}"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def register_account_pages(reg: Registry, services: WebServices) -> None:
    accounts = services.accounts
    directory = services.directory

    def grantable_roles() -> list[tuple[str, str]]:
        principal = current()
        return [
            (r.name, r.name) for r in accounts.list_roles() if not lacking(principal, r.permissions)
        ]

    def check_extension(number: str, errors: dict[str, str]) -> None:
        if not number:
            return
        try:
            check_number(number)
        except StoreError as exc:
            errors["extension"] = sentence(str(exc))
            return
        if not directory.existing([number]):
            errors["extension"] = f"There is no extension {number}."

    def check_role(role: str, errors: dict[str, str]) -> None:
        if role not in {r.name for r in accounts.list_roles()}:
            errors["role"] = "Choose a role."
        elif missing := role_lacking(current(), accounts, role):
            errors["role"] = f"This role has permissions you lack: {', '.join(missing)}."

    # -- users -------------------------------------------------------------------

    def user_row(user: UserInfo) -> str:
        e = html.escape
        u = e(user.username)
        return (
            f'<tr><td><a href="/users/{u}" id="user-{u}">{u}</a></td><td>{e(user.role)}</td>'
            f"<td>{e(user.extension or '')}</td>"
            f"<td>{'yes' if user.must_change_password else 'no'}</td></tr>"
        )

    def users_page(values: dict[str, str], errors: dict[str, str], status: int = 200) -> str:
        parts = [
            _notice(),
            _table(
                "users",
                ("User name", "Role", "Extension", "Must change password"),
                [user_row(u) for u in accounts.list_users()],
            ),
        ]
        if current().may("user:write"):
            fields = "\n".join(
                (
                    field(
                        "username",
                        "User name",
                        values.get("username", ""),
                        errors.get("username"),
                        "off",
                    ),
                    field(
                        "password",
                        "First password (to be changed at the first sign-in)",
                        None,
                        errors.get("password"),
                        "new-password",
                    ),
                    select_field(
                        "role",
                        "Role",
                        grantable_roles(),
                        values.get("role", "user"),
                        errors.get("role"),
                    ),
                    field(
                        "extension",
                        "Extension (optional: what a user role's own pages show)",
                        values.get("extension", ""),
                        errors.get("extension"),
                        "off",
                    ),
                )
            )
            parts.append(
                '<h2>Add a web account</h2><form method="post" action="/users" id="add-user">'
                f'{hidden_csrf()}{fields}<button type="submit" id="add-submit">Add account'
                "</button></form>"
            )
        return page("Users", "\n".join(parts), status)

    @reg.add("GET", "/users", "user:read", "Web accounts", nav="Users", nav_order=20)
    def users() -> str:
        return users_page({}, {})

    @reg.add("POST", "/users", "user:write", "Add a web account")
    def users_add() -> str:
        values = {k: form_text(k).strip() for k in ("username", "role", "extension")}
        password = form_text("password")
        errors: dict[str, str] = {}
        username = values["username"]
        if not username:
            errors["username"] = "Enter a user name."
        elif any(u.username == username for u in accounts.list_users()):
            errors["username"] = f"User {username} already exists."
        try:
            check_password(password)
        except StoreError as exc:
            errors["password"] = sentence(str(exc))
        check_role(values["role"], errors)
        check_extension(values["extension"], errors)
        if not errors:
            try:
                with change(services, "user.create", username, f"role {values['role']}"):
                    accounts.create_user(
                        username, password, values["role"], extension=values["extension"] or None
                    )
            except StoreError as exc:  # the user name's form, checked by the store
                errors["username"] = sentence(str(exc))
        if errors:
            return users_page(values, errors, 400)
        return see_other(f"/users/{username}?notice=saved")

    def user_page(
        username: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        e = html.escape
        user = accounts.get_user(username)
        principal = current()
        errors = errors or {}
        values = values or {"role": user.role, "extension": user.extension or ""}
        u = e(user.username)
        password_state = (
            "must change its password at the next sign-in"
            if user.must_change_password
            else "its password is its own"
        )
        parts = [
            _notice(),
            f"<p>Role <strong>{e(user.role)}</strong>"
            f"{', extension ' + e(user.extension) if user.extension else ''}; "
            f"{password_state}.</p>",
        ]
        may_change = principal.may("user:write") and not role_lacking(
            principal, accounts, user.role
        )
        if may_change:
            roles = grantable_roles()
            role_field = (
                select_field("role", "Role", roles, values["role"], errors.get("role"))
                if user.username != principal.username
                else f'<p id="role-fixed">Role: {e(user.role)} (you cannot change your own '
                f'role).</p><input type="hidden" name="role" value="{e(user.role)}">'
                + (
                    f'<p class="error" id="role-error">{e(errors["role"])}</p>'
                    if "role" in errors
                    else ""
                )
            )
            extension = field(
                "extension",
                "Extension (empty: none)",
                values["extension"],
                errors.get("extension"),
                "off",
            )
            parts.append(
                f'<form method="post" action="/users/{u}" id="edit-user">{hidden_csrf()}'
                f'{role_field}{extension}<button type="submit" id="save-submit">Save</button>'
                "</form>"
            )
            password = field(
                "password", "New password", None, errors.get("password"), "new-password"
            )
            parts.append(
                "<h2>Reset the password</h2><p>The account is signed out everywhere and must "
                "choose a new password at its next sign-in.</p>"
                f'<form method="post" action="/users/{u}/password" id="reset-password">'
                f'{hidden_csrf()}{password}<button type="submit" id="reset-submit">'
                "Set password</button></form>"
            )
        elif principal.may("user:write"):
            parts.append(
                "<p>This account's role has permissions you lack: you cannot change it.</p>"
            )
        if (
            principal.may("user:delete")
            and user.username != principal.username
            and not role_lacking(principal, accounts, user.role)
        ):
            parts.append(f'<p><a href="/users/{u}/delete" id="delete-link">Delete {u}</a></p>')
        parts.append('<p><a href="/users">All accounts</a></p>')
        return page(f"User {user.username}", "\n".join(parts), status)

    def refuse_stronger(username: str) -> UserInfo:
        user = accounts.get_user(username)
        missing = role_lacking(current(), accounts, user.role)
        if missing:
            raise bottle.HTTPError(
                403, f"role {user.role!r} has permissions you lack: {', '.join(missing)}"
            )
        return user

    @reg.add("GET", "/users/<username>", "user:read", "One web account")
    def user(username: str) -> str:
        return user_page(username)

    @reg.add("POST", "/users/<username>", "user:write", "Change a web account's role or extension")
    def user_edit(username: str) -> str:
        old = refuse_stronger(username)
        principal = current()
        values = {"role": form_text("role").strip(), "extension": form_text("extension").strip()}
        errors: dict[str, str] = {}
        if values["role"] != old.role:
            if username == principal.username:
                errors["role"] = "You cannot change your own role."
            else:
                check_role(values["role"], errors)
        check_extension(values["extension"], errors)
        if errors:
            return user_page(username, values, errors, 400)
        extension = values["extension"] or None
        if (values["role"], extension) != (old.role, old.extension):
            detail = f"role {values['role']}, extension {extension or 'none'}"
            with change(services, "user.change", username, detail):
                if values["role"] != old.role:
                    accounts.set_user_role(username, values["role"])
                if extension != old.extension:
                    accounts.set_user_extension(username, extension)
        return see_other(f"/users/{username}?notice=saved")

    @reg.add("POST", "/users/<username>/password", "user:write", "Reset a web account's password")
    def user_password(username: str) -> str:
        refuse_stronger(username)
        password = form_text("password")
        try:
            check_password(password)
        except StoreError as exc:
            return user_page(username, None, {"password": sentence(str(exc))}, 400)
        with change(services, "user.password", username):
            accounts.set_user_password(username, password, must_change_password=True)
            services.sessions.delete_for_user(username)  # whoever had it is signed out
        return see_other(f"/users/{username}?notice=password")

    @reg.add("GET", "/users/<username>/delete", "user:delete", "Confirm deleting an account")
    def user_delete_confirm(username: str) -> str:
        user = refuse_stronger(username)
        u = html.escape(user.username)
        body = (
            f"<p>Delete the web account <strong>{u}</strong> ({html.escape(user.role)})? "
            "Its sessions and API tokens end with it.</p>"
            f'<form method="post" action="/users/{u}/delete" id="delete-user">{hidden_csrf()}'
            f'<button type="submit" id="delete-submit">Delete {u}</button> '
            f'<a href="/users/{u}">Cancel</a></form>'
        )
        return page(f"Delete {user.username}?", body)

    @reg.add("POST", "/users/<username>/delete", "user:delete", "Delete a web account")
    def user_delete(username: str) -> str:
        if username == current().username:
            raise bottle.HTTPError(400, "You cannot delete your own account.")
        refuse_stronger(username)
        with change(services, "user.delete", username):
            accounts.delete_user(username)
        return see_other("/users?notice=deleted")

    # -- roles -------------------------------------------------------------------

    def role_row(role: RoleInfo) -> str:
        e = html.escape
        r = e(role.name)
        return (
            f'<tr><td><a href="/roles/{r}" id="role-{r}">{r}</a></td>'
            f"<td>{e(role.description)}</td><td>{'system' if role.is_system else 'custom'}</td>"
            f"<td>{len(role.permissions)}</td></tr>"
        )

    def permission_boxes(checked: tuple[str, ...] | list[str], error: str | None) -> str:
        principal = current()
        return checkbox_list(
            "permissions",
            "Permissions",
            [(p, "") for p in PERMISSIONS],
            checked,
            error,
            disabled=lacking(principal, PERMISSIONS),
        )

    def role_fields(values: dict[str, str], checked: list[str], errors: dict[str, str]) -> str:
        return field(
            "description",
            "Description (optional)",
            values.get("description", ""),
            errors.get("description"),
            "off",
        ) + permission_boxes(checked, errors.get("permissions"))

    def read_role_form(errors: dict[str, str]) -> tuple[str, list[str]]:
        description = form_text("description").strip()
        if len(description) > MAX_DESCRIPTION or not description.isprintable():
            errors["description"] = f"At most {MAX_DESCRIPTION} printable characters."
        wanted = form_all("permissions")
        unknown = sorted(set(wanted) - set(PERMISSIONS))
        missing = lacking(current(), set(wanted) & set(PERMISSIONS))
        if unknown:
            errors["permissions"] = f"Unknown permission(s): {', '.join(unknown)}."
        elif missing:
            errors["permissions"] = f"You cannot grant what you lack: {', '.join(missing)}."
        return description, [p for p in PERMISSIONS if p in wanted]

    def roles_page(
        values: dict[str, str], checked: list[str], errors: dict[str, str], status: int = 200
    ) -> str:
        parts = [
            _notice(),
            _table(
                "roles",
                ("Role", "Description", "Kind", "Permissions"),
                [role_row(r) for r in accounts.list_roles()],
            ),
        ]
        if current().may("role:write"):
            name = field("name", "Name", values.get("name", ""), errors.get("name"), "off")
            parts.append(
                '<h2>Add a custom role</h2><form method="post" action="/roles" id="add-role">'
                f"{hidden_csrf()}{name}{role_fields(values, checked, errors)}"
                '<button type="submit" id="add-submit">Add role</button></form>'
            )
        return page("Roles", "\n".join(parts), status)

    @reg.add("GET", "/roles", "role:read", "Roles", nav="Roles", nav_order=25)
    def roles() -> str:
        return roles_page({}, [], {})

    @reg.add("POST", "/roles", "role:write", "Add a custom role")
    def roles_add() -> str:
        errors: dict[str, str] = {}
        name = form_text("name").strip()
        description, permissions = read_role_form(errors)
        values = {"name": name, "description": description}
        if not name:
            errors["name"] = "Enter a name."
        elif name in {r.name for r in accounts.list_roles()}:
            errors["name"] = f"Role {name} already exists."
        if not errors:
            try:
                with change(services, "role.create", name, ",".join(permissions)):
                    accounts.create_role(name, description, permissions)
            except StoreError as exc:  # the name's form, checked by the store
                errors["name"] = sentence(str(exc))
        if errors:
            return roles_page(values, permissions, errors, 400)
        return see_other(f"/roles/{name}?notice=saved")

    def role_page(
        name: str,
        values: dict[str, str] | None = None,
        checked: list[str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        e = html.escape
        role = accounts.get_role(name)
        principal = current()
        r = e(role.name)
        parts = [_notice()]
        editable = (
            not role.is_system
            and principal.may("role:write")
            and not lacking(principal, role.permissions)
        )
        if editable:
            values = values or {"description": role.description}
            boxes = role_fields(
                values, list(role.permissions) if checked is None else checked, errors or {}
            )
            parts.append(
                f'<form method="post" action="/roles/{r}" id="edit-role">{hidden_csrf()}'
                f'{boxes}<button type="submit" id="save-submit">Save</button></form>'
            )
        else:
            why = "A system role: it cannot be changed." if role.is_system else "Read only for you."
            items = "".join(f"<li><code>{e(p)}</code></li>" for p in role.permissions)
            parts.append(
                f"<p>{e(role.description)}</p><p>{why}</p>"
                f'<ul id="role-permissions">{items or "<li>No permissions.</li>"}</ul>'
            )
        if not role.is_system and principal.may("role:delete"):
            parts.append(f'<p><a href="/roles/{r}/delete" id="delete-link">Delete {r}</a></p>')
        parts.append('<p><a href="/roles">All roles</a></p>')
        return page(f"Role {role.name}", "\n".join(parts), status)

    @reg.add("GET", "/roles/<name>", "role:read", "One role")
    def role(name: str) -> str:
        return role_page(name)

    @reg.add("POST", "/roles/<name>", "role:write", "Change a custom role")
    def role_edit(name: str) -> str:
        old = accounts.get_role(name)
        if old.is_system:
            raise bottle.HTTPError(400, f"Role {name} is a system role: it cannot be changed.")
        if missing := lacking(current(), old.permissions):
            raise bottle.HTTPError(
                403, f"Role {name} has permissions you lack: {', '.join(missing)}"
            )
        errors: dict[str, str] = {}
        description, permissions = read_role_form(errors)
        if errors:
            return role_page(name, {"description": description}, permissions, errors, 400)
        if (description, tuple(permissions)) != (old.description, old.permissions):
            with change(services, "role.change", name, ",".join(permissions)):
                accounts.update_role(name, description, permissions)
        return see_other(f"/roles/{name}?notice=saved")

    @reg.add("GET", "/roles/<name>/delete", "role:delete", "Confirm deleting a role")
    def role_delete_confirm(name: str) -> str:
        role = accounts.get_role(name)
        r = html.escape(role.name)
        if role.is_system:
            raise bottle.HTTPError(400, f"Role {name} is a system role: it cannot be deleted.")
        body = (
            f"<p>Delete the role <strong>{r}</strong>? A role still given to an account "
            "is kept: give those accounts another role first.</p>"
            f'<form method="post" action="/roles/{r}/delete" id="delete-role">{hidden_csrf()}'
            f'<button type="submit" id="delete-submit">Delete {r}</button> '
            f'<a href="/roles/{r}">Cancel</a></form>'
        )
        return page(f"Delete role {role.name}?", body)

    @reg.add("POST", "/roles/<name>/delete", "role:delete", "Delete a custom role")
    def role_delete(name: str) -> str:
        with change(services, "role.delete", name):
            accounts.delete_role(name)  # StoreError (in use, system) -> 400 page
        return see_other("/roles?notice=deleted")
