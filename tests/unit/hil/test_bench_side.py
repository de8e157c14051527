"""The bench's phone side on fakes: the relay card on a pseudo-terminal (pyserial writes
its real frames there), GPIO inputs in ``MemoryLines``, audio in ``MemoryPcm``; a manual
clock steps it from deadline to deadline."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from appliance.hw.gpio import MemoryLines
from appliance.hw.pcm import MemoryPcm, Pcm
from appliance.lines.signals import FeedMode
from hil.bench_audio import open_line_pcms
from hil.bench_config import BenchConfig, RelayCardSpec, RelayFrame, parse_bench
from hil.bench_side import BenchSide
from hil.relay import RelayCard

pytestmark = pytest.mark.timeout(20)

CONFIG = """
schema = 1
name = "fake-bench"
[board]
name = "rpi4"
host = "192.0.2.10"
web_url = "http://192.0.2.10"
api_token = "t"
country = "US"
[desk_phone]
extension = "101"
password = "pw"
local_address = "192.0.2.50"
[relay_card]
device = "/dev/pts/0"
[[fxs]]
port = 1
relay = 1
ring = { chip = "sim", line = 1 }
loop_current = { chip = "sim", line = 2 }
audio = { device = "codec", channels = 2, channel = 0 }
[[fxo]]
port = 3
ring_relay = 2
battery_relay = 3
polarity_relay = 4
seized = { chip = "sim", line = 3 }
audio = { device = "codec", channels = 2, channel = 1 }
"""
RING, LOOP, SEIZED = ("sim", 1), ("sim", 2), ("sim", 3)


def on(channel: int) -> bytes:
    return bytes((0xA0, channel, 1, (0xA0 + channel + 1) & 0xFF))


def off(channel: int) -> bytes:
    return bytes((0xA0, channel, 0, (0xA0 + channel) & 0xFF))


@dataclass
class Bench:
    side: BenchSide
    lines: MemoryLines
    card: MemoryPcm  # the stereo codec: channel 0 port 1, channel 1 port 3
    master: int
    clock: list[float]

    def read(self) -> bytes:
        data = b""
        while True:
            try:
                chunk = os.read(self.master, 1024)
            except BlockingIOError:
                return data
            data += chunk

    def run_to(
        self, end: float, inputs: Callable[[float], None] | None = None
    ) -> list[tuple[float, bytes]]:
        """Step deadline by deadline up to ``end``; the frames written, with their times."""
        written: list[tuple[float, bytes]] = []
        while (deadline := self.side.next_deadline()) is not None and deadline <= end + 1e-9:
            self.clock[0] = deadline
            if inputs is not None:
                inputs(deadline)
            self.side.step(deadline)
            if data := self.read():
                written.append((round(deadline, 3), data))
        self.clock[0] = end
        return written


@pytest.fixture
def bench() -> Iterator[Bench]:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    config: BenchConfig = parse_bench(tomllib.loads(CONFIG), Path("b.toml"), "b.toml")
    card = RelayCard.open(RelayCardSpec(os.ttyname(slave), 9600, RelayFrame()))
    lines = MemoryLines()
    codec = MemoryPcm(channels=2, capture_frames=500)
    pcms: dict[int, Pcm] = open_line_pcms(
        [(1, config.fxs[0].audio), (3, config.fxo[0].audio)], make=lambda device, ch: codec
    )
    clock = [0.0]
    side = BenchSide(config, card, lines, pcms, clock=lambda: clock[0])
    fake = Bench(side, lines, codec, master, clock)
    side.open(0.0)
    try:
        yield fake
    finally:
        side.close()
        os.close(slave)
        os.close(master)


def test_open_puts_every_relay_in_its_idle_position(bench: Bench) -> None:
    assert bench.read() == off(1) + off(2) + off(4) + on(3)  # battery on the line


def test_lift_hang_up_and_flash_write_lcus_frames_at_their_times(bench: Bench) -> None:
    bench.read()
    phone = bench.side.phone(1)
    phone.lift()
    assert bench.run_to(1.0) == [(0.0, on(1))]
    assert phone.off_hook
    bench.clock[0] = 1.0
    phone.flash(300)
    assert bench.run_to(2.0) == [(1.0, off(1)), (1.3, on(1))]
    bench.clock[0] = 2.0
    phone.hang_up()
    assert bench.run_to(2.5) == [(2.0, off(1))]
    assert not phone.off_hook


def test_pulse_digits_are_timed_toggles_and_a_hang_up_waits_for_them(bench: Bench) -> None:
    bench.read()
    phone = bench.side.phone(1)
    phone.lift()
    phone.dial_pulses("2")
    bench.clock[0] = 0.3
    phone.hang_up()  # queued behind the digit and its closing pause
    written = bench.run_to(3.0)
    assert written == [
        (0.0, on(1)),
        (0.7, off(1)),  # break 60 ms
        (0.76, on(1)),  # make 40 ms
        (0.8, off(1)),
        (0.86, on(1)),
        (1.56, off(1)),  # 0.7 s after the last pulse
    ]


def test_the_measured_ring_cadence_and_ringing(bench: Bench) -> None:
    phone = bench.side.phone(1)

    def ringing_line(t: float) -> None:  # 20 Hz through an opto: 25 ms on, 25 off
        burst = 1.0 <= t < 3.0 or 7.0 <= t < 9.0
        bench.lines.values[RING] = burst and round(t * 1000) % 50 < 25

    bench.run_to(2.0, ringing_line)
    assert phone.ringing and len(phone.cadence) == 0
    bench.run_to(7.5, ringing_line)
    on_ms, off_ms = bench.side.phone(1).cadence
    assert abs(on_ms - 2000) <= 30 and abs(off_ms - 4000) <= 30
    assert phone.ringing  # in the second burst
    phone.lift()  # answered: the ringing is over
    bench.run_to(7.6, ringing_line)
    assert not phone.ringing and len(phone.cadence) == 0


def test_loop_current_drop_reads_as_an_open_feed(bench: Bench) -> None:
    phone = bench.side.phone(1)
    bench.lines.values[LOOP] = True
    phone.lift()
    bench.run_to(2.0)
    assert bench.side.phone(1).feed is FeedMode.NORMAL
    bench.lines.values[LOOP] = False  # the far end hung up: the board opens the loop
    bench.run_to(2.05)
    assert bench.side.phone(1).feed is FeedMode.NORMAL
    bench.run_to(2.12)
    assert bench.side.phone(1).feed is FeedMode.OPEN
    phone.hang_up()
    bench.run_to(2.2)
    assert bench.side.phone(1).feed is FeedMode.NORMAL


def test_an_fxo_ring_burst_is_tripped_when_the_board_answers(bench: Bench) -> None:
    bench.read()
    line = bench.side.line(3)
    line.ring_burst(2000)
    assert bench.run_to(0.5) == [(0.0, on(2))]
    assert not line.seized
    bench.lines.values[SEIZED] = True  # the board goes off hook during the burst
    written = bench.run_to(3.0)
    assert written[0] == (0.51, off(2))  # at the next sample, not after 2 s
    assert line.seized


def test_drop_loop_takes_the_battery_off_and_holds_the_last_seizure(bench: Bench) -> None:
    bench.read()
    line = bench.side.line(3)
    bench.lines.values[SEIZED] = True
    bench.run_to(1.0)
    assert line.seized
    bench.clock[0] = 1.0
    line.drop_loop()  # for loop_break_ms, 1 s by default
    bench.lines.values[SEIZED] = False  # no battery: no current, whatever the board does
    assert bench.run_to(1.5) == [(1.0, off(3))]
    assert line.seized  # not known without battery: the last reading stands
    assert bench.run_to(2.5) == [(2.0, on(3))]
    assert not line.seized  # battery back and still no current: released
    bench.clock[0] = 2.5
    line.drop_loop(200)
    assert bench.run_to(3.0) == [(2.5, off(3)), (2.7, on(3))]


def test_polarity_reversal_toggles_from_the_planned_position(bench: Bench) -> None:
    bench.read()
    line = bench.side.line(3)
    line.reverse_polarity()
    line.reverse_polarity()
    assert bench.run_to(0.1) == [(0.0, on(4) + off(4))]
    assert not line.reversed


def test_say_goes_out_on_the_media_clock_and_captures_are_played(bench: Bench) -> None:
    tone = np.full(320, 7, dtype=np.int16)
    bench.side.say(1, 0.04, tone)  # frames 2 and 3 of port 1
    bench.side.say(3, 0.0, np.full(160, -5, dtype=np.int16))  # frame 0 of port 3
    # the line says 3 frames: left channel to port 1, right to port 3
    stereo = np.zeros(960, dtype=np.int16)
    stereo[0::2] = np.arange(480)
    stereo[1::2] = -np.arange(480)
    bench.card.inject(stereo)
    bench.run_to(0.1)
    out = bench.card.played()
    assert len(out) == 6 * 320  # frames 0..5, at 0, 20... 100 ms
    left, right = out[0::2], out[1::2]
    assert not left[:320].any() and (left[320:640] == 7).all() and not left[640:].any()
    assert (right[:160] == -5).all() and not right[160:].any()
    assert (bench.side.played(1) == np.arange(480)).all()
    assert (bench.side.played(3) == -np.arange(480)).all()


def test_the_ports_it_does_not_wire_are_named(bench: Bench) -> None:
    with pytest.raises(KeyError, match="port 3 is not an FXS port"):
        bench.side.phone(3)
    with pytest.raises(KeyError, match="port 1 is not an FXO port"):
        bench.side.line(1)


def test_close_opens_every_relay(bench: Bench) -> None:
    bench.read()
    bench.side.phone(1).lift()
    bench.run_to(0.0)
    bench.read()
    bench.side.close()
    assert bench.read() == off(1) + off(2) + off(4) + off(3)
    bench.side.close()  # once only: nothing more is written
    assert bench.read() == b""
