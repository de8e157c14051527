"""Call-progress tone plans and ToneGenerator: spectrum, level, cadence, continuity."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from appliance.dsp.g711 import Codec, decode_alaw, decode_ulaw
from appliance.dsp.tones import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TONE_PLANS,
    Tone,
    ToneGenerator,
    ToneKind,
    UnknownCountryError,
    dbm0_to_peak,
    tone_for,
    zero_dbm0_peak,
)

ALL_TONES = [
    pytest.param(country, kind, id=f"{country}-{kind.value}")
    for country in sorted(TONE_PLANS)
    for kind in ToneKind
]


def frames(generator: ToneGenerator, count: int) -> npt.NDArray[np.int16]:
    out = [generator.next_frame() for _ in range(count)]
    assert all(f.shape == (FRAME_SAMPLES,) and f.dtype == np.int16 for f in out)
    return np.concatenate(out)


def expected_gate(tone: Tone, start: int, count: int) -> npt.NDArray[np.bool_]:
    """on(n) for n in [start, start + count), built from the cadence by run lengths."""
    if not tone.cadence_ms:
        return np.ones(count, dtype=np.bool_)
    runs = [ms * SAMPLE_RATE // 1000 for pair in tone.cadence_ms for ms in pair]
    cycle = np.repeat(np.arange(len(runs)) % 2 == 0, runs)
    n = np.arange(start, start + count, dtype=np.int64)
    if tone.repeat:
        return cycle[n % len(cycle)]
    return np.where(n < len(cycle), cycle[np.minimum(n, len(cycle) - 1)], False)


def expected_signal(tone: Tone, start: int, count: int, codec: Codec) -> npt.NDArray[np.float64]:
    """Closed form: on(n) * sum(A sin(2 pi f n / fs)), phase reduced exactly in integers."""
    n = np.arange(start, start + count, dtype=object)  # Python ints: no overflow at any n
    signal = np.zeros(count)
    for f, level in zip(tone.frequencies_hz, tone.levels_dbm0, strict=True):
        phase = np.array([(f * k) % SAMPLE_RATE for k in n], dtype=np.float64)
        signal += dbm0_to_peak(level, codec) * np.sin(2 * np.pi * phase / SAMPLE_RATE)
    return np.where(expected_gate(tone, start, count), signal, 0.0)


def analysis_window(tone: Tone) -> int:
    """Longest whole number of common periods inside the first burst (no FFT leakage)."""
    period = SAMPLE_RATE // math.gcd(SAMPLE_RATE, *tone.frequencies_hz)
    burst = tone.cadence_ms[0][0] * SAMPLE_RATE // 1000 if tone.cadence_ms else SAMPLE_RATE
    assert period <= burst
    return burst - burst % period


def spectrum(samples: npt.NDArray[np.int16]) -> tuple[npt.NDArray[np.float64], float]:
    """Peak amplitude per bin (a sine of peak A in a bin reads A) and the bin width in Hz."""
    amplitude = np.abs(np.fft.rfft(samples.astype(np.float64))) * 2 / len(samples)
    return amplitude, SAMPLE_RATE / len(samples)


@pytest.mark.parametrize(("country", "kind"), ALL_TONES)
def test_spectrum_has_the_tone_frequencies_and_nothing_above_minus_40_db(
    country: str, kind: ToneKind
) -> None:
    tone = tone_for(country, kind)
    window = analysis_window(tone)
    samples = frames(ToneGenerator(tone), window // FRAME_SAMPLES + 1)[:window]
    amplitude, width = spectrum(samples)
    bins = [round(f / width) for f in tone.frequencies_hz]
    assert [b * SAMPLE_RATE for b in bins] == [f * window for f in tone.frequencies_hz]
    strongest = amplitude.max()
    assert set(np.flatnonzero(amplitude > strongest * 10 ** (-40 / 20))) == set(bins)


@pytest.mark.parametrize(("country", "kind"), ALL_TONES)
@pytest.mark.parametrize("codec", list(Codec))
def test_each_component_is_within_0_1_db_of_its_level(
    country: str, kind: ToneKind, codec: Codec
) -> None:
    tone = tone_for(country, kind)
    window = analysis_window(tone)
    samples = frames(ToneGenerator(tone, codec=codec), window // FRAME_SAMPLES + 1)[:window]
    amplitude, width = spectrum(samples)
    for f, level in zip(tone.frequencies_hz, tone.levels_dbm0, strict=True):
        measured = 20 * math.log10(amplitude[round(f / width)] / zero_dbm0_peak(codec))
        assert measured == pytest.approx(level, abs=0.1)


@pytest.mark.parametrize(
    ("codec", "codes", "decode"),
    [
        (Codec.PCMU, bytes([0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E]), decode_ulaw),
        (Codec.PCMA, bytes([0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4]), decode_alaw),
    ],
)
def test_0_dbm0_tone_has_the_power_of_the_digital_milliwatt(
    codec: Codec, codes: bytes, decode: Callable[[bytes], npt.NDArray[np.int16]]
) -> None:
    # G.711 Tables 5/6: the digital milliwatt is a 1 kHz sine at 0 dBm0.
    milliwatt = decode(codes).astype(np.float64)
    tone = Tone((1000,), (0.0,))
    ours = frames(ToneGenerator(tone, codec=codec), 50).astype(np.float64)
    ratio_db = 10 * math.log10(np.mean(ours**2) / np.mean(milliwatt**2))
    assert abs(ratio_db) < 0.1
    # and RMS of the 0 dBm0 sine is its peak over sqrt(2), within 0.01 dB after rounding
    assert 20 * math.log10(math.sqrt(2 * np.mean(ours**2)) / zero_dbm0_peak(codec)) == (
        pytest.approx(0.0, abs=0.01)
    )


def test_zero_dbm0_reference_amplitudes() -> None:
    # G.711 §4: T_max = +3.17 dBm0 (mu-law, overload 8159 * 4), +3.14 dBm0 (A-law, 4096 * 8).
    assert zero_dbm0_peak(Codec.PCMU) == pytest.approx(22656.7, abs=0.05)
    assert zero_dbm0_peak(Codec.PCMA) == pytest.approx(22827.1, abs=0.05)
    assert dbm0_to_peak(-20.0) == pytest.approx(zero_dbm0_peak() / 10)


@pytest.mark.parametrize(("country", "kind"), ALL_TONES)
def test_cadence_is_sample_exact_over_several_cycles(country: str, kind: ToneKind) -> None:
    tone = tone_for(country, kind)
    cycle = sum(on + off for on, off in tone.cadence_ms) * SAMPLE_RATE // 1000 or SAMPLE_RATE
    count = -(-(2 * cycle + 1234) // FRAME_SAMPLES)  # > 2 cycles, edges land mid-frame
    samples = frames(ToneGenerator(tone), count).astype(np.float64)
    expected = expected_signal(tone, 0, count * FRAME_SAMPLES, Codec.PCMU)
    gate = expected_gate(tone, 0, count * FRAME_SAMPLES)
    assert np.all(samples[~gate] == 0)
    assert np.max(np.abs(samples - expected)) <= 1.0  # rounding only
    # Each burst is audible over its whole length: no sample-level edge slips.
    edges = np.flatnonzero(np.diff(gate.astype(np.int8))) + 1
    for edge in edges:
        inside = slice(edge, edge + 8) if gate[edge] else slice(edge - 8, edge)
        assert np.any(samples[inside] != 0)


def test_busy_edges_fall_on_exact_samples() -> None:
    tone = tone_for("US", ToneKind.BUSY)  # 500 ms on / 500 ms off = 4000 / 4000 samples
    samples = frames(ToneGenerator(tone), 200)  # 4 s
    for k in range(4):
        on = samples[8000 * k : 8000 * k + 4000]
        off = samples[8000 * k + 4000 : 8000 * (k + 1)]
        assert np.count_nonzero(on) > 3900 and on[-1] != 0 and on[0] == 0  # sin(0) = 0
        assert not off.any()
    assert samples[3999] != 0 and samples[4000] == 0 and samples[8001] != 0


def test_non_repeating_call_waiting_falls_silent_for_good() -> None:
    tone = tone_for("US", ToneKind.CALL_WAITING)  # 440 Hz, 300 ms, then silence
    samples = frames(ToneGenerator(tone), 500)  # 10 s
    assert np.count_nonzero(samples[:2400]) > 2300
    assert not samples[2400:].any()


def test_running_for_ten_minutes_equals_starting_there() -> None:
    # The generator's only state is the sample count, so frame k is the same whether
    # reached by running or by starting at k * 160: nothing accumulates.
    tone = tone_for("GB", ToneKind.CONGESTION)
    running = ToneGenerator(tone)
    count = 30_000  # 10 minutes of 20 ms frames
    for _ in range(count):
        running.next_frame()
    fresh = ToneGenerator(tone, start_sample=count * FRAME_SAMPLES)
    assert running.sample_count == fresh.sample_count == count * FRAME_SAMPLES
    for _ in range(100):
        assert np.array_equal(running.next_frame(), fresh.next_frame())


@pytest.mark.parametrize("hours", [1, 24, 24 * 365])
def test_no_drift_after_hours(hours: int) -> None:
    tone = tone_for("DE", ToneKind.CALL_WAITING)
    start = hours * 3600 * SAMPLE_RATE - 3 * FRAME_SAMPLES // 2  # frames straddle the hour
    samples = frames(ToneGenerator(tone, start_sample=start), 300).astype(np.float64)
    expected = expected_signal(tone, start, 300 * FRAME_SAMPLES, Codec.PCMU)
    assert np.max(np.abs(samples - expected)) <= 1.0


@pytest.mark.parametrize(("country", "kind"), ALL_TONES)
def test_phase_is_continuous_across_frame_boundaries(country: str, kind: ToneKind) -> None:
    tone = tone_for(country, kind)
    samples = frames(ToneGenerator(tone), 100).astype(np.float64)
    gate = expected_gate(tone, 0, len(samples))
    # The largest step a sum of sines can take between samples, plus rounding.
    bound = 1.0 + sum(
        dbm0_to_peak(level) * 2 * math.sin(math.pi * f / SAMPLE_RATE)
        for f, level in zip(tone.frequencies_hz, tone.levels_dbm0, strict=True)
    )
    for boundary in range(FRAME_SAMPLES, len(samples), FRAME_SAMPLES):
        if gate[boundary - 1] and gate[boundary]:
            assert abs(samples[boundary] - samples[boundary - 1]) <= bound


def test_unknown_country_lists_the_known_ones() -> None:
    with pytest.raises(UnknownCountryError) as info:
        tone_for("XX", ToneKind.DIAL)
    message = str(info.value)
    assert "'XX'" in message
    for code in ("DE", "ES", "FR", "GB", "US"):
        assert code in message
    assert isinstance(info.value, ValueError)


def test_country_lookup_is_case_insensitive_and_knows_uk() -> None:
    assert tone_for("uk", ToneKind.BUSY) is tone_for("GB", ToneKind.BUSY)
    assert tone_for(" us ", ToneKind.DIAL).frequencies_hz == (350, 440)


def test_reference_plan_values() -> None:
    # Spot checks of the data against E.180 Supp. 2 / national specifications.
    assert tone_for("US", ToneKind.RINGBACK).cadence_ms == ((2000, 4000),)
    assert tone_for("US", ToneKind.CONGESTION).frequencies_hz == (480, 620)
    assert tone_for("GB", ToneKind.RINGBACK).cadence_ms == ((400, 200), (400, 2000))
    assert tone_for("GB", ToneKind.CONGESTION).cadence_ms == ((400, 350), (225, 525))
    assert tone_for("DE", ToneKind.CALL_WAITING).cadence_ms == ((200, 200), (200, 5000))
    assert tone_for("DE", ToneKind.BUSY).cadence_ms == ((480, 480),)
    assert all(tone_for(c, ToneKind.DIAL).continuous for c in TONE_PLANS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequencies_hz": (), "levels_dbm0": ()}, "1 or 2 frequencies"),
        ({"frequencies_hz": (1, 2, 3), "levels_dbm0": (0.0,) * 3}, "1 or 2 frequencies"),
        ({"frequencies_hz": (400,), "levels_dbm0": ()}, "one level per frequency"),
        ({"frequencies_hz": (4000,), "levels_dbm0": (0.0,)}, "outside"),
        ({"frequencies_hz": (400,), "levels_dbm0": (0.0,), "cadence_ms": ((0, 5),)}, "on > 0"),
    ],
)
def test_tone_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tone(**kwargs)  # type: ignore[arg-type]  # deliberately loose kwargs


def test_generator_rejects_clipping_levels_and_odd_durations() -> None:
    with pytest.raises(ValueError, match="clip"):
        ToneGenerator(Tone((400, 450), (3.0, 3.0)))
    with pytest.raises(ValueError, match="whole number of samples"):
        Tone((400,), (-10.0,), ((1, 1),)).edges(sample_rate=300)
    with pytest.raises(ValueError, match="start_sample"):
        ToneGenerator(Tone((400,), (-10.0,)), start_sample=-1)
