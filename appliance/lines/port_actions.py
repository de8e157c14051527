"""What an analog port (``fxs``, ``fxo``) hears and asks for besides the controller's
``LineSignal``/``LineIntent`` (``signals``): its audio, its detectors and call control.

A port is a sans-IO state machine (STYLE §2.1): ``handle(input, now)`` returns a list
of ``PortAction`` and ``next_deadline()`` says when to feed it ``TimerFired``. The
composition carries the actions out: ``LineIntent`` to the controller protocol, media
actions to the port's PCM channel in the media engine, call actions to call control.

Call actions are protocol-neutral and map onto ``appliance.pbx.call_events`` (STYLE
§2.7) at the composition:

- out: ``PlaceCall`` -> Setup (callee = number); ``IncomingCall`` -> Setup (caller from
  caller ID); ``AnswerIncoming``/``OutboundAnswered`` -> Answer; ``OutboundProgress`` ->
  Progress with early media; ``HoldCall``/``ResumeCall`` -> Hold/Resume;
  ``HangUpCall`` -> Hangup; ``RejectOffer`` -> Fail.
- in: Setup towards an FXS port -> ``IncomingCallOffer``, towards an FXO port ->
  ``DialOut``; Progress -> ``RemoteProgress``; Answer -> ``RemoteAnswered``; Hangup ->
  ``RemoteHungUp`` (or ``OfferCancelled`` for a call still ringing or waiting); Fail ->
  ``CallFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from appliance.lines.signals import LineIntent, LineSignal
from appliance.pbx.causes import Cause

# Tone names of the media port contract (``appliance.media.tone_player.TONE_NAMES``).
TONE_DIAL: Final = "dial"
TONE_RINGBACK: Final = "ringback"
TONE_BUSY: Final = "busy"
TONE_CONGESTION: Final = "congestion"
TONE_CALL_WAITING: Final = "call-waiting"
# Not in the tone plans yet: dial tone interrupted for the first ~2 s (Telcordia
# GR-506 "stutter dial tone"), the analog message-waiting indication. ``FxsConfig``
# can switch it off until the media engine knows it.
TONE_STUTTER_DIAL: Final = "stutter-dial"


# -- media: the port's audio channel ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlayTone:
    """Play this call-progress tone to the port (replaces any tone playing)."""

    name: str


@dataclass(frozen=True, slots=True)
class StopTone:
    pass


class CallerIdTiming(Enum):
    """Which caller-ID transmission to generate (ETSI EN 300 659-1, Telcordia GR-30)."""

    BETWEEN_RINGS = "between-rings"  # on hook, after the first ring burst (type 1)
    CALL_WAITING = "call-waiting"  # off hook, after the call-waiting tone (type 2)


@dataclass(frozen=True, slots=True)
class SendCallerId:
    """Generate caller-ID audio to the port now; the port picks the moment."""

    number: str | None
    name: str | None
    when: CallerIdTiming


@dataclass(frozen=True, slots=True)
class ConnectAudio:
    """Bridge the port's audio to its call's media."""


@dataclass(frozen=True, slots=True)
class DisconnectAudio:
    pass


class Detector(Enum):
    DTMF = "dtmf"  # FXS: digits the user keys, reported as ``DtmfDigit``
    PROGRESS_TONES = "progress-tones"  # FXO: ``DialToneDetected``, ``BusyToneDetected``


@dataclass(frozen=True, slots=True)
class Detect:
    """Run (or stop) a detector on the audio coming from the port."""

    detector: Detector
    on: bool


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """FXO: play these DTMF digits to the line, each ``on_ms`` then ``off_ms`` silence.

    The timing is spelled out because the port estimates from it when dialling ends.
    """

    digits: str
    on_ms: int
    off_ms: int


MediaAction = (
    PlayTone | StopTone | SendCallerId | ConnectAudio | DisconnectAudio | Detect | SendDtmf
)

# -- call control: port -> call control ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceCall:
    """FXS: the user dialled this number (complete, or timed out: call control routes)."""

    number: str


@dataclass(frozen=True, slots=True)
class AnswerIncoming:
    """FXS: the user answered the offered call (ring-trip, or flash on call waiting)."""


@dataclass(frozen=True, slots=True)
class HangUpCall:
    """The port's call is over from the port's side: the user hung up (FXS; call
    control ends or recalls any held call), the line cleared (FXO), or an outgoing
    attempt on the line failed (FXO)."""

    cause: Cause


@dataclass(frozen=True, slots=True)
class RejectOffer:
    """An offered call (``IncomingCallOffer``, ``DialOut``) is refused; the port's
    other call, if any, is unaffected."""

    cause: Cause


@dataclass(frozen=True, slots=True)
class HoldCall:
    """FXS flash: hold the call the user is talking to."""


@dataclass(frozen=True, slots=True)
class ResumeCall:
    """FXS flash: take the held call back; a call still active goes on hold (swap)."""


@dataclass(frozen=True, slots=True)
class DigitInCall:
    """FXS: a pulse digit dialled during a call (a rotary phone in an IVR). DTMF needs
    no such action: it travels in the audio."""

    digit: str


@dataclass(frozen=True, slots=True)
class CallerId:
    number: str | None  # None: withheld or unavailable
    name: str | None


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """FXO: the line rings; ``caller_id`` is None when none was received."""

    caller_id: CallerId | None


@dataclass(frozen=True, slots=True)
class OutboundProgress:
    """FXO: the number is dialled and the line's audio cut through (early media)."""


@dataclass(frozen=True, slots=True)
class OutboundAnswered:
    """FXO: treat the outgoing call as answered (see ``FxoConfig.answer_on_polarity``)."""


CallAction = (
    PlaceCall
    | AnswerIncoming
    | HangUpCall
    | RejectOffer
    | HoldCall
    | ResumeCall
    | DigitInCall
    | IncomingCall
    | OutboundProgress
    | OutboundAnswered
)

PortAction = LineIntent | MediaAction | CallAction

# -- inputs: call control -> port ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingCallOffer:
    """FXS: ring the phone (or signal call waiting) for this caller."""

    caller: str | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OfferCancelled:
    """FXS: the call that was ringing or waiting went away before it was answered."""


@dataclass(frozen=True, slots=True)
class RemoteProgress:
    """FXS: the called side is alerting (ringback), or sends early media."""

    early_media: bool = False


@dataclass(frozen=True, slots=True)
class RemoteAnswered:
    """FXS: the called side answered. FXO: call control answers the ringing line."""


@dataclass(frozen=True, slots=True)
class RemoteHungUp:
    """The other side of the port's call hung up (FXO: call control ends the call).

    ``held``: FXS with two calls, it was the held one, not the one the user talks to.
    """

    held: bool = False


@dataclass(frozen=True, slots=True)
class CallFailed:
    """FXS: the user's call could not be completed. FXO: the ringing call is refused."""

    cause: Cause


@dataclass(frozen=True, slots=True)
class MessagesWaiting:
    """FXS: the user's mailbox has (or no longer has) new messages."""

    waiting: bool


@dataclass(frozen=True, slots=True)
class DialOut:
    """FXO: seize the line and dial ``number`` ("" = seize and cut through at once)."""

    number: str


# -- inputs: the port's audio side -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """FXS: a DTMF digit detected in the phone's audio."""

    digit: str


@dataclass(frozen=True, slots=True)
class CallerIdReceived:
    """FXO: caller ID decoded from the line (between rings, or before the first)."""

    number: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class DialToneDetected:
    pass


@dataclass(frozen=True, slots=True)
class BusyToneDetected:
    """FXO: busy or congestion tone on the line: the exchange's disconnect signal."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The deadline ``next_deadline()`` gave has come (early or stale ones are ignored)."""


CallInput = (
    IncomingCallOffer
    | OfferCancelled
    | RemoteProgress
    | RemoteAnswered
    | RemoteHungUp
    | CallFailed
    | MessagesWaiting
    | DialOut
)
AudioInput = DtmfDigit | CallerIdReceived | DialToneDetected | BusyToneDetected

PortInput = LineSignal | CallInput | AudioInput | TimerFired
"""Everything a port is fed; each port ignores what means nothing to it."""
