"""The dashboard (`/`) and its data API (`/api/live`): registrations, calls in
progress, analog ports, system health, and charts of the last day's calls.

What each part shows follows the principal's permissions: every registration and
call with extension:read / call:read, only the account's own extension's with
extension:read_own, ports and health with system:read, charts with cdr:read (or the
own extension's calls with cdr:read_own). The page is complete without JavaScript;
/static/live.js (see `appliance.web.events`) keeps its live tables current by SSE.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import bottle

from appliance.web.auth import Principal, current, see_other
from appliance.web.events import EVENTS_PATH, SCRIPT_PATH, StreamPolicy, register_events
from appliance.web.health import Health, HealthProbe, register_health
from appliance.web.live import CallView, LiveSnapshot, LiveSource, PortView, RegistrationView
from appliance.web.pages import NOTICES, page, when
from appliance.web.plots import ChartData, calls_chart, chart_data, quality_charts
from appliance.web.registry import SIGNED_IN, Registry, Schema
from appliance.web.schemas import NULLABLE_STRING, obj
from appliance.web.services import WebServices
from appliance.web.wizard import SETUP_PATH, setup_done

LOOK_TIMEOUT: Final = 2.0  # s the PBX may take to answer one snapshot
NO_PBX: Final = "this web server runs without a PBX"
PBX_SILENT: Final = "the PBX did not answer in time"

Reach = Literal["all", "own", "none"]

_NUMBER: Final[Schema] = {"type": "number"}
REGISTRATION_SCHEMA: Final = obj(
    {
        "aor": {"type": "string"},
        "contact": {"type": "string"},
        "source": {"type": "string"},
        "user_agent": {"type": "string"},
        "expires_in": _NUMBER,
    }
)
CALL_SCHEMA: Final = obj(
    {
        "number": {"type": "integer"},
        "caller": {"type": "string"},
        "caller_name": NULLABLE_STRING,
        "callee": {"type": "string"},
        "state": {"type": "string"},
        "duration_s": _NUMBER,
        "talking_s": {"type": ["number", "null"]},
        "codec": NULLABLE_STRING,
        "external": {"type": "boolean"},
    }
)
PORT_SCHEMA: Final = obj(
    {
        "port": {"type": "integer"},
        "type": {"type": "string"},
        "label": {"type": "string"},
        "role": {"type": "string"},
        "state": {"type": "string"},
        "registered": {"type": ["boolean", "null"]},
    }
)
_REACH: Final[Schema] = {"enum": ["all", "own", "none"]}


def _listed(item: Schema, what: str) -> Schema:
    return {
        "type": ["array", "null"],
        "items": item,
        "description": f"{what}; null when your role may not see them",
    }


LIVE_SCHEMA: Final = obj(
    {
        "available": {"type": "boolean"},
        "reason": {**NULLABLE_STRING, "description": "why the PBX state is not available"},
        "taken_at": {"type": ["number", "null"], "description": "Unix time of the snapshot"},
        "scope": obj({"registrations": _REACH, "calls": _REACH, "ports": _REACH}),
        "registrations": _listed(REGISTRATION_SCHEMA, "registered contacts"),
        "calls": _listed(CALL_SCHEMA, "calls in progress"),
        "ports": _listed(PORT_SCHEMA, "analog ports"),
        "line_controller_up": {
            "type": ["boolean", "null"],
            "description": "null: no analog ports running, or not yours to see",
        },
    }
)


@dataclass(frozen=True, slots=True)
class Scope:
    """How much of the live state one principal may see."""

    registrations: Reach
    calls: Reach
    ports: Reach
    extension: str | None  # what "own" means

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        own = principal.extension if principal.may("extension:read_own") else None
        fallback: Reach = "own" if own else "none"
        return cls(
            registrations="all" if principal.may("extension:read") else fallback,
            calls="all" if principal.may("call:read") else fallback,
            ports="all" if principal.may("system:read") else "none",
            extension=own,
        )

    def sees_registration(self, view: RegistrationView) -> bool:
        return self.registrations == "all" or (
            self.registrations == "own" and view.aor == self.extension
        )

    def sees_call(self, view: CallView) -> bool:
        if self.calls != "own":
            return self.calls == "all"
        # A caller ID from outside is never trusted: a line caller showing "101" is
        # not 101, and their call is not 101's to watch.
        from_own = view.caller == self.extension and not view.external
        return from_own or view.callee == self.extension


def look(source: LiveSource | None) -> tuple[LiveSnapshot | None, str | None]:
    """The PBX's state now, or None and the reason it is not available."""
    if source is None:
        return None, NO_PBX
    try:
        return source.snapshot(LOOK_TIMEOUT), None
    except TimeoutError:
        return None, PBX_SILENT


def live_dict(snapshot: LiveSnapshot | None, reason: str | None, scope: Scope) -> dict[str, object]:
    """The JSON of /api/live and of each SSE event: only what `scope` may see."""

    def part(
        reach: Reach, items: Sequence[RegistrationView | CallView | PortView]
    ) -> list[dict[str, object]] | None:
        if reach == "none":
            return None
        return [_as_dict(item) for item in items]

    registrations: Sequence[RegistrationView] = ()
    calls: Sequence[CallView] = ()
    ports: Sequence[PortView] = ()
    controller = None
    if snapshot is not None:
        registrations = [r for r in snapshot.registrations if scope.sees_registration(r)]
        calls = [c for c in snapshot.calls if scope.sees_call(c)]
        ports = snapshot.ports
        controller = snapshot.line_controller_up if scope.ports != "none" else None
    return {
        "available": snapshot is not None,
        "reason": reason,
        "taken_at": None if snapshot is None else snapshot.taken_at,
        "scope": {
            "registrations": scope.registrations,
            "calls": scope.calls,
            "ports": scope.ports,
        },
        "registrations": part(scope.registrations, registrations),
        "calls": part(scope.calls, calls),
        "ports": part(scope.ports, ports),
        "line_controller_up": controller,
    }


def _as_dict(view: RegistrationView | CallView | PortView) -> dict[str, object]:
    return dataclasses.asdict(view)


# -- rendering -------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """As m:ss, or h:mm:ss from an hour on; live.js formats the same way."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _cells(values: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>"


def _empty_row(columns: int, text: str) -> str:
    return f'<tr><td colspan="{columns}">{html.escape(text)}</td></tr>'


REGISTRATION_COLUMNS: Final = ("Extension", "Contact", "From", "User agent", "Expires in")
CALL_COLUMNS: Final = ("Call", "From", "To", "State", "Duration", "Talking", "Codec")
PORT_COLUMNS: Final = ("Port", "Type", "Label", "Role", "State", "Registered")


UNAVAILABLE: Final = "Not available."


def registration_rows(items: Sequence[RegistrationView] | None) -> str:
    """Table rows; None: the PBX state is not available."""
    if items is None:
        return _empty_row(len(REGISTRATION_COLUMNS), UNAVAILABLE)
    if not items:
        return _empty_row(len(REGISTRATION_COLUMNS), "No phone is registered.")
    return "\n".join(
        _cells((r.aor, r.contact, r.source, r.user_agent, duration(r.expires_in))) for r in items
    )


def call_rows(items: Sequence[CallView] | None) -> str:
    if items is None:
        return _empty_row(len(CALL_COLUMNS), UNAVAILABLE)
    if not items:
        return _empty_row(len(CALL_COLUMNS), "No call in progress.")
    rows = []
    for c in items:
        caller = f"{c.caller_name} <{c.caller}>" if c.caller_name else c.caller
        if c.external:
            caller += " (outside)"
        talking = "" if c.talking_s is None else duration(c.talking_s)
        rows.append(
            _cells(
                (str(c.number), caller, c.callee, c.state, duration(c.duration_s), talking)
                + (c.codec or "",)
            )
        )
    return "\n".join(rows)


def _registered(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def port_rows(items: Sequence[PortView] | None) -> str:
    if items is None:
        return _empty_row(len(PORT_COLUMNS), UNAVAILABLE)
    if not items:
        return _empty_row(len(PORT_COLUMNS), "No analog ports are running.")
    return "\n".join(
        _cells((str(p.port), p.type.upper(), p.label, p.role, p.state, _registered(p.registered)))
        for p in items
    )


def controller_text(available: bool, up: bool | None) -> str:
    if not available:
        return "Line controller: not known."
    if up is None:
        return "Line controller: not running (no analog ports)."
    return "Line controller: up." if up else "Line controller: DOWN (no answer from the board)."


def status_text(snapshot: LiveSnapshot | None, reason: str | None) -> str:
    if snapshot is None:
        return f"Live state not available: {reason}."
    return f"As of {when(snapshot.taken_at)} UTC."


def ports_block(snapshot: LiveSnapshot | None) -> str:
    """The line controller's state and the ports table (also on the analog page)."""
    up = snapshot.line_controller_up if snapshot else None
    ports = snapshot.ports if snapshot else None
    return "\n".join(
        [
            f'<p id="live-controller">{html.escape(controller_text(snapshot is not None, up))}</p>',
            table("live-ports", PORT_COLUMNS, port_rows(ports)),
        ]
    )


def table(body_id: str, columns: Sequence[str], rows: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    return (
        f'<table><thead><tr>{head}</tr></thead>\n<tbody id="{body_id}">\n{rows}\n</tbody></table>'
    )


def live_section(snapshot: LiveSnapshot | None, reason: str | None, scope: Scope) -> str:
    """The live tables; ids and data-events are what live.js updates."""
    e = html.escape
    parts = [
        f'<section id="live" data-events="{e(EVENTS_PATH)}">',
        f'<p id="live-status">{e(status_text(snapshot, reason))}</p>',
    ]
    registrations = calls = None
    if snapshot is not None:
        registrations = [r for r in snapshot.registrations if scope.sees_registration(r)]
        calls = [c for c in snapshot.calls if scope.sees_call(c)]
    if scope.registrations != "none":
        title = "Registrations" if scope.registrations == "all" else "Your phone's registrations"
        parts.append(f"<h2>{title}</h2>")
        parts.append(
            table("live-registrations", REGISTRATION_COLUMNS, registration_rows(registrations))
        )
    if scope.calls != "none":
        title = "Calls in progress" if scope.calls == "all" else "Your calls in progress"
        parts.append(f"<h2>{title}</h2>")
        parts.append(table("live-calls", CALL_COLUMNS, call_rows(calls)))
    if scope.ports != "none":
        parts.append('<h2><a href="/analog">Analog ports</a></h2>')
        parts.append(ports_block(snapshot))
    if scope.registrations == scope.calls == scope.ports == "none":
        parts.append(
            "<p>Your role shows no registrations or calls here"
            + (" (your account has no extension)." if scope.extension is None else ".")
            + "</p>"
        )
    parts.append("</section>")
    parts.append(f'<script src="{e(SCRIPT_PATH)}" defer></script>')
    return "\n".join(parts)


def _bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # the loop returns at TiB


def uptime_text(seconds: float) -> str:
    minutes = int(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def health_section(health: Health) -> str:
    unknown = "not known"
    rows: list[tuple[str, str]] = []
    rows.append(
        (
            "CPU",
            unknown
            if health.cpu_percent is None
            else f"{health.cpu_percent:.0f} % busy (since the previous reading, or boot)",
        )
    )
    if health.load_average is not None:
        rows.append(("Load average", ", ".join(f"{v:.2f}" for v in health.load_average)))
    memory = health.memory
    rows.append(
        (
            "Memory",
            unknown
            if memory is None
            else f"{_bytes(memory.total_bytes - memory.available_bytes)} used of "
            f"{_bytes(memory.total_bytes)} ({memory.used_percent:.0f} %)",
        )
    )
    disk = health.disk
    rows.append(
        (
            "Data disk",
            unknown
            if disk is None
            else f"{_bytes(disk.free_bytes)} free of {_bytes(disk.total_bytes)} "
            f"({disk.used_percent:.0f} % used) at {disk.path}",
        )
    )
    rows.append(("Up for", unknown if health.uptime_s is None else uptime_text(health.uptime_s)))
    temperatures = ", ".join(f"{t.zone} {t.celsius:.1f} °C" for t in health.temperatures)
    rows.append(("Temperature", temperatures or "no sensor"))
    items = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return f'<h2>System</h2>\n<dl id="health">\n{items}\n</dl>'


def charts_section(data: ChartData, whose: str) -> str:
    jitter, loss = quality_charts(data.quality)
    note = ""
    if data.truncated:
        note = "<p>More calls than the quality charts read: they show the newest ones.</p>"
    return "\n".join(
        [
            "<h2>Calls, last 24 hours</h2>",
            calls_chart(data.counts, whose=whose),
            "<h2>Call quality, last 24 hours</h2>",
            note,
            jitter,
            loss,
        ]
    )


# -- routes ----------------------------------------------------------------------------


def register_dashboard(
    reg: Registry,
    services: WebServices,
    *,
    probe: HealthProbe | None = None,
    stream: StreamPolicy | None = None,
    wait: Callable[[float], None] | None = None,
) -> None:
    """The dashboard, /api/live, /api/health and the event stream with its script.
    `probe`, `stream` and `wait` are for tests (a fake /proc, a clock that jumps)."""
    probe = probe or HealthProbe(services.data_dir)
    register_health(reg, probe)
    register_events(
        reg,
        services,
        lambda principal: live_dict(*look(services.live), Scope.of(principal)),
        policy=stream,
        wait=wait,
    )

    @reg.add(
        "GET",
        "/api/live",
        SIGNED_IN,
        "Registrations, calls in progress and analog ports now, as far as your role sees",
        response=LIVE_SCHEMA,
    )
    def live() -> dict[str, object]:
        return live_dict(*look(services.live), Scope.of(current()))

    @reg.add("GET", "/", SIGNED_IN, "Dashboard", nav="Dashboard", nav_order=0)
    def dashboard() -> str:
        principal = current()
        if principal.may("system:write") and not setup_done(services):
            return see_other(SETUP_PATH)  # an administrator's first visit: the wizard
        scope = Scope.of(principal)
        e = html.escape
        parts = [
            f"<p>Signed in as <strong>{e(principal.username)}</strong> (role {e(principal.role)}"
            + (f", extension {e(principal.extension)}" if principal.extension else "")
            + ").</p>"
        ]
        notice = NOTICES.get(bottle.request.query.get("notice") or "", "")
        if notice:
            parts.append(f'<p class="notice">{e(notice)}</p>')
        parts.append(live_section(*look(services.live), scope))
        if principal.may("system:read"):
            parts.append(health_section(probe.read()))
        if principal.may("cdr:read"):
            data = chart_data(services.db, services.clock())
            parts.append(charts_section(data, "all calls"))
        elif principal.may("cdr:read_own") and principal.extension:
            data = chart_data(services.db, services.clock(), principal.extension)
            parts.append(charts_section(data, f"calls of extension {principal.extension}"))
        parts.append(_box_section(services, principal))
        return page("Dashboard", "\n".join(parts))


def _box_section(services: WebServices, principal: Principal) -> str:
    facts = []
    if principal.may("extension:read"):
        facts.append(f"{len(services.directory.list())} extension(s).")
    elif principal.extension:
        facts.append(f"Your extension is {principal.extension}.")
    if principal.may("user:read"):
        facts.append(f"{len(services.accounts.list_users())} web account(s).")
    if principal.may("role:read"):
        facts.append(f"{len(services.accounts.list_roles())} role(s).")
    facts.append(f"You have {len(services.tokens.list(principal.username))} API token(s).")
    links = [
        '<li><a href="/tokens">API tokens</a> for scripts using the REST API '
        '(<a href="/api/openapi.json">OpenAPI description</a>).</li>'
    ]
    if principal.may("audit:read"):
        links.append('<li><a href="/audit">Audit log</a>: every change made here.</li>')
    links.append('<li><a href="/password">Change your password</a>.</li>')
    items = "\n".join(f"<li>{html.escape(f)}</li>" for f in facts)
    return "\n".join(["<h2>This box</h2>", f"<ul>\n{items}\n</ul>", "<ul>", *links, "</ul>"])
