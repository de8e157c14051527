"""The simulated controller: its answers, its real-time work, its faults; then the real
host session against it in memory, with the clock passed in."""

from __future__ import annotations

import pytest

from appliance.hw.sim.controller import SimController
from appliance.lines.controller_config import FxoConfig, FxsConfig
from appliance.lines.controller_link import (
    ControllerLink,
    LinkConfig,
    LinkOutput,
    LinkState,
    LinkUp,
    Resynced,
    Send,
)
from appliance.lines.controller_protocol import ProtocolError, decode_line
from appliance.lines.signals import (
    ControllerReset,
    DialPulses,
    Flash,
    Hook,
    OffHook,
    OnHook,
    PolarityReversal,
    PortType,
    PulseDigit,
    Ring,
    RingStart,
    RingStop,
)

PORTS = [PortType.FXS, PortType.FXS, PortType.FXO]
CONFIGS = "1 CONFIG 1 type=fxs\n2 CONFIG 2 type=fxs\n3 CONFIG 3 type=fxo\n"


def say(sim: SimController, text: str, now: float = 0.0) -> list[str]:
    return sim.receive(text.encode(), now).decode("ascii", "replace").splitlines()


def configured(now: float = 0.0) -> SimController:
    sim = SimController(PORTS, now=now, announce_boot=False)
    assert say(sim, CONFIGS, now) == ["1 OK", "2 OK", "3 OK"]
    return sim


def run(sim: SimController, start: float, until: float) -> list[str]:
    """Everything the controller sends from ``start`` to ``until``, deadline by deadline."""
    out = sim.handle_timer(start)
    while (deadline := sim.next_deadline()) is not None and deadline <= until:
        out += sim.handle_timer(deadline)
    return out.decode("ascii", "replace").splitlines()


def test_power_on_announces_a_reset() -> None:
    sim = SimController(PORTS, now=5.0)
    assert sim.next_deadline() == 5.0
    assert sim.handle_timer(5.0) == b"EVT 0 0 RESET t=0 cause=power\n"
    assert sim.next_deadline() is None


def test_hello_and_version() -> None:
    sim = SimController(PORTS, announce_boot=False)
    assert say(sim, "1 HELLO yakyak/1\n") == ["1 OK controller=yakyak-sim proto=1 ports=3"]
    assert say(sim, "2 HELLO yakyak/2\n") == ["2 ERR version this controller speaks proto=1"]


def test_config_is_checked_and_kept() -> None:
    sim = configured()
    assert sim.configured(1) == FxsConfig(1)
    assert sim.configured(3) == FxoConfig(3)
    assert say(sim, "4 CONFIG 3 type=fxs\n") == ["4 ERR badtype port 3 is fxo"]
    assert say(sim, "5 CONFIG 9 type=fxs\n") == ["5 ERR badport no port 9"]
    assert say(sim, "6 CONFIG 1 type=fxs ring_v=5\n") == [
        "6 ERR badconfig ring voltage 20-100 V rms and frequency 15-70 Hz"
    ]


def test_what_it_refuses() -> None:
    sim = SimController(PORTS, announce_boot=False)
    assert say(sim, "6 RING 1 ON\n") == ["6 ERR notconfigured port 1 has had no CONFIG"]
    assert say(sim, "7 REBOOT now\n") == ["7 ERR unknown REBOOT"]
    assert say(sim, "8 RING 1 LOUD\n") == ["8 ERR badcommand RING takes ON or OFF"]
    assert say(sim, "9 RING 7 OFF\n") == ["9 ERR badport no port 7"]
    assert say(sim, "garbage\n\x00\xff\n9 OK\n") == []
    assert sim.garbage == 4  # the bad RING, two lines of noise, and an answer
    assert say(sim, "x" * 300 + "\n10 STATUS\n")[-1] == "10 OK evt=0 t=0"
    assert sim.garbage == 5


def test_ring_cadence_and_its_phase() -> None:
    sim = configured()
    assert say(sim, "10 RING 1 ON cadence=1000,2000\n", 10.0) == ["10 OK"]
    phone = sim.phone(1)
    assert phone.ringing and phone.cadence == (1000, 2000)
    bells = []
    for at in (10.5, 11.5, 12.9, 13.2):
        sim.handle_timer(at)
        bells.append(phone.bell)
    assert bells == [True, False, False, True]
    assert say(sim, "11 RING 1 ON cadence=1000,2000\n", 13.5) == ["11 OK"]  # phase kept
    sim.handle_timer(13.6)
    assert phone.bell  # 3.6 s into the cadence: inside the second ring
    assert say(sim, "12 RING 1 OFF\n", 14.0) == ["12 OK"]
    assert not phone.ringing and not phone.bell


def test_ring_defaults_and_limits() -> None:
    sim = configured()
    assert say(sim, "10 RING 2 ON\n") == ["10 OK"]
    assert sim.phone(2).cadence == (2000, 4000)
    assert say(sim, "11 RING 1 ON cadence=50,4000\n") == [
        "11 ERR badcadence outside this port's cadence limits"
    ]
    assert say(sim, "12 RING 3 ON\n") == ["12 ERR badtype not an fxo command"]
    assert say(sim, "13 HOOK 1 OFFHOOK\n") == ["13 ERR badtype not an fxs command"]


def test_lifting_a_ringing_phone_trips_the_ring() -> None:
    sim = configured()
    say(sim, "10 RING 1 ON\n", 1.0)
    sim.phone(1).lift()
    assert run(sim, 2.0, 3.0) == ["EVT 1 1 OFFHOOK t=2030"]
    assert not sim.phone(1).ringing
    assert say(sim, "11 RING 1 ON\n", 3.0) == ["11 ERR offhook the phone is off hook"]


def test_a_resent_command_is_answered_but_not_done_twice() -> None:
    sim = configured()
    assert say(sim, "10 DIAL 3 55\n") == ["10 ERR onhook seize the line before dialling"]
    assert say(sim, "11 HOOK 3 OFFHOOK\n12 DIAL 3 55\n") == ["11 OK", "12 OK"]
    assert say(sim, "12 DIAL 3 55\n") == ["12 OK"]
    assert sim.line(3).dialed == "55"
    assert sim.line(3).seized


def test_status_describes_every_port() -> None:
    sim = configured(now=0.0)
    say(sim, "10 RING 2 ON\n11 HOOK 3 OFFHOOK\n", 1.0)
    assert say(sim, "12 STATUS\n", 2.5) == [
        "12 PORT 1 type=fxs cfg=yes hook=on ring=off feed=normal",
        "12 PORT 2 type=fxs cfg=yes hook=on ring=on feed=normal",
        "12 PORT 3 type=fxo cfg=yes hook=off ring=off polarity=normal loop=on",
        "12 OK evt=0 t=2500",
    ]


def test_pulse_dialling_flash_and_hang_up() -> None:
    sim = configured()
    phone = sim.phone(1)
    phone.lift()
    phone.dial_pulses("101")
    phone.flash()
    phone.hang_up()
    assert [line.rsplit(" t=", 1)[0] for line in run(sim, 1.0, 20.0)] == [
        "EVT 1 1 OFFHOOK",
        "EVT 2 1 DIGIT 1",
        "EVT 3 1 DIGIT 0",
        "EVT 4 1 DIGIT 1",
        "EVT 5 1 FLASH",
        "EVT 6 1 ONHOOK",
    ]
    assert not phone.off_hook


def test_a_hang_up_while_the_loop_is_open_is_reported_when_the_feed_returns() -> None:
    sim = configured()
    phone = sim.phone(1)
    phone.lift()
    assert [line.rsplit(" t=", 1)[0] for line in run(sim, 1.0, 2.0)] == ["EVT 1 1 OFFHOOK"]
    say(sim, "10 FEED 1 OPEN\n", 2.0)  # the disconnect signal
    phone.hang_up()
    assert run(sim, 2.0, 4.0) == []  # no loop current: the hook cannot be seen
    say(sim, "11 FEED 1 NORMAL\n", 4.0)
    assert [line.rsplit(" t=", 1)[0] for line in run(sim, 4.0, 6.0)] == ["EVT 2 1 ONHOOK"]


def test_event_times_are_the_controllers_clock() -> None:
    sim = configured(now=100.0)
    sim.phone(1).lift()
    assert run(sim, 101.0, 102.0) == ["EVT 1 1 OFFHOOK t=1030"]  # ms since it started


def test_fxo_ring_bursts_are_qualified() -> None:
    sim = configured()
    line = sim.line(3)
    line.ring_burst(100)  # shorter than ring_min (150 ms): noise
    line.ring_burst(2000)
    assert run(sim, 1.0, 10.0) == ["EVT 1 3 RINGSTART t=1250", "EVT 2 3 RINGSTOP t=3150"]


def test_fxo_polarity_and_loop_drop() -> None:
    sim = configured()
    line = sim.line(3)
    line.reverse_polarity()
    line.drop_loop()  # not seized: there is no loop current to lose
    assert run(sim, 1.0, 2.0) == ["EVT 1 3 POLARITY t=1000"]
    say(sim, "10 HOOK 3 OFFHOOK\n", 2.0)
    line.drop_loop(100)  # shorter than loop_drop (350 ms): no disconnect
    line.drop_loop()
    assert run(sim, 3.0, 5.0) == ["EVT 2 3 LOOPDROP t=3450"]
    assert say(sim, "11 STATUS\n", 5.0)[2].endswith("polarity=reversed loop=off")


def test_fxo_reports_only_the_disconnects_it_is_told_to_watch() -> None:
    sim = SimController(PORTS, announce_boot=False)
    say(sim, "1 CONFIG 3 type=fxo disconnect=loop\n2 HOOK 3 OFFHOOK\n")
    sim.line(3).reverse_polarity()
    assert run(sim, 1.0, 2.0) == []
    assert sim.line(3).reversed


def test_an_unconfigured_port_reports_nothing_but_its_status() -> None:
    sim = SimController(PORTS, announce_boot=False)
    sim.phone(1).lift()
    assert run(sim, 1.0, 2.0) == []
    assert (
        say(sim, "1 STATUS\n", 2.0)[0] == "1 PORT 1 type=fxs cfg=no hook=off ring=off feed=normal"
    )


def test_dropped_events_leave_a_gap_in_the_counter() -> None:
    sim = configured()
    sim.drop_events(1)
    sim.phone(1).lift()
    sim.phone(2).lift()
    assert run(sim, 1.0, 2.0) == ["EVT 2 2 OFFHOOK t=1030"]
    assert say(sim, "10 STATUS\n", 2.0)[-1] == "10 OK evt=2 t=2000"


def test_a_garbled_line_does_not_parse() -> None:
    sim = configured()
    sim.garble_next_line()
    raw = sim.receive(b"10 STATUS\n", 1.0).split(b"\n")[0]
    with pytest.raises(ProtocolError):
        decode_line(raw)
    assert sim.receive(b"11 RING 1 OFF\n", 1.0) == b"11 OK\n"


def test_a_reset_forgets_configuration_and_state() -> None:
    sim = configured()
    say(sim, "10 RING 2 ON\n11 HOOK 3 OFFHOOK\n", 1.0)
    sim.phone(1).lift()
    run(sim, 1.0, 2.0)
    sim.reset()
    assert sim.next_deadline() == sim.now  # at once
    assert run(sim, 5.0, 6.0) == ["EVT 0 0 RESET t=0 cause=watchdog"]
    assert sim.configured(1) is None
    assert not sim.phone(2).ringing and not sim.line(3).seized
    assert say(sim, "12 STATUS\n", 6.0) == [
        "12 PORT 1 type=fxs cfg=no hook=off ring=off feed=normal",  # still lifted
        "12 PORT 2 type=fxs cfg=no hook=on ring=off feed=normal",
        "12 PORT 3 type=fxo cfg=no hook=on ring=off polarity=normal loop=off",
        "12 OK evt=0 t=1000",
    ]


def test_a_silent_controller_answers_nothing() -> None:
    sim = configured()
    sim.silent = True
    assert say(sim, "10 STATUS\n") == []
    sim.phone(1).lift()
    assert run(sim, 1.0, 2.0) == []


def test_phone_and_line_ports_are_typed() -> None:
    sim = SimController(PORTS)
    with pytest.raises(KeyError):
        sim.phone(3)
    with pytest.raises(KeyError):
        sim.line(1)
    with pytest.raises(ValueError, match="cannot be dialled"):
        sim.phone(1).dial_pulses("1*")


# -- the host's session against the sim, in memory -----------------------------------


class Bench:
    """ControllerLink and SimController wired back to back; the clock is ``now``."""

    def __init__(self, announce_boot: bool = False) -> None:
        self.sim = SimController(PORTS, announce_boot=announce_boot)
        configs = [FxsConfig(1), FxsConfig(2), FxoConfig(3)]
        self.link = ControllerLink(configs, LinkConfig(keepalive=None))
        self.now = 0.0
        self.delivered: list[LinkOutput] = []
        self._seen = 0

    def start(self) -> None:
        self.to_sim(self.link.start(self.now))

    def intent(self, intent: Ring | Hook | DialPulses) -> None:
        self.to_sim(self.link.send_intent(intent, self.now))

    def to_sim(self, data: bytes) -> None:
        """Bytes on the wire arrive after the host has dealt with its current outputs."""
        wire = [data]
        while wire:
            answer = self.sim.receive(wire.pop(0), self.now)
            wire += self.apply(self.link.receive(answer, self.now))

    def apply(self, outputs: list[LinkOutput]) -> list[bytes]:
        self.delivered += [o for o in outputs if not isinstance(o, Send)]
        return [o.data for o in outputs if isinstance(o, Send)]

    def run(self, until: float) -> list[LinkOutput]:
        """Advance to ``until``; what the host was given since the last run."""
        while True:
            deadlines = (self.sim.next_deadline(), self.link.next_deadline())
            due = [t for t in deadlines if t is not None and t <= until]
            if not due:
                break
            self.now = max(self.now, min(due))
            sends = self.apply(self.link.receive(self.sim.handle_timer(self.now), self.now))
            sends += self.apply(self.link.handle_timer(self.now))
            for data in sends:
                self.to_sim(data)
        self.now = until
        news, self._seen = self.delivered[self._seen :], len(self.delivered)
        return news


def test_host_and_sim_shake_hands_and_report_a_call() -> None:
    bench = Bench()
    bench.start()
    assert bench.run(0.5) == [LinkUp("yakyak-sim", 1, 3), Resynced("start", 0)]
    bench.intent(Ring(1, True))
    assert bench.sim.phone(1).ringing
    bench.sim.phone(1).lift()
    bench.sim.phone(1).dial_pulses("42")
    assert bench.run(10.0) == [OffHook(1), PulseDigit(1, "4"), PulseDigit(1, "2")]
    bench.sim.phone(1).flash()
    bench.sim.phone(1).hang_up()
    assert bench.run(12.0) == [Flash(1), OnHook(1)]
    bench.sim.line(3).ring_burst(1000)
    assert bench.run(14.0) == [RingStart(3), RingStop(3)]
    bench.intent(Hook(3, True))
    bench.intent(DialPulses(3, "911"))
    assert bench.sim.line(3).dialed == "911"


def test_a_power_on_reset_after_start_is_handled() -> None:
    bench = Bench(announce_boot=True)
    bench.start()  # the boot RESET is still queued in the sim: it follows the handshake
    out = bench.run(1.0)
    assert ControllerReset() in out
    assert bench.link.state is LinkState.UP


def test_a_reset_mid_call_reconfigures_and_the_call_state_comes_back() -> None:
    bench = Bench()
    bench.start()
    bench.sim.phone(1).lift()
    bench.run(1.0)
    configs_before = sum(c.verb == "CONFIG" for c in bench.sim.commands)
    bench.sim.reset()
    out = bench.run(2.0)
    assert out == [ControllerReset(), LinkUp("yakyak-sim", 1, 3), OffHook(1), Resynced("reset", 1)]
    assert sum(c.verb == "CONFIG" for c in bench.sim.commands) == configs_before + 3
    assert bench.sim.configured(1) == FxsConfig(1)


def test_a_dropped_event_is_recovered_through_status() -> None:
    bench = Bench()
    bench.start()
    bench.run(0.5)
    bench.sim.drop_events(1)
    bench.sim.phone(2).lift()  # lost
    assert bench.run(1.5) == []
    bench.sim.line(3).reverse_polarity()  # the next event shows the gap
    assert bench.run(2.0) == [PolarityReversal(3), OffHook(2), Resynced("gap", 1)]
    assert bench.link.stats.gaps == 1


def test_a_garbled_answer_is_resent_and_answered_from_memory() -> None:
    bench = Bench()
    bench.start()
    bench.run(0.5)
    bench.sim.garble_next_line()
    bench.intent(Hook(3, True))  # its OK is garbled on the way
    assert bench.link.stats.garbage == 1
    assert bench.run(1.0) == []  # resent after 0.5 s; the sim repeats its answer
    assert bench.link.stats.resends == 1
    assert sum(c.verb == "HOOK" for c in bench.sim.commands) == 2
    assert bench.sim.line(3).seized
    assert bench.link.state is LinkState.UP


def test_a_silent_controller_takes_the_link_down_and_back_up() -> None:
    bench = Bench()
    bench.start()
    bench.run(0.5)
    bench.sim.silent = True
    bench.intent(Ring(1, True))
    out = bench.run(5.0)
    assert [type(o).__name__ for o in out] == ["LinkDown"]
    bench.sim.silent = False
    out = bench.run(10.0)
    assert out == [LinkUp("yakyak-sim", 1, 3), Resynced("reconnect", 0)]
    assert bench.sim.phone(1).ringing  # the intent was applied on the reconnect
