"""The real serial edge (pyserial, asyncio) against the sim controller on a pty.

Real bytes through a real tty, so waits are real too: each is bounded, and the
board's windows are shortened so a test takes tens of milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from appliance.hw.board_loader import load_board
from appliance.hw.serial_link import SerialLink, port_configs
from appliance.hw.sim.controller import SimController
from appliance.hw.sim.pty_controller import PtyController
from appliance.lines.controller_config import FxoConfig, FxsConfig, config_to_command
from appliance.lines.controller_link import (
    ControllerLink,
    LinkConfig,
    LinkNotice,
    LinkState,
    LinkUp,
    Resynced,
)
from appliance.lines.signals import ControllerReset, LineSignal, OffHook, PortType, Ring

PORTS = [PortType.FXS, PortType.FXS, PortType.FXO]
FAST = {  # pulse and flash windows a tenth of the usual, so hook changes settle quickly
    "debounce_ms": 5,
    "break_min_ms": 10,
    "break_max_ms": 20,
    "make_min_ms": 5,
    "make_max_ms": 20,
    "interdigit_ms": 40,
    "flash_min_ms": 30,
    "flash_max_ms": 60,
}
CONFIGS = [FxsConfig(1, **FAST), FxsConfig(2, **FAST), FxoConfig(3)]
LINK = LinkConfig(ack_timeout=0.2, retries=3, retry_interval=0.5, keepalive=None)


@dataclass
class Rig:
    sim: SimController
    pty: PtyController
    link: ControllerLink
    serial: SerialLink
    got: list[LineSignal | LinkNotice]


@asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    sim = SimController(PORTS, announce_boot=False)
    pty = PtyController(sim)
    path = pty.open()
    got: list[LineSignal | LinkNotice] = []
    link = ControllerLink(CONFIGS, LINK)
    serial = SerialLink(link, path, got.append)
    serial.open()
    try:
        yield Rig(sim, pty, link, serial, got)
    finally:
        serial.close()
        pty.close()


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


async def up(r: Rig) -> None:
    await eventually(lambda: Resynced("start", 0) in r.got)
    assert r.got[:2] == [LinkUp("yakyak-sim", 1, 3), Resynced("start", 0)]


def test_handshake_and_configuration_over_a_pty() -> None:
    async def scenario() -> None:
        async with rig() as r:
            await up(r)
            assert [c.verb for c in r.sim.commands] == [
                "HELLO",
                "CONFIG",
                "CONFIG",
                "CONFIG",
                "STATUS",
            ]
            assert [r.sim.configured(n) for n in (1, 2, 3)] == CONFIGS
            assert r.link.state is LinkState.UP

    run(scenario)


def test_a_lift_reaches_the_host_and_a_ring_reaches_the_phone() -> None:
    async def scenario() -> None:
        async with rig() as r:
            await up(r)
            r.sim.phone(1).lift()
            await eventually(lambda: OffHook(1) in r.got)
            r.serial.send_intent(Ring(2, True, (1000, 2000)))
            await eventually(lambda: r.sim.phone(2).ringing)
            assert r.sim.phone(2).cadence == (1000, 2000)

    run(scenario)


def test_a_controller_reset_mid_call_is_reconfigured() -> None:
    async def scenario() -> None:
        async with rig() as r:
            await up(r)
            r.sim.phone(1).lift()
            await eventually(lambda: OffHook(1) in r.got)
            r.sim.reset()
            await eventually(lambda: Resynced("reset", 1) in r.got)
            after = r.got[r.got.index(ControllerReset()) :]
            assert after == [
                ControllerReset(),
                LinkUp("yakyak-sim", 1, 3),
                OffHook(1),
                Resynced("reset", 1),
            ]
            assert sum(c.verb == "CONFIG" for c in r.sim.commands) == 6
            assert r.sim.configured(1) == CONFIGS[0]

    run(scenario)


def test_a_dropped_event_is_restored_by_status() -> None:
    async def scenario() -> None:
        async with rig() as r:
            await up(r)
            r.sim.drop_events(1)
            r.sim.phone(1).lift()
            await eventually(lambda: r.sim.phone(1).reported_off_hook)  # sent, and lost
            r.sim.line(3).reverse_polarity()  # the next event shows the gap
            await eventually(lambda: Resynced("gap", 1) in r.got)
            assert OffHook(1) in r.got
            assert r.link.stats.gaps == 1

    run(scenario)


def test_garbage_on_the_line_is_survived() -> None:
    async def scenario() -> None:
        async with rig() as r:
            await up(r)
            r.pty.inject(b"\x00\xff\xfe noise\n" + b"z" * 400 + b"\nEVT x\n")
            r.sim.garble_next_line()
            r.sim.phone(1).lift()  # its OFFHOOK arrives garbled
            await eventually(lambda: r.sim.phone(1).reported_off_hook)
            r.sim.line(3).reverse_polarity()
            await eventually(lambda: OffHook(1) in r.got)  # recovered through STATUS
            assert r.link.stats.garbage == 3
            assert r.link.stats.overlong == 1
            assert r.link.state is LinkState.UP

    run(scenario)


def test_the_sim_board_files_settings_are_what_the_controller_is_told() -> None:
    configs = port_configs(load_board("sim"))
    assert [c.type for c in configs] == PORTS
    assert configs[2] == FxoConfig(3, "US", "r600", disconnect=("loop",))  # busy tone: ours
    sim = SimController(PORTS, announce_boot=False)
    commands = b"".join(bytes(config_to_command(c, n)) for n, c in enumerate(configs, 1))
    assert sim.receive(commands, 0.0) == b"1 OK\n2 OK\n3 OK\n"
    assert [sim.configured(n) for n in (1, 2, 3)] == configs
