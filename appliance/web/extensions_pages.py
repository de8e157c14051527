"""Extension pages: the list (with registration state when the PBX runs), add, edit,
delete, and SIP password reset; a new password is shown once with what a phone needs.

Forms post back; on a validation error the form comes back with each reason next to
its field and the typed values kept. Every change goes through `change()`, so it is
in the audit log.
"""

from __future__ import annotations

import html
import logging
from typing import Final

import bottle

from appliance.store.errors import StoreError
from appliance.store.extensions import ExtensionInfo, check_email, check_name, check_number
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.choice_fields import checkbox_field, form_checked
from appliance.web.import_pages import register_import_pages
from appliance.web.pages import field, form_text, hidden_csrf, page, sentence
from appliance.web.provisioning import SipAccount, account_panel, generate_password, server_host
from appliance.web.registry import Registry
from appliance.web.services import WebServices

log = logging.getLogger(__name__)

LIVE_TIMEOUT: Final = 1.0  # s: a page waits this long for the PBX's registrations
NOTICES: Final = {"deleted": "The extension has been deleted.", "saved": "Changes saved."}


def _csrf() -> str:
    session = current().session
    return session.csrf_token if session else ""


def _notice() -> str:
    text = NOTICES.get(bottle.request.query.get("notice") or "", "")
    return f'<p class="notice" role="status">{html.escape(text)}</p>' if text else ""


def register_extension_pages(reg: Registry, services: WebServices) -> None:
    directory = services.directory
    register_import_pages(reg, services)

    def registered_numbers() -> set[str] | None:
        """AORs registered now; None when there is no PBX to ask or it did not answer."""
        if services.live is None:
            return None
        try:
            snapshot = services.live.snapshot(LIVE_TIMEOUT)
        except TimeoutError:
            log.warning("the PBX did not answer for registrations within %.1f s", LIVE_TIMEOUT)
            return None
        return {r.aor for r in snapshot.registrations}

    def table(extensions: list[ExtensionInfo]) -> str:
        e = html.escape
        if not extensions:
            return "<p>No extensions yet.</p>"
        live = services.live is not None
        registered = registered_numbers() if live else None
        head = "<th>Number</th><th>Name</th><th>E-mail</th><th>Enabled</th>"
        if live:
            head += "<th>Registered</th>"
        rows = []
        for ext in extensions:
            n = e(ext.number)
            cells = (
                f'<td><a href="/extensions/{n}" id="extension-{n}">{n}</a></td>'
                f"<td>{e(ext.name or '')}</td><td>{e(ext.email or '')}</td>"
                f"<td>{'yes' if ext.enabled else 'no'}</td>"
            )
            if live:
                state = (
                    "unknown"
                    if registered is None
                    else ("yes" if ext.number in registered else "no")
                )
                cells += f'<td class="registered-{state}">{state}</td>'
            rows.append(f"<tr>{cells}</tr>")
        return (
            f'<table id="extensions"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def list_page(
        values: dict[str, str],
        errors: dict[str, str],
        shown: SipAccount | None = None,
        status: int = 200,
    ) -> str:
        principal = current()
        parts = [_notice()]
        if shown is not None:
            parts.append(account_panel(shown))
        parts.append(table(directory.list()))
        if principal.may("extension:write"):
            fields = "\n".join(
                (
                    field(
                        "number", "Number", values.get("number", ""), errors.get("number"), "off"
                    ),
                    field(
                        "name", "Name (optional)", values.get("name", ""), errors.get("name"), "off"
                    ),
                    field(
                        "email",
                        "E-mail for voicemail (optional)",
                        values.get("email", ""),
                        errors.get("email"),
                        "email",
                    ),
                )
            )
            parts.append(
                "<h2>Add an extension</h2><p>Its SIP password is generated and shown once.</p>"
                f'<form method="post" action="/extensions" id="add-extension">{hidden_csrf()}'
                f'{fields}<button type="submit" id="add-submit">Add extension</button></form>'
                '<p><a href="/extensions/import" id="import-link">Import many from a CSV or '
                "JSON file</a></p>"
            )
        return page("Extensions", "\n".join(parts), status)

    @reg.add("GET", "/extensions", "extension:read", "Extensions", nav="Extensions", nav_order=10)
    def extensions() -> str:
        return list_page({}, {})

    @reg.add("POST", "/extensions", "extension:write", "Add an extension")
    def extensions_add() -> str:
        values = {k: form_text(k).strip() for k in ("number", "name", "email")}
        errors: dict[str, str] = {}
        for key, check in (("number", check_number), ("name", check_name), ("email", check_email)):
            try:
                check(values[key])
            except StoreError as exc:
                errors[key] = sentence(str(exc))
        if "number" not in errors and directory.existing([values["number"]]):
            errors["number"] = f"Extension {values['number']} already exists."
        if errors:
            return list_page(values, errors, status=400)
        password = generate_password()
        number = values["number"]
        with change(services, "extension.create", number):
            directory.add(number, password, values["name"] or None, values["email"] or None)
        shown = SipAccount(number, password, server_host(), directory.realm, services.sip_port)
        # Rendered in this answer, not after a redirect: the password is never stored.
        return list_page({}, {}, shown, 201)

    # -- one extension -----------------------------------------------------------

    def detail_page(
        number: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        shown: SipAccount | None = None,
        status: int = 200,
    ) -> str:
        e = html.escape
        ext = directory.get(number)
        errors = errors or {}
        principal = current()
        n = e(ext.number)
        parts = [_notice()]
        if shown is not None:
            parts.append(account_panel(shown))
        if values is None:
            values = {"name": ext.name or "", "email": ext.email or ""}
            enabled = ext.enabled
        else:
            enabled = values.get("enabled") == "yes"
        parts.append(
            f"<p>Extension <strong>{n}</strong>, in realm <code>{e(directory.realm)}</code>.</p>"
        )
        if principal.may("extension:write"):
            fields = "\n".join(
                (
                    field("name", "Name", values.get("name", ""), errors.get("name"), "off"),
                    field("email", "E-mail", values.get("email", ""), errors.get("email"), "email"),
                    checkbox_field("enabled", "Enabled: the phone may register and call", enabled),
                )
            )
            parts.append(
                f'<form method="post" action="/extensions/{n}" id="edit-extension">'
                f'{hidden_csrf()}{fields}<button type="submit" id="save-submit">Save</button>'
                "</form>"
                "<h2>SIP password</h2><p>A new password is generated and shown once; the "
                "phone stops registering until it is given the new one.</p>"
                f'<form method="post" action="/extensions/{n}/password" id="reset-password">'
                f'{hidden_csrf()}<button type="submit" id="reset-submit">Reset SIP password'
                "</button></form>"
            )
        else:
            parts.append(
                f"<dl><dt>Name</dt><dd>{e(ext.name or '')}</dd><dt>E-mail</dt>"
                f"<dd>{e(ext.email or '')}</dd><dt>Enabled</dt>"
                f"<dd>{'yes' if ext.enabled else 'no'}</dd></dl>"
            )
        if principal.may("extension:delete"):
            parts.append(
                f'<p><a href="/extensions/{n}/delete" id="delete-link">Delete extension {n}</a></p>'
            )
        parts.append('<p><a href="/extensions">All extensions</a></p>')
        return page(f"Extension {ext.number}", "\n".join(parts), status)

    @reg.add("GET", "/extensions/<number>", "extension:read", "One extension")
    def extension(number: str) -> str:
        return detail_page(number)

    @reg.add("POST", "/extensions/<number>", "extension:write", "Change an extension")
    def extension_edit(number: str) -> str:
        old = directory.get(number)
        values = {
            "name": form_text("name").strip(),
            "email": form_text("email").strip(),
            "enabled": "yes" if form_checked("enabled") else "",
        }
        errors: dict[str, str] = {}
        for key, check in (("name", check_name), ("email", check_email)):
            try:
                check(values[key])
            except StoreError as exc:
                errors[key] = sentence(str(exc))
        if errors:
            return detail_page(number, values, errors, status=400)
        name, email, enabled = (
            values["name"] or None,
            values["email"] or None,
            bool(values["enabled"]),
        )
        changed = [
            what
            for what, differs in (
                ("name", name != old.name),
                ("email", email != old.email),
                ("enabled", enabled != old.enabled),
            )
            if differs
        ]
        if changed:
            with change(services, "extension.change", number, ", ".join(changed)):
                directory.set_details(number, name, email)
                directory.set_enabled(number, enabled)
        return see_other(f"/extensions/{number}?notice=saved")

    @reg.add("POST", "/extensions/<number>/password", "extension:write", "Reset a SIP password")
    def extension_password(number: str) -> str:
        directory.get(number)  # 404 before anything else
        password = generate_password()
        with change(services, "extension.password", number):
            directory.set_password(number, password)
        shown = SipAccount(number, password, server_host(), directory.realm, services.sip_port)
        return detail_page(number, shown=shown)

    @reg.add("GET", "/extensions/<number>/delete", "extension:delete", "Confirm a deletion")
    def extension_delete_confirm(number: str) -> str:
        ext = directory.get(number)
        n = html.escape(ext.number)
        label = f" ({html.escape(ext.name)})" if ext.name else ""
        body = (
            f"<p>Delete extension <strong>{n}</strong>{label}? Its phone can no longer "
            "register, and web accounts tied to it lose the tie. This cannot be undone.</p>"
            f'<form method="post" action="/extensions/{n}/delete" id="delete-extension">'
            f'{hidden_csrf()}<button type="submit" id="delete-submit">Delete {n}</button> '
            f'<a href="/extensions/{n}">Cancel</a></form>'
        )
        return page(f"Delete extension {ext.number}?", body)

    @reg.add("POST", "/extensions/<number>/delete", "extension:delete", "Delete an extension")
    def extension_delete(number: str) -> str:
        with change(services, "extension.delete", number):
            directory.delete(number)
        return see_other("/extensions?notice=deleted")
