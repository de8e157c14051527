"""Caller ID FSK modem: Bell 202 (GR-30) and ITU-T V.23 (EN 300 659-1/-2), 8 kHz int16.

Transmit (:func:`fsk_modulate`). A burst is the channel seizure (alternating 0
and 1 bits, starting with 0; 300 bits in both GR-30 §3 and EN 300 659-2), the
mark signal (all 1 bits: GR-30 180 bits; EN 300 659-2 80 +- 25 bits after a
ring or alerting signal), then each byte as a start bit 0, eight data bits
least significant first and a stop bit 1. Bits are 1/1200 s long, so bit edges
fall between samples; the phase is the exact integral of the bit frequency at
each sampling instant, which keeps it continuous (GR-30: "phase-coherent FSK").
The level defaults to -13 dBm0 (GR-30 sends -13.5 dBm +- 1 dB; EN 300 659-1
about -13.5 dBm), with 0 dBm0 as in :mod:`appliance.dsp.tones`.

Receive (:class:`FskDemodulator`, batch :func:`fsk_demodulate`). Both standards
centre their tones on 1700 Hz (1200/2200 and 1300/2100), so:

1. the input is mixed down by 1700 Hz to complex baseband, where mark sits at
   -500 or -400 Hz and space at +500 or +400 Hz;
2. a 21-tap low-pass (Hamming-windowed sinc, 700 Hz: -6 dB there, so the
   tones at +-400/500 Hz pass and the mixing image and most noise do not);
3. a quadrature discriminator: z[n] times conj(z[n-1]), averaged over 4 samples
   (0.6 bit) before taking the angle, so strong samples outweigh weak noisy ones
   and the result does not depend on level; the angle is the frequency;
4. carrier detect is the same 4-sample average of |z|^2 against a floor
   (-48 dBm0 by default);
5. a burst is recognised by at least ``min_mark_bits`` of steady mark (the
   seizure alone never has two 1s in a row); the decision threshold is the mean
   frequency over the seizure just before, when one is there, which cancels a
   transmitter's frequency offset, and 0 Hz otherwise;
6. bytes are framed as a UART does: the mark-to-space crossing of each start bit
   (interpolated between samples) sets that byte's timing, each bit is read at
   its centre, the start bit must still be space there and the stop bit mark.

The modem also knows the data-link framing (type, length, body, checksum) that
GR-30 and EN 300 659-3 share, so it ends a burst when the announced length has
arrived; a framing error, carrier loss or a long pause ends it early and the
truncated bytes are handed on for the message layer to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.callerid_message import CallerId, CallerIdError, decode_message
from appliance.dsp.g711 import Codec
from appliance.dsp.tones import SAMPLE_RATE, dbm0_to_peak

BAUD: Final = 1200  # both Bell 202 and V.23 forward channel
CENTRE_HZ: Final = 1700  # midway between mark and space in both standards
DEFAULT_LEVEL_DBM0: Final = -13.0
_SAMPLES_PER_BIT: Final = SAMPLE_RATE / BAUD  # 6.67: bit edges fall between samples
_TAPS: Final = 21
_AVERAGE: Final = 4
_CUTOFF_HZ: Final = 700


class FskStandard(Enum):
    """The two FSK caller ID modems."""

    BELL202 = "bell202"  # GR-30 (North America)
    V23 = "v23"  # ETSI EN 300 659-1 / ITU-T V.23 forward channel


@dataclass(frozen=True, slots=True)
class FskParams:
    """Tones and preamble of one standard."""

    mark_hz: int
    space_hz: int
    seizure_bits: int
    mark_bits: int

    @property
    def deviation_hz(self) -> float:
        """Half the mark-space spacing: each tone's distance from 1700 Hz."""
        return (self.space_hz - self.mark_hz) / 2


FSK_PARAMS: Final = MappingProxyType(
    {
        FskStandard.BELL202: FskParams(
            mark_hz=1200, space_hz=2200, seizure_bits=300, mark_bits=180
        ),
        FskStandard.V23: FskParams(mark_hz=1300, space_hz=2100, seizure_bits=300, mark_bits=80),
    }
)


def _bits(data: bytes, seizure: int, mark: int) -> npt.NDArray[np.int8]:
    bits = [i % 2 for i in range(seizure)] + [1] * mark
    for byte in data:
        bits.append(0)
        bits.extend((byte >> k) & 1 for k in range(8))
        bits.append(1)
    return np.array(bits, dtype=np.int8)


def fsk_modulate(
    data: bytes,
    standard: FskStandard,
    *,
    level_dbm0: float = DEFAULT_LEVEL_DBM0,
    seizure_bits: int | None = None,
    mark_bits: int | None = None,
    codec: Codec = Codec.PCMU,
) -> npt.NDArray[np.int16]:
    """The burst carrying ``data``: seizure, mark, then the bytes UART-framed.

    ``seizure_bits`` and ``mark_bits`` default to the standard's; pass 0 seizure
    bits for EN 300 659-2 transmissions during a call, which start with the mark.
    """
    params = FSK_PARAMS[standard]
    seizure = params.seizure_bits if seizure_bits is None else seizure_bits
    mark = params.mark_bits if mark_bits is None else mark_bits
    if seizure < 0 or mark < 0:
        raise ValueError("seizure_bits and mark_bits must be >= 0")
    amplitude = dbm0_to_peak(level_dbm0, codec)
    if amplitude > 32767:
        raise ValueError(f"level {level_dbm0} dBm0 would clip")
    bits = _bits(data, seizure, mark)
    freqs = np.where(bits == 1, params.mark_hz, params.space_hz).astype(np.float64)
    # Phase in cycles at each bit's start, then linear within the bit; all in
    # exact integer sample arithmetic: sample n lies in bit (n * BAUD) // RATE.
    start_cycles = np.concatenate(([0.0], np.cumsum(freqs) / BAUD))
    count = -(-len(bits) * SAMPLE_RATE // BAUD)  # ceil: the last bit is whole
    n = np.arange(count, dtype=np.int64)
    bit = n * BAUD // SAMPLE_RATE
    into_bit = (n * BAUD - bit * SAMPLE_RATE) / (BAUD * SAMPLE_RATE)  # seconds
    cycles = start_cycles[bit] + freqs[bit] * into_bit
    # Sine from 0 phase so the burst starts at a zero crossing, not with a click.
    wave = amplitude * np.sin(2 * np.pi * np.mod(cycles, 1.0))
    return np.rint(wave).astype(np.int16)


@dataclass(frozen=True, slots=True)
class FskLimits:
    """Receiver settings; defaults per the module docstring."""

    min_level_dbm0: float = -48.0  # carrier detect floor
    min_mark_bits: int = 25  # steady mark that opens a burst (ETSI sends >= 55)
    max_gap_bits: int = 20  # mark between bytes before the burst is given up
    mark_tolerance: float = 0.6  # of the deviation, around the nominal mark, while hunting


class _Phase(Enum):
    HUNT = "hunt"  # no burst: looking for steady mark
    FRAME = "frame"  # in a burst: looking for the next start bit


_LOWPASS: Final = np.hamming(_TAPS) * np.sinc(
    2 * _CUTOFF_HZ / SAMPLE_RATE * (np.arange(_TAPS) - (_TAPS - 1) / 2)
)
_LOWPASS_TAPS: Final = _LOWPASS / _LOWPASS.sum()
# exp(-j 2 pi 1700 n / 8000) repeats every 80 samples (1700/8000 = 17/80).
_MIXER: Final = np.exp(-2j * np.pi * CENTRE_HZ * np.arange(80) / SAMPLE_RATE)


class FskDemodulator:
    """Sans-IO FSK burst receiver: feed samples, get whole (or cut-off) bursts.

    Samples are taken to be contiguous; feed silence for a gap in the stream.
    """

    def __init__(self, standard: FskStandard, limits: FskLimits | None = None) -> None:
        self.standard = standard
        self.limits = limits or FskLimits()
        self.params = FSK_PARAMS[standard]
        lim = self.limits
        # |z|^2 of a tone of peak A is A^2 / 4 after mixing down, times the
        # low-pass power gain at the tone (both tones sit at the same distance).
        dev = self.params.deviation_hz
        gain = abs(
            np.sum(_LOWPASS_TAPS * np.exp(-2j * np.pi * dev / SAMPLE_RATE * np.arange(_TAPS)))
        )
        self._floor = (dbm0_to_peak(lim.min_level_dbm0) * gain) ** 2 / 4
        self._min_run = int(np.ceil(lim.min_mark_bits * _SAMPLES_PER_BIT))
        self._seizure_window = int(40 * _SAMPLES_PER_BIT)
        self._mark_offset = -self.params.deviation_hz  # mark lies below 1700 Hz
        # Front-end state: input sample count (mixer phase) and filter tails.
        self._count = 0
        self._mixed_tail = np.zeros(_TAPS - 1, dtype=np.complex128)
        self._z_last = 0j
        self._product_tail = np.zeros(_AVERAGE - 1, dtype=np.complex128)
        self._power_tail = np.zeros(_AVERAGE - 1, dtype=np.float64)
        # Discriminator output buffered from absolute index self._base onwards.
        self._freq = np.zeros(0, dtype=np.float64)
        self._carrier = np.zeros(0, dtype=np.bool_)
        self._base = 0
        self._pos = 0  # absolute index of the next sample to examine
        self._phase = _Phase.HUNT
        self._run = 0  # good samples in a row before self._pos, while hunting
        self._threshold = 0.0
        self._bytes = bytearray()
        self._deadline: float | None = None

    def reset(self) -> None:
        """Forget any burst in progress (the front end keeps running)."""
        self._pos = self._base + len(self._freq)
        self._end_burst()

    def feed(self, samples: npt.NDArray[np.int16]) -> list[bytes]:
        """Take the next samples; return the bursts that ended within them."""
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"samples must be one-dimensional, not shape {x.shape}")
        if x.size == 0:
            return []
        freq, carrier = self._front_end(x)
        self._freq = np.concatenate((self._freq, freq))
        self._carrier = np.concatenate((self._carrier, carrier))
        bursts = self._run_machine()
        self._trim()
        return bursts

    def _front_end(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        phase = (self._count + np.arange(x.size)) % _MIXER.size
        self._count = (self._count + x.size) % _MIXER.size
        mixed = np.concatenate((self._mixed_tail, x * _MIXER[phase]))
        self._mixed_tail = mixed[-(_TAPS - 1) :]
        z = np.convolve(mixed, _LOWPASS_TAPS, mode="valid")
        previous = np.concatenate(([self._z_last], z[:-1]))
        self._z_last = complex(z[-1])
        product = np.concatenate((self._product_tail, z * np.conj(previous)))
        power = np.concatenate((self._power_tail, np.abs(z) ** 2))
        self._product_tail = product[-(_AVERAGE - 1) :]
        self._power_tail = power[-(_AVERAGE - 1) :]
        box = np.ones(_AVERAGE)
        freq = np.angle(np.convolve(product, box, mode="valid")) * SAMPLE_RATE / (2 * np.pi)
        carrier = np.convolve(power, box / _AVERAGE, mode="valid") > self._floor
        return freq, carrier

    def _soft(self, start: int, stop: int) -> npt.NDArray[np.float64]:
        """Mark-positive decision variable (Hz from the threshold) for [start, stop)."""
        return self._threshold - self._freq[start - self._base : stop - self._base]

    def _at(self, t: float) -> tuple[float, bool]:
        """The decision variable at fractional index ``t`` and carrier there."""
        i = int(np.floor(t))
        frac = t - i
        j = i - self._base
        left, right = self._freq[j], self._freq[j + 1]
        value = self._threshold - (left + (right - left) * frac)
        return float(value), bool(self._carrier[j] and self._carrier[j + 1])

    def _run_machine(self) -> list[bytes]:
        bursts: list[bytes] = []
        while True:
            if self._phase is _Phase.HUNT:
                if not self._hunt():
                    return bursts
                continue
            outcome = self._frame_byte()
            if outcome is None:
                return bursts
            if outcome:
                if self._bytes:
                    bursts.append(bytes(self._bytes))
                self._end_burst()

    def _end_burst(self) -> None:
        self._phase = _Phase.HUNT
        self._run = 0
        self._threshold = 0.0
        self._bytes = bytearray()
        self._deadline = None

    def _hunt(self) -> bool:
        """Look for ``min_mark_bits`` of steady mark; True once found."""
        end = self._base + len(self._freq)
        if self._pos >= end:
            return False
        dev = self.params.deviation_hz
        offset = self._freq[self._pos - self._base :] - self._mark_offset
        good = self._carrier[self._pos - self._base :] & (
            np.abs(offset) < self.limits.mark_tolerance * dev
        )
        index = np.arange(good.size)
        # Consecutive good samples up to each index, continuing the run carried in.
        last_bad = np.maximum.accumulate(np.where(good, -1 - self._run, index))
        run = index - last_bad
        hits = np.flatnonzero(run >= self._min_run)
        if hits.size == 0:
            self._run = int(run[-1])
            self._pos = end
            return False
        found = self._pos + int(hits[0])
        self._threshold = self._seizure_threshold(found - self._min_run + 1)
        self._phase = _Phase.FRAME
        self._pos = found
        self._deadline = None
        return True

    def _seizure_threshold(self, mark_start: int) -> float:
        """Mean frequency over the seizure before ``mark_start``, or 0 if none is there.

        Alternating bits spend equal time on both tones, so their mean is the
        midpoint as the receiver sees it, offset and all.
        """
        start = mark_start - self._seizure_window - int(2 * _SAMPLES_PER_BIT)
        stop = mark_start - int(2 * _SAMPLES_PER_BIT)
        if start < self._base or not self._carrier[start - self._base : stop - self._base].all():
            return 0.0
        freq = self._freq[start - self._base : stop - self._base]
        dev = self.params.deviation_hz
        mean = float(freq.mean())
        mark_share = float(np.mean(freq < mean))
        # Seizure looks half mark, half space, with the midpoint near 1700 Hz.
        if abs(mean) < dev / 2 and 0.3 < mark_share < 0.7:
            return mean
        return 0.0

    def _frame_byte(self) -> bool | None:
        """Find and read one byte. None: need more samples; True: burst over."""
        end = self._base + len(self._freq)
        t = _SAMPLES_PER_BIT
        start = max(self._pos, self._base + 1)
        soft = self._soft(start - 1, end)
        carrier = self._carrier[start - 1 - self._base : end - self._base]
        falling = np.flatnonzero((soft[:-1] >= 0) & (soft[1:] < 0))
        lost = np.flatnonzero(~carrier[1:])
        edge_i = start + int(falling[0]) if falling.size else None
        lost_i = start + int(lost[0]) if lost.size else None
        if lost_i is not None and (edge_i is None or lost_i < edge_i):
            return True  # carrier gone before the next start bit
        waited = end if edge_i is None else edge_i
        if self._deadline is not None and waited > self._deadline:
            return True  # a pause longer than max_gap_bits ends the burst
        if edge_i is None:
            self._pos = end
            return None
        before, after = soft[edge_i - start], soft[edge_i - start + 1]
        edge = edge_i - 1 + before / (before - after)
        if edge + 9.5 * t + 2 > end:
            self._pos = edge_i
            return None  # wait until the whole character has arrived
        values = []
        for k in range(10):
            value, has_carrier = self._at(edge + (k + 0.5) * t)
            if not has_carrier:
                return True
            values.append(value)
        if values[0] >= 0:
            self._pos = edge_i + 1  # a glitch, not a start bit: look on
            return False
        if values[9] < 0:
            return True  # framing error: no stop bit
        self._bytes.append(sum(1 << k for k in range(8) if values[k + 1] >= 0))
        self._pos = int(edge + 9.5 * t)
        self._deadline = self._pos + self.limits.max_gap_bits * t
        if len(self._bytes) >= 2 and len(self._bytes) == self._bytes[1] + 3:
            return True
        return False

    def _trim(self) -> None:
        if self._phase is _Phase.HUNT:
            keep = self._pos - self._seizure_window - self._min_run - 4 * int(_SAMPLES_PER_BIT)
        else:
            keep = self._pos - 2
        drop = min(max(0, keep - self._base), len(self._freq))
        if drop:
            self._freq = self._freq[drop:]
            self._carrier = self._carrier[drop:]
            self._base += drop


def fsk_demodulate(
    samples: npt.NDArray[np.int16], standard: FskStandard, limits: FskLimits | None = None
) -> bytes:
    """The first burst's bytes after seizure and mark; b"" if none was found."""
    demodulator = FskDemodulator(standard, limits)
    # Trailing silence flushes the filters so the last stop bit can be read.
    flush = np.zeros(_TAPS + _AVERAGE + 2 * int(_SAMPLES_PER_BIT), dtype=np.int16)
    bursts = demodulator.feed(np.asarray(samples, dtype=np.int16))
    bursts += demodulator.feed(flush)
    return bursts[0] if bursts else b""


class FskReceiver:
    """Streaming caller ID receiver: 20 ms frames in, a CallerId per good message.

    Messages that arrive damaged are counted in ``rejected`` and the reason kept
    in ``last_error``, for logs and the line statistics.
    """

    def __init__(self, standard: FskStandard, limits: FskLimits | None = None) -> None:
        self._demodulator = FskDemodulator(standard, limits)
        self.rejected = 0
        self.last_error: str | None = None

    def feed(self, frame: npt.NDArray[np.int16]) -> CallerId | None:
        """Take one frame; return the caller ID whose message ended in it, if any."""
        found: CallerId | None = None
        for burst in self._demodulator.feed(frame):
            try:
                found = decode_message(burst)
            except CallerIdError as exc:
                self.rejected += 1
                self.last_error = str(exc)
        return found
