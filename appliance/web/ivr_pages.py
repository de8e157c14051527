"""Auto-attendant pages (`/ivr`, `/api/ivr`): menus and business-hours schedules.

All menus and schedules are one JSON document (`appliance.pbx.ivr.menu` describes its
format; `appliance.store.ivr` keeps it). The pages list them, show one menu, edit the
whole document as JSON, take an uploaded file (replacing the document, or merging its
menus and schedules into it), and edit one schedule's business hours with a form: per
weekday one opening range, one menu for open hours, one for the rest, and holidays.
A schedule the form cannot show (several ranges on one day, or different menus for
different hours) is edited as JSON; the form says so (`appliance.web.ivr_hours` holds
the form and its conversions).

Whatever the way in, the whole document is checked with ``parse_ivr`` against the
extensions and mailboxes that exist before it is stored; its message names the place
(``menus.main.options.2: ...``) and is shown next to the text, which is kept. Storing
bumps `revision.directory` (a trigger on `ivr_menu`), and the running PBX reloads its
menus when that changes. Every change is audited.
"""

from __future__ import annotations

import copy
import html
import json
import re
from typing import Final

import bottle

from appliance.pbx.ivr.menu import IvrConfig, IvrError, Menu, MenuOption, parse_ivr
from appliance.pbx.ivr.schedule import Schedule, format_clock, format_days
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.ivr import load_ivr, save_ivr
from appliance.store.routes import target_choices
from appliance.store.settings import get_setting
from appliance.web import schemas
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.ivr_hours import (
    HOURS_FIELDS,
    MAX_HOLIDAY_LINES,
    hours_fields,
    hours_values,
    schedule_from,
)
from appliance.web.jsonio import FieldErrors, read_object
from appliance.web.pages import field, form_text, hidden_csrf, page, sentence
from appliance.web.registry import Registry, Schema
from appliance.web.services import WebServices
from appliance.web.wizard import TIME_ZONE

Document = dict[str, object]

MAX_DOCUMENT: Final = 64 * 1024  # bytes of JSON, as the REST API's bodies
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")  # as appliance.pbx.ivr.menu
_PLACE: Final = re.compile(r"([\w.\[\]*#-]+): (.*)", re.S)
NAME_RULE: Final = "Letters, digits, '-' and '_', up to 32, starting with a letter or digit."
NOTICES: Final = {
    "saved": "The auto-attendant has been saved; the PBX uses it within a few seconds.",
    "deleted": "Deleted.",
}
DOCUMENT_SCHEMA: Final[Schema] = {
    "type": "object",
    "description": "Menus and schedules, as appliance.pbx.ivr.menu describes them",
    "properties": {
        "menus": {"type": "object", "additionalProperties": {"type": "object"}},
        "schedules": {"type": "object", "additionalProperties": {"type": "object"}},
    },
    "additionalProperties": False,
}
IVR_STATE: Final = schemas.obj(
    {
        "document": {**DOCUMENT_SCHEMA, "type": ["object", "null"]},
        "error": {
            "type": ["string", "null"],
            "description": "why the stored document does not load now, naming the place",
        },
    }
)
FORMAT_HELP: Final = """<details><summary>The document's format</summary>
<pre><code>{"menus": {"main": {
   "greeting": ["welcome"], "timeout": 5, "retries": 3, "dial_by_extension": true,
   "options": {"1": {"action": "transfer", "extension": "2000", "voicemail_on_fail": true},
               "2": {"action": "menu", "menu": "office"},
               "9": {"action": "voicemail", "mailbox": "2000"},
               "0": {"action": "repeat"}, "#": {"action": "hangup"}}},
  "closed": {"greeting": ["custom:closed"], "options": {}}},
 "schedules": {"office": {"timezone": "Europe/Berlin",
   "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:30", "menu": "main"}],
   "holidays": [{"date": "12-25", "menu": "closed"}], "otherwise": "closed"}}}</code></pre>
<p>Actions: transfer, menu (a menu or a schedule), voicemail, dial_by_extension,
back, repeat, hangup. Prompts are built-in names, <code>digits/&lt;word&gt;</code> or
<code>custom:&lt;name&gt;</code> (a recording in the prompts folder). A dialplan route
with target "ivr" names a menu or a schedule.</p></details>"""


def _notice() -> str:
    text = NOTICES.get(bottle.request.query.get("notice") or "", "")
    return f'<p class="notice" role="status">{html.escape(text)}</p>' if text else ""


def pretty(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def section(document: Document, name: str) -> dict[str, object]:
    """``document[name]`` as a fresh dict (empty when absent or not a table)."""
    value = document.get(name)
    return dict(value) if isinstance(value, dict) else {}


def describe_option(option: MenuOption) -> str:
    text = option.action.value.replace("_", " ")
    if option.target:
        text += f" {option.target}"
    if option.voicemail_on_fail:
        text += ", voicemail if unanswered"
    return text


def describe_hours(schedule: Schedule) -> str:
    rules = [
        f"{format_days(r.days)} {format_clock(r.start)}-{format_clock(r.end)} -> {r.menu}"
        for r in schedule.hours
    ]
    return "; ".join(rules) or "no opening hours"


def decode_document(text: str) -> tuple[object, str | None]:
    """The JSON value of ``text``, or None and why it is not JSON."""
    if len(text.encode("utf-8")) > MAX_DOCUMENT:
        return None, f"The document is larger than {MAX_DOCUMENT // 1024} KiB."
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"Not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}."


def register_ivr_pages(reg: Registry, services: WebServices) -> None:
    db = services.db

    def check(document: object) -> IvrConfig:
        """parse_ivr against what exists now; IvrError names the place."""
        choices = target_choices(db)
        return parse_ivr(document, set(choices.extensions), set(choices.mailboxes))

    def stored() -> tuple[Document, IvrConfig | None, str | None]:
        """(the stored document, {} if none; it parsed; or why it does not load now)."""
        try:
            document = load_ivr(db)
        except StoreError as exc:
            return {}, None, str(exc)
        if document is None:
            return {}, IvrConfig(), None
        if not isinstance(document, dict):
            return {}, None, "the stored document is not a JSON object"
        try:
            return document, check(document), None
        except IvrError as exc:
            return document, None, str(exc)

    def save(document: Document, action: str, detail: str) -> None:
        with change(services, action, "auto-attendant", detail):
            save_ivr(db, document)

    def summary(document: Document) -> str:
        menus, schedules = section(document, "menus"), section(document, "schedules")
        return f"menus: {', '.join(menus) or 'none'}; schedules: {', '.join(schedules) or 'none'}"

    # -- the overview --------------------------------------------------------------

    def menus_table(document: Document, config: IvrConfig | None) -> str:
        e = html.escape
        names = list(section(document, "menus"))
        if not names:
            return '<p id="no-menus">No menus yet.</p>'
        rows = []
        for name in names:
            menu = config.menus.get(name) if config is not None else None
            greeting = ", ".join(menu.greeting) if menu else ""
            keys = "; ".join(f"{k}: {describe_option(o)}" for k, o in menu.options) if menu else ""
            n = e(name)
            rows.append(
                f'<tr id="menu-{n}"><td><a href="/ivr/menus/{n}">{n}</a></td>'
                f"<td>{e(greeting)}</td><td>{e(keys)}</td></tr>"
            )
        return (
            '<table id="menus"><thead><tr><th>Menu</th><th>Greeting</th><th>Keys</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def schedules_table(document: Document, config: IvrConfig | None) -> str:
        e = html.escape
        names = list(section(document, "schedules"))
        if not names:
            return '<p id="no-schedules">No business-hours schedules yet.</p>'
        rows = []
        for name in names:
            schedule = config.schedules.get(name) if config is not None else None
            n = e(name)
            cells = (
                (
                    f"<td>{e(schedule.timezone)}</td><td>{e(describe_hours(schedule))}</td>"
                    f"<td>{len(schedule.holidays)}</td><td>{e(schedule.otherwise)}</td>"
                )
                if schedule
                else '<td colspan="4"></td>'
            )
            rows.append(
                f'<tr id="schedule-{n}"><td><a href="/ivr/hours?name={n}">{n}</a></td>{cells}</tr>'
            )
        return (
            '<table id="schedules"><thead><tr><th>Schedule</th><th>Time zone</th>'
            "<th>Opening hours</th><th>Holidays</th><th>Otherwise</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )

    def overview(error: str | None = None, status: int = 200) -> str:
        e = html.escape
        document, config, problem = stored()
        parts = [_notice()]
        if error:
            parts.append(f'<p class="error" id="ivr-error">{e(error)}</p>')
        if problem:
            parts.append(
                f'<p class="error" id="stored-error">The stored auto-attendant does not load: '
                f"{e(problem)}. The PBX keeps the menus it loaded before; fix it in the "
                '<a href="/ivr/document">JSON editor</a>.</p>'
            )
        parts.append(
            "<p>Callers reach a menu or a schedule through a dialplan route with the "
            'target "auto-attendant" (<a href="/routes">Routes</a>). A schedule picks a '
            "menu by the time of day: a holiday first, else the opening hours, else its "
            "closed menu.</p>"
        )
        parts += ["<h2>Menus</h2>", menus_table(document, config)]
        parts += ["<h2>Business hours</h2>", schedules_table(document, config)]
        may_write = current().may("system:write")
        parts.append(
            '<p><a href="/ivr/document" id="document-link">'
            f"{'Edit' if may_write else 'Show'} everything as JSON</a></p>"
        )
        if may_write:
            parts.append(
                '<h2>Add business hours</h2><form method="get" action="/ivr/hours" '
                'id="new-schedule">'
                f"{field('name', 'Schedule name', '', None, 'off')}"
                '<button type="submit" id="new-schedule-submit">Set its hours</button></form>'
                "<h2>Upload a file</h2>"
                '<form method="post" action="/ivr/upload" enctype="multipart/form-data" '
                f'id="upload">{hidden_csrf()}'
                '<div class="field"><label for="file">JSON file (at most '
                f'{MAX_DOCUMENT // 1024} KiB)</label><input type="file" id="file" name="file" '
                'accept="application/json,.json"></div>'
                '<div class="field"><label><input type="radio" name="mode" value="merge" '
                'id="mode-merge" checked> Add its menus and schedules, replacing those of '
                "the same name</label><label>"
                '<input type="radio" name="mode" value="replace" id="mode-replace"> Replace '
                "everything with it</label></div>"
                '<button type="submit" id="upload-submit">Upload</button></form>'
            )
        parts.append(FORMAT_HELP)
        return page("Auto-attendant", "\n".join(parts), status)

    @reg.add(
        "GET", "/ivr", "system:read", "Auto-attendant menus", nav="Auto-attendant", nav_order=50
    )
    def ivr() -> str:
        return overview()

    # -- one menu ------------------------------------------------------------------

    def menu_details(menu: Menu) -> str:
        e = html.escape
        facts = (
            ("Greeting", ", ".join(menu.greeting)),
            ("Language", menu.language),
            ("Waits for a key", f"{menu.timeout:g} s"),
            ("Tries", str(menu.retries)),
            ("Wrong key", ", ".join(menu.invalid) or "(nothing played)"),
            ("No key", describe_option(menu.on_timeout)),
            ("Out of tries", describe_option(menu.on_exhausted)),
            ("Dial by extension", "yes" if menu.dial_by_extension else "no"),
        )
        rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
        keys = "".join(
            f'<tr id="key-{e(k)}"><td>{e(k)}</td><td>{e(describe_option(o))}</td></tr>'
            for k, o in menu.options
        )
        return (
            f'<dl id="menu-facts">{rows}</dl><h2>Keys</h2>'
            f'<table id="keys"><thead><tr><th>Key</th><th>Does</th></tr></thead>'
            f"<tbody>{keys}</tbody></table>"
        )

    @reg.add("GET", "/ivr/menus/<name>", "system:read", "One auto-attendant menu")
    def ivr_menu(name: str) -> str:
        e = html.escape
        document, config, problem = stored()
        menus = section(document, "menus")
        if name not in menus:
            raise NotFoundError(f"no menu {name!r}")
        parts = []
        menu = config.menus.get(name) if config is not None else None
        if menu is not None:
            parts.append(menu_details(menu))
        else:
            parts.append(f'<p class="error" id="stored-error">{e(problem or "")}</p>')
        users = [
            s.name
            for s in (config.schedules.values() if config is not None else ())
            if name in {s.otherwise, *(r.menu for r in s.hours), *(h.menu for h in s.holidays)}
        ]
        if users:
            parts.append(f"<p>Schedules that may pick it: {e(', '.join(users))}.</p>")
        parts.append(
            f'<h2>As JSON</h2><pre><code id="menu-json">{e(pretty(menus[name]))}</code></pre>'
        )
        if current().may("system:write"):
            parts.append(
                f'<form method="post" action="/ivr/menus/{e(name)}/delete" id="delete-menu">'
                f'{hidden_csrf()}<button type="submit" id="delete-submit">Delete menu '
                f"{e(name)}</button></form>"
            )
        parts.append('<p><a href="/ivr">The auto-attendant</a></p>')
        return page(f"Menu {name}", "\n".join(parts))

    def delete_entry(kind: str, name: str) -> str:
        document, _, _ = stored()
        entries = section(document, kind)
        if name not in entries:
            raise NotFoundError(f"no {kind[:-1]} {name!r}")
        del entries[name]
        changed = {**document, kind: entries}
        try:
            check(changed)
        except IvrError as exc:
            return overview(f"{name} was not deleted: {exc}.", 400)
        save(changed, f"ivr.{kind[:-1]}.delete", name)
        return see_other("/ivr?notice=deleted")

    @reg.add("POST", "/ivr/menus/<name>/delete", "system:write", "Delete an auto-attendant menu")
    def ivr_menu_delete(name: str) -> str:
        return delete_entry("menus", name)

    @reg.add(
        "POST", "/ivr/schedules/<name>/delete", "system:write", "Delete a business-hours schedule"
    )
    def ivr_schedule_delete(name: str) -> str:
        return delete_entry("schedules", name)

    # -- the JSON editor and uploads -------------------------------------------------

    def editor(text: str | None = None, error: str | None = None, status: int = 200) -> str:
        e = html.escape
        document, _, problem = stored()
        if text is None:
            text = pretty(document or {"menus": {}, "schedules": {}})
            error = error or (sentence(problem) if problem else None)
        may_write = current().may("system:write")
        invalid = ' aria-invalid="true" aria-describedby="document-error"' if error else ""
        message = f'<p class="error" id="document-error">{e(error)}</p>' if error else ""
        area = (
            f'<div class="field{" invalid" if error else ""}">'
            '<label for="document">Menus and schedules (JSON)</label>'
            f'<textarea id="document" name="document" rows="30" cols="90" spellcheck="false"'
            f"{'' if may_write else ' readonly'}{invalid}>{e(text)}</textarea>{message}</div>"
        )
        if may_write:
            body = (
                f'<form method="post" action="/ivr/document" id="document-form">{hidden_csrf()}'
                f'{area}<button type="submit" id="document-submit">Check and save</button></form>'
            )
        else:
            body = area
        return page(
            "Auto-attendant as JSON",
            f'{body}{FORMAT_HELP}<p><a href="/ivr">The auto-attendant</a></p>',
            status,
        )

    def store_text(text: str, action: str) -> str:
        """Check ``text`` as the whole document and store it, or show it with the error."""
        document, error = decode_document(text)
        if error is not None:
            return editor(text, error, 400)
        try:
            check(document)
        except IvrError as exc:
            return editor(text, sentence(str(exc)), 400)
        assert isinstance(document, dict)  # parse_ivr accepted it: a table
        save(document, action, summary(document))
        return see_other("/ivr?notice=saved")

    @reg.add("GET", "/ivr/document", "system:read", "The auto-attendant as JSON")
    def ivr_document() -> str:
        return editor()

    @reg.add("POST", "/ivr/document", "system:write", "Replace the auto-attendant (JSON)")
    def ivr_document_save() -> str:
        text = str(bottle.request.forms.getunicode("document", default="") or "")
        return store_text(text, "ivr.change")

    @reg.add("POST", "/ivr/upload", "system:write", "Upload auto-attendant menus (JSON file)")
    def ivr_upload() -> str:
        upload = bottle.request.files.get("file")
        if upload is None:
            return overview("Choose a file to upload.", 400)
        data = upload.file.read(MAX_DOCUMENT + 1)
        if len(data) > MAX_DOCUMENT:
            return overview(f"The file is larger than {MAX_DOCUMENT // 1024} KiB.", 400)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return overview("The file is not UTF-8 text.", 400)
        mode = form_text("mode")
        if mode == "replace":
            return store_text(text, "ivr.upload")
        uploaded, error = decode_document(text)
        if error is not None or not isinstance(uploaded, dict):
            return editor(text, error or "The file must hold a JSON object.", 400)
        merged = copy.deepcopy(stored()[0])
        for kind in ("menus", "schedules"):
            if kind in uploaded:
                entries = section(merged, kind)
                entries.update(section(uploaded, kind))
                merged[kind] = entries
        # Unknown top-level keys of the file go along, so the check names them.
        merged.update({k: v for k, v in uploaded.items() if k not in ("menus", "schedules")})
        return store_text(pretty(merged), "ivr.upload")

    # -- business hours ----------------------------------------------------------------

    def hours_page(
        name: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        e = html.escape
        errors = errors or {}
        document, config, problem = stored()
        exists = name in section(document, "schedules")
        menus = sorted(section(document, "menus"))
        parts = [_notice()]
        title = f"Business hours: {name}" if name else "Business hours"
        if problem and values is None:
            parts.append(
                f'<p class="error" id="stored-error">The stored auto-attendant does not load: '
                f"{e(problem)}. Fix it in the "
                '<a href="/ivr/document">JSON editor</a> first.</p>'
            )
            return page(title, "\n".join(parts), status)
        if values is None:
            values = {"name": name, "timezone": str(get_setting(db, TIME_ZONE) or "UTC")}
            if exists and config is not None:
                shown, why = hours_values(config.schedules[name])
                if shown is None:
                    parts.append(
                        f'<p id="not-a-form">Schedule {e(name)} cannot be shown as this form: '
                        f'{e(why or "")}. Edit it in the <a href="/ivr/document">JSON '
                        "editor</a>.</p>"
                    )
                    return page(title, "\n".join(parts), status)
                values = shown
        if not menus:
            parts.append(
                '<p id="no-menus">A schedule picks among menus: add a menu first, in the '
                '<a href="/ivr/document">JSON editor</a> or by uploading a file.</p>'
            )
            return page(title, "\n".join(parts), status)
        if errors.get("document"):
            parts.append(f'<p class="error" id="document-error">{e(errors["document"])}</p>')
        may_write = current().may("system:write")
        form = hours_fields(name, exists, values, errors, menus)
        if may_write:
            parts.append(
                f'<form method="post" action="/ivr/hours" id="hours-form">{hidden_csrf()}'
                f'<input type="hidden" name="existing" value="{"yes" if exists else ""}">'
                f'{form}<button type="submit" id="hours-submit">Save</button></form>'
            )
            if exists:
                parts.append(
                    f'<form method="post" action="/ivr/schedules/{e(name)}/delete" '
                    f'id="delete-schedule">{hidden_csrf()}<button type="submit" '
                    f'id="delete-submit">Delete schedule {e(name)}</button></form>'
                )
        else:
            parts.append(f"<fieldset disabled>{form}</fieldset>")
        parts.append('<p><a href="/ivr">The auto-attendant</a></p>')
        return page(title, "\n".join(parts), status)

    @reg.add("GET", "/ivr/hours", "system:read", "A schedule's business hours (?name=)")
    def ivr_hours() -> str:
        name = (bottle.request.query.get("name") or "").strip()[:32]
        if name and not _NAME.fullmatch(name):
            return hours_page(
                "",
                {"name": name},
                {"name": NAME_RULE},
                400,
            )
        return hours_page(name)

    @reg.add("POST", "/ivr/hours", "system:write", "Save a schedule's business hours")
    def ivr_hours_save() -> str:
        values = {key: form_text(key).strip() for key in HOURS_FIELDS}
        values["holidays"] = str(bottle.request.forms.getunicode("holidays", default="") or "")
        values["holidays"] = values["holidays"][: 32 * MAX_HOLIDAY_LINES]
        name = values["name"]
        document, _, _ = stored()
        schedules = section(document, "schedules")
        menus = set(section(document, "menus"))
        errors: dict[str, str] = {}
        if not _NAME.fullmatch(name):
            errors["name"] = NAME_RULE
        elif name in menus:
            errors["name"] = f"There is a menu named {name}; choose another name."
        elif name in schedules and form_text("existing") != "yes":
            errors["name"] = f"Schedule {name} exists; open it from the list to change it."
        table, field_errors = schedule_from(values, menus)
        errors.update(field_errors)
        shown_name = name if name in schedules and "name" not in errors else ""
        if errors or table is None:
            return hours_page(shown_name, values, errors, 400)
        schedules[name] = table
        changed = {**document, "schedules": schedules}
        try:
            check(changed)
        except IvrError as exc:
            return hours_page(shown_name, values, {"document": sentence(str(exc))}, 400)
        save(changed, "ivr.hours", name)
        return see_other("/ivr?notice=saved")

    # -- REST API ------------------------------------------------------------------

    @reg.add(
        "GET",
        "/api/ivr",
        "system:read",
        "The auto-attendant document (null when none), and why it does not load, if so",
        response=IVR_STATE,
    )
    def api_ivr() -> dict[str, object]:
        document, _, problem = stored()
        return {"document": document or None, "error": problem}

    @reg.add(
        "PUT",
        "/api/ivr",
        "system:write",
        "Replace the auto-attendant document; 400 names the place of the first problem",
        request=DOCUMENT_SCHEMA,
        response=IVR_STATE,
    )
    def api_replace_ivr() -> dict[str, object]:
        document = read_object()
        try:
            check(document)
        except IvrError as exc:
            match = _PLACE.fullmatch(str(exc))
            raise FieldErrors({match[1]: match[2]} if match else {"document": str(exc)}) from None
        save(document, "ivr.change", summary(document))
        return {"document": document, "error": None}
