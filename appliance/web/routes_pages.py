"""Dialplan routes (`/routes`, `/api/routes`): inbound and outbound routing, as the
running dialplan ranks it, with routes added, changed and deleted from the web.

Routes of yakyak.toml ``[dialplan] routes`` are shown read-only and first; routes
stored from here come after them and may not reuse their names or patterns (see
`appliance.store.routes`, which the running PBX reads too). Each route is checked by
the dialplan's own parser (`parse_route`, then `Dialplan`), its messages shown next to
the field they are about; a target is chosen from what exists: extensions, mailboxes,
auto-attendant menus, the board's analog ports, Q.850 causes. Trunk targets exist in
yakyak.toml's syntax but the PBX does not place trunk calls yet, so they are not
offered. Every change is audited.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import bottle

from appliance.config import CONFIG_FILE, Config, ConfigError
from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import (
    AnalogTarget,
    Dialplan,
    DialplanError,
    ExtensionTarget,
    IvrTarget,
    Pattern,
    RejectTarget,
    Route,
    Target,
    TrunkTarget,
    VoicemailTarget,
    parse_route,
)
from appliance.store.errors import StoreError
from appliance.store.routes import (
    RouteError,
    TargetChoices,
    add_route,
    check_pattern,
    check_route_name,
    combine,
    delete_route,
    get_route,
    list_routes,
    replace_route,
    route_dict,
    target_choices,
    target_dict,
)
from appliance.web import schemas
from appliance.web.api import created, no_content
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.choice_fields import select_field
from appliance.web.dashboard import look
from appliance.web.jsonio import FieldErrors, read_object
from appliance.web.pages import field, form_text, hidden_csrf, page, sentence
from appliance.web.registry import Registry, Schema
from appliance.web.services import WebServices

TOML: Final = "yakyak.toml"
WEB: Final = "web"
NOTICES: Final = {
    "added": "The route has been added.",
    "saved": "Changes saved.",
    "deleted": "The route has been deleted.",
}
# Target type -> (its form field, the key of the target table parse_route reads).
TARGET_TYPES: Final[dict[str, tuple[str, str, str]]] = {
    "extension": ("target_extension", "number", "Ring an extension"),
    "voicemail": ("target_mailbox", "mailbox", "Take a message in a mailbox"),
    "ivr": ("target_ivr", "menu", "Answer with the auto-attendant"),
    "analog": ("target_port", "port", "Ring or seize an analog port"),
    "reject": ("target_cause", "cause", "Reject the call"),
}
CHOICE_LABELS: Final = {
    "extension": "Extension",
    "voicemail": "Mailbox",
    "ivr": "Menu or schedule",
    "analog": "Port",
    "reject": "Cause (Q.850)",
}
FORM_FIELDS: Final = ("name", "pattern", "target_type", *(f for f, _, _ in TARGET_TYPES.values()))
_PLACE: Final = re.compile(r"routes\[\d+\]\.([\w.]+): (.*)", re.S)

HELP: Final = """<h2>How a dialled number is routed</h2>
<ol id="ranking">
<li>A route whose <strong>exact number</strong> equals it.</li>
<li>Else, if the number is an <strong>extension</strong>, that extension rings.</li>
<li>Else the matching <strong>pattern</strong> with the fewest wildcard positions; a
pattern ending in <code>.</code> comes after every fixed-length one (<code>_1XX</code>
beats <code>_1.</code> for 123); on a tie, the route listed first wins.</li>
<li>Else the call is <strong>rejected</strong>: unallocated number (SIP 404).</li>
</ol>
<p>Routes from <code>yakyak.toml</code> are read-only here (edit the file and restart
YakYak) and come first, so they win ties; routes added here follow in the order they
were added, and may not reuse the name or pattern of a <code>yakyak.toml</code> route.
Changes take effect within a few seconds, without a restart.</p>
<p>Patterns: <code>101</code> or <code>+4930123</code> is an exact number. A leading
<code>_</code> makes a pattern: <code>X</code> any digit, <code>Z</code> 1-9,
<code>N</code> 2-9, <code>[15-7]</code> one of those digits, and a final <code>.</code>
one or more further characters: <code>_1XX</code> is 100-199, <code>_0.</code> any
number starting with 0.</p>"""

ROUTE_TARGET: Final[Schema] = {
    "type": "object",
    "description": (
        'As in yakyak.toml: {"type": "extension", "number": "101"}, {"type": "voicemail", '
        '"mailbox": "101"}, {"type": "ivr", "menu": "main"}, {"type": "analog", "port": 3}, '
        '{"type": "reject", "cause": "call_rejected"} (a Q.850 name or number)'
    ),
    "properties": {"type": {"enum": [*TARGET_TYPES, "trunk"]}},
    "required": ["type"],
    "additionalProperties": True,
}
ROUTE: Final = schemas.obj(
    {"name": {"type": "string"}, "pattern": {"type": "string"}, "target": ROUTE_TARGET}
)
ROUTE_ITEM: Final = schemas.obj(
    {
        "name": {"type": "string"},
        "pattern": {"type": "string"},
        "target": ROUTE_TARGET,
        "source": {"enum": [TOML, WEB]},
        "active": {"type": "boolean", "description": "false: left out, see note"},
        "note": schemas.NULLABLE_STRING,
    }
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The routes as the running dialplan will have them."""

    config: tuple[Route, ...]  # from yakyak.toml
    stored: tuple[Route, ...]  # added here, in order
    active: tuple[Route, ...]  # what the dialplan is built from
    left_out: tuple[tuple[Route, str], ...]  # stored routes that clash with yakyak.toml
    config_error: str | None  # yakyak.toml could not be read


def _notice() -> str:
    text = NOTICES.get(bottle.request.query.get("notice") or "", "")
    return f'<p class="notice" role="status">{html.escape(text)}</p>' if text else ""


def describe(target: Target) -> str:
    """What a route does, in words."""
    match target:
        case ExtensionTarget(number=number):
            return f"ring extension {number}"
        case VoicemailTarget(mailbox=mailbox):
            return f"voicemail of {mailbox}"
        case IvrTarget(menu=menu):
            return f"auto-attendant {menu}"
        case TrunkTarget(name=name, strip=strip, prepend=prepend):
            return f"trunk {name} (strip {strip}, prepend {prepend!r}; not supported yet)"
        case AnalogTarget(port=port):
            return f"analog port {port}"
        case RejectTarget(cause=cause):
            return f"reject: {cause.text} (cause {cause.value})"
    return str(target)  # pragma: no cover - exhaustive


def ranked(routes: Sequence[Route]) -> tuple[list[Route], list[Route]]:
    """(exact routes, patterns in the order the Dialplan tries them): its stable sort."""
    exact = [r for r in routes if not r.pattern.startswith("_")]
    patterns = [r for r in routes if r.pattern.startswith("_")]
    patterns.sort(key=lambda r: Pattern.parse(r.pattern).rank())
    return exact, patterns


def _place(message: str) -> tuple[str, str]:
    """("target.port", "expected int, ...") from parse_route's "routes[0].target.port: ..."."""
    match = _PLACE.fullmatch(message)
    return (match[1], match[2]) if match else ("route", message)


def missing(target: Target, choices: TargetChoices, ports: Sequence[int] | None) -> str | None:
    """Why the target names nothing that exists, or None."""
    match target:
        case ExtensionTarget(number=number) if number not in choices.extensions:
            return f"no extension {number}"
        case VoicemailTarget(mailbox=mailbox) if mailbox not in choices.mailboxes:
            return f"extension {mailbox} has no mailbox"
        case IvrTarget(menu=menu) if menu not in choices.ivr_names:
            return f"no auto-attendant menu or schedule {menu!r}"
        case AnalogTarget(port=port) if ports is not None and port not in ports:
            return f"the board has no analog port {port}"
        case TrunkTarget():
            return "trunk calls are not supported yet: the PBX would refuse them"
    return None


def register_routes_pages(reg: Registry, services: WebServices) -> None:
    db = services.db

    def plan() -> Plan:
        config: tuple[Route, ...] = ()
        error = None
        data_dir = services.data_dir
        if data_dir is not None and (data_dir / CONFIG_FILE).exists():
            try:
                config = Config.load(data_dir).dialplan.routes
            except ConfigError as exc:
                error = str(exc)
        stored = tuple(s.route for s in list_routes(db))
        active, left_out = combine(config, stored)
        return Plan(config, stored, active, tuple(left_out), error)

    def analog_ports() -> tuple[int, ...] | None:
        """The board's ports as the running PBX reports them; None when unknown."""
        snapshot, _ = look(services.live)
        if snapshot is None or not snapshot.ports:
            return None
        return tuple(sorted(p.port for p in snapshot.ports))

    # -- shared by the pages and the API --------------------------------------------

    def store(old_name: str | None, route: Route, config: Sequence[Route]) -> None:
        """Add (old_name None) or replace, audited; RouteError if refused."""
        if old_name is None:
            with change(services, "route.create", route.name, route.pattern):
                add_route(db, route, config, services.clock)
        else:
            detail = route.pattern if old_name == route.name else f"renamed {old_name}"
            with change(services, "route.change", route.name, detail):
                replace_route(db, old_name, route, config, services.clock)

    # -- pages -------------------------------------------------------------------

    def row(route: Route, source: str, position: int | str) -> str:
        e = html.escape
        name = e(route.name)
        shown = f'<a href="/routes/{name}">{name}</a>' if source == WEB else name
        return (
            f'<tr id="route-{name}"><td>{position}</td><td>{shown}</td>'
            f"<td><code>{e(route.pattern)}</code></td><td>{e(describe(route.target))}</td>"
            f'<td class="source">{source}</td></tr>'
        )

    def table(current_plan: Plan) -> str:
        config_names = {r.name for r in current_plan.config}
        exact, patterns = ranked(current_plan.active)

        def source(route: Route) -> str:
            return TOML if route.name in config_names else WEB

        head = "<th>#</th><th>Name</th><th>Number or pattern</th><th>Does</th><th>From</th>"
        rows = ['<tr><th colspan="5">1. Exact numbers</th></tr>']
        rows += [row(r, source(r), i) for i, r in enumerate(exact, 1)]
        rows.append('<tr><th colspan="5">2. Extensions</th></tr>')
        rows.append(
            '<tr id="route-extensions"><td></td><td>(built in)</td><td>any extension</td>'
            "<td>ring that extension</td><td></td></tr>"
        )
        rows.append('<tr><th colspan="5">3. Patterns, most specific first</th></tr>')
        rows += [row(r, source(r), i) for i, r in enumerate(patterns, len(exact) + 1)]
        rows.append('<tr><th colspan="5">4. Anything else</th></tr>')
        rows.append(
            '<tr id="route-otherwise"><td></td><td>(built in)</td><td>any other number</td>'
            f"<td>{html.escape(describe(RejectTarget(Cause.UNALLOCATED_NUMBER)))}</td>"
            "<td></td></tr>"
        )
        return (
            f'<table id="routes"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def try_number(current_plan: Plan) -> str:
        e = html.escape
        number = (bottle.request.query.get("number") or "")[:40]
        result = ""
        if number:
            extensions = target_choices(db).extensions
            try:
                decision = Dialplan(current_plan.active).route(number, extensions)
            except DialplanError as exc:  # the PBX falls back to yakyak.toml's alone
                result = f'<p class="error" id="try-result">Not routable now: {e(str(exc))}</p>'
            else:
                via = f"route {decision.route}" if decision.route else "the built-in rule"
                result = (
                    f'<p id="try-result"><code>{e(number)}</code>: '
                    f"{e(describe(decision.target))} (by {e(via)})</p>"
                )
        return (
            '<h2>Try a number</h2><form method="get" action="/routes" id="try-number">'
            f"{field('number', 'Dialled number', number, None, 'off')}"
            '<button type="submit" id="try-submit">Show where it goes</button></form>'
            f"{result}"
        )

    def target_fieldset(values: dict[str, str], errors: dict[str, str]) -> str:
        """A radio button per target type, each beside the choice it needs."""
        e = html.escape
        choices = target_choices(db)
        ports = analog_ports()
        options: dict[str, list[tuple[str, str]]] = {
            "extension": [(n, n) for n in choices.extensions],
            "voicemail": [(n, n) for n in choices.mailboxes],
            "ivr": [(n, n) for n in choices.ivr_names],
            "analog": [(str(p), f"port {p}") for p in ports or ()],
            "reject": [(c.name.lower(), f"{c.text} ({c.value})") for c in Cause],
        }
        chosen = values.get("target_type", "")
        parts = []
        for kind, (name, _, label) in TARGET_TYPES.items():
            value = values.get(name, "")
            found = options[kind]
            if value and value not in {v for v, _ in found}:
                found = [(value, f"{value} (does not exist)"), *found]
            checked = " checked" if kind == chosen else ""
            radio = (
                f'<label><input type="radio" name="target_type" id="type-{kind}"'
                f' value="{kind}"{checked}> {e(label)}</label>'
            )
            if kind == "analog" and ports is None:
                # The PBX did not say which ports the board has: let a number be typed.
                choice = field(name, "Port number", value, errors.get(name), "off")
            elif not found:
                choice = '<p class="hint">(none exist yet)</p>'
            else:
                choice = select_field(
                    name, CHOICE_LABELS[kind], [("", "choose..."), *found], value, errors.get(name)
                )
            parts.append(f'<div class="target-choice">{radio}{choice}</div>')
        error = errors.get("target_type")
        message = f'<p class="error" id="target_type-error">{e(error)}</p>' if error else ""
        return (
            f'<fieldset id="target" class="field{" invalid" if error else ""}">'
            f"<legend>What the route does</legend>{''.join(parts)}{message}</fieldset>"
        )

    def route_form(action: str, values: dict[str, str], errors: dict[str, str], button: str) -> str:
        e = html.escape
        top = errors.get("route")
        fields = "\n".join(
            (
                field("name", "Name", values.get("name", ""), errors.get("name"), "off"),
                field(
                    "pattern",
                    "Number or pattern",
                    values.get("pattern", ""),
                    errors.get("pattern"),
                    "off",
                ),
                target_fieldset(values, errors),
            )
        )
        return (
            (f'<p class="error" id="route-error">{e(top)}</p>' if top else "")
            + f'<form method="post" action="{e(action)}" id="route-form">{hidden_csrf()}'
            f'{fields}<button type="submit" id="route-submit">{e(button)}</button></form>'
        )

    def list_page(values: dict[str, str], errors: dict[str, str], status: int = 200) -> str:
        e = html.escape
        current_plan = plan()
        parts = [_notice(), HELP]
        if current_plan.config_error:
            parts.append(
                f'<p class="error" id="config-error">{e(TOML)} could not be read, so its '
                f"routes are not shown: {e(current_plan.config_error)}</p>"
            )
        parts.append(table(current_plan))
        if current_plan.left_out:
            items = "".join(
                f"<li><code>{e(r.name)}</code> ({e(r.pattern)}): {e(why)}; change or delete it "
                f'<a href="/routes/{e(r.name)}">here</a>.</li>'
                for r, why in current_plan.left_out
            )
            parts.append(
                "<h2>Not in use</h2><p>These routes clash with yakyak.toml, which wins:</p>"
                f'<ul id="left-out">{items}</ul>'
            )
        parts.append(try_number(current_plan))
        if current().may("system:write"):
            parts.append("<h2>Add a route</h2>")
            parts.append(route_form("/routes", values, errors, "Add route"))
        return page("Routes", "\n".join(parts), status)

    def form_values() -> dict[str, str]:
        return {key: form_text(key).strip() for key in FORM_FIELDS}

    def route_from(values: dict[str, str]) -> tuple[Route | None, dict[str, str]]:
        """The route the form describes, or the reason for each bad field."""
        errors: dict[str, str] = {}
        for key, check in (("name", check_route_name), ("pattern", check_pattern)):
            try:
                check(values[key])
            except StoreError as exc:
                errors[key] = sentence(str(exc))
        kind = values["target_type"]
        if kind not in TARGET_TYPES:
            errors["target_type"] = "Choose what the route does."
            return None, errors
        name, key, _ = TARGET_TYPES[kind]
        raw = values[name]
        value: object = raw
        if not raw:
            errors[name] = "Choose one."
        elif kind == "analog":
            if not raw.isdigit() or len(raw) > 4:
                errors[name] = "Enter the port's number."
            else:
                value = int(raw)
        if errors:
            return None, errors
        target: dict[str, object] = {"type": kind, key: value}
        item = {"name": values["name"], "pattern": values["pattern"], "target": target}
        try:
            route = parse_route(item, 0)
        except DialplanError as exc:
            place, text = _place(str(exc))
            form_field = {"name": "name", "pattern": "pattern", f"target.{key}": name}
            return None, {form_field.get(place, "target_type"): sentence(text)}
        problem = missing(route.target, target_choices(db), analog_ports())
        if problem is not None:
            return None, {name: sentence(problem)}
        return route, {}

    def refused(exc: RouteError) -> dict[str, str]:
        where = {"name": "name", "pattern": "pattern", "target": "target_type"}
        return {where.get(exc.field, "route"): sentence(str(exc))}

    @reg.add("GET", "/routes", "system:read", "Dialplan routes", nav="Routes", nav_order=45)
    def routes() -> str:
        return list_page({}, {})

    @reg.add("POST", "/routes", "system:write", "Add a dialplan route")
    def routes_add() -> str:
        values = form_values()
        current_plan = plan()
        route, errors = route_from(values)
        if route is None:
            return list_page(values, errors, 400)
        try:
            store(None, route, current_plan.config)
        except RouteError as exc:
            return list_page(values, refused(exc), 400)
        return see_other("/routes?notice=added")

    def edit_page(
        name: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        e = html.escape
        stored = get_route(db, name)
        route = stored.route
        parts = [_notice()]
        if values is None:
            raw = target_dict(route.target)
            kind = str(raw["type"])
            values = {"name": route.name, "pattern": route.pattern, "target_type": kind}
            if kind in TARGET_TYPES:
                form_name, key, _ = TARGET_TYPES[kind]
                values[form_name] = str(raw[key])
        if current().may("system:write"):
            parts.append(route_form(f"/routes/{name}", values, errors or {}, "Save"))
            parts.append(
                f'<p><a href="/routes/{e(name)}/delete" id="delete-link">'
                f"Delete route {e(name)}</a></p>"
            )
        else:
            parts.append(
                f"<dl><dt>Number or pattern</dt><dd><code>{e(route.pattern)}</code></dd>"
                f"<dt>Does</dt><dd>{e(describe(route.target))}</dd></dl>"
            )
        parts.append('<p><a href="/routes">All routes</a></p>')
        return page(f"Route {name}", "\n".join(parts), status)

    @reg.add("GET", "/routes/<name>", "system:read", "One dialplan route")
    def route_page(name: str) -> str:
        return edit_page(name)

    @reg.add("POST", "/routes/<name>", "system:write", "Change a dialplan route")
    def route_edit(name: str) -> str:
        get_route(db, name)  # 404 before anything else
        values = form_values()
        current_plan = plan()
        route, errors = route_from(values)
        if route is None:
            return edit_page(name, values, errors, 400)
        try:
            store(name, route, current_plan.config)
        except RouteError as exc:
            return edit_page(name, values, refused(exc), 400)
        return see_other(f"/routes/{route.name}?notice=saved")

    @reg.add("GET", "/routes/<name>/delete", "system:write", "Confirm a route's deletion")
    def route_delete_confirm(name: str) -> str:
        e = html.escape
        route = get_route(db, name).route
        body = (
            f"<p>Delete route <strong>{e(name)}</strong> (<code>{e(route.pattern)}</code>: "
            f"{e(describe(route.target))})? Numbers it matched go to the next rule.</p>"
            f'<form method="post" action="/routes/{e(name)}/delete" id="delete-route">'
            f'{hidden_csrf()}<button type="submit" id="delete-submit">Delete {e(name)}'
            f'</button> <a href="/routes/{e(name)}">Cancel</a></form>'
        )
        return page(f"Delete route {name}?", body)

    @reg.add("POST", "/routes/<name>/delete", "system:write", "Delete a dialplan route")
    def route_delete(name: str) -> str:
        route = get_route(db, name).route
        with change(services, "route.delete", name, route.pattern):
            delete_route(db, name)
        return see_other("/routes?notice=deleted")

    # -- REST API ----------------------------------------------------------------

    def api_route(data: dict[str, object]) -> tuple[Route, Plan]:
        current_plan = plan()
        try:
            route = parse_route(data, 0)
        except DialplanError as exc:
            raise FieldErrors(dict([_place(str(exc))])) from None
        problem = missing(route.target, target_choices(db), analog_ports())
        if problem is not None:
            raise FieldErrors({"target": problem})
        return route, current_plan

    def api_store(old_name: str | None, route: Route, config: Sequence[Route]) -> None:
        try:
            store(old_name, route, config)
        except RouteError as exc:
            raise FieldErrors({exc.field or "route": str(exc)}) from None

    def item(route: Route, source: str, note: str | None = None) -> dict[str, object]:
        return {**route_dict(route), "source": source, "active": note is None, "note": note}

    @reg.add(
        "GET",
        "/api/routes",
        "system:read",
        "Dialplan routes: yakyak.toml's, then those added from the web, in definition "
        "order (the dialplan ranks them: exact numbers, extensions, patterns)",
        response=schemas.items(ROUTE_ITEM),
    )
    def api_routes() -> dict[str, object]:
        current_plan = plan()
        left_out = dict((r.name, why) for r, why in current_plan.left_out)
        items = [item(r, TOML) for r in current_plan.config]
        items += [item(r, WEB, left_out.get(r.name)) for r in current_plan.stored]
        return {"items": items}

    @reg.add(
        "POST",
        "/api/routes",
        "system:write",
        "Add a dialplan route (after yakyak.toml's; it may not reuse their names or patterns)",
        request=ROUTE,
        response=ROUTE,
        status=201,
    )
    def api_add_route() -> dict[str, object]:
        route, current_plan = api_route(read_object())
        api_store(None, route, current_plan.config)
        created()
        return route_dict(route)

    @reg.add(
        "PUT",
        "/api/routes/<name>",
        "system:write",
        "Replace a dialplan route added from the web (it keeps its place)",
        request=ROUTE,
        response=ROUTE,
    )
    def api_replace_route(name: str) -> dict[str, object]:
        get_route(db, name)  # 404 before the body is looked at
        route, current_plan = api_route(read_object())
        api_store(name, route, current_plan.config)
        return route_dict(route)

    @reg.add(
        "DELETE",
        "/api/routes/<name>",
        "system:write",
        "Delete a dialplan route added from the web",
        status=204,
    )
    def api_delete_route(name: str) -> str:
        route = get_route(db, name).route
        with change(services, "route.delete", name, route.pattern):
            delete_route(db, name)
        return no_content()
