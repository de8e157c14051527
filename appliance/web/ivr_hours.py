"""The business-hours form of the auto-attendant: one schedule as per-weekday fields.

The form holds, per weekday, one opening range (both times empty: closed that day; a
closing time before the opening one runs past midnight), one menu for opening hours,
one for the rest (the schedule's ``otherwise``) and holidays, one a line. That is the
schedule format of `appliance.pbx.ivr.schedule` minus two things: several ranges on one
day, and different menus for different ranges. ``hours_values`` says when a stored
schedule uses them, and the page then sends the installer to the JSON editor instead.
Weekdays with the same range are written as one rule (``mon-fri``).
"""

from __future__ import annotations

import html
from typing import Final

from appliance.pbx.ivr.schedule import (
    WEEKDAYS,
    Schedule,
    format_clock,
    format_days,
    parse_clock,
    parse_holiday_date,
    parse_timezone,
)
from appliance.web.choice_fields import select_field
from appliance.web.pages import field, sentence

MAX_HOLIDAY_LINES: Final = 400  # as appliance.pbx.ivr.menu.MAX_HOLIDAYS
DAY_NAMES: Final = dict(
    zip(
        WEEKDAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
HOURS_FIELDS: Final = (
    "name",
    "timezone",
    "open_menu",
    "closed_menu",
    *(f"{edge}_{day}" for day in WEEKDAYS for edge in ("open", "close")),
)


def hours_values(schedule: Schedule) -> tuple[dict[str, str] | None, str | None]:
    """The form's values for ``schedule``, or None and why the form cannot show it."""
    values = {
        "name": schedule.name,
        "timezone": schedule.timezone,
        "closed_menu": schedule.otherwise,
        "open_menu": "",
        "holidays": "\n".join(
            h.date_text if h.menu == schedule.otherwise else f"{h.date_text} {h.menu}"
            for h in schedule.holidays
        ),
    }
    for rule in schedule.hours:
        if values["open_menu"] and rule.menu != values["open_menu"]:
            return None, "its opening hours lead to more than one menu"
        values["open_menu"] = rule.menu
        for day in sorted(rule.days):
            key = WEEKDAYS[day]
            if f"open_{key}" in values:
                return None, f"{DAY_NAMES[key]} has more than one opening range"
            values[f"open_{key}"] = format_clock(rule.start)
            values[f"close_{key}"] = format_clock(rule.end)
    return values, None


def schedule_from(
    values: dict[str, str], menus: set[str]
) -> tuple[dict[str, object] | None, dict[str, str]]:
    """The schedule table the form describes, or each bad field's reason."""
    errors: dict[str, str] = {}
    try:
        timezone = parse_timezone(values["timezone"])
    except ValueError as exc:
        errors["timezone"] = sentence(str(exc))
        timezone = ""
    ranges: dict[tuple[str, str], list[int]] = {}
    for index, day in enumerate(WEEKDAYS):
        opens, closes = values[f"open_{day}"], values[f"close_{day}"]
        if not opens and not closes:
            continue  # closed all day
        if not opens or not closes:
            key = f"open_{day}" if not opens else f"close_{day}"
            errors[key] = "Give both times, or neither for a closed day."
            continue
        try:
            start = parse_clock(opens)
        except ValueError as exc:
            errors[f"open_{day}"] = sentence(str(exc))
            continue
        try:
            end = parse_clock(closes, end=True)
        except ValueError as exc:
            errors[f"close_{day}"] = sentence(str(exc))
            continue
        if start == end:
            errors[f"close_{day}"] = "The same as opening; for a whole day use 00:00 to 24:00."
            continue
        ranges.setdefault((format_clock(start), format_clock(end)), []).append(index)
    if values["closed_menu"] not in menus:
        errors["closed_menu"] = "Choose the menu that answers when closed."
    if ranges and values["open_menu"] not in menus:
        errors["open_menu"] = "Choose the menu that answers during opening hours."
    holidays: list[dict[str, object]] = []
    lines = [line.split() for line in values["holidays"].splitlines() if line.strip()]
    if len(lines) > MAX_HOLIDAY_LINES:
        errors["holidays"] = f"At most {MAX_HOLIDAY_LINES} holidays."
        lines = []
    for number, words in enumerate(lines, 1):
        if len(words) > 2:
            errors["holidays"] = f"Line {number}: a date, then optionally a menu."
            break
        try:
            parse_holiday_date(words[0])
        except ValueError as exc:
            errors["holidays"] = f"Line {number}: {exc}."
            break
        menu = words[1] if len(words) == 2 else values["closed_menu"]
        if len(words) == 2 and menu not in menus:
            errors["holidays"] = f"Line {number}: there is no menu {menu!r}."
            break
        holidays.append({"date": words[0], "menu": menu})
    if errors:
        return None, errors
    hours: list[dict[str, object]] = [
        {
            "days": format_days(frozenset(days)),
            "from": start,
            "to": end,
            "menu": values["open_menu"],
        }
        for (start, end), days in ranges.items()
    ]
    return {
        "timezone": timezone,
        "hours": hours,
        "holidays": holidays,
        "otherwise": values["closed_menu"],
    }, {}


def hours_fields(
    name: str, exists: bool, values: dict[str, str], errors: dict[str, str], menus: list[str]
) -> str:
    """The form's fields, each error beneath its field; a stored schedule's name is fixed."""
    e = html.escape
    menu_options = [("", "choose..."), *((m, m) for m in menus)]
    rows = []
    for day in WEEKDAYS:
        cells = []
        for edge in ("open", "close"):
            key = f"{edge}_{day}"
            error = errors.get(key)
            invalid = f' aria-invalid="true" aria-describedby="{key}-error"' if error else ""
            message = f'<p class="error" id="{key}-error">{e(error)}</p>' if error else ""
            cells.append(
                f'<td><input id="{key}" name="{key}" type="text" size="5" '
                f'placeholder="HH:MM" value="{e(values.get(key, ""))}" '
                f'aria-label="{edge.capitalize()}s on {DAY_NAMES[day]}"{invalid}>{message}</td>'
            )
        rows.append(f'<tr id="day-{day}"><th>{DAY_NAMES[day]}</th>{"".join(cells)}</tr>')
    name_field = (
        f'<input type="hidden" name="name" value="{e(name)}"><p>Schedule '
        f"<strong>{e(name)}</strong></p>"
        if exists
        else field("name", "Schedule name", values.get("name", ""), errors.get("name"), "off")
    )
    holidays_error = errors.get("holidays")
    invalid = ""
    message = ""
    if holidays_error:
        invalid = ' aria-invalid="true" aria-describedby="holidays-error"'
        message = f'<p class="error" id="holidays-error">{e(holidays_error)}</p>'
    holidays = (
        f'<div class="field{" invalid" if holidays_error else ""}">'
        '<label for="holidays">Holidays, one a line: <code>2026-12-25</code> (once) or '
        "<code>12-25</code> (every year), optionally followed by a menu (else the "
        "closed menu)</label>"
        f'<textarea id="holidays" name="holidays" rows="6" cols="40"{invalid}>'
        f"{e(values.get('holidays', ''))}</textarea>{message}</div>"
    )
    form = "\n".join(
        (
            name_field,
            field(
                "timezone",
                "Time zone (like Europe/Berlin)",
                values.get("timezone", ""),
                errors.get("timezone"),
                "off",
            ),
            select_field(
                "open_menu",
                "Menu during opening hours",
                menu_options,
                values.get("open_menu", ""),
                errors.get("open_menu"),
            ),
            select_field(
                "closed_menu",
                "Menu when closed",
                menu_options,
                values.get("closed_menu", ""),
                errors.get("closed_menu"),
            ),
            "<p>Leave both times empty for a day that is closed. A closing time "
            "before the opening time runs past midnight; 24:00 is the end of the "
            "day.</p>",
            '<table id="hours"><thead><tr><th>Day</th><th>Opens</th><th>Closes</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>",
            holidays,
        )
    )
    return form
