"""Controller protocol lines: parse, format, exact error reasons, typed conversions."""

from __future__ import annotations

import pytest

from appliance.lines.controller_config import (
    FxoConfig,
    FxsConfig,
    Hello,
    PortStatus,
    config_from_command,
    config_to_command,
)
from appliance.lines.controller_protocol import (
    Ack,
    Command,
    EventLine,
    ProtocolError,
    StatusLine,
    command_to_intent,
    decode_line,
    event_to_signal,
    intent_to_command,
    next_number,
    parse_line,
    signal_to_event,
)
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

FXS_DEFAULT = (
    "2 CONFIG 1 type=fxs country=US impedance=r600 ring_v=45 ring_hz=20 cadence=100-8000"
    " segments=8 debounce=30 flash=80-800 break=30-80 make=20-80 interdigit=300"
)
FXO_DEFAULT = (
    "3 CONFIG 3 type=fxo country=US impedance=r600 disconnect=loop,polarity loop_drop=350"
    " ring_debounce=50 ring_min=150 dial_break=60 dial_make=40 dial_gap=800"
)

CANONICAL = [
    "1 HELLO yakyak/1",
    "1 OK controller=yakyak-sim proto=1 ports=4",
    "17 RING 1 ON cadence=2000,4000",
    "17 RING 1 ON",
    "17 RING 1 OFF",
    "17 OK",
    "17 ERR badport no port 9",
    "18 STATUS",
    "18 PORT 1 type=fxs cfg=yes hook=off ring=off feed=normal",
    "18 OK evt=412 t=123456",
    "EVT 412 1 OFFHOOK t=123456",
    "EVT 413 1 DIGIT 0 t=123999",
    "EVT 0 0 RESET t=0 cause=watchdog",
    "EVT 7 3 BATTERY low t=5 volts=42",  # a newer controller's event still parses
    "9 REBOOT now",  # a newer host's command still parses, for an ERR unknown
    "20 FEED 2 REVERSED",
    "21 HOOK 3 OFFHOOK",
    "22 DIAL 3 5551234",
    FXS_DEFAULT,
    FXO_DEFAULT,
]


@pytest.mark.parametrize("line", CANONICAL)
def test_canonical_lines_round_trip(line: str) -> None:
    message = parse_line(line)
    assert str(message) == line
    assert bytes(message) == line.encode() + b"\n"
    assert decode_line(line.encode()) == message


def test_fields_of_the_issue_examples() -> None:
    assert parse_line("17 RING 1 ON cadence=2000,4000") == Command(
        17, "RING", 1, ("ON",), (("cadence", "2000,4000"),)
    )
    assert parse_line("17 OK") == Ack(17, True)
    assert parse_line("17 ERR busy port is dialling") == Ack(
        17, False, reason="busy port is dialling"
    )
    assert parse_line("EVT 412 1 OFFHOOK t=123456") == EventLine(412, 1, "OFFHOOK", 123456)
    assert parse_line("18 PORT 2 hook=on") == StatusLine(18, 2, (("hook", "on"),))
    assert parse_line("9 REBOOT now") == Command(9, "REBOOT", None, ("now",))


def test_lenient_reading_of_spacing_crlf_and_t_placement() -> None:
    assert parse_line("17  OK\r") == Ack(17, True)
    assert decode_line(b"17 OK\r") == Ack(17, True)
    event = parse_line("EVT 5 1 ONHOOK x=1 t=99")
    assert event == EventLine(5, 1, "ONHOOK", 99, (), (("x", "1"),))
    assert str(event) == "EVT 5 1 ONHOOK t=99 x=1"  # canonical: t first


@pytest.mark.parametrize(
    ("line", "reason", "seq"),
    [
        ("", "empty line", None),
        ("   ", "empty line", None),
        ("x OK", "sequence number 'x' is not a decimal number", None),
        ("0 OK", "sequence number 0 is outside 1-65535", None),
        ("65536 OK", "sequence number 65536 is outside 1-65535", None),
        ("5", "nothing after the sequence number", 5),
        ("5 ok", "bad verb 'ok'", 5),
        ("5 OK word", "OK takes only key=value parameters", 5),
        ("5 OK a=1 a=2", "parameter a given twice", 5),
        ("5 OK A=1", "bad parameter name 'A'", 5),
        ("5 OK a=", "bad value for a", 5),
        ("5 ERR", "ERR without a reason", 5),
        ("5 PORT x=1", "PORT takes a port number then key=value", 5),
        ("5 PORT 0 x=1", "port 0 is outside 1-64", 5),
        ("5 RING", "RING needs a port", 5),
        ("5 RING 1", "RING takes 1 word(s) after its port", 5),
        ("5 RING 1 MAYBE", "RING takes ON or OFF", 5),
        ("5 RING 1 OFF cadence=1,2", "RING OFF takes no cadence", 5),
        ("5 RING 1 ON volume=3", "RING ON takes no volume", 5),
        ("5 RING 1 ON cadence=100", "cadence needs 2-16 on/off pairs above 0 ms", 5),
        ("5 RING 1 ON cadence=100,0", "cadence needs 2-16 on/off pairs above 0 ms", 5),
        ("5 RING 1 ON cadence=1,,2", "cadence is comma-separated milliseconds", 5),
        ("5 RING 1 ON x=1 extra", "word 'extra' after parameters", 5),
        ("5 FEED 1 SIDEWAYS", "FEED takes NORMAL, REVERSED or OPEN", 5),
        ("5 HOOK 3 UP", "HOOK takes OFFHOOK or ONHOOK", 5),
        ("5 DIAL 3 12a", "DIAL takes 1-32 digits 0-9", 5),
        ("5 DIAL 3 " + "1" * 33, "DIAL takes 1-32 digits 0-9", 5),
        ("5 STATUS x=1", "STATUS takes no parameters", 5),
        ("5 HELLO", "HELLO takes 1 word(s) after its port", 5),
        ("5 CONFIG 99 type=fxs", "port 99 is outside 1-64", 5),
        ("EVT 1 1", "EVT needs a counter, a port and a name", None),
        ("EVT 1 1 OFFHOOK", "event without t=", None),
        ("EVT 1 1 offhook t=1", "bad event name 'offhook'", None),
        ("EVT 1 65 OFFHOOK t=1", "port 65 is outside 0-64", None),
        ("EVT 65536 1 OFFHOOK t=1", "event counter 65536 is outside 0-65535", None),
        ("EVT 1 1 OFFHOOK t=4294967296", "clock 4294967296 is outside 0-4294967295", None),
        ("EVT 1 1 DIGIT t=5", "DIGIT takes one digit 0-9", None),
        ("EVT 1 1 DIGIT 12 t=5", "DIGIT takes one digit 0-9", None),
        ("EVT 1 1 OFFHOOK now t=5", "OFFHOOK takes no words", None),
        ("5 OK\t", "line holds a character that is not printable ASCII", None),
        ("5 OK " + "a=1 " * 64, "line of 261 characters exceeds 255", None),
    ],
)
def test_bad_lines_raise_with_reason(line: str, reason: str, seq: int | None) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_line(line)
    assert info.value.reason == reason
    assert info.value.seq == seq
    assert isinstance(info.value, ValueError)


def test_bytes_that_are_not_ascii_are_refused() -> None:
    with pytest.raises(ProtocolError, match="not ASCII"):
        decode_line(b"5 OK\xff")
    with pytest.raises(ProtocolError, match="exceeds 255"):
        decode_line(b"5 OK" + b" " * 300)


def test_values_refuse_what_would_not_parse() -> None:
    with pytest.raises(ProtocolError, match="bad verb 'OK'"):
        Command(1, "OK")
    with pytest.raises(ProtocolError, match="an ERR carries a reason of single-spaced words"):
        Ack(1, False, reason="two  spaces")
    with pytest.raises(ProtocolError, match="an OK carries no reason"):
        Ack(1, True, reason="why")
    with pytest.raises(ProtocolError, match="t is a field"):
        EventLine(1, 1, "OFFHOOK", 5, (), (("t", "6"),))


@pytest.mark.parametrize(
    ("intent", "line"),
    [
        (Ring(1, True, (2000, 4000)), "7 RING 1 ON cadence=2000,4000"),
        (Ring(1, True), "7 RING 1 ON"),
        (Ring(1, False), "7 RING 1 OFF"),
        (Feed(2, FeedMode.OPEN), "7 FEED 2 OPEN"),
        (Feed(2, FeedMode.NORMAL), "7 FEED 2 NORMAL"),
        (Hook(3, True), "7 HOOK 3 OFFHOOK"),
        (Hook(3, False), "7 HOOK 3 ONHOOK"),
        (DialPulses(3, "0123"), "7 DIAL 3 0123"),
    ],
)
def test_intents_become_commands_and_back(intent: LineIntent, line: str) -> None:
    command = intent_to_command(intent, 7)
    assert str(command) == line
    parsed = parse_line(line)
    assert isinstance(parsed, Command)
    assert command_to_intent(parsed) == intent


def test_commands_that_carry_no_intent() -> None:
    for line in ("1 HELLO yakyak/1", "2 STATUS", FXS_DEFAULT, "9 REBOOT now"):
        parsed = parse_line(line)
        assert isinstance(parsed, Command)
        assert command_to_intent(parsed) is None


@pytest.mark.parametrize(
    ("signal", "line"),
    [
        (OffHook(1), "EVT 9 1 OFFHOOK t=50"),
        (OnHook(1), "EVT 9 1 ONHOOK t=50"),
        (Flash(1), "EVT 9 1 FLASH t=50"),
        (PulseDigit(1, "0"), "EVT 9 1 DIGIT 0 t=50"),
        (RingStart(3), "EVT 9 3 RINGSTART t=50"),
        (RingStop(3), "EVT 9 3 RINGSTOP t=50"),
        (PolarityReversal(3), "EVT 9 3 POLARITY t=50"),
        (LoopCurrentDrop(3), "EVT 9 3 LOOPDROP t=50"),
        (ControllerReset(), "EVT 9 0 RESET t=50"),
    ],
)
def test_signals_become_events_and_back(signal: LineSignal, line: str) -> None:
    event = signal_to_event(signal, 9, 50)
    assert str(event) == line
    parsed = parse_line(line)
    assert isinstance(parsed, EventLine)
    assert event_to_signal(parsed) == signal


def test_an_unknown_event_is_no_signal() -> None:
    parsed = parse_line("EVT 7 3 BATTERY low t=5")
    assert isinstance(parsed, EventLine)
    assert event_to_signal(parsed) is None


def test_counters_wrap_past_zero() -> None:
    assert next_number(0) == 1
    assert next_number(41) == 42
    assert next_number(65535) == 1


def test_default_configs_format_exactly() -> None:
    assert str(config_to_command(FxsConfig(1), 2)) == FXS_DEFAULT
    assert str(config_to_command(FxoConfig(3), 3)) == FXO_DEFAULT


@pytest.mark.parametrize(
    "config",
    [
        FxsConfig(1),
        FxsConfig(4, "GB", "gb", 50, 25, 200, 3000, 6, 10, 30, 70, 20, 60, 250, 60, 150),
        FxoConfig(3),
        FxoConfig(5, "DE", "de", (), 500, 40, 100, 66, 33, 900),
        FxoConfig(6, disconnect=("polarity",)),
    ],
)
def test_configs_round_trip(config: FxsConfig | FxoConfig) -> None:
    line = str(config_to_command(config, 12))
    parsed = parse_line(line)
    assert isinstance(parsed, Command)
    assert config_from_command(parsed) == config


def test_config_keys_left_out_take_defaults() -> None:
    parsed = parse_line("4 CONFIG 2 type=fxs flash=100-900")
    assert isinstance(parsed, Command)
    assert config_from_command(parsed) == FxsConfig(2, flash_min_ms=100, flash_max_ms=900)
    assert FxsConfig(2).windows.flash_max_ms == 800


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("4 CONFIG 2 ring_v=45", "CONFIG needs type=fxs or type=fxo"),
        ("4 CONFIG 2 type=fxs disconnect=loop", "CONFIG fxs has no setting disconnect"),
        ("4 CONFIG 2 type=fxo ring_v=45", "CONFIG fxo has no setting ring_v"),
        ("4 CONFIG 2 type=fxs flash=800", "flash is <min>-<max> milliseconds"),
        ("4 CONFIG 2 type=fxs flash=900-800", "flash window needs 0 < min <= max <= 65535"),
        ("4 CONFIG 2 type=fxs ring_v=x", "ring_v 'x' is not a decimal number"),
        ("4 CONFIG 2 type=fxs ring_v=200", "ring voltage 20-100 V rms and frequency 15-70 Hz"),
        ("4 CONFIG 2 type=fxs country=usa", "country 'usa' is not an ISO 3166 alpha-2 code"),
        ("4 CONFIG 2 type=fxo disconnect=tone", "disconnect modes are loop and/or polarity"),
        ("4 CONFIG 2 type=fxo dial_gap=0", "FXO times must be 1-65535 ms"),
    ],
)
def test_bad_configs_are_refused(line: str, reason: str) -> None:
    parsed = parse_line(line)
    assert isinstance(parsed, Command)
    with pytest.raises(ProtocolError) as info:
        config_from_command(parsed)
    assert info.value.reason == reason
    assert info.value.seq == 4


def test_cadence_limits() -> None:
    config = FxsConfig(1, cadence_min_ms=200, cadence_max_ms=3000, cadence_max_segments=4)
    assert config.cadence_allowed((2000, 3000))
    assert config.cadence_allowed((400, 200, 400, 2000))
    assert not config.cadence_allowed((400, 200, 400, 200, 400, 2000))  # six segments
    assert not config.cadence_allowed((2000, 4000))  # 4 s off is over the limit
    assert not config.cadence_allowed((2000,))
    assert not config.cadence_allowed(())


def test_hello_answer() -> None:
    ack = Hello("board-a", 1, 4).to_ack(1)
    assert str(ack) == "1 OK controller=board-a proto=1 ports=4"
    assert Hello.from_ack(ack) == Hello("board-a", 1, 4)
    with pytest.raises(ProtocolError, match="HELLO answer lacks ports="):
        Hello.from_ack(Ack(1, True, (("controller", "x"), ("proto", "1"))))


def test_port_status_lines() -> None:
    fxs = PortStatus(1, PortType.FXS, True, off_hook=True, feed=FeedMode.REVERSED)
    assert str(fxs.to_line(18)) == "18 PORT 1 type=fxs cfg=yes hook=off ring=off feed=reversed"
    fxo = PortStatus(3, PortType.FXO, False, ringing=True, reversed=True, loop=True)
    assert str(fxo.to_line(18)) == (
        "18 PORT 3 type=fxo cfg=no hook=on ring=on polarity=reversed loop=on"
    )
    for status in (fxs, fxo):
        assert PortStatus.from_line(status.to_line(18)) == status


def test_bad_port_status_values() -> None:
    with pytest.raises(ProtocolError, match=r"PORT hook=maybe is not one of \['off', 'on'\]"):
        PortStatus.from_line(StatusLine(18, 1, (("type", "fxs"), ("hook", "maybe"))))
    with pytest.raises(ProtocolError, match="PORT 1: bad type or feed"):
        PortStatus.from_line(StatusLine(18, 1, (("type", "dect"),)))
