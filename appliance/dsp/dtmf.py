"""In-band DTMF detection: ITU-T Q.23 frequencies, receiver limits after ITU-T Q.24.

For legs that send neither RFC 4733 telephone-events nor SIP INFO, a sans-IO
:class:`DtmfDetector` is fed 8 kHz ``int16`` frames (normally 160 samples, 20 ms)
with ``now``, the time of the frame's first sample, and returns one
:class:`DigitStarted` per key press when the digit is confirmed and one
:class:`DigitEnded` when it is released.

Analysis. Samples are cut into 40-sample (5 ms) sub-blocks. One matrix multiply
per frame gives each sub-block's DFT at the 8 Q.23 frequencies and at their
second harmonics, phase-referenced to the absolute sample index (all 16
frequencies are whole hertz, so the reference repeats every 8,000 samples). A
window is the last four sub-blocks (160 samples, 20 ms, 50 Hz resolution) and
one window is judged every 5 ms. Per window and tone:

* raw energy: the coherent sum of the four sub-block DFTs (a 160-point Goertzel);
* frequency offset: the phase advance between the first and the last three
  sub-blocks, which measures the tone's frequency to well under 1 % in 20 ms;
* corrected energy: the four sub-block DFTs summed after removing that phase
  advance, so a tone 1.5 % off still counts at (nearly) its full energy.

A window holds a digit when all of these hold (thresholds are between what Q.24
and the Bellcore / ETSI ES 201 235-3 receiver specifications say must be accepted
and what must be rejected):

* each group's strongest tone (raw energy) is at least 8 dB above the others in
  its group;
* both tones are at least -40 dBm0 (accept from -36 dBm0);
* both measured frequencies are within 2.5 % of nominal (Q.24: operate within
  +-1.5 %, do not operate beyond +-3.5 %);
* twist: the row (low) tone at most 9 dB above the column tone ("normal" twist,
  8 dB must be accepted) and the column tone at most 5 dB above the row tone
  ("reverse" twist, 4 dB must be accepted);
* purity: the two tones carry at least 80 % of the window's energy. This is the
  signal-to-noise test and, because a tone filling a fraction c of the window
  scores about c, also what makes window timing sharp;
* second harmonics (speech): the row tone at least 4 dB above its second
  harmonic (lenient, because the column tone's sidelobes reach 1394-1882 Hz) and
  the column tone at least 10 dB above its second harmonic.

Timing (Q.24 / Bellcore: operate on >= 40 ms, never on <= 23 ms; a pause of
>= 40 ms separates digits; an interruption of <= 10 ms must not): a digit is
confirmed after 4 consecutive windows hold it, which needs about 27-32 ms of tone
(so 40 ms always passes, 23 ms never does), and released after 8 consecutive
windows that do not, which bridges gaps up to about 22 ms and splits on 28 ms or more.
Reported start and duration are accurate to about +-5 ms.

Levels: 0 dBm0 here is a sine of peak :data:`DBM0_PEAK`, from G.711's mu-law
overload point of +3.17 dBm0 at 8159 (14-bit), i.e. 32636 on our 16-bit scale.
This is a local constant on purpose (``appliance.dsp.tones`` keeps its own);
the two must agree to a fraction of a dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.g711 import Codec
from appliance.dsp.tones import dbm0_to_peak

RATE: Final = 8000
ROWS: Final = (697.0, 770.0, 852.0, 941.0)  # ITU-T Q.23 low group
COLS: Final = (1209.0, 1336.0, 1477.0, 1633.0)  # ITU-T Q.23 high group
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")  # KEYPAD[row][col]

DBM0_PEAK: Final = 8159 * 4 * 10 ** (-3.17 / 20)  # ~22 657: G.711 mu-law overload +3.17 dBm0

BLOCK: Final = 40  # samples per sub-block: one window judgement every 5 ms
BLOCKS_PER_WINDOW: Final = 4
WINDOW: Final = BLOCK * BLOCKS_PER_WINDOW  # 160 samples, 20 ms


@dataclass(frozen=True, slots=True)
class DtmfLimits:
    """Receiver thresholds; defaults per the module docstring (Q.24 and Bellcore)."""

    min_level_dbm0: float = -40.0  # per tone; Q.24 range reaches down to about -36 dBm0
    max_offset: float = 0.025  # relative; Q.24: operate +-1.5 %, not operate +-3.5 %
    normal_twist_db: float = 9.0  # row above column; 8 dB must be accepted
    reverse_twist_db: float = 5.0  # column above row; 4 dB must be accepted
    relative_peak_db: float = 8.0  # best tone over the others in its group
    purity: float = 0.8  # share of window energy in the two tones
    row_harmonic_db: float = 4.0  # row tone over its second harmonic
    col_harmonic_db: float = 10.0  # column tone over its second harmonic
    confirm_windows: int = 4  # 4 windows at 5 ms: ~27-32 ms of tone to confirm
    release_windows: int = 8  # 8 windows at 5 ms: gaps of <= ~20 ms are bridged


@dataclass(frozen=True, slots=True)
class DigitStarted:
    """A key press confirmed: ``start`` is when the tone began, ``level`` its
    total power in dBm0 (both tones), as RFC 4733 §2.3.4 volume wants it."""

    digit: str
    start: float
    level: float


@dataclass(frozen=True, slots=True)
class DigitEnded:
    """The key press that began at ``start`` was released after ``duration`` s."""

    digit: str
    start: float
    duration: float


DtmfEvent = DigitStarted | DigitEnded


@dataclass(frozen=True, slots=True)
class _Hit:
    """One window's verdict: the digit held and its level (dBm0, both tones)."""

    digit: str
    level: float


_FREQS: Final = np.array(ROWS + COLS + tuple(2 * f for f in ROWS + COLS))
_OMEGA: Final = 2 * np.pi * _FREQS / RATE
# Sub-block DFT basis: _BASIS[i, k] = exp(-j omega_k i).
_BASIS: Final = np.exp(-1j * np.outer(np.arange(BLOCK), _OMEGA))
# A tone of amplitude a has window energy a**2 * WINDOW / 2; 0 dBm0 as that energy.
_DBM0_ENERGY: Final = DBM0_PEAK**2 * WINDOW / 2


def _db(ratio: float) -> float:
    return 10 ** (ratio / 10)


class DtmfDetector:
    """Sans-IO in-band DTMF receiver for one 8 kHz stream.

    Feed consecutive frames; a gap in the stream should be fed as silence (or a
    new detector used), since samples are taken to be contiguous.
    """

    def __init__(self, limits: DtmfLimits | None = None) -> None:
        self.limits = limits or DtmfLimits()
        lim = self.limits
        self._min_energy = _DBM0_ENERGY * 10 ** (lim.min_level_dbm0 / 10)
        self._pending = np.zeros(0, dtype=np.float64)
        self._pending_time = 0.0
        self._sample = 0  # absolute index of the next sub-block's first sample, mod RATE
        self._q_hist = np.zeros((BLOCKS_PER_WINDOW - 1, _FREQS.size), dtype=np.complex128)
        self._e_hist = np.zeros(BLOCKS_PER_WINDOW - 1)
        self._t_hist = [0.0] * (BLOCKS_PER_WINDOW - 1)
        # Debounce state: the candidate run and the confirmed digit.
        self._candidate: str | None = None
        self._run = 0
        self._run_start = 0.0
        self._digit: str | None = None
        self._digit_start = 0.0
        self._last_seen_end = 0.0
        self._misses = 0
        # Window edge correction: a window holds the tone once it is ~purity full.
        self._edge = ((1 - lim.purity) * WINDOW - BLOCK / 2) / RATE

    @property
    def digit(self) -> str | None:
        """The digit currently held down, if one has been confirmed."""
        return self._digit

    def feed(self, frame: npt.NDArray[np.int16], now: float) -> list[DtmfEvent]:
        """Analyse one frame whose first sample is at ``now``; return events."""
        samples = np.asarray(frame, dtype=np.float64)
        if samples.ndim != 1:
            raise ValueError(f"frame must be one-dimensional, not shape {samples.shape}")
        if self._pending.size == 0:
            self._pending_time = now
        data = np.concatenate((self._pending, samples))
        count = data.size // BLOCK
        used = count * BLOCK
        self._pending = data[used:]
        start_time = self._pending_time
        self._pending_time = start_time + used / RATE
        if count == 0:
            return []
        blocks = data[:used].reshape(count, BLOCK)
        first = self._sample + BLOCK * np.arange(count)
        self._sample = (self._sample + used) % RATE
        q_new = (blocks @ _BASIS) * np.exp(-1j * np.outer(first % RATE, _OMEGA))
        e_new = np.einsum("ij,ij->i", blocks, blocks)
        t_new = [start_time + b * BLOCK / RATE for b in range(count)]
        q_all = np.concatenate((self._q_hist, q_new))
        e_all = np.concatenate((self._e_hist, e_new))
        t_all = self._t_hist + t_new
        keep = BLOCKS_PER_WINDOW - 1
        self._q_hist, self._e_hist, self._t_hist = q_all[-keep:], e_all[-keep:], t_all[-keep:]
        hits = self._judge(q_all, e_all, count)
        events: list[DtmfEvent] = []
        for w in range(count):
            events.extend(self._step(hits[w], t_all[w]))
        return events

    def _judge(
        self, q: npt.NDArray[np.complex128], e: npt.NDArray[np.float64], count: int
    ) -> list[_Hit | None]:
        """Which digit each of the ``count`` windows holds (None for none)."""
        lim = self.limits
        # parts[w, k, b]: sub-block b of window w at frequency k.
        parts = np.stack([q[b : b + count] for b in range(BLOCKS_PER_WINDOW)], axis=-1)
        energy = np.stack([e[b : b + count] for b in range(BLOCKS_PER_WINDOW)]).sum(axis=0)
        whole = parts.sum(axis=-1)
        first = whole - parts[..., -1]
        last = whole - parts[..., 0]
        raw = 2 * np.abs(whole) ** 2 / WINDOW
        advance = np.angle(last * np.conj(first))  # radians per sub-block
        offset = advance / BLOCK / _OMEGA  # relative frequency offset
        steps = np.arange(BLOCKS_PER_WINDOW)
        corrected = (parts * np.exp(-1j * np.multiply.outer(advance, steps))).sum(axis=-1)
        tone = 2 * np.abs(corrected) ** 2 / WINDOW
        return [
            self._window_digit(raw[w], tone[w], offset[w], float(energy[w]), lim)
            for w in range(count)
        ]

    def _window_digit(
        self,
        raw: npt.NDArray[np.float64],
        tone: npt.NDArray[np.float64],
        offset: npt.NDArray[np.float64],
        energy: float,
        lim: DtmfLimits,
    ) -> _Hit | None:
        row = int(np.argmax(raw[0:4]))
        col = int(np.argmax(raw[4:8]))
        r, c = row, 4 + col
        p_row, p_col = float(tone[r]), float(tone[c])
        if p_row < self._min_energy or p_col < self._min_energy:
            return None
        peak = _db(lim.relative_peak_db)
        if any(raw[k] * peak > raw[r] for k in range(4) if k != r):
            return None
        if any(raw[k] * peak > raw[c] for k in range(4, 8) if k != c):
            return None
        if abs(offset[r]) > lim.max_offset or abs(offset[c]) > lim.max_offset:
            return None
        if p_row > p_col * _db(lim.normal_twist_db) or p_col > p_row * _db(lim.reverse_twist_db):
            return None
        if p_row + p_col < lim.purity * energy:
            return None
        if raw[8 + r] * _db(lim.row_harmonic_db) > p_row:
            return None
        if raw[8 + c] * _db(lim.col_harmonic_db) > p_col:
            return None
        level = 10 * math.log10((p_row + p_col) / _DBM0_ENERGY)
        return _Hit(KEYPAD[row][col], level)

    def _step(self, hit: _Hit | None, start: float) -> list[DtmfEvent]:
        """Debounce one window judgement; ``start`` is the window's first sample."""
        lim = self.limits
        end = start + WINDOW / RATE
        events: list[DtmfEvent] = []
        seen = hit.digit if hit else None
        if seen is not None and seen == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run, self._run_start = seen, int(hit is not None), start
        if self._digit is not None:
            if seen == self._digit:
                self._misses = 0
                self._last_seen_end = end
            else:
                self._misses += 1
                if self._misses >= lim.release_windows:
                    began = self._digit_start
                    finished = self._last_seen_end - self._edge
                    events.append(DigitEnded(self._digit, began, max(0.0, finished - began)))
                    self._digit = None
        if self._digit is None and self._candidate is not None and self._run >= lim.confirm_windows:
            self._digit = self._candidate
            self._digit_start = self._run_start + self._edge
            self._last_seen_end = end
            self._misses = 0
            events.append(DigitStarted(self._digit, self._digit_start, hit.level if hit else 0.0))
        return events


DTMF_LOW_DBM0: Final = -7.0
DTMF_HIGH_DBM0: Final = -5.0  # ES 201 235-2: high group 2 dB above the low group


def dtmf_symbol(
    key: str, tone_samples: int, gap_samples: int, codec: Codec = Codec.PCMU
) -> npt.NDArray[np.int16]:
    """One key as audio: its two tones for ``tone_samples``, then ``gap_samples`` of
    silence (for dialling out on a line and for DTMF caller ID)."""
    row = next((r for r, keys in enumerate(KEYPAD) if key in keys), None)
    if row is None:
        raise ValueError(f"{key!r} is not a DTMF key")
    col = KEYPAD[row].index(key)
    n = np.arange(tone_samples)
    low = dbm0_to_peak(DTMF_LOW_DBM0, codec) * np.sin(2 * np.pi * ROWS[row] * n / RATE)
    high = dbm0_to_peak(DTMF_HIGH_DBM0, codec) * np.sin(2 * np.pi * COLS[col] * n / RATE)
    signal = np.concatenate((low + high, np.zeros(gap_samples)))
    return np.rint(signal).astype(np.int16)
