"""The host's controller session against scripted controller lines; time is passed in."""

from __future__ import annotations

import pytest

from appliance.lines.controller_config import FxoConfig, FxsConfig, config_to_command
from appliance.lines.controller_link import (
    CommandFailed,
    ControllerLink,
    LinkConfig,
    LinkDown,
    LinkError,
    LinkOutput,
    LinkState,
    LinkUp,
    Resynced,
    Send,
)
from appliance.lines.controller_protocol import REPLY_MEMORY
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Feed,
    FeedMode,
    Flash,
    Hook,
    LoopCurrentDrop,
    OffHook,
    OnHook,
    PolarityReversal,
    PulseDigit,
    Ring,
    RingStart,
)

FXS = FxsConfig(1)
FXO = FxoConfig(2)
CONFIG = LinkConfig(ack_timeout=0.5, retries=3, retry_interval=2.0, keepalive=15.0)
HELLO_OK = "controller=bench proto=1 ports=2"
IDLE_FXS = "hook=on ring=off feed=normal"
IDLE_FXO = "hook=on ring=off polarity=normal loop=off"


def status_reply(
    seq: int, fxs: str = IDLE_FXS, fxo: str = IDLE_FXO, evt: int = 0, cfg: str = "yes"
) -> str:
    return (
        f"{seq} PORT 1 type=fxs cfg={cfg} {fxs}\n"
        f"{seq} PORT 2 type=fxo cfg=yes {fxo}\n"
        f"{seq} OK evt={evt} t=100\n"
    )


def feed(link: ControllerLink, text: str | bytes, now: float = 1.0) -> list[LinkOutput]:
    return link.receive(text.encode() if isinstance(text, str) else text, now)


def sent(outputs: list[LinkOutput]) -> list[str]:
    return [line for o in outputs if isinstance(o, Send) for line in o.data.decode().splitlines()]


def others(outputs: list[LinkOutput]) -> list[LinkOutput]:
    return [o for o in outputs if not isinstance(o, Send)]


def up(link: ControllerLink | None = None) -> ControllerLink:
    """A link through its handshake (seq 1-4 used; the next command is 5)."""
    link = link or ControllerLink([FXS, FXO], CONFIG)
    link.start(0.0)
    out = feed(link, f"1 OK {HELLO_OK}\n2 OK\n3 OK\n" + status_reply(4), 0.1)
    assert out == [LinkUp("bench", 1, 2), Resynced("start", 0)]
    return link


def test_start_sends_hello_configs_intents_then_status() -> None:
    link = ControllerLink([FXS, FXO], CONFIG)
    assert link.send_intent(Feed(1, FeedMode.REVERSED), 0.0) == b""  # kept for start
    assert link.start(0.0).decode().splitlines() == [
        "1 HELLO yakyak/1",
        str(config_to_command(FXS, 2)),
        str(config_to_command(FXO, 3)),
        "4 FEED 1 REVERSED",
        "5 STATUS",
    ]
    assert link.state is LinkState.CONNECTING


def test_handshake_brings_the_link_up() -> None:
    link = up()
    assert link.state is LinkState.UP
    assert link.controller is not None and link.controller.controller == "bench"
    assert link.next_deadline() == pytest.approx(15.1)  # only the keepalive is left


def test_link_is_up_once_every_config_is_answered() -> None:
    link = ControllerLink([FXS, FXO], CONFIG)
    link.start(0.0)
    assert feed(link, f"1 OK {HELLO_OK}\n2 OK\n") == []
    assert link.state is LinkState.CONNECTING
    assert feed(link, "3 ERR badtype port 2 is fxs\n") == [
        CommandFailed(str(config_to_command(FXO, 3)), "badtype port 2 is fxs"),
        LinkUp("bench", 1, 2),
    ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            "1 ERR version this controller speaks proto=2",
            "HELLO refused: version this controller speaks proto=2",
        ),
        ("1 OK controller=x proto=2 ports=2", "controller speaks proto=2"),
        ("1 OK controller=x ports=2", "HELLO answer unreadable: HELLO answer lacks proto="),
    ],
)
def test_a_hello_we_cannot_use_takes_the_link_down(answer: str, reason: str) -> None:
    link = ControllerLink([FXS, FXO], CONFIG)
    link.start(0.0)
    assert feed(link, answer + "\n", 0.2) == [LinkDown(reason)]
    assert link.state is LinkState.DOWN
    assert link.next_deadline() == pytest.approx(2.2)  # the next HELLO


def walk(link: ControllerLink, until: float) -> list[tuple[float, list[LinkOutput]]]:
    fired: list[tuple[float, list[LinkOutput]]] = []
    while (deadline := link.next_deadline()) is not None and deadline <= until:
        fired.append((deadline, link.handle_timer(deadline)))
    return fired


def test_unanswered_commands_are_resent_then_the_link_goes_down() -> None:
    link = ControllerLink([FXS, FXO], CONFIG)
    link.start(0.0)
    fired = walk(link, 9.0)
    hello_times = [t for t, out in fired for line in sent(out) if "HELLO" in line]
    assert hello_times == pytest.approx([0.5, 1.0, 1.5, 4.0, 4.5, 5.0, 5.5, 8.0, 8.5, 9.0])
    assert [(t, others(out)) for t, out in fired if others(out)] == [
        (2.0, [LinkDown("no answer to 1 HELLO yakyak/1 after 4 tries")])  # said once
    ]
    assert sent(fired[0][1]) == ["1 HELLO yakyak/1", *sent([Send(link_bytes())])[1:4]]
    assert [line for _, out in fired for line in sent(out)][-1] == "6 HELLO yakyak/1"
    assert link.stats.resends == 4 * 3 + 3 + 2  # the first HELLO probe, half the second


def link_bytes() -> bytes:
    return ControllerLink([FXS, FXO], CONFIG).start(0.0)


def test_a_hello_answered_while_down_sends_everything_again() -> None:
    link = up()
    link.send_intent(Feed(1, FeedMode.OPEN), 1.0)  # 5, never answered
    fired = walk(link, 5.0)
    assert [(t, o) for t, out in fired for o in others(out)] == [
        (3.0, LinkDown("no answer to 5 FEED 1 OPEN after 4 tries"))
    ]
    assert sent(fired[-1][1]) == ["6 HELLO yakyak/1"]
    assert link.send_intent(Ring(1, True), 3.5) == b""  # kept for the reconnect
    out = feed(link, f"6 OK {HELLO_OK}\n", 5.1)
    assert sent(out) == [
        str(config_to_command(FXS, 7)),
        str(config_to_command(FXO, 8)),
        "9 FEED 1 OPEN",
        "10 RING 1 ON",
        "11 STATUS",
    ]
    assert link.state is LinkState.CONNECTING
    assert feed(link, "7 OK\n8 OK\n9 OK\n10 OK\n") == [LinkUp("bench", 1, 2)]
    assert feed(link, status_reply(11)) == [Resynced("reconnect", 0)]


def test_a_new_intent_supersedes_an_unanswered_one() -> None:
    link = up()
    assert link.send_intent(Ring(1, True, (1000, 2000)), 1.0) == b"5 RING 1 ON cadence=1000,2000\n"
    assert link.send_intent(Feed(1, FeedMode.REVERSED), 1.0) == b"6 FEED 1 REVERSED\n"
    assert link.send_intent(Ring(1, False), 1.1) == b"7 RING 1 OFF\n"
    assert feed(link, "5 OK\n", 1.2) == []  # late: nothing waits for it any more
    assert link.stats.stale_replies == 1
    assert sent(link.handle_timer(1.6)) == ["6 FEED 1 REVERSED", "7 RING 1 OFF"]  # same seqs


def test_dials_queue_rather_than_supersede() -> None:
    link = up()
    link.send_intent(Hook(2, True), 1.0)
    link.send_intent(DialPulses(2, "12"), 1.0)
    link.send_intent(DialPulses(2, "34"), 1.0)
    assert sent(link.handle_timer(1.5)) == ["5 HOOK 2 OFFHOOK", "6 DIAL 2 12", "7 DIAL 2 34"]


def test_no_more_commands_unanswered_than_the_controller_remembers() -> None:
    """Past REPLY_MEMORY unanswered commands a resent DIAL could be dialled twice:
    the rest wait, and each answer lets the next one go."""
    link = up()
    lines = []
    for n in range(REPLY_MEMORY + 3):
        lines.append(link.send_intent(DialPulses(2, str(n)), 1.0).decode().strip())
    out = [line for line in lines if line]
    assert len(out) == REPLY_MEMORY and out[0] == "5 DIAL 2 0"
    assert sent(feed(link, "5 OK\n", 1.1)) == [f"{5 + REPLY_MEMORY} DIAL 2 {REPLY_MEMORY}"]
    assert sent(link.handle_timer(1.6)) == [f"{6 + n} DIAL 2 {1 + n}" for n in range(REPLY_MEMORY)]


def test_a_refused_intent_is_reported() -> None:
    link = up()
    link.send_intent(Ring(1, True), 1.0)
    assert feed(link, "5 ERR offhook the phone is off hook\n") == [
        CommandFailed("5 RING 1 ON", "offhook the phone is off hook")
    ]
    assert link.next_deadline() == pytest.approx(16.0)  # nothing left to resend


EVENTS = (
    b"EVT 1 1 OFFHOOK t=5\nEVT 2 1 DIGIT 4 t=900\nEVT 3 1 FLASH t=1400\n"
    b"EVT 4 2 RINGSTART t=2000\nEVT 5 1 ONHOOK t=3000\n"
)


@pytest.mark.parametrize("size", [1, 2, 7, 19, len(EVENTS)])
def test_events_come_out_in_order_whatever_the_chunks(size: int) -> None:
    link = up()
    out: list[LinkOutput] = []
    for start in range(0, len(EVENTS), size):
        out += feed(link, EVENTS[start : start + size])
    assert out == [OffHook(1), PulseDigit(1, "4"), Flash(1), RingStart(2), OnHook(1)]
    assert link.stats.gaps == 0


def test_a_gap_asks_for_status_and_the_answer_restores_the_state() -> None:
    link = up()
    out = feed(link, "EVT 2 2 RINGSTART t=50\n")  # event 1 was lost
    assert sent(out) == ["5 STATUS"]
    assert others(out) == [RingStart(2)]
    assert feed(link, "EVT 4 2 POLARITY t=60\n") == [PolarityReversal(2)]  # one STATUS will do
    assert link.stats.gaps == 2
    reply = status_reply(5, fxs="hook=off ring=off feed=normal", evt=4, fxo=IDLE_FXO)
    reply = reply.replace("ring=off polarity=normal", "ring=on polarity=reversed")
    assert feed(link, reply) == [OffHook(1), Resynced("gap", 1)]  # the lost OFFHOOK
    assert feed(link, "EVT 5 1 ONHOOK t=90\n") == [OnHook(1)]  # counting goes on from evt=4
    assert link.stats.gaps == 2


def test_fxo_state_is_reconciled_too() -> None:
    link = up()
    link.send_intent(Hook(2, True), 1.0)
    feed(link, "5 OK\nEVT 3 2 POLARITY t=5\n")
    fxo = "hook=off ring=on polarity=normal loop=off"
    # the POLARITY we saw was undone by one we lost; a burst began; loop current went
    assert feed(link, status_reply(6, fxo=fxo, evt=3)) == [
        RingStart(2),
        PolarityReversal(2),
        LoopCurrentDrop(2),
        Resynced("gap", 3),
    ]


def test_a_reset_reconfigures_reapplies_and_reports() -> None:
    link = up()
    link.send_intent(Feed(1, FeedMode.REVERSED), 1.0)
    assert feed(link, "5 OK\nEVT 1 1 OFFHOOK t=10\n") == [OffHook(1)]
    out = feed(link, "EVT 0 0 RESET t=0 cause=watchdog\n", 2.0)
    assert others(out) == [ControllerReset()]
    assert sent(out) == [  # the ports decide what they want again (not re-sent here)
        "6 HELLO yakyak/1",
        str(config_to_command(FXS, 7)),
        str(config_to_command(FXO, 8)),
        "9 STATUS",
    ]
    assert link.state is LinkState.CONNECTING
    assert feed(link, f"6 OK {HELLO_OK}\n7 OK\n8 OK\n") == [LinkUp("bench", 1, 2)]
    # the reset made every port idle; the phone is still off hook: it is reported again
    reply = status_reply(9, fxs="hook=off ring=off feed=normal", evt=0)
    assert feed(link, reply) == [OffHook(1), Resynced("reset", 1)]
    assert feed(link, "EVT 1 1 ONHOOK t=500\n") == [OnHook(1)]  # counting restarted at 1
    assert link.stats.resets == 1 and link.stats.gaps == 0


def test_a_status_showing_a_lost_configuration_is_a_reset() -> None:
    link = up()
    out = feed(link, "EVT 7 1 OFFHOOK t=10\n")  # gap: the RESET itself was lost
    assert sent(out) == ["5 STATUS"]
    out = feed(link, status_reply(5, cfg="no", evt=7))
    assert others(out) == [ControllerReset()]
    assert sent(out)[0] == "6 HELLO yakyak/1"
    assert link.stats.resets == 1


def test_ring_trip_turns_the_ring_intent_off() -> None:
    link = up()
    link.send_intent(Ring(1, True), 1.0)
    feed(link, "5 OK\nEVT 1 1 OFFHOOK t=10\n")
    out = feed(link, "EVT 0 0 RESET t=0\n", 2.0)
    # nothing rings again by itself: the ports hear of the reset and decide
    assert not [line for line in sent(out) if "RING" in line]
    assert link.send_intent(Ring(1, False), 2.1) == b"10 RING 1 OFF\n"


def test_garbage_overlong_and_stale_lines_are_counted_and_survived() -> None:
    link = up()
    junk = (
        b"\x00\xffnoise\n"
        b"hello world\n"
        b"1 HELLO yakyak/1\n"  # a command: controllers send none
        b"9 PORT 1 type=fxs\n"  # a STATUS line nobody asked for
        b"9 OK\n" + b"x" * 300 + b"\n" + b"EVT 1 1 OFFHOOK t=1\n"
    )
    assert feed(link, junk) == [OffHook(1)]
    assert link.stats.garbage == 3
    assert link.stats.overlong == 1
    assert link.stats.stale_replies == 2
    assert link.state is LinkState.UP


def test_an_overlong_line_in_chunks_is_dropped_whole() -> None:
    link = up()
    out: list[LinkOutput] = []
    for _ in range(10):
        out += feed(link, b"EVT 1 1 OFFHOOK " + b"y" * 60)
    out += feed(link, b" t=1\nEVT 1 1 ONHOOK t=2\n")
    assert out == [OnHook(1)]  # the tail of the long line is not mistaken for an event
    assert link.stats.overlong == 1


def test_blank_lines_and_crlf_are_fine() -> None:
    link = up()
    assert feed(link, b"\r\n\r\nEVT 1 1 OFFHOOK t=1\r\n") == [OffHook(1)]
    assert link.stats.garbage == 0


def test_unknown_events_keep_the_counter_in_step() -> None:
    link = up()
    out = feed(link, "EVT 1 2 BATTERY low t=1\nEVT 2 9 OFFHOOK t=2\nEVT 3 1 OFFHOOK t=3\n")
    assert out == [OffHook(1)]
    assert link.stats.unknown_events == 2
    assert link.stats.gaps == 0


def test_silence_brings_a_keepalive_status() -> None:
    link = up()
    assert link.next_deadline() == pytest.approx(15.1)
    assert sent(link.handle_timer(15.1)) == ["5 STATUS"]
    assert feed(link, status_reply(5), 15.2) == []  # nothing changed: nothing to say
    assert link.next_deadline() == pytest.approx(30.2)
    assert sent(link.handle_timer(30.2)) == ["6 STATUS"]
    changed = status_reply(6, fxs="hook=off ring=off feed=normal")
    assert feed(link, changed, 30.3) == [OffHook(1), Resynced("keepalive", 1)]


def test_an_unanswered_keepalive_takes_the_link_down() -> None:
    link = up()
    fired = walk(link, 20.0)
    assert [o for _, out in fired for o in others(out)] == [
        LinkDown("no answer to 5 STATUS after 4 tries")
    ]


def test_a_refused_status_is_reported() -> None:
    link = up()
    link.handle_timer(15.1)
    assert feed(link, "5 ERR busy\n") == [CommandFailed("5 STATUS", "busy")]


def test_dials_are_not_repeated_after_a_reset() -> None:
    link = up()
    link.send_intent(Hook(2, True), 1.0)
    link.send_intent(DialPulses(2, "99"), 1.0)
    out = feed(link, "5 OK\n6 OK\nEVT 0 0 RESET t=0\n")
    # neither the seizure nor the digits come back by themselves: the FXO port, told
    # of the reset, hangs its call up instead of the line being seized for a moment
    assert [line for line in sent(out) if "DIAL" in line or "HOOK" in line] == []


def test_misuse_is_an_error() -> None:
    link = ControllerLink([FXS, FXO], CONFIG)
    assert feed(link, "EVT 1 1 OFFHOOK t=1\n") == []  # not started: ignored
    with pytest.raises(LinkError, match="port 7 is not configured"):
        link.send_intent(Ring(7, True), 0.0)
    link.start(0.0)
    with pytest.raises(LinkError, match="START in CONNECTING"):
        link.start(0.0)
    with pytest.raises(LinkError, match="a port is configured twice"):
        ControllerLink([FXS, FxsConfig(1)])
