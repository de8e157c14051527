"""The auto-attendant application, driven event by event with exact actions asserted."""

from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallerHungUp,
    CancelTimer,
    DepositReason,
    DigitPressed,
    HangUp,
    Play,
    PlaybackDone,
    SetTimer,
    StartVoicemail,
    TimerFired,
    Transfer,
    TransferFailed,
)
from appliance.pbx.ivr import MenuApp, State, parse_ivr
from appliance.pbx.ivr.menu_app import MAX_DEPTH, MAX_FAILURES_PER_CALL
from appliance.pbx.prompt_names import Prompt

EXTENSIONS = frozenset({"2000", "2001", "4711", "47", "5"})
MAILBOXES = frozenset({"2000", "2001"})
BERLIN = ZoneInfo("Europe/Berlin")
WEDNESDAY_10 = datetime(2026, 12, 23, 10, 0, tzinfo=BERLIN).timestamp()

MENUS: dict[str, object] = {
    "menus": {
        "main": {
            "greeting": ["welcome"],
            "timeout": 5,
            "retries": 3,
            "dial_by_extension": True,
            "options": {
                "1": {"action": "transfer", "extension": "2000"},
                "2": {"action": "menu", "menu": "sales"},
                "3": {"action": "transfer", "extension": "2001", "voicemail_on_fail": True},
                "8": {"action": "voicemail", "mailbox": "2000"},
                "9": {"action": "dial_by_extension"},
                "0": {"action": "repeat"},
                "*": {"action": "back"},
                "#": {"action": "hangup"},
            },
        },
        "sales": {
            "language": "de",
            "greeting": ["custom:sales"],
            "options": {"1": {"action": "menu", "menu": "support"}, "*": {"action": "back"}},
        },
        "support": {"greeting": ["custom:support"], "options": {"*": {"action": "back"}}},
        "closed": {
            "greeting": ["custom:closed"],
            "options": {"1": {"action": "menu", "menu": "office"}},
        },
    },
    "schedules": {
        "office": {
            "timezone": "Europe/Berlin",
            "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:30", "menu": "main"}],
            "otherwise": "closed",
        }
    },
}


def play(*items: str, barge_in: bool = True, language: str | None = "en") -> Play:
    return Play(tuple(items), barge_in=barge_in, language=language)


HOLD = play(Prompt.PLEASE_HOLD, barge_in=False)
GOODBYE = play(Prompt.GOODBYE, barge_in=False)
GREETING = play("welcome")


class Rig:
    """One MenuApp with a loop clock that tests move forward by hand."""

    def __init__(
        self,
        data: dict[str, object] | None = None,
        entry: str = "main",
        unix_time: float = WEDNESDAY_10,
        *,
        prefix: bool = False,
    ) -> None:
        self.config = parse_ivr(data or MENUS, EXTENSIONS, MAILBOXES)
        self.now = 1000.0  # loop time: unrelated to the wall clock

        def is_prefix(digits: str) -> bool:
            return any(e.startswith(digits) and e != digits for e in EXTENSIONS)

        self.app = MenuApp(
            self.config,
            entry,
            unix_time,
            EXTENSIONS.__contains__,
            is_prefix=is_prefix if prefix else None,
        )
        self.started = self.app.start(self.now)

    def send(self, event: AppEvent, after: float = 0.0) -> list[AppAction]:
        self.now += after
        return self.app.handle(event, self.now)

    def digit(self, key: str) -> list[AppAction]:
        return self.send(DigitPressed(key))

    def done(self, interrupted: bool = False) -> list[AppAction]:
        return self.send(PlaybackDone(interrupted))

    def fire(self, after: float) -> list[AppAction]:
        return self.send(TimerFired(), after)

    def waiting(self) -> Rig:
        """Past the greeting, the digit timer running."""
        assert self.done() == [SetTimer(5.0)]
        assert self.app.state is State.WAITING
        return self


def single(**fields: object) -> dict[str, object]:
    """MENUS with some fields of "main" replaced."""
    data = copy.deepcopy(MENUS)
    data["menus"]["main"].update(fields)  # type: ignore[index]
    return data


# -- greeting and barge-in --------------------------------------------------------------


def test_start_plays_the_greeting_then_waits_for_a_digit() -> None:
    rig = Rig()
    assert rig.started == [GREETING]
    assert rig.app.state is State.GREETING
    assert rig.app.menu == "main"
    assert rig.done() == [SetTimer(5.0)]
    assert rig.app.state is State.WAITING
    assert not rig.app.finished


def test_a_digit_during_the_greeting_acts_at_once() -> None:
    rig = Rig()
    assert rig.digit("1") == [HOLD]
    assert rig.done(interrupted=True) == []  # the stopped greeting's answer, not HOLD's
    assert rig.done() == [Transfer("2000")]
    assert rig.app.state is State.TRANSFERRING


def test_the_stopped_greetings_answer_may_come_before_the_digit() -> None:
    rig = Rig()
    assert rig.done(interrupted=True) == [SetTimer(5.0)]
    assert rig.digit("1") == [CancelTimer(), HOLD]
    assert rig.done() == [Transfer("2000")]


def test_start_and_handle_before_start_do_nothing_twice() -> None:
    rig = Rig()
    assert rig.app.start(rig.now) == []
    fresh = MenuApp(rig.config, "main", WEDNESDAY_10, EXTENSIONS.__contains__)
    assert fresh.handle(DigitPressed("1"), 0.0) == []
    assert fresh.menu is None


# -- transfer ---------------------------------------------------------------------------


def test_digits_while_please_hold_plays_are_ignored() -> None:
    rig = Rig().waiting()
    assert rig.digit("1") == [CancelTimer(), HOLD]
    assert rig.digit("2") == []
    assert rig.send(TransferFailed("2000", busy=False)) == []  # not ringing yet
    assert rig.done() == [Transfer("2000")]


@pytest.mark.parametrize(("busy", "why"), [(False, Prompt.NOT_ANSWERING), (True, Prompt.IS_IN_USE)])
def test_a_failed_transfer_says_why_and_returns_to_the_menu(busy: bool, why: Prompt) -> None:
    rig = Rig().waiting()
    rig.digit("1")
    rig.done()
    assert rig.send(TransferFailed("2001", busy=busy)) == []  # some other extension
    assert rig.send(TransferFailed("2000", busy=busy)) == [play(why, "welcome")]
    assert rig.app.state is State.GREETING
    assert rig.send(TransferFailed("2000", busy=busy)) == []  # answered once only
    assert rig.done() == [SetTimer(5.0)]


@pytest.mark.parametrize(
    ("busy", "reason"), [(False, DepositReason.NO_ANSWER), (True, DepositReason.BUSY)]
)
def test_a_failed_transfer_goes_to_voicemail_when_the_option_says(
    busy: bool, reason: DepositReason
) -> None:
    rig = Rig().waiting()
    assert rig.digit("3") == [CancelTimer(), HOLD]
    assert rig.done() == [Transfer("2001")]
    assert rig.send(TransferFailed("2001", busy=busy)) == [StartVoicemail("2001", reason)]
    assert rig.app.finished
    assert rig.digit("1") == []


# -- menus, back, repeat, voicemail, hangup --------------------------------------------


def test_menus_switch_inside_the_app_and_back_walks_the_stack() -> None:
    rig = Rig().waiting()
    assert rig.digit("2") == [CancelTimer(), play("custom:sales", language="de")]
    assert rig.app.menu == "sales"
    assert rig.digit("1") == [play("custom:support")]  # barge-in: no timer yet
    assert rig.done(interrupted=True) == []
    assert rig.app.menu == "support"
    rig = Rig().waiting()
    rig.digit("2")
    rig.done()
    rig.digit("1")
    assert rig.app.menu == "support"
    assert rig.done() == [SetTimer(5.0)]
    assert rig.digit("*") == [CancelTimer(), play("custom:sales", language="de")]
    assert rig.done() == [SetTimer(5.0)]
    assert rig.digit("*") == [CancelTimer(), GREETING]
    assert rig.app.menu == "main"
    assert rig.done() == [SetTimer(5.0)]
    assert rig.digit("*") == [CancelTimer(), GREETING]  # at the top: repeat
    assert rig.app.menu == "main"


def test_back_remembers_a_bounded_number_of_menus() -> None:
    data = copy.deepcopy(MENUS)
    data["menus"]["support"]["options"]["2"] = {"action": "menu", "menu": "sales"}  # type: ignore[index]
    rig = Rig(data)
    rig.digit("2")
    for _ in range(MAX_DEPTH + 4):
        rig.digit("1")  # sales -> support
        rig.digit("2")  # support -> sales
    for _ in range(MAX_DEPTH):
        assert rig.digit("*") != []
    menu = rig.app.menu
    assert rig.digit("*") == [play(f"custom:{menu}", language="de" if menu == "sales" else "en")]
    assert rig.app.menu == menu


def test_repeat_plays_the_greeting_again() -> None:
    rig = Rig().waiting()
    assert rig.digit("0") == [CancelTimer(), GREETING]
    assert rig.fire(5.0) == []  # cancelled timer: a late firing is ignored
    assert rig.done() == [SetTimer(5.0)]


def test_voicemail_option_hands_over_to_the_mailbox() -> None:
    rig = Rig().waiting()
    assert rig.digit("8") == [CancelTimer(), StartVoicemail("2000", DepositReason.DIRECT)]
    assert rig.app.finished and rig.app.state is State.DONE


def test_hangup_says_goodbye_first() -> None:
    rig = Rig().waiting()
    assert rig.digit("#") == [CancelTimer(), GOODBYE]
    assert rig.app.state is State.ENDING
    assert rig.digit("1") == []  # goodbye does not barge
    assert rig.done() == [HangUp()]
    assert rig.app.finished


# -- failures and retries ---------------------------------------------------------------


def test_an_invalid_digit_plays_invalid_and_the_greeting() -> None:
    rig = Rig(single(dial_by_extension=False)).waiting()
    assert rig.digit("5") == [CancelTimer(), play("invalid", "welcome")]
    assert rig.app.state is State.GREETING


def test_keypad_letters_are_invalid_even_with_dial_by_extension() -> None:
    rig = Rig().waiting()
    assert rig.digit("A") == [CancelTimer(), play("invalid", "welcome")]


def test_timeouts_repeat_until_retries_run_out_then_goodbye() -> None:
    rig = Rig().waiting()
    assert rig.fire(5.0) == [GREETING]
    assert rig.fire(1.0) == []  # no timer while the greeting plays
    assert rig.done() == [SetTimer(5.0)]
    assert rig.fire(5.0) == [GREETING]
    assert rig.done() == [SetTimer(5.0)]
    assert rig.fire(5.0) == [GOODBYE]
    assert rig.done() == [HangUp()]
    assert rig.app.finished


def test_invalid_digits_and_timeouts_count_together() -> None:
    rig = Rig(single(dial_by_extension=False, retries=2, invalid=[])).waiting()
    assert rig.digit("7") == [CancelTimer(), GREETING]  # no invalid prompt configured
    assert rig.done() == [SetTimer(5.0)]
    assert rig.fire(5.0) == [GOODBYE]


def test_a_new_menu_starts_its_retries_afresh() -> None:
    rig = Rig(single(retries=2)).waiting()
    assert rig.fire(5.0) == [GREETING]
    rig.done()
    assert rig.digit("2") == [CancelTimer(), play("custom:sales", language="de")]
    rig.done()
    assert rig.digit("*") == [CancelTimer(), GREETING]
    rig.done()
    assert rig.fire(5.0) == [GREETING]  # the first failure in main again
    rig.done()
    assert rig.fire(5.0) == [GOODBYE]


def test_on_timeout_can_transfer_to_an_operator() -> None:
    rig = Rig(single(on_timeout={"action": "transfer", "extension": "2000"})).waiting()
    assert rig.fire(5.0) == [HOLD]
    assert rig.done() == [Transfer("2000")]


def test_on_exhausted_can_go_to_voicemail() -> None:
    data = single(retries=1, on_exhausted={"action": "voicemail", "mailbox": "2000"})
    rig = Rig(data).waiting()
    assert rig.fire(5.0) == [StartVoicemail("2000", DepositReason.DIRECT)]
    assert rig.app.finished


def test_menus_passing_a_silent_caller_around_end_the_call() -> None:
    data: dict[str, object] = {
        "menus": {
            "a": {
                "greeting": ["welcome"],
                "retries": 1,
                "on_exhausted": {"action": "menu", "menu": "b"},
            },
            "b": {
                "greeting": ["sorry"],
                "retries": 1,
                "on_exhausted": {"action": "menu", "menu": "a"},
            },
        }
    }
    rig = Rig(data, entry="a")
    actions: list[AppAction] = []
    for _ in range(MAX_FAILURES_PER_CALL):
        rig.done()
        actions = rig.fire(5.0)
    assert actions == [GOODBYE]
    assert rig.done() == [HangUp()]


# -- dial by extension ------------------------------------------------------------------


def test_dial_by_extension_option_asks_then_collects_until_hash() -> None:
    rig = Rig().waiting()
    assert rig.digit("9") == [CancelTimer(), play(Prompt.ENTER_EXTENSION)]
    assert rig.app.state is State.COLLECTING
    assert rig.done() == [SetTimer(5.0)]
    for key in "200":
        assert rig.digit(key) == [SetTimer(3.0)]
    assert rig.digit("1") == [SetTimer(3.0)]
    assert rig.digit("#") == [CancelTimer(), HOLD]
    assert rig.done() == [Transfer("2001")]


def test_a_pause_ends_the_number() -> None:
    rig = Rig().waiting()
    rig.digit("9")
    assert rig.digit("4") == [SetTimer(3.0)]  # barges into "enter extension"
    assert rig.done(interrupted=True) == []
    for key in "711":
        rig.digit(key)
    assert rig.fire(3.0) == [HOLD]
    assert rig.done() == [Transfer("4711")]


def test_the_first_digit_of_an_extension_may_be_dialled_in_the_menu() -> None:
    rig = Rig().waiting()
    assert rig.digit("4") == [SetTimer(3.0)]  # replaces the menu timer
    assert rig.app.state is State.COLLECTING
    assert rig.digit("7") == [SetTimer(3.0)]
    assert rig.fire(3.0) == [HOLD]
    assert rig.done() == [Transfer("47")]


def test_during_the_greeting_too() -> None:
    rig = Rig()
    assert rig.digit("5") == [SetTimer(3.0)]
    assert rig.done(interrupted=True) == []
    assert rig.digit("#") == [CancelTimer(), HOLD]


def test_with_prefixes_known_a_complete_number_ends_at_once() -> None:
    rig = Rig(prefix=True).waiting()
    assert rig.digit("4") == [SetTimer(3.0)]
    assert rig.digit("7") == [SetTimer(3.0)]  # 47 exists, but so does 4711
    assert rig.digit("1") == [SetTimer(3.0)]
    assert rig.digit("1") == [CancelTimer(), HOLD]
    rig = Rig(prefix=True).waiting()
    assert rig.digit("5") == [CancelTimer(), HOLD]  # a one-digit extension


def test_with_prefixes_known_a_digit_no_extension_starts_with_is_invalid() -> None:
    rig = Rig(prefix=True).waiting()
    assert rig.digit("6") == [CancelTimer(), play("invalid", "welcome")]
    rig = Rig(prefix=True).waiting()
    rig.digit("4")
    assert rig.digit("8") == [CancelTimer(), play("invalid", "welcome")]


def test_an_unknown_number_is_invalid_and_counts_a_retry() -> None:
    rig = Rig(single(retries=2)).waiting()
    assert rig.digit("6") == [SetTimer(3.0)]
    assert rig.digit("6") == [SetTimer(3.0)]
    assert rig.digit("#") == [CancelTimer(), play("invalid", "welcome")]
    assert rig.app.state is State.GREETING
    rig.done()
    assert rig.digit("6") == [SetTimer(3.0)]
    assert rig.fire(3.0) == [GOODBYE]


def test_no_number_entered_is_a_menu_timeout() -> None:
    rig = Rig().waiting()
    rig.digit("9")
    rig.done()
    assert rig.fire(5.0) == [GREETING]
    rig = Rig().waiting()
    rig.digit("9")
    assert rig.digit("#") == [GREETING]


def test_keypad_letters_while_collecting_are_ignored_but_keep_a_timer() -> None:
    rig = Rig().waiting()
    rig.digit("9")
    assert rig.digit("D") == [SetTimer(5.0)]  # it stopped "enter extension"
    rig.done(interrupted=True)
    rig.digit("4")
    assert rig.digit("A") == [SetTimer(3.0)]
    assert rig.fire(3.0) == [play("invalid", "welcome")]


def test_collection_is_bounded() -> None:
    rig = Rig().waiting()
    rig.digit("9")
    actions: list[AppAction] = []
    for _ in range(16):
        actions = rig.digit("7")
    assert actions == [CancelTimer(), play("invalid", "welcome")]


# -- hang-up, schedules, unknown entry, languages ---------------------------------------


@pytest.mark.parametrize("keys", ["", "1", "9", "4", "#"])
def test_the_caller_hanging_up_ends_the_app_in_any_state(keys: str) -> None:
    rig = Rig().waiting()
    for key in keys:
        rig.digit(key)
    assert rig.send(CallerHungUp()) == []
    assert rig.app.state is State.DONE and rig.app.finished
    assert rig.done() == []
    assert rig.fire(5.0) == []
    assert rig.send(CallerHungUp()) == []


def test_a_schedule_entry_picks_the_menu_at_the_start_time() -> None:
    evening = datetime(2026, 12, 23, 20, 0, tzinfo=BERLIN).timestamp()
    assert Rig(entry="office").started == [GREETING]
    assert Rig(entry="office", unix_time=evening).started == [play("custom:closed")]


def test_later_schedule_lookups_add_the_loop_time_elapsed() -> None:
    before_nine = datetime(2026, 12, 23, 8, 59, 50, tzinfo=BERLIN).timestamp()
    rig = Rig(entry="office", unix_time=before_nine)
    assert rig.started == [play("custom:closed")]
    rig.now += 20.0  # 09:00:10 on the wall clock
    assert rig.digit("1") == [GREETING]
    assert rig.app.menu == "main"


def test_an_unknown_entry_apologises_and_hangs_up() -> None:
    rig = Rig(entry="nowhere")
    assert rig.started == [play(Prompt.SORRY, Prompt.GOODBYE, barge_in=False, language=None)]
    assert rig.app.state is State.ENDING
    assert rig.done() == [HangUp()]
    assert rig.app.finished


def test_every_play_carries_the_menus_language() -> None:
    data = copy.deepcopy(MENUS)
    data["menus"]["sales"]["options"]["#"] = {"action": "hangup"}  # type: ignore[index]
    rig = Rig(data).waiting()
    rig.digit("2")
    rig.done()
    assert rig.fire(5.0) == [play("custom:sales", language="de")]
    rig.done()
    assert rig.digit("#") == [CancelTimer(), play(Prompt.GOODBYE, barge_in=False, language="de")]
