"""Board definitions: what the software needs to know about one board, read from board/*.toml.

A board file names the serial device that talks to the line controller, the ALSA PCM
and channel that carries each port's audio, the per-port line settings the controller
is configured with (ring, cadence limits, caller ID, flash and debounce windows,
impedance, disconnect detection), LEDs, the reset button and the watchdog. The schema
is described field by field in board/README.md.

Files are read and every key checked by ``board_loader`` (a bad one raises
`BoardError` naming the file, the key path and the reason; unknown keys are refused, so
a typo cannot silently fall back to a default). `check_devices` here lists the device
nodes a board needs that this machine lacks, for one clear start-up error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from appliance.lines.signals import PortType

SCHEMA_VERSION: Final = 1
BOARDS_ENV: Final = "YAKYAK_BOARDS"
PTY_DEVICE: Final = "pty"  # the sim's controller emulator makes the pty itself
RUN_DIR_FIELD: Final = "{run_dir}"
MAX_PORTS: Final = 8
# Standard UART rates the controller firmware supports; anything else is a typo.
BAUD_RATES: Final = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

_ALSA_CARD = re.compile(r"^(?:plug)?hw:(?:CARD=)?([A-Za-z0-9_-]+)")


class BoardError(ValueError):
    """A board that cannot be used; the message is one line naming file, key and reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class FlowControl(Enum):
    NONE = "none"
    RTSCTS = "rtscts"  # hardware handshake: needs the RTS/CTS pins wired to the controller
    XONXOFF = "xonxoff"  # unusable with a binary protocol; kept for bring-up consoles


class CallerIdMode(Enum):
    BELL202 = "bell202"  # FSK 1200/2200 Hz (Telcordia GR-30): North America
    V23 = "v23"  # FSK 1300/2100 Hz (ETSI EN 300 659): most of Europe
    DTMF = "dtmf"  # DTMF digits (ETSI TS 101 182 annex B): Nordics, parts of Asia


class CallerIdTiming(Enum):
    AFTER_FIRST_RING = "after_first_ring"  # GR-30, and Germany
    BEFORE_FIRST_RING = "before_first_ring"  # after a line reversal: UK (SIN 227), France


class DisconnectMode(Enum):
    LOOP_CURRENT = "loop_current"  # the exchange drops loop current (CPC)
    POLARITY_REVERSAL = "polarity_reversal"
    BUSY_TONE = "busy_tone"  # exchanges that signal nothing: detect the tone in audio


class Impedance(Enum):
    """Line impedance presets the line interface's codec/SLIC can synthesise."""

    R600 = "600"  # 600 ohm resistive: North America
    R900 = "900"  # 900 ohm: some PBX trunks
    CTR21 = "270+750||150nF"  # TBR21/CTR21 harmonised European
    DE = "220+820||115nF"  # Germany
    GB = "370+620||310nF"  # UK BT3


@dataclass(frozen=True, slots=True)
class GpioSpec:
    """One GPIO line as libgpiod names it: chip device and line offset."""

    chip: str  # "gpiochip0": the character device /dev/gpiochip0
    line: int
    active_low: bool = False


@dataclass(frozen=True, slots=True)
class SerialSpec:
    """The UART to the line controller."""

    device: str  # "/dev/ttyAMA0", or "pty" for the sim
    baud: int
    flow_control: FlowControl
    reset_gpio: GpioSpec | None  # pulses the controller's reset pin; None: no such wire
    protocol_version: int  # the controller protocol version the board's firmware speaks

    @property
    def is_pty(self) -> bool:
        return self.device == PTY_DEVICE


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """Where a port's audio goes: one channel of an ALSA PCM at 8 kHz S16_LE, 20 ms periods."""

    device: str  # an ALSA PCM name, e.g. "hw:CARD=yakcodec,DEV=0"
    channels: int  # channels the PCM is opened with: 2 when a stereo codec carries two ports
    channel: int  # this port's channel of that PCM
    gain_to_line_db: float = 0.0
    gain_from_line_db: float = 0.0

    def resolve(self, run_dir: Path) -> str:
        """The device string with {run_dir} filled in (the sim's files live there)."""
        return self.device.replace(RUN_DIR_FIELD, str(run_dir))

    @property
    def card(self) -> str | None:
        """The ALSA card id for hw:/plughw: devices, else None (a plugin PCM)."""
        match = _ALSA_CARD.match(self.device)
        return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class FxsSpec:
    """An FXS port: we power and ring an analog phone."""

    ring_vrms: float
    ring_hz: float
    ring_segment_min_ms: int  # shortest on or off segment of a ring cadence
    ring_segment_max_ms: int  # longest on or off segment
    ring_cadence_max_segments: int
    hook_debounce_ms: int
    flash_min_ms: int  # an on-hook shorter than this is a glitch
    flash_max_ms: int  # an on-hook longer than this is a hang-up
    caller_id: tuple[CallerIdMode, ...]  # the first one is sent; () sends none
    caller_id_timing: CallerIdTiming

    def cadence_allowed(self, cadence_ms: tuple[int, ...]) -> bool:
        """Whether the controller will accept this ring cadence (on, off, on, off, ...)."""
        return (
            0 < len(cadence_ms) <= self.ring_cadence_max_segments
            and len(cadence_ms) % 2 == 0
            and all(self.ring_segment_min_ms <= ms <= self.ring_segment_max_ms for ms in cadence_ms)
        )


@dataclass(frozen=True, slots=True)
class FxoSpec:
    """An FXO port: we are the phone towards an exchange line."""

    ring_debounce_ms: int
    ring_on_min_ms: int  # a shorter burst of ring voltage is noise, not a ring
    ring_off_max_ms: int  # a longer gap between bursts means the caller gave up
    caller_id: tuple[CallerIdMode, ...]  # the kinds listened for; () listens for none
    disconnect: tuple[DisconnectMode, ...]
    disconnect_min_ms: int  # loop current must stay away this long to mean a hang-up
    flash_ms: int  # length of the on-hook break we send as a hook flash


@dataclass(frozen=True, slots=True)
class PortSpec:
    number: int  # as printed on the board's front panel, from 1
    type: PortType
    label: str
    audio: AudioSpec
    impedance: Impedance
    fxs: FxsSpec | None  # set exactly when type is FXS
    fxo: FxoSpec | None  # set exactly when type is FXO


@dataclass(frozen=True, slots=True)
class LedSpec:
    name: str  # "power", "status", "line1": what the LED is for
    gpio: GpioSpec


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    gpio: GpioSpec
    hold_s: float  # held this long, the button asks for a factory reset


@dataclass(frozen=True, slots=True)
class WatchdogSpec:
    device: str  # "/dev/watchdog"
    timeout_s: int


@dataclass(frozen=True, slots=True)
class CardSpec:
    """One ALSA PCM and the ports that share it (two on a stereo codec)."""

    device: str
    channels: int
    ports: tuple[int, ...]  # port number by channel; 0 where a channel carries no port


@dataclass(frozen=True, slots=True)
class BoardSpec:
    name: str
    description: str
    source: Path  # the file it was read from
    country: str
    controller: SerialSpec
    ports: tuple[PortSpec, ...]
    leds: tuple[LedSpec, ...] = ()
    reset_button: ButtonSpec | None = None
    watchdog: WatchdogSpec | None = None
    alsa_config: str = ""  # extra ALSA configuration the board's PCMs need (the sim's)

    def port(self, number: int) -> PortSpec:
        for port in self.ports:
            if port.number == number:
                return port
        raise KeyError(f"board {self.name!r} has no port {number}")

    def cards(self) -> tuple[CardSpec, ...]:
        """ALSA PCMs in order of first use; each is opened once, however many ports share it."""
        order: list[str] = []
        by_device: dict[str, list[int]] = {}
        channels: dict[str, int] = {}
        for port in self.ports:
            device = port.audio.device
            if device not in by_device:
                order.append(device)
                by_device[device] = [0] * port.audio.channels
                channels[device] = port.audio.channels
            by_device[device][port.audio.channel] = port.number
        return tuple(CardSpec(d, channels[d], tuple(by_device[d])) for d in order)


@dataclass(frozen=True, slots=True)
class CountryPreset:
    """Line defaults for one country; each can still be set per port in the board file."""

    impedance: Impedance
    ring_vrms: float
    ring_hz: float
    flash_min_ms: int
    flash_max_ms: int
    caller_id: tuple[CallerIdMode, ...]
    caller_id_timing: CallerIdTiming
    disconnect: tuple[DisconnectMode, ...]
    fxo_flash_ms: int


_US: Final = CountryPreset(
    impedance=Impedance.R600,
    ring_vrms=45.0,
    ring_hz=20.0,
    flash_min_ms=100,
    flash_max_ms=900,
    caller_id=(CallerIdMode.BELL202,),
    caller_id_timing=CallerIdTiming.AFTER_FIRST_RING,
    disconnect=(DisconnectMode.LOOP_CURRENT, DisconnectMode.BUSY_TONE),
    fxo_flash_ms=600,
)
COUNTRY_PRESETS: Final[Mapping[str, CountryPreset]] = {
    "US": _US,
    "CA": _US,
    "GB": CountryPreset(
        impedance=Impedance.GB,
        ring_vrms=50.0,
        ring_hz=25.0,
        flash_min_ms=60,  # BT timed-break recall is about 100 ms
        flash_max_ms=150,
        caller_id=(CallerIdMode.V23,),
        caller_id_timing=CallerIdTiming.BEFORE_FIRST_RING,
        disconnect=(DisconnectMode.LOOP_CURRENT, DisconnectMode.POLARITY_REVERSAL),
        fxo_flash_ms=100,
    ),
    "DE": CountryPreset(
        impedance=Impedance.DE,
        ring_vrms=45.0,
        ring_hz=25.0,
        flash_min_ms=60,
        flash_max_ms=150,
        caller_id=(CallerIdMode.V23,),
        caller_id_timing=CallerIdTiming.AFTER_FIRST_RING,
        disconnect=(DisconnectMode.BUSY_TONE, DisconnectMode.LOOP_CURRENT),
        fxo_flash_ms=100,
    ),
}

# Per-port defaults that do not depend on the country.
HOOK_DEBOUNCE_MS: Final = 30
RING_SEGMENT_MIN_MS: Final = 100
RING_SEGMENT_MAX_MS: Final = 8000
RING_CADENCE_MAX_SEGMENTS: Final = 8
RING_DEBOUNCE_MS: Final = 50
RING_ON_MIN_MS: Final = 150
RING_OFF_MAX_MS: Final = 8000
DISCONNECT_MIN_MS: Final = 350


# -- is the hardware there? ------------------------------------------------------------


def _gpio_specs(spec: BoardSpec) -> Iterator[tuple[str, GpioSpec]]:
    if spec.controller.reset_gpio is not None:
        yield "controller.reset_gpio", spec.controller.reset_gpio
    for index, led in enumerate(spec.leds):
        yield f"leds[{index}].gpio", led.gpio
    if spec.reset_button is not None:
        yield "reset_button.gpio", spec.reset_button.gpio


def check_devices(spec: BoardSpec, root: Path = Path("/")) -> list[str]:
    """Device nodes this board needs that are missing, one line each; [] when all are there.

    `root` lets tests point at a fake tree. PCMs that are ALSA plugins (the sim's files)
    are not checked here: opening them says what is wrong.
    """

    def exists(path: str) -> bool:
        return (root / path.lstrip("/")).exists()

    missing: list[str] = []
    serial = spec.controller
    if not serial.is_pty and not exists(serial.device):
        missing.append(f"controller.device: {serial.device} does not exist (is the UART enabled?)")
    cards: dict[str, list[int]] = {}
    for port in spec.ports:
        if (card := port.audio.card) is not None:
            cards.setdefault(card, []).append(port.number)
    if cards and not exists("/dev/snd"):
        missing.append("audio: /dev/snd does not exist (no ALSA sound cards on this machine)")
    elif cards:
        for card, numbers in cards.items():
            # /proc/asound/<id> is a symlink the kernel makes for each card's id.
            if not (card.isdigit() or exists(f"/proc/asound/{card}")):
                ports = ", ".join(map(str, numbers))
                missing.append(f"audio: ALSA card {card!r} for port(s) {ports} is not present")
    chips: dict[str, list[str]] = {}
    for key, gpio in _gpio_specs(spec):
        chips.setdefault(gpio.chip, []).append(key)
    for chip, keys in chips.items():
        if chip != "sim" and not exists(f"/dev/{chip}"):  # "sim": lines kept in memory
            missing.append(f"{', '.join(keys)}: /dev/{chip} does not exist")
    if spec.watchdog is not None and not exists(spec.watchdog.device):
        missing.append(f"watchdog.device: {spec.watchdog.device} does not exist")
    return missing
