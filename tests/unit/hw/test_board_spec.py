"""Board files: every shipped board loads, and every kind of mistake is named precisely."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.hw.board_loader import default_boards_dir, known_boards, load_board
from appliance.hw.board_spec import (
    BOARDS_ENV,
    BoardError,
    CallerIdMode,
    DisconnectMode,
    FlowControl,
    Impedance,
    check_devices,
)
from appliance.lines.signals import PortType

BOARDS = Path(__file__).resolve().parents[3] / "board"
SHIPPED = ("bbb", "rpi4", "rpi5", "sim")


def test_the_shipped_boards_are_the_known_ones() -> None:
    assert known_boards(BOARDS) == list(SHIPPED)
    assert default_boards_dir({}) == BOARDS


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_board_loads(name: str) -> None:
    spec = load_board(name, BOARDS)
    assert spec.name == name
    assert spec.country == "US"
    assert spec.controller.baud == 115200
    assert spec.controller.flow_control is FlowControl.NONE
    assert [p.type for p in spec.ports] == [PortType.FXS, PortType.FXS, PortType.FXO]
    assert [p.number for p in spec.ports] == [1, 2, 3]
    for port in spec.ports:
        assert (port.fxs is not None) == (port.type is PortType.FXS)
        assert (port.fxo is not None) == (port.type is PortType.FXO)
    # Ports 1 and 2 share one stereo PCM everywhere, the sim included.
    stereo, mono = spec.cards()
    assert (stereo.channels, stereo.ports) == (2, (1, 2))
    assert (mono.channels, mono.ports) == (1, (3,))


def test_rpi4_details() -> None:
    spec = load_board("rpi4", BOARDS)
    assert spec.controller.device == "/dev/ttyAMA0"
    assert spec.controller.protocol_version == 1
    assert spec.controller.reset_gpio is not None
    assert spec.controller.reset_gpio.active_low
    port1 = spec.port(1)
    assert port1.audio.device == "hw:CARD=yakcodec,DEV=0"
    assert port1.audio.card == "yakcodec"
    assert port1.impedance is Impedance.R600
    assert port1.fxs is not None
    assert port1.fxs.ring_hz == 20.0
    assert port1.fxs.caller_id == (CallerIdMode.BELL202, CallerIdMode.DTMF)
    fxo = spec.port(3).fxo
    assert fxo is not None
    assert fxo.disconnect == (DisconnectMode.LOOP_CURRENT, DisconnectMode.BUSY_TONE)
    assert spec.port(3).audio.gain_from_line_db == 3.0
    assert [led.name for led in spec.leds] == ["status", "line"]
    assert spec.watchdog is not None and spec.watchdog.timeout_s == 15


def test_bbb_and_sim_details() -> None:
    assert load_board("bbb", BOARDS).controller.device == "/dev/ttyS1"
    sim = load_board("sim", BOARDS)
    assert sim.controller.is_pty
    assert sim.watchdog is None
    # the panel as on the real boards, on the in-memory chip
    assert sim.reset_button is not None and sim.reset_button.gpio.chip == "sim"
    assert [(led.name, led.gpio.chip) for led in sim.leds] == [("status", "sim"), ("line", "sim")]
    assert "pcm.yakyak_sim" in sim.alsa_config
    assert sim.port(3).audio.resolve(Path("/run/x")) == (
        "yakyak_sim:OUT='/run/x/fxo3.out',IN='/run/x/fxo3.in'"
    )
    assert sim.port(3).audio.card is None  # a plugin PCM, not a card
    assert check_devices(sim) == []


def test_country_preset_fills_defaults() -> None:
    bbb = load_board("bbb", BOARDS)  # its FXS ports set no [fxs] table
    fxs = bbb.port(1).fxs
    assert fxs is not None
    assert (fxs.ring_vrms, fxs.ring_hz, fxs.flash_min_ms, fxs.flash_max_ms) == (45, 20, 100, 900)
    assert fxs.cadence_allowed((2000, 4000))
    assert not fxs.cadence_allowed((2000,))  # on without off
    assert not fxs.cadence_allowed((50, 4000))  # segment below 100 ms
    assert not fxs.cadence_allowed(())


# -- unknown boards ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nope", "../board/rpi4", "RPI4", ""])
def test_unknown_board_lists_the_known_ones(name: str) -> None:
    with pytest.raises(BoardError) as caught:
        load_board(name, BOARDS)
    assert f"unknown board {name!r}; known boards: bbb, rpi4, rpi5, sim" in str(caught.value)


def test_missing_boards_dir(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="unknown board 'rpi4'; known boards: none"):
        load_board("rpi4", tmp_path / "absent")


def test_env_var_points_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(BOARDS / "sim.toml", tmp_path / "sim.toml")
    monkeypatch.setenv(BOARDS_ENV, str(tmp_path))
    assert default_boards_dir({BOARDS_ENV: str(tmp_path)}) == tmp_path
    assert load_board("sim").source == tmp_path / "sim.toml"


# -- every kind of mistake names file, key path and reason --------------------------------


def _broken(tmp_path: Path, old: str, new: str, board: str = "rpi4") -> Path:
    text = (BOARDS / f"{board}.toml").read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {board}.toml exactly once"
    directory = tmp_path / "board"
    directory.mkdir()
    (directory / f"{board}.toml").write_text(text.replace(old, new), encoding="utf-8")
    return directory


def test_the_issue_example_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _broken(
        tmp_path,
        "channels = 2, channel = 1 }",
        "channels = 2, channel = 3 }",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BoardError) as caught:
        load_board("rpi4", directory)
    assert str(caught.value) == "board/rpi4.toml: ports[1].audio.channel: must be 0 or 1, got 3"
    assert (caught.value.file, caught.value.key) == ("board/rpi4.toml", "ports[1].audio.channel")


CASES = [
    ('country = "US"', 'country = "US"\ncolour = "red"', "colour", "unknown key (expected"),
    ("ring_hz = 20.0", "ring_hertz = 20.0", "ports[0].fxs.ring_hertz", "unknown key"),
    ("baud = 115200\n", "", "controller.baud", "missing"),
    (
        "baud = 115200",
        'baud = "fast"',
        "controller.baud",
        "must be an integer from 9600 to 921600, got 'fast'",
    ),
    ("baud = 115200", "baud = 12345", "controller.baud", "must be one of 9600, 19200"),
    (
        'flow_control = "none"',
        'flow_control = "cts"',
        "controller.flow_control",
        "must be one of 'none', 'rtscts', 'xonxoff', got 'cts'",
    ),
    ('device = "/dev/ttyAMA0"', 'device = "COM1"', "controller.device", "must be a device path"),
    ('country = "US"', 'country = "XX"', "country", "must be one of CA, DE, GB, US, got 'XX'"),
    ('name = "rpi4"', 'name = "rpi5"', "name", "must match the file name 'rpi4', got 'rpi5'"),
    ("schema = 1", "schema = 2", "schema", "this release reads schema 1, got 2"),
    ("number = 2", "number = 1", "ports[1].number", "port 1 is also ports[0]"),
    (
        "channels = 2, channel = 1 }",
        "channels = 1, channel = 0 }",
        "ports[1].audio.channels",
        "ports[0] opens 'hw:CARD=yakcodec,DEV=0' with 2 channel(s), got 1",
    ),
    (
        "channels = 2, channel = 1 }",
        "channels = 2, channel = 0 }",
        "ports[1].audio.channel",
        "channel 0 of 'hw:CARD=yakcodec,DEV=0' already carries ports[0]",
    ),
    (
        "channels = 1, channel = 0, gain",
        "channels = 1, channel = 1, gain",
        "ports[2].audio.channel",
        "must be 0, got 1",
    ),
    (
        "gain_from_line_db = 3.0",
        "gain_from_line_db = 30.0",
        "ports[2].audio.gain_from_line_db",
        "must be a number from -24 to 12, got 30.0",
    ),
    ('label = "Phone 2"', 'label = "Phone 2"\nfxo = {}', "ports[1].fxo", "only fxo ports"),
    (
        'caller_id = ["bell202", "dtmf"]',
        'caller_id = ["bell202", "fsk"]',
        "ports[0].fxs.caller_id[1]",
        "must be one of 'bell202', 'v23', 'dtmf', got 'fsk'",
    ),
    (
        'caller_id = ["bell202", "dtmf"]',
        'caller_id = ["dtmf", "dtmf"]',
        "ports[0].fxs.caller_id[1]",
        "'dtmf' is listed twice",
    ),
    ("flash_max_ms = 900", "flash_max_ms = 80", "ports[0].fxs.flash_min_ms", "must be below"),
    (
        'disconnect = ["loop_current", "busy_tone"]',
        "disconnect = []",
        "ports[2].fxo.disconnect",
        "at least one",
    ),
    (
        'impedance = "600"',
        'impedance = "601"',
        "ports[2].impedance",
        "must be one of '600', '900'",
    ),
    (
        '{ chip = "gpiochip0", line = 17, active_low = true }',
        '{ chip = "gpio0", line = 17, active_low = true }',
        "controller.reset_gpio.chip",
        "must name a GPIO chip like 'gpiochip0' (or 'sim'), got 'gpio0'",
    ),
    (
        '{ chip = "gpiochip0", line = 22 }',
        '{ chip = "gpiochip0" }',
        "leds[0].gpio.line",
        "missing",
    ),
    ('name = "line"', 'name = "status"', "leds[1].name", "'status' is used by leds[0]"),
    (
        "timeout_s = 15",
        "timeout_s = 0",
        "watchdog.timeout_s",
        "must be an integer from 1 to 600, got 0",
    ),
    (
        'type = "fxo"',
        'type = "fxx"',
        "ports[2].type",
        "must be one of 'fxs', 'fxo', got 'fxx'",
    ),
    (
        "hold_s = 10",
        "hold_s = true",
        "reset_button.hold_s",
        "must be a number from 1 to 60, got true",
    ),
    (
        'device = "plughw:CARD=yakusb,DEV=0"',
        'device = "plughw:CARD={card},DEV=0"',
        "ports[2].audio.device",
        "only {run_dir} may be filled in, got {card}",
    ),
]


@pytest.mark.parametrize(("old", "new", "key", "reason"), CASES, ids=[c[2] for c in CASES])
def test_each_mistake_names_file_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    directory = _broken(tmp_path, old, new)
    with pytest.raises(BoardError) as caught:
        load_board("rpi4", directory)
    error = caught.value
    assert error.file == str(directory / "rpi4.toml")
    assert error.key == key
    assert reason in error.reason
    assert str(error) == f"{error.file}: {key}: {error.reason}"


def test_a_table_given_as_a_value_is_named(tmp_path: Path) -> None:
    directory = _broken(tmp_path, 'country = "US"', 'country = "US"\nwatchdog = 3', board="sim")
    with pytest.raises(BoardError) as caught:
        load_board("sim", directory)
    assert (caught.value.key, caught.value.reason) == ("watchdog", "must be a table, got 3")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    directory = _broken(tmp_path, "baud = 115200", "baud = = 115200")
    with pytest.raises(BoardError) as caught:
        load_board("rpi4", directory)
    assert caught.value.key == ""
    assert str(caught.value).startswith(f"{directory / 'rpi4.toml'}: not valid TOML: ")


def test_sim_errors_too(tmp_path: Path) -> None:
    directory = _broken(tmp_path, 'device = "pty"', 'device = "tty"', board="sim")
    with pytest.raises(
        BoardError, match=r"controller\.device: must be a device path .* or \"pty\""
    ):
        load_board("sim", directory)


# -- device checks ---------------------------------------------------------------------------


def _fake_root(tmp_path: Path, paths: list[str]) -> Path:
    for path in paths:
        node = tmp_path / path.lstrip("/")
        node.parent.mkdir(parents=True, exist_ok=True)
        node.touch()
    return tmp_path


RPI4_NODES = [
    "/dev/ttyAMA0",
    "/dev/snd/controlC0",
    "/proc/asound/yakcodec",
    "/proc/asound/yakusb",
    "/dev/gpiochip0",
    "/dev/watchdog",
]


def test_check_devices_all_present(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, RPI4_NODES)
    assert check_devices(load_board("rpi4", BOARDS), root) == []


def test_check_devices_lists_what_is_missing(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, ["/dev/snd/controlC0", "/proc/asound/yakcodec"])
    assert check_devices(load_board("rpi4", BOARDS), root) == [
        "controller.device: /dev/ttyAMA0 does not exist (is the UART enabled?)",
        "audio: ALSA card 'yakusb' for port(s) 3 is not present",
        "controller.reset_gpio, leds[0].gpio, leds[1].gpio, reset_button.gpio: "
        "/dev/gpiochip0 does not exist",
        "watchdog.device: /dev/watchdog does not exist",
    ]


def test_check_devices_without_any_sound_card(tmp_path: Path) -> None:
    root = _fake_root(tmp_path, [p for p in RPI4_NODES if "snd" not in p and "asound" not in p])
    assert check_devices(load_board("bbb", BOARDS), root)[0] == (
        "controller.device: /dev/ttyS1 does not exist (is the UART enabled?)"
    )
    assert check_devices(load_board("rpi5", BOARDS), root) == [
        "audio: /dev/snd does not exist (no ALSA sound cards on this machine)"
    ]
