"""Relay frames and the timed relay moves (sans-IO: times are passed in)."""

from __future__ import annotations

import pytest

from hil.bench_config import Checksum, RelayFrame
from hil.relay import RelaySequencer, Switch, flash_steps, pulse_steps

pytestmark = pytest.mark.timeout(10)


def test_lcus_frames() -> None:
    frame = RelayFrame()
    assert frame.encode(1, True) == bytes.fromhex("A00101A2")
    assert frame.encode(1, False) == bytes.fromhex("A00100A1")
    assert frame.encode(4, True) == bytes.fromhex("A00401A5")
    assert frame.encode(0xFF, True) == bytes.fromhex("A0FF01A0")  # the sum wraps


def test_a_configured_frame_without_checksum() -> None:
    frame = RelayFrame(prefix=(0x55, 0x56), on=0xF1, off=0xF0, checksum=Checksum.NONE)
    assert frame.encode(2, True) == bytes.fromhex("555602F1")
    assert frame.encode(2, False) == bytes.fromhex("555602F0")


def run(sequencer: RelaySequencer) -> list[tuple[float, Switch]]:
    fired: list[tuple[float, Switch]] = []
    while (deadline := sequencer.next_deadline()) is not None:
        fired += sequencer.handle_timer(deadline)
    return fired


def test_a_flash_opens_the_loop_for_its_length() -> None:
    sequencer = RelaySequencer()
    sequencer.queue(flash_steps(1, 300), now=5.0)
    fired = [(round(at, 6), move) for at, move in run(sequencer)]
    assert fired == [(5.0, Switch(1, False)), (5.3, Switch(1, True))]


def test_pulse_digits_break_make_and_gaps() -> None:
    sequencer = RelaySequencer()
    sequencer.queue(pulse_steps(1, "20"), now=0.0)
    times = [(round(at, 3), move.on) for at, move in run(sequencer)]
    # 0.7 s before the digit, 60 ms open, 40 ms closed between pulses
    assert times[:4] == [(0.7, False), (0.76, True), (0.8, False), (0.86, True)]
    # "0" is ten pulses after another 0.7 s gap
    zero = times[4:]
    assert len(zero) == 20
    assert zero[0] == (1.56, False)
    assert zero[-1] == (round(1.56 + 9 * 0.1 + 0.06, 3), True)
    assert sequencer.next_deadline() is None


def test_pulses_refuse_what_a_dial_cannot_send() -> None:
    with pytest.raises(ValueError, match="'#' cannot be dialled by pulses"):
        pulse_steps(1, "1#")


def test_what_is_queued_later_waits_for_what_is_pending() -> None:
    sequencer = RelaySequencer()
    sequencer.queue(pulse_steps(1, "1"), now=0.0)  # ends with a 0.7 s wait at 1.46
    sequencer.queue([(0.0, Switch(1, False))], now=0.2)  # hang up: after the digit
    fired = run(sequencer)
    assert (round(fired[-1][0], 6), fired[-1][1]) == (1.46, Switch(1, False))
    # idle again: a new move starts at its own now
    sequencer.queue([(0.0, Switch(1, True))], now=10.0)
    assert sequencer.handle_timer(10.0) == [(10.0, Switch(1, True))]


def test_only_the_due_moves_fire() -> None:
    sequencer = RelaySequencer()
    sequencer.queue(flash_steps(3, 100), now=1.0)
    assert sequencer.handle_timer(0.5) == []
    assert sequencer.handle_timer(1.05) == [(1.0, Switch(3, False))]
    assert sequencer.busy
    assert [(round(at, 6), move) for at, move in sequencer.pending()] == [(1.1, Switch(3, True))]
