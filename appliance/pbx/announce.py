"""Numbers, digit strings, counts and dates as sequences of prompt names.

Pure: values in, names out (``digits/<word>`` names and ``Prompt`` values, which the
prompt catalogue turns into files). Only words the Debian-packaged Asterisk sound
set has in each language's ``digits/`` folder are used, so English, Spanish and
French each follow their own grammar as far as those recordings allow:

- English: "twenty three", "three hundred", no "and"; 12-hour times with
  "oh five" minutes, "o'clock" and a.m./p.m.
- Spanish: "veintitrés" (21-29 are single files), "treinta y uno", "cien" but
  "ciento uno" (``100-and``), "doscientos"..., "mil" without "un", "un millón" /
  "dos millones", and "un" (``1M``) before a noun or "mil"; 24-hour times.
- French: "vingt et un" (``et``), "soixante-douze", "quatre-vingt-onze", "cent",
  "mille" without "un"; 24-hour times with "heure".

An unknown language is spoken with the English rules.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.pbx.prompt_names import Prompt

MAX_NUMBER: Final = 999_999_999


class Grammar(Enum):
    EN = "en"
    ES = "es"
    FR = "fr"


def grammar_for(language: str) -> Grammar:
    """The rules for a language code: "es_MX" speaks Spanish, "de" English."""
    base = language.split("_", 1)[0].split("-", 1)[0].lower()
    for grammar in Grammar:
        if grammar.value == base:
            return grammar
    return Grammar.EN


def _d(word: int | str) -> str:
    return f"digits/{word}"


# --- numbers -----------------------------------------------------------------------


def say_number(n: int, language: str) -> list[str]:
    """``n`` in words, -999,999,999 to 999,999,999."""
    if abs(n) > MAX_NUMBER:
        raise ValueError(f"{n} is outside +/-{MAX_NUMBER}")
    if n < 0:
        return [_d("minus"), *say_number(-n, language)]
    grammar = grammar_for(language)
    if grammar is Grammar.ES:
        return _es_number(n, apocope=False)
    if grammar is Grammar.FR:
        return _fr_number(n)
    return _en_number(n)


def _en_number(n: int) -> list[str]:
    if n == 0:
        return [_d(0)]
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    out: list[str] = []
    if millions:
        out += [*_en_below_thousand(millions), _d("million")]
    if thousands:
        out += [*_en_below_thousand(thousands), _d("thousand")]
    if units:
        out += _en_below_thousand(units)
    return out


def _en_below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [_d(hundreds), _d("hundred")] if hundreds else []
    if rest < 20:
        return out + ([_d(rest)] if rest else [])
    tens, ones = divmod(rest, 10)
    return out + [_d(tens * 10)] + ([_d(ones)] if ones else [])


def _es_number(n: int, apocope: bool) -> list[str]:
    """``apocope``: "un" rather than "uno" because a noun follows ("un mensaje")."""
    if n == 0:
        return [_d(0)]
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    out: list[str] = []
    if millions == 1:
        out += [_d("1M"), _d("million")]
    elif millions:
        out += [*_es_below_thousand(millions, apocope=True), _d("millions")]
    if thousands == 1:
        out.append(_d("thousand"))  # "mil", never "un mil"
    elif thousands:
        out += [*_es_below_thousand(thousands, apocope=True), _d("thousand")]
    if units:
        out += _es_below_thousand(units, apocope)
    return out


def _es_below_thousand(n: int, apocope: bool) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out: list[str] = []
    if hundreds == 1:
        out.append(_d("100-and") if rest else _d("hundred"))  # "ciento uno", "cien"
    elif hundreds:
        out.append(_d(hundreds * 100))  # 200..900 are single files
    if rest:
        out += _es_below_hundred(rest, apocope)
    return out


def _es_below_hundred(n: int, apocope: bool) -> list[str]:
    if n == 1:
        return [_d("1M" if apocope else 1)]
    if n == 21 and apocope:
        return [_d("20-and"), _d("1M")]  # "veintiún", as "veinti" + "un"
    if n < 30:
        return [_d(n)]
    tens, ones = divmod(n, 10)
    if not ones:
        return [_d(n)]
    return [_d(tens * 10), _d("and"), *_es_below_hundred(ones, apocope)]


def _fr_number(n: int) -> list[str]:
    if n == 0:
        return [_d(0)]
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    out: list[str] = []
    if millions:
        out += [*_fr_below_thousand(millions), _d("million")]
    if thousands == 1:
        out.append(_d("thousand"))  # "mille", never "un mille"
    elif thousands:
        out += [*_fr_below_thousand(thousands), _d("thousand")]
    if units:
        out += _fr_below_thousand(units)
    return out


def _fr_below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out: list[str] = []
    if hundreds == 1:
        out.append(_d("hundred"))  # "cent", never "un cent"
    elif hundreds:
        out += [_d(hundreds), _d("hundred")]
    if rest:
        out += _fr_below_hundred(rest)
    return out


def _fr_below_hundred(n: int) -> list[str]:
    if n <= 20 or n in (70, 80, 90):
        return [_d(n)]
    if n < 70:
        tens, ones = divmod(n, 10)
        if ones == 1:
            return [_d(tens * 10), _d("et"), _d(1)]  # "vingt et un"
        return [_d(tens * 10)] + ([_d(ones)] if ones else [])
    if n < 80:
        # Seventy is "sixty-ten": 71 "soixante et onze", 72 "soixante-douze".
        return [_d(60), _d("et"), _d(11)] if n == 71 else [_d(60), _d(n - 60)]
    return [_d(80), _d(n - 80)]  # 81 "quatre-vingt-un", 91 "quatre-vingt-onze"


# --- digits and counts -------------------------------------------------------------

_KEY_NAMES: Final[dict[str, str]] = {
    **{str(digit): _d(digit) for digit in range(10)},
    "*": _d("star"),
    "#": _d("pound"),
}
# Punctuation of a written phone number ("+1 (555) 010-2000") is not spoken.
_SILENT: Final = frozenset("+-() .")


def say_digits(text: str) -> list[str]:
    """Each key of a digit string: "2001" is "two zero zero one"."""
    out: list[str] = []
    for char in text:
        if char in _SILENT:
            continue
        if char not in _KEY_NAMES:
            raise ValueError(f"cannot say {char!r} in {text!r}: only 0-9, * and #")
        out.append(_KEY_NAMES[char])
    return out


def say_count(n: int, singular: Prompt, plural: Prompt, language: str) -> list[str]:
    """ "no messages", "one message", "three messages": the number and the noun."""
    if n < 0:
        raise ValueError(f"a count cannot be negative: {n}")
    if n == 0:
        return [Prompt.NO.value, plural.value]
    if grammar_for(language) is Grammar.ES:
        # Nouns follow the number: "un mensaje", "veintiún mensajes".
        words = _es_number(n, apocope=True)
    else:
        words = say_number(n, language)
    return [*words, (singular if n == 1 else plural).value]


# --- dates and times ---------------------------------------------------------------


def say_datetime(
    unix_time: float, timezone: str, language: str, now: float | None = None
) -> list[str]:
    """ "received today at three oh five p-m", for a message's envelope.

    The day is "today" or "yesterday" when ``now`` is given and the local date says
    so, otherwise the weekday, month and day (and the year, if not this year's).
    An unknown ``timezone`` is taken as UTC.
    """
    zone = _zone(timezone)
    when = dt.datetime.fromtimestamp(unix_time, zone)
    today = dt.datetime.fromtimestamp(now, zone).date() if now is not None else None
    grammar = grammar_for(language)
    return [Prompt.RECEIVED.value, *_say_day(when, today, grammar), *_say_time(when, grammar)]


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a malformed key
        return dt.UTC


def _say_day(when: dt.datetime, today: dt.date | None, grammar: Grammar) -> list[str]:
    date = when.date()
    if today is not None and date == today:
        return [_d("today")]
    if today is not None and date == today - dt.timedelta(days=1):
        return [_d("yesterday")]
    weekday = _d(f"day-{(date.weekday() + 1) % 7}")  # the set's day-0 is Sunday
    month = _d(f"mon-{date.month - 1}")
    other_year = today is not None and date.year != today.year
    if grammar is Grammar.EN:
        out = [weekday, month, *_en_ordinal(date.day)]
        return out + (_en_number(date.year) if other_year else [])
    day = [_d("h-1")] if date.day == 1 else say_number(date.day, grammar.value)
    if grammar is Grammar.ES:
        # "el lunes cinco de marzo (de 2024)"; the first is "primero".
        out = [_d("es-el"), weekday, *day, _d("es-de"), month]
        return out + ([_d("es-de"), *_es_number(date.year, False)] if other_year else [])
    # "lundi cinq mars (2024)"; the first is "premier".
    return [weekday, *day, month] + (_fr_number(date.year) if other_year else [])


def _en_ordinal(day: int) -> list[str]:
    if day <= 20 or day % 10 == 0:
        return [_d(f"h-{day}")]
    tens, ones = divmod(day, 10)
    return [_d(tens * 10), _d(f"h-{ones}")]  # "twenty first"


def _say_time(when: dt.datetime, grammar: Grammar) -> list[str]:
    hour, minute = when.hour, when.minute
    if grammar is Grammar.EN:
        out = [_d("at"), _d(hour % 12 or 12)]
        if minute == 0:
            out.append(_d("oclock"))
        elif minute < 10:
            out += [_d("oh"), _d(minute)]  # "three oh five"
        else:
            out += _en_number(minute)
        return out + [_d("a-m" if hour < 12 else "p-m")]
    if grammar is Grammar.ES:
        # "a las catorce y cinco", "a la una en punto". The set's "at" says "a las";
        # "at_s" is undocumented but its recording ends without the /s/, so it is
        # taken as the singular "a la" that one o'clock needs (with "una", 1F).
        out = [_d("at_s"), _d("1F")] if hour == 1 else [_d("at"), *_es_number(hour, False)]
        if minute == 0:
            return out + [_d("oclock")]
        return out + [_d("and"), *_es_number(minute, False)]
    # "à quatorze heure trente": the set has "heure" but no plural "heures".
    out = [_d("at"), *_fr_number(hour), _d("oclock")]
    return out + (_fr_number(minute) if minute else [])
