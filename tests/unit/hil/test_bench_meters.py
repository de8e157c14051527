"""The ring and loop-current meters, fed samples at given times."""

from __future__ import annotations

import pytest

from hil.meters import LoopMeter, RingMeter

pytestmark = pytest.mark.timeout(10)

SAMPLE = 0.01


def opto(t: float, bursts: list[tuple[float, float]]) -> bool:
    """A ring detector on 20 Hz ringing: active 25 ms of every 50 ms within a burst."""
    inside = any(start <= t < end for start, end in bursts)
    return inside and round(t * 1000) % 50 < 25


def sample(meter: RingMeter, start: float, end: float, bursts: list[tuple[float, float]]) -> None:
    for n in range(round(start / SAMPLE), round(end / SAMPLE)):
        t = n * SAMPLE
        meter.feed(t, opto(t, bursts))


def test_a_us_cadence_is_measured_from_detector_pulses() -> None:
    meter = RingMeter(SAMPLE, hold_s=0.1, gap_max_s=6.0)
    sample(meter, 0.0, 10.0, [(1.0, 3.0), (7.0, 9.0)])
    on, off, on2, *_ = meter.cadence()
    assert abs(on - 2000) <= 30 and abs(off - 4000) <= 30 and abs(on2 - 2000) <= 30
    assert meter.cadence(2) == meter.cadence()[:2]


def test_a_uk_double_ring() -> None:
    meter = RingMeter(SAMPLE, hold_s=0.1, gap_max_s=6.0)
    bursts = [(0.0, 0.4), (0.6, 1.0), (3.0, 3.4), (3.6, 4.0)]
    sample(meter, 0.0, 4.5, bursts)
    measured = meter.cadence(4)
    for got, want in zip(measured, (400, 200, 400, 2000), strict=True):
        assert abs(got - want) <= 30, measured


def test_ringing_lasts_through_the_silences_and_ends_after_the_gap() -> None:
    meter = RingMeter(SAMPLE, hold_s=0.1, gap_max_s=6.0)
    assert not meter.ringing(0.0)
    sample(meter, 0.0, 5.0, [(1.0, 3.0)])
    assert meter.ringing(5.0)  # between bursts
    assert meter.ringing(8.9)
    assert not meter.ringing(9.1)  # 6 s after the burst ended


def test_a_new_ringing_after_a_long_silence_starts_a_new_cadence() -> None:
    meter = RingMeter(SAMPLE, hold_s=0.1, gap_max_s=6.0)
    sample(meter, 0.0, 20.0, [(1.0, 2.0), (15.0, 17.0)])
    (first,) = meter.cadence()
    assert abs(first - 2000) <= 30  # the second ringing's burst; the 1 s one is gone


def test_the_loop_opens_only_off_hook_and_after_its_time() -> None:
    meter = LoopMeter(open_s=0.1)
    meter.feed(0.0, current=False, off_hook=False)
    assert not meter.open(5.0)  # on hook: nothing to measure
    meter.feed(1.0, current=False, off_hook=True)  # lifted: current not there yet
    assert not meter.open(1.05)
    for n in range(101, 300):
        meter.feed(n * SAMPLE, current=True, off_hook=True)
    assert not meter.open(2.99)
    for n in range(300, 320):
        meter.feed(n * SAMPLE, current=False, off_hook=True)  # the board opens the feed
    assert not meter.open(3.05)
    assert meter.open(3.1)
    meter.feed(3.2, current=False, off_hook=False)
    assert not meter.open(3.2)
