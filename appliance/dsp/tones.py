"""Call-progress tones as data per country, and a sans-IO tone generator.

Tone plans follow ITU-T E.180/Q.35 (03/98) and its Supplement 2 ("Various tones
used in national networks"), with national specifications where noted beside each
plan. E.180 leaves levels to administrations; where a plan gives none we use
-13 dBm0 per frequency and say so.

Levels are in dBm0 per frequency component. 0 dBm0 is the power of the sine whose
peak lies the "theoretical load capacity" T_max below the coder's overload point,
where T_max is +3.17 dBm0 for mu-law and +3.14 dBm0 for A-law (ITU-T G.711 §4, the
digital milliwatt of Tables 5 and 6 being that sine at 1 kHz). With 16-bit samples
the overload points are 8159 * 4 = 32636 (mu-law, 14-bit scale) and 4096 * 8 = 32768
(A-law, 13-bit scale), so a 0 dBm0 sine has a peak of 22656.7 for PCMU and 22827.1
for PCMA. The two differ by 0.07 dB; the generator takes the codec it feeds.

`ToneGenerator` emits 20 ms frames of 160 samples at 8 kHz. Its state is one integer
sample count, so the cadence edges fall on exact samples forever and the phase is a
function of that count: frequencies are whole hertz, and the sine is read from an
8,000-entry table at index ``f * n mod 8000``, so nothing drifts or accumulates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.g711 import Codec

SAMPLE_RATE: Final = 8000  # G.711 sampling rate (G.711 §1)
FRAME_SAMPLES: Final = 160  # 20 ms, STYLE §2.8
INT16_MAX: Final = 32767

# G.711 §4: T_max above 0 dBm0, and the overload point in 16-bit units.
T_MAX_DBM0: Final[Mapping[Codec, float]] = MappingProxyType({Codec.PCMU: 3.17, Codec.PCMA: 3.14})
OVERLOAD_PEAK: Final[Mapping[Codec, int]] = MappingProxyType(
    {Codec.PCMU: 8159 * 4, Codec.PCMA: 4096 * 8}
)


def zero_dbm0_peak(codec: Codec = Codec.PCMU) -> float:
    """Peak amplitude (16-bit linear) of a 0 dBm0 sine for ``codec`` (G.711 §4)."""
    return OVERLOAD_PEAK[codec] * math.pow(10.0, -T_MAX_DBM0[codec] / 20.0)


def dbm0_to_peak(level_dbm0: float, codec: Codec = Codec.PCMU) -> float:
    """Peak amplitude (16-bit linear) of a sine at ``level_dbm0``."""
    return zero_dbm0_peak(codec) * math.pow(10.0, level_dbm0 / 20.0)


class ToneKind(Enum):
    """The call-progress tones of ITU-T E.180 §2 that the PBX plays."""

    DIAL = "dial"
    RINGBACK = "ringback"  # E.180 "ringing tone"
    BUSY = "busy"
    CONGESTION = "congestion"  # North America: "reorder"
    CALL_WAITING = "call_waiting"


class UnknownCountryError(ValueError):
    """No tone plan for the country asked for; the message lists the known ones."""


@dataclass(frozen=True, slots=True)
class Tone:
    """One tone: 1 or 2 frequencies with a level each, and an on/off cadence.

    ``cadence_ms`` is a sequence of (on, off) pairs in milliseconds; empty means
    continuous. With ``repeat`` the sequence loops; without it the tone falls silent
    for good after the last pair.
    """

    frequencies_hz: tuple[int, ...]
    levels_dbm0: tuple[float, ...]
    cadence_ms: tuple[tuple[int, int], ...] = ()
    repeat: bool = True

    def __post_init__(self) -> None:
        if not 1 <= len(self.frequencies_hz) <= 2:
            raise ValueError(f"a tone has 1 or 2 frequencies, not {self.frequencies_hz}")
        if len(self.levels_dbm0) != len(self.frequencies_hz):
            raise ValueError("one level per frequency")
        for f in self.frequencies_hz:
            if not 0 < f < SAMPLE_RATE // 2:
                raise ValueError(f"frequency {f} Hz is outside 0..{SAMPLE_RATE // 2} Hz")
        for on, off in self.cadence_ms:
            if on <= 0 or off < 0:
                raise ValueError(f"cadence pair ({on}, {off}) ms: on > 0 and off >= 0")

    @property
    def continuous(self) -> bool:
        return not self.cadence_ms

    def edges(self, sample_rate: int = SAMPLE_RATE) -> tuple[int, ...]:
        """Cumulative sample offsets of each on/off edge within one cadence cycle."""
        out: list[int] = []
        total = 0
        for on, off in self.cadence_ms:
            for ms in (on, off):
                samples, rest = divmod(ms * sample_rate, 1000)
                if rest:
                    raise ValueError(f"{ms} ms is not a whole number of samples")
                total += samples
                out.append(total)
        return tuple(out)


def _single(hz: int, dbm0: float, *cadence: tuple[int, int], repeat: bool = True) -> Tone:
    return Tone((hz,), (dbm0,), tuple(cadence), repeat)


def _dual(hz: tuple[int, int], dbm0: float, *cadence: tuple[int, int], repeat: bool = True) -> Tone:
    return Tone(hz, (dbm0, dbm0), tuple(cadence), repeat)


# North America: ANSI T1.401 / Telcordia GR-506 "precise tone plan" (also E.180
# Supp. 2, United States). Levels per frequency from the precise tone plan.
_US: Final = {
    ToneKind.DIAL: _dual((350, 440), -13.0),
    ToneKind.RINGBACK: _dual((440, 480), -19.0, (2000, 4000)),
    ToneKind.BUSY: _dual((480, 620), -24.0, (500, 500)),
    ToneKind.CONGESTION: _dual((480, 620), -24.0, (250, 250)),  # "reorder"
    ToneKind.CALL_WAITING: _single(440, -13.0, (300, 0), repeat=False),
}

# United Kingdom: BT SIN 350 and E.180 Supp. 2. Dial tone is 350 + 440 Hz (the
# precise-tone-plan pair BT adopted), not 350 + 450. Levels: -20 dBm0 per frequency
# is a placeholder in the range secondary sources quote (350 Hz at -20/-22 and 440 Hz
# at -23/-18 dBm0 for dial tone); not yet checked against SIN 350 itself. Call
# waiting 0.1 s on / 2.0 s off as briefed; one secondary source gives 0.1 / 3.0.
_GB: Final = {
    ToneKind.DIAL: _dual((350, 440), -20.0),
    ToneKind.RINGBACK: _dual((400, 450), -20.0, (400, 200), (400, 2000)),
    ToneKind.BUSY: _single(400, -20.0, (375, 375)),
    ToneKind.CONGESTION: _single(400, -20.0, (400, 350), (225, 525)),
    ToneKind.CALL_WAITING: _single(400, -20.0, (100, 2000)),
}

# Germany: E.180 Supp. 2 (Germany, variant I of each tone); 425 Hz family.
_DE: Final = {
    ToneKind.DIAL: _single(425, -13.0),
    ToneKind.RINGBACK: _single(425, -13.0, (1000, 4000)),
    ToneKind.BUSY: _single(425, -13.0, (480, 480)),
    ToneKind.CONGESTION: _single(425, -13.0, (240, 240)),
    ToneKind.CALL_WAITING: _single(425, -13.0, (200, 200), (200, 5000)),
}

# France: E.180 Supp. 2 (France); 440 Hz family. France plays the busy cadence
# for congestion too. Call waiting 0.3 s every 10 s as commonly deployed; not
# confirmed against a primary source.
_FR: Final = {
    ToneKind.DIAL: _single(440, -13.0),
    ToneKind.RINGBACK: _single(440, -13.0, (1500, 3500)),
    ToneKind.BUSY: _single(440, -13.0, (500, 500)),
    ToneKind.CONGESTION: _single(440, -13.0, (500, 500)),
    ToneKind.CALL_WAITING: _single(440, -13.0, (300, 10000)),
}

# Spain: E.180 Supp. 2 (Spain); 425 Hz family.
_ES: Final = {
    ToneKind.DIAL: _single(425, -13.0),
    ToneKind.RINGBACK: _single(425, -13.0, (1500, 3000)),
    ToneKind.BUSY: _single(425, -13.0, (200, 200)),
    ToneKind.CONGESTION: _single(425, -13.0, (200, 200), (200, 200), (200, 600)),
    ToneKind.CALL_WAITING: _single(425, -13.0, (175, 175), (175, 3500)),
}

# Keyed by ISO 3166-1 alpha-2 code; "UK" is accepted as an alias of "GB".
TONE_PLANS: Final[Mapping[str, Mapping[ToneKind, Tone]]] = MappingProxyType(
    {
        code: MappingProxyType(plan)
        for code, plan in {"DE": _DE, "ES": _ES, "FR": _FR, "GB": _GB, "US": _US}.items()
    }
)
_ALIASES: Final[Mapping[str, str]] = MappingProxyType({"UK": "GB"})


def tone_for(country: str, kind: ToneKind) -> Tone:
    """The ``kind`` tone of ``country`` (ISO 3166-1 alpha-2, case-insensitive)."""
    code = country.strip().upper()
    code = _ALIASES.get(code, code)
    try:
        plan = TONE_PLANS[code]
    except KeyError:
        known = ", ".join(sorted(TONE_PLANS))
        raise UnknownCountryError(
            f"no tone plan for country {country!r}; known: {known} (UK = GB)"
        ) from None
    return plan[kind]


# One period of a unit sine at 1 Hz resolution: sin(2 pi k / 8000).
_SINE: Final[npt.NDArray[np.float64]] = np.sin(
    2.0 * np.pi * np.arange(SAMPLE_RATE, dtype=np.float64) / SAMPLE_RATE
)
_SINE.setflags(write=False)


class ToneGenerator:
    """Plays one `Tone` as 160-sample frames, sample-accurate and phase-continuous.

    Sample n (counting from 0 at construction, or from ``start_sample``) is
    ``on(n) * sum(A_i * sin(2 pi f_i n / 8000))`` rounded to int16, where ``on(n)``
    follows the cadence. The phase runs on through off periods, so every burst
    starts where the underlying sines are at that instant.
    """

    def __init__(self, tone: Tone, *, codec: Codec = Codec.PCMU, start_sample: int = 0) -> None:
        if start_sample < 0:
            raise ValueError("start_sample must be >= 0")
        self.tone = tone
        self._amplitudes = tuple(dbm0_to_peak(level, codec) for level in tone.levels_dbm0)
        if sum(self._amplitudes) > INT16_MAX:
            raise ValueError(f"tone levels {tone.levels_dbm0} dBm0 would clip")
        self._edges = np.array(tone.edges(), dtype=np.int64)
        self._cycle = int(self._edges[-1]) if len(self._edges) else 0
        self._n = start_sample
        self._offsets = np.arange(FRAME_SAMPLES, dtype=np.int64)

    @property
    def sample_count(self) -> int:
        """Samples emitted so far, including ``start_sample``."""
        return self._n

    def next_frame(self) -> npt.NDArray[np.int16]:
        """The next 20 ms: exactly `FRAME_SAMPLES` int16 samples."""
        n = self._n
        self._n = n + FRAME_SAMPLES
        gate = self._gate(n)
        if not gate.any():
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        # f * n mod 8000 is exact for whole-hertz f, whatever n has grown to.
        base = n % SAMPLE_RATE
        signal = np.zeros(FRAME_SAMPLES, dtype=np.float64)
        for f, amplitude in zip(self.tone.frequencies_hz, self._amplitudes, strict=True):
            index = (f * (base + self._offsets)) % SAMPLE_RATE
            signal += amplitude * _SINE[index]
        return np.where(gate, np.rint(signal), 0.0).astype(np.int16)

    def _gate(self, n: int) -> npt.NDArray[np.bool_]:
        if self._cycle == 0:
            return np.ones(FRAME_SAMPLES, dtype=np.bool_)
        if self.tone.repeat:
            position = (n % self._cycle + self._offsets) % self._cycle
        else:
            position = np.minimum(n, self._cycle) + self._offsets  # past the end: off
        segment = np.searchsorted(self._edges, position, side="right")
        on: npt.NDArray[np.bool_] = (segment % 2 == 0) & (segment < len(self._edges))
        return on
