"""G.711 PCMU/PCMA tables against ITU-T G.711 (11/88) Tables 1, 2, 5 and 6."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from appliance.dsp import g711
from appliance.dsp.g711 import (
    ALAW_DECODE,
    ULAW_DECODE,
    Codec,
    alaw_decode_scalar,
    alaw_encode_scalar,
    alaw_to_ulaw,
    decode_alaw,
    decode_ulaw,
    encode_alaw,
    encode_ulaw,
    ulaw_decode_scalar,
    ulaw_encode_scalar,
    ulaw_to_alaw,
)

ALL_INT16: npt.NDArray[np.int16] = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = bytes(range(256))
ULAW_NEGATIVE_ZERO = 0x7F


def ulaw_spec_value(code: int) -> int:
    """mu-law decoder output from G.711 Table 2a, written independently of the module.

    Invert the byte; segment s (0..7) and step q (0..15) give the 14-bit output
    (2**s * (33 + 2q) - 33); times 4 for 16 bits; bit 7 of the inverted code is the sign.
    """
    inverted = code ^ 0xFF
    s, q = (inverted >> 4) & 7, inverted & 15
    value = 4 * ((1 << s) * (33 + 2 * q) - 33)
    return -value if inverted & 0x80 else value


def alaw_spec_value(code: int) -> int:
    """A-law decoder output from G.711 Table 1a, written independently of the module.

    XOR 0x55; segment 0 outputs 2q + 1, segment s >= 1 outputs 2**(s-1) * (2q + 33)
    (13-bit units); times 8 for 16 bits; bit 7 set is positive.
    """
    even = code ^ 0x55
    s, q = (even >> 4) & 7, even & 15
    value = 8 * (2 * q + 1 if s == 0 else (1 << (s - 1)) * (2 * q + 33))
    return value if even & 0x80 else -value


def step(codec: Codec, code: int) -> int:
    """Quantisation step (16-bit units) of the segment that ``code`` lies in."""
    if codec is Codec.PCMU:
        return 8 << (((code ^ 0xFF) >> 4) & 7)  # 2 << s in 14-bit units
    s = ((code ^ 0x55) >> 4) & 7
    return 16 << max(s - 1, 0)  # 2 << max(s-1, 0) in 13-bit units


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8)],
)
def test_ulaw_known_values(code: int, value: int) -> None:
    assert ULAW_DECODE[code] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0x54, -24)],
)
def test_alaw_known_values(code: int, value: int) -> None:
    assert ALAW_DECODE[code] == value


def test_decode_tables_match_the_spec_formula_for_every_code() -> None:
    assert [int(v) for v in ULAW_DECODE] == [ulaw_spec_value(c) for c in range(256)]
    assert [int(v) for v in ALAW_DECODE] == [alaw_spec_value(c) for c in range(256)]


def test_digital_milliwatt_decodes_to_a_0_dbm0_1khz_sine() -> None:
    # G.711 Tables 5 (mu-law) and 6 (A-law): eight codes, one 1 kHz period.
    ulaw = decode_ulaw(bytes([0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E]))
    alaw = decode_alaw(bytes([0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4]))
    assert ulaw.tolist() == [-8828, -20860, -20860, -8828, 8828, 20860, 20860, 8828]
    assert alaw.tolist() == [-8960, -20992, -20992, -8960, 8960, 20992, 20992, 8960]


def test_ulaw_round_trips_every_code_but_negative_zero() -> None:
    back = encode_ulaw(decode_ulaw(ALL_CODES))
    expected = bytearray(ALL_CODES)
    expected[ULAW_NEGATIVE_ZERO] = 0xFF  # -0 and +0 both decode to 0, which encodes as +0
    assert back == bytes(expected)


def test_alaw_round_trips_every_code() -> None:
    assert encode_alaw(decode_alaw(ALL_CODES)) == ALL_CODES


def test_vectorised_encoders_equal_the_scalar_reference_on_all_int16() -> None:
    samples = [int(s) for s in ALL_INT16]
    assert encode_ulaw(ALL_INT16) == bytes(ulaw_encode_scalar(s) for s in samples)
    assert encode_alaw(ALL_INT16) == bytes(alaw_encode_scalar(s) for s in samples)


def test_vectorised_decoders_equal_the_scalar_reference() -> None:
    assert decode_ulaw(ALL_CODES).tolist() == [ulaw_decode_scalar(c) for c in range(256)]
    assert decode_alaw(ALL_CODES).tolist() == [alaw_decode_scalar(c) for c in range(256)]


@pytest.mark.parametrize("codec", list(Codec))
def test_encoder_is_monotonic_and_within_half_a_step_on_all_int16(codec: Codec) -> None:
    codes = np.frombuffer(g711.encode(codec, ALL_INT16), dtype=np.uint8)
    decoded = g711.decode(codec, codes.tobytes()).astype(np.int64)
    assert np.all(np.diff(decoded) >= 0)  # larger input never decodes smaller
    limit = 32124 if codec is Codec.PCMU else 32256
    clipped = np.clip(ALL_INT16.astype(np.int64), -limit, limit)
    steps = np.array([step(codec, int(c)) for c in range(256)])[codes]
    assert np.all(np.abs(decoded - clipped) <= steps // 2)


@pytest.mark.parametrize("codec", list(Codec))
def test_decode_is_monotonic_over_segment_order(codec: Codec) -> None:
    # Positive codes in increasing magnitude: mu-law 0xFF down to 0x80;
    # A-law segment/step order is (0x80 | s << 4 | q) ^ 0x55.
    if codec is Codec.PCMU:
        order = list(range(0xFF, 0x7F, -1))
    else:
        order = [(0x80 | n) ^ 0x55 for n in range(128)]
    table = ULAW_DECODE if codec is Codec.PCMU else ALAW_DECODE
    positive = [int(table[c]) for c in order]
    negative = [int(table[c ^ 0x80]) for c in order]
    assert all(a < b for a, b in zip(positive, positive[1:], strict=False))
    assert negative == [-v for v in positive]


def test_transcoding_tables_equal_decode_then_encode() -> None:
    assert ulaw_to_alaw(ALL_CODES) == encode_alaw(decode_ulaw(ALL_CODES))
    assert alaw_to_ulaw(ALL_CODES) == encode_ulaw(decode_alaw(ALL_CODES))


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError, match="int16"):
        encode_ulaw(np.zeros(4, dtype=np.int32))


def test_codec_payload_types() -> None:
    assert (Codec.PCMU.payload_type, Codec.PCMU.encoding_name) == (0, "PCMU")
    assert (Codec.PCMA.payload_type, Codec.PCMA.encoding_name) == (8, "PCMA")
    assert Codec(8) is Codec.PCMA


def test_scalar_reference_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside int16"):
        ulaw_encode_scalar(32768)
    with pytest.raises(ValueError, match="not a byte"):
        alaw_decode_scalar(256)


INT16_ARRAYS = hnp.arrays(np.int16, st.integers(0, 480))


@given(INT16_ARRAYS)
def test_ulaw_error_is_bounded_by_the_segment_step(samples: npt.NDArray[np.int16]) -> None:
    payload = encode_ulaw(samples)
    assert len(payload) == len(samples)
    error = np.abs(decode_ulaw(payload).astype(np.int64) - np.clip(samples, -32124, 32124))
    steps = np.array([step(Codec.PCMU, c) for c in payload], dtype=np.int64)
    assert np.all(error <= steps // 2)


@given(INT16_ARRAYS)
def test_alaw_error_is_bounded_by_the_segment_step(samples: npt.NDArray[np.int16]) -> None:
    payload = encode_alaw(samples)
    assert len(payload) == len(samples)
    error = np.abs(decode_alaw(payload).astype(np.int64) - np.clip(samples, -32256, 32256))
    steps = np.array([step(Codec.PCMA, c) for c in payload], dtype=np.int64)
    assert np.all(error <= steps // 2)


@given(st.binary(max_size=480))
def test_bytes_round_trip_through_decode_and_encode(payload: bytes) -> None:
    assert encode_alaw(decode_alaw(payload)) == payload
    assert encode_ulaw(decode_ulaw(payload)) == payload.replace(b"\x7f", b"\xff")


@given(st.binary(max_size=480))
def test_transcoding_preserves_length_and_matches_tables(payload: bytes) -> None:
    assert ulaw_to_alaw(payload) == encode_alaw(decode_ulaw(payload))
    assert alaw_to_ulaw(payload) == encode_ulaw(decode_alaw(payload))


@given(INT16_ARRAYS)
def test_non_contiguous_input_encodes_like_a_copy(samples: npt.NDArray[np.int16]) -> None:
    strided = samples[::2]
    assert encode_ulaw(strided) == encode_ulaw(strided.copy())
    assert encode_alaw(strided) == encode_alaw(strided.copy())
