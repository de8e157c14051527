"""IVR configuration: parsing, defaults, checks with exact error places, the canonical
form and resolving names through schedules."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.pbx.ivr import (
    DEMO_IVR,
    Action,
    IvrConfig,
    IvrError,
    Menu,
    MenuOption,
    parse_ivr,
)
from appliance.pbx.ivr.schedule import Holiday, HoursRule

EXTENSIONS = frozenset({"2000", "2001", "2002"})
MAILBOXES = frozenset({"2000", "2001"})


def example() -> dict[str, object]:
    """The format as documented, with the menus it refers to."""
    return {
        "menus": {
            "main": {
                "language": "en",
                "greeting": ["welcome"],
                "timeout": 5,
                "retries": 3,
                "invalid": ["invalid"],
                "on_timeout": {"action": "repeat"},
                "on_exhausted": {"action": "hangup"},
                "dial_by_extension": True,
                "options": {
                    "1": {"action": "transfer", "extension": "2000"},
                    "2": {"action": "menu", "menu": "sales"},
                    "8": {"action": "voicemail", "mailbox": "2000"},
                    "9": {"action": "dial_by_extension"},
                    "*": {"action": "back"},
                    "0": {"action": "repeat"},
                    "#": {"action": "hangup"},
                },
            },
            "sales": {
                "language": "de",
                "greeting": ["custom:sales-intro", "digits/2", "please-hold"],
                "options": {
                    "1": {"action": "transfer", "extension": "2001", "voicemail_on_fail": True},
                    "*": {"action": "menu", "menu": "main"},
                },
            },
            "closed": {"greeting": ["custom:closed"], "on_timeout": {"action": "hangup"}},
        },
        "schedules": {
            "office": {
                "timezone": "Europe/Berlin",
                "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:30", "menu": "main"}],
                "holidays": [{"date": "2026-12-25", "menu": "closed"}],
                "otherwise": "closed",
            }
        },
    }


def parse(data: object) -> IvrConfig:
    return parse_ivr(data, EXTENSIONS, MAILBOXES)


def test_the_documented_example_parses() -> None:
    config = parse(example())
    main = config.menus["main"]
    assert main.name == "main"
    assert main.greeting == ("welcome",)
    assert (main.language, main.timeout, main.retries) == ("en", 5.0, 3)
    assert main.dial_by_extension
    assert main.option("1") == MenuOption(Action.TRANSFER, "2000")
    assert main.option("2") == MenuOption(Action.MENU, "sales")
    assert main.option("8") == MenuOption(Action.VOICEMAIL, "2000")
    assert main.option("#") == MenuOption(Action.HANGUP)
    assert main.option("5") is None
    assert [k for k, _ in main.options] == ["1", "2", "8", "9", "0", "*", "#"]  # keypad order
    sales = config.menus["sales"]
    assert sales.greeting == ("custom:sales-intro", "digits/2", "please-hold")
    assert sales.option("1") == MenuOption(Action.TRANSFER, "2001", voicemail_on_fail=True)
    office = config.schedules["office"]
    assert office.hours == (HoursRule(frozenset(range(5)), 540, 1050, "main"),)
    assert office.holidays == (Holiday(12, 25, 2026, "closed"),)
    assert office.otherwise == "closed"


def test_defaults() -> None:
    config = parse({"menus": {"m": {"greeting": ["welcome"]}}})
    assert config.menus["m"] == Menu(
        name="m",
        greeting=("welcome",),
        language="en",
        timeout=5.0,
        retries=3,
        invalid=("invalid",),
        on_timeout=MenuOption(Action.REPEAT),
        on_exhausted=MenuOption(Action.HANGUP),
        dial_by_extension=False,
        options=(),
    )
    assert config.schedules == {}
    assert parse({}) == IvrConfig()


def test_the_canonical_form_is_json_and_parses_to_the_same_config() -> None:
    config = parse(example())
    again = json.loads(json.dumps(config.as_dict()))
    assert parse(again) == config
    assert again["schedules"]["office"]["hours"][0] == {
        "days": "mon-fri",
        "from": "09:00",
        "to": "17:30",
        "menu": "main",
    }


def test_the_demo_is_valid_for_the_demo_extensions() -> None:
    config = parse_ivr(DEMO_IVR, {"2000", "2001"}, {"2000"})
    main = config.menus["main"]
    assert main.greeting == ("welcome",)
    assert main.dial_by_extension
    assert main.option("1") == MenuOption(Action.TRANSFER, "2000", voicemail_on_fail=True)
    assert main.option("2") == MenuOption(Action.TRANSFER, "2001")
    assert main.option("9") == MenuOption(Action.VOICEMAIL, "2000")
    assert main.option("0") == MenuOption(Action.REPEAT)


def test_menus_may_refer_to_each_other_in_cycles() -> None:
    config = parse(example())
    assert config.menus["main"].option("2") == MenuOption(Action.MENU, "sales")
    assert config.menus["sales"].option("*") == MenuOption(Action.MENU, "main")


def test_a_menu_option_may_name_a_schedule() -> None:
    data = example()
    data["menus"]["closed"]["options"] = {"1": {"action": "menu", "menu": "office"}}  # type: ignore[index]
    assert parse(data).menus["closed"].option("1") == MenuOption(Action.MENU, "office")


def test_resolve_picks_through_schedules_and_returns_plain_menus() -> None:
    config = parse(example())
    berlin = ZoneInfo("Europe/Berlin")
    wednesday_10 = datetime(2026, 12, 23, 10, 0, tzinfo=berlin).timestamp()
    wednesday_20 = datetime(2026, 12, 23, 20, 0, tzinfo=berlin).timestamp()
    christmas_10 = datetime(2026, 12, 25, 10, 0, tzinfo=berlin).timestamp()
    assert config.resolve("office", wednesday_10).name == "main"
    assert config.resolve("office", wednesday_20).name == "closed"
    assert config.resolve("office", christmas_10).name == "closed"
    assert config.resolve("sales", wednesday_20).name == "sales"
    assert "office" in config and "sales" in config and "nope" not in config
    assert sorted(config.names()) == ["closed", "main", "office", "sales"]
    with pytest.raises(KeyError):
        config.resolve("nope", wednesday_10)


Edit = Callable[[dict[str, object]], None]


def _set(path: str, value: object) -> Edit:
    """Set a dotted path in the example; a value of DELETE removes the key."""

    def edit(data: dict[str, object]) -> None:
        *parents, last = path.split("/")
        node: object = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
        if value is DELETE:
            del node[last]  # type: ignore[attr-defined]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value  # type: ignore[index]

    return edit


DELETE = object()
M = "menus/main"
H = "schedules/office/hours/0"


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            _set(f"{M}/options/2", {"action": "menu", "menu": "nowhere"}),
            "menus.main.options.2: menu 'nowhere' does not exist",
        ),
        (_set("menus/sales", DELETE), "menus.main.options.2: menu 'sales' does not exist"),
        (_set(f"{H}/from", "25:00"), "schedules.office.hours[0].from: '25:00' is not a time HH:MM"),
        (_set(f"{H}/to", "24:00"), None),
        (
            _set(f"{H}/to", "09:00"),
            "schedules.office.hours[0].to: the range is empty; use 00:00 to 24:00 for a whole day",
        ),
        (
            _set(f"{M}/options/1/extension", "2999"),
            "menus.main.options.1: extension '2999' does not exist",
        ),
        (
            _set(f"{M}/options/8/mailbox", "2002"),
            "menus.main.options.8: mailbox '2002' does not exist",
        ),
        (
            _set(
                f"{M}/options/1",
                {"action": "transfer", "extension": "2002", "voicemail_on_fail": True},
            ),
            "menus.main.options.1.voicemail_on_fail: extension '2002' has no mailbox",
        ),
        (
            _set(f"{M}/options/3", {"action": "fly"}),
            "menus.main.options.3.action: 'fly' is not one of transfer, menu, back, repeat, "
            "voicemail, dial_by_extension, hangup",
        ),
        (
            _set(f"{M}/options/3", {}),
            "menus.main.options.3.action: None is not one of transfer, "
            "menu, back, repeat, voicemail, dial_by_extension, hangup",
        ),
        (
            _set(f"{M}/options/A", {"action": "repeat"}),
            "menus.main.options.A: not a key 0-9, * or #",
        ),
        (
            _set(f"{M}/options/12", {"action": "repeat"}),
            "menus.main.options.12: not a key 0-9, * or #",
        ),
        (
            _set(f"{M}/options/1", {"action": "transfer"}),
            "menus.main.options.1.extension: missing",
        ),
        (
            _set(f"{M}/options/0", {"action": "repeat", "extension": "2000"}),
            "menus.main.options.0.extension: unknown field",
        ),
        (_set(f"{M}/timeout", 0), "menus.main.timeout: 0 is out of range 1-60 seconds"),
        (_set(f"{M}/timeout", 61), "menus.main.timeout: 61 is out of range 1-60 seconds"),
        (_set(f"{M}/timeout", 2.5), None),
        (_set(f"{M}/timeout", "5"), "menus.main.timeout: expected a number of seconds, got '5'"),
        (_set(f"{M}/timeout", True), "menus.main.timeout: expected a number of seconds, got True"),
        (_set(f"{M}/retries", 0), "menus.main.retries: 0 is out of range 1-10"),
        (_set(f"{M}/retries", 11), "menus.main.retries: 11 is out of range 1-10"),
        (_set(f"{M}/retries", 2.0), "menus.main.retries: expected a whole number, got 2.0"),
        (_set(f"{M}/retries", True), "menus.main.retries: expected a whole number, got True"),
        (
            _set(f"{M}/dial_by_extension", 1),
            "menus.main.dial_by_extension: expected true or false, got 1",
        ),
        (
            _set(f"{M}/language", "English"),
            "menus.main.language: 'English' is not a language code like 'en'",
        ),
        (_set(f"{M}/greeting", []), "menus.main.greeting: needs at least one prompt"),
        (_set(f"{M}/greeting", DELETE), "menus.main.greeting: missing"),
        (_set(f"{M}/greeting", "welcome"), "menus.main.greeting: expected a list, got str"),
        (
            _set(f"{M}/greeting", ["welcome", "hello"]),
            "menus.main.greeting[1]: 'hello' is not a prompt name, "
            "'digits/<word>' or 'custom:<name>'",
        ),
        (
            _set(f"{M}/invalid", ["custom:../../etc/passwd"]),
            "menus.main.invalid[0]: 'custom:../../etc/passwd' is not a prompt name, "
            "'digits/<word>' or 'custom:<name>'",
        ),
        (_set(f"{M}/invalid", []), None),
        (
            _set(f"{M}/on_exhausted", {"action": "repeat"}),
            "menus.main.on_exhausted: 'repeat' would never end the call",
        ),
        (
            _set(f"{M}/on_timeout", {"action": "menu", "menu": "gone"}),
            "menus.main.on_timeout: menu 'gone' does not exist",
        ),
        (_set(f"{M}/colour", "red"), "menus.main.colour: unknown field"),
        (
            _set("menus/bad name", {"greeting": ["welcome"]}),
            "menus: 'bad name' is not a name (letters, digits, '-', '_', up to 32)",
        ),
        (
            _set("menus/office", {"greeting": ["welcome"]}),
            "schedules.office: the name is also a menu's",
        ),
        (_set("extras", {}), "extras: unknown section; expected menus, schedules"),
        (_set("menus", []), "menus: expected a table, got list"),
        (
            _set(f"{H}/days", "weekdays"),
            "schedules.office.hours[0].days: 'weekdays' is not a list of days like "
            "'mon-fri' or 'mon,wed,fri'",
        ),
        (
            _set(f"{H}/menu", "office"),
            "schedules.office.hours[0].menu: 'office' is a schedule; name a menu",
        ),
        (_set(f"{H}/menu", "gone"), "schedules.office.hours[0].menu: menu 'gone' does not exist"),
        (_set(f"{H}/from", DELETE), "schedules.office.hours[0].from: missing"),
        (
            _set("schedules/office/otherwise", "gone"),
            "schedules.office.otherwise: menu 'gone' does not exist",
        ),
        (
            _set("schedules/office/timezone", "Mars/Olympus"),
            "schedules.office.timezone: 'Mars/Olympus' is not a known time zone "
            "like 'Europe/Berlin'",
        ),
        (
            _set("schedules/office/holidays/0/date", "2026-02-30"),
            "schedules.office.holidays[0].date: '2026-02-30' is not a date of the calendar",
        ),
        (_set("schedules/office/holidays/0/date", "12-24"), None),
        (_set("schedules/office/hours", {}), "schedules.office.hours: expected a list, got dict"),
    ],
)
def test_checks_name_the_exact_place(edit: Edit, error: str | None) -> None:
    data = copy.deepcopy(example())
    edit(data)
    if error is None:
        parse(data)
        return
    with pytest.raises(IvrError) as info:
        parse(data)
    assert str(info.value) == error


@pytest.mark.parametrize("data", [None, [], "menus", 3, {"menus": None}, {1: {}}])
def test_not_a_table_is_an_ivr_error(data: object) -> None:
    with pytest.raises(IvrError):
        parse(data)


def test_limits_are_enforced() -> None:
    many = {f"m{i}": {"greeting": ["welcome"]} for i in range(201)}
    with pytest.raises(IvrError, match="menus: 201 menus, at most 200"):
        parse({"menus": many})
    long_greeting = {"menus": {"m": {"greeting": ["beep"] * 33}}}
    with pytest.raises(IvrError, match=r"menus.m.greeting: 33 entries, at most 32"):
        parse(long_greeting)


def test_hostile_values_give_short_messages() -> None:
    with pytest.raises(IvrError) as info:
        parse({"menus": {"m": {"greeting": ["welcome"], "retries": 10**5000}}})
    assert str(info.value) == "menus.m.retries: a very large number is out of range 1-10"
    with pytest.raises(IvrError) as info:
        parse({"menus": {"m": {"greeting": ["welcome"], "timeout": 10**5000}}})
    assert str(info.value) == "menus.m.timeout: inf is out of range 1-60 seconds"
    with pytest.raises(IvrError) as info:
        parse({"menus": {"m": {"greeting": ["x" * 1000]}}})
    assert len(str(info.value)) < 120
