"""Dial-in mailbox access: log in, hear and sort messages, record greetings, change the PIN.

A sans-IO ``CallApp``. ``*97`` builds it with the caller's own mailbox, ``*98`` with
none (it asks MAILBOX_NUMBER: digits until ``#`` or 3 s without one); a caller who
presses ``*`` during a deposit greeting gets it with that mailbox.

Login: ENTER_PIN, digits until ``#`` or 4 s without one, CheckPin. A wrong PIN plays
LOGIN_INCORRECT and asks again (for the mailbox too when the caller typed it); the third
failure says GOODBYE and hangs up. A mailbox without a PIN opens without one only to its
own phone (``own_phone``); anyone else is refused as if the PIN were wrong. Until the
login succeeds nothing the caller hears depends on whether the mailbox typed exists.

Keys once logged in (after "you have N new messages and M old messages")::

    main menu      1 new messages, then old    2 old messages    0 options    # * goodbye
    a message      5 replay   4 previous   6 next   7 delete   9 save   3 envelope
                   * main menu
    options        1 unavailable greeting   2 busy greeting   3 name   4 PIN   * back

A message plays as FIRST/NEXT/LAST MESSAGE, "received <date>" (announce.say_datetime),
FROM_PHONE_NUMBER <digits> (or UNKNOWN_CALLER), the recording, then MESSAGE_MENU; any
key cuts in. A NEW message becomes READ once heard to its end or left with 4, 6 or *.
No key for 10 s replays the menu or question; the third time the caller is told
GOODBYE.

One Play is outstanding at a time: a key that cuts a prompt short is acted on at once,
but the next Play waits for the cut prompt's PlaybackDone, so every PlaybackDone answers
the Play it belongs to whichever of the digit and the PlaybackDone comes first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

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
    PinChecked,
    Play,
    PlaybackDone,
    PlayItem,
    Record,
    RecordEnd,
    RecordingDone,
    SaveGreeting,
    SetMessageStatus,
    SetPin,
    SetTimer,
    TimerFired,
)
from appliance.pbx.prompt_names import Prompt
from appliance.pbx.voicemail import Announcer, default_announcer

log = logging.getLogger(__name__)

DIGITS: Final = "0123456789"
# A caller number say_digits can speak: digits, with the punctuation it passes over.
_PHONE_NUMBER: Final = re.compile(r"[0-9+\-() .]*[0-9][0-9+\-() .]*")
OLD: Final = (MessageStatus.READ, MessageStatus.SAVED)


@dataclass(frozen=True, slots=True)
class AccessConfig:
    max_login_tries: int = 3
    mailbox_digit_timeout: float = 3.0  # after a digit of the mailbox number
    pin_digit_timeout: float = 4.0  # after a digit of a PIN
    idle_timeout: float = 10.0  # no key at all after a menu or question
    max_idle: int = 3  # idle timeouts in a row before goodbye
    max_digits: int = 16  # longer entries are cut, not grown without bound
    greeting_max_seconds: float = 60.0
    greeting_silence_seconds: float = 3.0
    min_recording_seconds: float = 1.0


DEFAULT_CONFIG: Final = AccessConfig()


class AccessState(Enum):
    LOADING = "loading"  # LoadMailbox before the PIN: does it exist, has it a PIN
    ASK_MAILBOX = "ask-mailbox"
    ASK_PIN = "ask-pin"
    CHECKING_PIN = "checking-pin"
    OPENING = "opening"  # logged in; LoadMailbox for the counts
    MAIN_MENU = "main-menu"
    MESSAGE = "message"  # header, envelope and recording playing
    MESSAGE_MENU = "message-menu"
    OPTIONS = "options"
    GREETING_PROMPT = "greeting-prompt"  # RECORD_... and BEEP playing
    GREETING_RECORDING = "greeting-recording"
    NEW_PIN = "new-pin"
    REENTER_PIN = "reenter-pin"
    CLOSING = "closing"  # last prompt playing; HangUp when it ends
    DONE = "done"


S = AccessState
COLLECTING: Final = frozenset({S.ASK_MAILBOX, S.ASK_PIN, S.NEW_PIN, S.REENTER_PIN})
MESSAGE_STATES: Final = frozenset({S.MESSAGE, S.MESSAGE_MENU})
# What a state asks again when the caller has said nothing for idle_timeout.
IDLE_PROMPT: Final[dict[AccessState, Prompt]] = {
    S.ASK_MAILBOX: Prompt.MAILBOX_NUMBER,
    S.ASK_PIN: Prompt.ENTER_PIN,
    S.NEW_PIN: Prompt.NEW_PIN,
    S.REENTER_PIN: Prompt.REENTER_PIN,
    S.MAIN_MENU: Prompt.MAIN_MENU,
    S.MESSAGE_MENU: Prompt.MESSAGE_MENU,
    S.OPTIONS: Prompt.OPTIONS_MENU,
}
# The options menu's keys are those the sound set's vm-options recording names:
# 1/2/3 greetings, 5 password (4, a temporary greeting, is not offered), * back.
PIN_KEY: Final = "5"
GREETING_KEYS: Final[dict[str, tuple[GreetingKind, Prompt]]] = {
    "1": (GreetingKind.UNAVAILABLE, Prompt.RECORD_UNAVAILABLE),
    "2": (GreetingKind.BUSY, Prompt.RECORD_BUSY),
    "3": (GreetingKind.NAME, Prompt.RECORD_NAME),
}


class MailboxAccessApp:
    """The mailbox menu for ``mailbox`` (None: ask which). ``own_phone``: the caller is
    the mailbox's own authenticated extension, so a mailbox without a PIN opens.
    ``wall_time`` is the Unix time at ``start``, so dates can be said relative to today."""

    def __init__(
        self,
        mailbox: str | None,
        *,
        own_phone: bool = False,
        language: str | None = None,
        wall_time: float | None = None,
        config: AccessConfig = DEFAULT_CONFIG,
        announcer: Announcer | None = None,
    ) -> None:
        self.state = S.LOADING if mailbox is not None else S.ASK_MAILBOX
        self.mailbox = mailbox
        self._asks_mailbox = mailbox is None
        self._own_phone = own_phone and mailbox is not None  # never for a typed mailbox
        self._default_language = language
        self._wall_time = wall_time
        self._config = config
        self._announcer = announcer if announcer is not None else default_announcer()
        self._start_now: float | None = None
        self._now = 0.0
        self._view: MailboxView | None = None
        self._logged_in = False
        self._digits = ""
        self._new_pin = ""
        self._tries = 0
        self._idle = 0
        self._timer_armed = False
        self._caller_gone = False
        self._greeting: GreetingKind | None = None
        # the message folder being listened to: a snapshot, with our own status changes
        self._folder: list[MessageInfo] = []
        self._index = 0
        self._status: dict[int, MessageStatus] = {}
        # playback bookkeeping (see the module docstring)
        self._playing = False
        self._barge = False
        self._stale = False
        self._held: Play | None = None

    @property
    def finished(self) -> bool:
        return self.state is S.DONE

    def start(self, now: float) -> list[AppAction]:
        if self._start_now is not None:
            return []
        self._start_now = self._now = now
        if self.mailbox is None:
            return self._play([Prompt.MAILBOX_NUMBER])
        return [LoadMailbox(self.mailbox)]

    def handle(self, event: AppEvent, now: float) -> list[AppAction]:
        self._now = now
        if isinstance(event, RecordingDone):
            return self._recording_done(event)
        if self.state is S.DONE:
            return []
        if isinstance(event, CallerHungUp):
            return self._hung_up()
        if isinstance(event, PlaybackDone):
            return self._playback_done(event)
        if isinstance(event, DigitPressed):
            return self._digit(event.digit)
        if isinstance(event, TimerFired):
            return self._timer_fired()
        if isinstance(event, MailboxLoaded):
            return self._loaded(event)
        if isinstance(event, PinChecked):
            return self._pin_checked(event)
        return []  # MessageStored, TransferFailed: nothing this application asked for

    # -- call and media events -------------------------------------------------------

    def _hung_up(self) -> list[AppAction]:
        self._caller_gone = True
        if self.state is not S.GREETING_RECORDING:  # else wait for the file to settle
            self.state = S.DONE
        return []

    def _playback_done(self, event: PlaybackDone) -> list[AppAction]:
        self._playing = False
        if self._stale or self._held is not None:
            # A prompt already superseded by a key: its end is no news; start the next.
            self._stale = False
            held, self._held = self._held, None
            if held is not None:
                self._playing, self._barge = True, held.barge_in
                return [held]
            if self.state in IDLE_PROMPT and not self._timer_armed:
                return self._arm(self._config.idle_timeout)  # cut by a key that did nothing
            return []
        return self._prompt_ended(event.interrupted)

    def _prompt_ended(self, interrupted: bool) -> list[AppAction]:
        if self.state is S.CLOSING:
            self.state = S.DONE
            return [HangUp()]
        if self.state is S.GREETING_PROMPT:
            self.state = S.GREETING_RECORDING
            return [
                Record(
                    max_seconds=self._config.greeting_max_seconds,
                    silence_seconds=self._config.greeting_silence_seconds,
                    stop_digits="#",
                )
            ]
        if self.state is S.MESSAGE:
            self.state = S.MESSAGE_MENU
            if interrupted:  # cut by a key not yet reported: wait for it
                return self._arm(self._config.idle_timeout)
            return self._mark_heard() + self._play([Prompt.MESSAGE_MENU])
        if self.state in IDLE_PROMPT:
            return self._arm(self._config.idle_timeout)
        return []

    def _timer_fired(self) -> list[AppAction]:
        if not self._timer_armed:
            return []  # cancelled, but already on its way
        self._timer_armed = False
        if self.state in COLLECTING and self._digits:
            return self._submit()
        prompt = IDLE_PROMPT.get(self.state)
        if prompt is None:
            return []
        self._idle += 1
        if self._idle >= self._config.max_idle:
            log.info("mailbox %s: caller idle, hanging up", self.mailbox)
            return self._close([Prompt.GOODBYE])
        return self._play([prompt])

    def _recording_done(self, event: RecordingDone) -> list[AppAction]:
        kind = self._greeting
        if self.state is not S.GREETING_RECORDING or kind is None or self.mailbox is None:
            return [DiscardRecording(event.recording)]  # not asked for: free the file
        self._greeting = None
        gone = self._caller_gone or event.end is RecordEnd.HANG_UP
        if event.seconds < self._config.min_recording_seconds:
            actions: list[AppAction] = [DiscardRecording(event.recording)]
            reply = [Prompt.TOO_SHORT, Prompt.OPTIONS_MENU]
        else:
            actions = [SaveGreeting(self.mailbox, kind, event.recording)]
            reply = [Prompt.SAVED, Prompt.OPTIONS_MENU]
        if gone:
            self.state = S.DONE
            return actions
        self.state = S.OPTIONS
        return actions + self._play(reply)

    # -- store answers ---------------------------------------------------------------

    def _loaded(self, event: MailboxLoaded) -> list[AppAction]:
        if event.mailbox != self.mailbox:
            return []
        if self.state is S.LOADING:
            return self._pre_login(event.view)
        if self.state is S.OPENING:
            if event.view is None:
                return self._close([Prompt.SORRY, Prompt.GOODBYE])  # removed meanwhile
            return self._open(event.view)
        if self._logged_in and event.view is not None:
            self._view = event.view  # after SaveGreeting: the box as it is now
        return []

    def _pre_login(self, view: MailboxView | None) -> list[AppAction]:
        self._view = view
        if view is None and not self._asks_mailbox:
            return self._close([Prompt.NO_SUCH_MAILBOX, Prompt.GOODBYE])
        if view is not None and not view.has_pin and self._own_phone:
            return self._open(view)
        # A typed mailbox that does not exist still gets asked for a PIN, so that the
        # answer does not tell which mailboxes exist.
        return self._ask(S.ASK_PIN, [Prompt.ENTER_PIN])

    def _pin_checked(self, event: PinChecked) -> list[AppAction]:
        if self.state is not S.CHECKING_PIN or event.mailbox != self.mailbox:
            return []
        if not event.ok or self.mailbox is None:
            return self._login_failed()
        self.state = S.OPENING
        return [LoadMailbox(self.mailbox)]

    # -- keys ------------------------------------------------------------------------

    def _digit(self, digit: str) -> list[AppAction]:
        if self._playing and self._barge:
            self._stale = True  # the engine stopped the prompt for this key
        self._idle = 0
        if self.state in COLLECTING:
            return self._collect(digit)
        if self.state is S.MAIN_MENU:
            return self._disarm() + self._main_menu_key(digit)
        if self.state in MESSAGE_STATES:
            return self._disarm() + self._message_key(digit)
        if self.state is S.OPTIONS:
            return self._disarm() + self._options_key(digit)
        return []  # loading, checking, recording, closing: keys mean nothing

    def _collect(self, digit: str) -> list[AppAction]:
        if digit == "#":
            return self._disarm() + self._submit()
        if digit == "*" and self.state in (S.NEW_PIN, S.REENTER_PIN):
            return self._disarm() + self._to(S.OPTIONS, [Prompt.OPTIONS_MENU])
        if len(digit) != 1 or digit not in DIGITS:
            return []
        if len(self._digits) < self._config.max_digits:
            self._digits += digit
        timeout = self._config.pin_digit_timeout
        if self.state is S.ASK_MAILBOX:
            timeout = self._config.mailbox_digit_timeout
        return self._arm(timeout)

    def _submit(self) -> list[AppAction]:
        entry, self._digits = self._digits, ""
        if self.state is S.ASK_MAILBOX:
            if not entry:
                return self._login_failed()
            self.mailbox = entry
            self.state = S.LOADING
            return [LoadMailbox(entry)]
        if self.state is S.ASK_PIN:
            view = self._view
            if not entry or view is None or not view.has_pin or self.mailbox is None:
                return self._login_failed()
            self.state = S.CHECKING_PIN
            return [CheckPin(self.mailbox, entry)]
        if self.state is S.NEW_PIN:
            if not entry:
                return self._ask(S.NEW_PIN, [Prompt.INVALID, Prompt.NEW_PIN])
            self._new_pin = entry
            return self._ask(S.REENTER_PIN, [Prompt.REENTER_PIN])
        if self.state is S.REENTER_PIN and self.mailbox is not None:
            if entry != self._new_pin:
                return self._ask(S.NEW_PIN, [Prompt.PIN_MISMATCH, Prompt.NEW_PIN])
            log.info("mailbox %s: PIN changed by phone", self.mailbox)
            set_pin: list[AppAction] = [SetPin(self.mailbox, entry)]
            return set_pin + self._to(S.OPTIONS, [Prompt.PIN_CHANGED, Prompt.OPTIONS_MENU])
        return []

    def _main_menu_key(self, digit: str) -> list[AppAction]:
        if digit in ("1", "2"):
            messages = [m for m in self._messages() if self._status_of(m) in OLD]
            if digit == "1":
                new = [m for m in self._messages() if self._status_of(m) is MessageStatus.NEW]
                messages = new + messages
            if not messages:
                return self._to(S.MAIN_MENU, [Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU])
            self._folder = messages
            return self._present(0, [])
        if digit == "0":
            return self._to(S.OPTIONS, [Prompt.OPTIONS_MENU])
        if digit == "#":
            return self._close([Prompt.GOODBYE])
        if digit == "*":  # "press star for help": the menu again
            return self._to(S.MAIN_MENU, [Prompt.MAIN_MENU])
        return self._to(S.MAIN_MENU, [Prompt.INVALID, Prompt.MAIN_MENU])

    def _message_key(self, digit: str) -> list[AppAction]:
        message = self._folder[self._index]
        if digit == "5":
            return self._to(S.MESSAGE, [message.recording])
        if digit == "3":
            return self._to(S.MESSAGE_MENU, [*self._envelope(message), Prompt.MESSAGE_MENU])
        if digit == "4":
            before = self._live_index(range(self._index - 1, -1, -1))
            return self._mark_heard() + self._present(self._index if before is None else before, [])
        if digit == "6":
            return self._mark_heard() + self._advance([])
        if digit in ("7", "9"):
            status = MessageStatus.DELETED if digit == "7" else MessageStatus.SAVED
            return self._set_status(message, status) + self._advance(
                [Prompt.DELETED if digit == "7" else Prompt.SAVED]
            )
        if digit == "*":
            return self._mark_heard() + self._to(S.MAIN_MENU, [Prompt.MAIN_MENU])
        return self._to(S.MESSAGE_MENU, [Prompt.INVALID, Prompt.MESSAGE_MENU])

    def _options_key(self, digit: str) -> list[AppAction]:
        if digit in GREETING_KEYS:
            self._greeting, prompt = GREETING_KEYS[digit]
            return self._to(S.GREETING_PROMPT, [prompt, Prompt.BEEP], barge_in=False)
        if digit == PIN_KEY:
            return self._ask(S.NEW_PIN, [Prompt.NEW_PIN])
        if digit == "*":
            return self._to(S.MAIN_MENU, [Prompt.MAIN_MENU])
        return self._to(S.OPTIONS, [Prompt.INVALID, Prompt.OPTIONS_MENU])

    # -- login and messages ----------------------------------------------------------

    def _login_failed(self) -> list[AppAction]:
        self._tries += 1
        log.info("mailbox %s: login failed (%d)", self.mailbox, self._tries)
        if self._tries >= self._config.max_login_tries:
            return self._close([Prompt.LOGIN_INCORRECT, Prompt.GOODBYE])
        if self._asks_mailbox:
            self.mailbox, self._view = None, None
            return self._ask(S.ASK_MAILBOX, [Prompt.LOGIN_INCORRECT, Prompt.MAILBOX_NUMBER])
        return self._ask(S.ASK_PIN, [Prompt.LOGIN_INCORRECT, Prompt.ENTER_PIN])

    def _open(self, view: MailboxView) -> list[AppAction]:
        self._view = view
        self._logged_in = True
        self._tries = 0
        items: list[PlayItem] = [Prompt.YOU_HAVE]
        items += self._count(view.new_count, Prompt.NEW, view.language)
        items.append(Prompt.AND)
        items += self._count(view.saved_count, Prompt.OLD, view.language)
        items.append(Prompt.MAIN_MENU)
        return self._to(S.MAIN_MENU, items)

    def _count(self, n: int, adjective: Prompt, language: str) -> list[PlayItem]:
        number: list[PlayItem] = [Prompt.NO]
        if n:
            number = list(self._announcer.say_number(n, language))
        return [*number, adjective, Prompt.MESSAGE if n == 1 else Prompt.MESSAGES]

    def _present(self, index: int, before: Sequence[PlayItem]) -> list[AppAction]:
        self._index = index
        message = self._folder[index]
        indices = range(len(self._folder))
        items: list[PlayItem] = list(before)
        urgent = [Prompt.URGENT] if message.urgent else []
        if self._live_index(indices[:index]) is None:
            items += [Prompt.FIRST, *urgent, Prompt.MESSAGE]
        elif self._live_index(indices[index + 1 :]) is None:
            items += [Prompt.LAST, *urgent, Prompt.MESSAGE]
        else:  # "message 3": the sound set has no bare "next"
            language = self._view.language if self._view is not None else "en"
            number = self._announcer.say_number(index + 1, language)
            items += [*urgent, Prompt.MESSAGE, *number]
        items += [*self._envelope(message), message.recording]
        return self._to(S.MESSAGE, items)

    def _advance(self, before: Sequence[PlayItem]) -> list[AppAction]:
        after = self._live_index(range(self._index + 1, len(self._folder)))
        if after is None:
            return self._to(S.MAIN_MENU, [*before, Prompt.NO_MORE_MESSAGES, Prompt.MAIN_MENU])
        return self._present(after, before)

    def _envelope(self, message: MessageInfo) -> list[PlayItem]:
        view = self._view
        timezone, language = (view.timezone, view.language) if view else ("UTC", "en")
        # say_datetime starts with RECEIVED itself ("received today at ...").
        items: list[PlayItem] = list(
            self._announcer.say_datetime(message.received_at, timezone, language, self._wall_now())
        )
        if _PHONE_NUMBER.fullmatch(message.caller):
            items += [Prompt.FROM_PHONE_NUMBER, *self._announcer.say_digits(message.caller)]
        else:
            items.append(Prompt.UNKNOWN_CALLER)  # "anonymous", a SIP user name, nothing
        return items

    def _mark_heard(self) -> list[AppAction]:
        message = self._folder[self._index]
        if self._status_of(message) is not MessageStatus.NEW:
            return []
        return self._set_status(message, MessageStatus.READ)

    def _set_status(self, message: MessageInfo, status: MessageStatus) -> list[AppAction]:
        self._status[message.id] = status
        if self.mailbox is None:
            return []
        return [SetMessageStatus(self.mailbox, message.id, status)]

    def _live_index(self, indices: Sequence[int]) -> int | None:
        """The first of ``indices`` whose message is not deleted."""
        for i in indices:
            if self._status_of(self._folder[i]) is not MessageStatus.DELETED:
                return i
        return None

    def _messages(self) -> tuple[MessageInfo, ...]:
        return self._view.messages if self._view is not None else ()

    def _status_of(self, message: MessageInfo) -> MessageStatus:
        return self._status.get(message.id, message.status)

    def _wall_now(self) -> float | None:
        if self._wall_time is None or self._start_now is None:
            return None
        return self._wall_time + (self._now - self._start_now)

    # -- plumbing --------------------------------------------------------------------

    def _ask(self, state: AccessState, items: Sequence[PlayItem]) -> list[AppAction]:
        self._digits = ""
        return self._to(state, items)

    def _to(
        self, state: AccessState, items: Sequence[PlayItem], barge_in: bool = True
    ) -> list[AppAction]:
        self.state = state
        return self._play(items, barge_in)

    def _close(self, items: Sequence[PlayItem]) -> list[AppAction]:
        self.state = S.CLOSING
        return self._disarm() + self._play(items, barge_in=False)

    def _play(self, items: Sequence[PlayItem], barge_in: bool = True) -> list[AppAction]:
        # Before login the caller's language, not the typed mailbox's: a change of
        # language would tell that the mailbox exists.
        language = self._default_language
        if self._logged_in and self._view is not None:
            language = self._view.language
        play = Play(tuple(items), barge_in=barge_in, language=language)
        if self._playing:
            self._held = play  # sent when the current prompt's PlaybackDone comes
            return []
        self._playing, self._barge = True, barge_in
        return [play]

    def _arm(self, seconds: float) -> list[AppAction]:
        self._timer_armed = True
        return [SetTimer(seconds)]

    def _disarm(self) -> list[AppAction]:
        if not self._timer_armed:
            return []
        self._timer_armed = False
        return [CancelTimer()]
