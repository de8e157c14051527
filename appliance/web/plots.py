"""Server-side SVG charts for the dashboard: calls per hour, and call quality (jitter,
packet loss) per hour, over the last 24 hours of the CDR table.

Charts are plain SVG markup built from presentation attributes only (fill, stroke,
font-size): the Content-Security-Policy refuses inline styles, and attributes are not
styles. Colours that must follow the page's light or dark scheme use currentColor.
The bucketing and the drawing are pure functions; `chart_data` is the one reader.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import peewee

from appliance.store.cdr import (
    MAX_QUERY_LIMIT,
    CdrRecord,
    Disposition,
    LegQuality,
    query_cdrs,
    stats_per_hour,
)

HOURS: Final = 24
HOUR: Final = 3600.0
MAX_RECORDS: Final = 5 * MAX_QUERY_LIMIT  # CDRs read for one request's per-call charts

# Geometry of every chart, in SVG user units (the viewBox scales it to the page).
WIDTH: Final = 640
HEIGHT: Final = 240
LEFT: Final = 60  # room for the y tick labels and the y axis title
RIGHT: Final = 16
TOP: Final = 30  # room for the legend
BOTTOM: Final = 46  # room for the hour labels and the x axis title
LABEL_EVERY: Final = 3  # hours between two x labels
BAR_COLOUR: Final = "#2a6f97"  # the style sheet's --accent
PALE_COLOUR: Final = "#8ab6d6"
LINE_COLOUR: Final = "#c44e00"


@dataclass(frozen=True, slots=True)
class HourCount:
    hour_start: float  # Unix time of the UTC hour
    calls: int
    answered: int


@dataclass(frozen=True, slots=True)
class HourQuality:
    hour_start: float
    calls: int  # calls of this hour that carried media
    jitter_ms: float | None  # mean over those calls of the worse leg's jitter
    loss_percent: float | None  # packets lost / packets expected, both legs together


@dataclass(frozen=True, slots=True)
class ChartData:
    counts: list[HourCount]
    quality: list[HourQuality]
    truncated: bool  # more calls than MAX_RECORDS: quality covers the newest only


def window(now: float, hours: int = HOURS) -> tuple[float, float]:
    """[since, until): the last `hours` whole UTC hours, the current one included."""
    until = (math.floor(now / HOUR) + 1) * HOUR
    return until - hours * HOUR, until


def _slot(start_at: float, since: float, hours: int) -> int | None:
    index = math.floor((start_at - since) / HOUR)
    return index if 0 <= index < hours else None


def count_per_hour(records: Iterable[CdrRecord], since: float, hours: int) -> list[HourCount]:
    """Calls and answered calls per hour from `since`, every hour present."""
    calls = [0] * hours
    answered = [0] * hours
    for record in records:
        index = _slot(record.start_at, since, hours)
        if index is None:
            continue
        calls[index] += 1
        answered[index] += record.disposition is Disposition.ANSWERED
    return [HourCount(since + i * HOUR, calls[i], answered[i]) for i in range(hours)]


def _expected(leg: LegQuality) -> int:
    # RFC 3550 §6.4.1: expected = received + lost (the extended sequence span).
    return leg.packets_in + leg.lost


def quality_per_hour(records: Iterable[CdrRecord], since: float, hours: int) -> list[HourQuality]:
    """Mean worse-leg jitter and overall loss per hour, from calls that carried media.
    An hour without such calls has None for both: a gap in the line, not a zero."""
    jitter: list[list[float]] = [[] for _ in range(hours)]
    lost = [0] * hours
    expected = [0] * hours
    for record in records:
        index = _slot(record.start_at, since, hours)
        if index is None:
            continue
        legs = (record.a, record.b)
        packets = sum(_expected(leg) for leg in legs)
        if packets == 0:
            continue  # unanswered, or no RTP ever came: nothing to say about quality
        jitter[index].append(max(leg.jitter_ms for leg in legs))
        lost[index] += sum(leg.lost for leg in legs)
        expected[index] += packets
    out = []
    for i in range(hours):
        n = len(jitter[i])
        out.append(
            HourQuality(
                hour_start=since + i * HOUR,
                calls=n,
                jitter_ms=sum(jitter[i]) / n if n else None,
                loss_percent=100.0 * lost[i] / expected[i] if n else None,
            )
        )
    return out


def _records(
    db: peewee.SqliteDatabase, since: float, until: float, number: str | None
) -> tuple[list[CdrRecord], bool]:
    """The calls started in [since, until), newest first, at most MAX_RECORDS."""
    found: list[CdrRecord] = []
    while len(found) < MAX_RECORDS:
        page = query_cdrs(
            db,
            since=since,
            until=until,
            number=number,
            limit=MAX_QUERY_LIMIT,
            offset=len(found),
        )
        found.extend(page)
        if len(page) < MAX_QUERY_LIMIT:
            return found, False
    return found, True


def chart_data(
    db: peewee.SqliteDatabase, now: float, number: str | None = None, hours: int = HOURS
) -> ChartData:
    """Both charts' data; `number` limits them to the calls to or from that extension."""
    since, until = window(now, hours)
    records, truncated = _records(db, since, until, number)
    if number is None:
        # Counted in SQL: exact whatever the number of calls.
        counts = [HourCount(*row) for row in stats_per_hour(db, since, until)]
    else:
        counts = count_per_hour(records, since, hours)
    return ChartData(counts, quality_per_hour(records, since, hours), truncated)


# -- drawing ---------------------------------------------------------------------------


def nice_ticks(top: float, *, integers: bool = False, count: int = 5) -> list[float]:
    """Tick values from 0 to at least `top`, on steps of 1, 2 or 5 times a power of ten."""
    if not math.isfinite(top) or top <= 0:
        top = 1.0
    raw = top / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    if integers:
        step = max(1.0, math.ceil(step))
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _number(value: float) -> str:
    return f"{value:g}"


def _hour_label(hour_start: float) -> str:
    return f"{int(hour_start // HOUR) % 24:02d}:00"


@dataclass(frozen=True, slots=True)
class _Frame:
    """Plot area and scales of one chart."""

    slots: int
    top_value: float

    @property
    def x0(self) -> float:
        return LEFT

    @property
    def y0(self) -> float:
        return HEIGHT - BOTTOM

    @property
    def slot_width(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.slots

    def x(self, slot: float) -> float:
        return LEFT + slot * self.slot_width

    def y(self, value: float) -> float:
        return self.y0 - (value / self.top_value) * (self.y0 - TOP)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _axes(
    frame: _Frame, ticks: Sequence[float], hours: Sequence[float], x_title: str, y_title: str
) -> list[str]:
    e = html.escape
    parts = ['<g fill="currentColor" stroke="none" font-size="11">']
    for value in ticks:
        y = _f(frame.y(value))
        parts.append(
            f'<line x1="{frame.x0}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" '
            'stroke="currentColor" stroke-opacity="0.15"/>'
        )
        parts.append(
            f'<text x="{frame.x0 - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{_number(value)}</text>'
        )
    for i, hour_start in enumerate(hours):
        if i % LABEL_EVERY == 0:
            x = _f(frame.x(i))
            parts.append(
                f'<line x1="{x}" y1="{frame.y0}" x2="{x}" y2="{frame.y0 + 4}" '
                'stroke="currentColor"/>'
            )
            parts.append(
                f'<text x="{x}" y="{frame.y0 + 16}" text-anchor="middle">'
                f"{_hour_label(hour_start)}</text>"
            )
    parts.append(
        f'<line x1="{frame.x0}" y1="{TOP}" x2="{frame.x0}" y2="{frame.y0}" stroke="currentColor"/>'
    )
    parts.append(
        f'<line x1="{frame.x0}" y1="{frame.y0}" x2="{WIDTH - RIGHT}" y2="{frame.y0}" '
        'stroke="currentColor"/>'
    )
    middle = _f((frame.x0 + WIDTH - RIGHT) / 2)
    parts.append(
        f'<text x="{middle}" y="{HEIGHT - 6}" text-anchor="middle" font-size="12">'
        f"{e(x_title)}</text>"
    )
    y_middle = _f((TOP + frame.y0) / 2)
    parts.append(
        f'<text x="14" y="{y_middle}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {y_middle})">{e(y_title)}</text>'
    )
    parts.append("</g>")
    return parts


def _svg(ident: str, title: str, description: str, inner: list[str]) -> str:
    e = html.escape
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="100%" role="img" aria-labelledby="{e(ident)}-title {e(ident)}-desc" '
            f'class="plot" font-family="system-ui, sans-serif" id="{e(ident)}">',
            f'<title id="{e(ident)}-title">{e(title)}</title>',
            f'<desc id="{e(ident)}-desc">{e(description)}</desc>',
            *inner,
            "</svg>",
        ]
    )


def _empty_note(frame: _Frame, text: str) -> str:
    return (
        f'<text x="{_f((frame.x0 + WIDTH - RIGHT) / 2)}" y="{_f((TOP + frame.y0) / 2)}" '
        f'text-anchor="middle" dominant-baseline="middle" font-size="14" '
        f'fill="currentColor">{html.escape(text)}</text>'
    )


def _legend(entries: Sequence[tuple[str, str]]) -> list[str]:
    parts = ['<g font-size="11" fill="currentColor">']
    x = LEFT
    for colour, label in entries:
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="14" dominant-baseline="middle">{label}</text>')
        x += 24 + 7 * len(label)
    parts.append("</g>")
    return parts


def calls_chart(counts: Sequence[HourCount], *, whose: str = "all calls") -> str:
    """Bars of calls per hour, the answered part of each bar darker."""
    hours = [c.hour_start for c in counts]
    total = sum(c.calls for c in counts)
    ticks = nice_ticks(max((c.calls for c in counts), default=0), integers=True)
    frame = _Frame(slots=max(1, len(counts)), top_value=ticks[-1])
    inner = _legend(((BAR_COLOUR, "answered"), (PALE_COLOUR, "not answered")))
    inner += _axes(frame, ticks, hours, "Hour (UTC)", "Calls")
    width = frame.slot_width * 0.8
    for i, count in enumerate(counts):
        if count.calls == 0:
            continue
        x = _f(frame.x(i) + frame.slot_width * 0.1)
        label = f"{_hour_label(count.hour_start)}: {count.calls} call(s), {count.answered} answered"
        for value, colour in ((count.calls, PALE_COLOUR), (count.answered, BAR_COLOUR)):
            if value == 0:
                continue
            y = frame.y(value)
            inner.append(
                f'<rect x="{x}" y="{_f(y)}" width="{_f(width)}" height="{_f(frame.y0 - y)}" '
                f'fill="{colour}"><title>{html.escape(label)}</title></rect>'
            )
    if total == 0:
        inner.append(_empty_note(frame, f"No calls in the last {len(counts)} hours"))
    description = (
        f"Calls per hour over the last {len(counts)} hours ({whose}): {total} in all, "
        f"{sum(c.answered for c in counts)} answered."
    )
    return _svg("plot-calls", f"Calls per hour ({whose})", description, inner)


def line_chart(
    ident: str,
    title: str,
    hours: Sequence[float],
    values: Sequence[float | None],
    *,
    y_title: str,
    unit: str,
    empty: str,
) -> str:
    """One value per hour as a line with a dot per hour; None leaves a gap."""
    known = [v for v in values if v is not None]
    ticks = nice_ticks(max(known, default=0.0))
    frame = _Frame(slots=max(1, len(hours)), top_value=ticks[-1])
    inner = _axes(frame, ticks, hours, "Hour (UTC)", y_title)
    runs: list[list[str]] = [[]]
    dots = []
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        x, y = _f(frame.x(i + 0.5)), _f(frame.y(value))
        runs[-1].append(f"{x},{y}")
        label = html.escape(f"{_hour_label(hours[i])}: {value:.1f} {unit}")
        dots.append(
            f'<circle cx="{x}" cy="{y}" r="3" fill="{LINE_COLOUR}"><title>{label}</title></circle>'
        )
    for run in runs:
        if len(run) > 1:
            inner.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="{LINE_COLOUR}" '
                'stroke-width="2"/>'
            )
    inner += dots
    if not known:
        inner.append(_empty_note(frame, empty))
    description = f"{title} over the last {len(hours)} hours: " + (
        f"highest {max(known):.1f} {unit}." if known else empty + "."
    )
    return _svg(ident, title, description, inner)


def quality_charts(quality: Sequence[HourQuality]) -> tuple[str, str]:
    """The jitter chart and the packet loss chart."""
    hours = [q.hour_start for q in quality]
    empty = f"No calls with media in the last {len(quality)} hours"
    jitter = line_chart(
        "plot-jitter",
        "Jitter per hour (worse leg, mean of calls)",
        hours,
        [q.jitter_ms for q in quality],
        y_title="Jitter (ms)",
        unit="ms",
        empty=empty,
    )
    loss = line_chart(
        "plot-loss",
        "Packet loss per hour (both legs)",
        hours,
        [q.loss_percent for q in quality],
        y_title="Packet loss (%)",
        unit="%",
        empty=empty,
    )
    return jitter, loss
