"""wav.py: strict reading of every accepted layout, conversion to 8 kHz, atomic writes.

Files are built here byte by byte (``build``), independently of wav.py, so a bug in
the reader cannot be hidden by the same bug in a writer.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media.wav import (
    WavError,
    convert_upload,
    read_wav,
    to_telephony,
    wav_bytes,
    write_wav_atomic,
)

pytestmark = pytest.mark.timeout(30)

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
Floats = npt.NDArray[np.float64]


# --- an independent WAV builder --------------------------------------------------


def chunk(ident: bytes, body: bytes, pad: bool = True) -> bytes:
    return ident + struct.pack("<I", len(body)) + body + (b"\0" if pad and len(body) % 2 else b"")


def fmt_body(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    *,
    block_align: int | None = None,
    byte_rate: int | None = None,
    sub_tag: int | None = None,
) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    rate_bytes = rate * align if byte_rate is None else byte_rate
    body = struct.pack("<HHIIHH", tag, channels, rate, rate_bytes, align, bits)
    if tag == EXTENSIBLE:
        guid = struct.pack("<H", PCM if sub_tag is None else sub_tag) + GUID_TAIL
        body += struct.pack("<HHI", 22, bits, (1 << channels) - 1) + guid
    return body


def riff(*chunks: bytes, riff_size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def encode(samples: Floats, bits: int, is_float: bool) -> bytes:
    """Interleaved little-endian sample bytes for ``samples`` (frames, channels)."""
    flat = samples.reshape(-1)
    if is_float:
        return flat.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.clip(np.rint(flat * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    full = 1 << (bits - 1)
    ints = np.clip(np.rint(flat * full), -full, full - 1).astype(np.int64)
    if bits == 24:
        as32 = ints.astype("<i4").view(np.uint8).reshape(-1, 4)
        return as32[:, :3].tobytes()
    return ints.astype("<i2" if bits == 16 else "<i4").tobytes()


def build(
    samples: Floats, rate: int, bits: int = 16, is_float: bool = False, extensible: bool = False
) -> bytes:
    channels = samples.shape[1]
    tag = FLOAT if is_float else PCM
    if extensible:
        fmt = fmt_body(EXTENSIBLE, channels, rate, bits, sub_tag=tag)
    else:
        fmt = fmt_body(tag, channels, rate, bits)
    return riff(chunk(b"fmt ", fmt), chunk(b"data", encode(samples, bits, is_float)))


def sine(rate: int, channels: int, seconds: float = 0.5, hz: float = 1000.0) -> Floats:
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.repeat(tone[:, None], channels, axis=1)


def mono16(n: int = 80) -> bytes:
    return build(sine(8000, 1, n / 8000), 8000)


# --- accepted layouts ------------------------------------------------------------

LAYOUTS = [(8, False), (16, False), (24, False), (32, False), (32, True), (64, True)]


@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
@pytest.mark.parametrize(("bits", "is_float"), LAYOUTS, ids=lambda v: str(v))
def test_every_sample_layout_decodes_to_the_values_written(
    bits: int, is_float: bool, extensible: bool
) -> None:
    ramp = np.linspace(-0.9, 0.9, 2 * 101).reshape(-1, 2)
    audio = read_wav(build(ramp, 16000, bits, is_float, extensible))
    assert (audio.rate, audio.channels, audio.sample_width) == (16000, 2, bits // 8)
    assert audio.is_float is is_float
    assert audio.samples.dtype == np.float32 and audio.samples.shape == (101, 2)
    quantum = 1.0 / 128 if bits == 8 else 1e-4
    assert np.max(np.abs(audio.samples - ramp)) <= quantum


def test_full_scale_extremes_stay_within_minus_one_to_one() -> None:
    data = riff(
        chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)),
        chunk(b"data", struct.pack("<3h", -32768, 32767, 0)),
    )
    samples = read_wav(data).samples[:, 0]
    assert samples[0] == -1.0 and 0.9999 < samples[1] < 1.0 and samples[2] == 0.0


def test_float_overs_nan_and_infinity_are_clipped() -> None:
    values = np.array([[1.5], [-3.0], [np.nan], [np.inf], [-np.inf]])
    samples = read_wav(build(values, 8000, 32, is_float=True)).samples[:, 0]
    assert samples.tolist() == [1.0, -1.0, 0.0, 1.0, -1.0]


def test_24_bit_sign_is_kept() -> None:
    body = bytes([0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF])  # min, max, -1
    data = riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 24)), chunk(b"data", body))
    ints = np.rint(read_wav(data).samples[:, 0].astype(np.float64) * (1 << 23))
    assert ints.tolist() == [-(1 << 23), (1 << 23) - 1, -1]


def test_unknown_chunks_are_skipped_with_the_pad_byte_of_odd_sizes() -> None:
    fmt = chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16))
    data = chunk(b"data", struct.pack("<2h", 100, -100))
    odd = chunk(b"LIST", b"INFOx")  # 5 bytes + pad: the next chunk starts even
    for layout in (riff(odd, fmt, chunk(b"fact", b"\1\0\0\0"), data), riff(fmt, data, odd)):
        audio = read_wav(layout)
        assert np.rint(audio.samples[:, 0] * 32768).tolist() == [100, -100]


def test_a_missing_pad_after_the_last_chunk_is_tolerated() -> None:
    fmt = chunk(b"fmt ", fmt_body(PCM, 1, 8000, 8))
    assert read_wav(riff(fmt, chunk(b"data", b"\x80\x90\xa0", pad=False))).frames == 3


def test_fmt_after_data_is_accepted() -> None:
    data = riff(chunk(b"data", struct.pack("<h", 7)), chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)))
    assert read_wav(data).frames == 1


def test_bytes_after_the_riff_chunk_are_ignored() -> None:
    assert read_wav(mono16() + b"ID3\x03junk").frames == 80


# --- rejections ------------------------------------------------------------------


def test_truncated_data_names_the_sizes() -> None:
    whole = mono16(600)  # 1200 data bytes
    with pytest.raises(WavError, match=r"^data chunk says 1200 bytes but only 700 follow"):
        read_wav(whole[:-500])
    with pytest.raises(WavError, match=r"\(truncated file\)$"):
        read_wav(whole[:-1])


def test_a_data_size_larger_than_the_data_is_refused() -> None:
    body = b"\0" * 1200
    lying = b"data" + struct.pack("<I", 48000) + body
    data = riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)), lying)
    with pytest.raises(WavError, match="data chunk says 48000 bytes but only 1200 follow"):
        read_wav(data)


def test_a_riff_size_larger_than_the_file_is_refused() -> None:
    whole = mono16()
    lying = whole[:4] + struct.pack("<I", len(whole) + 1000) + whole[8:]
    with pytest.raises(WavError, match=r"RIFF size says \d+ bytes but the file holds only"):
        read_wav(lying)


def test_a_chunk_past_a_short_riff_size_is_refused() -> None:
    whole = mono16()
    short = whole[:4] + struct.pack("<I", len(whole) - 8 - 10) + whole[8:]
    with pytest.raises(WavError, match="data chunk runs 10 bytes past the end of the RIFF"):
        read_wav(short)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        (
            fmt_body(PCM, 2, 8000, 16, block_align=3),
            "block align 3 does not match 2 channels x 16-bit",
        ),
        (
            fmt_body(PCM, 1, 8000, 16, byte_rate=8000),
            "byte rate 8000 does not match 8000 Hz x 2-byte",
        ),
        (fmt_body(0x0055, 1, 8000, 16), r"unsupported format tag 0x0055 \(MP3\); save as PCM WAV"),
        (fmt_body(0x0007, 1, 8000, 8), r"0x0007 \(mu-law\)"),
        (fmt_body(0x1234, 1, 8000, 16), r"unsupported format tag 0x1234; save as PCM WAV"),
        (fmt_body(PCM, 1, 8000, 12, block_align=2), "12-bit PCM is not supported; use 8/16/24/32"),
        (fmt_body(FLOAT, 1, 8000, 16), "16-bit float is not supported; use 32/64-bit"),
        (fmt_body(PCM, 9, 8000, 16), "9 channels; 1 to 8 are supported"),
        (fmt_body(PCM, 0, 8000, 16), "0 channels"),
        (fmt_body(PCM, 1, 3000, 16), "sample rate 3000 Hz; 4000 to 192000 Hz"),
        (fmt_body(PCM, 1, 384000, 16), "sample rate 384000 Hz"),
        (fmt_body(EXTENSIBLE, 1, 8000, 16, sub_tag=0x55), r"unsupported format tag 0x0055"),
        (fmt_body(EXTENSIBLE, 1, 8000, 16)[:-16] + b"\x01" * 16, "unknown sub-format"),
        (fmt_body(EXTENSIBLE, 1, 8000, 16)[:24], "EXTENSIBLE fmt chunk is 24 bytes"),
        (b"\1\0\1\0", "fmt chunk is 4 bytes; at least 16"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else None,
)
def test_bad_format_chunks_say_what_is_wrong(fmt: bytes, message: str) -> None:
    data = riff(chunk(b"fmt ", fmt), chunk(b"data", b"\0" * 8))
    with pytest.raises(WavError, match=message):
        read_wav(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"not a RIFF/WAVE file \(only 0 bytes\)"),
        (b"ID3\x03" + b"\0" * 100, "not a RIFF/WAVE file"),
        (b"RIFF\x04\0\0\0AVI ", "not a RIFF/WAVE file"),
        (b"RIFX\x04\0\0\0WAVE", "big-endian RIFX"),
        (b"RF64\xff\xff\xff\xffWAVE", "RF64"),
        (riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16))), "no data chunk"),
        (riff(chunk(b"data", b"\0\0")), "no fmt chunk"),
        (
            riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)), chunk(b"data", b"")),
            "data chunk is empty",
        ),
        (
            riff(chunk(b"fmt ", fmt_body(PCM, 2, 8000, 16)), chunk(b"data", b"\0" * 6)),
            "data size 6 is not a whole number of 4-byte frames",
        ),
        (
            riff(
                chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)),
                chunk(b"data", b"\0\0"),
                chunk(b"data", b"\0\0"),
            ),
            "more than one fmt or data chunk",
        ),
        (
            riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)), b"LIST\xff\0\0\0ab"),
            "LIST chunk says 255",
        ),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else None,
)
def test_bad_files_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message):
        read_wav(data)


def test_files_over_the_size_limit_are_refused_before_parsing() -> None:
    whole = mono16()
    assert read_wav(whole, max_bytes=len(whole)).frames == 80
    with pytest.raises(WavError, match=f"file is {len(whole)} bytes; the limit is 100 bytes"):
        read_wav(whole, max_bytes=100)


def test_a_file_of_countless_tiny_chunks_is_refused() -> None:
    fmt = chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16))
    data = riff(fmt, chunk(b"junk", b"") * 1000, chunk(b"data", b"\0\0"))
    with pytest.raises(WavError, match="more than 1000 chunks"):
        read_wav(data)


def test_decoded_samples_are_read_only() -> None:
    audio = read_wav(mono16())
    with pytest.raises(ValueError, match="read-only"):
        audio.samples[0, 0] = 0.0


# --- conversion to telephone audio -----------------------------------------------


def tone_frequency(samples: npt.NDArray[np.int16], rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_a_1khz_sine_at_any_rate_comes_out_at_8khz(rate: int, channels: int) -> None:
    out = convert_upload(build(sine(rate, channels), rate))
    assert out.dtype == np.int16 and out.ndim == 1
    assert abs(len(out) - 4000) <= 40  # half a second, within 1 %
    middle = out[400:-400]  # clear of the resampler's edges
    assert abs(tone_frequency(middle) - 1000.0) <= 8000 / len(middle)
    rms = float(np.sqrt(np.mean(middle.astype(np.float64) ** 2)))
    assert rms == pytest.approx(0.5 * 32768 / np.sqrt(2), rel=0.02)


@pytest.mark.parametrize(("bits", "is_float"), LAYOUTS, ids=lambda v: str(v))
def test_every_layout_converts_from_44k1_stereo_extensible(bits: int, is_float: bool) -> None:
    out = convert_upload(build(sine(44100, 2), 44100, bits, is_float, extensible=True))
    assert abs(len(out) - 4000) <= 40
    assert abs(tone_frequency(out[400:-400]) - 1000.0) <= 8000 / 3200


def test_opposite_stereo_channels_mix_to_silence() -> None:
    left = sine(48000, 1)
    out = convert_upload(build(np.hstack([left, -left]), 48000))
    assert np.max(np.abs(out)) <= 1


def test_8khz_mono_16_bit_passes_through_bit_exact() -> None:
    original = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    data = riff(chunk(b"fmt ", fmt_body(PCM, 1, 8000, 16)), chunk(b"data", original.tobytes()))
    assert np.array_equal(to_telephony(read_wav(data)), original)


def test_full_scale_input_clips_instead_of_wrapping() -> None:
    out = convert_upload(build(np.array([[1.0], [-1.0]] * 100), 8000, 32, is_float=True))
    assert out.max() == 32767 and out.min() == -32768


# --- writing ---------------------------------------------------------------------


def test_wav_bytes_is_a_plain_16_bit_mono_file() -> None:
    samples = np.array([1, -2, 300], dtype=np.int16)
    data = wav_bytes(samples, 16000)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<HHIIHH", data, 20) == (1, 1, 16000, 32000, 2, 16)
    assert data[-6:] == samples.astype("<i2").tobytes()


def test_wav_bytes_wants_mono_int16() -> None:
    with pytest.raises(ValueError, match="1-D int16"):
        wav_bytes(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D int16"):
        wav_bytes(np.zeros((4, 2), dtype=np.int16))


def test_write_wav_atomic_leaves_only_the_final_file(tmp_path: Path) -> None:
    target = tmp_path / "greeting.wav"
    samples = np.arange(-50, 50, dtype=np.int16)
    write_wav_atomic(target, samples)
    assert os.listdir(tmp_path) == ["greeting.wav"]
    assert np.array_equal(to_telephony(read_wav(target.read_bytes())), samples)


def test_a_failed_write_leaves_no_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_failure(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", disk_failure)
    with pytest.raises(OSError, match="Input/output error"):
        write_wav_atomic(tmp_path / "greeting.wav", np.zeros(10, dtype=np.int16))
    assert os.listdir(tmp_path) == []


def test_a_failed_replace_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "greeting.wav"
    write_wav_atomic(target, np.ones(10, dtype=np.int16))
    before = target.read_bytes()

    def refuse(src: str, dst: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_wav_atomic(target, np.zeros(99, dtype=np.int16))
    assert os.listdir(tmp_path) == ["greeting.wav"]
    assert target.read_bytes() == before
