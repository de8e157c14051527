"""Protocol-neutral call-control events, the `Leg` protocol, the per-call state table
and the CDR accumulator (STYLE §2.7, §2.4).

SIP dialogs, FXS ports, FXO lines, IVRs and mailboxes are all legs: each turns its own
protocol into these events and back. Nothing here knows SIP or analog signalling;
failure reasons are Q.850 causes (``causes.py``), which SIP legs map per RFC 3398.
Time is never read here: every entry point takes ``now`` (STYLE §2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from appliance.pbx.causes import Cause

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")  # RFC 4733 §3.2 events 0-15


@dataclass(frozen=True, slots=True)
class Party:
    """Who is calling: the number a leg presents and an optional display name."""

    number: str
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """What one leg can send and receive, independent of SDP.

    SIP legs build it from an SDP offer/answer (RFC 3264); analog legs from their PCM
    channel. ``codecs`` are encoding names ("PCMU", "PCMA", "opus") in preference order.
    ``address``/``port`` is where this leg wants RTP; the media layer may anchor it.
    """

    codecs: tuple[str, ...]
    telephone_event: bool  # RFC 4733 events accepted on the RTP stream
    address: str
    port: int
    ptime_ms: int = 20

    def __post_init__(self) -> None:
        if not self.codecs:
            raise ValueError("a media offer needs at least one codec")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if self.ptime_ms <= 0:
            raise ValueError(f"ptime {self.ptime_ms} ms must be positive")

    def common_codecs(self, other: MediaOffer) -> tuple[str, ...]:
        """Codecs both sides support, in this side's order (names compared caselessly)."""
        theirs = {c.upper() for c in other.codecs}
        return tuple(c for c in self.codecs if c.upper() in theirs)


class DtmfSource(Enum):
    RFC4733 = "rfc4733"  # telephone-event RTP payload
    INFO = "info"  # SIP INFO (application/dtmf-relay)
    INBAND = "inband"  # detected in the audio (Goertzel), e.g. from an FXO line


@dataclass(frozen=True, slots=True)
class Setup:
    caller: Party
    callee: str  # the number dialled, before routing
    media: MediaOffer | None  # None: offer comes later (SIP delayed offer)
    call_id: str


@dataclass(frozen=True, slots=True)
class Progress:
    ringing: bool  # the far end is alerting (SIP 180, analog ring)
    early_media: MediaOffer | None = None  # media before answer (SIP 183 with SDP)


@dataclass(frozen=True, slots=True)
class Answer:
    media: MediaOffer | None


@dataclass(frozen=True, slots=True)
class Hold:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str
    duration_ms: int
    source: DtmfSource

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise ValueError(f"{self.digit!r} is not a DTMF digit")
        if self.duration_ms < 0:
            raise ValueError(f"duration {self.duration_ms} ms is negative")


@dataclass(frozen=True, slots=True)
class Hangup:
    """An established or ringing call is cleared by one side."""

    cause: Cause = Cause.NORMAL_CLEARING


@dataclass(frozen=True, slots=True)
class Fail:
    """The attempt to reach the called side failed (SIP 4xx-6xx, busy tone, no route)."""

    cause: Cause


CallEvent = Setup | Progress | Answer | Hold | Resume | Dtmf | Hangup | Fail


class Leg(Protocol):
    """One side of a call. ``state`` is the leg's own enum (a dialog's, a port's)."""

    @property
    def leg_id(self) -> str: ...

    @property
    def state(self) -> Enum: ...

    def handle(self, event: CallEvent, now: float) -> list[CallEvent]: ...


class CallState(Enum):
    SETUP = "setup"  # created; the caller's Setup not yet processed
    ROUTING = "routing"  # Setup seen, dialplan and callee leg at work
    RINGING = "ringing"
    EARLY_MEDIA = "early-media"
    ANSWERED = "answered"
    HELD = "held"
    ENDED = "ended"


class EventKind(Enum):
    """The table key for an event: its type, except that Progress splits in two
    (alerting only, or with early media), which lead to different states."""

    SETUP = "setup"
    PROGRESS = "progress"
    EARLY_MEDIA = "early-media"
    ANSWER = "answer"
    HOLD = "hold"
    RESUME = "resume"
    DTMF = "dtmf"
    HANGUP = "hangup"
    FAIL = "fail"


_KIND_OF_TYPE: Final[dict[type, EventKind]] = {
    Setup: EventKind.SETUP,
    Progress: EventKind.PROGRESS,
    Answer: EventKind.ANSWER,
    Hold: EventKind.HOLD,
    Resume: EventKind.RESUME,
    Dtmf: EventKind.DTMF,
    Hangup: EventKind.HANGUP,
    Fail: EventKind.FAIL,
}


def kind_of(event: CallEvent) -> EventKind:
    if isinstance(event, Progress) and event.early_media is not None:
        return EventKind.EARLY_MEDIA
    return _KIND_OF_TYPE[type(event)]


S, K = CallState, EventKind
# Every legal move; anything missing is a CallStateError (STYLE §2.4).
CALL_TRANSITIONS: Final[dict[tuple[CallState, EventKind], CallState]] = {
    (S.SETUP, K.SETUP): S.ROUTING,
    (S.ROUTING, K.PROGRESS): S.RINGING,
    (S.ROUTING, K.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.ROUTING, K.ANSWER): S.ANSWERED,  # IVR, voicemail: answer at once
    (S.ROUTING, K.HANGUP): S.ENDED,  # caller gave up
    (S.ROUTING, K.FAIL): S.ENDED,  # no route, busy, unreachable
    (S.RINGING, K.PROGRESS): S.RINGING,  # repeated 180s
    (S.RINGING, K.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.RINGING, K.ANSWER): S.ANSWERED,
    (S.RINGING, K.HANGUP): S.ENDED,
    (S.RINGING, K.FAIL): S.ENDED,
    # A later 180 without SDP does not end early media (RFC 3960 practice).
    (S.EARLY_MEDIA, K.PROGRESS): S.EARLY_MEDIA,
    (S.EARLY_MEDIA, K.EARLY_MEDIA): S.EARLY_MEDIA,
    (S.EARLY_MEDIA, K.DTMF): S.EARLY_MEDIA,  # prompts before answer
    (S.EARLY_MEDIA, K.ANSWER): S.ANSWERED,
    (S.EARLY_MEDIA, K.HANGUP): S.ENDED,
    (S.EARLY_MEDIA, K.FAIL): S.ENDED,
    (S.ANSWERED, K.DTMF): S.ANSWERED,
    (S.ANSWERED, K.HOLD): S.HELD,
    (S.ANSWERED, K.HANGUP): S.ENDED,
    (S.HELD, K.HOLD): S.HELD,  # the other side holds too
    (S.HELD, K.RESUME): S.ANSWERED,
    (S.HELD, K.DTMF): S.HELD,  # SIP INFO still flows
    (S.HELD, K.HANGUP): S.ENDED,
}
del S, K

FINAL_STATES: Final = frozenset({CallState.ENDED})
BEFORE_ANSWER: Final = frozenset({CallState.ROUTING, CallState.RINGING, CallState.EARLY_MEDIA})
CONNECTED: Final = frozenset({CallState.ANSWERED, CallState.HELD})


class CallStateError(Exception):
    """An event the call's state does not allow, e.g. Answer after Hangup."""

    def __init__(self, state: CallState, event: CallEvent) -> None:
        super().__init__(f"{type(event).__name__} ({kind_of(event).value}) in {state.name}")
        self.state = state
        self.event = event


def next_call_state(state: CallState, event: CallEvent) -> CallState:
    key = (state, kind_of(event))
    if key not in CALL_TRANSITIONS:
        raise CallStateError(state, event)
    return CALL_TRANSITIONS[key]


class Side(Enum):
    """Who produced an event, for the CDR."""

    CALLER = "caller"
    CALLEE = "callee"
    SYSTEM = "system"  # the PBX itself: dialplan reject, ring timeout


class Disposition(Enum):
    ANSWERED = "answered"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELLED = "cancelled"


_BUSY: Final = frozenset({Cause.USER_BUSY})
_NO_ANSWER: Final = frozenset({Cause.NO_USER_RESPONDING, Cause.NO_ANSWER})


@dataclass(frozen=True, slots=True)
class CallRecord:
    """CDR fields of one ended call. Times are the ``now`` values passed to CallLog."""

    call_id: str
    caller: Party
    callee: str
    start: float
    answer: float | None
    end: float
    disposition: Disposition
    cause: Cause
    ended_by: Side

    @property
    def duration(self) -> float:
        """Whole call, Setup to end."""
        return self.end - self.start

    @property
    def billable(self) -> float:
        """Answer to end; 0 if never answered."""
        return 0.0 if self.answer is None else self.end - self.answer


class CallLog:
    """Follows one call's events through ``CALL_TRANSITIONS`` and collects CDR fields.

    Illegal moves raise CallStateError and leave the log unchanged.
    """

    def __init__(self) -> None:
        self.state = CallState.SETUP
        self._setup: Setup | None = None
        self._start: float | None = None
        self._answer: float | None = None
        self._end: float | None = None
        self._cause: Cause | None = None
        self._ended_by: Side | None = None
        self._failed = False

    def record(self, event: CallEvent, side: Side, now: float) -> CallState:
        new = next_call_state(self.state, event)
        if isinstance(event, Setup):
            if side is not Side.CALLER:
                raise ValueError(f"Setup must come from the caller, not {side.name}")
            self._setup, self._start = event, now
        elif isinstance(event, Answer):
            self._answer = now
        elif isinstance(event, Hangup | Fail):
            self._end, self._cause, self._ended_by = now, event.cause, side
            self._failed = isinstance(event, Fail)
        self.state = new
        return new

    @property
    def started(self) -> float | None:
        """When the call arrived (the time given with its Setup)."""
        return self._start

    @property
    def answered_at(self) -> float | None:
        return self._answer

    @property
    def disposition(self) -> Disposition | None:
        if self.state is not CallState.ENDED:
            return None
        if self._answer is not None:
            return Disposition.ANSWERED
        if not self._failed and self._ended_by is Side.CALLER:
            return Disposition.CANCELLED
        if self._cause in _BUSY:
            return Disposition.BUSY
        if self._cause in _NO_ANSWER:
            return Disposition.NO_ANSWER
        return Disposition.FAILED

    def cdr(self) -> CallRecord:
        """The record of an ended call; ValueError while the call is still up."""
        disposition = self.disposition
        if (
            disposition is None
            or self._setup is None
            or self._start is None
            or self._end is None
            or self._cause is None
            or self._ended_by is None
        ):
            raise ValueError(f"call has not ended (state {self.state.name})")
        return CallRecord(
            call_id=self._setup.call_id,
            caller=self._setup.caller,
            callee=self._setup.callee,
            start=self._start,
            answer=self._answer,
            end=self._end,
            disposition=disposition,
            cause=self._cause,
            ended_by=self._ended_by,
        )
