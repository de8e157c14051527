"""G.711 PCMU (mu-law) and PCMA (A-law) by table lookup: ITU-T G.711 (11/88) §2-§3.

Both laws are built once at import from a scalar reference that follows G.711
segment by segment, then applied to whole frames with numpy indexing:

* decode: a 256-entry ``int16`` table indexed by the code byte;
* encode: a 65,536-entry ``uint8`` table indexed by the ``uint16`` view of the
  ``int16`` sample (so -1 is index 0xFFFF);
* transcoding (G.711 Tables 3 and 4 in spirit): 256-entry byte tables used with
  ``bytes.translate``, built as decode-then-encode so they agree with our codec.

Linear samples are 16-bit. G.711 itself works on 14-bit (mu-law, overload +-8159)
and 13-bit (A-law, overload +-4096) magnitudes; our values are those scaled by 4
and 8, so mu-law 0x00 decodes to -8031 * 4 = -32124 and A-law 0xAA to 4032 * 8 = 32256.

mu-law (G.711 §3, Table 2): magnitude clipped to 32635, biased by 0x84 (132 =
33 * 4), segment = position of the leading one above bit 7, four mantissa bits below
it, sign bit set for negative values, then all bits inverted (so on the line bit 7
is 1 for positive values). +0 is 0xFF; 0x7F is the
"negative zero" and decodes to 0 too, so it is the one code that does not survive a
decode/encode round trip (it comes back as 0xFF). Decision values are symmetric in
magnitude: the two least significant bits that 16-bit input adds below G.711's
14 bits are truncated on the magnitude, as in the common bias-0x84 encoder.

A-law (G.711 §2, Table 1): the 16-bit sample is shifted to 13 bits, negative values
take the ones' complement (so -1..-16 share the code of -8, like ITU-T G.191's
reference), segment 0 and 1 share the step size, sign bit set for positive values,
then the even bits are inverted (XOR 0x55). A-law has no negative zero.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

ULAW_BIAS: Final = 0x84  # G.711 Table 2: 33 in 14-bit units, times 4
ULAW_CLIP: Final = 32635  # 32767 - ULAW_BIAS: the largest magnitude that still fits
ALAW_XOR: Final = 0x55  # G.711 §2: even bits inverted on the line


class Codec(Enum):
    """The two G.711 laws, by static RTP payload type (RFC 3551 §6, Table 4)."""

    PCMU = 0
    PCMA = 8

    @property
    def payload_type(self) -> int:
        return self.value

    @property
    def encoding_name(self) -> str:
        """The SDP rtpmap encoding name (RFC 3551 §4.5.14)."""
        return self.name

    @property
    def clock_rate(self) -> int:
        return 8000


def ulaw_encode_scalar(sample: int) -> int:
    """One 16-bit linear sample to a mu-law code byte (G.711 §3, reference)."""
    if not -32768 <= sample <= 32767:
        raise ValueError(f"sample {sample} is outside int16")
    sign = 0x80 if sample < 0 else 0x00  # set for negative before inversion: 1 on the line = +
    magnitude = min(abs(sample), ULAW_CLIP) + ULAW_BIAS  # 132 ..= 32767
    segment = magnitude.bit_length() - 8  # 0 ..= 7: leading one at bit 7 + segment
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    return ~(sign | (segment << 4) | mantissa) & 0xFF


def ulaw_decode_scalar(code: int) -> int:
    """One mu-law code byte to a 16-bit linear sample (G.711 §3, reference)."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code {code} is not a byte")
    code = ~code & 0xFF
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS
    return -magnitude if code & 0x80 else magnitude


def alaw_encode_scalar(sample: int) -> int:
    """One 16-bit linear sample to an A-law code byte (G.711 §2, reference)."""
    if not -32768 <= sample <= 32767:
        raise ValueError(f"sample {sample} is outside int16")
    if sample >= 0:
        sign, magnitude = 0x80, sample >> 3  # 13-bit: 0 ..= 4095
    else:
        sign, magnitude = 0x00, (-sample - 1) >> 3  # ones' complement: -1 -> 0
    if magnitude < 32:  # segment 0: 0..31 in steps of 2 (13-bit units)
        segment, mantissa = 0, magnitude >> 1
    else:  # segment s >= 1 spans 16 << s ..= (32 << s) - 1 in steps of 1 << s
        segment = magnitude.bit_length() - 5  # 1 ..= 7
        mantissa = (magnitude >> segment) & 0x0F
    return (sign | (segment << 4) | mantissa) ^ ALAW_XOR


def alaw_decode_scalar(code: int) -> int:
    """One A-law code byte to a 16-bit linear sample (G.711 §2, reference)."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code {code} is not a byte")
    code ^= ALAW_XOR
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    # Decoder output is the middle of the interval (13-bit units: 2m+1 in segment 0,
    # (2m + 33) << (segment - 1) above), times 8 for 16 bits.
    if segment == 0:
        magnitude = (mantissa << 4) + 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


def _decode_table(decode: Callable[[int], int]) -> npt.NDArray[np.int16]:
    table = np.array([decode(code) for code in range(256)], dtype=np.int16)
    table.setflags(write=False)
    return table


def _encode_table(encode: Callable[[int], int]) -> npt.NDArray[np.uint8]:
    # Index i is the uint16 view of an int16 sample: 0..32767, then -32768..-1.
    samples = np.arange(65536, dtype=np.uint16).view(np.int16)
    table = np.array([encode(int(s)) for s in samples], dtype=np.uint8)
    table.setflags(write=False)
    return table


ULAW_DECODE: Final[npt.NDArray[np.int16]] = _decode_table(ulaw_decode_scalar)
ALAW_DECODE: Final[npt.NDArray[np.int16]] = _decode_table(alaw_decode_scalar)
ULAW_ENCODE: Final[npt.NDArray[np.uint8]] = _encode_table(ulaw_encode_scalar)
ALAW_ENCODE: Final[npt.NDArray[np.uint8]] = _encode_table(alaw_encode_scalar)

ULAW_TO_ALAW: Final[bytes] = bytes(
    alaw_encode_scalar(ulaw_decode_scalar(code)) for code in range(256)
)
ALAW_TO_ULAW: Final[bytes] = bytes(
    ulaw_encode_scalar(alaw_decode_scalar(code)) for code in range(256)
)


def _as_index(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint16]:
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, not {samples.dtype}")
    return np.ascontiguousarray(samples).view(np.uint16)


def encode_ulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """16-bit linear samples to PCMU bytes, one per sample."""
    return ULAW_ENCODE[_as_index(samples)].tobytes()


def decode_ulaw(payload: bytes) -> npt.NDArray[np.int16]:
    """PCMU bytes to 16-bit linear samples (a new array)."""
    return ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def encode_alaw(samples: npt.NDArray[np.int16]) -> bytes:
    """16-bit linear samples to PCMA bytes, one per sample."""
    return ALAW_ENCODE[_as_index(samples)].tobytes()


def decode_alaw(payload: bytes) -> npt.NDArray[np.int16]:
    """PCMA bytes to 16-bit linear samples (a new array)."""
    return ALAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def ulaw_to_alaw(payload: bytes) -> bytes:
    """PCMU to PCMA byte by byte, without passing through linear samples."""
    return payload.translate(ULAW_TO_ALAW)


def alaw_to_ulaw(payload: bytes) -> bytes:
    """PCMA to PCMU byte by byte, without passing through linear samples."""
    return payload.translate(ALAW_TO_ULAW)


def encode(codec: Codec, samples: npt.NDArray[np.int16]) -> bytes:
    """Encode with the law that ``codec`` names."""
    return encode_ulaw(samples) if codec is Codec.PCMU else encode_alaw(samples)


def decode(codec: Codec, payload: bytes) -> npt.NDArray[np.int16]:
    """Decode with the law that ``codec`` names."""
    return decode_ulaw(payload) if codec is Codec.PCMU else decode_alaw(payload)
