"""In-band DTMF detector against ITU-T Q.23/Q.24 limits, on signals built with numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from appliance.dsp.dtmf import (
    COLS,
    DBM0_PEAK,
    KEYPAD,
    RATE,
    ROWS,
    DigitEnded,
    DigitStarted,
    DtmfDetector,
    DtmfEvent,
)

ALL_DIGITS = "".join(KEYPAD)
Signal = npt.NDArray[np.float64]


def amplitude(dbm0: float) -> float:
    return DBM0_PEAK * 10 ** (dbm0 / 20)


def silence(ms: float) -> Signal:
    return np.zeros(round(ms * RATE / 1000))


def dtmf(
    digit: str,
    ms: float,
    dbm0: float = -10.0,
    row_offset: float = 0.0,
    col_offset: float = 0.0,
    twist_db: float = 0.0,
) -> Signal:
    """Both tones of ``digit``, each at ``dbm0``; ``twist_db`` raises the column tone."""
    row = next(r for r, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    t = np.arange(round(ms * RATE / 1000)) / RATE
    low = amplitude(dbm0) * np.cos(2 * np.pi * ROWS[row] * (1 + row_offset) * t + 0.3)
    high = amplitude(dbm0 + twist_db) * np.cos(2 * np.pi * COLS[col] * (1 + col_offset) * t + 1.1)
    return low + high


def run(*parts: Signal, frame: int = 160) -> list[DtmfEvent]:
    """Feed the parts as one stream in ``frame``-sample frames, plus trailing silence."""
    signal = np.concatenate((*parts, silence(200)))
    signal = np.concatenate((signal, np.zeros(-signal.size % frame)))
    pcm = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    detector = DtmfDetector()
    events: list[DtmfEvent] = []
    for i in range(0, pcm.size, frame):
        events.extend(detector.feed(pcm[i : i + frame], now=10.0 + i / RATE))
    return events


def pressed(events: list[DtmfEvent]) -> str:
    return "".join(e.digit for e in events if isinstance(e, DigitStarted))


@pytest.mark.parametrize("digit", ALL_DIGITS)
def test_every_digit_at_nominal_frequency_and_level(digit: str) -> None:
    events = run(silence(30), dtmf(digit, 100))
    assert pressed(events) == digit
    ended = [e for e in events if isinstance(e, DigitEnded)]
    assert len(ended) == 1 and ended[0].digit == digit


def test_events_carry_start_duration_and_level() -> None:
    events = run(silence(50), dtmf("7", 100, dbm0=-10.0))
    assert len(events) == 2
    started, ended = events
    assert isinstance(started, DigitStarted) and isinstance(ended, DigitEnded)
    assert started.start == pytest.approx(10.050, abs=0.005)
    assert ended.start == started.start
    assert ended.duration == pytest.approx(0.100, abs=0.010)
    assert started.level == pytest.approx(-10.0 + 3.0, abs=0.5)  # two tones at -10 dBm0


@pytest.mark.parametrize("ms", [40, 50, 100, 500])
@pytest.mark.parametrize("lead", [0, 37, 80, 123])
def test_press_of_40ms_or_more_is_one_digit(ms: int, lead: int) -> None:
    events = run(silence(20), np.zeros(lead), dtmf("5", ms))
    assert pressed(events) == "5"
    assert [type(e) for e in events] == [DigitStarted, DigitEnded]


@pytest.mark.parametrize("ms", [20, 23])
@pytest.mark.parametrize("lead", [0, 37, 80, 123])
def test_burst_of_23ms_or_less_is_ignored(ms: int, lead: int) -> None:
    assert run(silence(20), np.zeros(lead), dtmf("5", ms)) == []


def test_long_tone_spanning_many_frames_is_one_digit() -> None:
    events = run(silence(10), dtmf("#", 3000), silence(100), dtmf("#", 60))
    assert pressed(events) == "##"
    first = events[1]
    assert isinstance(first, DigitEnded) and first.duration == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("gap_ms", [40, 50, 100])
@pytest.mark.parametrize("lead", [0, 55, 110])
def test_repeated_digit_after_pause_is_two_digits(gap_ms: int, lead: int) -> None:
    events = run(silence(20), np.zeros(lead), dtmf("9", 50), silence(gap_ms), dtmf("9", 50))
    assert pressed(events) == "99"


@pytest.mark.parametrize("gap_ms", [5, 10])
def test_interruption_of_10ms_is_bridged(gap_ms: int) -> None:
    events = run(silence(20), dtmf("9", 60), silence(gap_ms), dtmf("9", 60))
    assert pressed(events) == "9"
    ended = [e for e in events if isinstance(e, DigitEnded)]
    assert len(ended) == 1 and ended[0].duration == pytest.approx(0.120 + gap_ms / 1000, abs=0.01)


def test_digits_back_to_back_without_pause() -> None:
    events = run(silence(20), dtmf("1", 80), dtmf("2", 80), silence(60), dtmf("3", 45))
    assert pressed(events) == "123"


def test_sequence_with_minimum_timing() -> None:
    digits = "0123456789*#ABCD"
    parts = [p for d in digits for p in (dtmf(d, 40), silence(40))]
    assert pressed(run(silence(13), *parts)) == digits


@pytest.mark.parametrize("offset", [-0.015, 0.015])
@pytest.mark.parametrize("digit", "1D*A")  # every extreme frequency: 697/941 x 1209/1633
def test_frequency_offset_of_1_5_percent_is_detected(offset: float, digit: str) -> None:
    signal = dtmf(digit, 60, row_offset=offset, col_offset=offset)
    assert pressed(run(silence(20), signal)) == digit


@pytest.mark.parametrize("offset", [-0.035, 0.035])
@pytest.mark.parametrize("digit", "1D*A")
def test_frequency_offset_of_3_5_percent_is_rejected(offset: float, digit: str) -> None:
    row_only = dtmf(digit, 100, row_offset=offset)
    col_only = dtmf(digit, 100, col_offset=offset)
    assert run(silence(20), row_only) == []
    assert run(silence(20), col_only) == []


@pytest.mark.parametrize("twist_db", [-8.0, -4.0, 0.0, 2.0, 4.0])
@pytest.mark.parametrize("digit", "1D5")
def test_twist_within_limits_is_detected(twist_db: float, digit: str) -> None:
    # Negative: row (low group) louder, normal twist; positive: reverse twist.
    assert pressed(run(silence(20), dtmf(digit, 60, dbm0=-12.0, twist_db=twist_db))) == digit


@pytest.mark.parametrize("twist_db", [-11.0, 7.0])
@pytest.mark.parametrize("digit", "1D5")
def test_twist_beyond_limits_is_rejected(twist_db: float, digit: str) -> None:
    assert run(silence(20), dtmf(digit, 100, dbm0=-12.0, twist_db=twist_db)) == []


@pytest.mark.parametrize(
    ("row_db", "col_db", "expected"),
    [(-20.0, -20.0, "5"), (-3.0, -40.0, ""), (-40.0, -8.0, "")],
)
def test_second_harmonics_reject(row_db: float, col_db: float, expected: str) -> None:
    # Relative to each fundamental: 2 x 770 Hz and 2 x 1336 Hz added to digit 5.
    t = np.arange(round(0.1 * RATE)) / RATE
    harmonics = amplitude(-10.0 + row_db) * np.cos(2 * np.pi * 1540 * t) + amplitude(
        -10.0 + col_db
    ) * np.cos(2 * np.pi * 2672 * t)
    assert pressed(run(silence(20), dtmf("5", 100) + harmonics)) == expected


@pytest.mark.parametrize("dbm0", [-3.0, -20.0, -36.0])
def test_level_range_is_accepted(dbm0: float) -> None:
    assert pressed(run(silence(20), dtmf("0", 60, dbm0=dbm0))) == "0"


def test_tones_at_0_dbm0_clip_in_int16_and_still_detect() -> None:
    assert pressed(run(silence(20), dtmf("8", 60, dbm0=0.0))) == "8"


def test_tones_below_minimum_level_are_ignored() -> None:
    assert run(silence(20), dtmf("0", 100, dbm0=-45.0)) == []


def test_tones_in_white_noise_20db_down_are_detected() -> None:
    rng = np.random.default_rng(4)
    digits = "147*2580369#ABCD"
    parts = [p for d in digits for p in (dtmf(d, 50, dbm0=-20.0), silence(50))]
    signal = np.concatenate(parts)
    tone_power = 2 * amplitude(-20.0) ** 2 / 2  # two tones, each a**2 / 2
    noise = rng.normal(0.0, np.sqrt(tone_power / 100), signal.size)  # 20 dB down
    assert pressed(run(signal + noise)) == digits


def test_white_noise_alone_gives_nothing() -> None:
    rng = np.random.default_rng(5)
    for dbm0 in (-40.0, -20.0, -6.0):
        noise = rng.normal(0.0, amplitude(dbm0) / np.sqrt(2), 5 * RATE)
        assert run(noise) == []


def test_single_tones_give_nothing() -> None:
    t = np.arange(2 * RATE) / RATE
    for freq in (1000.0, *ROWS, *COLS):
        assert run(amplitude(-10.0) * np.cos(2 * np.pi * freq * t)) == []


def test_speech_like_harmonics_with_vibrato_give_no_digits() -> None:
    rng = np.random.default_rng(6)
    t = np.arange(10 * RATE) / RATE
    # Fundamental wandering 110-190 Hz (slow drift plus 5.5 Hz vibrato).
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.23 * t) + 10 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    envelope = np.abs(np.sin(2 * np.pi * 1.7 * t)) ** 0.5  # syllables
    signal = np.zeros_like(t)
    for k in range(1, 26):
        formants = 1 / (1 + ((k * 150 - 700) / 300) ** 2) + 0.5 / (
            1 + ((k * 150 - 1400) / 300) ** 2
        )
        signal += formants / k**0.5 * np.cos(k * phase + rng.uniform(0, 2 * np.pi))
    signal *= amplitude(-12.0) / np.sqrt(np.mean(signal**2) * 2) * envelope
    assert run(signal) == []


@pytest.mark.parametrize("frame", [160, 80, 7, 333])
def test_frame_size_does_not_change_result(frame: int) -> None:
    events = run(silence(11), dtmf("C", 70), silence(45), dtmf("3", 50), frame=frame)
    assert pressed(events) == "C3"


@given(
    frames=st.lists(
        arrays(np.int16, st.integers(0, 400), elements=st.integers(-32768, 32767)),
        max_size=12,
    )
)
def test_random_frames_never_raise(frames: list[npt.NDArray[np.int16]]) -> None:
    detector = DtmfDetector()
    now = 0.0
    for frame in frames:
        events = detector.feed(frame, now)
        assert isinstance(events, list)
        assert all(isinstance(e, DigitStarted | DigitEnded) for e in events)
        now += frame.size / RATE


def test_two_dimensional_frame_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        DtmfDetector().feed(np.zeros((2, 80), dtype=np.int16), 0.0)
