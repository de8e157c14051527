"""Mailbox access: login (*97, *98), counts, the message player, options, idle timeouts."""

from __future__ import annotations

import pytest

from appliance.pbx import announce
from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallerHungUp,
    CancelTimer,
    CheckPin,
    DigitPressed,
    DiscardRecording,
    GreetingKind,
    HangUp,
    LoadMailbox,
    MailboxLoaded,
    MailboxView,
    MessageInfo,
    MessageStatus,
    MessageStored,
    PinChecked,
    Play,
    PlaybackDone,
    PlayItem,
    Record,
    RecordEnd,
    Recording,
    RecordingDone,
    SaveGreeting,
    SetMessageStatus,
    SetPin,
    SetTimer,
    TimerFired,
)
from appliance.pbx.prompt_names import Prompt
from appliance.pbx.voicemail.access import AccessState, MailboxAccessApp

NEW, READ, SAVED, DELETED = (
    MessageStatus.NEW,
    MessageStatus.READ,
    MessageStatus.SAVED,
    MessageStatus.DELETED,
)
WALL = 1_700_001_000.0
START = 50.0
M1 = MessageInfo(1, "0301234567", "Bob", 1_700_000_000.0, 12.0, NEW, False, Recording("/m/1"))
M2 = MessageInfo(2, "anonymous", None, 1_700_000_100.0, 5.0, NEW, True, Recording("/m/2"))
M3 = MessageInfo(3, "+49 30 1234", None, 1_699_000_000.0, 30.0, SAVED, False, Recording("/m/3"))
M4 = MessageInfo(4, "202", "Carol", 1_699_500_000.0, 8.0, READ, False, Recording("/m/4"))
GREETING = Recording("/data/tmp/rec-9.wav")


def box(
    *messages: MessageInfo, number: str = "201", has_pin: bool = True, language: str = "en"
) -> MailboxView:
    return MailboxView(
        number=number,
        name="Alice",
        language=language,
        max_message_seconds=120.0,
        max_messages=100,
        messages=messages,
        has_pin=has_pin,
        timezone="Europe/Berlin",
    )


VIEW = box(M3, M4, M1, M2)  # oldest first


class Words:
    """A stand-in announcer with predictable output (announce.py's shape)."""

    def say_number(self, n: int, language: str, /) -> list[str]:
        return [f"digits/{n}"]

    def say_digits(self, s: str, /) -> list[str]:
        return [f"digits/{c}" for c in s if c not in "+-() ."]

    def say_datetime(
        self, unix_time: float, timezone: str, language: str, now: float | None = None, /
    ) -> list[str]:
        return ["received", f"when/{unix_time:g}/{timezone}/{language}/{now}"]


class Rig:
    """Drives one application; the clock moves only when told."""

    def __init__(
        self,
        mailbox: str | None = "201",
        own_phone: bool = False,
        language: str | None = None,
        announcer: Words | None = None,
    ) -> None:
        self.now = START
        self.app = MailboxAccessApp(
            mailbox,
            own_phone=own_phone,
            language=language,
            wall_time=WALL,
            announcer=announcer if announcer is not None else Words(),
        )

    def start(self) -> list[AppAction]:
        return self.app.start(self.now)

    def send(self, *events: AppEvent) -> list[AppAction]:
        actions: list[AppAction] = []
        for event in events:
            actions += self.app.handle(event, self.now)
        return actions

    def key(self, digit: str) -> list[AppAction]:
        return self.send(DigitPressed(digit))

    def keys(self, digits: str) -> list[AppAction]:
        return self.send(*(DigitPressed(d) for d in digits))

    def done(self, interrupted: bool = False) -> list[AppAction]:
        return self.send(PlaybackDone(interrupted))

    @property
    def state(self) -> AccessState:
        return self.app.state


def ask(*items: PlayItem, language: str | None = None) -> Play:
    """A prompt before login: the caller's (here: the engine's default) language."""
    return Play(items, barge_in=True, language=language)


def menu(*items: PlayItem) -> Play:
    return Play(items, barge_in=True, language="en")


def final(*items: PlayItem, language: str | None = "en") -> Play:
    return Play(items, barge_in=False, language=language)


def envelope(m: MessageInfo, now: float = WALL) -> list[PlayItem]:
    items: list[PlayItem] = ["received", f"when/{m.received_at:g}/Europe/Berlin/en/{now}"]
    if m.caller == "anonymous":
        return [*items, Prompt.UNKNOWN_CALLER]
    return [*items, Prompt.FROM_PHONE_NUMBER, *(f"digits/{c}" for c in m.caller if c.isdigit())]


def message(position: Prompt, m: MessageInfo, *before: PlayItem) -> Play:
    """FIRST/LAST (urgent) MESSAGE, or for one in between (urgent) MESSAGE <its number>."""
    urgent = [Prompt.URGENT] if m.urgent else []
    if position is Prompt.NEXT:
        header: list[PlayItem] = [*urgent, Prompt.MESSAGE, f"digits/{m.id}"]
    else:
        header = [position, *urgent, Prompt.MESSAGE]
    return menu(*before, *header, *envelope(m), m.recording)


def counts(new: int, old: int) -> list[PlayItem]:
    def part(n: int, adjective: Prompt) -> list[PlayItem]:
        number = [Prompt.NO] if n == 0 else [f"digits/{n}"]
        return [*number, adjective, Prompt.MESSAGE if n == 1 else Prompt.MESSAGES]

    return [Prompt.YOU_HAVE, *part(new, Prompt.NEW), Prompt.AND, *part(old, Prompt.OLD)]


def logged_in(view: MailboxView = VIEW) -> Rig:
    """Through the *97 login; the main menu has been played to its end."""
    rig = Rig()
    assert rig.start() == [LoadMailbox("201")]
    assert rig.send(MailboxLoaded("201", view)) == [ask(Prompt.ENTER_PIN)]
    assert rig.done() == [SetTimer(10.0)]
    for digit in "1234":
        assert rig.key(digit) == [SetTimer(4.0)]
    assert rig.key("#") == [CancelTimer(), CheckPin("201", "1234")]
    assert rig.send(PinChecked("201", True)) == [LoadMailbox("201")]
    assert rig.send(MailboxLoaded("201", view)) == [
        menu(*counts(view.new_count, view.saved_count), Prompt.MAIN_MENU)
    ]
    assert rig.done() == [SetTimer(10.0)]
    assert rig.state is AccessState.MAIN_MENU
    return rig


def listening(view: MailboxView = VIEW) -> Rig:
    """Main menu 1; the first message has been heard and the message menu played."""
    rig = logged_in(view)
    rig.key("1")
    rig.done()
    rig.done()
    assert rig.state is AccessState.MESSAGE_MENU
    return rig


# -- login -----------------------------------------------------------------------------


def test_own_mailbox_with_pin_logs_in_and_announces_counts() -> None:
    logged_in()


def test_counts_say_no_and_the_singular() -> None:
    assert counts(1, 0) == [
        Prompt.YOU_HAVE,
        "digits/1",
        Prompt.NEW,
        Prompt.MESSAGE,
        Prompt.AND,
        Prompt.NO,
        Prompt.OLD,
        Prompt.MESSAGES,
    ]
    logged_in(box(M1))
    logged_in(box())


def test_pin_ends_by_inter_digit_timeout() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    rig.done()
    assert rig.keys("12") == [SetTimer(4.0), SetTimer(4.0)]
    assert rig.send(TimerFired()) == [CheckPin("201", "12")]
    assert rig.state is AccessState.CHECKING_PIN


def test_pin_typed_during_the_prompt_is_kept() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    assert rig.key("4") == [SetTimer(4.0)]  # the prompt stops for it
    assert rig.done(interrupted=True) == []
    assert rig.keys("2#") == [SetTimer(4.0), CancelTimer(), CheckPin("201", "42")]


def test_wrong_pin_three_times_hangs_up() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    for attempt in range(3):
        rig.done()
        rig.keys("99#")
        assert rig.state is AccessState.CHECKING_PIN
        actions = rig.send(PinChecked("201", False))
        if attempt < 2:
            assert actions == [ask(Prompt.LOGIN_INCORRECT, Prompt.ENTER_PIN)]
    assert actions == [final(Prompt.LOGIN_INCORRECT, Prompt.GOODBYE, language=None)]
    assert not rig.app.finished
    assert rig.done() == [HangUp()]
    assert rig.app.finished


def test_empty_pin_counts_as_wrong_without_asking_the_store() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    rig.done()
    assert rig.key("#") == [CancelTimer(), ask(Prompt.LOGIN_INCORRECT, Prompt.ENTER_PIN)]


def test_own_phone_opens_a_mailbox_without_pin() -> None:
    rig = Rig(own_phone=True)
    rig.start()
    view = box(M1, has_pin=False)
    assert rig.send(MailboxLoaded("201", view)) == [menu(*counts(1, 0), Prompt.MAIN_MENU)]
    assert rig.state is AccessState.MAIN_MENU


def test_own_phone_still_needs_a_pin_that_is_set() -> None:
    rig = Rig(own_phone=True)
    rig.start()
    assert rig.send(MailboxLoaded("201", VIEW)) == [ask(Prompt.ENTER_PIN)]


def test_mailbox_without_pin_is_refused_to_another_phone() -> None:
    rig = Rig(own_phone=False)  # e.g. '*' pressed during this mailbox's greeting
    rig.start()
    assert rig.send(MailboxLoaded("201", box(has_pin=False))) == [ask(Prompt.ENTER_PIN)]
    rig.done()
    actions = rig.keys("0000#")
    assert not [a for a in actions if isinstance(a, CheckPin)]
    assert actions[-1] == ask(Prompt.LOGIN_INCORRECT, Prompt.ENTER_PIN)


def test_own_mailbox_missing_says_so() -> None:
    rig = Rig(own_phone=True)
    rig.start()
    assert rig.send(MailboxLoaded("201", None)) == [
        final(Prompt.NO_SUCH_MAILBOX, Prompt.GOODBYE, language=None)
    ]
    assert rig.done() == [HangUp()]
    assert rig.app.finished


def test_mailbox_removed_during_login_ends_the_call() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    rig.keys("1234#")
    rig.done(interrupted=True)
    rig.send(PinChecked("201", True))
    assert rig.send(MailboxLoaded("201", None)) == [
        final(Prompt.SORRY, Prompt.GOODBYE, language=None)
    ]


def test_prompts_before_login_keep_the_callers_language() -> None:
    rig = Rig(language="de")
    rig.start()
    view = box(M1, language="fr")
    assert rig.send(MailboxLoaded("201", view)) == [ask(Prompt.ENTER_PIN, language="de")]
    rig.keys("1234#")
    rig.done(interrupted=True)
    rig.send(PinChecked("201", True))
    (announcement,) = rig.send(MailboxLoaded("201", view))
    assert isinstance(announcement, Play)
    assert announcement.language == "fr"


def test_answers_for_another_mailbox_are_ignored() -> None:
    rig = Rig()
    rig.start()
    assert rig.send(MailboxLoaded("202", VIEW)) == []
    rig.send(MailboxLoaded("201", VIEW))
    rig.keys("1#")
    assert rig.send(PinChecked("202", True)) == []
    assert rig.state is AccessState.CHECKING_PIN


# -- *98: any mailbox ------------------------------------------------------------------


def test_any_mailbox_asks_which_then_the_pin() -> None:
    rig = Rig(mailbox=None)
    assert rig.start() == [ask(Prompt.MAILBOX_NUMBER)]
    assert rig.done() == [SetTimer(10.0)]
    assert rig.keys("202") == [SetTimer(3.0)] * 3
    assert rig.key("#") == [CancelTimer(), LoadMailbox("202")]
    assert rig.send(MailboxLoaded("202", box(M1, number="202"))) == [ask(Prompt.ENTER_PIN)]
    rig.done()
    assert rig.keys("77#")[-1] == CheckPin("202", "77")
    assert rig.send(PinChecked("202", True)) == [LoadMailbox("202")]
    assert rig.send(MailboxLoaded("202", box(M1, number="202"))) == [
        menu(*counts(1, 0), Prompt.MAIN_MENU)
    ]


def test_mailbox_number_ends_after_three_seconds() -> None:
    rig = Rig(mailbox=None)
    rig.start()
    rig.done()
    rig.keys("20")
    assert rig.send(TimerFired()) == [LoadMailbox("20")]


def test_unknown_mailbox_is_asked_for_a_pin_and_refused_like_a_wrong_one() -> None:
    rig = Rig(mailbox=None)
    rig.start()
    rig.keys("999#")
    rig.done(interrupted=True)
    assert rig.send(MailboxLoaded("999", None)) == [ask(Prompt.ENTER_PIN)]
    rig.done()
    actions = rig.keys("1234#")
    assert not [a for a in actions if isinstance(a, CheckPin)]
    assert actions[-1] == ask(Prompt.LOGIN_INCORRECT, Prompt.MAILBOX_NUMBER)
    assert rig.state is AccessState.ASK_MAILBOX


def test_any_mailbox_refuses_one_without_pin() -> None:
    rig = Rig(mailbox=None)
    rig.start()
    rig.keys("201#")
    rig.done(interrupted=True)
    rig.send(MailboxLoaded("201", box(has_pin=False)))
    assert rig.keys("#") == []  # over ENTER_PIN: the answer waits for the prompt's end
    assert rig.done(interrupted=True) == [ask(Prompt.LOGIN_INCORRECT, Prompt.MAILBOX_NUMBER)]


def test_wrong_pin_on_any_mailbox_asks_for_the_mailbox_again() -> None:
    rig = Rig(mailbox=None)
    rig.start()
    rig.keys("201#")
    rig.done(interrupted=True)
    rig.send(MailboxLoaded("201", VIEW))
    rig.keys("5#")
    rig.done(interrupted=True)
    assert rig.send(PinChecked("201", False)) == [
        ask(Prompt.LOGIN_INCORRECT, Prompt.MAILBOX_NUMBER)
    ]
    assert rig.app.mailbox is None
    rig.done()
    assert rig.keys("202#")[-1] == LoadMailbox("202")


def test_empty_mailbox_number_is_a_failed_try() -> None:
    rig = Rig(mailbox=None)
    rig.start()
    rig.done()
    assert rig.key("#") == [CancelTimer(), ask(Prompt.LOGIN_INCORRECT, Prompt.MAILBOX_NUMBER)]
    rig.done()
    rig.key("#")
    rig.done()
    assert rig.key("#") == [
        CancelTimer(),
        final(Prompt.LOGIN_INCORRECT, Prompt.GOODBYE, language=None),
    ]


def test_star_and_letters_are_not_part_of_a_number() -> None:
    rig = Rig(mailbox=None)
    rig.start()
    rig.done()
    assert rig.keys("*A") == []
    assert rig.keys("2#")[-1] == LoadMailbox("2")


# -- the message player ----------------------------------------------------------------


def test_listen_to_new_then_old_messages() -> None:
    rig = logged_in()
    assert rig.key("1") == [CancelTimer(), message(Prompt.FIRST, M1)]
    assert rig.done() == [SetMessageStatus("201", 1, READ), menu(Prompt.MESSAGE_MENU)]
    assert rig.done() == [SetTimer(10.0)]
    assert rig.key("6") == [CancelTimer(), message(Prompt.NEXT, M2)]
    assert rig.done() == [SetMessageStatus("201", 2, READ), menu(Prompt.MESSAGE_MENU)]
    rig.done()
    assert rig.key("6") == [CancelTimer(), message(Prompt.NEXT, M3)]
    assert rig.done() == [menu(Prompt.MESSAGE_MENU)]  # saved already: no status change
    rig.done()
    assert rig.key("6") == [CancelTimer(), message(Prompt.LAST, M4)]
    assert rig.done() == [menu(Prompt.MESSAGE_MENU)]
    rig.done()
    assert rig.key("6") == [CancelTimer(), menu(Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU)]
    assert rig.state is AccessState.MAIN_MENU


def test_old_messages_only() -> None:
    rig = logged_in()
    assert rig.key("2") == [CancelTimer(), message(Prompt.FIRST, M3)]
    rig.done()
    rig.done()
    assert rig.key("6") == [CancelTimer(), message(Prompt.LAST, M4)]


def test_no_messages_at_all() -> None:
    rig = logged_in(box())
    assert rig.key("1") == [CancelTimer(), menu(Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU)]
    rig.done()
    assert rig.key("2") == [CancelTimer(), menu(Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU)]


def test_single_message_is_the_first() -> None:
    rig = logged_in(box(M1))
    assert rig.key("1") == [CancelTimer(), message(Prompt.FIRST, M1)]


def test_replay_and_envelope() -> None:
    rig = listening()
    assert rig.key("5") == [CancelTimer(), menu(M1.recording)]
    assert rig.done() == [menu(Prompt.MESSAGE_MENU)]  # already READ
    rig.done()
    assert rig.key("3") == [CancelTimer(), menu(*envelope(M1), Prompt.MESSAGE_MENU)]
    assert rig.state is AccessState.MESSAGE_MENU


def test_envelope_dates_are_relative_to_the_wall_clock_now() -> None:
    rig = logged_in()
    rig.now += 30.0
    assert rig.key("1") == [
        CancelTimer(),
        menu(Prompt.FIRST, Prompt.MESSAGE, *envelope(M1, now=WALL + 30.0), M1.recording),
    ]


def test_previous_goes_back_and_stops_at_the_first() -> None:
    rig = listening()
    rig.key("6")
    rig.done()
    rig.done()
    assert rig.key("4") == [CancelTimer(), message(Prompt.FIRST, M1)]
    rig.done()
    rig.done()
    assert rig.key("4") == [CancelTimer(), message(Prompt.FIRST, M1)]


def test_delete_moves_on_and_previous_skips_the_deleted() -> None:
    rig = listening()
    rig.key("6")  # M2
    rig.done()
    rig.done()
    assert rig.key("7") == [
        CancelTimer(),
        SetMessageStatus("201", 2, DELETED),
        message(Prompt.NEXT, M3, Prompt.DELETED),
    ]
    rig.done()
    rig.done()
    assert rig.key("4") == [CancelTimer(), message(Prompt.FIRST, M1)]
    rig.done()
    rig.done()
    assert rig.key("6") == [CancelTimer(), message(Prompt.NEXT, M3)]


def test_deleting_the_first_makes_the_next_one_first() -> None:
    rig = listening()
    assert rig.key("7") == [
        CancelTimer(),
        SetMessageStatus("201", 1, DELETED),
        message(Prompt.FIRST, M2, Prompt.DELETED),
    ]


def test_save_a_new_message_while_it_plays() -> None:
    rig = logged_in()
    rig.key("1")
    assert rig.key("9") == [SetMessageStatus("201", 1, SAVED)]  # the Play waits for Done
    assert rig.done(interrupted=True) == [message(Prompt.NEXT, M2, Prompt.SAVED)]


def test_delete_the_last_message() -> None:
    rig = logged_in(box(M1))
    rig.key("1")
    rig.done()
    rig.done()
    assert rig.key("7") == [
        CancelTimer(),
        SetMessageStatus("201", 1, DELETED),
        menu(Prompt.DELETED, Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU),
    ]
    assert rig.state is AccessState.MAIN_MENU
    rig.done()
    assert rig.key("1") == [CancelTimer(), menu(Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU)]


def test_new_message_left_early_becomes_read() -> None:
    rig = logged_in()
    rig.key("1")
    assert rig.key("6") == [SetMessageStatus("201", 1, READ)]
    assert rig.done(interrupted=True) == [message(Prompt.NEXT, M2)]


def test_new_message_cut_short_and_key_reported_late() -> None:
    rig = logged_in()
    rig.key("1")
    assert rig.done(interrupted=True) == [SetTimer(10.0)]  # not heard through: still NEW
    assert rig.state is AccessState.MESSAGE_MENU
    assert rig.key("6") == [
        CancelTimer(),
        SetMessageStatus("201", 1, READ),
        message(Prompt.NEXT, M2),
    ]


def test_replaying_a_new_message_does_not_mark_it() -> None:
    rig = logged_in()
    rig.key("1")
    assert rig.key("5") == []
    assert rig.done(interrupted=True) == [menu(M1.recording)]
    assert rig.done() == [SetMessageStatus("201", 1, READ), menu(Prompt.MESSAGE_MENU)]


def test_star_returns_to_the_main_menu_and_marks() -> None:
    rig = logged_in()
    rig.key("1")
    assert rig.key("*") == [SetMessageStatus("201", 1, READ)]
    assert rig.done(interrupted=True) == [menu(Prompt.MAIN_MENU)]
    assert rig.state is AccessState.MAIN_MENU
    rig.done()
    # M1 is old now: the new messages come first
    assert rig.key("1") == [CancelTimer(), message(Prompt.FIRST, M2)]


def test_invalid_key_in_the_message_menu() -> None:
    rig = listening()
    assert rig.key("8") == [CancelTimer(), menu(Prompt.INVALID, Prompt.MESSAGE_MENU)]


# -- main menu and options -------------------------------------------------------------


def test_star_in_the_main_menu_is_help_the_menu_again() -> None:
    rig = logged_in()
    assert rig.key("*") == [CancelTimer(), menu(Prompt.MAIN_MENU)]


def test_the_options_menu_takes_the_keys_its_recording_names() -> None:
    rig = logged_in()
    rig.key("0")
    rig.done()
    assert rig.key("4") == [CancelTimer(), menu(Prompt.INVALID, Prompt.OPTIONS_MENU)]


@pytest.mark.parametrize("digit", ["#"])
def test_goodbye_from_the_main_menu(digit: str) -> None:
    rig = logged_in()
    assert rig.key(digit) == [CancelTimer(), final(Prompt.GOODBYE)]
    assert rig.key("1") == []
    assert rig.done() == [HangUp()]
    assert rig.app.finished


def test_invalid_key_in_the_main_menu() -> None:
    rig = logged_in()
    assert rig.key("7") == [CancelTimer(), menu(Prompt.INVALID, Prompt.MAIN_MENU)]


def test_key_during_the_announcement_waits_for_its_end() -> None:
    rig = Rig(own_phone=True)
    rig.start()
    rig.send(MailboxLoaded("201", box(has_pin=False)))
    assert rig.key("0") == []
    assert rig.done(interrupted=True) == [menu(Prompt.OPTIONS_MENU)]
    assert rig.state is AccessState.OPTIONS


def test_announcement_end_reported_before_the_key() -> None:
    rig = Rig(own_phone=True)
    rig.start()
    rig.send(MailboxLoaded("201", box(has_pin=False)))
    assert rig.done(interrupted=True) == [SetTimer(10.0)]
    assert rig.key("0") == [CancelTimer(), menu(Prompt.OPTIONS_MENU)]


def options() -> Rig:
    rig = logged_in()
    assert rig.key("0") == [CancelTimer(), menu(Prompt.OPTIONS_MENU)]
    assert rig.done() == [SetTimer(10.0)]
    return rig


@pytest.mark.parametrize(
    ("digit", "kind", "prompt"),
    [
        ("1", GreetingKind.UNAVAILABLE, Prompt.RECORD_UNAVAILABLE),
        ("2", GreetingKind.BUSY, Prompt.RECORD_BUSY),
        ("3", GreetingKind.NAME, Prompt.RECORD_NAME),
    ],
)
def test_record_a_greeting(digit: str, kind: GreetingKind, prompt: Prompt) -> None:
    rig = options()
    assert rig.key(digit) == [CancelTimer(), final(prompt, Prompt.BEEP)]
    assert rig.key("5") == []  # the prompt and beep are not cut short
    assert rig.done() == [Record(60.0, 3.0, "#")]
    assert rig.key("#") == []  # the engine's stop digit
    assert rig.send(RecordingDone(GREETING, 6.0, RecordEnd.DIGIT)) == [
        SaveGreeting("201", kind, GREETING),
        menu(Prompt.SAVED, Prompt.OPTIONS_MENU),
    ]
    assert rig.state is AccessState.OPTIONS
    assert rig.send(MailboxLoaded("201", VIEW)) == []


def test_too_short_greeting_is_discarded() -> None:
    rig = options()
    rig.key("1")
    rig.done()
    assert rig.send(RecordingDone(GREETING, 0.5, RecordEnd.SILENCE)) == [
        DiscardRecording(GREETING),
        menu(Prompt.TOO_SHORT, Prompt.OPTIONS_MENU),
    ]


@pytest.mark.parametrize("hang_up_first", [True, False])
def test_hang_up_while_recording_a_greeting_keeps_it(hang_up_first: bool) -> None:
    rig = options()
    rig.key("3")
    rig.done()
    if hang_up_first:
        assert rig.send(CallerHungUp()) == []
        assert not rig.app.finished
    actions = rig.send(RecordingDone(GREETING, 2.0, RecordEnd.HANG_UP))
    assert actions == [SaveGreeting("201", GreetingKind.NAME, GREETING)]
    assert rig.app.finished
    assert rig.send(CallerHungUp()) == []


def test_reloaded_mailbox_after_a_greeting_is_used() -> None:
    rig = options()
    rig.send(MailboxLoaded("201", box(M1)))
    rig.key("*")
    rig.done()
    assert rig.key("2") == [CancelTimer(), menu(Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU)]


def test_change_pin() -> None:
    rig = options()
    assert rig.key("5") == [CancelTimer(), menu(Prompt.NEW_PIN)]
    rig.done()
    assert rig.keys("5678") == [SetTimer(4.0)] * 4
    assert rig.key("#") == [CancelTimer(), menu(Prompt.REENTER_PIN)]
    rig.done()
    rig.keys("5678")
    assert rig.key("#") == [
        CancelTimer(),
        SetPin("201", "5678"),
        menu(Prompt.PIN_CHANGED, Prompt.OPTIONS_MENU),
    ]
    assert rig.state is AccessState.OPTIONS


def test_change_pin_mismatch_asks_again() -> None:
    rig = options()
    rig.key("5")
    rig.done()
    rig.keys("5678#")
    rig.done()
    rig.keys("5679")
    assert rig.key("#") == [CancelTimer(), menu(Prompt.PIN_MISMATCH, Prompt.NEW_PIN)]
    assert rig.state is AccessState.NEW_PIN
    rig.done()
    rig.keys("11#")
    rig.done()
    assert rig.keys("11#")[-2:] == [
        SetPin("201", "11"),
        menu(Prompt.PIN_CHANGED, Prompt.OPTIONS_MENU),
    ]


def test_new_pin_typed_over_the_prompt_and_by_timeout() -> None:
    rig = options()
    rig.key("5")
    assert rig.key("1") == [SetTimer(4.0)]
    assert rig.done(interrupted=True) == []
    assert rig.send(TimerFired()) == [menu(Prompt.REENTER_PIN)]


def test_empty_new_pin_is_refused() -> None:
    rig = options()
    rig.key("5")
    rig.done()
    assert rig.key("#") == [CancelTimer(), menu(Prompt.INVALID, Prompt.NEW_PIN)]


@pytest.mark.parametrize("step", ["new", "reenter"])
def test_star_leaves_the_pin_change(step: str) -> None:
    rig = options()
    rig.key("5")
    rig.done()
    if step == "reenter":
        rig.keys("12#")
        rig.done()
    assert rig.key("*") == [CancelTimer(), menu(Prompt.OPTIONS_MENU)]
    assert rig.state is AccessState.OPTIONS


def test_options_back_and_invalid() -> None:
    rig = options()
    assert rig.key("9") == [CancelTimer(), menu(Prompt.INVALID, Prompt.OPTIONS_MENU)]
    rig.done()
    assert rig.key("*") == [CancelTimer(), menu(Prompt.MAIN_MENU)]
    assert rig.state is AccessState.MAIN_MENU


# -- idle timeouts ---------------------------------------------------------------------


def test_idle_main_menu_is_replayed_then_goodbye() -> None:
    rig = logged_in()
    assert rig.send(TimerFired()) == [menu(Prompt.MAIN_MENU)]
    assert rig.done() == [SetTimer(10.0)]
    assert rig.send(TimerFired()) == [menu(Prompt.MAIN_MENU)]
    rig.done()
    assert rig.send(TimerFired()) == [final(Prompt.GOODBYE)]
    assert rig.done() == [HangUp()]
    assert rig.app.finished


def test_a_key_resets_the_idle_count() -> None:
    rig = logged_in()
    rig.send(TimerFired())
    rig.done()
    rig.send(TimerFired())
    rig.done()
    rig.key("8")  # invalid, but someone is there
    rig.done()
    assert rig.send(TimerFired()) == [menu(Prompt.MAIN_MENU)]
    rig.done()
    assert rig.send(TimerFired()) == [menu(Prompt.MAIN_MENU)]


@pytest.mark.parametrize(
    ("reach", "prompt"),
    [("message", Prompt.MESSAGE_MENU), ("options", Prompt.OPTIONS_MENU)],
)
def test_idle_replays_the_menu_at_hand(reach: str, prompt: Prompt) -> None:
    rig = listening() if reach == "message" else options()
    assert rig.send(TimerFired()) == [menu(prompt)]


def test_idle_at_the_pin_prompt() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    for _ in range(2):
        rig.done()
        assert rig.send(TimerFired()) == [ask(Prompt.ENTER_PIN)]
    rig.done()
    assert rig.send(TimerFired()) == [final(Prompt.GOODBYE, language=None)]


def test_a_timer_cancelled_too_late_is_ignored() -> None:
    rig = logged_in()
    rig.key("0")
    assert rig.send(TimerFired()) == []
    assert rig.state is AccessState.OPTIONS


def test_ignored_key_over_a_prompt_still_arms_the_idle_timer() -> None:
    rig = Rig()
    rig.start()
    rig.send(MailboxLoaded("201", VIEW))
    assert rig.key("*") == []
    assert rig.done(interrupted=True) == [SetTimer(10.0)]


# -- hang-up and stray events ----------------------------------------------------------


@pytest.mark.parametrize("where", ["loading", "pin", "menu", "message", "closing"])
def test_hang_up_finishes(where: str) -> None:
    if where in ("loading", "pin"):
        rig = Rig()
        rig.start()
        if where == "pin":
            rig.send(MailboxLoaded("201", VIEW))
    elif where == "menu":
        rig = logged_in()
    else:
        rig = logged_in()
        rig.key("1" if where == "message" else "#")
    assert rig.send(CallerHungUp()) == []
    assert rig.app.finished
    assert rig.send(DigitPressed("1"), PlaybackDone(False), TimerFired()) == []


def test_a_recording_nobody_asked_for_is_discarded() -> None:
    rig = logged_in()
    assert rig.send(RecordingDone(GREETING, 9.0, RecordEnd.DIGIT)) == [DiscardRecording(GREETING)]


def test_stray_answers_are_absorbed() -> None:
    rig = logged_in()
    assert rig.send(MessageStored("201", 3), PinChecked("201", True)) == []
    assert rig.state is AccessState.MAIN_MENU
    assert rig.start() == []


# -- with the standard announcer -------------------------------------------------------


def test_standard_announcer_counts_and_envelope() -> None:
    app = MailboxAccessApp("201", own_phone=True, wall_time=WALL)
    app.start(START)
    (played,) = app.handle(MailboxLoaded("201", box(M3, M1, M2, has_pin=False)), START)
    assert isinstance(played, Play)
    two = tuple(announce.say_number(2, "en"))
    assert played.items[: 3 + len(two)] == (Prompt.YOU_HAVE, *two, Prompt.NEW, Prompt.MESSAGES)
    app.handle(PlaybackDone(False), START)
    (_, played) = app.handle(DigitPressed("1"), START)
    assert isinstance(played, Play)
    when = tuple(announce.say_datetime(M1.received_at, "Europe/Berlin", "en", WALL))
    digits = tuple(announce.say_digits(M1.caller))
    assert played.items == (
        Prompt.FIRST,
        Prompt.MESSAGE,
        *when,
        Prompt.FROM_PHONE_NUMBER,
        *digits,
        M1.recording,
    )
    assert when[0] == Prompt.RECEIVED  # said by say_datetime, not added again


def test_own_phone_does_not_open_a_typed_mailbox_without_pin() -> None:
    rig = Rig(mailbox=None, own_phone=True)
    rig.start()
    rig.done()
    rig.keys("201#")
    assert rig.send(MailboxLoaded("201", box(has_pin=False))) == [ask(Prompt.ENTER_PIN)]
