"""The rig: the appliance's analog side on a board, and a phone side to drive it.

``SimRig`` runs the sim board end to end on this machine: the simulated line
controller on a pseudo-terminal (the real pyserial link talks to it), the real port
machines and port audio, and the ports' audio through real ALSA PCMs (the `file`
plugin of board/sim.toml), so a scenario hears what a phone on the port would: the
OUT files hold what the appliance played, the IN files what the phones "said".
Call actions the ports raise (``PlaceCall``, ``IncomingCall``...) are recorded; a
scenario answers for call control with ``rig.ports.offer``.

``hil.bench.BenchRig`` (a real board across the network; a relay card, GPIO inputs and
a codec on the phone side) implements the same operations: ``Phone`` and ``Line`` are
what a scenario does to a port, ``Rig`` what a scenario asks of any rig (the state of a
port by name, as the web API's ``/api/live`` gives it, and the ring cadence), so a
scenario written against ``Rig`` runs on the sim and on a bench alike.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from appliance.hw.analog_ports import AnalogPorts
from appliance.hw.board_loader import load_board
from appliance.hw.board_spec import BoardSpec
from appliance.hw.pcm import install_alsa_config, port_pcms
from appliance.hw.sim.controller import SimController, SimLine, SimPhone
from appliance.hw.sim.pty_controller import PtyController
from appliance.lines.digit_collector import dialplan_completion
from appliance.lines.port_actions import CallAction
from appliance.lines.signals import FeedMode
from appliance.pbx.dialplan import Dialplan

RATE: Final = 8000
CAPTURE_SECONDS: Final = 60.0  # the phones' side of the audio, laid out before the run


class Phone(Protocol):
    """An analog phone on an FXS port: ``SimPhone``, or the bench's relay and inputs."""

    @property
    def ringing(self) -> bool: ...

    @property
    def cadence(self) -> tuple[int, ...]: ...

    @property
    def feed(self) -> FeedMode: ...

    def lift(self) -> None: ...

    def hang_up(self) -> None: ...

    def flash(self, ms: int = 300) -> None: ...

    def dial_pulses(
        self, digits: str, break_ms: int = 60, make_ms: int = 40, gap_ms: int = 700
    ) -> None: ...


class Line(Protocol):
    """An exchange line on an FXO port: ``SimLine``, or the bench's relays and sensor."""

    @property
    def seized(self) -> bool: ...

    def ring_burst(self, ms: int = 2000) -> None: ...

    def reverse_polarity(self) -> None: ...

    def drop_loop(self, ms: int | None = None) -> None: ...


class PhoneSide(Protocol):
    """What a scenario does to a port from the outside."""

    def phone(self, port: int) -> Phone: ...

    def line(self, port: int) -> Line: ...

    def played(self, port: int) -> npt.NDArray[np.int16]: ...

    def say(self, port: int, at: float, samples: npt.NDArray[np.int16]) -> None: ...


class Rig(PhoneSide, Protocol):
    """What a scenario that runs on the sim and on a bench asks of its rig."""

    @property
    def country(self) -> str:
        """The board's line preset: which tones and cadence to expect."""
        ...

    @property
    def cadence_tolerance_ms(self) -> int:
        """How far a ring segment may be off: 0 on the sim, measured on a bench."""
        ...

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool: ...

    def port_state(self, port: int) -> str:
        """The port machine's state by name ("idle", "talking"...), as /api/live has it."""
        ...

    async def ring_cadence(self, port: int, count: int, timeout: float) -> tuple[int, ...]:
        """The first ``count`` segments (on, off... ms) of the ringing on ``port``."""
        ...


class SimRig:
    def __init__(self, run_dir: Path, extensions: tuple[str, ...] = ("101", "102")) -> None:
        self.run_dir = run_dir
        self.spec: BoardSpec = load_board("sim")
        self.extensions = set(extensions)
        self.calls: list[tuple[float, int, CallAction]] = []
        self._capture: dict[str, npt.NDArray[np.int16]] = {}
        self.sim: SimController | None = None
        self.pty: PtyController | None = None
        self.ports: AnalogPorts | None = None
        self._alsa_before: str | None = None

    # -- before start: what the phones will say, on a timeline from the start -------

    def say(self, port: int, at: float, samples: npt.NDArray[np.int16]) -> None:
        """Put ``samples`` into what the port's phone (or line) sends, ``at`` seconds
        after the rig starts (the capture files are read one frame per 20 ms tick)."""
        path, channels, channel = self._files(port, "in")
        buffer = self._capture.setdefault(
            path, np.zeros(int(CAPTURE_SECONDS * RATE) * channels, dtype=np.int16)
        )
        # the PCM opens after the controller link is up: a little later than t=0
        start = int(at * RATE)
        view = buffer[channel::channels]
        view[start : start + len(samples)] = samples[: max(len(view) - start, 0)]

    # -- life cycle -----------------------------------------------------------------

    async def start(self, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._alsa_before = os.environ.get("ALSA_CONFIG_PATH")
        os.environ["ALSA_CONFIG_PATH"] = install_alsa_config(
            self.spec.alsa_config or "", self.run_dir
        )
        for port in self.spec.ports:
            path, channels, _ = self._files(port.number, "in")
            samples = self._capture.get(
                path, np.zeros(int(CAPTURE_SECONDS * RATE) * channels, dtype=np.int16)
            )
            Path(path).write_bytes(samples.astype("<i2").tobytes())
        self.sim = SimController([p.type for p in self.spec.ports], now=loop.time())
        self.pty = PtyController(self.sim, loop)
        device = self.pty.open()
        completion = dialplan_completion(Dialplan(()), self.extensions)
        pcms = port_pcms(self.spec, self.run_dir)
        self.ports = AnalogPorts(loop, self.spec, device, pcms, completion, self._call)
        self.ports.start()
        await self.until(lambda: self.ports is not None and self.ports.link_up, timeout)

    def close(self) -> None:
        if self.ports is not None:
            self.ports.close()
        if self.pty is not None:
            self.pty.close()
        if self._alsa_before is None:  # the variable is the process's: put it back
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = self._alsa_before

    # -- the phone side ---------------------------------------------------------------

    @property
    def country(self) -> str:
        return self.spec.country

    @property
    def cadence_tolerance_ms(self) -> int:
        return 0  # the sim controller rings exactly the cadence it was given

    def port_state(self, port: int) -> str:
        assert self.ports is not None
        return str(self.ports.ports[port].state.value)

    async def ring_cadence(self, port: int, count: int, timeout: float) -> tuple[int, ...]:
        """The cadence the sim controller was told to ring (it is known at once)."""
        return self.phone(port).cadence[:count]

    def phone(self, port: int) -> SimPhone:
        assert self.sim is not None
        return self.sim.phone(port)

    def line(self, port: int) -> SimLine:
        assert self.sim is not None
        return self.sim.line(port)

    def played(self, port: int) -> npt.NDArray[np.int16]:
        """Everything the appliance has played to the port so far."""
        path, channels, channel = self._files(port, "out")
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            return np.zeros(0, dtype=np.int16)
        usable = len(raw) - len(raw) % (2 * channels)
        samples = np.frombuffer(raw[:usable], dtype="<i2")
        return samples[channel::channels].astype(np.int16)

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def _call(self, port: int, action: CallAction) -> None:
        self.calls.append((time.monotonic(), port, action))

    def _files(self, port: int, direction: str) -> tuple[str, int, int]:
        audio = self.spec.port(port).audio
        device = audio.device.replace("{run_dir}", str(self.run_dir))
        key = "OUT=" if direction == "out" else "IN="
        path = device.split(key, 1)[1].split(",", 1)[0].strip("'\"")
        return path, audio.channels, audio.channel
