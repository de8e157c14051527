"""The bench rig: the HIL call scenarios against a real board across the network.

``BenchRig`` is a ``CallRig`` (hil/scenarios/calls.py) like ``ApplianceRig``, with the
board running on its own (``yakyak serve --board rpi4`` on a Pi, say) and the phone
side made of lab hardware on this machine (``hil.bench_side``): a USB relay card,
GPIO inputs and a codec, described by a TOML file (``hil/bench.example.toml``, every
key in hil/README.md). What a scenario asks of the board itself (a port's machine
state, the calls in progress) comes from the board's web API, ``GET /api/live``, with
the API token the file holds. The SIP desk phone is baresip, as on the sim rig,
registered with the board's SIP service from this machine's address.

One loop timer drives the phone side (``BenchSide.step``: relay moves, input
samples, audio frames); a thread polls /api/live; baresip runs as its own process.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.hw.gpio import Lines, open_lines
from appliance.hw.pcm import Pcm
from appliance.web.live import CallView
from hil.bench_audio import SAY_SECONDS, open_line_pcms
from hil.bench_config import BenchConfig
from hil.bench_side import BenchLine, BenchPhone, BenchSide
from hil.desk_phone import FAR_TONE_HZ, LanDeskPhone, Registrar, write_tone
from hil.live_api import LiveApiError, LiveClient, LivePoller, LiveState
from hil.relay import RelayCard

log = logging.getLogger(__name__)

UNKNOWN: Final = "unknown"  # a port's state before /api/live has answered
HELD: Final = "held"  # FxsState.HELD's name, as /api/live shows it
IDLE: Final = "idle"
POLL_S: Final = 0.01  # until()'s look at its condition, as on the sim rig


@dataclass
class Hardware:
    """The bench's devices, opened by ``open_hardware`` or made by a test."""

    card: RelayCard
    lines: Lines
    pcms: dict[int, Pcm]


def open_hardware(config: BenchConfig) -> Hardware:
    card = RelayCard.open(config.relay_card)
    try:
        inputs = [g for p in config.fxs for g in (p.ring, p.loop_current)]
        inputs += [p.seized for p in config.fxo]
        lines = open_lines([], inputs)
    except Exception:
        card.close()
        raise
    channels = [(p.port, p.audio) for p in config.fxs] + [(p.port, p.audio) for p in config.fxo]
    return Hardware(card, lines, open_line_pcms(channels))


class BenchRig:
    def __init__(
        self,
        config: BenchConfig,
        run_dir: Path,
        hardware: Callable[[BenchConfig], Hardware] = open_hardware,
        live: Callable[[], LiveState] | None = None,
        desk_phone: bool = True,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self._hardware = hardware
        self._fetch = live if live is not None else LiveClient(config.board).fetch
        self._with_phone = desk_phone
        self._says: list[tuple[int, float, npt.NDArray[np.int16]]] = []
        self.side: BenchSide | None = None
        self.audio_started = 0.0
        self.live: LiveState | None = None
        self.live_error: str | None = None
        self._poller: LivePoller | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._phone: LanDeskPhone | None = None
        self._phone_dir: Path | None = None

    # -- what the scenarios ask -----------------------------------------------------

    @property
    def country(self) -> str:
        return self.config.board.country

    @property
    def cadence_tolerance_ms(self) -> int:
        return self.config.timing.cadence_tolerance_ms

    @property
    def far_extension(self) -> str:
        return self.config.desk_phone.extension

    @property
    def far(self) -> LanDeskPhone:
        if self._phone is None:
            raise RuntimeError("the bench's desk phone is not running")
        return self._phone

    def sip_uri(self, user: str) -> str:
        board = self.config.board
        return f"sip:{user}@{board.host}:{board.sip_port}"

    def say(self, port: int, at: float, samples: npt.NDArray[np.int16]) -> None:
        if self.side is None:
            self._says.append((port, at, samples))
        else:
            self.side.say(port, at, samples)

    def phone(self, port: int) -> BenchPhone:
        return self._open_side().phone(port)

    def line(self, port: int) -> BenchLine:
        return self._open_side().line(port)

    def played(self, port: int) -> npt.NDArray[np.int16]:
        return self._open_side().played(port)

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    def port_state(self, port: int) -> str:
        view = self.live.ports.get(port) if self.live is not None else None
        if view is None:
            return f"{UNKNOWN} ({self.live_error})" if self.live_error else UNKNOWN
        return view.state

    def active_calls(self) -> list[CallView]:
        return list(self.live.calls) if self.live is not None else []

    def port_held(self, port: int) -> bool:
        """The port machine is in HELD. (/api/live shows no more: whether the far end
        agreed to the hold is seen on the sim rig only.)"""
        return self.port_state(port) == HELD

    async def ring_cadence(self, port: int, count: int, timeout: float) -> tuple[int, ...]:
        """Waits until ``count`` segments of the ringing have been measured."""
        phone = self.phone(port)
        await self.until(lambda: len(phone.cadence) >= count, timeout)
        return phone.cadence[:count]

    # -- life cycle -----------------------------------------------------------------

    async def start(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.run_dir.mkdir(parents=True, exist_ok=True)
        hardware = self._hardware(self.config)
        side = BenchSide(self.config, hardware.card, hardware.lines, hardware.pcms, loop.time)
        self.side = side
        for port, at, samples in self._says:
            side.say(port, at, samples)
        side.on_change = self._rearm
        side.open(loop.time())
        self.audio_started = side.t0 or loop.time()  # loop.time() is time.monotonic()
        self._rearm()

        def deliver(result: LiveState | LiveApiError) -> None:  # on the poller's thread
            loop.call_soon_threadsafe(self._live_answer, result)

        self._poller = LivePoller(self._fetch, deliver, self.config.timing.live_poll_ms / 1000)
        self._poller.start()
        if not await self.until(lambda: self.live is not None, timeout):
            raise RuntimeError(f"no answer from the board's /api/live: {self.live_error}")
        ports = sorted(self.config.ports())

        def idle() -> bool:
            return all(self.port_state(p) == IDLE for p in ports)

        if not await self.until(idle, timeout):
            states = ", ".join(f"port {p} {self.port_state(p)}" for p in ports)
            raise RuntimeError(f"the board's ports are not idle before the scenario: {states}")
        if self._with_phone:
            await self._start_phone()

    async def _start_phone(self) -> None:
        desk = self.config.desk_phone
        board = self.config.board
        # baresip 1.0.0 cuts its recording paths at about 128 characters: a short folder
        self._phone_dir = Path(tempfile.mkdtemp(prefix="yakyak-bench-"))
        tone = self._phone_dir / "far-tone.wav"
        write_tone(tone, FAR_TONE_HZ, SAY_SECONDS)
        phone = LanDeskPhone(
            desk.extension,
            self._phone_dir / desk.extension,
            tone,
            Registrar(board.host, board.sip_port, desk.password),
            desk.local_address,
        )
        self._phone = phone
        await asyncio.to_thread(phone.start)
        await asyncio.to_thread(phone.wait_registered)

    async def aclose(self) -> None:
        if self._phone is not None:
            await asyncio.to_thread(self._phone.stop)
        if self._phone_dir is not None:
            shutil.rmtree(self._phone_dir, ignore_errors=True)
        if self._poller is not None:
            await asyncio.to_thread(self._poller.stop)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.side is not None:
            side, self.side = self.side, None
            side.on_change = None
            side.close()

    # -- inside -----------------------------------------------------------------------

    def _open_side(self) -> BenchSide:
        if self.side is None:
            raise RuntimeError("the bench rig has not started")
        return self.side

    def _rearm(self) -> None:
        """One timer for the phone side: its next deadline (STYLE §2.6)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.side is None or self._loop is None:
            return
        deadline = self.side.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.side is None or self._loop is None:
            return
        self.side.step(self._loop.time())
        self._rearm()

    def _live_answer(self, result: LiveState | LiveApiError) -> None:
        if isinstance(result, LiveApiError):
            self.live_error = str(result)
            log.warning("bench: /api/live: %s", result)
        else:
            self.live, self.live_error = result, None
