"""The line controller's wire protocol, version 1: lines parsed and formatted.

One message per newline-terminated line of printable ASCII (board/PROTOCOL.md). The
host sends commands, each with a sequence number the controller echoes in its
``OK``/``ERR`` answer; ``STATUS`` is answered by one ``PORT`` line per port before
the ``OK``. The controller sends events numbered by their own counter and stamped
with its millisecond clock, so the host notices a lost one. This module only turns
text into frozen values and back (``str(value)`` is the line, ``bytes(value)`` adds
the newline); the session lives in ``controller_link``, the controller in the sim.

Parsing is strict about shape (numbers, token characters, the arity of the commands
and events we know) and tolerant about the future: a command verb or an event name
we do not know still parses, so a controller can answer ``ERR unknown`` and the host
can keep its event counter in step while ignoring the event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Feed,
    FeedMode,
    Flash,
    Hook,
    LineIntent,
    LineSignal,
    LoopCurrentDrop,
    OffHook,
    OnHook,
    PolarityReversal,
    PulseDigit,
    Ring,
    RingStart,
    RingStop,
)

PROTOCOL_VERSION: Final = 1
CLIENT_HELLO: Final = f"yakyak/{PROTOCOL_VERSION}"
MAX_LINE: Final = 255  # characters before the newline; longer lines are dropped whole
MAX_PORT: Final = 64
NUMBER_MAX: Final = 65535  # sequence numbers and event counters run 1..65535, then 1
CLOCK_MAX: Final = 2**32 - 1  # the controller's millisecond clock is a wrapping uint32
MAX_CADENCE: Final = 16  # on/off segments in one RING cadence
MAX_DIAL: Final = 32  # digits in one DIAL command
REPLY_MEMORY: Final = 8  # answers a controller keeps to repeat on a resend (PROTOCOL.md)

_NUMBER: Final = re.compile(r"[0-9]{1,10}")
_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]{0,15}")
_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,15}")
TOKEN: Final = re.compile(r"[a-z0-9_]{1,16}")
COUNTRY_CODE: Final = re.compile(r"[A-Z]{2}")
_CADENCE: Final = re.compile(r"[0-9]{1,5}(,[0-9]{1,5})*")
_DIGITS: Final = "0123456789"

Params = tuple[tuple[str, str], ...]


class ProtocolError(ValueError):
    """A line that is not valid protocol-1 text.

    ``seq`` is the command's sequence number when the line got that far, so a
    controller can still answer ``<seq> ERR ...``; None otherwise.
    """

    def __init__(self, reason: str, seq: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seq = seq


class Verb(StrEnum):
    HELLO = "HELLO"  # version handshake; the OK names the controller
    CONFIG = "CONFIG"  # one port's settings from the board file
    RING = "RING"  # FXS: ring with a cadence, or stop
    FEED = "FEED"  # FXS: line feed mode
    HOOK = "HOOK"  # FXO: seize or release the line
    DIAL = "DIAL"  # FXO: dial digits by loop disconnect
    STATUS = "STATUS"  # every port's state, then OK with the event counter


class EventName(StrEnum):
    OFFHOOK = "OFFHOOK"
    ONHOOK = "ONHOOK"
    FLASH = "FLASH"
    DIGIT = "DIGIT"
    RINGSTART = "RINGSTART"
    RINGSTOP = "RINGSTOP"
    POLARITY = "POLARITY"
    LOOPDROP = "LOOPDROP"
    RESET = "RESET"


# (takes a port, positional words) for the commands we know.
_COMMAND_SHAPES: Final[dict[str, tuple[bool, int]]] = {
    Verb.HELLO: (False, 1),
    Verb.CONFIG: (True, 0),
    Verb.RING: (True, 1),
    Verb.FEED: (True, 1),
    Verb.HOOK: (True, 1),
    Verb.DIAL: (True, 1),
    Verb.STATUS: (False, 0),
}
_RING_WORDS: Final = {"ON": True, "OFF": False}
_HOOK_WORDS: Final = {"OFFHOOK": True, "ONHOOK": False}
_FEED_WORDS: Final = {mode.name: mode for mode in FeedMode}


def next_number(n: int) -> int:
    """The sequence number or event counter after ``n``: 1..65535, then 1 again.

    0 never recurs: it is the RESET event's counter, so a counter wrap is never
    mistaken for a restart.
    """
    return n % NUMBER_MAX + 1


def number_field(token: str, what: str, low: int, high: int, seq: int | None = None) -> int:
    if not _NUMBER.fullmatch(token):
        raise ProtocolError(f"{what} {token!r} is not a decimal number", seq)
    value = int(token)
    if not low <= value <= high:
        raise ProtocolError(f"{what} {value} is outside {low}-{high}", seq)
    return value


def _check_params(params: Params, seq: int | None = None) -> None:
    seen: set[str] = set()
    for key, value in params:
        if not _KEY.fullmatch(key):
            raise ProtocolError(f"bad parameter name {key!r}", seq)
        if key in seen:
            raise ProtocolError(f"parameter {key} given twice", seq)
        if not value or not all("!" <= c <= "~" for c in value):
            raise ProtocolError(f"bad value for {key}", seq)
        seen.add(key)


def _split(tokens: list[str], seq: int | None = None) -> tuple[tuple[str, ...], Params]:
    """Positional words, then ``key=value`` parameters (no words after the first)."""
    words: list[str] = []
    params: list[tuple[str, str]] = []
    for token in tokens:
        key, eq, value = token.partition("=")
        if eq:
            params.append((key, value))
        elif params:
            raise ProtocolError(f"word {token!r} after parameters", seq)
        else:
            words.append(token)
    result = tuple(params)
    _check_params(result, seq)
    return tuple(words), result


def _join(*parts: object, params: Params = ()) -> str:
    return " ".join([*(str(p) for p in parts), *(f"{k}={v}" for k, v in params)])


def param(params: Params, key: str) -> str | None:
    return next((v for k, v in params if k == key), None)


def _word_ok(word: str) -> bool:
    return bool(word) and "=" not in word and all("!" <= c <= "~" for c in word)


@dataclass(frozen=True, slots=True)
class Command:
    """Host to controller: ``<seq> <VERB> [<port>] [word ...] [key=value ...]``."""

    seq: int
    verb: str
    port: int | None = None
    args: tuple[str, ...] = ()
    params: Params = ()

    def __post_init__(self) -> None:
        number_field(str(self.seq), "sequence number", 1, NUMBER_MAX)
        if not _NAME.fullmatch(self.verb) or self.verb in ("OK", "ERR", "PORT"):
            raise ProtocolError(f"bad verb {self.verb!r}", self.seq)
        if self.port is not None and not 1 <= self.port <= MAX_PORT:
            raise ProtocolError(f"port {self.port} is outside 1-{MAX_PORT}", self.seq)
        if not all(_word_ok(a) for a in self.args):
            raise ProtocolError("bad positional word", self.seq)
        _check_params(self.params, self.seq)

    def __str__(self) -> str:
        port = () if self.port is None else (self.port,)
        return _join(self.seq, self.verb, *port, *self.args, params=self.params)

    def __bytes__(self) -> bytes:
        return str(self).encode("ascii") + b"\n"


@dataclass(frozen=True, slots=True)
class Ack:
    """Controller to host: ``<seq> OK [key=value ...]`` or ``<seq> ERR <reason>``."""

    seq: int
    ok: bool
    params: Params = ()
    reason: str = ""

    def __post_init__(self) -> None:
        number_field(str(self.seq), "sequence number", 1, NUMBER_MAX)
        _check_params(self.params, self.seq)
        if self.ok and self.reason:
            raise ProtocolError("an OK carries no reason", self.seq)
        if not self.ok and self.params:
            raise ProtocolError("an ERR carries no parameters", self.seq)
        if not self.ok and self.reason != " ".join(self.reason.split()):
            raise ProtocolError("an ERR carries a reason of single-spaced words", self.seq)
        if not self.ok and not (self.reason and all(" " <= c <= "~" for c in self.reason)):
            raise ProtocolError("an ERR needs a printable reason", self.seq)

    def __str__(self) -> str:
        if self.ok:
            return _join(self.seq, "OK", params=self.params)
        return _join(self.seq, "ERR", self.reason)

    def __bytes__(self) -> bytes:
        return str(self).encode("ascii") + b"\n"


@dataclass(frozen=True, slots=True)
class StatusLine:
    """Controller to host, answering STATUS: ``<seq> PORT <port> key=value ...``."""

    seq: int
    port: int
    params: Params = ()

    def __post_init__(self) -> None:
        number_field(str(self.seq), "sequence number", 1, NUMBER_MAX)
        number_field(str(self.port), "port", 1, MAX_PORT, self.seq)
        _check_params(self.params, self.seq)

    def __str__(self) -> str:
        return _join(self.seq, "PORT", self.port, params=self.params)

    def __bytes__(self) -> bytes:
        return str(self).encode("ascii") + b"\n"


@dataclass(frozen=True, slots=True)
class EventLine:
    """Controller to host: ``EVT <counter> <port> <NAME> [word ...] t=<ms> [key=value]``.

    ``t`` is the controller's millisecond clock when the fact was settled; the
    canonical line puts it first among the parameters (a receiver accepts any place).
    """

    counter: int
    port: int
    name: str
    t: int
    args: tuple[str, ...] = ()
    params: Params = ()

    def __post_init__(self) -> None:
        number_field(str(self.counter), "event counter", 0, NUMBER_MAX)
        number_field(str(self.port), "port", 0, MAX_PORT)
        number_field(str(self.t), "clock", 0, CLOCK_MAX)
        if not _NAME.fullmatch(self.name):
            raise ProtocolError(f"bad event name {self.name!r}")
        if not all(_word_ok(a) for a in self.args):
            raise ProtocolError("bad positional word")
        _check_params(self.params)
        if param(self.params, "t") is not None:
            raise ProtocolError("t is a field, not an extra parameter")
        _check_event_shape(self.name, self.args)

    def __str__(self) -> str:
        params = (("t", str(self.t)), *self.params)
        return _join("EVT", self.counter, self.port, self.name, *self.args, params=params)

    def __bytes__(self) -> bytes:
        return str(self).encode("ascii") + b"\n"


Message = Command | Ack | StatusLine | EventLine


def _check_event_shape(name: str, args: tuple[str, ...]) -> None:
    if name == EventName.DIGIT:
        if len(args) != 1 or len(args[0]) != 1 or args[0] not in _DIGITS:
            raise ProtocolError("DIGIT takes one digit 0-9")
    elif name in EventName.__members__ and args:
        raise ProtocolError(f"{name} takes no words")


def _check_command_shape(command: Command) -> None:
    """Values of the commands we know; CONFIG's are checked by ``config_from_command``."""
    seq, verb, args, params = command.seq, command.verb, command.args, command.params
    if verb == Verb.RING:
        if args[0] not in _RING_WORDS:
            raise ProtocolError("RING takes ON or OFF", seq)
        allowed = {"cadence"} if args[0] == "ON" else set()
        if extra := {k for k, _ in params} - allowed:
            raise ProtocolError(f"RING {args[0]} takes no {sorted(extra)[0]}", seq)
        if (cadence := param(params, "cadence")) is not None:
            _parse_cadence(cadence, seq)
    elif verb in (Verb.FEED, Verb.HOOK, Verb.DIAL, Verb.STATUS, Verb.HELLO) and params:
        raise ProtocolError(f"{verb} takes no parameters", seq)
    if verb == Verb.FEED and args[0] not in _FEED_WORDS:
        raise ProtocolError("FEED takes NORMAL, REVERSED or OPEN", seq)
    if verb == Verb.HOOK and args[0] not in _HOOK_WORDS:
        raise ProtocolError("HOOK takes OFFHOOK or ONHOOK", seq)
    if verb == Verb.DIAL and not (len(args[0]) <= MAX_DIAL and all(c in _DIGITS for c in args[0])):
        raise ProtocolError(f"DIAL takes 1-{MAX_DIAL} digits 0-9", seq)


def _parse_cadence(text: str, seq: int | None = None) -> tuple[int, ...]:
    if not _CADENCE.fullmatch(text):
        raise ProtocolError("cadence is comma-separated milliseconds", seq)
    values = tuple(int(v) for v in text.split(","))
    if len(values) % 2 or len(values) > MAX_CADENCE or not all(values):
        raise ProtocolError(f"cadence needs 2-{MAX_CADENCE} on/off pairs above 0 ms", seq)
    return values


def parse_line(text: str) -> Message:
    """One line without its newline (a trailing CR is tolerated) into a message."""
    text = text.removesuffix("\r")
    if len(text) > MAX_LINE:
        raise ProtocolError(f"line of {len(text)} characters exceeds {MAX_LINE}")
    if not all(" " <= c <= "~" for c in text):
        raise ProtocolError("line holds a character that is not printable ASCII")
    tokens = text.split()
    if not tokens:
        raise ProtocolError("empty line")
    if tokens[0] == "EVT":
        return _parse_event(tokens[1:])
    seq = number_field(tokens[0], "sequence number", 1, NUMBER_MAX)
    if len(tokens) < 2:
        raise ProtocolError("nothing after the sequence number", seq)
    word, rest = tokens[1], tokens[2:]
    if word == "OK":
        words, params = _split(rest, seq)
        if words:
            raise ProtocolError("OK takes only key=value parameters", seq)
        return Ack(seq, True, params)
    if word == "ERR":
        if not rest:
            raise ProtocolError("ERR without a reason", seq)
        return Ack(seq, False, reason=" ".join(rest))
    if word == "PORT":
        words, params = _split(rest, seq)
        if len(words) != 1:
            raise ProtocolError("PORT takes a port number then key=value", seq)
        return StatusLine(seq, number_field(words[0], "port", 1, MAX_PORT, seq), params)
    if not _NAME.fullmatch(word):
        raise ProtocolError(f"bad verb {word!r}", seq)
    words, params = _split(rest, seq)
    port: int | None = None
    if (shape := _COMMAND_SHAPES.get(word)) is not None:
        takes_port, arity = shape
        if takes_port:
            if not words:
                raise ProtocolError(f"{word} needs a port", seq)
            port = number_field(words[0], "port", 1, MAX_PORT, seq)
            words = words[1:]
        if len(words) != arity:
            raise ProtocolError(f"{word} takes {arity} word(s) after its port", seq)
    command = Command(seq, word, port, words, params)
    _check_command_shape(command)
    return command


def _parse_event(tokens: list[str]) -> EventLine:
    if len(tokens) < 3:
        raise ProtocolError("EVT needs a counter, a port and a name")
    counter = number_field(tokens[0], "event counter", 0, NUMBER_MAX)
    port = number_field(tokens[1], "port", 0, MAX_PORT)
    name = tokens[2]
    if not _NAME.fullmatch(name):
        raise ProtocolError(f"bad event name {name!r}")
    words, params = _split(tokens[3:])
    t = param(params, "t")
    if t is None:
        raise ProtocolError("event without t=")
    clock = number_field(t, "clock", 0, CLOCK_MAX)
    return EventLine(counter, port, name, clock, words, tuple(p for p in params if p[0] != "t"))


def decode_line(raw: bytes) -> Message:
    """Bytes of one line (without the newline) into a message, or ProtocolError."""
    if len(raw) > MAX_LINE + 1:  # +1: the CR some terminals add
        raise ProtocolError(f"line of {len(raw)} bytes exceeds {MAX_LINE}")
    if any(b > 0x7E for b in raw):
        raise ProtocolError("line holds a byte that is not ASCII")
    return parse_line(raw.decode("ascii"))


# -- intents and signals ---------------------------------------------------------------


def intent_to_command(intent: LineIntent, seq: int) -> Command:
    match intent:
        case Ring(port, True, cadence):
            params = (("cadence", ",".join(map(str, cadence))),) if cadence else ()
            return Command(seq, Verb.RING, port, ("ON",), params)
        case Ring(port, False, _):
            return Command(seq, Verb.RING, port, ("OFF",))
        case Feed(port, mode):
            return Command(seq, Verb.FEED, port, (mode.name,))
        case Hook(port, off):
            return Command(seq, Verb.HOOK, port, ("OFFHOOK" if off else "ONHOOK",))
        case DialPulses(port, digits):
            return Command(seq, Verb.DIAL, port, (digits,))
    raise TypeError(f"not a line intent: {intent!r}")


def command_to_intent(command: Command) -> LineIntent | None:
    """The intent a parsed RING/FEED/HOOK/DIAL command carries; None for other verbs."""
    port = command.port
    if port is None or not command.args:
        return None
    word = command.args[0]
    match command.verb:
        case Verb.RING:
            cadence = param(command.params, "cadence")
            on = _RING_WORDS[word]
            return Ring(port, on, _parse_cadence(cadence, command.seq) if cadence else ())
        case Verb.FEED:
            return Feed(port, _FEED_WORDS[word])
        case Verb.HOOK:
            return Hook(port, _HOOK_WORDS[word])
        case Verb.DIAL:
            return DialPulses(port, word)
    return None


def signal_to_event(signal: LineSignal, counter: int, t: int, params: Params = ()) -> EventLine:
    match signal:
        case ControllerReset():
            return EventLine(counter, 0, EventName.RESET, t, (), params)
        case PulseDigit(port, digit):
            return EventLine(counter, port, EventName.DIGIT, t, (digit,), params)
        case _:
            return EventLine(counter, signal.port, _SIGNAL_EVENTS[type(signal)], t, (), params)


def event_to_signal(event: EventLine) -> LineSignal | None:
    """The signal an event reports; None for a name from a newer protocol."""
    if event.name == EventName.RESET:
        return ControllerReset()
    if event.name == EventName.DIGIT:
        return PulseDigit(event.port, event.args[0])
    kind = _EVENT_SIGNALS.get(event.name)
    return None if kind is None else kind(event.port)


_PortSignal = (
    type[OffHook]
    | type[OnHook]
    | type[Flash]
    | type[RingStart]
    | type[RingStop]
    | type[PolarityReversal]
    | type[LoopCurrentDrop]
)
_EVENT_SIGNALS: Final[dict[str, _PortSignal]] = {
    EventName.OFFHOOK: OffHook,
    EventName.ONHOOK: OnHook,
    EventName.FLASH: Flash,
    EventName.RINGSTART: RingStart,
    EventName.RINGSTOP: RingStop,
    EventName.POLARITY: PolarityReversal,
    EventName.LOOPDROP: LoopCurrentDrop,
}
_SIGNAL_EVENTS: Final[dict[type, str]] = {kind: name for name, kind in _EVENT_SIGNALS.items()}
