"""WAV files: strict reading, conversion to telephone audio, and crash-safe writing.

Reading walks the RIFF chunks itself (Microsoft "Multimedia Programming Interface and
Data Specifications 1.0", RIFF/WAVE; WAVEFORMATEXTENSIBLE from the Windows DDK)
rather than using the stdlib ``wave`` module: in Python 3.11 ``wave`` rejects
WAVE_FORMAT_EXTENSIBLE and IEEE float files, which audio editors write by default,
and it silently returns fewer frames than the header promises when the data is
truncated, so a half-uploaded greeting would play cut off instead of being refused.
Every way a file can be wrong raises ``WavError`` with a message an installer can
act on. ``wave`` is still used for writing, where it is correct and simple.

Accepted: format tag 1 (PCM: 8-bit unsigned, 16/24/32-bit signed), 3 (IEEE float:
32/64-bit) and 0xFFFE (EXTENSIBLE with a PCM or float sub-format); 1 to 8 channels;
4000 to 192000 Hz. A ``fmt `` chunk after the ``data`` chunk is accepted: the RIFF
specification orders them for streaming readers, and this reader has the whole
file in memory, so the order costs nothing to tolerate.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr

from appliance.system.files import fsync_folder

TELEPHONY_RATE: Final = 8000
MAX_WAV_BYTES: Final = 50 * 1024 * 1024  # a few minutes of CD audio; bounds memory use
MIN_RATE: Final = 4000
MAX_RATE: Final = 192000
MAX_CHANNELS: Final = 8
# Real files hold a handful (fmt, fact, LIST, data); the cap bounds the work a
# file of tiny chunks can cause.
MAX_CHUNKS: Final = 1000

_PCM: Final = 0x0001
_FLOAT: Final = 0x0003
_EXTENSIBLE: Final = 0xFFFE
# KSDATAFORMAT_SUBTYPE_* GUIDs are the format tag followed by this fixed tail.
_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_PCM_WIDTHS: Final = frozenset({8, 16, 24, 32})
_FLOAT_WIDTHS: Final = frozenset({32, 64})
# Names for the tags people most often upload by mistake, so the message says what
# the file is rather than only a number.
_TAG_NAMES: Final[dict[int, str]] = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MP3",
    0x0161: "WMA",
    0x1610: "AAC",
}


class WavError(ValueError):
    """A file that is not a WAV this reader accepts; the message says why and what to do."""


@dataclass(frozen=True, slots=True, eq=False)
class WavAudio:
    """Decoded audio: ``samples`` is float32, shape (frames, channels), within [-1, 1].

    ``samples`` is read-only. Equality is identity: comparing arrays element-wise
    has no single truth value.
    """

    rate: int
    channels: int
    sample_width: int  # bytes per sample in the file
    is_float: bool
    samples: npt.NDArray[np.float32]

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])


@dataclass(frozen=True, slots=True)
class _Format:
    tag: int  # 1 or 3 once EXTENSIBLE is resolved
    channels: int
    rate: int
    byte_rate: int
    block_align: int
    bits: int


@dataclass(frozen=True, slots=True)
class _Chunk:
    ident: bytes
    start: int  # offset of the body
    size: int


def read_wav(data: bytes, max_bytes: int = MAX_WAV_BYTES) -> WavAudio:
    """Parse a whole WAV file; raises ``WavError`` for anything it cannot trust."""
    if len(data) > max_bytes:
        raise WavError(f"file is {len(data)} bytes; the limit is {max_bytes} bytes")
    chunks = _walk(data)
    fmt_chunks = [c for c in chunks if c.ident == b"fmt "]
    data_chunks = [c for c in chunks if c.ident == b"data"]
    if not fmt_chunks:
        raise WavError("no fmt chunk: the file does not say how its audio is stored")
    if not data_chunks:
        raise WavError("no data chunk: the file holds no audio")
    if len(fmt_chunks) > 1 or len(data_chunks) > 1:
        raise WavError("more than one fmt or data chunk; save the file again as a plain WAV")
    fmt_chunk, data_chunk = fmt_chunks[0], data_chunks[0]
    fmt = _parse_fmt(data[fmt_chunk.start : fmt_chunk.start + fmt_chunk.size])
    if data_chunk.size == 0:
        raise WavError("data chunk is empty: the file holds no audio")
    if data_chunk.size % fmt.block_align:
        raise WavError(
            f"data size {data_chunk.size} is not a whole number of {fmt.block_align}-byte frames"
        )
    body = data[data_chunk.start : data_chunk.start + data_chunk.size]
    samples = _decode(body, fmt)
    samples.setflags(write=False)
    return WavAudio(
        rate=fmt.rate,
        channels=fmt.channels,
        sample_width=fmt.bits // 8,
        is_float=fmt.tag == _FLOAT,
        samples=samples,
    )


def _walk(data: bytes) -> list[_Chunk]:
    if len(data) < 12:
        raise WavError(f"not a RIFF/WAVE file (only {len(data)} bytes)")
    magic, riff_size, form = struct.unpack_from("<4sI4s", data, 0)
    if magic == b"RIFX":
        raise WavError("big-endian RIFX files are not supported; save as a standard PCM WAV")
    if magic in (b"RF64", b"BW64"):
        raise WavError("RF64 (over 4 GB) WAV files are not supported; save as a standard WAV")
    if magic != b"RIFF" or form != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    riff_end = 8 + riff_size
    # Bytes after the RIFF chunk (tags some tools append) are outside the file proper.
    end = min(riff_end, len(data))
    chunks: list[_Chunk] = []
    pos = 12
    while end - pos >= 8:
        ident, size = struct.unpack_from("<4sI", data, pos)
        start = pos + 8
        if start + size > len(data):
            raise WavError(
                f"{_chunk_name(ident)} chunk says {size} bytes but only "
                f"{len(data) - start} follow (truncated file)"
            )
        if start + size > end:
            raise WavError(
                f"{_chunk_name(ident)} chunk runs {start + size - end} bytes past "
                f"the end of the RIFF chunk (RIFF size says {riff_size} bytes)"
            )
        if len(chunks) == MAX_CHUNKS:
            raise WavError(f"more than {MAX_CHUNKS} chunks; save the file again as a plain WAV")
        chunks.append(_Chunk(ident, start, size))
        # RIFF §"Chunks": a chunk of odd size is followed by one pad byte, which
        # some writers omit on the last chunk; min() tolerates that.
        pos = min(start + size + (size & 1), end)
    # Fewer than 8 stray bytes cannot hold a chunk; they are ignored like the pad.
    if riff_end > len(data):
        raise WavError(
            f"RIFF size says {riff_size} bytes but the file holds only "
            f"{len(data) - 8} after the header (truncated file)"
        )
    return chunks


def _chunk_name(ident: bytes) -> str:
    text = ident.decode("latin-1")
    return text.strip() if text.isprintable() else repr(ident)


def _parse_fmt(body: bytes) -> _Format:
    if len(body) < 16:
        raise WavError(f"fmt chunk is {len(body)} bytes; at least 16 are needed")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body, 0)
    if tag == _EXTENSIBLE:
        tag = _extensible_subformat(body, bits)
    if tag not in (_PCM, _FLOAT):
        name = _TAG_NAMES.get(tag)
        what = f" ({name})" if name else ""
        raise WavError(f"unsupported format tag 0x{tag:04X}{what}; save as PCM WAV")
    widths = _PCM_WIDTHS if tag == _PCM else _FLOAT_WIDTHS
    if bits not in widths:
        kind = "PCM" if tag == _PCM else "float"
        allowed = "/".join(str(w) for w in sorted(widths))
        raise WavError(f"{bits}-bit {kind} is not supported; use {allowed}-bit")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavError(f"{channels} channels; 1 to {MAX_CHANNELS} are supported")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(f"sample rate {rate} Hz; {MIN_RATE} to {MAX_RATE} Hz are supported")
    if block_align != channels * bits // 8:
        raise WavError(f"block align {block_align} does not match {channels} channels x {bits}-bit")
    if byte_rate != rate * block_align:
        raise WavError(
            f"byte rate {byte_rate} does not match {rate} Hz x {block_align}-byte frames"
        )
    return _Format(tag, channels, rate, byte_rate, block_align, bits)


def _extensible_subformat(body: bytes, bits: int) -> int:
    # WAVEFORMATEXTENSIBLE: cbSize (22), valid bits, channel mask, sub-format GUID.
    if len(body) < 40:
        raise WavError(f"EXTENSIBLE fmt chunk is {len(body)} bytes; 40 are needed")
    valid_bits = struct.unpack_from("<H", body, 18)[0]
    guid = body[24:40]
    if guid[2:] != _GUID_TAIL:
        raise WavError("EXTENSIBLE file with an unknown sub-format; save as PCM WAV")
    if valid_bits > bits:
        raise WavError(f"valid bits {valid_bits} exceed the {bits}-bit sample container")
    # Valid bits below the container are left-justified, so the samples decode
    # correctly as full container-width values.
    return int(struct.unpack_from("<H", guid, 0)[0])


def _decode(body: bytes, fmt: _Format) -> npt.NDArray[np.float32]:
    raw = np.frombuffer(body, dtype=np.uint8)
    flat: npt.NDArray[np.float32]
    if fmt.tag == _FLOAT:
        dtype = "<f4" if fmt.bits == 32 else "<f8"
        values = np.frombuffer(body, dtype=dtype).astype(np.float32)
        # Float files may hold overs, NaN or inf; telephone audio cannot.
        values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0)
        flat = np.clip(values, -1.0, 1.0).astype(np.float32)
    elif fmt.bits == 8:
        flat = ((raw.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    elif fmt.bits == 24:
        triples = raw.reshape(-1, 3).astype(np.int32)
        # The top byte carries the sign: view it as int8 before shifting.
        top = raw.reshape(-1, 3)[:, 2].view(np.int8).astype(np.int32)
        ints = triples[:, 0] | (triples[:, 1] << 8) | (top << 16)
        flat = (ints.astype(np.float32) / np.float32(1 << 23)).astype(np.float32)
    else:
        dtype = "<i2" if fmt.bits == 16 else "<i4"
        # Scaling by a power of two is exact in float32, and float32 keeps the
        # memory of a 50 MB upload at twice its size rather than four times.
        scale = np.float32(1.0 / (1 << (fmt.bits - 1)))
        flat = np.frombuffer(body, dtype=dtype).astype(np.float32) * scale
    return flat.reshape(-1, fmt.channels)


def to_telephony(audio: WavAudio) -> npt.NDArray[np.int16]:
    """Mono int16 at 8 kHz: channels averaged, resampled with soxr, clipped."""
    mono = audio.samples.mean(axis=1, dtype=np.float32)
    if audio.rate != TELEPHONY_RATE:
        # soxr "HQ" is a linear-phase low-pass at the new Nyquist, so nothing above
        # 4 kHz folds back into the telephone band.
        mono = np.asarray(
            soxr.resample(mono, audio.rate, TELEPHONY_RATE, quality="HQ"), dtype=np.float32
        )
    # Scaling by 32768 makes 16-bit input come back bit-exact; +1.0 clips to 32767.
    scaled = np.rint(mono * np.float32(32768.0))
    out: npt.NDArray[np.int16] = np.clip(scaled, -32768, 32767).astype(np.int16)
    return out


def convert_upload(data: bytes, max_bytes: int = MAX_WAV_BYTES) -> npt.NDArray[np.int16]:
    """An installer's uploaded recording, ready to store and play: 8 kHz mono int16."""
    return to_telephony(read_wav(data, max_bytes))


def wav_bytes(samples: npt.NDArray[np.int16], rate: int = TELEPHONY_RATE) -> bytes:
    """A 16-bit mono PCM WAV file holding ``samples``."""
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"need 1-D int16 samples, got {samples.ndim}-D {samples.dtype}")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def write_wav_atomic(
    path: Path, samples: npt.NDArray[np.int16], rate: int = TELEPHONY_RATE
) -> None:
    """Write a WAV so that ``path`` holds either the old file or the whole new one.

    STYLE §2.12: the data is fsync'd under a temporary name in the same folder, renamed
    over ``path`` and the folder fsync'd, so a power cut never leaves half a file under
    the final name. The temporary file is created mode 0600 (recordings are private).
    """
    data = wav_bytes(samples, rate)
    folder = path.parent
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_folder(folder)
