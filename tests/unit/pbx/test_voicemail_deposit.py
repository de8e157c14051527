"""Voicemail deposit: greeting choices, skipping, the beep, recording, storing, hang-ups."""

from __future__ import annotations

import pytest

from appliance.pbx import announce
from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallerHungUp,
    DepositReason,
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
    StartMailboxAccess,
    StopPlayback,
    StoreMessage,
    TimerFired,
)
from appliance.pbx.prompt_names import Prompt
from appliance.pbx.voicemail.deposit import DepositApp, DepositState

UNAVAILABLE_GREETING = Recording("/data/greetings/201/unavailable.wav")
BUSY_GREETING = Recording("/data/greetings/201/busy.wav")
NAME = Recording("/data/greetings/201/name.wav")
TAKEN = Recording("/data/tmp/rec-1.wav")
ALL_GREETINGS = {
    GreetingKind.UNAVAILABLE: UNAVAILABLE_GREETING,
    GreetingKind.BUSY: BUSY_GREETING,
    GreetingKind.NAME: NAME,
}


class Words:
    """A stand-in announcer with predictable output (announce.py's shape)."""

    def say_number(self, n: int, language: str, /) -> list[str]:
        return [f"digits/{n}"]

    def say_digits(self, s: str, /) -> list[str]:
        return [f"digits/{c}" for c in s]

    def say_datetime(
        self, unix_time: float, timezone: str, language: str, now: float | None = None, /
    ) -> list[str]:
        return ["received", f"when/{unix_time:g}/{timezone}/{now}"]


def view(
    greetings: dict[GreetingKind, Recording] | None = None,
    messages: int = 0,
    max_messages: int = 100,
    language: str = "en",
) -> MailboxView:
    stored = tuple(
        MessageInfo(i, "0301", None, 1.7e9, 9.0, MessageStatus.NEW, False, Recording(f"/m{i}"))
        for i in range(messages)
    )
    return MailboxView(
        number="201",
        name="Alice",
        language=language,
        max_message_seconds=120.0,
        max_messages=max_messages,
        greetings=dict(greetings or {}),
        messages=stored,
    )


def app(reason: DepositReason = DepositReason.NO_ANSWER, mailbox: str = "201") -> DepositApp:
    return DepositApp(mailbox, reason, "0301234567", "Bob", 1.7e9, announcer=Words())


def feed(deposit: DepositApp, *events: AppEvent) -> list[AppAction]:
    actions: list[AppAction] = []
    for event in events:
        actions += deposit.handle(event, 0.0)
    return actions


def play(*items: PlayItem, language: str | None = "en") -> Play:
    return Play(items, barge_in=False, language=language)


def greeted(
    reason: DepositReason = DepositReason.NO_ANSWER, mailbox: MailboxView | None = None
) -> DepositApp:
    deposit = app(reason)
    assert deposit.start(0.0) == [LoadMailbox("201")]
    feed(deposit, MailboxLoaded("201", mailbox or view()))
    assert deposit.state is DepositState.GREETING
    return deposit


def recording(reason: DepositReason = DepositReason.NO_ANSWER) -> DepositApp:
    deposit = greeted(reason)
    assert feed(deposit, PlaybackDone(False)) == [play(Prompt.BEEP)]
    assert feed(deposit, PlaybackDone(False)) == [Record(120.0, 5.0, "#")]
    assert deposit.state is DepositState.RECORDING
    return deposit


def stored(seconds: float = 12.5) -> StoreMessage:
    return StoreMessage("201", TAKEN, seconds, "0301234567", "Bob")


# -- loading ---------------------------------------------------------------------------


def test_start_loads_the_mailbox_once() -> None:
    deposit = app()
    assert deposit.start(0.0) == [LoadMailbox("201")]
    assert deposit.start(1.0) == []
    assert not deposit.finished


def test_missing_mailbox_says_sorry_and_hangs_up() -> None:
    deposit = app()
    deposit.start(0.0)
    assert feed(deposit, MailboxLoaded("201", None)) == [
        play(Prompt.SORRY, Prompt.GOODBYE, language=None)
    ]
    assert not deposit.finished
    assert feed(deposit, PlaybackDone(False)) == [HangUp()]
    assert deposit.finished


def test_full_mailbox_says_so_and_hangs_up() -> None:
    deposit = app()
    deposit.start(0.0)
    actions = feed(deposit, MailboxLoaded("201", view(messages=3, max_messages=3)))
    assert actions == [play(Prompt.MAILBOX_FULL, Prompt.GOODBYE)]
    assert feed(deposit, PlaybackDone(False)) == [HangUp()]
    assert deposit.finished


def test_another_mailboxs_answer_is_ignored() -> None:
    deposit = app()
    deposit.start(0.0)
    assert feed(deposit, MailboxLoaded("202", view())) == []
    assert deposit.state is DepositState.LOADING


# -- greetings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "greetings", "expected"),
    [
        (DepositReason.NO_ANSWER, ALL_GREETINGS, [UNAVAILABLE_GREETING]),
        (DepositReason.UNAVAILABLE, ALL_GREETINGS, [UNAVAILABLE_GREETING]),
        (DepositReason.DIRECT, ALL_GREETINGS, [UNAVAILABLE_GREETING]),
        (DepositReason.BUSY, ALL_GREETINGS, [BUSY_GREETING]),
        (
            DepositReason.BUSY,
            {GreetingKind.UNAVAILABLE: UNAVAILABLE_GREETING, GreetingKind.NAME: NAME},
            [NAME, Prompt.IS_ON_THE_PHONE],
        ),
        (
            DepositReason.NO_ANSWER,
            {GreetingKind.BUSY: BUSY_GREETING, GreetingKind.NAME: NAME},
            [NAME, Prompt.IS_UNAVAILABLE],
        ),
        (
            DepositReason.NO_ANSWER,
            {},
            [Prompt.THE_PERSON_AT, "digits/2", "digits/0", "digits/1", Prompt.IS_UNAVAILABLE],
        ),
        (
            DepositReason.BUSY,
            {GreetingKind.UNAVAILABLE: UNAVAILABLE_GREETING},
            [Prompt.THE_PERSON_AT, "digits/2", "digits/0", "digits/1", Prompt.IS_ON_THE_PHONE],
        ),
    ],
)
def test_greeting_choice(
    reason: DepositReason, greetings: dict[GreetingKind, Recording], expected: list[PlayItem]
) -> None:
    deposit = app(reason)
    deposit.start(0.0)
    actions = feed(deposit, MailboxLoaded("201", view(greetings)))
    assert actions == [play(*expected, Prompt.LEAVE_MESSAGE)]


def test_prompts_are_in_the_mailboxs_language() -> None:
    deposit = app()
    deposit.start(0.0)
    actions = feed(deposit, MailboxLoaded("201", view(ALL_GREETINGS, language="fr")))
    assert actions == [play(UNAVAILABLE_GREETING, Prompt.LEAVE_MESSAGE, language="fr")]
    assert feed(deposit, PlaybackDone(False)) == [play(Prompt.BEEP, language="fr")]


def test_a_mailbox_named_otherwise_than_by_keys_is_not_spelled() -> None:
    deposit = DepositApp("sales", DepositReason.NO_ANSWER, "0301", None, 0.0, Words())
    deposit.start(0.0)
    actions = deposit.handle(MailboxLoaded("sales", view()), 0.0)
    assert actions == [play(Prompt.IS_UNAVAILABLE, Prompt.LEAVE_MESSAGE)]


def test_standard_announcer_spells_the_mailbox() -> None:
    deposit = DepositApp("201", DepositReason.BUSY, "0301", None, 0.0)
    deposit.start(0.0)
    (greeting,) = deposit.handle(MailboxLoaded("201", view()), 0.0)
    spelled = tuple(announce.say_digits("201"))
    assert greeting == play(
        Prompt.THE_PERSON_AT, *spelled, Prompt.IS_ON_THE_PHONE, Prompt.LEAVE_MESSAGE
    )


# -- keys during the greeting ----------------------------------------------------------


def test_pound_skips_to_the_beep() -> None:
    deposit = greeted()
    assert feed(deposit, DigitPressed("#")) == [StopPlayback()]
    assert deposit.state is DepositState.SKIPPING
    assert feed(deposit, DigitPressed("#")) == []  # a second press changes nothing
    assert feed(deposit, PlaybackDone(True)) == [play(Prompt.BEEP)]
    assert feed(deposit, PlaybackDone(False)) == [Record(120.0, 5.0, "#")]


def test_pound_racing_the_greetings_end_still_beeps_once() -> None:
    deposit = greeted()
    feed(deposit, DigitPressed("#"))
    assert feed(deposit, PlaybackDone(False)) == [play(Prompt.BEEP)]  # ran out meanwhile
    assert deposit.state is DepositState.BEEP


def test_star_hands_over_to_the_owners_login() -> None:
    deposit = greeted()
    assert feed(deposit, DigitPressed("*")) == [StopPlayback(), StartMailboxAccess("201")]
    assert deposit.finished
    assert feed(deposit, PlaybackDone(True)) == []


@pytest.mark.parametrize("digit", ["1", "5", "0", "9", "A"])
def test_other_digits_during_the_greeting_are_ignored(digit: str) -> None:
    deposit = greeted()
    assert feed(deposit, DigitPressed(digit)) == []
    assert deposit.state is DepositState.GREETING
    assert feed(deposit, PlaybackDone(False)) == [play(Prompt.BEEP)]


def test_the_beep_cannot_be_skipped() -> None:
    deposit = greeted()
    feed(deposit, PlaybackDone(False))
    assert feed(deposit, DigitPressed("#"), DigitPressed("*")) == []
    assert deposit.state is DepositState.BEEP


# -- recording -------------------------------------------------------------------------


def test_message_is_stored_then_thanked_and_hung_up() -> None:
    deposit = recording()
    assert feed(deposit, DigitPressed("#")) == []  # the engine's stop digit
    actions = feed(deposit, RecordingDone(TAKEN, 12.5, RecordEnd.DIGIT))
    assert actions == [stored()]  # "saved" only once the store says so
    assert deposit.state is DepositState.STORING
    assert feed(deposit, MessageStored("201", 7)) == [play(Prompt.MESSAGE_SAVED, Prompt.GOODBYE)]
    assert not deposit.finished
    assert feed(deposit, PlaybackDone(False)) == [HangUp()]
    assert deposit.finished


def test_a_message_the_store_could_not_keep_is_not_called_saved() -> None:
    deposit = recording()
    feed(deposit, RecordingDone(TAKEN, 12.5, RecordEnd.SILENCE))
    assert feed(deposit, MessageStored("201", None)) == [play(Prompt.SORRY, Prompt.GOODBYE)]


def test_hanging_up_while_the_store_works_ends_the_application() -> None:
    deposit = recording()
    feed(deposit, RecordingDone(TAKEN, 12.5, RecordEnd.SILENCE))
    assert feed(deposit, CallerHungUp()) == []
    assert deposit.finished


@pytest.mark.parametrize("end", [RecordEnd.SILENCE, RecordEnd.MAX_LENGTH, RecordEnd.STOPPED])
def test_other_endings_store_too(end: RecordEnd) -> None:
    deposit = recording()
    actions = feed(deposit, RecordingDone(TAKEN, 120.0, end))
    assert actions == [stored(120.0)]


def test_busy_deposit_records_the_same_way() -> None:
    deposit = recording(DepositReason.BUSY)
    assert feed(deposit, RecordingDone(TAKEN, 3.0, RecordEnd.SILENCE))[0] == stored(3.0)


def test_too_short_is_discarded_and_the_caller_told() -> None:
    deposit = recording()
    actions = feed(deposit, RecordingDone(TAKEN, 0.99, RecordEnd.DIGIT))
    assert actions == [DiscardRecording(TAKEN), play(Prompt.TOO_SHORT, Prompt.GOODBYE)]
    assert feed(deposit, PlaybackDone(False)) == [HangUp()]
    assert deposit.finished


def test_exactly_one_second_is_a_message() -> None:
    deposit = recording()
    assert feed(deposit, RecordingDone(TAKEN, 1.0, RecordEnd.DIGIT))[0] == stored(1.0)


def test_too_short_by_hang_up_is_discarded_silently() -> None:
    deposit = recording()
    assert feed(deposit, RecordingDone(TAKEN, 0.3, RecordEnd.HANG_UP)) == [DiscardRecording(TAKEN)]
    assert deposit.finished


def test_hang_up_reported_before_the_recording_ends_keeps_the_message() -> None:
    deposit = recording()
    assert feed(deposit, CallerHungUp()) == []
    assert not deposit.finished  # the recording is still to come
    assert feed(deposit, RecordingDone(TAKEN, 7.0, RecordEnd.HANG_UP)) == [stored(7.0)]
    assert deposit.finished


def test_hang_up_reported_after_the_recording_ends_keeps_the_message() -> None:
    deposit = recording()
    assert feed(deposit, RecordingDone(TAKEN, 7.0, RecordEnd.HANG_UP)) == [stored(7.0)]
    assert deposit.finished
    assert feed(deposit, CallerHungUp()) == []


def test_hang_up_racing_a_silence_ending_plays_nothing() -> None:
    deposit = recording()
    feed(deposit, CallerHungUp())
    assert feed(deposit, RecordingDone(TAKEN, 7.0, RecordEnd.SILENCE)) == [stored(7.0)]
    assert deposit.finished


@pytest.mark.parametrize("when", ["loading", "greeting", "beep", "closing"])
def test_hang_up_outside_recording_finishes_at_once(when: str) -> None:
    deposit = app()
    deposit.start(0.0)
    if when != "loading":
        feed(deposit, MailboxLoaded("201", view()))
    if when in ("beep", "closing"):
        feed(deposit, PlaybackDone(False))
    if when == "closing":
        feed(deposit, PlaybackDone(False), RecordingDone(TAKEN, 5.0, RecordEnd.DIGIT))
        feed(deposit, MessageStored("201", 1))
        assert deposit.state is DepositState.CLOSING
    assert feed(deposit, CallerHungUp()) == []
    assert deposit.finished


def test_a_recording_nobody_asked_for_is_discarded() -> None:
    deposit = greeted()
    feed(deposit, CallerHungUp())
    assert feed(deposit, RecordingDone(TAKEN, 4.0, RecordEnd.HANG_UP)) == [DiscardRecording(TAKEN)]


def test_unrelated_events_are_absorbed() -> None:
    deposit = recording()
    assert feed(deposit, TimerFired(), PinChecked("201", True), PlaybackDone(False)) == []
    assert deposit.state is DepositState.RECORDING
