"""Auto-attendant configuration: menus and schedules, parsed from a JSON-compatible dict.

The dict lives in the store as JSON and is edited from the web UI; ``parse_ivr`` checks
all of it against the extensions and mailboxes that exist, and ``IvrConfig.as_dict``
gives back the canonical form (defaults filled in), which parses to an equal config::

    {"menus": {"main": {
        "language": "en",                    # default "en"; put on every prompt played
        "greeting": ["welcome"],             # required, 1-32 items
        "timeout": 5,                        # seconds to wait for a digit, 1-60
        "retries": 3,                        # failures before on_exhausted, 1-10
        "invalid": ["invalid"],              # played for a wrong digit, 0-32 items
        "on_timeout": {"action": "repeat"},  # default repeat
        "on_exhausted": {"action": "hangup"},  # default hangup; never repeat
        "dial_by_extension": true,           # a digit without an option starts an extension
        "options": {"1": {"action": "transfer", "extension": "2000",
                          "voicemail_on_fail": true},
                    "2": {"action": "menu", "menu": "sales"},   # a menu or a schedule
                    "8": {"action": "voicemail", "mailbox": "2000"},
                    "9": {"action": "dial_by_extension"},
                    "*": {"action": "back"}, "0": {"action": "repeat"},
                    "#": {"action": "hangup"}}}},
     "schedules": {"office": {
        "timezone": "Europe/Berlin",
        "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:30", "menu": "main"}],
        "holidays": [{"date": "2026-12-25", "menu": "closed"}, {"date": "01-01", ...}],
        "otherwise": "closed"}}}

Prompt items are ``Prompt`` names, ``digits/<word>`` or ``custom:<name>`` (a recording
the installer uploaded; the media engine resolves it). Menu and schedule names share one
namespace, since an ``IvrTarget`` or a ``menu`` option may name either; a schedule's
rules name menus only. Menus may refer to each other in cycles. Day, time and date
forms, and how a schedule picks, are described in ``schedule``; ``hours`` and
``holidays`` may be left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeVar

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
from appliance.pbx.prompt_names import Prompt

T = TypeVar("T")
KEYS: Final = "1234567890*#"  # keypad order, used for the canonical form
MIN_TIMEOUT: Final = 1.0
MAX_TIMEOUT: Final = 60.0
MAX_RETRIES: Final = 10
MAX_MENUS: Final = 200
MAX_SCHEDULES: Final = 50
MAX_RULES: Final = 50
MAX_HOLIDAYS: Final = 400
MAX_ITEMS: Final = 32
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
_DIGITS_WORD: Final = re.compile(r"digits/[a-z0-9-]{1,32}")
_CUSTOM: Final = re.compile(r"custom:[A-Za-z0-9_-]{1,64}")
_PROMPTS: Final = frozenset(p.value for p in Prompt)


class IvrError(ValueError):
    """An unusable IVR configuration; the message starts with the place:
    ``menus.main.options.2: menu 'sales' does not exist``."""


class Action(Enum):
    TRANSFER = "transfer"  # ring an extension
    MENU = "menu"  # go to another menu (or the one a schedule picks)
    BACK = "back"  # the menu we came from; at the top, repeat
    REPEAT = "repeat"  # play the greeting again
    VOICEMAIL = "voicemail"  # leave a message in a mailbox
    DIAL_BY_EXTENSION = "dial_by_extension"  # ask for an extension number
    HANGUP = "hangup"  # say goodbye and hang up


_OPTION_FIELDS: Final[dict[Action, frozenset[str]]] = {
    Action.TRANSFER: frozenset({"extension", "voicemail_on_fail"}),
    Action.MENU: frozenset({"menu"}),
    Action.VOICEMAIL: frozenset({"mailbox"}),
    Action.BACK: frozenset(),
    Action.REPEAT: frozenset(),
    Action.DIAL_BY_EXTENSION: frozenset(),
    Action.HANGUP: frozenset(),
}
_TARGET_FIELD: Final[dict[Action, str]] = {
    Action.TRANSFER: "extension",
    Action.MENU: "menu",
    Action.VOICEMAIL: "mailbox",
}
_MENU_FIELDS: Final = frozenset(
    {
        "language",
        "greeting",
        "timeout",
        "retries",
        "invalid",
        "on_timeout",
        "on_exhausted",
        "dial_by_extension",
        "options",
    }
)


@dataclass(frozen=True, slots=True)
class MenuOption:
    """What a key (or a timeout, or running out of retries) does."""

    action: Action
    target: str = ""  # TRANSFER: extension; MENU: menu or schedule; VOICEMAIL: mailbox
    voicemail_on_fail: bool = False  # TRANSFER: no answer or busy -> that mailbox

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"action": self.action.value}
        if self.action in _TARGET_FIELD:
            out[_TARGET_FIELD[self.action]] = self.target
        if self.voicemail_on_fail:
            out["voicemail_on_fail"] = True
        return out


REPEAT: Final = MenuOption(Action.REPEAT)
HANGUP: Final = MenuOption(Action.HANGUP)


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    greeting: tuple[str, ...]
    language: str = "en"
    timeout: float = 5.0
    retries: int = 3
    invalid: tuple[str, ...] = (Prompt.INVALID.value,)
    on_timeout: MenuOption = REPEAT
    on_exhausted: MenuOption = HANGUP
    dial_by_extension: bool = False
    options: tuple[tuple[str, MenuOption], ...] = ()  # in keypad order

    def option(self, key: str) -> MenuOption | None:
        for k, option in self.options:
            if k == key:
                return option
        return None

    def as_dict(self) -> dict[str, object]:
        return {
            "language": self.language,
            "greeting": list(self.greeting),
            "timeout": self.timeout,
            "retries": self.retries,
            "invalid": list(self.invalid),
            "on_timeout": self.on_timeout.as_dict(),
            "on_exhausted": self.on_exhausted.as_dict(),
            "dial_by_extension": self.dial_by_extension,
            "options": {k: o.as_dict() for k, o in self.options},
        }


@dataclass(frozen=True, slots=True)
class IvrConfig:
    """All menus and schedules. Treat the dicts as read-only."""

    menus: dict[str, Menu] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.menus or name in self.schedules

    def names(self) -> Iterator[str]:
        """What an ``IvrTarget`` may name."""
        yield from self.menus
        yield from self.schedules

    def resolve(self, name: str, unix_time: float) -> Menu:
        """The menu ``name`` is, or the one schedule ``name`` picks at ``unix_time``;
        KeyError for an unknown name."""
        if name in self.menus:
            return self.menus[name]
        schedule = self.schedules[name]
        return self.menus[schedule.menu_at(unix_time)]

    def as_dict(self) -> dict[str, object]:
        return {
            "menus": {name: m.as_dict() for name, m in self.menus.items()},
            "schedules": {name: _schedule_dict(s) for name, s in self.schedules.items()},
        }


def _schedule_dict(schedule: Schedule) -> dict[str, object]:
    return {
        "timezone": schedule.timezone,
        "hours": [
            {
                "days": format_days(r.days),
                "from": format_clock(r.start),
                "to": format_clock(r.end),
                "menu": r.menu,
            }
            for r in schedule.hours
        ],
        "holidays": [{"date": h.date_text, "menu": h.menu} for h in schedule.holidays],
        "otherwise": schedule.otherwise,
    }


# -- parsing ---------------------------------------------------------------------------


def parse_ivr(data: object, extensions: Collection[str], mailboxes: Collection[str]) -> IvrConfig:
    """Check and build the configuration; IvrError names the first problem's place."""
    top = _table(data, "ivr")
    for key in top:
        if key not in ("menus", "schedules"):
            raise IvrError(f"{key[:32]}: unknown section; expected menus, schedules")
    raw_menus = _table(top.get("menus", {}), "menus")
    raw_schedules = _table(top.get("schedules", {}), "schedules")
    if len(raw_menus) > MAX_MENUS:
        raise IvrError(f"menus: {len(raw_menus)} menus, at most {MAX_MENUS}")
    if len(raw_schedules) > MAX_SCHEDULES:
        raise IvrError(f"schedules: {len(raw_schedules)} schedules, at most {MAX_SCHEDULES}")
    for section, names in (("menus", raw_menus), ("schedules", raw_schedules)):
        for name in names:
            if not _NAME.fullmatch(name):
                raise IvrError(
                    f"{section}: {_show(name)} is not a name (letters, digits, '-', '_', up to 32)"
                )
    for name in raw_schedules:
        if name in raw_menus:
            raise IvrError(f"schedules.{name}: the name is also a menu's")
    refs = _Refs(frozenset(raw_menus), frozenset(raw_schedules), extensions, mailboxes)
    menus = {name: _parse_menu(name, raw, refs) for name, raw in raw_menus.items()}
    schedules = {name: _parse_schedule(name, raw, refs) for name, raw in raw_schedules.items()}
    return IvrConfig(menus, schedules)


@dataclass(frozen=True, slots=True)
class _Refs:
    """What names in the configuration may refer to."""

    menus: frozenset[str]
    schedules: frozenset[str]
    extensions: Collection[str]
    mailboxes: Collection[str]


def _parse_menu(name: str, raw_value: object, refs: _Refs) -> Menu:
    where = f"menus.{name}"
    raw = _table(raw_value, where)
    _no_unknown(raw, _MENU_FIELDS, where)
    if "greeting" not in raw:
        raise IvrError(f"{where}.greeting: missing")
    greeting = _items(raw["greeting"], f"{where}.greeting")
    if not greeting:
        raise IvrError(f"{where}.greeting: needs at least one prompt")
    language = _get(raw, "language", str, where, "en")
    if not _LANGUAGE.fullmatch(language):
        raise IvrError(f"{where}.language: {_show(language)} is not a language code like 'en'")
    timeout = _number(raw.get("timeout", 5.0), f"{where}.timeout")
    if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise IvrError(
            f"{where}.timeout: {timeout:g} is out of range {MIN_TIMEOUT:g}-{MAX_TIMEOUT:g} seconds"
        )
    retries = _get(raw, "retries", int, where, 3)
    if not 1 <= retries <= MAX_RETRIES:
        raise IvrError(f"{where}.retries: {_show(retries)} is out of range 1-{MAX_RETRIES}")
    invalid = _items(raw.get("invalid", [Prompt.INVALID.value]), f"{where}.invalid")
    on_timeout = REPEAT
    if "on_timeout" in raw:
        on_timeout = _parse_option(raw["on_timeout"], f"{where}.on_timeout", refs)
    on_exhausted = HANGUP
    if "on_exhausted" in raw:
        on_exhausted = _parse_option(raw["on_exhausted"], f"{where}.on_exhausted", refs)
        if on_exhausted.action is Action.REPEAT:
            raise IvrError(f"{where}.on_exhausted: 'repeat' would never end the call")
    raw_options = _table(raw.get("options", {}), f"{where}.options")
    for key in raw_options:
        if len(key) != 1 or key not in KEYS:
            raise IvrError(f"{where}.options.{key[:8]}: not a key 0-9, * or #")
    options = tuple(
        (key, _parse_option(raw_options[key], f"{where}.options.{key}", refs))
        for key in KEYS
        if key in raw_options
    )
    return Menu(
        name=name,
        greeting=greeting,
        language=language,
        timeout=timeout,
        retries=retries,
        invalid=invalid,
        on_timeout=on_timeout,
        on_exhausted=on_exhausted,
        dial_by_extension=_get(raw, "dial_by_extension", bool, where, False),
        options=options,
    )


def _parse_option(raw_value: object, where: str, refs: _Refs) -> MenuOption:
    raw = _table(raw_value, where)
    kind = raw.get("action")
    actions = {a.value: a for a in Action}
    if not isinstance(kind, str) or kind not in actions:
        raise IvrError(f"{where}.action: {_show(kind)} is not one of {', '.join(actions)}")
    action = actions[kind]
    _no_unknown(raw, _OPTION_FIELDS[action] | {"action"}, where)
    if action is Action.TRANSFER:
        extension = _get(raw, "extension", str, where)
        if extension not in refs.extensions:
            raise IvrError(f"{where}: extension {_show(extension)} does not exist")
        on_fail = _get(raw, "voicemail_on_fail", bool, where, False)
        if on_fail and extension not in refs.mailboxes:
            raise IvrError(
                f"{where}.voicemail_on_fail: extension {_show(extension)} has no mailbox"
            )
        return MenuOption(action, extension, voicemail_on_fail=on_fail)
    if action is Action.MENU:
        menu = _get(raw, "menu", str, where)
        if menu not in refs.menus and menu not in refs.schedules:
            raise IvrError(f"{where}: menu {_show(menu)} does not exist")
        return MenuOption(action, menu)
    if action is Action.VOICEMAIL:
        mailbox = _get(raw, "mailbox", str, where)
        if mailbox not in refs.mailboxes:
            raise IvrError(f"{where}: mailbox {_show(mailbox)} does not exist")
        return MenuOption(action, mailbox)
    return MenuOption(action)


def _parse_schedule(name: str, raw_value: object, refs: _Refs) -> Schedule:
    where = f"schedules.{name}"
    raw = _table(raw_value, where)
    _no_unknown(raw, frozenset({"timezone", "hours", "holidays", "otherwise"}), where)
    timezone = _text(raw, "timezone", parse_timezone, where)
    raw_hours = _list(raw.get("hours", []), f"{where}.hours", MAX_RULES)
    hours = tuple(
        _parse_rule(item, f"{where}.hours[{i}]", refs) for i, item in enumerate(raw_hours)
    )
    raw_holidays = _list(raw.get("holidays", []), f"{where}.holidays", MAX_HOLIDAYS)
    holidays = tuple(
        _parse_holiday(item, f"{where}.holidays[{i}]", refs) for i, item in enumerate(raw_holidays)
    )
    otherwise = _menu_ref(raw, where, refs)
    return Schedule(name, timezone, hours, holidays, otherwise)


def _parse_rule(raw_value: object, where: str, refs: _Refs) -> HoursRule:
    raw = _table(raw_value, where)
    _no_unknown(raw, frozenset({"days", "from", "to", "menu"}), where)
    days = _text(raw, "days", parse_days, where)
    start = _text(raw, "from", parse_clock, where)
    end = _text(raw, "to", lambda text: parse_clock(text, end=True), where)
    if start == end:
        raise IvrError(f"{where}.to: the range is empty; use 00:00 to 24:00 for a whole day")
    return HoursRule(days, start, end, _menu_ref(raw, where, refs, key="menu"))


def _parse_holiday(raw_value: object, where: str, refs: _Refs) -> Holiday:
    raw = _table(raw_value, where)
    _no_unknown(raw, frozenset({"date", "menu"}), where)
    year, month, day = _text(raw, "date", parse_holiday_date, where)
    return Holiday(month, day, year, _menu_ref(raw, where, refs, key="menu"))


def _menu_ref(raw: Mapping[str, object], where: str, refs: _Refs, key: str = "otherwise") -> str:
    """A schedule's rules name menus, not other schedules, so resolving is one step."""
    menu = _get(raw, key, str, where)
    if menu not in refs.menus:
        if menu in refs.schedules:
            raise IvrError(f"{where}.{key}: {_show(menu)} is a schedule; name a menu")
        raise IvrError(f"{where}.{key}: menu {_show(menu)} does not exist")
    return menu


# -- field helpers ---------------------------------------------------------------------


def _table(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise IvrError(f"{where}: expected a table, got {type(value).__name__}")
    out: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise IvrError(f"{where}: key {_show(key)} is not a string")
        out[key] = item
    return out


def _list(value: object, where: str, limit: int) -> list[object]:
    if not isinstance(value, list | tuple):
        raise IvrError(f"{where}: expected a list, got {type(value).__name__}")
    if len(value) > limit:
        raise IvrError(f"{where}: {len(value)} entries, at most {limit}")
    return list(value)


def _no_unknown(raw: Mapping[str, object], known: frozenset[str], where: str) -> None:
    for key in raw:
        if key not in known:
            raise IvrError(f"{where}.{key[:32]}: unknown field")


_KIND_NAMES: Final[dict[type[object], str]] = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
}


def _get(
    raw: Mapping[str, object], key: str, kind: type[T], where: str, default: T | None = None
) -> T:
    if key not in raw:
        if default is None:
            raise IvrError(f"{where}.{key}: missing")
        return default
    value = raw[key]
    # bool is an int in Python; a JSON `true` is never a retry count.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise IvrError(f"{where}.{key}: expected {_KIND_NAMES[kind]}, got {_show(value)}")
    return value


def _show(value: object) -> str:
    """A short rendering of a bad value for a message (the input may be hostile)."""
    if isinstance(value, Mapping | list | tuple):
        return f"a {type(value).__name__}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a very large number"  # str() of a huge int raises past 4300 digits
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IvrError(f"{where}: expected a number of seconds, got {_show(value)}")
    try:
        return float(value)
    except OverflowError:  # an int past float range: certainly out of any timeout range
        return float("inf")


def _text(raw: Mapping[str, object], key: str, parse: Callable[[str], T], where: str) -> T:
    text = _get(raw, key, str, where)
    try:
        return parse(text)
    except ValueError as exc:
        raise IvrError(f"{where}.{key}: {exc}") from None


def _items(value: object, where: str) -> tuple[str, ...]:
    items = _list(value, where, MAX_ITEMS)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not (
            item in _PROMPTS or _DIGITS_WORD.fullmatch(item) or _CUSTOM.fullmatch(item)
        ):
            raise IvrError(
                f"{where}[{i}]: {_show(item)} is not a prompt name, "
                "'digits/<word>' or 'custom:<name>'"
            )
    return tuple(str(item) for item in items)


DEMO_IVR: Final[dict[str, object]] = {
    "menus": {
        "main": {
            "language": "en",
            "greeting": [Prompt.WELCOME.value],
            "timeout": 5,
            "retries": 3,
            "dial_by_extension": True,
            "options": {
                "1": {"action": "transfer", "extension": "2000", "voicemail_on_fail": True},
                "2": {"action": "transfer", "extension": "2001"},
                "9": {"action": "voicemail", "mailbox": "2000"},
                "0": {"action": "repeat"},
            },
        }
    },
    "schedules": {},
}
