"""ToneBank: tones encoded once per period are the ToneGenerator's frames, for ever."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.dsp.g711 import ULAW_DECODE, Codec, encode
from appliance.dsp.tones import ToneGenerator, ToneKind, UnknownCountryError, tone_for
from appliance.media.tone_player import TONE_NAMES, ToneBank, encode_tone, tone_kind

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("codec", list(Codec))
def test_bank_frames_equal_the_generator_across_the_period(codec: Codec) -> None:
    encoded = encode_tone("US", ToneKind.RINGBACK, codec)
    assert encoded.frames is None and len(encoded.cycle) == 48_000  # 6 s cadence
    generator = ToneGenerator(tone_for("US", ToneKind.RINGBACK), codec=codec)
    for index in range(320):  # past the 300-frame period
        assert encoded.frame(index) == encode(codec, generator.next_frame()), index


def test_period_is_the_lcm_of_cadence_and_the_sine_table() -> None:
    encoded = encode_tone("GB", ToneKind.BUSY, Codec.PCMA)  # 375 + 375 ms = 6000 samples
    assert len(encoded.cycle) == 24_000
    generator = ToneGenerator(tone_for("GB", ToneKind.BUSY), codec=Codec.PCMA)
    frames = [encode(Codec.PCMA, generator.next_frame()) for _ in range(160)]
    assert [encoded.frame(i) for i in range(160)] == frames


def test_a_tone_that_does_not_repeat_ends_after_its_frames() -> None:
    encoded = encode_tone("US", ToneKind.CALL_WAITING, Codec.PCMU)  # 300 ms once
    assert encoded.frames == 15
    generator = ToneGenerator(tone_for("US", ToneKind.CALL_WAITING))
    for index in range(20):
        assert encoded.frame(index) == encode(Codec.PCMU, generator.next_frame())
    assert encoded.frame(1000) == b"\xff" * 160  # mu-law silence


def test_continuous_tone_repeats_every_second() -> None:
    encoded = encode_tone("US", ToneKind.DIAL, Codec.PCMU)
    assert len(encoded.cycle) == 8000
    assert encoded.frame(0) == encoded.frame(50) != encoded.frame(1)


def test_names_map_onto_tone_kinds() -> None:
    assert set(TONE_NAMES.values()) == set(ToneKind)
    assert tone_kind("call-waiting") is ToneKind.CALL_WAITING
    with pytest.raises(ValueError, match="known: dial, ringback"):
        tone_kind("Ringback")


def test_bank_holds_every_tone_of_the_country() -> None:
    bank = ToneBank("gb")
    for kind in ToneKind:
        for codec in Codec:
            assert len(bank.get(kind, codec).frame(7)) == 160
    with pytest.raises(UnknownCountryError):
        ToneBank("XX")


def test_levels_follow_the_plan() -> None:
    encoded = encode_tone("US", ToneKind.DIAL, Codec.PCMU)
    samples = ULAW_DECODE[np.frombuffer(encoded.cycle, np.uint8)].astype(np.float64)
    peak = 22656.7 * 10 ** (-13 / 20)  # two sines at -13 dBm0 each (precise tone plan)
    rms = np.sqrt(np.mean(samples**2))
    assert rms == pytest.approx(peak, rel=0.03)  # two sines of peak p: rms = p
