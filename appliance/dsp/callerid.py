"""Caller ID for analog ports: the public face, plus DTMF caller ID (EN 300 659-1 Annex B).

The message layer (GR-30 SDMF/MDMF, EN 300 659-3) lives in
:mod:`appliance.dsp.callerid_message` and the FSK modem (Bell 202, V.23) in
:mod:`appliance.dsp.callerid_fsk`; both are re-exported here so ports import one
module.

DTMF caller ID, as in the Nordic countries, the Netherlands and elsewhere, sends
the number as DTMF digits before (or between) rings:

* a number: start code "A" (EN 300 659-1 Annex B; Sweden) or "D" (used by some
  networks instead), the digits, end code "C";
* no number: "B", a two-digit information code, "C"; code "10" means the
  caller withheld the number and "00" that it is unavailable (Annex B); other
  codes (Sweden sends some for international or mobile callers) are read as
  unavailable when no number came with them;
* Denmark ends with "#" instead of "C" and says why a number is missing with
  "D1#" (restricted: private), "D2#" (international) or "D3#" (technical);
  see :func:`danish_absence_code`.

Each symbol is 70 ms of tone followed by 70 ms of silence, the figure Swedish
and Danish descriptions give; the receiver here is :class:`DtmfDetector`, which
confirms a digit after about 30 ms and splits digits on a 28 ms pause. Levels
are -7 dBm0 for the low-group tone and -5 dBm0 for the high-group tone, the
2 dB pre-emphasis ES 201 235-2 asks DTMF senders for.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.callerid_fsk import (
    BAUD,
    CENTRE_HZ,
    DEFAULT_LEVEL_DBM0,
    FSK_PARAMS,
    FskDemodulator,
    FskLimits,
    FskParams,
    FskReceiver,
    FskStandard,
    fsk_demodulate,
    fsk_modulate,
)
from appliance.dsp.callerid_message import (
    Absence,
    CallerId,
    CallerIdError,
    CallTime,
    MessageFormat,
    checksum,
    decode_message,
    encode_message,
)
from appliance.dsp.dtmf import DigitStarted, DtmfDetector, dtmf_symbol
from appliance.dsp.g711 import Codec
from appliance.dsp.tones import FRAME_SAMPLES, SAMPLE_RATE

__all__ = [
    "BAUD",
    "CENTRE_HZ",
    "DEFAULT_LEVEL_DBM0",
    "FSK_PARAMS",
    "Absence",
    "CallTime",
    "CallerId",
    "CallerIdError",
    "FskDemodulator",
    "FskLimits",
    "FskParams",
    "FskReceiver",
    "FskStandard",
    "MessageFormat",
    "checksum",
    "danish_absence_code",
    "decode_message",
    "dtmf_cid_decode",
    "dtmf_cid_encode",
    "encode_message",
    "fsk_demodulate",
    "fsk_modulate",
]

DTMF_TONE_MS: Final = 70
DTMF_GAP_MS: Final = 70
MAX_DTMF_DIGITS: Final = 20
_INFO_CODES: Final = {"10": Absence.PRIVATE, "00": Absence.UNAVAILABLE}
_NUMBER_STARTS: Final = "AD"
_ENDS: Final = "C#"


def dtmf_cid_encode(
    number: str | Absence,
    *,
    start: str = "A",
    tone_ms: int = DTMF_TONE_MS,
    gap_ms: int = DTMF_GAP_MS,
    codec: Codec = Codec.PCMU,
) -> npt.NDArray[np.int16]:
    """DTMF caller ID for ``number`` ("A" or "D", digits, "C") or an absence ("B", code, "C")."""
    if isinstance(number, Absence):
        code = "10" if number is Absence.PRIVATE else "00"
        keys = "B" + code + "C"
    else:
        if start not in _NUMBER_STARTS:
            raise ValueError(f"start code {start!r} must be 'A' or 'D'")
        if not number.isascii() or not number.isdigit() or len(number) > MAX_DTMF_DIGITS:
            raise ValueError(f"number {number!r} must be 1..{MAX_DTMF_DIGITS} digits 0-9")
        keys = start + number + "C"
    if tone_ms <= 0 or gap_ms <= 0:
        raise ValueError("tone_ms and gap_ms must be positive")
    tone, gap = tone_ms * SAMPLE_RATE // 1000, gap_ms * SAMPLE_RATE // 1000
    return np.concatenate([dtmf_symbol(key, tone, gap, codec) for key in keys])


def danish_absence_code(keys: str) -> Absence | None:
    """Interop quirk, Denmark: "D1#" restricted, "D2#" international, "D3#" technical.

    Returns the absence reason for those three strings and None for anything
    else, so a "D"-started number is not mistaken for one.
    """
    if len(keys) == 3 and keys[0] == "D" and keys[2] == "#" and keys[1] in "123":
        return Absence.PRIVATE if keys[1] == "1" else Absence.UNAVAILABLE
    return None


def _detect_keys(samples: npt.NDArray[np.int16]) -> str:
    detector = DtmfDetector()
    keys: list[str] = []
    data = np.asarray(samples, dtype=np.int16)
    if data.ndim != 1:
        raise CallerIdError(f"samples must be one-dimensional, not shape {data.shape}")
    for at in range(0, data.size, FRAME_SAMPLES):
        for event in detector.feed(data[at : at + FRAME_SAMPLES], at / SAMPLE_RATE):
            if isinstance(event, DigitStarted):
                keys.append(event.digit)
    return "".join(keys)


def dtmf_cid_decode(samples: npt.NDArray[np.int16]) -> CallerId:
    """The caller ID carried as DTMF in ``samples``, or CallerIdError saying what is wrong."""
    keys = _detect_keys(samples)
    first = min((i for i, key in enumerate(keys) if key in "ABD"), default=None)
    if first is None:
        raise CallerIdError(f"no DTMF caller ID start code (A, B or D) in {keys!r}")
    end = min((i for i, key in enumerate(keys) if key in _ENDS and i > first), default=None)
    if end is None:
        raise CallerIdError(f"DTMF caller ID {keys[first:]!r} has no end code (C or #)")
    message = keys[first : end + 1]
    if (danish := danish_absence_code(message)) is not None:
        return CallerId(number_absence=danish)
    # Segments: a start code and what follows it up to the next code (Sweden sends
    # "A number", optionally "D redirecting number" and "B info", then "C").
    segments: dict[str, str] = {}
    current = ""
    for key in message[:-1]:
        if key in "ABD":
            if key in segments:
                raise CallerIdError(f"DTMF caller ID {message!r} repeats start code {key}")
            segments[key] = ""
            current = key
        elif key.isdigit():
            segments[current] += key
        else:
            raise CallerIdError(f"DTMF caller ID {message!r} has {key!r} inside it")
    number = segments.get("A") or segments.get("D")
    if number:
        if len(number) > MAX_DTMF_DIGITS:
            raise CallerIdError(f"DTMF number of {len(number)} digits exceeds {MAX_DTMF_DIGITS}")
        return CallerId(number=number)
    if "B" in segments:
        info = segments["B"]
        if len(info) != 2:
            raise CallerIdError(f"DTMF information code {info!r} is not two digits")
        return CallerId(number_absence=_INFO_CODES.get(info, Absence.UNAVAILABLE))
    raise CallerIdError(f"DTMF caller ID {message!r} carries no digits")
