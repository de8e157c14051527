"""Time-of-day schedules: which auto-attendant menu answers at a given moment.

A schedule holds opening-hours rules and holidays in one IANA time zone. At a given
Unix time it picks, in this order: the first holiday whose date is today (local), else
the first hours rule that covers the local time, else ``otherwise``.

Text forms, as installers type them:

- days: ``mon``, ``mon-fri``, ``mon,wed,fri``, ``mon-wed,sat``; a range runs forward
  through the week and may wrap (``fri-mon`` is Friday to Monday). Case does not matter.
- times: ``HH:MM``, 00:00-23:59; ``24:00`` is allowed as an end (end of the day).
- a range whose end is not after its start crosses midnight: ``22:00``-``06:00`` on
  ``fri`` covers Friday 22:00 to Saturday 06:00. The night belongs to the day it starts.
- holidays: ``2026-12-25`` (once) or ``12-25`` (every year; ``02-29`` only in leap years).
  A holiday covers the whole local day, including any night rule spilling into it.

Local times come from ``zoneinfo``, so daylight-saving changes are followed; a wall time
skipped or repeated by a change is simply not, or twice, reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
MINUTES_PER_DAY: Final = 24 * 60
_CLOCK: Final = re.compile(r"([0-9]{2}):([0-9]{2})")
_ONCE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_YEARLY: Final = re.compile(r"([0-9]{2})-([0-9]{2})")
_ZONE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
_MAX_ZONE_LENGTH: Final = 64
_LEAP_YEAR: Final = 2000  # any leap year, to check that a yearly month-day exists


@dataclass(frozen=True, slots=True)
class HoursRule:
    """Open on ``days`` from ``start`` to ``end`` (minutes after local midnight)."""

    days: frozenset[int]  # 0 = Monday, as date.weekday()
    start: int  # 0..1439
    end: int  # 1..1440; not after start: runs on past midnight into the next day
    menu: str

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def covers(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        today = local.weekday()
        if not self.overnight:
            return today in self.days and self.start <= minute < self.end
        yesterday = (today - 1) % 7
        return (today in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )


@dataclass(frozen=True, slots=True)
class Holiday:
    month: int
    day: int
    year: int | None  # None: every year
    menu: str

    def falls_on(self, day: date) -> bool:
        if self.year is not None and self.year != day.year:
            return False
        return (self.month, self.day) == (day.month, day.day)

    @property
    def date_text(self) -> str:
        month_day = f"{self.month:02d}-{self.day:02d}"
        return month_day if self.year is None else f"{self.year:04d}-{month_day}"


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    timezone: str  # IANA key, checked by parse_timezone
    hours: tuple[HoursRule, ...]
    holidays: tuple[Holiday, ...]
    otherwise: str

    def menu_at(self, unix_time: float) -> str:
        """The name of the menu that answers at ``unix_time``."""
        local = datetime.fromtimestamp(unix_time, tz=ZoneInfo(self.timezone))
        today = local.date()
        for holiday in self.holidays:
            if holiday.falls_on(today):
                return holiday.menu
        for rule in self.hours:
            if rule.covers(local):
                return rule.menu
        return self.otherwise


# -- text forms: each parser raises ValueError naming only the value; the caller adds
# the place in the configuration.


def parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.lower().split(","):
        first, sep, last = part.strip().partition("-")
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise ValueError(f"{text!r} is not a list of days like 'mon-fri' or 'mon,wed,fri'")
        start = WEEKDAYS.index(first)
        stop = WEEKDAYS.index(last) if sep else start
        span = (stop - start) % 7
        days.update((start + i) % 7 for i in range(span + 1))
    return frozenset(days)


def format_days(days: frozenset[int]) -> str:
    """The shortest canonical text, in week order: {0,1,2,3,4,6} -> 'mon-fri,sun'."""
    parts: list[str] = []
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = WEEKDAYS[ordered[i]], WEEKDAYS[ordered[j]]
        parts.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return ",".join(parts)


def parse_clock(text: str, *, end: bool = False) -> int:
    """Minutes after midnight; ``24:00`` only as an ``end``."""
    match = _CLOCK.fullmatch(text)
    if match is not None:
        hours, minutes = int(match[1]), int(match[2])
        if minutes < 60 and (hours < 24 or (end and hours == 24 and minutes == 0)):
            return hours * 60 + minutes
    raise ValueError(f"{text!r} is not a time HH:MM")


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_holiday_date(text: str) -> tuple[int | None, int, int]:
    """(year or None for every year, month, day)."""
    once = _ONCE.fullmatch(text)
    yearly = _YEARLY.fullmatch(text)
    if once is not None:
        year: int | None = int(once[1])
        month, day = int(once[2]), int(once[3])
    elif yearly is not None:
        year, month, day = None, int(yearly[1]), int(yearly[2])
    else:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD or MM-DD")
    try:
        date(year or _LEAP_YEAR, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a date of the calendar") from None
    if year is not None and year < 1970:
        raise ValueError(f"{text!r} is before 1970")
    return year, month, day


def parse_timezone(text: str) -> str:
    if len(text) <= _MAX_ZONE_LENGTH and _ZONE.fullmatch(text):
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # not a zone file (or a directory): same answer as a malformed key
        else:
            return text
    raise ValueError(f"{text!r} is not a known time zone like 'Europe/Berlin'")
