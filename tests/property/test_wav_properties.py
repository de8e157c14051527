"""Hypothesis: WAVs we write read back equal; any other bytes parse or raise WavError."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from appliance.media.wav import WavError, read_wav, to_telephony, wav_bytes

int16_samples = st.lists(st.integers(-32768, 32767), min_size=1, max_size=2000).map(
    lambda values: np.array(values, dtype=np.int16)
)
rates = st.integers(4000, 192000)


def parses_or_wav_error(data: bytes) -> None:
    try:
        audio = read_wav(data)
    except WavError:
        return
    assert audio.samples.shape == (audio.frames, audio.channels)
    assert np.all(np.abs(audio.samples) <= 1.0)


@given(int16_samples, rates)
def test_written_pcm_reads_back_equal(samples: np.ndarray, rate: int) -> None:
    audio = read_wav(wav_bytes(samples, rate))
    assert (audio.rate, audio.channels, audio.sample_width) == (rate, 1, 2)
    back = np.rint(audio.samples[:, 0].astype(np.float64) * 32768).astype(np.int16)
    assert np.array_equal(back, samples)


@given(int16_samples)
def test_8khz_files_convert_back_to_the_same_samples(samples: np.ndarray) -> None:
    assert np.array_equal(to_telephony(read_wav(wav_bytes(samples))), samples)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_wav_error(data: bytes) -> None:
    parses_or_wav_error(data)


@given(st.binary(max_size=200), st.integers(0, 2**32 - 1))
def test_arbitrary_chunks_after_a_riff_header_parse_or_raise(body: bytes, size: int) -> None:
    parses_or_wav_error(b"RIFF" + struct.pack("<I", size) + b"WAVE" + body)
    parses_or_wav_error(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)


@given(int16_samples, rates, st.data())
def test_truncations_of_a_valid_file_parse_or_raise(
    samples: np.ndarray, rate: int, data: st.DataObject
) -> None:
    whole = wav_bytes(samples, rate)
    cut = data.draw(st.integers(0, len(whole)))
    parses_or_wav_error(whole[:cut])
    if cut < len(whole):
        # A cut file always loses data the header promised, so it must be refused.
        try:
            read_wav(whole[:cut])
        except WavError:
            pass
        else:
            raise AssertionError(f"accepted a file cut at {cut} of {len(whole)} bytes")


@given(int16_samples, st.data())
def test_corrupted_bytes_of_a_valid_file_parse_or_raise(
    samples: np.ndarray, data: st.DataObject
) -> None:
    whole = bytearray(wav_bytes(samples))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(whole) - 1))
        whole[position] = data.draw(st.integers(0, 255))
    parses_or_wav_error(bytes(whole))
