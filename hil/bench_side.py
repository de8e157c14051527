"""The bench's phone side: lab hardware acting as the phones on a real board's FXS
ports and as the exchange on its FXO ports.

Per FXS port a relay closes the loop through a resistor (off hook; flashes and rotary
digits are timed toggles of it), a ring detector and a loop-current sensor are GPIO
inputs, and a codec channel is coupled to the line. Per FXO port a ring relay puts a
ring generator on the line, a battery relay its feed, a polarity relay swaps the
wires, a sensor sees the loop current the board draws (seized), and a codec channel
is coupled to the line. hil/README.md says how to wire it.

``BenchSide`` owns that hardware and has no clock of its own: ``step(now)`` fires the
relay moves due, samples the inputs every ``sample_ms`` and moves the 20 ms audio
frames due, and ``next_deadline()`` says when to call it again (the rig arms one loop
timer for it; tests call it with a manual clock). ``BenchPhone`` and ``BenchLine`` are
its ports as ``SimPhone`` and ``SimLine`` are the sim controller's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from appliance.hw.gpio import Lines
from appliance.hw.pcm import Pcm
from appliance.lines.signals import FeedMode
from hil.bench_audio import FRAME_S, LineAudio
from hil.bench_config import BenchConfig, FxoBench, FxsBench
from hil.meters import LoopMeter, RingMeter
from hil.relay import RelayCard, RelaySequencer, Step, Switch, flash_steps, pulse_steps

log = logging.getLogger(__name__)


@dataclass
class _FxsInputs:
    ring: RingMeter
    loop: LoopMeter


class BenchSide:
    def __init__(
        self,
        config: BenchConfig,
        card: RelayCard,
        lines: Lines,
        pcms: dict[int, Pcm],
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.card = card
        self.lines = lines
        self.clock = clock  # for moves asked for between steps (a lift, a ring burst)
        self.on_change: Callable[[], None] | None = None  # new moves queued: re-arm
        timing = config.timing
        self._sample_s = timing.sample_ms / 1000
        self.fxs = {p.port: p for p in config.fxs}
        self.fxo = {p.port: p for p in config.fxo}
        self.sequencers = {port: RelaySequencer() for port in (*self.fxs, *self.fxo)}
        self.audio = {port: LineAudio(pcms[port]) for port in (*self.fxs, *self.fxo)}
        self.inputs = {
            port: _FxsInputs(
                RingMeter(
                    self._sample_s, timing.ring_hold_ms / 1000, timing.ring_gap_max_ms / 1000
                ),
                LoopMeter(timing.loop_open_ms / 1000),
            )
            for port in self.fxs
        }
        self.seized = dict.fromkeys(self.fxo, False)
        self.t0: float | None = None
        self.now = 0.0
        self._next_sample: float | None = None
        self._frames = 0
        self._closed = False

    # -- life cycle -----------------------------------------------------------------

    def open(self, now: float) -> None:
        """Every relay to its idle position (phones on hook, lines fed and not
        ringing), audio open; the media clock starts at ``now``."""
        for fxs in self.fxs.values():
            self.card.switch(fxs.relay, False)
        for fxo in self.fxo.values():
            self.card.switch(fxo.ring_relay, False)
            self.card.switch(fxo.polarity_relay, False)
            self.card.switch(fxo.battery_relay, True)
        for audio in self.audio.values():
            audio.pcm.open()
        self.t0 = self.now = now
        self._next_sample = now

    def close(self) -> None:
        """Every relay open (no loop, no ring, no battery), audio and inputs closed.
        Once: a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.t0 is not None:
                ports: list[FxsBench | FxoBench] = [*self.fxs.values(), *self.fxo.values()]
                for port in ports:
                    for channel in _relays(port):
                        self.card.switch(channel, False)
        finally:
            for audio in self.audio.values():
                audio.pcm.close()
            self.lines.close()
            self.card.close()

    # -- the clock ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self.t0 is None or self._next_sample is None:
            return None
        times = [self._next_sample, self.t0 + self._frames * FRAME_S]
        times += [d for s in self.sequencers.values() if (d := s.next_deadline()) is not None]
        return min(times)

    def step(self, now: float) -> None:
        if self.t0 is None or self._next_sample is None:
            raise RuntimeError("the bench side is not open")
        self.now = now
        for port, sequencer in self.sequencers.items():
            for _, move in sequencer.handle_timer(now):
                self._switch(port, move)
        if now >= self._next_sample:
            self._sample(now)
            while self._next_sample <= now:  # a late step samples once, not for each miss
                self._next_sample += self._sample_s
        while self.t0 + self._frames * FRAME_S <= now:
            for audio in self.audio.values():
                audio.tick()
            self._frames += 1

    def queue(self, port: int, steps: Iterable[Step]) -> None:
        self.sequencers[port].queue(steps, max(self.clock(), self.now))
        if self.on_change is not None:
            self.on_change()

    def _switch(self, port: int, move: Switch) -> None:
        self.card.switch(move.channel, move.on)
        fxs = self.fxs.get(port)
        if fxs is not None and move.channel == fxs.relay and move.on:
            self.inputs[port].ring.reset()  # off hook: whatever rang is over

    def _sample(self, now: float) -> None:
        for port, fxs in self.fxs.items():
            inputs = self.inputs[port]
            inputs.ring.feed(now, self.lines.get(fxs.ring))
            off_hook = self.card.state.get(fxs.relay, False)
            inputs.loop.feed(now, self.lines.get(fxs.loop_current), off_hook)
        for port, fxo in self.fxo.items():
            if not self.card.state.get(fxo.battery_relay, False):
                continue  # no battery, no loop current: keep what was last seen
            self.seized[port] = self.lines.get(fxo.seized)
            if self.seized[port] and self.card.state.get(fxo.ring_relay, False):
                # ring trip, as an exchange does: an answered line stops ringing at once
                self.card.switch(fxo.ring_relay, False)

    # -- what scenarios use -------------------------------------------------------------

    def say(self, port: int, at: float, samples: npt.NDArray[np.int16]) -> None:
        self.audio[port].say(at, samples)

    def played(self, port: int) -> npt.NDArray[np.int16]:
        return self.audio[port].played()

    def phone(self, port: int) -> BenchPhone:
        if port not in self.fxs:
            raise KeyError(f"port {port} is not an FXS port of this bench")
        return BenchPhone(self, self.fxs[port])

    def line(self, port: int) -> BenchLine:
        if port not in self.fxo:
            raise KeyError(f"port {port} is not an FXO port of this bench")
        return BenchLine(self, self.fxo[port])


def _relays(port: FxsBench | FxoBench) -> tuple[int, ...]:
    if isinstance(port, FxsBench):
        return (port.relay,)
    return (port.ring_relay, port.polarity_relay, port.battery_relay)


class BenchPhone:
    """An analog phone on an FXS port of the board, as a scenario handles it."""

    def __init__(self, side: BenchSide, spec: FxsBench) -> None:
        self._side = side
        self._spec = spec

    @property
    def number(self) -> int:
        return self._spec.port

    @property
    def off_hook(self) -> bool:
        """The relay's position now (closed: the loop is closed, off hook)."""
        return self._side.card.state.get(self._spec.relay, False)

    @property
    def ringing(self) -> bool:
        """Ring bursts are coming (the last less than ring_gap_max_ms ago), on hook."""
        ring = self._side.inputs[self._spec.port].ring
        return not self.off_hook and ring.ringing(self._side.now)

    @property
    def cadence(self) -> tuple[int, ...]:
        """The ring cadence measured so far: on, off, on... ms of completed segments."""
        return self._side.inputs[self._spec.port].ring.cadence()

    @property
    def feed(self) -> FeedMode:
        """OPEN when off hook with no loop current for loop_open_ms; else NORMAL (the
        bench has no polarity sensor on FXS, and on hook no loop to measure)."""
        loop = self._side.inputs[self._spec.port].loop
        return FeedMode.OPEN if loop.open(self._side.now) else FeedMode.NORMAL

    def lift(self) -> None:
        self._side.queue(self.number, [(0.0, Switch(self._spec.relay, True))])

    def hang_up(self) -> None:
        self._side.queue(self.number, [(0.0, Switch(self._spec.relay, False))])

    def flash(self, ms: int = 300) -> None:
        self._side.queue(self.number, flash_steps(self._spec.relay, ms))

    def dial_pulses(
        self, digits: str, break_ms: int = 60, make_ms: int = 40, gap_ms: int = 700
    ) -> None:
        self._side.queue(
            self.number, pulse_steps(self._spec.relay, digits, break_ms, make_ms, gap_ms)
        )


class BenchLine:
    """An exchange line on an FXO port of the board, as a scenario handles it."""

    def __init__(self, side: BenchSide, spec: FxoBench) -> None:
        self._side = side
        self._spec = spec

    @property
    def number(self) -> int:
        return self._spec.port

    @property
    def seized(self) -> bool:
        """The board draws loop current (the last reading with the battery on)."""
        return self._side.seized[self._spec.port]

    @property
    def reversed(self) -> bool:
        return self._side.card.state.get(self._spec.polarity_relay, False)

    def ring_burst(self, ms: int = 2000) -> None:
        ring = self._spec.ring_relay
        self._side.queue(self.number, [(0.0, Switch(ring, True)), (ms / 1000, Switch(ring, False))])

    def reverse_polarity(self) -> None:
        """Swap the wires (from the position the last queued move leaves them in)."""
        channel = self._spec.polarity_relay
        now = self._side.card.state.get(channel, False)
        planned = _planned(self._side.sequencers[self.number], channel, now)
        self._side.queue(self.number, [(0.0, Switch(channel, not planned))])

    def drop_loop(self, ms: int | None = None) -> None:
        """Take the battery off for ``ms`` (the board sees loop current drop), then put
        it back; without ``ms`` for the bench's ``loop_break_ms``: the sim's line waits
        for a new seizure instead, which a bench cannot see without battery."""
        battery = self._spec.battery_relay
        hold = (ms if ms is not None else self._side.config.timing.loop_break_ms) / 1000
        self._side.queue(
            self.number, [(0.0, Switch(battery, False)), (hold, Switch(battery, True))]
        )


def _planned(sequencer: RelaySequencer, channel: int, current: bool) -> bool:
    for _, move in sequencer.pending():
        if move is not None and move.channel == channel:
            current = move.on
    return current
