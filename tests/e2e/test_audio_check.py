"""Self-tests of audio_check.py, the judge of what the baresip phones heard: no processes.

A checker that passes everything would make every call test green, so each bound is
shown to fail on a signal built to break it, and to pass on a tone that went through
G.711 as it does on a call.
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from audio_check import (
    SAMPLE_RATE,
    TONE_A_HZ,
    TONE_B_HZ,
    check_tone,
    check_wav,
    read_wav,
    tone,
    write_tone_wav,
    write_wav,
)

from appliance.dsp.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw

Samples = np.ndarray


def silence(seconds: float) -> Samples:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def test_a_clean_tone_passes_with_its_peak_on_frequency() -> None:
    result = check_tone(tone(TONE_A_HZ, 2.0), TONE_A_HZ, absent_hz=[TONE_B_HZ])

    assert result.ok, result.describe()
    assert result.peak_hz == pytest.approx(TONE_A_HZ, abs=0.5)
    assert result.tone_seconds == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("encode", "decode"), [(encode_ulaw, decode_ulaw), (encode_alaw, decode_alaw)]
)
def test_a_tone_through_g711_still_passes(
    encode: Callable[[Samples], bytes], decode: Callable[[bytes], Samples]
) -> None:
    heard = decode(encode(tone(TONE_B_HZ, 2.0)))

    result = check_tone(heard, TONE_B_HZ, absent_hz=[TONE_A_HZ])

    assert result.ok, result.describe()
    assert result.snr_db > 30


def test_the_other_tone_is_not_taken_for_the_expected_one() -> None:
    result = check_tone(tone(TONE_B_HZ, 2.0), TONE_A_HZ)

    assert not result.ok
    assert any("dominant peak" in p for p in result.problems), result.describe()


def test_own_tone_leaking_in_at_minus_20_db_fails_the_absence_bound() -> None:
    wanted = tone(TONE_B_HZ, 2.0).astype(np.int32)
    leak = tone(TONE_A_HZ, 2.0, amplitude=0.03).astype(np.int32)  # 20 dB down

    result = check_tone((wanted + leak).astype(np.int16), TONE_B_HZ, absent_hz=[TONE_A_HZ])

    assert not result.ok
    assert result.absent_db[0][1] == pytest.approx(-20, abs=1), result.describe()
    assert any("present" in p for p in result.problems)


def test_own_tone_leaking_at_minus_40_db_is_tolerated() -> None:
    wanted = tone(TONE_B_HZ, 2.0).astype(np.int32)
    leak = tone(TONE_A_HZ, 2.0, amplitude=0.003).astype(np.int32)

    result = check_tone((wanted + leak).astype(np.int16), TONE_B_HZ, absent_hz=[TONE_A_HZ])

    assert result.ok, result.describe()


def test_silence_fails() -> None:
    result = check_tone(silence(2.0), TONE_A_HZ)

    assert not result.ok
    assert result.peak_hz is None
    assert "no sound above the silence bound" in result.problems


def test_noise_fails_on_snr_and_duration() -> None:
    noise = np.random.default_rng(7).normal(0, 3000, 2 * SAMPLE_RATE).astype(np.int16)

    result = check_tone(noise, TONE_A_HZ)

    assert not result.ok
    assert result.snr_db < 0
    assert result.tone_seconds < 0.5, result.describe()


def test_a_tone_in_noise_at_10_db_snr_fails_the_20_db_bound() -> None:
    signal = tone(TONE_A_HZ, 2.0).astype(np.float64)
    noise = np.random.default_rng(7).normal(0, signal.std() / np.sqrt(10), signal.size)

    result = check_tone((signal + noise).astype(np.int16), TONE_A_HZ)

    assert result.snr_db == pytest.approx(10, abs=1.5), result.describe()
    assert any("SNR" in p for p in result.problems)


def test_a_tone_10_hz_off_fails_the_peak_bound() -> None:
    result = check_tone(tone(TONE_A_HZ + 10, 2.0), TONE_A_HZ)

    assert result.peak_hz == pytest.approx(TONE_A_HZ + 10, abs=0.5)
    assert [p for p in result.problems if "dominant peak" in p], result.describe()


def test_too_little_tone_fails_the_duration_bound() -> None:
    samples = np.concatenate([silence(1.5), tone(TONE_A_HZ, 0.5)])

    result = check_tone(samples, TONE_A_HZ, min_seconds=1.0)

    assert result.tone_seconds == pytest.approx(0.5, abs=0.02)
    assert result.total_seconds == pytest.approx(2.0)
    assert result.problems == ("tone in 0.50 s, below 1.0 s",)


def test_only_the_frames_with_the_tone_count() -> None:
    bursts = np.concatenate([tone(TONE_A_HZ, 0.5), silence(0.5), tone(TONE_A_HZ, 0.7)])

    result = check_tone(bursts, TONE_A_HZ)

    assert result.ok, result.describe()
    assert result.tone_seconds == pytest.approx(1.2, abs=0.04)


def test_wav_round_trip(tmp_path: Path) -> None:
    samples = tone(TONE_B_HZ, 0.3)

    read, rate = read_wav(write_wav(tmp_path / "t.wav", samples))

    assert rate == SAMPLE_RATE
    assert np.array_equal(read, samples)


def test_a_wav_still_being_written_is_read_to_its_end(tmp_path: Path) -> None:
    """libsndfile leaves the RIFF and data sizes at 0 until it closes the file."""
    path = write_tone_wav(tmp_path / "open.wav", TONE_A_HZ, 2.0)
    raw = bytearray(path.read_bytes())
    data = raw.index(b"data")
    struct.pack_into("<I", raw, 4, 0)
    struct.pack_into("<I", raw, data + 4, 0)
    path.write_bytes(bytes(raw) + b"\x01")  # and a half-written sample

    samples, _ = read_wav(path)

    assert len(samples) == 2 * SAMPLE_RATE
    assert check_wav(path, TONE_A_HZ).ok


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not a wav file at all", "not a RIFF/WAVE file"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no data chunk"),
    ],
)
def test_what_is_not_a_mono_16_bit_wav_is_refused(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(raw)

    with pytest.raises(ValueError, match=message):
        read_wav(path)


def test_a_stereo_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\x00" * 640)

    with pytest.raises(ValueError, match="want PCM mono 16-bit"):
        read_wav(path)
