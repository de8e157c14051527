"""Call-progress tones encoded once per country and codec, served as 20 ms frames.

A tone from ``appliance.dsp.tones`` is periodic: its cadence repeats every ``cycle``
samples and, all its frequencies being whole hertz, its sines every 8,000 samples
(``ToneGenerator`` reads them at ``f * n mod 8000``). So the whole signal repeats
every ``lcm(cycle, 8000)`` samples, at most a few hundred kilobytes for the plans we
have (France's call-waiting cadence, 10.3 s, is the longest at 824,000 samples).
``ToneBank`` runs ``ToneGenerator`` over one such period per tone and codec when the
engine starts and keeps the G.711 bytes: every media clock tick then costs each
playing leg one 160-byte slice, with no numpy work at all, so the per-tick cost of
"batching" legs is already as low as it goes and nothing is computed mid-call.

A tone that does not repeat (US call waiting: one 300 ms burst) is kept as its
frames and then reports itself over, so the engine can stop it and resume relaying.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from appliance.dsp.g711 import Codec, encode
from appliance.dsp.tones import FRAME_SAMPLES, SAMPLE_RATE, ToneGenerator, ToneKind, tone_for

# The names call control uses (MediaEngine.play_tone) for the E.180 tones.
TONE_NAMES: Final[Mapping[str, ToneKind]] = MappingProxyType(
    {
        "dial": ToneKind.DIAL,
        "ringback": ToneKind.RINGBACK,
        "busy": ToneKind.BUSY,
        "congestion": ToneKind.CONGESTION,
        "call-waiting": ToneKind.CALL_WAITING,
    }
)


def tone_kind(name: str) -> ToneKind:
    """The ``ToneKind`` for a tone name of the media port contract."""
    try:
        return TONE_NAMES[name]
    except KeyError:
        known = ", ".join(TONE_NAMES)
        raise ValueError(f"unknown tone {name!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class EncodedTone:
    """G.711 bytes of a tone: ``head`` plays once, then ``cycle`` repeats.

    ``frames`` is the length of a tone that does not repeat (it is over after that
    many frames, silence following); None for one that repeats forever.
    """

    head: bytes
    cycle: bytes
    frames: int | None

    def frame(self, index: int) -> bytes:
        """The payload of frame ``index`` (from 0 at the tone's start)."""
        start = index * FRAME_SAMPLES
        if start < len(self.head):
            return self.head[start : start + FRAME_SAMPLES]
        offset = (start - len(self.head)) % len(self.cycle)
        return self.cycle[offset : offset + FRAME_SAMPLES]


def encode_tone(country: str, kind: ToneKind, codec: Codec) -> EncodedTone:
    """Run the generator over one whole period of the tone and encode it."""
    tone = tone_for(country, kind)
    generator = ToneGenerator(tone, codec=codec)
    edges = tone.edges()
    if tone.continuous or tone.repeat:
        cycle = edges[-1] if edges else SAMPLE_RATE
        period = math.lcm(cycle, SAMPLE_RATE)  # a multiple of 8000, so of 160
        frames = [generator.next_frame() for _ in range(period // FRAME_SAMPLES)]
        return EncodedTone(b"", encode(codec, np.concatenate(frames)), None)
    count = -(-edges[-1] // FRAME_SAMPLES)  # ceil: the last burst's partial frame too
    frames = [generator.next_frame() for _ in range(count)]
    silence = encode(codec, np.zeros(FRAME_SAMPLES, dtype=np.int16))
    return EncodedTone(encode(codec, np.concatenate(frames)), silence, count)


class ToneBank:
    """Every tone of one country's plan, encoded for PCMU and PCMA at construction."""

    def __init__(self, country: str) -> None:
        self.country = country
        self._tones = {
            (kind, codec): encode_tone(country, kind, codec) for kind in ToneKind for codec in Codec
        }

    def get(self, kind: ToneKind, codec: Codec) -> EncodedTone:
        return self._tones[(kind, codec)]
