"""``BenchRig`` on the event loop with fake hardware and a fake /api/live: its one timer
drives the phone side, and what scenarios ask of the board comes from the live state.
(The desk phone, baresip across a network, is left out here.)"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from appliance.hw.gpio import MemoryLines
from appliance.hw.pcm import MemoryPcm, Pcm
from appliance.web.live import CallView, PortView
from hil.bench import BenchRig, Hardware
from hil.bench_config import BenchConfig, RelayCardSpec, RelayFrame, parse_bench
from hil.live_api import LiveApiError, LiveState
from hil.relay import RelayCard

pytestmark = pytest.mark.timeout(20)

CONFIG = """
schema = 1
name = "fake-bench"
[board]
name = "rpi4"
host = "192.0.2.10"
sip_port = 5070
web_url = "http://192.0.2.10"
api_token = "t"
country = "GB"
[desk_phone]
extension = "105"
password = "pw"
local_address = "192.0.2.50"
[relay_card]
device = "/dev/pts/0"
[timing]
cadence_tolerance_ms = 80
[[fxs]]
port = 1
relay = 1
ring = { chip = "sim", line = 1 }
loop_current = { chip = "sim", line = 2 }
audio = { device = "codec1" }
"""


def config() -> BenchConfig:
    return parse_bench(tomllib.loads(CONFIG), Path("b.toml"), "b.toml")


def state(port_state: str, calls: tuple[CallView, ...] = ()) -> LiveState:
    return LiveState(
        0.0, calls, {1: PortView(1, "fxs", "FXS 1", "extension 201", port_state, True)}
    )


class Fakes:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        os.set_blocking(self.master, False)
        self.pcm = MemoryPcm()
        self.lines = MemoryLines()

    def hardware(self, config: BenchConfig) -> Hardware:
        card = RelayCard.open(RelayCardSpec(os.ttyname(self.slave), 9600, RelayFrame()))
        pcms: dict[int, Pcm] = {1: self.pcm}
        return Hardware(card, self.lines, pcms)

    def read(self) -> bytes:
        try:
            return os.read(self.master, 1024)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        os.close(self.slave)
        os.close(self.master)


def rig_with(fakes: Fakes, fetch: Callable[[], LiveState], tmp_path: Path) -> BenchRig:
    return BenchRig(config(), tmp_path, hardware=fakes.hardware, live=fetch, desk_phone=False)


def test_the_rig_drives_its_phone_side_and_reads_the_board(tmp_path: Path) -> None:
    fakes = Fakes()
    answers = [state("idle")]

    async def scenario() -> None:
        rig = rig_with(fakes, lambda: answers[-1], tmp_path)
        rig.say(1, 0.0, np.full(160, 9, dtype=np.int16))  # before start: kept until then
        try:
            await rig.start(timeout=2.0)
            assert (rig.country, rig.cadence_tolerance_ms, rig.far_extension) == ("GB", 80, "105")
            assert rig.sip_uri("201") == "sip:201@192.0.2.10:5070"
            assert rig.port_state(1) == "idle" and rig.active_calls() == []
            fakes.read()  # the idle positions
            rig.phone(1).lift()
            written = bytearray()

            def lifted() -> bool:
                written.extend(fakes.read())
                return len(written) >= 4

            assert await rig.until(lifted, 1.0)  # the loop timer fired the move
            assert bytes(written) == bytes.fromhex("A00101A2")
            call = CallView(1, "201", None, "101", "talking", 1.0, 0.5, "PCMU", False)
            answers.append(state("held", (call,)))
            assert await rig.until(lambda: rig.port_held(1), 1.0)
            assert rig.active_calls() == [call]
            assert await rig.until(lambda: len(fakes.pcm.played()) >= 160, 1.0)
            assert (fakes.pcm.played()[:160] == 9).all()
            fakes.pcm.inject(np.arange(160, dtype=np.int16))
            assert await rig.until(lambda: len(rig.played(1)) == 160, 1.0)
        finally:
            await rig.aclose()
        assert fakes.read().endswith(bytes.fromhex("A00100A1"))  # closed: relay open

    try:
        asyncio.run(scenario())
    finally:
        fakes.close()


def test_start_fails_with_what_the_board_said(tmp_path: Path) -> None:
    fakes = Fakes()

    def refused() -> LiveState:
        raise LiveApiError("http://192.0.2.10/api/live: HTTP 401 Unauthorized")

    async def scenario() -> None:
        rig = rig_with(fakes, refused, tmp_path)
        try:
            with pytest.raises(RuntimeError, match="no answer from the board's /api/live: .*401"):
                await rig.start(timeout=0.3)
            assert rig.port_state(1).startswith("unknown (http://192.0.2.10/api/live: HTTP 401")
        finally:
            await rig.aclose()

    try:
        asyncio.run(scenario())
    finally:
        fakes.close()


def test_start_refuses_a_board_whose_ports_are_busy(tmp_path: Path) -> None:
    fakes = Fakes()

    async def scenario() -> None:
        rig = rig_with(fakes, lambda: state("talking"), tmp_path)
        try:
            with pytest.raises(RuntimeError, match="not idle before the scenario: port 1 talking"):
                await rig.start(timeout=0.3)
        finally:
            await rig.aclose()

    try:
        asyncio.run(scenario())
    finally:
        fakes.close()
