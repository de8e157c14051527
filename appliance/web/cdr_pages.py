"""The call log: a page with filters, paging and CSV export, and its JSON API.

`cdr:read` sees every call; `cdr:read_own` only the calls the account's extension made
or took (the store's `party` filter does the scoping, so a page, the CSV and the API
cannot disagree). Times are shown in UTC and the date filter takes UTC days.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import html
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import bottle

from appliance.pbx.causes import Cause
from appliance.store.cdr import (
    COLUMNS,
    MAX_QUERY_LIMIT,
    MAX_SEARCH,
    CdrRecord,
    CdrSearch,
    Disposition,
    LegQuality,
    count_cdrs,
    export_search_csv,
    search_cdrs,
)
from appliance.store.errors import StoreError
from appliance.web.auth import Principal, current
from appliance.web.pages import page, when
from appliance.web.registry import Registry
from appliance.web.schemas import NULLABLE_STRING, obj
from appliance.web.services import WebServices

PAGE_SIZE: Final = 50
MAX_PAGE: Final = 100_000
DAY: Final = 86_400
FILTER_FIELDS: Final = ("from", "to", "number", "disposition")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
OUTCOMES: Final = {
    Disposition.ANSWERED: "Answered",
    Disposition.NO_ANSWER: "No answer",
    Disposition.BUSY: "Busy",
    Disposition.FAILED: "Failed",
    Disposition.CANCELLED: "Cancelled",
}

_LEG: Final = obj(
    {
        "packets_in": {"type": "integer"},
        "packets_out": {"type": "integer"},
        "lost": {"type": "integer"},
        "jitter_ms": {"type": "number"},
    }
)
CDR: Final = obj(
    {
        "call_id": {"type": "string"},
        "caller": {"type": "string"},
        "caller_name": {"type": "string"},
        "callee": {"type": "string"},
        "start_at": {"type": "number", "description": "Unix time"},
        "answer_at": {"type": ["number", "null"]},
        "end_at": {"type": "number"},
        "duration_s": {"type": "number", "description": "talk time: answer to end"},
        "disposition": {"enum": [d.value for d in Disposition]},
        "hangup_cause": {"type": "integer", "description": "ITU-T Q.850"},
        "hangup_by": {"type": "string"},
        "codec": NULLABLE_STRING,
        "a": _LEG,
        "b": _LEG,
    }
)
CDR_PAGE: Final = obj(
    {
        "items": {"type": "array", "items": CDR},
        "total": {"type": "integer", "description": "calls matching the filters"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
    }
)


@dataclass(frozen=True, slots=True)
class LogQuery:
    """The call log's filters as parsed from a query string."""

    values: dict[str, str]  # as sent, to fill the form back in
    errors: dict[str, str]  # field -> reason
    search: CdrSearch | None  # None: nothing to show (errors, or no extension to scope to)
    page: int


def scope(principal: Principal) -> tuple[bool, str | None]:
    """(may see any call, the extension to limit the log to)."""
    if principal.may("cdr:read"):
        return True, None
    return principal.extension is not None, principal.extension


def _day(text: str, key: str, errors: dict[str, str]) -> float | None:
    """Unix time of 00:00 UTC of the day in `text` (YYYY-MM-DD)."""
    if not text:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        day = datetime.date.fromisoformat(text)
    except ValueError:
        errors[key] = "Enter a date as YYYY-MM-DD."
        return None
    moment = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
    return moment.timestamp()


def parse_log_query(query: Mapping[str, str], principal: Principal) -> LogQuery:
    values = {key: str(query.get(key) or "").strip()[: MAX_SEARCH + 1] for key in FILTER_FIELDS}
    errors: dict[str, str] = {}
    since = _day(values["from"], "from", errors)
    last_day = _day(values["to"], "to", errors)
    until = None if last_day is None else last_day + DAY
    if since is not None and until is not None and until <= since:
        errors["to"] = "The end date is before the start date."
    term = values["number"] or None
    if term is not None and (len(term) > MAX_SEARCH or any(ord(c) < 0x20 for c in term)):
        errors["number"] = f"At most {MAX_SEARCH} characters."
    disposition = None
    if values["disposition"]:
        try:
            disposition = Disposition(values["disposition"])
        except ValueError:
            errors["disposition"] = "Choose one of the listed outcomes."
    raw_page = str(query.get("page") or "")
    number = int(raw_page) if raw_page.isdigit() and len(raw_page) <= 6 else 1
    page_number = min(max(number, 1), MAX_PAGE)
    visible, party = scope(principal)
    if errors or not visible:
        return LogQuery(values, errors, None, page_number)
    return LogQuery(values, {}, CdrSearch(since, until, term, disposition, party), page_number)


# -- presentation ------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour."""
    whole = max(0, math.floor(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cause_text(value: int) -> str:
    cause = Cause.from_value(value)
    return str(value) if cause is None else f"{value} {cause.text}"


def _leg_quality(label: str, leg: LegQuality) -> str | None:
    if not (leg.packets_in or leg.packets_out or leg.lost):
        return None  # no media on this leg, or no counters kept
    expected = leg.packets_in + leg.lost
    loss = 100.0 * leg.lost / expected if expected else 0.0
    return f"{label}: jitter {leg.jitter_ms:.1f} ms, loss {loss:.1f}%"


def quality(record: CdrRecord) -> str:
    legs = (_leg_quality("caller", record.a), _leg_quality("callee", record.b))
    return "; ".join(leg for leg in legs if leg is not None)


def party(number: str, name: str = "") -> str:
    shown = number or "(withheld)"
    return f"{name} <{shown}>" if name else shown


@dataclass(frozen=True, slots=True)
class CallRow:
    started: str
    caller: str
    callee: str
    outcome: str
    duration: str
    talk: str
    cause: str
    codec: str
    quality: str


def call_row(record: CdrRecord) -> CallRow:
    return CallRow(
        started=when(record.start_at),
        caller=party(record.caller, record.caller_name),
        callee=party(record.callee),
        outcome=OUTCOMES.get(record.disposition, record.disposition.value),
        duration=clock(record.end_at - record.start_at),
        talk=clock(record.duration_s),
        cause=cause_text(record.hangup_cause),
        codec=record.codec or "",
        quality=quality(record),
    )


def cdr_dict(record: CdrRecord) -> dict[str, object]:
    return {
        "call_id": record.call_id,
        "caller": record.caller,
        "caller_name": record.caller_name,
        "callee": record.callee,
        "start_at": record.start_at,
        "answer_at": record.answer_at,
        "end_at": record.end_at,
        "duration_s": record.duration_s,
        "disposition": record.disposition.value,
        "hangup_cause": record.hangup_cause,
        "hangup_by": record.hangup_by.value,
        "codec": record.codec,
        "a": dataclasses.asdict(record.a),
        "b": dataclasses.asdict(record.b),
    }


def _input(name: str, label: str, value: str, error: str | None, kind: str = "text") -> str:
    e = html.escape
    invalid = f' aria-invalid="true" aria-describedby="{name}-error"' if error else ""
    lines = [
        f'<div class="field{" invalid" if error else ""}">',
        f'<label for="{name}">{e(label)}</label>',
        f'<input id="{name}" name="{name}" type="{kind}" value="{e(value)}"{invalid}>',
    ]
    if error:
        lines.append(f'<p class="error" id="{name}-error">{e(error)}</p>')
    lines.append("</div>")
    return "\n".join(lines)


def _outcome_select(value: str, error: str | None) -> str:
    e = html.escape
    options = ['<option value="">Any</option>']
    for disposition, label in OUTCOMES.items():
        chosen = " selected" if disposition.value == value else ""
        options.append(f'<option value="{disposition.value}"{chosen}>{e(label)}</option>')
    invalid = ' aria-invalid="true" aria-describedby="disposition-error"' if error else ""
    lines = [
        f'<div class="field{" invalid" if error else ""}">',
        '<label for="disposition">Outcome</label>',
        f'<select id="disposition" name="disposition"{invalid}>',
        *options,
        "</select>",
    ]
    if error:
        lines.append(f'<p class="error" id="disposition-error">{e(error)}</p>')
    lines.append("</div>")
    return "\n".join(lines)


CALL_LOG: Final = bottle.SimpleTemplate("""<form method="get" action="/calls">
{{!fields}}
<button type="submit">Show</button>
</form>
% if note:
<p class="notice">{{note}}</p>
% end
% if rows:
<p>{{total}} call(s); page {{page}} of {{pages}}, newest first.
<a href="/calls.csv{{query}}" download>Download these calls as CSV</a></p>
<table>
<thead><tr><th>Started (UTC)</th><th>Caller</th><th>Callee</th><th>Outcome</th>
<th>Duration</th><th>Talk time</th><th>Cause (Q.850)</th><th>Codec</th><th>Quality</th></tr></thead>
<tbody>
% for r in rows:
<tr><td>{{r.started}}</td><td>{{r.caller}}</td><td>{{r.callee}}</td><td>{{r.outcome}}</td>
<td>{{r.duration}}</td><td>{{r.talk}}</td><td>{{r.cause}}</td><td>{{r.codec}}</td>
<td>{{r.quality}}</td></tr>
% end
</tbody>
</table>
<p>
% if newer:
<a href="/calls{{newer}}">Newer calls</a>
% end
% if older:
<a href="/calls{{older}}">Older calls</a>
% end
</p>
% elif not note:
<p>No calls match.</p>
% end
""")


def _query_string(values: Mapping[str, str], page_number: int | None = None) -> str:
    kept = {key: value for key, value in values.items() if value}
    if page_number is not None and page_number > 1:
        kept["page"] = str(page_number)
    return "?" + urlencode(kept) if kept else ""


# -- routes ------------------------------------------------------------------------------


def _query_number(name: str) -> float | None:
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise bottle.HTTPError(400, f"query {name}: a Unix time (seconds, >= 0)")
    return value


def _query_int(name: str, default: int, low: int, high: int) -> int:
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bottle.HTTPError(400, f"query {name}: an integer from {low} to {high}")
    return int(raw)


def register_cdr_pages(reg: Registry, services: WebServices) -> None:
    db = services.db

    def query_values() -> dict[str, str]:
        query = bottle.request.query
        return {key: str(query.getunicode(key) or "") for key in (*FILTER_FIELDS, "page")}

    @reg.add("GET", "/calls", "cdr:read_own", "Call log", nav="Call log", nav_order=30)
    def call_log() -> str:
        principal = current()
        log_query = parse_log_query(query_values(), principal)
        values, errors = log_query.values, log_query.errors
        fields = "\n".join(
            (
                _input("from", "From (UTC day)", values["from"], errors.get("from"), "date"),
                _input("to", "To (UTC day)", values["to"], errors.get("to"), "date"),
                _input("number", "Number or name", values["number"], errors.get("number")),
                _outcome_select(values["disposition"], errors.get("disposition")),
            )
        )
        note = ""
        rows: list[CallRow] = []
        total = pages = 0
        newer = older = ""
        search = log_query.search
        if errors:
            note = "Correct the filters marked below the fields."
        elif search is None:
            note = "No extension is tied to your account, so there are no calls to show."
        else:
            total = count_cdrs(db, search)
            pages = max(1, math.ceil(total / PAGE_SIZE))
            page_number = min(log_query.page, pages)
            offset = (page_number - 1) * PAGE_SIZE
            rows = [call_row(r) for r in search_cdrs(db, search, limit=PAGE_SIZE, offset=offset)]
            if page_number > 1:
                newer = _query_string(values, page_number - 1) or "?"
            if page_number < pages:
                older = _query_string(values, page_number + 1)
        body = CALL_LOG.render(
            fields=fields,
            note=note,
            rows=rows,
            total=total,
            page=min(log_query.page, pages) if pages else 1,
            pages=pages,
            query=_query_string(values),
            newer=newer,
            older=older,
        )
        return page("Call log", str(body), 400 if errors else 200)

    @reg.add("GET", "/calls.csv", "cdr:read_own", "The filtered call log as CSV")
    def call_log_csv() -> str:
        log_query = parse_log_query(query_values(), current())
        if log_query.errors:
            raise bottle.HTTPError(400, " ".join(log_query.errors.values()))
        stream = io.StringIO(newline="")
        if log_query.search is not None:
            export_search_csv(db, stream, log_query.search)
        else:  # no extension: the header alone, so a script still sees the columns
            csv.writer(stream).writerow(COLUMNS)
        stamp = datetime.datetime.fromtimestamp(services.clock(), datetime.UTC)
        bottle.response.content_type = "text/csv; charset=utf-8"
        bottle.response.set_header(
            "Content-Disposition", f'attachment; filename="yakyak-calls-{stamp:%Y%m%d-%H%M%S}.csv"'
        )
        return stream.getvalue()

    @reg.add(
        "GET",
        "/api/cdr",
        "cdr:read_own",
        "Call log, newest first (only your extension's calls without cdr:read); query: "
        "since, until (Unix time), search, disposition, limit, offset",
        response=CDR_PAGE,
        query=(
            ("since", "number"),
            ("until", "number"),
            ("search", "string"),
            ("disposition", "string"),
            ("limit", "integer"),
            ("offset", "integer"),
        ),
    )
    def cdr_api() -> dict[str, object]:
        since = _query_number("since")
        until = _query_number("until")
        term = bottle.request.query.getunicode("search") or None
        raw = bottle.request.query.get("disposition") or ""
        limit = _query_int("limit", PAGE_SIZE, 1, MAX_QUERY_LIMIT)
        offset = _query_int("offset", 0, 0, 10**9)
        try:
            disposition = Disposition(raw) if raw else None
        except ValueError:
            choices = ", ".join(d.value for d in Disposition)
            raise bottle.HTTPError(400, f"query disposition: one of {choices}") from None
        visible, own = scope(current())
        if not visible:
            return {"items": [], "total": 0, "limit": limit, "offset": offset}
        try:
            search = CdrSearch(since, until, term, disposition, own)
        except StoreError as exc:
            raise bottle.HTTPError(400, f"query search: {exc}") from None
        found = search_cdrs(db, search, limit=limit, offset=offset)
        return {
            "items": [cdr_dict(r) for r in found],
            "total": count_cdrs(db, search),
            "limit": limit,
            "offset": offset,
        }
