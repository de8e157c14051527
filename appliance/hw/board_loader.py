"""Reading board files: where they live, and every key of one checked.

A bad key raises ``BoardError`` naming the file, the key path and the reason
(``board/rpi4.toml: ports[1].audio.channel: must be 0 or 1, got 3``); unknown keys are
refused rather than ignored. The values are ``board_spec``'s.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from appliance.hw.board_spec import (
    BAUD_RATES,
    BOARDS_ENV,
    COUNTRY_PRESETS,
    DISCONNECT_MIN_MS,
    HOOK_DEBOUNCE_MS,
    MAX_PORTS,
    PTY_DEVICE,
    RING_CADENCE_MAX_SEGMENTS,
    RING_DEBOUNCE_MS,
    RING_OFF_MAX_MS,
    RING_ON_MIN_MS,
    RING_SEGMENT_MAX_MS,
    RING_SEGMENT_MIN_MS,
    RUN_DIR_FIELD,
    SCHEMA_VERSION,
    AudioSpec,
    BoardError,
    BoardSpec,
    ButtonSpec,
    CallerIdMode,
    CallerIdTiming,
    CountryPreset,
    DisconnectMode,
    FlowControl,
    FxoSpec,
    FxsSpec,
    GpioSpec,
    Impedance,
    LedSpec,
    PortSpec,
    SerialSpec,
    WatchdogSpec,
)
from appliance.hw.toml_table import TomlTable
from appliance.lines.signals import PortType

_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_DEV_PATH: Final = re.compile(r"/dev/[A-Za-z0-9_./-]{1,100}")
# "sim": lines the sim board keeps in memory (appliance.hw.gpio)
_GPIO_CHIP: Final = re.compile(r"gpiochip[0-9]{1,3}|sim")
_PLACEHOLDER: Final = re.compile(r"\{[^}]*\}")


# -- where board files live -----------------------------------------------------------


def default_boards_dir(environ: Mapping[str, str]) -> Path:
    """$YAKYAK_BOARDS, else a source checkout's board/, else the installed copy.

    The wheel installs board/ as data files under <prefix>/share/yakyak/board, because
    setuptools only packages data that sits inside a Python package.
    """
    if override := environ.get(BOARDS_ENV):
        return Path(override)
    checkout = Path(__file__).resolve().parents[2] / "board"
    if checkout.is_dir():
        return checkout
    for prefix in (sysconfig.get_path("data"), sys.prefix):
        installed = Path(prefix) / "share" / "yakyak" / "board"
        if installed.is_dir():
            return installed
    return checkout  # missing: load_board then says where it looked


def known_boards(boards_dir: Path) -> list[str]:
    if not boards_dir.is_dir():
        return []
    return sorted(p.stem for p in boards_dir.glob("*.toml") if _NAME.fullmatch(p.stem))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_board(name: str, boards_dir: Path | None = None) -> BoardSpec:
    """Read and check board/NAME.toml; BoardError if it is unknown or wrong."""
    directory = default_boards_dir(os.environ) if boards_dir is None else boards_dir
    path = directory / f"{name}.toml"
    file = _display(path)
    known = known_boards(directory)
    if not _NAME.fullmatch(name) or name not in known:
        listing = ", ".join(known) if known else "none"
        raise BoardError(
            _display(directory), "", f"unknown board {name!r}; known boards: {listing}"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardError(file, "", f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(file, "", f"not valid TOML: {exc}") from exc
    return parse_board(raw, name, path, file)


# -- checking a parsed TOML document ---------------------------------------------------


def parse_board(raw: Mapping[str, object], name: str, source: Path, file: str) -> BoardSpec:
    """Check a parsed board document; `name` is the file's stem, which must match."""
    top = TomlTable(raw, "", file, BoardError)
    schema = top.integer("schema", 1, 1_000)
    if schema != SCHEMA_VERSION:
        top.fail("schema", f"this release reads schema {SCHEMA_VERSION}, got {schema}")
    declared = top.text("name", max_len=32)
    if declared != name:
        top.fail("name", f"must match the file name {name!r}, got {declared!r}")
    description = top.text("description", default="")
    country = top.text("country", max_len=8)
    if country not in COUNTRY_PRESETS:
        top.fail("country", f"must be one of {', '.join(sorted(COUNTRY_PRESETS))}, got {country!r}")
    preset = COUNTRY_PRESETS[country]
    alsa_config = top.text("alsa_config", default="", max_len=20_000, multiline=True)
    controller = _serial(top.sub("controller", required=True))

    port_tables = top.tables("ports", required=True)
    if not 1 <= len(port_tables) <= MAX_PORTS:
        top.fail("ports", f"must list 1 to {MAX_PORTS} ports, got {len(port_tables)}")
    ports = tuple(_port(t, preset) for t in port_tables)
    _check_ports(ports, port_tables)

    leds = tuple(_led(t) for t in top.tables("leds"))
    names = [led.name for led in leds]
    for index, led in enumerate(leds):
        if names.index(led.name) != index:
            top.fail(
                f"leds[{index}].name", f"{led.name!r} is used by leds[{names.index(led.name)}]"
            )

    button_table = top.table("reset_button")
    button = _button(button_table) if button_table is not None else None
    watchdog_table = top.table("watchdog")
    watchdog = _watchdog(watchdog_table) if watchdog_table is not None else None
    top.close()
    return BoardSpec(
        name=name,
        description=description,
        source=source,
        country=country,
        controller=controller,
        ports=ports,
        leds=leds,
        reset_button=button,
        watchdog=watchdog,
        alsa_config=alsa_config,
    )


def _dev_path(table: TomlTable, key: str, allow_pty: bool = False) -> str:
    device = table.text(key, max_len=105)
    if allow_pty and device == PTY_DEVICE:
        return device
    if not _DEV_PATH.fullmatch(device) or "/../" in device:
        hint = ' or "pty"' if allow_pty else ""
        table.fail(key, f"must be a device path like /dev/ttyAMA0{hint}, got {device!r}")
    return device


def _gpio(table: TomlTable, key: str, required: bool = False) -> GpioSpec | None:
    sub = table.sub(key, required=True) if required else table.table(key)
    if sub is None:
        return None
    chip = sub.text("chip", max_len=12)
    if not _GPIO_CHIP.fullmatch(chip):
        sub.fail("chip", f"must name a GPIO chip like 'gpiochip0' (or 'sim'), got {chip!r}")
    line = sub.integer("line", 0, 1023)
    active_low = sub.flag("active_low", False)
    sub.close()
    return GpioSpec(chip, line, active_low)


def _serial(table: TomlTable) -> SerialSpec:
    device = _dev_path(table, "device", allow_pty=True)
    baud = table.integer("baud", BAUD_RATES[0], BAUD_RATES[-1])
    if baud not in BAUD_RATES:
        table.fail("baud", f"must be one of {', '.join(map(str, BAUD_RATES))}, got {baud}")
    flow = table.choice("flow_control", FlowControl, FlowControl.NONE)
    reset = _gpio(table, "reset_gpio")
    version = table.integer("protocol_version", 1, 255)
    table.close()
    return SerialSpec(device, baud, flow, reset, version)


def _audio(table: TomlTable) -> AudioSpec:
    device = table.text("device")
    for field in _PLACEHOLDER.findall(device):
        if field != RUN_DIR_FIELD:
            table.fail("device", f"only {RUN_DIR_FIELD} may be filled in, got {field}")
    channels = table.integer("channels", 1, 2, default=1)
    # Read wide, then say which channels this PCM has: "must be 0 or 1, got 3".
    channel = table.integer("channel", 0, 1_000, default=0)
    if channel >= channels:
        allowed = "0 or 1" if channels == 2 else "0"
        table.fail("channel", f"must be {allowed}, got {channel}")
    to_line = table.number("gain_to_line_db", -24.0, 12.0, default=0.0)
    from_line = table.number("gain_from_line_db", -24.0, 12.0, default=0.0)
    table.close()
    return AudioSpec(device, channels, channel, to_line, from_line)


def _fxs(t: TomlTable, preset: CountryPreset) -> FxsSpec:
    spec = FxsSpec(
        ring_vrms=t.number("ring_vrms", 20.0, 90.0, default=preset.ring_vrms),
        ring_hz=t.number("ring_hz", 15.0, 70.0, default=preset.ring_hz),
        ring_segment_min_ms=t.integer("ring_segment_min_ms", 20, 10_000, RING_SEGMENT_MIN_MS),
        ring_segment_max_ms=t.integer("ring_segment_max_ms", 20, 10_000, RING_SEGMENT_MAX_MS),
        ring_cadence_max_segments=t.integer(
            "ring_cadence_max_segments", 2, 16, RING_CADENCE_MAX_SEGMENTS
        ),
        hook_debounce_ms=t.integer("hook_debounce_ms", 5, 200, HOOK_DEBOUNCE_MS),
        flash_min_ms=t.integer("flash_min_ms", 20, 2000, preset.flash_min_ms),
        flash_max_ms=t.integer("flash_max_ms", 20, 2000, preset.flash_max_ms),
        caller_id=t.choices("caller_id", CallerIdMode, preset.caller_id),
        caller_id_timing=t.choice("caller_id_timing", CallerIdTiming, preset.caller_id_timing),
    )
    if spec.ring_segment_min_ms > spec.ring_segment_max_ms:
        t.fail("ring_segment_min_ms", "must not exceed ring_segment_max_ms")
    if spec.flash_min_ms >= spec.flash_max_ms:
        t.fail("flash_min_ms", "must be below flash_max_ms")
    if spec.hook_debounce_ms >= spec.flash_min_ms:
        t.fail("hook_debounce_ms", "must be below flash_min_ms, or no flash can be seen")
    t.close()
    return spec


def _fxo(t: TomlTable, preset: CountryPreset) -> FxoSpec:
    spec = FxoSpec(
        ring_debounce_ms=t.integer("ring_debounce_ms", 5, 500, RING_DEBOUNCE_MS),
        ring_on_min_ms=t.integer("ring_on_min_ms", 20, 5000, RING_ON_MIN_MS),
        ring_off_max_ms=t.integer("ring_off_max_ms", 500, 20_000, RING_OFF_MAX_MS),
        caller_id=t.choices("caller_id", CallerIdMode, preset.caller_id),
        disconnect=t.choices("disconnect", DisconnectMode, preset.disconnect),
        disconnect_min_ms=t.integer("disconnect_min_ms", 10, 5000, DISCONNECT_MIN_MS),
        flash_ms=t.integer("flash_ms", 20, 2000, preset.fxo_flash_ms),
    )
    if not spec.disconnect:
        t.fail("disconnect", "must list at least one way to notice the far end hanging up")
    if spec.ring_debounce_ms >= spec.ring_on_min_ms:
        t.fail("ring_debounce_ms", "must be below ring_on_min_ms")
    t.close()
    return spec


def _port(table: TomlTable, preset: CountryPreset) -> PortSpec:
    number = table.integer("number", 1, MAX_PORTS)
    kind = table.choice("type", PortType)
    label = table.text("label", default=f"{kind.value.upper()} {number}", max_len=40)
    audio = _audio(table.sub("audio", required=True))
    impedance = table.choice("impedance", Impedance, preset.impedance)
    if kind is PortType.FXS and table.has("fxo"):
        table.fail("fxo", "only fxo ports take an [fxo] table; this port is fxs")
    if kind is PortType.FXO and table.has("fxs"):
        table.fail("fxs", "only fxs ports take an [fxs] table; this port is fxo")
    fxs = _fxs(table.sub("fxs"), preset) if kind is PortType.FXS else None
    fxo = _fxo(table.sub("fxo"), preset) if kind is PortType.FXO else None
    table.close()
    return PortSpec(number, kind, label, audio, impedance, fxs, fxo)


def _check_ports(ports: tuple[PortSpec, ...], tables: list[TomlTable]) -> None:
    """Port numbers are unique; ports sharing a PCM agree on its channels and split them."""
    seen: dict[int, int] = {}
    channels: dict[str, tuple[int, int]] = {}  # device -> (channels, index of first port)
    taken: dict[tuple[str, int], int] = {}  # (device, channel) -> index of its port
    for index, (port, table) in enumerate(zip(ports, tables, strict=True)):
        if port.number in seen:
            table.fail("number", f"port {port.number} is also ports[{seen[port.number]}]")
        seen[port.number] = index
        device = port.audio.device
        first = channels.setdefault(device, (port.audio.channels, index))
        if first[0] != port.audio.channels:
            table.fail(
                "audio.channels",
                f"ports[{first[1]}] opens {device!r} with {first[0]} channel(s), "
                f"got {port.audio.channels}",
            )
        owner = taken.setdefault((device, port.audio.channel), index)
        if owner != index:
            table.fail(
                "audio.channel",
                f"channel {port.audio.channel} of {device!r} already carries ports[{owner}]",
            )


def _led(table: TomlTable) -> LedSpec:
    name = table.text("name", max_len=32)
    if not _NAME.fullmatch(name):
        table.fail("name", f"must be a short lower-case name like 'status', got {name!r}")
    gpio = _gpio(table, "gpio", required=True)
    if gpio is None:  # required=True raised already; this narrows the type
        table.fail("gpio", "missing")
    table.close()
    return LedSpec(name, gpio)


def _button(table: TomlTable) -> ButtonSpec:
    gpio = _gpio(table, "gpio", required=True)
    if gpio is None:  # required=True raised already; this narrows the type
        table.fail("gpio", "missing")
    hold = table.number("hold_s", 1.0, 60.0, default=10.0)
    table.close()
    return ButtonSpec(gpio, hold)


def _watchdog(table: TomlTable) -> WatchdogSpec:
    device = _dev_path(table, "device")
    timeout = table.integer("timeout_s", 1, 600, default=15)
    table.close()
    return WatchdogSpec(device, timeout)
