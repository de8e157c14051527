"""IVR schedules: day lists, clock times, holidays, time zones and picking a menu."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.pbx.ivr.schedule import (
    Holiday,
    HoursRule,
    Schedule,
    format_clock,
    format_days,
    parse_clock,
    parse_days,
    parse_holiday_date,
    parse_timezone,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    """Unix time of a local wall time like '2026-12-24 10:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def office(*holidays: Holiday) -> Schedule:
    return Schedule(
        name="office",
        timezone="Europe/Berlin",
        hours=(
            HoursRule(parse_days("mon-fri"), 9 * 60, 17 * 60 + 30, "main"),
            HoursRule(parse_days("sat"), 10 * 60, 12 * 60, "weekend"),
        ),
        holidays=holidays,
        otherwise="closed",
    )


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon", {0}),
        ("sun", {6}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        ("mon-wed,sat", {0, 1, 2, 5}),
        ("fri-mon", {4, 5, 6, 0}),
        ("Sat, SUN", {5, 6}),
        ("mon-sun", set(range(7))),
        ("tue-tue", {1}),
    ],
)
def test_days_parse(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", "monday", "mon-", "mon-tue-wed", "mon,,fri", "1-5", "-fri"])
def test_bad_days_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a list of days like 'mon-fri'"):
        parse_days(text)


def test_every_day_set_formats_to_text_that_parses_back() -> None:
    for bits in range(1, 128):
        days = frozenset(d for d in range(7) if bits >> d & 1)
        assert parse_days(format_days(days)) == days
    assert format_days(frozenset({0, 1, 2, 3, 4, 6})) == "mon-fri,sun"
    assert format_days(frozenset({2})) == "wed"


@pytest.mark.parametrize(
    ("text", "minutes"), [("00:00", 0), ("09:00", 540), ("17:30", 1050), ("23:59", 1439)]
)
def test_clock_times(text: str, minutes: int) -> None:
    assert parse_clock(text) == minutes
    assert format_clock(minutes) == text


def test_24_00_is_only_an_end() -> None:
    assert parse_clock("24:00", end=True) == 1440
    with pytest.raises(ValueError, match="'24:00' is not a time HH:MM"):
        parse_clock("24:00")


@pytest.mark.parametrize("text", ["25:00", "9:00", "09:60", "24:01", "0900", "09:00 ", "ab:cd"])
def test_bad_clock_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time HH:MM"):
        parse_clock(text, end=True)


def test_holiday_dates() -> None:
    assert parse_holiday_date("2026-12-25") == (2026, 12, 25)
    assert parse_holiday_date("12-25") == (None, 12, 25)
    assert parse_holiday_date("02-29") == (None, 2, 29)  # yearly: leap years only


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2026-02-29", "'2026-02-29' is not a date of the calendar"),
        ("13-01", "'13-01' is not a date of the calendar"),
        ("12/25", "'12/25' is not a date YYYY-MM-DD or MM-DD"),
        ("1969-12-31", "'1969-12-31' is before 1970"),
        ("2026-1-5", "'2026-1-5' is not a date YYYY-MM-DD or MM-DD"),
    ],
)
def test_bad_holiday_dates_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_holiday_date(text)
    assert str(info.value) == error


@pytest.mark.parametrize("text", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_known_time_zones(text: str) -> None:
    assert parse_timezone(text) == text


@pytest.mark.parametrize(
    "text", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe", "zone.tab", "a\x00b"]
)
def test_unknown_time_zones_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a known time zone like 'Europe/Berlin'"):
        parse_timezone(text)


@pytest.mark.parametrize(
    ("local", "menu"),
    [
        ("2026-12-23 09:00", "main"),  # a Wednesday: opening minute is inside
        ("2026-12-23 08:59", "closed"),
        ("2026-12-23 17:29", "main"),
        ("2026-12-23 17:30", "closed"),  # the end minute is outside
        ("2026-12-26 11:00", "weekend"),  # Saturday
        ("2026-12-26 12:00", "closed"),
        ("2026-12-27 11:00", "closed"),  # Sunday: no rule
    ],
)
def test_first_matching_hours_rule_else_otherwise(local: str, menu: str) -> None:
    assert office().menu_at(at(local)) == menu


def test_holidays_come_before_hours_rules() -> None:
    schedule = office(Holiday(12, 25, 2026, "xmas"), Holiday(12, 24, None, "eve"))
    assert schedule.menu_at(at("2026-12-25 10:00")) == "xmas"  # a Friday
    assert schedule.menu_at(at("2026-12-25 00:00")) == "xmas"
    assert schedule.menu_at(at("2026-12-24 23:59")) == "eve"
    assert schedule.menu_at(at("2031-12-24 10:00")) == "eve"  # yearly
    assert schedule.menu_at(at("2027-12-25 10:00")) == "weekend"  # once only; a Saturday


def test_the_first_listed_holiday_wins() -> None:
    schedule = office(Holiday(12, 25, None, "yearly"), Holiday(12, 25, 2026, "once"))
    assert schedule.menu_at(at("2026-12-25 10:00")) == "yearly"


def test_local_time_follows_daylight_saving() -> None:
    # 09:30 in Berlin is 07:30 UTC in summer (CEST) and 08:30 UTC in winter (CET).
    utc = ZoneInfo("UTC")
    assert office().menu_at(at("2026-07-01 07:30", utc)) == "main"
    assert office().menu_at(at("2026-01-07 08:30", utc)) == "main"
    assert office().menu_at(at("2026-01-07 07:30", utc)) == "closed"


def test_a_night_rule_runs_past_midnight_from_the_day_it_starts() -> None:
    night = HoursRule(parse_days("fri"), 22 * 60, 6 * 60, "night")
    schedule = Schedule("s", "Europe/Berlin", (night,), (), "day")
    assert night.overnight
    assert schedule.menu_at(at("2026-12-18 22:00")) == "night"  # Friday evening
    assert schedule.menu_at(at("2026-12-19 05:59")) == "night"  # Saturday morning
    assert schedule.menu_at(at("2026-12-19 06:00")) == "day"
    assert schedule.menu_at(at("2026-12-19 22:30")) == "day"  # Saturday is not listed
    assert schedule.menu_at(at("2026-12-18 05:00")) == "day"  # Thursday night is not


def test_an_end_of_00_00_means_until_midnight() -> None:
    late = HoursRule(parse_days("mon"), 20 * 60, 0, "late")
    schedule = Schedule("s", "UTC", (late,), (), "day")
    assert schedule.menu_at(at("2026-12-21 23:59", ZoneInfo("UTC"))) == "late"
    assert schedule.menu_at(at("2026-12-22 00:00", ZoneInfo("UTC"))) == "day"
