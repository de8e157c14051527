"""The simulated line controller: the microcontroller's side of board/PROTOCOL.md.

``SimController`` is sans-IO like the host's ``ControllerLink``: it is fed the host's
bytes and the time and returns its answers and events as bytes, so the real host
code talks to it byte for byte (``pty_controller`` puts it behind a pseudo-terminal).
It does the controller's real-time work the way firmware would: hook debounce and
pulse/flash decoding from raw hook transitions (``appliance.lines.pulse``), ring
cadence and ring-trip on FXS ports, ring detection and loop-drop timing on FXO ports.

Tests drive the far side through ``SimPhone`` (FXS) and ``SimLine`` (FXO). Their
actions queue timed steps (a dialled "1" is a 60 ms break then a 40 ms make); a queue
starts at the next time the controller is called and runs behind earlier actions of
the same port. ``on_wake`` lets an edge know that something was queued. Fault
switches: ``drop_events(n)`` loses the next events after numbering them (the host
sees the gap), ``garble_next_line()`` corrupts the next line sent, ``reset()``
restarts the controller, and ``silent`` makes it ignore the host.

Not modelled: the waveforms themselves, line current limits, the time a DIAL takes
(the digits are recorded at once), and the feed's effect on hook detection.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from appliance.lines.controller_config import (
    FxoConfig,
    FxsConfig,
    Hello,
    PortStatus,
    config_from_command,
)
from appliance.lines.controller_protocol import (
    CLOCK_MAX,
    MAX_LINE,
    PROTOCOL_VERSION,
    REPLY_MEMORY,
    Ack,
    Command,
    ProtocolError,
    Verb,
    command_to_intent,
    decode_line,
    next_number,
    signal_to_event,
)
from appliance.lines.pulse import HookDecoder, PulseWindows
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Feed,
    FeedMode,
    Hook,
    LineIntent,
    LineSignal,
    LoopCurrentDrop,
    PolarityReversal,
    PortType,
    Ring,
    RingStart,
    RingStop,
)

log = logging.getLogger(__name__)

DEFAULT_CADENCE: Final = (2000, 4000)  # ms on, off: what RING ON without cadence= rings


class Step(Enum):
    """One thing the far side of a port does at a moment."""

    OFF_HOOK = "off_hook"  # FXS: the phone's loop closes
    ON_HOOK = "on_hook"  # FXS: the loop opens
    RING_ON = "ring_on"  # FXO: the exchange puts ringing voltage on the line
    RING_OFF = "ring_off"
    POLARITY = "polarity"  # FXO: the exchange reverses the line
    LOOP_OFF = "loop_off"  # FXO: the exchange removes loop current
    LOOP_ON = "loop_on"
    WAIT = "wait"  # nothing: spaces what follows


@dataclass(slots=True)
class _Script:
    """Queued steps, each a delay after the one before; the first waits for a start."""

    steps: deque[tuple[float, Step]] = field(default_factory=deque)
    last: float | None = None  # when the previous step ran; None: not started yet

    def next_at(self, now: float) -> float | None:
        if not self.steps:
            return None
        return (now if self.last is None else self.last) + self.steps[0][0]

    def pop(self, at: float) -> Step:
        step = self.steps.popleft()[1]
        self.last = None if not self.steps else at  # an empty queue restarts fresh
        return step


class _Port(ABC):
    """What the controller keeps for one port, FXS or FXO."""

    type: PortType

    def __init__(self, number: int, sim: SimController) -> None:
        self.number = number
        self.sim = sim
        self.script = _Script()
        self.config: FxsConfig | FxoConfig | None = None

    def queue(self, *steps: tuple[float, Step]) -> None:
        self.script.steps.extend(steps)
        self.sim.wake()

    def due(self, now: float) -> float | None:
        times = [t for t in (self.script.next_at(now), self.timer_at()) if t is not None]
        return min(times, default=None)

    def fire(self, at: float, now: float) -> list[LineSignal]:
        """Run the earliest of the next step and the port's timer, at ``at``."""
        step_at = self.script.next_at(now)
        if step_at is not None and step_at <= at:
            return self.step(self.script.pop(step_at), step_at)
        return self.timer(at)

    @abstractmethod
    def timer_at(self) -> float | None: ...

    @abstractmethod
    def timer(self, at: float) -> list[LineSignal]: ...

    @abstractmethod
    def step(self, step: Step, at: float) -> list[LineSignal]: ...

    @abstractmethod
    def apply(self, intent: LineIntent, at: float) -> str | None:
        """Carry out an intent; an ERR reason if it cannot be."""

    @abstractmethod
    def status(self) -> PortStatus: ...

    @abstractmethod
    def restart(self) -> None: ...


class _FxsPort(_Port):
    type = PortType.FXS

    def __init__(self, number: int, sim: SimController) -> None:
        super().__init__(number, sim)
        self.loop_closed = False  # the phone's real hook state, before debouncing
        self.decoder = HookDecoder(number, PulseWindows())
        self.ringing = False
        self.cadence: tuple[int, ...] = ()
        self.ring_since = 0.0
        self.feed = FeedMode.NORMAL

    def restart(self) -> None:
        self.config = None
        self.decoder = HookDecoder(self.number, PulseWindows(), off_hook=self.loop_closed)
        self.ringing = False
        self.feed = FeedMode.NORMAL

    def configure(self, config: FxsConfig) -> None:
        self.config = config
        if config.windows != self.decoder.windows:
            self.decoder = HookDecoder(self.number, config.windows, self.decoder.off_hook)

    def timer_at(self) -> float | None:
        deadline = self.decoder.next_deadline()
        return None if deadline is None else self.sim.time_of(deadline)

    def timer(self, at: float) -> list[LineSignal]:
        return self.decoder.handle_timer(self.sim.ms(at))

    def step(self, step: Step, at: float) -> list[LineSignal]:
        if step is Step.OFF_HOOK:
            self.loop_closed = True
            self.ringing = False  # ring-trip: the SLIC stops ringing an answered phone
        elif step is Step.ON_HOOK:
            self.loop_closed = False
        else:
            return []
        if self.feed is FeedMode.OPEN:
            return []  # no loop current, no hook detection (PROTOCOL.md, FEED)
        return self.decoder.hook(self.loop_closed, self.sim.ms(at))

    def apply(self, intent: LineIntent, at: float) -> str | None:
        match intent:
            case Ring(_, True, cadence):
                cadence = cadence or DEFAULT_CADENCE
                if self.loop_closed or self.decoder.off_hook:
                    return "offhook the phone is off hook"
                if isinstance(self.config, FxsConfig) and not self.config.cadence_allowed(cadence):
                    return "badcadence outside this port's cadence limits"
                if not (self.ringing and cadence == self.cadence):  # a repeat keeps its phase
                    self.ringing, self.cadence, self.ring_since = True, cadence, at
            case Ring(_, False, _):
                self.ringing = False
            case Feed(_, mode):
                was_open, self.feed = self.feed is FeedMode.OPEN, mode
                if was_open and mode is not FeedMode.OPEN:
                    if self.loop_closed != self.decoder.off_hook:  # changed while masked
                        self.queue((0.0, Step.OFF_HOOK if self.loop_closed else Step.ON_HOOK))
            case _:
                return "badtype not an fxs command"
        return None

    def bell(self, now: float) -> bool:
        """Whether the bell is sounding now: inside an on segment of the cadence."""
        if not self.ringing or not self.cadence:
            return False
        position = self.sim.ms(now) - self.sim.ms(self.ring_since)
        position %= sum(self.cadence)
        for index, length in enumerate(self.cadence):
            if position < length:
                return index % 2 == 0
            position -= length
        return False

    def status(self) -> PortStatus:
        return PortStatus(
            self.number,
            PortType.FXS,
            self.config is not None,
            off_hook=self.decoder.off_hook,
            ringing=self.ringing,
            feed=self.feed,
        )


class _FxoPort(_Port):
    type = PortType.FXO

    def __init__(self, number: int, sim: SimController) -> None:
        super().__init__(number, sim)
        self.voltage = False  # ring voltage on the line now
        self.reversed = False
        self.current = True  # the exchange feeds loop current when we seize
        self.seized = False
        self.dialed = ""
        self.ring_reported = False
        self.loop_reported_off = False
        self._ring_start_at: float | None = None
        self._ring_stop_at: float | None = None
        self._drop_at: float | None = None

    @property
    def fxo(self) -> FxoConfig:
        return self.config if isinstance(self.config, FxoConfig) else FxoConfig(self.number)

    def restart(self) -> None:
        self.config = None
        self.seized = False
        self.loop_reported_off = False
        self._drop_at = None

    def timer_at(self) -> float | None:
        times = (self._ring_start_at, self._ring_stop_at, self._drop_at)
        return min((t for t in times if t is not None), default=None)

    def timer(self, at: float) -> list[LineSignal]:
        if self._ring_start_at is not None and self._ring_start_at <= at:
            self._ring_start_at, self.ring_reported = None, True
            return [RingStart(self.number)]
        if self._ring_stop_at is not None and self._ring_stop_at <= at:
            self._ring_stop_at, self.ring_reported = None, False
            return [RingStop(self.number)]
        if self._drop_at is not None and self._drop_at <= at:
            self._drop_at, self.loop_reported_off = None, True
            return [LoopCurrentDrop(self.number)]
        return []

    def step(self, step: Step, at: float) -> list[LineSignal]:
        config = self.fxo
        match step:
            case Step.RING_ON:
                self.voltage, self._ring_stop_at = True, None
                if not self.ring_reported:  # qualify the burst before calling it a ring
                    self._ring_start_at = at + config.ring_min_ms / 1000
            case Step.RING_OFF:
                self.voltage, self._ring_start_at = False, None  # too short: noise
                if self.ring_reported:
                    self._ring_stop_at = at + config.ring_debounce_ms / 1000
            case Step.POLARITY:
                self.reversed = not self.reversed
                if "polarity" in config.disconnect:
                    return [PolarityReversal(self.number)]
            case Step.LOOP_OFF:
                self.current = False
                if self.seized and "loop" in config.disconnect and not self.loop_reported_off:
                    self._drop_at = at + config.loop_drop_ms / 1000
            case Step.LOOP_ON:
                self.current, self._drop_at = True, None
                self.loop_reported_off = False
        return []

    def apply(self, intent: LineIntent, at: float) -> str | None:
        match intent:
            case Hook(_, off):
                if off and not self.seized:  # the exchange feeds a freshly seized line
                    self.current, self.loop_reported_off = True, False
                if not off:
                    self._drop_at = None
                self.seized = off
            case DialPulses(_, digits):
                if not self.seized:
                    return "onhook seize the line before dialling"
                self.dialed += digits
            case _:
                return "badtype not an fxo command"
        return None

    def status(self) -> PortStatus:
        return PortStatus(
            self.number,
            PortType.FXO,
            self.config is not None,
            off_hook=self.seized,
            ringing=self.ring_reported,
            reversed=self.reversed,
            loop=self.seized and not self.loop_reported_off,
        )


class SimPhone:
    """An analog phone on an FXS port, as a test handles it."""

    def __init__(self, port: _FxsPort) -> None:
        self._port = port

    @property
    def number(self) -> int:
        return self._port.number

    @property
    def off_hook(self) -> bool:
        """The handset's real position (the controller reports it after debouncing)."""
        return self._port.loop_closed

    @property
    def reported_off_hook(self) -> bool:
        """Off hook as the controller has debounced it (and reported it, if configured)."""
        return self._port.decoder.off_hook

    @property
    def ringing(self) -> bool:
        """A ring cadence is running on this port."""
        return self._port.ringing

    @property
    def bell(self) -> bool:
        """The bell sounds at the controller's current time (an on segment)."""
        return self._port.bell(self._port.sim.now)

    @property
    def cadence(self) -> tuple[int, ...]:
        return self._port.cadence

    @property
    def feed(self) -> FeedMode:
        return self._port.feed

    def lift(self) -> None:
        self._port.queue((0.0, Step.OFF_HOOK))

    def hang_up(self) -> None:
        self._port.queue((0.0, Step.ON_HOOK))

    def flash(self, ms: int = 300) -> None:
        self._port.queue((0.0, Step.ON_HOOK), (ms / 1000, Step.OFF_HOOK))

    def dial_pulses(
        self, digits: str, break_ms: int = 60, make_ms: int = 40, gap_ms: int = 700
    ) -> None:
        """Dial as a rotary phone does; a pause of ``gap_ms`` goes before each digit and
        after the last, so what is queued next starts after the digit has ended."""
        steps: list[tuple[float, Step]] = []
        for digit in digits:
            if digit not in "0123456789":
                raise ValueError(f"{digit!r} cannot be dialled by pulses")
            for pulse in range(int(digit) or 10):
                steps.append(((make_ms if pulse else gap_ms) / 1000, Step.ON_HOOK))
                steps.append((break_ms / 1000, Step.OFF_HOOK))
        self._port.queue(*steps, (gap_ms / 1000, Step.WAIT))


class SimLine:
    """An exchange line on an FXO port, as a test handles it."""

    def __init__(self, port: _FxoPort) -> None:
        self._port = port

    @property
    def number(self) -> int:
        return self._port.number

    @property
    def seized(self) -> bool:
        return self._port.seized

    @property
    def dialed(self) -> str:
        return self._port.dialed

    @property
    def reversed(self) -> bool:
        return self._port.reversed

    def ring_burst(self, ms: int = 2000) -> None:
        self._port.queue((0.0, Step.RING_ON), (ms / 1000, Step.RING_OFF))

    def reverse_polarity(self) -> None:
        self._port.queue((0.0, Step.POLARITY))

    def drop_loop(self, ms: int | None = None) -> None:
        """Remove loop current, for ``ms`` or until the line is seized again."""
        steps = [(0.0, Step.LOOP_OFF)]
        if ms is not None:
            steps.append((ms / 1000, Step.LOOP_ON))
        self._port.queue(*steps)


class SimController:
    """The controller of a board with these ports (numbered from 1 in order)."""

    def __init__(
        self,
        ports: Sequence[PortType],
        name: str = "yakyak-sim",
        now: float = 0.0,
        announce_boot: bool = True,
    ) -> None:
        self.name = name
        self.silent = False  # a hung controller: input ignored, nothing sent
        self.on_wake: Callable[[], None] | None = None
        self.commands: list[Command] = []  # every command acted on, for tests
        self.garbage = 0  # input lines that did not parse
        self._ports: dict[int, _FxsPort | _FxoPort] = {}
        for number, kind in enumerate(ports, start=1):
            port = _FxsPort(number, self) if kind is PortType.FXS else _FxoPort(number, self)
            self._ports[number] = port
        self.now = now
        self._boot = now
        self._counter = 0
        self._buffer = bytearray()
        self._discarding = False
        self._replies: OrderedDict[str, bytes] = OrderedDict()
        self._reset_cause: str | None = "power" if announce_boot else None
        self._drop = 0
        self._garble = 0

    # -- the test side -----------------------------------------------------------------

    def phone(self, port: int) -> SimPhone:
        found = self._ports.get(port)
        if not isinstance(found, _FxsPort):
            raise KeyError(f"port {port} is not an FXS port")
        return SimPhone(found)

    def line(self, port: int) -> SimLine:
        found = self._ports.get(port)
        if not isinstance(found, _FxoPort):
            raise KeyError(f"port {port} is not an FXO port")
        return SimLine(found)

    def configured(self, port: int) -> FxsConfig | FxoConfig | None:
        return self._ports[port].config

    def drop_events(self, count: int = 1) -> None:
        self._drop += count

    def garble_next_line(self) -> None:
        self._garble += 1

    def reset(self, cause: str = "watchdog") -> None:
        """Restart at the next call: configuration, ringing and seizures are gone."""
        self._reset_cause = cause
        self.wake()

    def wake(self) -> None:
        if self.on_wake is not None:
            self.on_wake()

    # -- the host side -----------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> bytes:
        out = self.handle_timer(now)
        if self.silent:
            return out
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False
            else:
                out += self._line(raw, now)
        if len(self._buffer) > MAX_LINE + 1:
            self._buffer.clear()
            self._discarding = True
            self.garbage += 1
        return out

    def next_deadline(self) -> float | None:
        waiting = any(p.script.steps and p.script.last is None for p in self._ports.values())
        if self._reset_cause is not None or waiting:
            return self.now  # call again now: queued actions start when called
        times = [t for p in self._ports.values() if (t := p.due(self.now)) is not None]
        return min(times, default=None)

    def handle_timer(self, now: float) -> bytes:
        """Everything due by ``now``, in time order; queued actions start at ``now``."""
        now = max(now, self.now)
        out = b""
        if self._reset_cause is not None:
            out += self._restart(self._reset_cause, now)
        for port in self._ports.values():
            if port.script.steps and port.script.last is None:
                port.script.last = now  # a new queue starts now
        while True:
            due = [(t, n) for n, p in self._ports.items() if (t := p.due(now)) is not None]
            if not due or (first := min(due))[0] > now:
                break
            at, number = first
            port = self._ports[number]
            for signal in port.fire(at, now):
                if port.config is not None:  # an unconfigured port reports nothing
                    out += self._event(signal, at)
        self.now = now
        return out

    # -- clock -------------------------------------------------------------------------

    def ms(self, at: float) -> int:
        """The controller's millisecond clock, counted from its last start."""
        return round((at - self._boot) * 1000) & CLOCK_MAX

    def time_of(self, ms: int) -> float:
        return self._boot + ms / 1000

    # -- inside ------------------------------------------------------------------------

    def _restart(self, cause: str, now: float) -> bytes:
        log.info("sim controller restarts (%s)", cause)
        self._reset_cause = None
        self._boot = now
        self._counter = 0
        self._replies.clear()
        self._buffer.clear()
        for port in self._ports.values():
            port.restart()
        return self._send(bytes(signal_to_event(ControllerReset(), 0, 0, (("cause", cause),))))

    def _event(self, signal: LineSignal, at: float) -> bytes:
        self._counter = next_number(self._counter)
        if self._drop:
            self._drop -= 1
            return b""  # numbered, then lost: the host sees the gap
        return self._send(bytes(signal_to_event(signal, self._counter, self.ms(at))))

    def _send(self, line: bytes) -> bytes:
        if self.silent:
            return b""
        if self._garble:
            self._garble -= 1
            middle = len(line) // 2
            line = line[:middle] + b"\xff" + line[middle + 1 :]
        return line

    def _line(self, raw: bytes, now: float) -> bytes:
        if not raw.strip():
            return b""
        try:
            message = decode_line(raw)
        except ProtocolError as exc:  # the one except where bytes enter
            self.garbage += 1
            if exc.seq is None:
                return b""
            return self._send(bytes(Ack(exc.seq, False, reason=_reason("badcommand", exc))))
        if not isinstance(message, Command):
            self.garbage += 1  # answers and events come from us, not to us
            return b""
        self.commands.append(message)
        if message.verb == Verb.STATUS:
            return self._status(message.seq, now)
        line = str(message)
        if message.verb == Verb.HELLO:
            self._replies.clear()  # a new session: its seq may start again at 1
        elif (repeat := self._replies.get(line)) is not None:
            return self._send(repeat)  # a resend: answer again, do not act twice
        reply = bytes(self._execute(message, now))
        self._replies[line] = reply
        while len(self._replies) > REPLY_MEMORY:
            self._replies.popitem(last=False)
        return self._send(reply)

    def _execute(self, command: Command, now: float) -> Ack:
        seq = command.seq

        def refuse(reason: str) -> Ack:
            return Ack(seq, False, reason=reason)

        if command.verb == Verb.HELLO:
            _, _, version = command.args[0].partition("/")
            if version != str(PROTOCOL_VERSION):
                return refuse(f"version this controller speaks proto={PROTOCOL_VERSION}")
            return Hello(self.name, PROTOCOL_VERSION, len(self._ports)).to_ack(seq)
        port = self._ports.get(command.port or 0)
        if command.verb == Verb.CONFIG:
            if port is None:
                return refuse(f"badport no port {command.port}")
            try:
                config = config_from_command(command)
            except ProtocolError as exc:
                return refuse(_reason("badconfig", exc))
            if config.type is not port.type:
                return refuse(f"badtype port {port.number} is {port.type.value}")
            if isinstance(port, _FxsPort) and isinstance(config, FxsConfig):
                port.configure(config)
            else:
                port.config = config
            return Ack(seq, True)
        intent = command_to_intent(command)
        if intent is None:
            return refuse(f"unknown {command.verb}")
        if port is None:
            return refuse(f"badport no port {command.port}")
        if port.config is None:
            return refuse(f"notconfigured port {port.number} has had no CONFIG")
        reason = port.apply(intent, now)
        return Ack(seq, True) if reason is None else refuse(reason)

    def _status(self, seq: int, now: float) -> bytes:
        out = b"".join(self._send(bytes(p.status().to_line(seq))) for p in self._ports.values())
        done = (("evt", str(self._counter)), ("t", str(self.ms(now))))
        return out + self._send(bytes(Ack(seq, True, done)))


def _reason(code: str, exc: ProtocolError) -> str:
    return " ".join(f"{code} {exc.reason}".split())
