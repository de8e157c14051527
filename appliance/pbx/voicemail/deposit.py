"""Voicemail deposit: one caller leaves a message in a mailbox (sans-IO ``CallApp``).

The flow, as callers of most PBXs know it:

1. load the mailbox; missing -> SORRY, GOODBYE, hang up; full -> MAILBOX_FULL, GOODBYE,
   hang up;
2. the greeting: the mailbox's recorded busy greeting (reason BUSY) or unavailable one
   (any other reason), else the recorded name + IS_ON_THE_PHONE / IS_UNAVAILABLE, else
   THE_PERSON_AT + the mailbox number's digits + the same; then LEAVE_MESSAGE. During it
   ``#`` skips to the beep and ``*`` hands over to the owner's login; other digits are
   ignored (the greeting is played without barge-in and stopped explicitly);
3. BEEP, which no digit stops, then record up to the mailbox's limit, ``#`` or 5 s of
   silence ending it;
4. under 1 s of audio is discarded (TOO_SHORT, GOODBYE if the caller is still there);
   anything longer is stored, then MESSAGE_SAVED, GOODBYE, hang up.

A caller who hangs up while recording has left a message: the engine ends the recording
with ``RecordEnd.HANG_UP`` (before or after it reports ``CallerHungUp``) and the
application stores it before calling itself finished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum
from typing import Final

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
    MessageStored,
    Play,
    PlaybackDone,
    PlayItem,
    Record,
    RecordEnd,
    RecordingDone,
    StartMailboxAccess,
    StopPlayback,
    StoreMessage,
)
from appliance.pbx.prompt_names import Prompt
from appliance.pbx.voicemail import Announcer, default_announcer

log = logging.getLogger(__name__)

MIN_MESSAGE_SECONDS: Final = 1.0  # shorter is a hang-up at the beep, not a message
SILENCE_SECONDS: Final = 5.0
STOP_DIGITS: Final = "#"
SKIP_DIGIT: Final = "#"
LOGIN_DIGIT: Final = "*"
KEYS: Final = frozenset("0123456789*#")  # what say_digits can speak


class DepositState(Enum):
    LOADING = "loading"  # LoadMailbox sent
    GREETING = "greeting"  # greeting + LEAVE_MESSAGE playing
    SKIPPING = "skipping"  # '#' pressed: StopPlayback sent, its PlaybackDone awaited
    BEEP = "beep"
    RECORDING = "recording"  # RecordingDone awaited
    STORING = "storing"  # StoreMessage sent, caller still there: MessageStored awaited
    CLOSING = "closing"  # last prompts playing; HangUp when they end
    DONE = "done"


class DepositApp:
    """Leave a message in ``mailbox`` for a call that went there for ``reason``."""

    def __init__(
        self,
        mailbox: str,
        reason: DepositReason,
        caller: str,
        caller_name: str | None,
        wall_time: float,
        announcer: Announcer | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.reason = reason
        self.caller = caller
        self.caller_name = caller_name
        self.wall_time = wall_time  # when the call came (logs); the store stamps received_at
        self.state = DepositState.LOADING
        self._announcer = announcer if announcer is not None else default_announcer()
        self._view: MailboxView | None = None
        self._caller_gone = False
        self._started = False

    @property
    def finished(self) -> bool:
        return self.state is DepositState.DONE

    def start(self, now: float) -> list[AppAction]:
        if self._started:
            return []
        self._started = True
        return [LoadMailbox(self.mailbox)]

    def handle(self, event: AppEvent, now: float) -> list[AppAction]:
        if isinstance(event, RecordingDone):
            return self._recording_done(event)
        if self.state is DepositState.DONE:
            return []
        if isinstance(event, CallerHungUp):
            return self._hung_up()
        if isinstance(event, MailboxLoaded):
            return self._loaded(event)
        if isinstance(event, DigitPressed):
            return self._digit(event.digit)
        if isinstance(event, PlaybackDone):
            return self._playback_done()
        if isinstance(event, MessageStored) and self.state is DepositState.STORING:
            # "saved" only once it is: a mailbox that filled up meanwhile says sorry
            said = Prompt.MESSAGE_SAVED if event.message_id is not None else Prompt.SORRY
            return self._close([said, Prompt.GOODBYE])
        # TimerFired, PinChecked, TransferFailed: this application sets no timer and
        # transfers nowhere, so they carry no news.
        return []

    # -- events ----------------------------------------------------------------------

    def _loaded(self, event: MailboxLoaded) -> list[AppAction]:
        if self.state is not DepositState.LOADING or event.mailbox != self.mailbox:
            return []
        view = event.view
        if view is None:
            log.info("deposit to missing mailbox %s", self.mailbox)
            return self._close([Prompt.SORRY, Prompt.GOODBYE])
        self._view = view
        if view.full:
            log.info("mailbox %s is full", self.mailbox)
            return self._close([Prompt.MAILBOX_FULL, Prompt.GOODBYE])
        self.state = DepositState.GREETING
        return [self._play([*self._greeting(view), Prompt.LEAVE_MESSAGE])]

    def _digit(self, digit: str) -> list[AppAction]:
        if self.state is not DepositState.GREETING:
            return []  # the beep is not to be skipped, and '#' while recording is the engine's
        if digit == SKIP_DIGIT:
            self.state = DepositState.SKIPPING
            return [StopPlayback()]
        if digit == LOGIN_DIGIT:
            self.state = DepositState.DONE
            return [StopPlayback(), StartMailboxAccess(self.mailbox)]
        return []

    def _playback_done(self) -> list[AppAction]:
        if self.state in (DepositState.GREETING, DepositState.SKIPPING):
            self.state = DepositState.BEEP
            return [self._play([Prompt.BEEP])]
        if self.state is DepositState.BEEP and self._view is not None:
            self.state = DepositState.RECORDING
            return [
                Record(
                    max_seconds=self._view.max_message_seconds,
                    silence_seconds=SILENCE_SECONDS,
                    stop_digits=STOP_DIGITS,
                )
            ]
        if self.state is DepositState.CLOSING:
            self.state = DepositState.DONE
            return [HangUp()]
        return []

    def _hung_up(self) -> list[AppAction]:
        self._caller_gone = True
        if self.state is not DepositState.RECORDING:  # STORING: the store has it already
            self.state = DepositState.DONE  # nothing was being recorded: nothing to keep
        return []

    def _recording_done(self, event: RecordingDone) -> list[AppAction]:
        if self.state is not DepositState.RECORDING:
            # Not ours to keep; discarding frees the file rather than leaving it behind.
            return [DiscardRecording(event.recording)]
        gone = self._caller_gone or event.end is RecordEnd.HANG_UP
        if event.seconds < MIN_MESSAGE_SECONDS:
            actions: list[AppAction] = [DiscardRecording(event.recording)]
            if gone:
                self.state = DepositState.DONE
                return actions
            return actions + self._close([Prompt.TOO_SHORT, Prompt.GOODBYE])
        stored = StoreMessage(
            mailbox=self.mailbox,
            recording=event.recording,
            duration=event.seconds,
            caller=self.caller,
            caller_name=self.caller_name,
        )
        if gone:
            self.state = DepositState.DONE
            return [stored]
        self.state = DepositState.STORING
        return [stored]

    # -- helpers ---------------------------------------------------------------------

    def _greeting(self, view: MailboxView) -> list[PlayItem]:
        busy = self.reason is DepositReason.BUSY
        recorded = view.greetings.get(GreetingKind.BUSY if busy else GreetingKind.UNAVAILABLE)
        if recorded is not None:
            return [recorded]
        status = Prompt.IS_ON_THE_PHONE if busy else Prompt.IS_UNAVAILABLE
        name = view.greetings.get(GreetingKind.NAME)
        if name is not None:
            return [name, status]
        if not self.mailbox or not set(self.mailbox) <= KEYS:
            return [status]  # a mailbox named otherwise than by keys: no number to say
        return [Prompt.THE_PERSON_AT, *self._announcer.say_digits(self.mailbox), status]

    def _close(self, items: Sequence[PlayItem]) -> list[AppAction]:
        self.state = DepositState.CLOSING
        return [self._play(items)]

    def _play(self, items: Sequence[PlayItem]) -> Play:
        # Never barge-in: digits are reported anyway, and only '#' and '*' may end the
        # greeting (by StopPlayback), where barge-in would stop it for any digit.
        language = self._view.language if self._view is not None else None
        return Play(tuple(items), barge_in=False, language=language)
