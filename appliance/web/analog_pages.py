"""The analog ports page (`/analog`): each FXS/FXO port of the board as the running
PBX sees it (its role, its line machine's state, whether its extension registered)
and whether the line controller answers.

Roles: which extension each FXS port is and which number a ringing FXO line calls come
from yakyak.toml's [board] fxs_extensions and fxo_inbound; what is saved here goes over
them (setting ``analog.roles``) and the ports take it when YakYak next starts (their
SIP registrations and lines are set up once, at start).
"""

from __future__ import annotations

import html
from typing import Final

import bottle

from appliance.store.settings import ANALOG_ROLES_KEY, get_setting, set_setting
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.dashboard import look, ports_block, status_text
from appliance.web.events import EVENTS_PATH, SCRIPT_PATH
from appliance.web.pages import field, form_text, hidden_csrf, page
from appliance.web.registry import Registry
from appliance.web.services import WebServices

DIALABLE: Final = frozenset("0123456789*#+")
HELP = """<p>A port with the role "not set" is not used. An FXS port is an extension (it
must exist first); an FXO line calls a number when it rings (an extension, or the
auto-attendant's number). Roles can also be set in <code>yakyak.toml</code>'s
<code>[board]</code> (<code>fxs_extensions</code>, <code>fxo_inbound</code>); what is
saved here wins. New roles take effect when YakYak restarts.</p>"""
SAVED_NOTICE = "Saved: the ports take their new roles when YakYak restarts."


def saved_roles(services: WebServices) -> dict[str, dict[str, str]]:
    raw = get_setting(services.db, ANALOG_ROLES_KEY, {})
    out: dict[str, dict[str, str]] = {"fxs": {}, "fxo": {}}
    if isinstance(raw, dict):
        for kind in out:
            table = raw.get(kind)
            if isinstance(table, dict):
                out[kind] = {str(k): str(v) for k, v in table.items()}
    return out


def register_analog_pages(reg: Registry, services: WebServices) -> None:
    def view(
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        notice: str = "",
        status: int = 200,
    ) -> str:
        snapshot, reason = look(services.live)
        e = html.escape
        parts = [
            f'<p class="notice" id="notice">{e(notice)}</p>' if notice else "",
            f'<section id="live" data-events="{e(EVENTS_PATH)}">',
            f'<p id="live-status">{e(status_text(snapshot, reason))}</p>',
            ports_block(snapshot),
            "</section>",
            f'<script src="{e(SCRIPT_PATH)}" defer></script>',
            HELP,
        ]
        principal = current()
        if snapshot is not None and snapshot.ports and principal.may("system:write"):
            saved = saved_roles(services)
            shown = values or {}
            fields: list[str] = []
            for port in snapshot.ports:
                key = f"role-{port.port}"
                kind = "fxs" if port.type == "fxs" else "fxo"
                value = shown.get(key, saved[kind].get(str(port.port), _running(port.role)))
                label = (
                    f"Port {port.port} ({port.label}): extension"
                    if kind == "fxs"
                    else f"Port {port.port} ({port.label}): number a ringing line calls"
                )
                fields.append(field(key, label, value, (errors or {}).get(key), "off"))
            parts.append(
                "<h2>Roles</h2>"
                '<form method="post" action="/analog" id="roles">'
                + hidden_csrf()
                + "\n".join(fields)
                + '<button type="submit" id="roles-submit">Save</button></form>'
            )
        return page("Analog ports", "\n".join(parts), status)

    @reg.add("GET", "/analog", "system:read", "Analog ports", nav="Analog ports", nav_order=40)
    def analog() -> str:
        notice = SAVED_NOTICE if bottle.request.query.get("saved") else ""
        return view(notice=notice)

    @reg.add("POST", "/analog", "system:write", "Set the analog ports' roles")
    def analog_roles() -> str:
        snapshot, _ = look(services.live)
        if snapshot is None or not snapshot.ports:
            raise bottle.HTTPError(503, "the PBX does not answer: its ports are not known")
        extensions = {info.number for info in services.directory.list()}
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        roles: dict[str, dict[str, str]] = {"fxs": {}, "fxo": {}}
        for port in snapshot.ports:
            key = f"role-{port.port}"
            value = form_text(key).strip()
            values[key] = value
            if port.type == "fxs":
                if value and value not in extensions:
                    errors[key] = f"there is no extension {value}: add it first"
                roles["fxs"][str(port.port)] = value
            else:
                if value and (len(value) > 32 or set(value) - DIALABLE):
                    errors[key] = "a number to call: digits, *, # and +"
                roles["fxo"][str(port.port)] = value
        if errors:
            return view(values, errors, status=400)
        detail = ", ".join(f"{k} {p}={v or '-'}" for k, t in roles.items() for p, v in t.items())
        with change(services, "analog.roles", "", detail):
            set_setting(services.db, ANALOG_ROLES_KEY, roles)  # type: ignore[arg-type]
        return see_other("/analog?saved=1")


def _running(role: str) -> str:
    """The number in a running port's role text ("extension 201", "line to 500")."""
    last = role.rsplit(" ", 1)[-1]
    return last if role != "not set" else ""
