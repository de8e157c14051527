"""What a call application (voicemail, auto-attendant) asks for and is told (sans-IO).

An application talks to one caller whose call the appliance has answered itself. It
is a pure state machine: ``start`` and ``handle`` take ``now`` and return actions; the
B2BUA carries out the call-control ones (transfer, hang up, timers, change of
application), the media engine the media ones (play, record), and the store edge the
mailbox ones, each answering with an event. Applications never read a clock, a file
or the database.

Playback items are prompt names from the prompt catalogue ("vm-intro",
"digits/3", "beep") or ``Recording`` values naming a WAV file the store gave out
(a message or a greeting); the engine resolves and paces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Recording:
    """A WAV file in the data folder (a message, a greeting), by absolute path."""

    path: str


PlayItem = str | Recording


class MessageStatus(Enum):
    NEW = "new"
    READ = "read"  # heard, kept in the new-messages folder count no more
    SAVED = "saved"
    DELETED = "deleted"


class GreetingKind(Enum):
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    NAME = "name"


class DepositReason(Enum):
    """Why a call went to the mailbox; picks the greeting."""

    NO_ANSWER = "no-answer"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"  # no phone registered
    DIRECT = "direct"  # dialled or chosen in a menu


class RecordEnd(Enum):
    DIGIT = "digit"  # a stop digit (#) was pressed
    SILENCE = "silence"
    MAX_LENGTH = "max-length"
    HANG_UP = "hang-up"
    STOPPED = "stopped"  # the application asked (StopRecording)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """One stored message, as the mailbox application sees it."""

    id: int
    caller: str
    caller_name: str | None
    received_at: float  # Unix time
    duration: float  # seconds
    status: MessageStatus
    urgent: bool
    recording: Recording


@dataclass(frozen=True, slots=True)
class MailboxView:
    """A mailbox as loaded for one call: settings and its messages, oldest first."""

    number: str
    name: str | None
    language: str
    max_message_seconds: float
    max_messages: int
    greetings: dict[GreetingKind, Recording] = field(default_factory=dict)
    messages: tuple[MessageInfo, ...] = ()
    has_pin: bool = True
    timezone: str = "UTC"

    @property
    def new_count(self) -> int:
        return sum(1 for m in self.messages if m.status is MessageStatus.NEW)

    @property
    def saved_count(self) -> int:
        return sum(
            1 for m in self.messages if m.status in (MessageStatus.READ, MessageStatus.SAVED)
        )

    @property
    def full(self) -> bool:
        live = sum(1 for m in self.messages if m.status is not MessageStatus.DELETED)
        return live >= self.max_messages


# -- actions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """Queue ``items`` after anything already queued; a digit stops the whole queue
    when ``barge_in`` (the digit is still reported). ``PlaybackDone`` comes once the
    queue has run out or was stopped."""

    items: tuple[PlayItem, ...]
    barge_in: bool = True
    language: str | None = None  # None: the application's language


@dataclass(frozen=True, slots=True)
class StopPlayback:
    pass


@dataclass(frozen=True, slots=True)
class Record:
    """Record what the caller says into a new file until a stop digit, ``silence_seconds``
    of silence, ``max_seconds`` or hang-up; ``RecordingDone`` tells which."""

    max_seconds: float
    silence_seconds: float = 5.0
    stop_digits: str = "#"


@dataclass(frozen=True, slots=True)
class StopRecording:
    pass


@dataclass(frozen=True, slots=True)
class SetTimer:
    """The application's one timer: ``TimerFired`` after ``seconds`` (replaces any
    earlier one)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    pass


@dataclass(frozen=True, slots=True)
class Transfer:
    """Ring ``extension`` for the caller (who hears ringback); ``TransferFailed`` if it
    does not answer, is busy or unknown, else the caller is connected and the
    application ends."""

    extension: str


@dataclass(frozen=True, slots=True)
class StartVoicemail:
    """Hand the caller to ``mailbox``'s voicemail (deposit) in place of this application."""

    mailbox: str
    reason: DepositReason = DepositReason.DIRECT


@dataclass(frozen=True, slots=True)
class StartMailboxAccess:
    """Hand the caller to the dial-in mailbox menu (None: ask which mailbox)."""

    mailbox: str | None


@dataclass(frozen=True, slots=True)
class StartMenu:
    """Hand the caller to another auto-attendant menu."""

    menu: str


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


# mailbox (store) actions: each gets its event back


@dataclass(frozen=True, slots=True)
class LoadMailbox:
    mailbox: str  # -> MailboxLoaded


@dataclass(frozen=True, slots=True)
class CheckPin:
    mailbox: str
    pin: str  # -> PinChecked


@dataclass(frozen=True, slots=True)
class StoreMessage:
    """Keep a recording as a new message (the store moves the file into the mailbox
    and adds its row, then mailbox watchers are told); -> MessageStored."""

    mailbox: str
    recording: Recording
    duration: float
    caller: str
    caller_name: str | None
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class DiscardRecording:
    recording: Recording  # no event


@dataclass(frozen=True, slots=True)
class SetMessageStatus:
    mailbox: str
    message_id: int
    status: MessageStatus  # DELETED removes the file too; no event


@dataclass(frozen=True, slots=True)
class SaveGreeting:
    mailbox: str
    kind: GreetingKind
    recording: Recording  # -> MailboxLoaded (the box as it is now)


@dataclass(frozen=True, slots=True)
class SetPin:
    mailbox: str
    pin: str  # stored hashed; no event


AppAction = (
    Play
    | StopPlayback
    | Record
    | StopRecording
    | SetTimer
    | CancelTimer
    | Transfer
    | StartVoicemail
    | StartMailboxAccess
    | StartMenu
    | HangUp
    | LoadMailbox
    | CheckPin
    | StoreMessage
    | DiscardRecording
    | SetMessageStatus
    | SaveGreeting
    | SetPin
)

StoreAction = (
    LoadMailbox
    | CheckPin
    | StoreMessage
    | DiscardRecording
    | SetMessageStatus
    | SaveGreeting
    | SetPin
)

# -- events ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigitPressed:
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    interrupted: bool  # stopped by a digit or StopPlayback before the queue ran out


@dataclass(frozen=True, slots=True)
class RecordingDone:
    recording: Recording
    seconds: float  # audio kept, after trimming trailing silence for SILENCE
    end: RecordEnd


@dataclass(frozen=True, slots=True)
class TimerFired:
    pass


@dataclass(frozen=True, slots=True)
class TransferFailed:
    extension: str
    busy: bool  # busy rather than no answer / not registered / unknown


@dataclass(frozen=True, slots=True)
class MailboxLoaded:
    mailbox: str
    view: MailboxView | None  # None: no such mailbox


@dataclass(frozen=True, slots=True)
class PinChecked:
    mailbox: str
    ok: bool


@dataclass(frozen=True, slots=True)
class MessageStored:
    mailbox: str
    message_id: int | None  # None: not kept (mailbox full or gone)


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    pass


AppEvent = (
    DigitPressed
    | PlaybackDone
    | RecordingDone
    | TimerFired
    | TransferFailed
    | MailboxLoaded
    | PinChecked
    | MessageStored
    | CallerHungUp
)


class CallApp(Protocol):
    """A call application: voicemail deposit, mailbox access, an auto-attendant menu."""

    def start(self, now: float) -> list[AppAction]: ...

    def handle(self, event: AppEvent, now: float) -> list[AppAction]: ...

    @property
    def finished(self) -> bool: ...  # nothing more to do: the B2BUA hangs up if still up
