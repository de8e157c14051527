"""Hypothesis: the voicemail applications survive any event order, keep one prompt at a
time against a faithful engine, never leak a recording; the RFC 3842 body parses or
raises ValueError and round-trips what it writes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from hypothesis import given
from hypothesis import strategies as st

from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallApp,
    CallerHungUp,
    CancelTimer,
    CheckPin,
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
    Record,
    RecordEnd,
    Recording,
    RecordingDone,
    SaveGreeting,
    SetTimer,
    StartMailboxAccess,
    StopPlayback,
    StoreMessage,
    TimerFired,
    TransferFailed,
)
from appliance.pbx.voicemail.access import MailboxAccessApp
from appliance.pbx.voicemail.deposit import DepositApp
from appliance.pbx.voicemail.mwi import MAX_COUNT, MessageSummary, format_summary, parse_summary


class Words:
    def say_number(self, n: int, language: str, /) -> list[str]:
        return [f"digits/{n}"]

    def say_digits(self, s: str, /) -> list[str]:
        return [f"digits/{c}" for c in s]

    def say_datetime(
        self, unix_time: float, timezone: str, language: str, now: float | None = None, /
    ) -> list[str]:
        return ["received", "when"]


def message(i: int, status: MessageStatus, urgent: bool = False) -> MessageInfo:
    caller = ("0301234567", "anonymous", "", "+49 (30) 12")[i % 4]
    return MessageInfo(i, caller, None, 1.7e9 + i, 5.0, status, urgent, Recording(f"/m/{i}"))


MESSAGES = st.lists(
    st.builds(message, st.integers(1, 50), st.sampled_from(MessageStatus), st.booleans()),
    max_size=6,
    unique_by=lambda m: m.id,
).map(tuple)
GREETINGS = st.dictionaries(
    st.sampled_from(GreetingKind), st.builds(Recording, st.sampled_from(["/g/1", "/g/2"]))
)
VIEWS = st.builds(
    MailboxView,
    number=st.just("201"),
    name=st.none(),
    language=st.sampled_from(["en", "fr"]),
    max_message_seconds=st.just(120.0),
    max_messages=st.integers(1, 8),
    greetings=GREETINGS,
    messages=MESSAGES,
    has_pin=st.booleans(),
)
RECORDINGS = st.builds(Recording, st.sampled_from(["/r/1", "/r/2"]))
SECONDS = st.floats(0.0, 200.0, allow_nan=False)
KEYS = st.sampled_from([*"0123456789*#", "A", ""])
EVENTS = st.one_of(
    st.builds(DigitPressed, KEYS),
    st.builds(PlaybackDone, st.booleans()),
    st.builds(RecordingDone, RECORDINGS, SECONDS, st.sampled_from(RecordEnd)),
    st.just(TimerFired()),
    st.builds(TransferFailed, st.just("201"), st.booleans()),
    st.builds(MailboxLoaded, st.sampled_from(["201", "202"]), st.none() | VIEWS),
    st.builds(PinChecked, st.sampled_from(["201", "202"]), st.booleans()),
    st.builds(MessageStored, st.just("201"), st.none() | st.integers(0, 9)),
    st.just(CallerHungUp()),
)


def deposit_app(reason: DepositReason) -> DepositApp:
    return DepositApp("201", reason, "0301", None, 1.7e9, announcer=Words())


def access_app(mailbox: str | None, own_phone: bool) -> MailboxAccessApp:
    return MailboxAccessApp(mailbox, own_phone=own_phone, wall_time=1.7e9, announcer=Words())


APPS = st.one_of(
    st.builds(deposit_app, st.sampled_from(DepositReason)),
    st.builds(access_app, st.sampled_from(["201", None]), st.booleans()),
)


def kept_or_discarded(event: AppEvent, actions: list[AppAction]) -> bool:
    """Each RecordingDone is answered by exactly one keep or discard of its file."""
    if not isinstance(event, RecordingDone):
        return True
    answers = [
        a
        for a in actions
        if isinstance(a, StoreMessage | SaveGreeting | DiscardRecording)
        and a.recording == event.recording
    ]
    return len(answers) == 1


# -- any order of events ---------------------------------------------------------------


@given(app=APPS, events=st.lists(EVENTS, max_size=40))
def test_any_event_sequence_is_absorbed(app: CallApp, events: list[AppEvent]) -> None:
    app.start(0.0)
    for i, event in enumerate(events):
        actions = app.handle(event, float(i))
        assert kept_or_discarded(event, actions), (event, actions)


@given(
    reason=st.sampled_from(DepositReason),
    before=st.lists(EVENTS, max_size=25),
    done=st.builds(RecordingDone, RECORDINGS, SECONDS, st.sampled_from(RecordEnd)),
    hang_up_first=st.booleans(),
)
def test_deposit_finishes_after_hang_up_and_recording_end(
    reason: DepositReason, before: list[AppEvent], done: RecordingDone, hang_up_first: bool
) -> None:
    app = deposit_app(reason)
    app.start(0.0)
    for event in before:
        app.handle(event, 0.0)
    ending: list[AppEvent] = [CallerHungUp(), done] if hang_up_first else [done, CallerHungUp()]
    for event in ending:
        app.handle(event, 0.0)
    assert app.finished


# -- against a faithful engine ---------------------------------------------------------


@dataclass
class Engine:
    """Plays, records, times and answers store requests as the real edges promise."""

    app: CallApp
    views: dict[str, MailboxView | None]
    play: Play | None = None  # its PlaybackDone not yet delivered
    stopped: bool = False  # that Play was stopped; its PlaybackDone is in the inbox
    timer: bool = False
    recording: bool = False
    ended: bool = False  # HangUp or a hand-over issued
    hung_up: bool = False
    inbox: deque[AppEvent] = field(default_factory=deque)
    store: deque[AppEvent] = field(default_factory=deque)
    takes: int = 0

    def deliver(self, event: AppEvent) -> None:
        if isinstance(event, PlaybackDone):
            self.play, self.stopped = None, False
        actions = self.app.handle(event, 0.0)
        assert kept_or_discarded(event, actions), (event, actions)
        self.carry_out(actions)
        while self.inbox:
            self.deliver(self.inbox.popleft())

    def carry_out(self, actions: list[AppAction]) -> None:
        for action in actions:
            if isinstance(action, Play):
                assert self.play is None, "a Play before the previous one's PlaybackDone"
                self.play = action
            elif isinstance(action, StopPlayback) and self.play and not self.stopped:
                self.stopped = True
                self.inbox.append(PlaybackDone(True))
            elif isinstance(action, SetTimer):
                self.timer = True
            elif isinstance(action, CancelTimer):
                self.timer = False
            elif isinstance(action, Record):
                assert not self.recording
                self.recording = True
            elif isinstance(action, LoadMailbox):
                self.store.append(MailboxLoaded(action.mailbox, self.views.get(action.mailbox)))
            elif isinstance(action, CheckPin):
                self.store.append(PinChecked(action.mailbox, action.pin == "1234"))
            elif isinstance(action, SaveGreeting):
                self.store.append(MailboxLoaded(action.mailbox, self.views.get(action.mailbox)))
            elif isinstance(action, StoreMessage):
                self.store.append(MessageStored(action.mailbox, 1))
            elif isinstance(action, HangUp | StartMailboxAccess):
                self.ended = True

    def step(self, choice: tuple[str, str, bool]) -> None:
        kind, key, flag = choice
        if kind == "key":
            self.press(key, flag)
        elif kind == "pin":
            for digit in "1234#":
                self.press(digit, flag)
        elif kind == "finish" and self.play is not None and not self.stopped:
            self.deliver(PlaybackDone(False))
        elif kind == "timer" and self.timer:
            self.timer = False
            self.deliver(TimerFired())
        elif kind == "store" and self.store:
            self.deliver(self.store.popleft())
        elif kind == "record" and self.recording:
            self.recording = False
            self.takes += 1
            end = RecordEnd.DIGIT if flag else RecordEnd.SILENCE
            self.deliver(RecordingDone(Recording(f"/r/{self.takes}"), float(len(key)), end))

    def press(self, key: str, done_first: bool) -> None:
        if self.play is not None and self.play.barge_in and not self.stopped:
            self.stopped = True  # the engine stops the queue for the key
            pair: list[AppEvent] = [PlaybackDone(True), DigitPressed(key)]
            for event in pair if done_first else reversed(pair):
                self.deliver(event)
        else:
            self.deliver(DigitPressed(key))

    def hang_up(self) -> None:
        self.hung_up = True
        self.deliver(CallerHungUp())
        if self.recording:
            self.recording = False
            self.deliver(RecordingDone(Recording("/r/last"), 4.0, RecordEnd.HANG_UP))


CHOICES = st.tuples(
    st.sampled_from(["key", "pin", "finish", "finish", "timer", "store", "store", "record"]),
    st.sampled_from([*"0123456789*#", "1234"]),
    st.booleans(),
)


def run(engine: Engine, choices: list[tuple[str, str, bool]], hang_up: bool) -> None:
    for choice in choices:
        if engine.ended:
            break
        engine.step(choice)
    if engine.ended and not engine.recording:
        # HangUp comes only after the last prompt; a hand-over ends the application too
        assert engine.app.finished
    if hang_up or engine.ended:
        engine.hang_up()
        assert engine.app.finished


@given(
    app=APPS,
    view=st.none() | VIEWS,
    choices=st.lists(CHOICES, max_size=60),
    hang_up=st.booleans(),
)
def test_one_prompt_at_a_time_and_a_clean_end(
    app: CallApp, view: MailboxView | None, choices: list[tuple[str, str, bool]], hang_up: bool
) -> None:
    engine = Engine(app, {"201": view, "202": view})
    engine.carry_out(app.start(0.0))
    run(engine, choices, hang_up)


@given(view=VIEWS, choices=st.lists(CHOICES, max_size=80), hang_up=st.booleans())
def test_logged_in_sessions_keep_one_prompt_at_a_time(
    view: MailboxView, choices: list[tuple[str, str, bool]], hang_up: bool
) -> None:
    app = access_app("201", own_phone=True)
    engine = Engine(app, {"201": replace(view, has_pin=False)})
    engine.carry_out(app.start(0.0))
    engine.step(("store", "", False))  # straight in: own phone, no PIN
    run(engine, choices, hang_up)


# -- the RFC 3842 body -----------------------------------------------------------------

SUMMARY_LINES = st.sampled_from(
    [
        "Messages-Waiting: yes",
        "Messages-Waiting: no",
        "messages-waiting:YES",
        "Message-Account: sip:alice@vmail.example.com",
        "Message-Account:",
        "Voice-Message: 4/8 (1/2)",
        "Voice-Message: 4/8",
        "Voice-Message: 4 / 8 ( 1 / 2 )",
        "Voice-Message: 99999999999/0",
        "Voice-Message: 4/",
        "Fax-Message: 1/0",
        "Subject: carpool tomorrow?",
        "  folded",
        "",
        "garbage",
    ]
)
LINE_ENDS = st.sampled_from(["\r\n", "\n", "\r"])
BODIES = st.one_of(
    st.text(max_size=300),
    st.tuples(st.lists(SUMMARY_LINES, max_size=10), LINE_ENDS).map(lambda t: t[1].join(t[0])),
)


@given(text=BODIES)
def test_parse_gives_a_summary_or_value_error(text: str) -> None:
    try:
        summary = parse_summary(text)
    except ValueError:
        return
    assert parse_summary(format_summary(summary)) == summary


COUNTS = st.integers(0, MAX_COUNT)
ACCOUNTS = st.none() | st.from_regex(r"sips?:[a-z0-9*+]{1,12}@[a-z0-9.-]{1,20}", fullmatch=True)


@given(summary=st.builds(MessageSummary, st.booleans(), COUNTS, COUNTS, COUNTS, COUNTS, ACCOUNTS))
def test_format_parse_round_trip(summary: MessageSummary) -> None:
    text = format_summary(summary)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert parse_summary(text) == summary
