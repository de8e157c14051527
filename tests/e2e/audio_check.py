"""Test signals for the baresip call tests: tone WAVs to send, and a checker for recordings.

Each phone sends its own pure tone (`TONE_A_HZ` for the caller, `TONE_B_HZ` for the
callee), 8 kHz mono 16-bit PCM as baresip 1.0.0's `aufile` source requires. What a
phone heard is read back from its recording and judged by `check_tone`:

* the dominant spectral peak of the non-silent part lies within `max_offset_hz` of the
  expected tone (one FFT over the whole stretch, Hann window, zero-padded to 0.1 Hz
  bins, parabolic interpolation between bins);
* the tone's band holds enough of the energy: `snr_db`, band power over everything
  else (G.711 quantisation alone leaves a sine about 35 dB above its noise);
* enough of it: `tone_seconds` counts 20 ms frames above `silence_dbfs` whose energy
  sits mostly (`FRAME_TONE_SHARE`) in the expected tone's band;
* and any `absent_hz` tone (the phone's own) stays `max_absent_db` below the expected
  one, so a loop-back or a crossed stream fails.

numpy and the stdlib `wave` module only: the checker does not trust the PBX's DSP code.
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

SAMPLE_RATE: Final = 8000  # Hz, G.711's rate: aufile in baresip 1.0.0 will not resample
TONE_A_HZ: Final = 1000.0  # the caller's tone
TONE_B_HZ: Final = 1600.0  # the callee's tone: far from 1000 Hz and from its harmonics
TONE_AMPLITUDE: Final = 0.3  # of full scale, about -13 dBFS: no G.711 clipping
FRAME: Final = 160  # samples, 20 ms: one RTP packet's worth
FRAME_TONE_SHARE: Final = 0.5  # of a frame's energy in the tone's band for it to count
BAND_HZ: Final = 30.0  # half-width of a tone's band: a Hann main lobe on 20 ms frames
FFT_RESOLUTION_HZ: Final = 0.1  # zero-padding target for the whole-signal peak

Samples = npt.NDArray[np.int16]


def tone(
    hz: float,
    seconds: float,
    rate: int = SAMPLE_RATE,
    amplitude: float = TONE_AMPLITUDE,
) -> Samples:
    """A pure sine of `hz`, `seconds` long, as int16 samples."""
    t = np.arange(round(seconds * rate)) / rate
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def write_wav(path: Path, samples: Samples, rate: int = SAMPLE_RATE) -> Path:
    """Mono 16-bit little-endian PCM, the only input format aufile 1.0.0 accepts."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def write_tone_wav(path: Path, hz: float, seconds: float, rate: int = SAMPLE_RATE) -> Path:
    return write_wav(path, tone(hz, seconds, rate), rate)


def read_wav(path: Path) -> tuple[Samples, int]:
    """Samples and rate of a mono 16-bit PCM WAV, also one still being written.

    libsndfile (baresip's sndfile module) fills in the RIFF and data sizes only when it
    closes the file, so while a call is up the header may say 0 bytes: everything after
    the data chunk's header is read instead, cut to whole samples.
    """
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    rate = channels = bits = None
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", raw, body)
            if fmt != 1 or channels != 1 or bits != 16:
                raise ValueError(f"{path}: want PCM mono 16-bit, got {fmt=} {channels=} {bits=}")
        elif chunk == b"data":
            if rate is None:
                raise ValueError(f"{path}: data chunk before fmt chunk")
            end = len(raw) if size == 0 or body + size > len(raw) else body + size
            end -= (end - body) % 2
            return np.frombuffer(raw[body:end], dtype="<i2").astype(np.int16), rate
        pos = body + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def _band_power(
    freqs: npt.NDArray[np.floating[Any]], power: npt.NDArray[np.floating[Any]], hz: float
) -> float:
    return float(power[np.abs(freqs - hz) <= BAND_HZ].sum())


def _db(ratio: float) -> float:
    return float(10 * np.log10(max(ratio, 1e-30)))


@dataclass(frozen=True, slots=True)
class ToneCheck:
    """What `check_tone` measured, and which bounds it broke (`problems`)."""

    expected_hz: float
    peak_hz: float | None
    snr_db: float
    tone_seconds: float
    total_seconds: float
    absent_db: tuple[tuple[float, float], ...]  # (hz, level relative to the expected tone)
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        peak = "none" if self.peak_hz is None else f"{self.peak_hz:.1f} Hz"
        absent = ", ".join(f"{hz:.0f} Hz at {db:.1f} dB" for hz, db in self.absent_db)
        return (
            f"expected {self.expected_hz:.0f} Hz: peak {peak}, SNR {self.snr_db:.1f} dB, "
            f"tone in {self.tone_seconds:.2f} of {self.total_seconds:.2f} s"
            + (f"; others: {absent}" if absent else "")
            + (f"; problems: {'; '.join(self.problems)}" if self.problems else "")
        )


def check_tone(
    samples: Samples,
    expected_hz: float,
    *,
    rate: int = SAMPLE_RATE,
    absent_hz: Sequence[float] = (),
    min_seconds: float = 1.0,
    max_offset_hz: float = 5.0,
    min_snr_db: float = 20.0,
    max_absent_db: float = -30.0,
    silence_dbfs: float = -45.0,
) -> ToneCheck:
    """Judges whether `samples` carry the tone `expected_hz` and none of `absent_hz`."""
    x = samples.astype(np.float64) / 32768.0
    total_seconds = len(x) / rate
    n_frames = len(x) // FRAME
    frames = x[: n_frames * FRAME].reshape(n_frames, FRAME)
    window = np.hanning(FRAME)
    frame_freqs = np.fft.rfftfreq(FRAME, 1 / rate)
    frame_power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    frame_total = frame_power.sum(axis=1)
    rms_dbfs = 10 * np.log10(np.maximum((frames**2).mean(axis=1), 1e-30)) + 3.01  # sine: 0 dBFS
    loud = rms_dbfs > silence_dbfs
    in_band = np.abs(frame_freqs - expected_hz) <= BAND_HZ
    share = frame_power[:, in_band].sum(axis=1) / np.maximum(frame_total, 1e-30)
    tone_seconds = float(np.count_nonzero(loud & (share >= FRAME_TONE_SHARE))) * FRAME / rate

    problems: list[str] = []
    peak_hz: float | None = None
    snr_db = float("-inf")
    absent: list[tuple[float, float]] = []
    active = frames[loud].reshape(-1)
    if len(active) < FRAME:
        problems.append("no sound above the silence bound")
    else:
        n_fft = max(len(active), int(2 ** np.ceil(np.log2(rate / FFT_RESOLUTION_HZ))))
        power = np.abs(np.fft.rfft(active * np.hanning(len(active)), n=n_fft)) ** 2
        freqs = np.fft.rfftfreq(n_fft, 1 / rate)
        k = int(np.argmax(power[1:])) + 1  # skip DC
        if 0 < k < len(power) - 1:  # parabolic interpolation on log power
            a, b, c = np.log(power[k - 1 : k + 2] + 1e-30)
            k_frac = k + 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else float(k)
        else:
            k_frac = float(k)
        peak_hz = float(k_frac * rate / n_fft)
        wanted = _band_power(freqs, power, expected_hz)
        snr_db = _db(wanted / max(float(power.sum()) - wanted, 1e-30))
        for hz in absent_hz:
            absent.append((hz, _db(_band_power(freqs, power, hz) / max(wanted, 1e-30))))
        if abs(peak_hz - expected_hz) > max_offset_hz:
            problems.append(f"dominant peak {peak_hz:.1f} Hz is not within {max_offset_hz} Hz")
        if snr_db < min_snr_db:
            problems.append(f"SNR {snr_db:.1f} dB below {min_snr_db} dB")
        for hz, db in absent:
            if db > max_absent_db:
                problems.append(f"{hz:.0f} Hz present at {db:.1f} dB (bound {max_absent_db} dB)")
    if tone_seconds < min_seconds:
        problems.append(f"tone in {tone_seconds:.2f} s, below {min_seconds} s")
    return ToneCheck(
        expected_hz=expected_hz,
        peak_hz=peak_hz,
        snr_db=snr_db,
        tone_seconds=tone_seconds,
        total_seconds=total_seconds,
        absent_db=tuple(absent),
        problems=tuple(problems),
    )


def check_wav(
    path: Path, expected_hz: float, *, absent_hz: Sequence[float] = (), min_seconds: float = 1.0
) -> ToneCheck:
    """`check_tone` with the default bounds on a WAV file (finished or still being written)."""
    samples, rate = read_wav(path)
    return check_tone(samples, expected_hz, rate=rate, absent_hz=absent_hz, min_seconds=min_seconds)
