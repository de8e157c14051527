"""Caller ID data-link messages: Bellcore GR-30 SDMF/MDMF and ETSI EN 300 659-3 call set-up.

Both families frame a message the same way (GR-30 §5; EN 300 659-3 §5.1): a
message type byte, a length byte counting the bytes that follow up to (not
including) the checksum, the message body, and a checksum byte that is the two's
complement of the modulo-256 sum of everything before it, so that all bytes of a
good message sum to zero.

* SDMF (GR-30 type 0x04, "Calling Number Delivery"): the body is eight ASCII
  digits MMDDHHMM, then the calling number in ASCII, or the single letter "O"
  (out of area / unavailable) or "P" (private).
* MDMF (GR-30 type 0x80) and the ETSI call set-up message (EN 300 659-3 §5.2.1,
  also type 0x80): the body is a list of parameters, each a type byte, a length
  byte and a value. We read and write date and time (0x01, eight digits
  MMDDHHMM), the calling number / calling line identity (0x02), the reason for
  its absence (0x04, "O" or "P"), the calling party name (0x07) and the reason for
  its absence (0x08). The two standards assign these five codes alike, so the
  same content encodes to the same bytes; the formats differ in the lengths
  their terminals are required to show (GR-30: name up to 15 characters; ETSI:
  calling line identity up to 20, name up to 50), which the encoder enforces.

Decoding follows the receiver rules of both documents: parameters a receiver
does not know are skipped (GR-30 and EN 300 659-3 §5.1 let networks add them),
while a bad checksum, a length that does not match, a truncated parameter or an
invalid value raises :class:`CallerIdError` saying which. Input longer than one
message is refused rather than truncated, because the modem already cuts a burst
at the length the message announces.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Final

SDMF_TYPE: Final = 0x04  # GR-30 Calling Number Delivery, single data message format
MDMF_TYPE: Final = 0x80  # GR-30 MDMF; EN 300 659-3 §5.2.1 "Call Setup"

PARAM_DATE_TIME: Final = 0x01
PARAM_NUMBER: Final = 0x02  # ETSI "calling line identity"
PARAM_NUMBER_ABSENT: Final = 0x04  # ETSI "reason for absence of calling line identity"
PARAM_NAME: Final = 0x07
PARAM_NAME_ABSENT: Final = 0x08

MAX_BODY: Final = 255  # the length field is one byte
NUMBER_CHARS: Final = frozenset(string.digits + "*#+")
NAME_CHARS: Final = frozenset(chr(c) for c in range(0x20, 0x7F))  # printable ASCII


class CallerIdError(ValueError):
    """A caller ID message (or signal) that cannot be decoded; the text says why."""


class Absence(Enum):
    """Why a number or name is withheld (GR-30 and EN 300 659-3 both use O and P)."""

    PRIVATE = "private"  # "P": the caller asked for privacy
    UNAVAILABLE = "unavailable"  # "O": out of area, or not known to the network

    @property
    def code(self) -> str:
        return "P" if self is Absence.PRIVATE else "O"

    @classmethod
    def from_code(cls, code: str) -> Absence:
        for reason in cls:
            if reason.code == code:
                return reason
        raise CallerIdError(f"absence reason {code!r} is neither 'O' nor 'P'")


class MessageFormat(Enum):
    """Which message to build: GR-30 SDMF or MDMF, or the ETSI call set-up."""

    SDMF = "sdmf"
    MDMF = "mdmf"
    ETSI = "etsi"


@dataclass(frozen=True, slots=True)
class _FormatLimits:
    number: int
    name: int


# GR-30 name up to 15 characters; ETSI CLI up to 20 and name up to 50 (EN 300 659-3
# §5.3). GR-30 numbers are 10 digits in NANP; we allow 20 for international callers.
_LIMITS: Final = MappingProxyType(
    {
        MessageFormat.SDMF: _FormatLimits(number=20, name=0),
        MessageFormat.MDMF: _FormatLimits(number=20, name=15),
        MessageFormat.ETSI: _FormatLimits(number=20, name=50),
    }
)


@dataclass(frozen=True, slots=True)
class CallTime:
    """The date and time field: month, day, hour, minute; no year, as on the wire."""

    month: int
    day: int
    hour: int
    minute: int

    def __post_init__(self) -> None:
        for field, value, low, high in (
            ("month", self.month, 1, 12),
            ("day", self.day, 1, 31),
            ("hour", self.hour, 0, 23),
            ("minute", self.minute, 0, 59),
        ):
            if not low <= value <= high:
                raise ValueError(f"{field} {value} is outside {low}..{high}")

    @classmethod
    def of(cls, when: datetime) -> CallTime:
        """The fields of ``when``; the caller supplies the clock (STYLE §2.2)."""
        return cls(when.month, when.day, when.hour, when.minute)

    def __bytes__(self) -> bytes:
        return f"{self.month:02d}{self.day:02d}{self.hour:02d}{self.minute:02d}".encode("ascii")

    @classmethod
    def parse(cls, raw: bytes) -> CallTime:
        if len(raw) != 8 or not all(0x30 <= b <= 0x39 for b in raw):
            raise CallerIdError(f"date/time must be 8 ASCII digits MMDDHHMM, not {raw!r}")
        fields = [int(raw[i : i + 2]) for i in range(0, 8, 2)]
        try:
            return cls(*fields)
        except ValueError as exc:
            raise CallerIdError(f"date/time {raw.decode('ascii')}: {exc}") from None


@dataclass(frozen=True, slots=True)
class CallerId:
    """What one caller ID message says about a call.

    A number (or name) and its absence reason exclude each other; None with no
    reason means the message simply did not carry that item. Empty strings are
    refused: say None.
    """

    number: str | None = None
    name: str | None = None
    when: CallTime | None = None
    number_absence: Absence | None = None
    name_absence: Absence | None = None

    def __post_init__(self) -> None:
        if self.number is not None:
            if self.number_absence is not None:
                raise ValueError("a number and a reason for its absence exclude each other")
            if not self.number or not set(self.number) <= NUMBER_CHARS:
                raise ValueError(f"number {self.number!r} must be non-empty digits, '*', '#', '+'")
        if self.name is not None:
            if self.name_absence is not None:
                raise ValueError("a name and a reason for its absence exclude each other")
            if not self.name or not set(self.name) <= NAME_CHARS:
                raise ValueError(f"name {self.name!r} must be non-empty printable ASCII")


def checksum(data: bytes) -> int:
    """GR-30 / EN 300 659-3 checksum: two's complement of the modulo-256 byte sum."""
    return -sum(data) & 0xFF


def _frame(message_type: int, body: bytes) -> bytes:
    if len(body) > MAX_BODY:
        raise ValueError(f"message body of {len(body)} bytes exceeds {MAX_BODY}")
    head = bytes((message_type, len(body))) + body
    return head + bytes((checksum(head),))


def encode_message(caller: CallerId, fmt: MessageFormat) -> bytes:
    """The whole message (type, length, body, checksum) for ``caller`` in ``fmt``.

    Raises ValueError when ``fmt`` cannot carry what ``caller`` says: SDMF has no
    name and needs the date and time; names and numbers have per-format limits.
    """
    if fmt is MessageFormat.SDMF:
        if caller.name is not None or caller.name_absence is not None:
            raise ValueError("SDMF carries no name")
        if caller.when is None:
            raise ValueError("SDMF needs the date and time")
    limits = _LIMITS[fmt]
    if caller.number is not None and len(caller.number) > limits.number:
        raise ValueError(f"{fmt.name} carries numbers up to {limits.number} characters")
    if caller.name is not None and len(caller.name) > limits.name:
        raise ValueError(f"{fmt.name} carries names up to {limits.name} characters")
    if fmt is MessageFormat.SDMF and caller.when is not None:
        return _frame(SDMF_TYPE, bytes(caller.when) + _sdmf_number(caller))
    body = bytearray()

    def param(code: int, value: bytes) -> None:
        body.extend((code, len(value)))
        body.extend(value)

    # Order as in the GR-30 and EN 300 659-3 examples: date/time, number, name.
    if caller.when is not None:
        param(PARAM_DATE_TIME, bytes(caller.when))
    if caller.number is not None:
        param(PARAM_NUMBER, caller.number.encode("ascii"))
    if caller.number_absence is not None:
        param(PARAM_NUMBER_ABSENT, caller.number_absence.code.encode("ascii"))
    if caller.name is not None:
        param(PARAM_NAME, caller.name.encode("ascii"))
    if caller.name_absence is not None:
        param(PARAM_NAME_ABSENT, caller.name_absence.code.encode("ascii"))
    return _frame(MDMF_TYPE, bytes(body))


def _sdmf_number(caller: CallerId) -> bytes:
    if caller.number is not None:
        return caller.number.encode("ascii")
    if caller.number_absence is not None:
        return caller.number_absence.code.encode("ascii")
    return b""  # date and time only: decodes back to no number


def decode_message(data: bytes) -> CallerId:
    """Parse one whole message (SDMF or MDMF/ETSI call set-up) or raise CallerIdError."""
    if len(data) < 3:
        raise CallerIdError(f"message of {len(data)} bytes is shorter than type, length, checksum")
    message_type, length = data[0], data[1]
    if len(data) != length + 3:
        raise CallerIdError(
            f"length byte says {length} body bytes, so {length + 3} in all, but got {len(data)}"
        )
    if sum(data) & 0xFF:
        raise CallerIdError(
            f"checksum 0x{data[-1]:02x} is wrong; expected 0x{checksum(data[:-1]):02x}"
        )
    body = data[2:-1]
    if message_type == SDMF_TYPE:
        return _decode_sdmf(body)
    if message_type == MDMF_TYPE:
        return _decode_mdmf(body)
    raise CallerIdError(
        f"message type 0x{message_type:02x} is not SDMF (0x04) or MDMF/call set-up (0x80)"
    )


def _text(raw: bytes, what: str) -> str:
    # Bytes outside ASCII are refused here so the CallerId checks see only str.
    if any(b > 0x7F for b in raw):
        raise CallerIdError(f"{what} {raw!r} is not ASCII")
    return raw.decode("ascii")


def _caller(
    *,
    number: str | None = None,
    name: str | None = None,
    when: CallTime | None = None,
    number_absence: Absence | None = None,
    name_absence: Absence | None = None,
) -> CallerId:
    try:
        return CallerId(number, name, when, number_absence, name_absence)
    except ValueError as exc:  # what the wire said is inconsistent or malformed
        raise CallerIdError(str(exc)) from None


def _decode_sdmf(body: bytes) -> CallerId:
    if len(body) < 8:
        raise CallerIdError(f"SDMF body of {len(body)} bytes lacks the 8-digit date/time")
    when = CallTime.parse(body[:8])
    number = _text(body[8:], "SDMF number")
    if number in ("O", "P"):
        return _caller(when=when, number_absence=Absence.from_code(number))
    return _caller(when=when, number=number or None)


def _decode_mdmf(body: bytes) -> CallerId:
    seen: dict[int, bytes] = {}
    at = 0
    while at < len(body):
        if at + 2 > len(body):
            raise CallerIdError(f"parameter at body offset {at} is cut off before its length")
        code, size = body[at], body[at + 1]
        value = body[at + 2 : at + 2 + size]
        if len(value) != size:
            raise CallerIdError(f"parameter 0x{code:02x} says {size} bytes but {len(value)} remain")
        at += 2 + size
        if code not in _KNOWN_PARAMS:
            continue  # GR-30 / EN 300 659-3 §5.1: skip parameters we do not know
        if code in seen:
            raise CallerIdError(f"parameter 0x{code:02x} appears twice")
        seen[code] = value
    when = CallTime.parse(seen[PARAM_DATE_TIME]) if PARAM_DATE_TIME in seen else None
    # An empty number or name parameter is read as "not sent", not as an error.
    number = _text(seen.get(PARAM_NUMBER, b""), "number") or None
    name = _text(seen.get(PARAM_NAME, b""), "name") or None
    return _caller(
        number=number,
        name=name,
        when=when,
        number_absence=_absence(seen.get(PARAM_NUMBER_ABSENT), PARAM_NUMBER_ABSENT),
        name_absence=_absence(seen.get(PARAM_NAME_ABSENT), PARAM_NAME_ABSENT),
    )


def _absence(value: bytes | None, code: int) -> Absence | None:
    if value is None:
        return None
    if len(value) != 1:
        raise CallerIdError(f"parameter 0x{code:02x} must be 1 byte, not {len(value)}")
    return Absence.from_code(chr(value[0]))


_KNOWN_PARAMS: Final = frozenset(
    (PARAM_DATE_TIME, PARAM_NUMBER, PARAM_NUMBER_ABSENT, PARAM_NAME, PARAM_NAME_ABSENT)
)
