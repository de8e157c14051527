"""The line controller's configuration and handshake values: what the host sends in
CONFIG for each port (from the board file), the HELLO answer, and a port's STATUS line.
The wire grammar they are written in is ``controller_protocol``'s."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final, Self

from appliance.lines.controller_protocol import (
    COUNTRY_CODE,
    MAX_CADENCE,
    MAX_PORT,
    TOKEN,
    Ack,
    Command,
    Params,
    ProtocolError,
    StatusLine,
    Verb,
    number_field,
)
from appliance.lines.pulse import PulseWindows
from appliance.lines.signals import FeedMode, PortType

# -- port configuration --------------------------------------------------------------


_W: Final = PulseWindows()


@dataclass(frozen=True, slots=True)
class FxsConfig:
    """One FXS port's board settings (times in ms, ring voltage in V rms).

    A RING's cadence may have at most ``cadence_max_segments`` on/off segments, each
    of ``cadence_min_ms``-``cadence_max_ms``; the hook decoder's windows follow.
    """

    port: int
    country: str = "US"
    impedance: str = "r600"  # a preset name the SLIC driver knows
    ring_vrms: int = 45
    ring_hz: int = 20
    cadence_min_ms: int = 100
    cadence_max_ms: int = 8000
    cadence_max_segments: int = 8
    debounce_ms: int = _W.debounce_ms
    break_min_ms: int = _W.break_min_ms
    break_max_ms: int = _W.break_max_ms
    make_min_ms: int = _W.make_min_ms
    make_max_ms: int = _W.make_max_ms
    interdigit_ms: int = _W.interdigit_ms
    flash_min_ms: int = _W.flash_min_ms
    flash_max_ms: int = _W.flash_max_ms

    def __post_init__(self) -> None:
        _check_common(self.port, self.country, self.impedance)
        if not (20 <= self.ring_vrms <= 100 and 15 <= self.ring_hz <= 70):
            raise ValueError("ring voltage 20-100 V rms and frequency 15-70 Hz")
        if not 0 < self.cadence_min_ms <= self.cadence_max_ms <= 65535:
            raise ValueError("cadence limits need 0 < min <= max <= 65535 ms")
        if not 2 <= self.cadence_max_segments <= MAX_CADENCE:
            raise ValueError(f"cadence segments must be 2-{MAX_CADENCE}")
        self.windows  # noqa: B018 -- PulseWindows checks the windows' order

    @property
    def type(self) -> PortType:
        return PortType.FXS

    @property
    def windows(self) -> PulseWindows:
        return PulseWindows(
            self.debounce_ms,
            self.break_min_ms,
            self.break_max_ms,
            self.make_min_ms,
            self.make_max_ms,
            self.interdigit_ms,
            self.flash_min_ms,
            self.flash_max_ms,
        )

    def cadence_allowed(self, cadence_ms: tuple[int, ...]) -> bool:
        return (
            0 < len(cadence_ms) <= self.cadence_max_segments
            and len(cadence_ms) % 2 == 0
            and all(self.cadence_min_ms <= ms <= self.cadence_max_ms for ms in cadence_ms)
        )


@dataclass(frozen=True, slots=True)
class FxoConfig:
    """One FXO port's board settings (times in ms).

    ``disconnect`` lists what the controller watches and reports as the far end
    hanging up: ``loop`` (LOOPDROP once loop current stays away ``loop_drop_ms``)
    and ``polarity`` (POLARITY). Ring voltage counts as a ring (RINGSTART) once held
    ``ring_min_ms``, and a burst ends (RINGSTOP) after ``ring_debounce_ms`` without
    it. DIAL breaks and makes the loop per ``dial_*_ms``.
    """

    port: int
    country: str = "US"
    impedance: str = "r600"
    disconnect: tuple[str, ...] = ("loop", "polarity")
    loop_drop_ms: int = 350
    ring_debounce_ms: int = 50
    ring_min_ms: int = 150
    dial_break_ms: int = 60
    dial_make_ms: int = 40
    dial_gap_ms: int = 800

    def __post_init__(self) -> None:
        _check_common(self.port, self.country, self.impedance)
        modes = self.disconnect
        if not set(modes) <= {"loop", "polarity"} or len(set(modes)) != len(modes):
            raise ValueError("disconnect modes are loop and/or polarity")
        times = (self.loop_drop_ms, self.ring_debounce_ms, self.ring_min_ms)
        if not all(0 < t <= 65535 for t in (*times, self.dial_break_ms, self.dial_make_ms)):
            raise ValueError("FXO times must be 1-65535 ms")
        if not 0 < self.dial_gap_ms <= 65535:
            raise ValueError("FXO times must be 1-65535 ms")

    @property
    def type(self) -> PortType:
        return PortType.FXO


PortConfig = FxsConfig | FxoConfig


def _check_common(port: int, country: str, impedance: str) -> None:
    if not 1 <= port <= MAX_PORT:
        raise ValueError(f"port {port} is outside 1-{MAX_PORT}")
    if not COUNTRY_CODE.fullmatch(country):
        raise ValueError(f"country {country!r} is not an ISO 3166 alpha-2 code")
    if not TOKEN.fullmatch(impedance):
        raise ValueError(f"impedance preset {impedance!r} is not a lower-case token")


# CONFIG keys in wire order and the fields they carry; a two-field key is "<min>-<max>".
_CONFIG_WIRE: Final[dict[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "fxs": (
        ("country", ("country",)),
        ("impedance", ("impedance",)),
        ("ring_v", ("ring_vrms",)),
        ("ring_hz", ("ring_hz",)),
        ("cadence", ("cadence_min_ms", "cadence_max_ms")),
        ("segments", ("cadence_max_segments",)),
        ("debounce", ("debounce_ms",)),
        ("flash", ("flash_min_ms", "flash_max_ms")),
        ("break", ("break_min_ms", "break_max_ms")),
        ("make", ("make_min_ms", "make_max_ms")),
        ("interdigit", ("interdigit_ms",)),
    ),
    "fxo": (
        ("country", ("country",)),
        ("impedance", ("impedance",)),
        ("disconnect", ("disconnect",)),
        ("loop_drop", ("loop_drop_ms",)),
        ("ring_debounce", ("ring_debounce_ms",)),
        ("ring_min", ("ring_min_ms",)),
        ("dial_break", ("dial_break_ms",)),
        ("dial_make", ("dial_make_ms",)),
        ("dial_gap", ("dial_gap_ms",)),
    ),
}


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value)


def _read(text: str, like: object, key: str, seq: int) -> object:
    """A CONFIG value, read as the type of the field's default."""
    if isinstance(like, int):
        return number_field(text, key, 0, 65535, seq)
    if isinstance(like, tuple):
        return () if text == "none" else tuple(text.split(","))
    return text


def config_to_command(config: PortConfig, seq: int) -> Command:
    wire = _CONFIG_WIRE[config.type.value]
    params = tuple((k, "-".join(_show(getattr(config, f)) for f in fs)) for k, fs in wire)
    return Command(seq, Verb.CONFIG, config.port, (), (("type", config.type.value), *params))


def config_from_command(command: Command) -> PortConfig:
    """A CONFIG command's settings; keys left out take the defaults above."""
    seq, values = command.seq, dict(command.params)
    if command.verb != Verb.CONFIG or command.port is None:
        raise ProtocolError("not a CONFIG command", seq)
    kind = values.pop("type", "")
    if kind not in _CONFIG_WIRE:
        raise ProtocolError("CONFIG needs type=fxs or type=fxo", seq)
    wire = dict(_CONFIG_WIRE[kind])
    if extra := set(values) - set(wire):
        raise ProtocolError(f"CONFIG {kind} has no setting {sorted(extra)[0]}", seq)
    default: PortConfig = FxsConfig(command.port) if kind == "fxs" else FxoConfig(command.port)
    changes: dict[str, Any] = {}
    for key, text in values.items():
        fields = wire[key]
        parts = text.split("-") if len(fields) > 1 else [text]
        if len(parts) != len(fields):
            raise ProtocolError(f"{key} is <min>-<max> milliseconds", seq)
        for name, part in zip(fields, parts, strict=True):
            changes[name] = _read(part, getattr(default, name), key, seq)
    try:
        return replace(default, **changes)
    except ValueError as exc:  # a value the dataclasses refuse: the same answer
        raise ProtocolError(str(exc), seq) from exc


# -- handshake and status ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """What a controller says of itself in its answer to HELLO."""

    controller: str
    proto: int
    ports: int

    def to_ack(self, seq: int) -> Ack:
        params = (("controller", self.controller), ("proto", str(self.proto)))
        return Ack(seq, True, params + (("ports", str(self.ports)),))

    @classmethod
    def from_ack(cls, ack: Ack) -> Self:
        values = dict(ack.params)
        missing = [k for k in ("controller", "proto", "ports") if k not in values]
        if missing:
            raise ProtocolError(f"HELLO answer lacks {missing[0]}=", ack.seq)
        proto = number_field(values["proto"], "proto", 0, 65535, ack.seq)
        ports = number_field(values["ports"], "ports", 0, MAX_PORT, ack.seq)
        return cls(values["controller"], proto, ports)


_ON_OFF: Final = {"on": True, "off": False}


@dataclass(frozen=True, slots=True)
class PortStatus:
    """One port as the controller sees it now (a STATUS answer's PORT line).

    ``off_hook``: FXS, the phone's debounced hook; FXO, whether we hold the line.
    ``ringing``: FXS, a ring cadence is running; FXO, ring voltage is on the line now.
    ``feed`` is FXS only; ``reversed`` (line polarity) and ``loop`` (loop current
    present, as LOOPDROP reports it) are FXO only. ``configured`` is False until a
    CONFIG was accepted since the controller's last reset.
    """

    port: int
    type: PortType
    configured: bool
    off_hook: bool = False
    ringing: bool = False
    feed: FeedMode = FeedMode.NORMAL
    reversed: bool = False
    loop: bool = False

    def to_line(self, seq: int) -> StatusLine:
        onoff = ("off", "on")
        params: Params = (
            ("type", self.type.value),
            ("cfg", "yes" if self.configured else "no"),
            ("hook", "off" if self.off_hook else "on"),
            ("ring", onoff[self.ringing]),
        )
        if self.type is PortType.FXS:
            params += (("feed", self.feed.value),)
        else:
            polarity = "reversed" if self.reversed else "normal"
            params += (("polarity", polarity), ("loop", onoff[self.loop]))
        return StatusLine(seq, self.port, params)

    @classmethod
    def from_line(cls, line: StatusLine) -> Self:
        values, seq = dict(line.params), line.seq

        def pick(key: str, choices: dict[str, bool], default: bool = False) -> bool:
            text = values.get(key)
            if text is None:
                return default
            if text not in choices:
                raise ProtocolError(f"PORT {key}={text} is not one of {sorted(choices)}", seq)
            return choices[text]

        try:
            kind = PortType(values.get("type", ""))
            feed = FeedMode(values.get("feed", "normal"))
        except ValueError as exc:
            raise ProtocolError(f"PORT {line.port}: bad type or feed", seq) from exc
        return cls(
            line.port,
            kind,
            pick("cfg", {"yes": True, "no": False}),
            pick("hook", {"off": True, "on": False}),
            pick("ring", _ON_OFF),
            feed,
            pick("polarity", {"reversed": True, "normal": False}),
            pick("loop", _ON_OFF),
        )
