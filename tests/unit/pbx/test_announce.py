"""announce.py: exact words per language, and every word has a recording."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.pbx.announce import (
    Grammar,
    grammar_for,
    say_count,
    say_datetime,
    say_digits,
    say_number,
)
from appliance.pbx.prompt_names import Prompt

pytestmark = pytest.mark.timeout(30)

SOUNDS = Path("/usr/share/asterisk/sounds")
ZONE = "America/New_York"


def words(*items: int | str) -> list[str]:
    return [f"digits/{item}" for item in items]


NUMBERS: dict[str, dict[int, list[str]]] = {
    "en": {
        0: words(0),
        7: words(7),
        13: words(13),
        21: words(20, 1),
        40: words(40),
        99: words(90, 9),
        100: words(1, "hundred"),
        101: words(1, "hundred", 1),
        115: words(1, "hundred", 15),
        999: words(9, "hundred", 90, 9),
        1000: words(1, "thousand"),
        2001: words(2, "thousand", 1),
        1_000_000: words(1, "million"),
        12_345_678: words(12, "million", 3, "hundred", 40, 5, "thousand", 6, "hundred", 70, 8),
    },
    "es": {
        0: words(0),
        7: words(7),
        13: words(13),
        21: words(21),
        40: words(40),
        99: words(90, "and", 9),
        100: words("hundred"),
        101: words("100-and", 1),
        115: words("100-and", 15),
        999: words(900, 90, "and", 9),
        1000: words("thousand"),
        2001: words(2, "thousand", 1),
        1_000_000: words("1M", "million"),
        12_345_678: words(12, "millions", 300, 40, "and", 5, "thousand", 600, 70, "and", 8),
    },
    "fr": {
        0: words(0),
        7: words(7),
        13: words(13),
        21: words(20, "et", 1),
        40: words(40),
        99: words(80, 19),
        100: words("hundred"),
        101: words("hundred", 1),
        115: words("hundred", 15),
        999: words(9, "hundred", 80, 19),
        1000: words("thousand"),
        2001: words(2, "thousand", 1),
        1_000_000: words(1, "million"),
        12_345_678: words(12, "million", 3, "hundred", 40, 5, "thousand", 6, "hundred", 60, 18),
    },
}


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [(lang, n, seq) for lang, table in NUMBERS.items() for n, seq in table.items()],
)
def test_numbers(language: str, n: int, expected: list[str]) -> None:
    assert say_number(n, language) == expected


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("es", 31, words(30, "and", 1)),
        ("es", 21_000, words("20-and", "1M", "thousand")),  # veintiún mil
        ("es", 31_000, words(30, "and", "1M", "thousand")),  # treinta y un mil
        ("es", 101_000, words("100-and", "1M", "thousand")),
        ("es", 2_000_000, words(2, "millions")),
        ("fr", 71, words(60, "et", 11)),
        ("fr", 70, words(70)),
        ("fr", 72, words(60, 12)),
        ("fr", 80, words(80)),
        ("fr", 81, words(80, 1)),
        ("fr", 90, words(90)),
        ("fr", 91, words(80, 11)),
        ("fr", 61, words(60, "et", 1)),
        ("fr", 200, words(2, "hundred")),
        ("en", 1_001_001, words(1, "million", 1, "thousand", 1)),
        ("en", -5, words("minus", 5)),
        ("fr", -21, words("minus", 20, "et", 1)),
        ("de", 21, words(20, 1)),  # unknown languages speak English
        ("es_MX", 21, words(21)),
    ],
)
def test_language_rules(language: str, n: int, expected: list[str]) -> None:
    assert say_number(n, language) == expected


def test_numbers_out_of_range_are_refused() -> None:
    assert say_number(999_999_999, "en")[:2] == words(9, "hundred")
    with pytest.raises(ValueError, match="outside"):
        say_number(1_000_000_000, "en")


def test_grammar_for_language_codes() -> None:
    assert grammar_for("fr_CA") is Grammar.FR
    assert grammar_for("ES") is Grammar.ES
    assert grammar_for("pt-BR") is Grammar.EN


def test_digits() -> None:
    assert say_digits("2001") == words(2, 0, 0, 1)
    assert say_digits("*9#") == words("star", 9, "pound")
    assert say_digits("+1 (555) 010-2000") == say_digits("15550102000")
    assert say_digits("") == []
    with pytest.raises(ValueError, match="cannot say 'A'"):
        say_digits("12A")


def test_counts() -> None:
    msg, msgs = Prompt.MESSAGE, Prompt.MESSAGES
    assert say_count(0, msg, msgs, "en") == ["no", "messages"]
    assert say_count(1, msg, msgs, "en") == [*words(1), "message"]
    assert say_count(3, msg, msgs, "en") == [*words(3), "messages"]
    assert say_count(21, msg, msgs, "fr") == [*words(20, "et", 1), "messages"]
    assert say_count(1, msg, msgs, "es") == [*words("1M"), "message"]  # un mensaje
    assert say_count(21, msg, msgs, "es") == [*words("20-and", "1M"), "messages"]
    with pytest.raises(ValueError, match="negative"):
        say_count(-1, msg, msgs, "en")


# --- dates and times ---------------------------------------------------------------


def at(year: int, month: int, day: int, hour: int, minute: int, zone: str = ZONE) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


NOW = at(2024, 3, 15, 12, 0)  # a Friday


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(2024, 3, 15, 15, 5), words("today", "at", 3, "oh", 5, "p-m")),
        (at(2024, 3, 15, 0, 0), words("today", "at", 12, "oclock", "a-m")),
        (at(2024, 3, 14, 9, 30), words("yesterday", "at", 9, 30, "a-m")),
        (at(2024, 3, 14, 12, 0), words("yesterday", "at", 12, "oclock", "p-m")),
        # Tuesday March fifth
        (at(2024, 3, 5, 11, 59), words("day-2", "mon-2", "h-5", "at", 11, 50, 9, "a-m")),
        # Wednesday February twenty first
        (at(2024, 2, 21, 23, 45), words("day-3", "mon-1", 20, "h-1", "at", 11, 40, 5, "p-m")),
        # Sunday December thirty first two thousand twenty three
        (
            at(2023, 12, 31, 12, 30),
            words("day-0", "mon-11", 30, "h-1", 2, "thousand", 20, 3, "at", 12, 30, "p-m"),
        ),
    ],
)
def test_english_datetimes(when: float, expected: list[str]) -> None:
    assert say_datetime(when, ZONE, "en", now=NOW) == ["received", *expected]


def test_without_now_the_full_date_is_said() -> None:
    assert say_datetime(at(2024, 3, 15, 15, 5), ZONE, "en") == [
        "received",
        *words("day-5", "mon-2", "h-15", "at", 3, "oh", 5, "p-m"),
    ]


def test_the_day_is_the_local_one() -> None:
    # 02:30 UTC on the 16th is still the evening of the 15th in New York
    late = at(2024, 3, 16, 2, 30, zone="UTC")
    assert say_datetime(late, ZONE, "en", now=NOW)[1:3] == words("today", "at")
    assert say_datetime(late, "UTC", "en", now=NOW)[1] == "digits/day-6"


def test_an_unknown_timezone_is_utc() -> None:
    when = at(2024, 3, 10, 8, 0)
    assert say_datetime(when, "Mars/Olympus", "en", NOW) == say_datetime(when, "UTC", "en", NOW)
    assert say_datetime(when, "../../x", "en", NOW) == say_datetime(when, "UTC", "en", NOW)


@pytest.mark.parametrize(
    ("language", "when", "expected"),
    [
        ("es", at(2024, 3, 15, 14, 5), words("today", "at", 14, "and", 5)),
        ("es", at(2024, 3, 15, 14, 30), words("today", "at", 14, "and", 30)),
        ("es", at(2024, 3, 14, 1, 0), words("yesterday", "at_s", "1F", "oclock")),
        (
            "es",
            at(2024, 3, 1, 20, 0),
            words("es-el", "day-5", "h-1", "es-de", "mon-2", "at", 20, "oclock"),
        ),
        (
            "es",
            at(2023, 3, 5, 9, 15),
            words("es-el", "day-0", 5, "es-de", "mon-2", "es-de", 2, "thousand", 23)
            + words("at", 9, "and", 15),
        ),
        ("fr", at(2024, 3, 15, 14, 30), words("today", "at", 14, "oclock", 30)),
        ("fr", at(2024, 3, 14, 0, 0), words("yesterday", "at", 0, "oclock")),
        ("fr", at(2024, 3, 5, 21, 5), words("day-2", 5, "mon-2", "at", 20, "et", 1, "oclock", 5)),
        ("fr", at(2024, 3, 1, 8, 0), words("day-5", "h-1", "mon-2", "at", 8, "oclock")),
    ],
)
def test_spanish_and_french_datetimes_use_24_hours(
    language: str, when: float, expected: list[str]
) -> None:
    assert say_datetime(when, ZONE, language, now=NOW) == ["received", *expected]


# --- every word has a recording -----------------------------------------------------

LARGE = [
    10_000,
    21_000,
    31_000,
    71_000,
    99_999,
    101_000,
    200_000,
    999_999,
    1_000_000,
    1_001_001,
    2_000_000,
    21_000_000,
    71_071_071,
    12_345_678,
    987_654_321,
    999_999_999,
    -999_999_999,
]


def spoken(language: str) -> set[str]:
    names: set[str] = set()
    for n in [*range(2000), *LARGE]:
        names.update(say_number(n, language))
        names.update(say_count(n % 50, Prompt.MESSAGE, Prompt.MESSAGES, language))
    names.update(say_digits("0123456789*#"))
    now = at(2024, 12, 31, 23, 0)
    # every day of a year, each at a different time, covers days, months and minutes
    for day in range(367):
        when = at(2024, 1, 1, 0, 0) + day * 86400 + (day % 24) * 3600 + (day % 60) * 60
        names.update(say_datetime(when, ZONE, language, now=now))
    for hour in range(24):
        for minute in range(60):
            names.update(say_datetime(at(2023, 6, 1, hour, minute), ZONE, language, now=now))
    return {name for name in names if name.startswith("digits/")}


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_every_word_said_has_a_recording(language: str) -> None:
    if not (SOUNDS / language / "digits").is_dir():
        pytest.skip(f"no {language} sound set in {SOUNDS}")
    missing = sorted(n for n in spoken(language) if not (SOUNDS / language / f"{n}.wav").is_file())
    assert missing == []
