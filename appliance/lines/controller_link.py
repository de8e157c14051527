"""The host's session with the line controller, sans-IO (§ numbers: board/PROTOCOL.md).

``ControllerLink`` is fed the UART's bytes and the time, and returns what to send
and what happened: the controller's signals in order, and notices about the link.
It owns the protocol's promises:

* every command is acknowledged; an unanswered one is resent with the same sequence
  number (the controller answers a repeat without acting twice, §2), and after
  ``retries`` resends the link is down and HELLO is retried every ``retry_interval``;
* commands set state, so the latest intent per port and kind is all that matters: a
  new one supersedes an unanswered one, and after a reconnect or a controller reset
  the configuration and the current intents are sent again (§6);
* a gap in the event counter means an event was lost: STATUS is asked for, and the
  host's view is reconciled with the answer by signals (a missed OFFHOOK appears, §5);
* a RESET event, or a STATUS showing an accepted port unconfigured (a RESET lost on
  the way), re-runs the handshake and reports ``ControllerReset`` (§6);
* garbage, over-long lines and unknown replies are counted and dropped.

What is lost for good in a gap: the flashes and pulse digits inside it (STATUS
describes state, not history), and ring bursts shorter than the gap.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from appliance.lines.controller_config import Hello, PortConfig, PortStatus, config_to_command
from appliance.lines.controller_protocol import (
    CLIENT_HELLO,
    MAX_LINE,
    NUMBER_MAX,
    PROTOCOL_VERSION,
    REPLY_MEMORY,
    Ack,
    Command,
    EventLine,
    EventName,
    ProtocolError,
    StatusLine,
    Verb,
    decode_line,
    event_to_signal,
    intent_to_command,
    next_number,
    param,
)
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Hook,
    LineIntent,
    LineSignal,
    LoopCurrentDrop,
    OffHook,
    OnHook,
    PolarityReversal,
    PortType,
    Ring,
    RingStart,
    RingStop,
)

log = logging.getLogger(__name__)


class LinkState(Enum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # HELLO and CONFIGs sent, not all answered
    UP = "up"
    DOWN = "down"  # the controller stopped answering; HELLO is retried


class _Input(Enum):
    START = "start"
    HELLO_OK = "hello_ok"
    CONFIGURED = "configured"  # HELLO and every CONFIG answered
    REFUSED = "refused"  # HELLO refused, or a protocol version we do not speak
    GAVE_UP = "gave_up"  # a command unanswered after every resend
    RESET = "reset"
    RETRY = "retry"


# unanswered commands at most: no more than the controller remembers answers for
WINDOW: Final = REPLY_MEMORY

_TRANSITIONS: Final[dict[tuple[LinkState, _Input], LinkState]] = {
    (LinkState.IDLE, _Input.START): LinkState.CONNECTING,
    (LinkState.CONNECTING, _Input.HELLO_OK): LinkState.CONNECTING,
    (LinkState.CONNECTING, _Input.CONFIGURED): LinkState.UP,
    (LinkState.CONNECTING, _Input.REFUSED): LinkState.DOWN,
    (LinkState.CONNECTING, _Input.GAVE_UP): LinkState.DOWN,
    (LinkState.CONNECTING, _Input.RESET): LinkState.CONNECTING,
    (LinkState.UP, _Input.GAVE_UP): LinkState.DOWN,
    (LinkState.UP, _Input.RESET): LinkState.CONNECTING,
    (LinkState.DOWN, _Input.RETRY): LinkState.DOWN,
    (LinkState.DOWN, _Input.GAVE_UP): LinkState.DOWN,
    (LinkState.DOWN, _Input.REFUSED): LinkState.DOWN,
    (LinkState.DOWN, _Input.HELLO_OK): LinkState.CONNECTING,
    (LinkState.DOWN, _Input.RESET): LinkState.CONNECTING,
}


class LinkError(RuntimeError):
    """The host used the link wrongly (a bug here, never the controller's doing)."""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    ack_timeout: float = 0.5  # s; a controller answers within 100 ms (PROTOCOL.md)
    retries: int = 3  # resends before the link is declared down
    retry_interval: float = 2.0  # s between HELLO attempts while down
    keepalive: float | None = 15.0  # s of silence before a STATUS; None: never
    max_line: int = MAX_LINE
    client: str = CLIENT_HELLO


# -- outputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class LinkUp:
    controller: str
    proto: int
    ports: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    reason: str


@dataclass(frozen=True, slots=True)
class Resynced:
    """A STATUS answer was compared with the host's view; ``corrected`` signals were
    synthesised just before this notice to make them agree."""

    reason: str  # "start", "reset", "reconnect", "gap" or "keepalive"
    corrected: int


@dataclass(frozen=True, slots=True)
class CommandFailed:
    command: str  # the command line as sent
    reason: str  # the controller's ERR text


LinkNotice = LinkUp | LinkDown | Resynced | CommandFailed
LinkOutput = LineSignal | LinkNotice | Send


@dataclass(slots=True)
class LinkStats:
    garbage: int = 0  # lines that did not parse, or came from the wrong direction
    overlong: int = 0
    stale_replies: int = 0  # answers to no command outstanding (superseded, or late)
    gaps: int = 0
    resends: int = 0
    resets: int = 0
    unknown_events: int = 0  # events of a newer protocol, or for ports we do not have


@dataclass(slots=True)
class _Pending:
    command: Command
    key: tuple[int, str]
    deadline: float
    tries: int = 1


@dataclass(slots=True)
class _PortView:
    """What the host believes of a port, from the signals it was given."""

    type: PortType
    off_hook: bool = False  # FXS: the phone is off hook
    ringing: bool = False  # FXO: ring voltage present
    reversed: bool = False  # FXO: line polarity reversed
    loop_dropped: bool = False  # FXO: LOOPDROP seen since the line was last seized


@dataclass(slots=True)
class _StatusQuery:
    seq: int
    reason: str
    lines: list[StatusLine] = field(default_factory=list)


class ControllerLink:
    """One controller's session: ``start``, then ``receive``/``send_intent`` as bytes
    and intents come, and ``handle_timer`` at ``next_deadline``."""

    def __init__(self, ports: Sequence[PortConfig], config: LinkConfig | None = None) -> None:
        self.config = config or LinkConfig()
        self.state = LinkState.IDLE
        self.stats = LinkStats()
        self.controller: Hello | None = None
        self._configs = {c.port: c for c in ports}
        if len(self._configs) != len(ports):
            raise LinkError("a port is configured twice")
        self._view = {c.port: _PortView(c.type) for c in ports}
        self._desired: dict[tuple[int, str], LineIntent] = {}
        self._pending: dict[int, _Pending] = {}
        self._waiting: deque[tuple[Callable[[int], Command], tuple[int, str]]] = deque()
        self._status: _StatusQuery | None = None
        self._configured: set[int] = set()  # ports whose CONFIG the controller accepted
        self._hello_ok = False
        self._seq = 0
        self._dials = 0
        self._expected: int | None = None  # the next event counter; None: take any
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line, until its newline
        self._retry_at: float | None = None
        self._last_heard = 0.0

    # -- entry points ------------------------------------------------------------------

    def start(self, now: float) -> bytes:
        """HELLO, CONFIG for every port, the current intents, then STATUS."""
        self._move(_Input.START)
        self._last_heard = now
        return self._bring_up(now, hello=True, reason="start")

    def send_intent(self, intent: LineIntent, now: float) -> bytes:
        """Record an intent and return its command; nothing while down or not started
        (the intent is sent on reconnect, except DialPulses, which is then dropped)."""
        port = intent.port
        if port not in self._configs:
            raise LinkError(f"port {port} is not configured")
        if not isinstance(intent, DialPulses):
            self._desired[(port, type(intent).__name__)] = intent
        view = self._view[port]
        if isinstance(intent, Hook) and intent.off:
            view.loop_dropped = False  # a fresh seizure: loop current is expected again
        if self.state in (LinkState.IDLE, LinkState.DOWN):
            return b""
        return self._intent_bytes(intent, now)

    def receive(self, data: bytes, now: float) -> list[LinkOutput]:
        """Bytes from the controller, in any chunks; complete lines are acted on."""
        if self.state is LinkState.IDLE:
            return []
        out: list[LinkOutput] = []
        self._buffer += data
        limit = self.config.max_line + 1  # a CR before the newline is allowed
        while (end := self._buffer.find(b"\n")) >= 0:
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False  # the tail of an over-long line
            elif len(raw) > limit:
                self.stats.overlong += 1
            else:
                out += self._line(raw, now)
        if len(self._buffer) > limit:
            if not self._discarding:
                self.stats.overlong += 1
            self._buffer.clear()
            self._discarding = True
        return out

    def next_deadline(self) -> float | None:
        times = [p.deadline for p in self._pending.values()]
        if self.state is LinkState.DOWN and self._retry_at is not None:
            times.append(self._retry_at)
        if (keepalive := self._keepalive_at()) is not None:
            times.append(keepalive)
        return min(times, default=None)

    def handle_timer(self, now: float) -> list[LinkOutput]:
        out: list[LinkOutput] = []
        due = sorted((p.deadline, seq) for seq, p in self._pending.items() if p.deadline <= now)
        for _, seq in due:
            pending = self._pending.get(seq)
            if pending is None:
                continue
            if pending.tries > self.config.retries:
                reason = f"no answer to {pending.command} after {pending.tries} tries"
                out += self._down(reason, _Input.GAVE_UP, now)
                break
            pending.tries += 1
            pending.deadline = now + self.config.ack_timeout
            self.stats.resends += 1
            out.append(Send(bytes(pending.command)))
        if self.state is LinkState.DOWN and self._retry_at is not None and self._retry_at <= now:
            self._move(_Input.RETRY)
            self._retry_at = now + self.config.retry_interval
            out.append(Send(self._hello(now)))
        keepalive = self._keepalive_at()
        if keepalive is not None and keepalive <= now:
            out += self._ask_status("keepalive", now)
        return out

    # -- sending -----------------------------------------------------------------------

    def _move(self, event: _Input) -> None:
        key = (self.state, event)
        if key not in _TRANSITIONS:
            raise LinkError(f"{event.name} in {self.state.name}")
        self.state = _TRANSITIONS[key]

    def _issue(self, make: Callable[[int], Command], key: tuple[int, str], now: float) -> bytes:
        for seq in [s for s, p in self._pending.items() if p.key == key]:
            del self._pending[seq]  # superseded: its answer, if it comes, is stale
        self._waiting = deque((m, k) for m, k in self._waiting if k != key)
        if len(self._pending) >= WINDOW:
            # The controller remembers its last WINDOW answers: more unanswered
            # commands and a resent one might be carried out twice (a DIAL dialled
            # twice). This one goes when an answer makes room.
            self._waiting.append((make, key))
            return b""
        self._seq = next_number(self._seq)
        while self._seq in self._pending:
            self._seq = next_number(self._seq)
        command = make(self._seq)
        self._pending[command.seq] = _Pending(command, key, now + self.config.ack_timeout)
        return bytes(command)

    def _intent_bytes(self, intent: LineIntent, now: float) -> bytes:
        kind = type(intent).__name__
        if isinstance(intent, DialPulses):
            self._dials += 1
            kind += f"#{self._dials}"  # dials queue up; none replaces another
        return self._issue(lambda seq: intent_to_command(intent, seq), (intent.port, kind), now)

    def _hello(self, now: float) -> bytes:
        client = self.config.client
        return self._issue(lambda seq: Command(seq, Verb.HELLO, None, (client,)), (0, "HELLO"), now)

    def _bring_up(self, now: float, hello: bool, reason: str) -> bytes:
        self._hello_ok = not hello
        data = self._hello(now) if hello else b""
        for _, config in sorted(self._configs.items()):
            data += self._config_bytes(config, now)
        for intent in list(self._desired.values()):
            data += self._intent_bytes(intent, now)
        self._status = None
        return data + self._status_bytes(reason, now)

    def _config_bytes(self, config: PortConfig, now: float) -> bytes:
        return self._issue(lambda seq: config_to_command(config, seq), (config.port, "CONFIG"), now)

    def _status_bytes(self, reason: str, now: float) -> bytes:
        data = self._issue(lambda seq: Command(seq, Verb.STATUS), (0, "STATUS"), now)
        self._status = _StatusQuery(self._seq, reason)
        return data

    def _ask_status(self, reason: str, now: float) -> list[LinkOutput]:
        if self._status is not None:  # one in flight covers this too
            if self._status.reason == "keepalive":
                self._status.reason = reason
            return []
        return [Send(self._status_bytes(reason, now))]

    def _keepalive_at(self) -> float | None:
        if self.state is not LinkState.UP or self.config.keepalive is None:
            return None
        if self._status is not None:
            return None
        return self._last_heard + self.config.keepalive

    def _down(self, reason: str, why: _Input, now: float) -> list[LinkOutput]:
        was_down = self.state is LinkState.DOWN
        self._move(why)
        self._pending.clear()
        self._waiting.clear()
        self._status = None
        self._hello_ok = False
        self._retry_at = now + self.config.retry_interval
        log.warning("line controller link down: %s", reason)
        return [] if was_down else [LinkDown(reason)]

    # -- receiving ---------------------------------------------------------------------

    def _line(self, raw: bytes, now: float) -> list[LinkOutput]:
        if not raw.strip():
            return []  # blank lines (a CRLF CRLF) carry nothing
        try:
            message = decode_line(raw)
        except ProtocolError as exc:  # the one except where bytes enter
            self.stats.garbage += 1
            log.debug("garbage from the line controller (%s): %r", exc.reason, raw[:80])
            return []
        self._last_heard = now
        match message:
            case EventLine():
                return self._event(message, now)
            case Ack():
                return self._answer(message, now) + self._release(now)
            case StatusLine():
                if self._status is not None and message.seq == self._status.seq:
                    if len(self._status.lines) < len(self._configs) + 8:
                        self._status.lines.append(message)
                else:
                    self.stats.stale_replies += 1
                return []
        self.stats.garbage += 1  # a command: controllers do not send them
        return []

    def _release(self, now: float) -> list[LinkOutput]:
        """Commands that waited for room in the window, now that answers made some."""
        data = b""
        while self._waiting and len(self._pending) < WINDOW and self.state is not LinkState.DOWN:
            make, key = self._waiting.popleft()
            data += self._issue(make, key, now)
        return [Send(data)] if data else []

    def _answer(self, ack: Ack, now: float) -> list[LinkOutput]:
        pending = self._pending.pop(ack.seq, None)
        if pending is None:
            self.stats.stale_replies += 1
            return []
        command = pending.command
        if command.verb == Verb.HELLO:
            return self._hello_answer(ack, now)
        if command.verb == Verb.STATUS:
            return self._status_answer(ack, now)
        out: list[LinkOutput] = []
        if not ack.ok:
            log.warning("line controller refused %s: %s", command, ack.reason)
            out.append(CommandFailed(str(command), ack.reason))
        if command.verb == Verb.CONFIG and command.port is not None:
            if ack.ok:
                self._configured.add(command.port)
            else:
                self._configured.discard(command.port)
            out += self._maybe_up()
        return out

    def _hello_answer(self, ack: Ack, now: float) -> list[LinkOutput]:
        if not ack.ok:
            return self._down(f"HELLO refused: {ack.reason}", _Input.REFUSED, now)
        try:
            hello = Hello.from_ack(ack)
        except ProtocolError as exc:
            return self._down(f"HELLO answer unreadable: {exc.reason}", _Input.REFUSED, now)
        if hello.proto != PROTOCOL_VERSION:
            return self._down(f"controller speaks proto={hello.proto}", _Input.REFUSED, now)
        self.controller = hello
        was_down = self.state is LinkState.DOWN
        self._move(_Input.HELLO_OK)
        self._hello_ok = True
        if was_down:
            return [Send(self._bring_up(now, hello=False, reason="reconnect"))]
        return self._maybe_up()

    def _maybe_up(self) -> list[LinkOutput]:
        if self.state is not LinkState.CONNECTING or not self._hello_ok or self.controller is None:
            return []
        if any(p.command.verb == Verb.CONFIG for p in self._pending.values()):
            return []
        self._move(_Input.CONFIGURED)
        hello = self.controller
        log.info("line controller %s up (%d ports)", hello.controller, hello.ports)
        return [LinkUp(hello.controller, hello.proto, hello.ports)]

    def _event(self, event: EventLine, now: float) -> list[LinkOutput]:
        if event.name == EventName.RESET:
            return self._reset(f"controller reset ({param(event.params, 'cause')})", now)
        out: list[LinkOutput] = []
        if self._expected is not None and event.counter != self._expected:
            self.stats.gaps += 1
            log.info("event gap: expected %d, got %d", self._expected, event.counter)
            out += self._ask_status("gap", now)
        self._expected = next_number(event.counter)
        signal = event_to_signal(event)
        if signal is None or isinstance(signal, ControllerReset) or signal.port not in self._view:
            self.stats.unknown_events += 1
            return out
        self._note(signal)
        out.append(signal)
        return out

    def _reset(self, reason: str, now: float) -> list[LinkOutput]:
        log.warning("line controller: %s", reason)
        self.stats.resets += 1
        self._move(_Input.RESET)
        self._pending.clear()
        self._waiting.clear()
        # What the host wanted before is not re-sent here: the ports hear of the reset
        # and decide again (an FXO call the reset cut is hung up, not re-seized first).
        self._desired.clear()
        self._configured.clear()
        self._expected = next_number(0)  # RESET is event 0
        for port, view in self._view.items():
            self._view[port] = _PortView(view.type)  # a restarted controller is idle
        return [Send(self._bring_up(now, hello=True, reason="reset")), ControllerReset()]

    def _status_answer(self, ack: Ack, now: float) -> list[LinkOutput]:
        query, self._status = self._status, None
        if query is None:
            return []
        if not ack.ok:
            return [CommandFailed(f"{query.seq} STATUS", ack.reason)]
        evt = param(ack.params, "evt")
        if evt is not None and evt.isdecimal() and int(evt) <= NUMBER_MAX:
            self._expected = next_number(int(evt))  # events after the snapshot follow it
        statuses: dict[int, PortStatus] = {}
        for line in query.lines:
            try:
                statuses[line.port] = PortStatus.from_line(line)
            except ProtocolError:
                self.stats.garbage += 1
        if any(not statuses[p].configured for p in self._configured if p in statuses):
            return self._reset("a configured port lost its configuration", now)
        out: list[LinkOutput] = []
        for port, status in sorted(statuses.items()):
            view = self._view.get(port)
            if view is not None and view.type is status.type:
                for signal in _reconcile(port, view, status):
                    self._note(signal)
                    out.append(signal)
        if query.reason != "keepalive" or out:
            out.append(Resynced(query.reason, len(out)))
        return out

    def _note(self, signal: LineSignal) -> None:
        """Keep the host's view in step with a signal it is about to be given."""
        if isinstance(signal, ControllerReset):
            return
        view = self._view[signal.port]
        match signal:
            case OffHook(port):
                view.off_hook = True
                ring = self._desired.get((port, "Ring"))
                if isinstance(ring, Ring) and ring.on:  # the controller's ring-trip
                    self._desired[(port, "Ring")] = Ring(port, False)
            case OnHook():
                view.off_hook = False
            case RingStart():
                view.ringing = True
            case RingStop():
                view.ringing = False
            case PolarityReversal():
                view.reversed = not view.reversed
            case LoopCurrentDrop():
                view.loop_dropped = True


def _reconcile(port: int, view: _PortView, status: PortStatus) -> list[LineSignal]:
    """The signals that would have brought the host's view to the controller's."""
    if view.type is PortType.FXS:
        if status.off_hook != view.off_hook:
            return [OffHook(port) if status.off_hook else OnHook(port)]
        return []
    out: list[LineSignal] = []
    if status.ringing != view.ringing:
        out.append(RingStart(port) if status.ringing else RingStop(port))
    if status.reversed != view.reversed:
        out.append(PolarityReversal(port))
    if status.off_hook and not status.loop and not view.loop_dropped:
        out.append(LoopCurrentDrop(port))
    return out
