"""The bench rig's configuration file (``hil/bench.example.toml``, hil/README.md).

A bench is a real board under test on the network and, on this machine, the lab
hardware standing in for phones and the exchange: a USB serial relay card, GPIO
inputs (ring detector, loop-current sensors) and an ALSA codec coupled to each line.
Every key is checked when the file is read; a mistake stops the run with one line
naming the file, the key path and the reason, as board files do
(``hil/bench.toml: fxs[0].ring.line: must be an integer from 0 to 1023, got -1``).
Unknown keys are errors: a misspelt key never silently means "default".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from appliance.hw.board_spec import COUNTRY_PRESETS, GpioSpec
from appliance.hw.toml_table import TomlTable

SCHEMA_VERSION: Final = 1
MAX_PORT: Final = 8
MAX_RELAY: Final = 255  # a channel is one byte in the card's frame
_GPIO_CHIP: Final = re.compile(r"^(gpiochip[0-9]{1,3}|sim)$")
_DEV_PATH: Final = re.compile(r"^/dev/[A-Za-z0-9_./-]{1,100}$")
_EXTENSION: Final = re.compile(r"^[0-9]{1,15}$")
_HOST: Final = re.compile(r"^[A-Za-z0-9.:-]{1,253}$")


class BenchConfigError(ValueError):
    """One line naming file, key path and reason."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class Checksum(Enum):
    SUM8 = "sum8"  # the sum of every byte before it, & 0xFF (LCUS)
    NONE = "none"


@dataclass(frozen=True, slots=True)
class RelayFrame:
    """How the card is told to switch one relay: ``prefix, channel, state[, checksum]``.

    The default is the common "LCUS" USB relay protocol (CH340 serial, 9600 baud):
    ``A0 <channel from 1> <01 on | 00 off> <sum of the three & FF>``, e.g. ``A0 01 01 A2``
    closes relay 1.
    """

    prefix: tuple[int, ...] = (0xA0,)
    on: int = 0x01
    off: int = 0x00
    checksum: Checksum = Checksum.SUM8

    def encode(self, channel: int, on: bool) -> bytes:
        body = bytes((*self.prefix, channel, self.on if on else self.off))
        if self.checksum is Checksum.SUM8:
            body += bytes((sum(body) & 0xFF,))
        return body


@dataclass(frozen=True, slots=True)
class RelayCardSpec:
    device: str
    baud: int
    frame: RelayFrame


@dataclass(frozen=True, slots=True)
class AudioChannel:
    """One side of an ALSA PCM (as a board file's ``audio``: ``StereoSplit`` for 2)."""

    device: str
    channels: int
    channel: int


@dataclass(frozen=True, slots=True)
class FxsBench:
    """The "phone" on one of the board's FXS ports."""

    port: int
    relay: int  # closes the loop through a resistor: off hook
    ring: GpioSpec  # ring detector: active while ring voltage is on the line
    loop_current: GpioSpec  # active while the board feeds loop current
    audio: AudioChannel


@dataclass(frozen=True, slots=True)
class FxoBench:
    """The "exchange" on one of the board's FXO ports."""

    port: int
    ring_relay: int  # switches the ring generator onto the line
    battery_relay: int  # closed: battery feed on the line (loop current when seized)
    polarity_relay: int  # closed: tip and ring swapped
    seized: GpioSpec  # active while the board draws loop current
    audio: AudioChannel


@dataclass(frozen=True, slots=True)
class BoardTarget:
    """The board under test, as reached across the network."""

    name: str  # its board file, for the report
    host: str
    sip_port: int
    web_url: str  # where /api/live is: "https://192.0.2.10"
    api_token: str
    tls_verify: bool
    ca_file: str | None
    country: str  # its line preset: tones and ring cadence the scenarios expect


@dataclass(frozen=True, slots=True)
class DeskPhoneSpec:
    extension: str
    password: str
    local_address: str  # this machine's address the board reaches (baresip's SIP and RTP)


@dataclass(frozen=True, slots=True)
class BenchTiming:
    sample_ms: int = 10  # GPIO inputs read this often
    ring_hold_ms: int = 100  # detector pulses closer than this are one burst
    ring_gap_max_ms: int = 6000  # no burst for this long: the ringing has stopped
    cadence_tolerance_ms: int = 150  # a measured segment may be this far off
    loop_open_ms: int = 100  # off hook with no loop current this long: the feed is open
    loop_break_ms: int = 1000  # drop_loop() without a duration: battery off this long
    live_poll_ms: int = 100  # /api/live asked this often


@dataclass(frozen=True, slots=True)
class BenchConfig:
    name: str
    description: str
    source: Path
    board: BoardTarget
    desk_phone: DeskPhoneSpec
    relay_card: RelayCardSpec
    timing: BenchTiming
    fxs: tuple[FxsBench, ...]
    fxo: tuple[FxoBench, ...]

    def ports(self) -> set[int]:
        return {p.port for p in self.fxs} | {p.port for p in self.fxo}


def load_bench(path: Path) -> BenchConfig:
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchConfigError(file, "", f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BenchConfigError(file, "", f"not valid TOML: {exc}") from exc
    return parse_bench(raw, path, file)


# -- reading one table ---------------------------------------------------------------


# -- the document ----------------------------------------------------------------------


def parse_bench(raw: Mapping[str, object], source: Path, file: str) -> BenchConfig:
    top = TomlTable(raw, "", file, BenchConfigError)
    schema = top.integer("schema", 1, 1_000)
    if schema != SCHEMA_VERSION:
        top.fail("schema", f"this release reads schema {SCHEMA_VERSION}, got {schema}")
    name = top.text("name", max_len=64)
    description = top.text("description", default="")
    board = _board(top.sub("board", required=True))
    desk = _desk_phone(top.sub("desk_phone", required=True))
    card = _relay_card(top.sub("relay_card", required=True))
    timing = _timing(top.sub("timing"))
    fxs_tables = top.tables("fxs")
    fxo_tables = top.tables("fxo")
    fxs = tuple(_fxs(t) for t in fxs_tables)
    fxo = tuple(_fxo(t) for t in fxo_tables)
    if not fxs and not fxo:
        top.fail("fxs", "the bench must wire at least one port ([[fxs]] or [[fxo]])")
    top.close()
    _check_shared(top, fxs_tables, fxs, fxo_tables, fxo)
    return BenchConfig(name, description, source, board, desk, card, timing, fxs, fxo)


def _board(t: TomlTable) -> BoardTarget:
    name = t.text("name", max_len=32)
    host = t.text("host", max_len=253)
    if not _HOST.fullmatch(host):
        t.fail("host", f"must be a host name or IP address, got {host!r}")
    sip_port = t.integer("sip_port", 1, 65535, default=5060)
    web_url = t.text("web_url", max_len=300)
    if not web_url.startswith(("http://", "https://")):
        t.fail("web_url", f"must start with http:// or https://, got {web_url!r}")
    token = t.text("api_token", max_len=300)
    verify = t.flag("tls_verify", True)
    ca_file = t.text("ca_file", default="") or None
    country = t.text("country", max_len=8)
    if country not in COUNTRY_PRESETS:
        t.fail("country", f"must be one of {', '.join(sorted(COUNTRY_PRESETS))}, got {country!r}")
    t.close()
    return BoardTarget(name, host, sip_port, web_url.rstrip("/"), token, verify, ca_file, country)


def _desk_phone(t: TomlTable) -> DeskPhoneSpec:
    extension = t.text("extension", max_len=15)
    if not _EXTENSION.fullmatch(extension):
        t.fail("extension", f"must be digits, got {extension!r}")
    password = t.text("password", max_len=200)
    local = t.text("local_address", max_len=253)
    if not _HOST.fullmatch(local):
        t.fail("local_address", f"must be an IP address of this machine, got {local!r}")
    t.close()
    return DeskPhoneSpec(extension, password, local)


def _relay_card(t: TomlTable) -> RelayCardSpec:
    device = t.text("device", max_len=105)
    if not _DEV_PATH.fullmatch(device) or "/../" in device:
        t.fail("device", f"must be a device path like /dev/ttyUSB0, got {device!r}")
    baud = t.integer("baud", 1200, 921600, default=9600)
    f = t.sub("frame")
    prefix = f.byte_list("prefix", (0xA0,))
    on = f.integer("on", 0, 255, default=0x01)
    off = f.integer("off", 0, 255, default=0x00)
    if on == off:
        f.fail("off", f"must differ from on ({on})")
    checksum_text = f.text("checksum", default=Checksum.SUM8.value, max_len=8)
    checksum = next((c for c in Checksum if c.value == checksum_text), None)
    if checksum is None:
        f.fail("checksum", f"must be one of 'sum8', 'none', got {checksum_text!r}")
    f.close()
    t.close()
    return RelayCardSpec(device, baud, RelayFrame(prefix, on, off, checksum))


def _timing(t: TomlTable) -> BenchTiming:
    d = BenchTiming()
    sample = t.integer("sample_ms", 1, 50, default=d.sample_ms)
    hold = t.integer("ring_hold_ms", 20, 1000, default=d.ring_hold_ms)
    if hold <= sample:
        t.fail("ring_hold_ms", f"must be longer than sample_ms ({sample}), got {hold}")
    gap = t.integer("ring_gap_max_ms", 500, 20_000, default=d.ring_gap_max_ms)
    tolerance = t.integer("cadence_tolerance_ms", 0, 1000, default=d.cadence_tolerance_ms)
    loop_open = t.integer("loop_open_ms", 10, 2000, default=d.loop_open_ms)
    loop_break = t.integer("loop_break_ms", 100, 10_000, default=d.loop_break_ms)
    poll = t.integer("live_poll_ms", 20, 5000, default=d.live_poll_ms)
    t.close()
    return BenchTiming(sample, hold, gap, tolerance, loop_open, loop_break, poll)


def _gpio(t: TomlTable, key: str) -> GpioSpec:
    sub = t.sub(key, required=True)
    chip = sub.text("chip", max_len=12)
    if not _GPIO_CHIP.fullmatch(chip):
        sub.fail("chip", f"must name a GPIO chip like 'gpiochip0' (or 'sim'), got {chip!r}")
    line = sub.integer("line", 0, 1023)
    active_low = sub.flag("active_low", False)
    sub.close()
    return GpioSpec(chip, line, active_low)


def _audio(t: TomlTable) -> AudioChannel:
    sub = t.sub("audio", required=True)
    device = sub.text("device", max_len=200)
    channels = sub.integer("channels", 1, 2, default=1)
    channel = sub.integer("channel", 0, 1_000, default=0)
    if channel >= channels:
        sub.fail("channel", f"must be {'0 or 1' if channels == 2 else '0'}, got {channel}")
    sub.close()
    return AudioChannel(device, channels, channel)


def _fxs(t: TomlTable) -> FxsBench:
    port = t.integer("port", 1, MAX_PORT)
    relay = t.integer("relay", 1, MAX_RELAY)
    ring = _gpio(t, "ring")
    loop = _gpio(t, "loop_current")
    audio = _audio(t)
    t.close()
    return FxsBench(port, relay, ring, loop, audio)


def _fxo(t: TomlTable) -> FxoBench:
    port = t.integer("port", 1, MAX_PORT)
    ring = t.integer("ring_relay", 1, MAX_RELAY)
    battery = t.integer("battery_relay", 1, MAX_RELAY)
    polarity = t.integer("polarity_relay", 1, MAX_RELAY)
    seized = _gpio(t, "seized")
    audio = _audio(t)
    t.close()
    return FxoBench(port, ring, battery, polarity, seized, audio)


def _check_shared(
    top: TomlTable,
    fxs_tables: list[TomlTable],
    fxs: tuple[FxsBench, ...],
    fxo_tables: list[TomlTable],
    fxo: tuple[FxoBench, ...],
) -> None:
    """Ports, relay channels, GPIO lines and audio channels are each used once; ports
    sharing an audio device agree on its channel count."""
    used: dict[tuple[str, object], str] = {}  # (kind, what) -> the key that took it
    channels: dict[str, tuple[int, str]] = {}

    def claim(kind: str, key: object, where: str, what: str) -> None:
        if (kind, key) in used:
            top.fail(where, f"{what} is already used by {used[(kind, key)]}")
        used[(kind, key)] = where

    entries: list[tuple[TomlTable, FxsBench | FxoBench]] = [
        *zip(fxs_tables, fxs, strict=True),
        *zip(fxo_tables, fxo, strict=True),
    ]
    for table, entry in entries:
        at = table.path
        claim("port", entry.port, at("port"), f"port {entry.port}")
        if isinstance(entry, FxsBench):
            relay_keys = [("relay", entry.relay)]
            inputs = [("ring", entry.ring), ("loop_current", entry.loop_current)]
        else:
            relay_keys = [
                ("ring_relay", entry.ring_relay),
                ("battery_relay", entry.battery_relay),
                ("polarity_relay", entry.polarity_relay),
            ]
            inputs = [("seized", entry.seized)]
        for key, channel in relay_keys:
            claim("relay", channel, at(key), f"relay {channel}")
        for key, gpio in inputs:
            claim("gpio", (gpio.chip, gpio.line), at(key), f"{gpio.chip} line {gpio.line}")
        a = entry.audio
        first = channels.setdefault(a.device, (a.channels, at("audio.channels")))
        if first[0] != a.channels:
            top.fail(at("audio.channels"), f"{a.device} is opened with {first[0]} at {first[1]}")
        where = at("audio.channel")
        claim("audio", (a.device, a.channel), where, f"{a.device} channel {a.channel}")
