"""The analog runtime on the loop: the real serial link over a pty to the simulated
controller, port machines and port audio into in-memory PCMs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from appliance.dsp.tones import ToneKind, tone_for
from appliance.hw.analog_ports import AnalogPorts
from appliance.hw.board_loader import load_board
from appliance.hw.pcm import MemoryPcm, PcmCounters
from appliance.hw.sim.controller import SimController
from appliance.hw.sim.pty_controller import PtyController
from appliance.lines.controller_link import LinkConfig
from appliance.lines.digit_collector import dialplan_completion
from appliance.lines.fxs import FxsPort, FxsState
from appliance.lines.port_actions import (
    CallAction,
    HangUpCall,
    IncomingCallOffer,
    OfferCancelled,
    RejectOffer,
)
from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import Dialplan

pytestmark = pytest.mark.timeout(30)


class BrokenPcm:
    """A sound card that fails on every read."""

    channels = 1
    counters = PcmCounters()

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read_frame(self) -> None:
        raise OSError(5, "Input/output error")

    def write_frame(self, frame: object) -> bool:
        raise OSError(5, "Input/output error")


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def dial_tone_in(samples: np.ndarray) -> bool:
    f1, f2 = tone_for("US", ToneKind.DIAL).frequencies_hz
    spectrum = np.abs(np.fft.rfft(samples[-1600:].astype(np.float64)))
    freqs = np.fft.rfftfreq(1600, 1 / 8000)
    top = set(np.round(freqs[np.argsort(spectrum)[-2:]]).astype(int))
    return top == {f1, f2}


async def run_ports(
    pcms: dict[int, object],
    on_call: Callable[[AnalogPorts, int, CallAction], None] | None,
    link: LinkConfig | None = None,
) -> tuple[AnalogPorts, SimController, PtyController]:
    loop = asyncio.get_running_loop()
    board = load_board("sim")
    sim = SimController([p.type for p in board.ports], now=loop.time())
    pty = PtyController(sim, loop)
    device = pty.open()
    holder: list[AnalogPorts] = []
    ports = AnalogPorts(
        loop,
        board,
        device,
        pcms,  # type: ignore[arg-type]  # BrokenPcm is a Pcm in all but name
        dialplan_completion(Dialplan(()), {"101"}),
        (lambda port, action: on_call(holder[0], port, action)) if on_call else None,
        link,
    )
    holder.append(ports)
    ports.start()
    assert await until(lambda: ports.link_up)
    return ports, sim, pty


def test_a_failing_sound_card_costs_only_its_own_port() -> None:
    async def scenario() -> None:
        good = MemoryPcm()
        ports, sim, pty = await run_ports({1: BrokenPcm(), 2: good, 3: MemoryPcm()}, None)
        try:
            sim.phone(2).lift()
            assert await until(lambda: len(good.played()) > 8000 and dial_tone_in(good.played()))
        finally:
            ports.close()
            pty.close()

    asyncio.run(scenario())


def test_call_control_answering_inside_a_call_action_is_taken_in_order() -> None:
    """Hang up with a call waiting; call control cancels that offer at once, from
    inside the HangUpCall: the phone must end up idle, not ringing."""

    def call_control(ports: AnalogPorts, port: int, action: CallAction) -> None:
        if isinstance(action, HangUpCall):
            ports.offer(port, OfferCancelled())

    async def scenario() -> None:
        ports, sim, pty = await run_ports(
            {1: MemoryPcm(), 2: MemoryPcm(), 3: MemoryPcm()}, call_control
        )
        try:
            phone = sim.phone(1)
            ports.offer(1, IncomingCallOffer("2001", "ALICE"))
            assert await until(lambda: phone.ringing)
            phone.lift()
            machine = ports.ports[1]
            assert isinstance(machine, FxsPort)
            assert await until(lambda: machine.state is FxsState.TALKING)
            ports.offer(1, IncomingCallOffer("2002", "BOB"))  # a second call waits
            await asyncio.sleep(0.1)
            phone.hang_up()
            assert await until(lambda: machine.state is FxsState.IDLE)
            await asyncio.sleep(1.0)
            assert machine.state is FxsState.IDLE and not phone.ringing
        finally:
            ports.close()
            pty.close()

    asyncio.run(scenario())


def test_while_the_controller_is_unreachable_calls_are_refused_then_served_again() -> None:
    refused: list[CallAction] = []

    def call_control(ports: AnalogPorts, port: int, action: CallAction) -> None:
        refused.append(action)

    async def scenario() -> None:
        quick = LinkConfig(ack_timeout=0.1, retries=1, retry_interval=0.3, keepalive=0.3)
        pcms = {1: MemoryPcm(), 2: MemoryPcm(), 3: MemoryPcm()}
        ports, sim, pty = await run_ports(pcms, call_control, quick)
        try:
            sim.silent = True  # a hung controller: nothing answers
            assert await until(lambda: not ports.link_up, 5.0)
            ports.offer(1, IncomingCallOffer("2001", "ALICE"))
            assert refused == [RejectOffer(Cause.TEMPORARY_FAILURE)]
            assert not sim.phone(1).ringing
            sim.silent = False  # it comes back: the next HELLO brings the link up
            assert await until(lambda: ports.link_up, 5.0)
            ports.offer(1, IncomingCallOffer("2001", "ALICE"))
            assert await until(lambda: sim.phone(1).ringing)
        finally:
            ports.close()
            pty.close()

    asyncio.run(scenario())


def test_losing_the_controller_mid_call_releases_the_call() -> None:
    """A hung controller: the call on port 1 is hung up (cause 41) and the call ringing
    port 2 is refused, instead of both staying up where nobody can hear or hang up."""
    actions: list[tuple[int, CallAction]] = []

    def call_control(ports: AnalogPorts, port: int, action: CallAction) -> None:
        actions.append((port, action))

    async def scenario() -> None:
        quick = LinkConfig(ack_timeout=0.1, retries=1, retry_interval=0.3, keepalive=0.3)
        pcms = {1: MemoryPcm(), 2: MemoryPcm(), 3: MemoryPcm()}
        ports, sim, pty = await run_ports(pcms, call_control, quick)
        try:
            ports.offer(1, IncomingCallOffer("2001", "ALICE"))
            assert await until(lambda: sim.phone(1).ringing)
            sim.phone(1).lift()
            talking = ports.ports[1]
            assert isinstance(talking, FxsPort)
            assert await until(lambda: talking.state is FxsState.TALKING)
            ports.offer(2, IncomingCallOffer("2002", "BOB"))
            assert await until(lambda: sim.phone(2).ringing)
            actions.clear()
            sim.silent = True
            assert await until(lambda: not ports.link_up, 5.0)
            assert (1, HangUpCall(Cause.TEMPORARY_FAILURE)) in actions
            assert (2, RejectOffer(Cause.TEMPORARY_FAILURE)) in actions
            ringing = ports.ports[2]
            assert isinstance(ringing, FxsPort)
            assert ringing.state is FxsState.IDLE
        finally:
            ports.close()
            pty.close()

    asyncio.run(scenario())
