"""Controller protocol properties: any input parses or raises ProtocolError, any bytes in
any chunks leave both ends standing, and every value formats to a line that parses back."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from appliance.hw.sim.controller import SimController
from appliance.lines.controller_config import (
    FxoConfig,
    FxsConfig,
    config_from_command,
    config_to_command,
)
from appliance.lines.controller_link import (
    CommandFailed,
    ControllerLink,
    LinkConfig,
    LinkDown,
    LinkUp,
    Resynced,
    Send,
)
from appliance.lines.controller_protocol import (
    MAX_PORT,
    Ack,
    Command,
    EventLine,
    ProtocolError,
    StatusLine,
    Verb,
    command_to_intent,
    decode_line,
    event_to_signal,
    intent_to_command,
    parse_line,
    signal_to_event,
)
from appliance.lines.pulse import HookDecoder, PulseWindows
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Feed,
    FeedMode,
    Flash,
    Hook,
    LineIntent,
    LineSignal,
    LoopCurrentDrop,
    OffHook,
    OnHook,
    PolarityReversal,
    PortType,
    PulseDigit,
    Ring,
    RingStart,
    RingStop,
)

SIGNAL_TYPES = (
    OffHook,
    OnHook,
    Flash,
    PulseDigit,
    RingStart,
    RingStop,
    PolarityReversal,
    LoopCurrentDrop,
    ControllerReset,
)
CONFIGS = [FxsConfig(1), FxoConfig(2)]

seqs = st.integers(1, 65535)
ports = st.integers(1, MAX_PORT)
keys = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
params = st.lists(st.tuples(keys, values), max_size=4, unique_by=lambda kv: kv[0]).map(tuple)
words = values.filter(lambda w: "=" not in w)
names = st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True)
digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=32)
cadences = st.lists(st.integers(1, 65535), min_size=1, max_size=8).map(
    lambda v: tuple(v + v[:1] if len(v) % 2 else v)
)

intents: st.SearchStrategy[LineIntent] = st.one_of(
    st.builds(Ring, ports, st.just(True), st.one_of(st.just(()), cadences)),
    st.builds(Ring, ports, st.just(False)),
    st.builds(Feed, ports, st.sampled_from(FeedMode)),
    st.builds(Hook, ports, st.booleans()),
    st.builds(DialPulses, ports, digits),
)


PORT_SIGNALS: list[Callable[[int], LineSignal]] = [
    OffHook,
    OnHook,
    Flash,
    RingStart,
    RingStop,
    PolarityReversal,
    LoopCurrentDrop,
]
signals: st.SearchStrategy[LineSignal] = st.one_of(
    st.just(ControllerReset()),
    st.builds(PulseDigit, ports, st.sampled_from("0123456789")),
    st.builds(lambda make, port: make(port), st.sampled_from(PORT_SIGNALS), ports),
)


fxs_configs = st.builds(
    FxsConfig,
    ports,
    st.sampled_from(["US", "GB", "DE"]),
    st.sampled_from(["r600", "gb", "ctr21"]),
    st.integers(20, 100),
    st.integers(15, 70),
    st.integers(1, 200),
    st.integers(200, 10000),
    st.integers(2, 16),
)
fxo_configs = st.builds(
    FxoConfig,
    ports,
    disconnect=st.sampled_from([(), ("loop",), ("polarity",), ("polarity", "loop")]),
    loop_drop_ms=st.integers(1, 65535),
    dial_gap_ms=st.integers(1, 65535),
)


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_protocol_error(text: str) -> None:
    try:
        message = parse_line(text)
    except ProtocolError:
        return
    assert parse_line(str(message)) == message  # what parsed formats canonically


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_protocol_error(raw: bytes) -> None:
    try:
        decode_line(raw)
    except ProtocolError:
        pass


@given(intents, seqs)
def test_intent_commands_round_trip(intent: LineIntent, seq: int) -> None:
    command = intent_to_command(intent, seq)
    parsed = parse_line(str(command))
    assert parsed == command
    assert isinstance(parsed, Command)
    assert command_to_intent(parsed) == intent


@given(signals, st.integers(0, 65535), st.integers(0, 2**32 - 1))
def test_signal_events_round_trip(signal: LineSignal, counter: int, t: int) -> None:
    event = signal_to_event(signal, counter, t)
    parsed = decode_line(bytes(event)[:-1])
    assert parsed == event
    assert isinstance(parsed, EventLine)
    assert event_to_signal(parsed) == signal


@given(seqs, names.filter(lambda n: n not in ("OK", "ERR", "PORT")), st.lists(words, max_size=3))
def test_unknown_commands_round_trip(seq: int, verb: str, args: list[str]) -> None:
    if verb in Verb.__members__:
        return  # known verbs have their own shapes, covered above
    command = Command(seq, verb, None, tuple(args))
    assert parse_line(str(command)) == command


@given(seqs, params)
def test_ok_answers_round_trip(seq: int, extra: tuple[tuple[str, str], ...]) -> None:
    ack = Ack(seq, True, extra)
    assert parse_line(str(ack)) == ack


@given(seqs, st.lists(values, min_size=1, max_size=5))
def test_err_answers_round_trip(seq: int, reason: list[str]) -> None:
    ack = Ack(seq, False, reason=" ".join(reason))
    assert parse_line(str(ack)) == ack


@given(seqs, ports, params)
def test_status_lines_round_trip(seq: int, port: int, extra: tuple[tuple[str, str], ...]) -> None:
    line = StatusLine(seq, port, extra)
    assert parse_line(str(line)) == line


@given(st.one_of(fxs_configs, fxo_configs), seqs)
def test_configs_round_trip(config: FxsConfig | FxoConfig, seq: int) -> None:
    parsed = parse_line(str(config_to_command(config, seq)))
    assert isinstance(parsed, Command)
    assert config_from_command(parsed) == config


NOTICES = (LinkUp, LinkDown, Resynced, CommandFailed, Send, *SIGNAL_TYPES)
CONTROLLER_LINES = [
    b"1 OK controller=x proto=1 ports=2\n",
    b"2 OK\n",
    b"3 ERR nope\n",
    b"4 PORT 1 type=fxs cfg=yes hook=off\n",
    b"4 PORT 2 type=fxo cfg=no\n",
    b"4 OK evt=3 t=1\n",
    b"EVT 1 1 OFFHOOK t=1\n",
    b"EVT 9 2 RINGSTART t=2\n",
    b"EVT 0 0 RESET t=0\n",
    b"EVT 3 1 DIGIT 7 t=3\n",
]


@given(
    st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(CONTROLLER_LINES)), max_size=30),
    st.lists(st.integers(1, 64), min_size=1, max_size=8),
)
def test_any_bytes_in_any_chunks_never_break_the_link(pieces: list[bytes], cuts: list[int]) -> None:
    link = ControllerLink(CONFIGS, LinkConfig(keepalive=1.0))
    link.start(0.0)
    data = b"".join(pieces)
    now, at, index = 0.0, 0, 0
    while at < len(data):
        size = cuts[index % len(cuts)]
        now += 0.3
        for output in link.receive(data[at : at + size], now) + link.handle_timer(now):
            assert isinstance(output, NOTICES)
        at, index = at + size, index + 1
    assert link.next_deadline() is None or link.next_deadline() >= now


@given(st.lists(st.sampled_from(CONTROLLER_LINES), max_size=20), st.integers(1, 30))
def test_chunking_does_not_change_what_comes_out(lines: list[bytes], size: int) -> None:
    data = b"".join(lines)
    whole = ControllerLink(CONFIGS)
    whole.start(0.0)
    chunked = ControllerLink(CONFIGS)
    chunked.start(0.0)
    expected = whole.receive(data, 1.0)
    got = [o for i in range(0, len(data), size) for o in chunked.receive(data[i : i + size], 1.0)]
    assert got == expected


@given(st.lists(st.binary(max_size=60), max_size=20))
def test_any_bytes_never_break_the_sim_controller(pieces: list[bytes]) -> None:
    sim = SimController([PortType.FXS, PortType.FXO])
    for step, piece in enumerate(pieces):
        sim.receive(piece, step * 0.1)
        sim.receive(b"1 CONFIG 1 type=fxs\n2 RING 1 ON\n3 STATUS\n", step * 0.1)


@given(st.lists(st.tuples(st.integers(0, 900), st.booleans()), max_size=60))
def test_any_hook_transitions_decode_to_sane_signals(steps: list[tuple[int, bool]]) -> None:
    decoder = HookDecoder(1, PulseWindows())
    at = 0
    out: list[LineSignal] = []
    for gap, off in steps:
        at += gap
        out += decoder.hook(off, at)
    out += decoder.handle_timer(at + 10_000)
    assert decoder.next_deadline() is None
    for signal in out:
        assert isinstance(signal, OffHook | OnHook | Flash | PulseDigit)
        if isinstance(signal, PulseDigit):
            assert signal.digit in "0123456789"
    hooks = [s for s in out if isinstance(s, OffHook | OnHook)]
    assert all(type(a) is not type(b) for a, b in zip(hooks, hooks[1:], strict=False))
