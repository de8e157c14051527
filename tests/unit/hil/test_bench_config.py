"""The bench file: the example parses; each mistake is one line naming its key."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.hw.board_spec import GpioSpec
from hil.bench_config import (
    AudioChannel,
    BenchConfig,
    BenchConfigError,
    Checksum,
    RelayFrame,
    load_bench,
    parse_bench,
)

pytestmark = pytest.mark.timeout(10)

EXAMPLE = Path(__file__).resolve().parents[3] / "hil" / "bench.example.toml"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def parse(raw: dict[str, Any]) -> BenchConfig:
    return parse_bench(raw, Path("bench.toml"), "bench.toml")


def test_the_example_file_parses() -> None:
    config = load_bench(EXAMPLE)
    assert config.name == "bench-a"
    assert config.board.host == "192.0.2.10"
    assert config.board.web_url == "https://192.0.2.10"
    assert config.board.country == "US"
    assert config.desk_phone.extension == "101"
    assert config.relay_card.device == "/dev/ttyUSB0"
    assert config.relay_card.frame == RelayFrame((0xA0,), 1, 0, Checksum.SUM8)
    (fxs,) = config.fxs
    assert (fxs.port, fxs.relay) == (1, 1)
    assert fxs.ring == GpioSpec("gpiochip0", 17, True)
    assert fxs.audio == AudioChannel("plughw:CARD=Device,DEV=0", 2, 0)
    (fxo,) = config.fxo
    assert (fxo.ring_relay, fxo.battery_relay, fxo.polarity_relay) == (2, 3, 4)
    assert config.ports() == {1, 3}
    assert config.timing.sample_ms == 10


def test_defaults_fill_what_is_left_out() -> None:
    raw = example()
    del raw["timing"]
    del raw["relay_card"]["frame"]
    del raw["relay_card"]["baud"]
    del raw["board"]["sip_port"]
    config = parse(raw)
    assert config.relay_card.baud == 9600
    assert config.relay_card.frame == RelayFrame()
    assert config.board.sip_port == 5060
    assert config.timing.cadence_tolerance_ms == 150


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()

MISTAKES = [
    (_set("schema", 2), "schema: this release reads schema 1, got 2"),
    (_set("board.host", _DELETE), "board.host: missing"),
    (_set("board.host", "a b"), "board.host: must be a host name or IP address, got 'a b'"),
    (
        _set("board.web_url", "ftp://x"),
        "board.web_url: must start with http:// or https://, got 'ftp://x'",
    ),
    (_set("board.country", "XX"), "board.country: must be one of CA, DE, GB, US, got 'XX'"),
    (_set("board.tls_verify", "yes"), "board.tls_verify: must be true or false, got 'yes'"),
    (_set("desk_phone.extension", "abc"), "desk_phone.extension: must be digits, got 'abc'"),
    (
        _set("relay_card.device", "ttyUSB0"),
        "relay_card.device: must be a device path like /dev/ttyUSB0, got 'ttyUSB0'",
    ),
    (
        _set("relay_card.frame.prefix", [0xA0, 256]),
        "relay_card.frame.prefix[1]: must be a byte from 0 to 255, got 256",
    ),
    (
        _set("relay_card.frame.checksum", "crc"),
        "relay_card.frame.checksum: must be one of 'sum8', 'none', got 'crc'",
    ),
    (_set("relay_card.frame.off", 1), "relay_card.frame.off: must differ from on (1)"),
    (
        _set("timing.ring_hold_ms", 10),
        "timing.ring_hold_ms: must be an integer from 20 to 1000, got 10",
    ),
    (
        lambda raw: _set("timing.sample_ms", 50)(raw) or _set("timing.ring_hold_ms", 50)(raw),
        "timing.ring_hold_ms: must be longer than sample_ms (50), got 50",
    ),
    (
        _set("fxs.0.ring.line", -1),
        "fxs[0].ring.line: must be an integer from 0 to 1023, got -1",
    ),
    (
        _set("fxs.0.ring.chip", "gpio0"),
        "fxs[0].ring.chip: must name a GPIO chip like 'gpiochip0' (or 'sim'), got 'gpio0'",
    ),
    (_set("fxs.0.relay", 0), "fxs[0].relay: must be an integer from 1 to 255, got 0"),
    (_set("fxs.0.port", 9), "fxs[0].port: must be an integer from 1 to 8, got 9"),
    (_set("fxs.0.audio", _DELETE), "fxs[0].audio: missing"),
    (_set("fxs.0.audio.channel", 2), "fxs[0].audio.channel: must be 0 or 1, got 2"),
    (
        _set("fxo.0.ring_relay", 1),
        "fxo[0].ring_relay: relay 1 is already used by fxs[0].relay",
    ),
    (_set("fxo.0.port", 1), "fxo[0].port: port 1 is already used by fxs[0].port"),
    (
        _set("fxo.0.seized", {"chip": "gpiochip0", "line": 17}),
        "fxo[0].seized: gpiochip0 line 17 is already used by fxs[0].ring",
    ),
    (
        _set("fxo.0.audio.channel", 0),
        "fxo[0].audio.channel: plughw:CARD=Device,DEV=0 channel 0 is already used by "
        "fxs[0].audio.channel",
    ),
    (
        _set("fxo.0.audio", {"device": "plughw:CARD=Device,DEV=0"}),
        "fxo[0].audio.channels: plughw:CARD=Device,DEV=0 is opened with 2 at fxs[0].audio.channels",
    ),
    (_set("fxs", "port 1"), "fxs: must be an array of tables ([[fxs]]), got 'port 1'"),
    (
        lambda raw: raw.pop("fxs") and raw.pop("fxo"),
        "fxs: the bench must wire at least one port ([[fxs]] or [[fxo]])",
    ),
]


@pytest.mark.parametrize(("change", "message"), MISTAKES)
def test_each_mistake_names_its_key(change: Callable[[dict[str, Any]], None], message: str) -> None:
    raw = copy.deepcopy(example())
    change(raw)
    with pytest.raises(BenchConfigError) as caught:
        parse(raw)
    assert str(caught.value) == f"bench.toml: {message}"


def test_an_unknown_key_is_an_error_listing_the_known_ones() -> None:
    raw = example()
    raw["fxs"][0]["relais"] = 1
    with pytest.raises(BenchConfigError) as caught:
        parse(raw)
    assert caught.value.key == "fxs[0].relais"
    assert caught.value.reason.startswith("unknown key (expected one of: audio, loop_current,")


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text("name = \n", encoding="utf-8")
    with pytest.raises(BenchConfigError, match=r"bench\.toml: not valid TOML: "):
        load_bench(path)
    with pytest.raises(BenchConfigError, match="cannot read"):
        load_bench(tmp_path / "missing.toml")
