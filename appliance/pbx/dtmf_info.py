"""DTMF in SIP INFO bodies: application/dtmf-relay (Signal=/Duration= lines, the form
Cisco introduced and most phones send) and application/dtmf (the digit alone)."""

from __future__ import annotations

from typing import Final

from appliance.pbx.call_events import DTMF_DIGITS, Dtmf, DtmfSource

RELAY_TYPE: Final = "application/dtmf-relay"
PLAIN_TYPE: Final = "application/dtmf"
DEFAULT_DURATION_MS: Final = 160
MAX_DURATION_MS: Final = 10_000
_EVENT_DIGITS: Final = "0123456789*#ABCD"  # RFC 4733 event codes 0-15, also used in Signal=


def parse_info(content_type: str | None, body: bytes) -> Dtmf | None:
    """The digit an INFO carries, or None when the body is not DTMF we can read."""
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if kind == PLAIN_TYPE:
        return _digit(text, DEFAULT_DURATION_MS)
    if kind != RELAY_TYPE:
        return None
    signal: str | None = None
    duration = DEFAULT_DURATION_MS
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip()
        if name == "signal":
            signal = value
        elif name == "duration" and value.isdigit() and len(value) <= 6:
            duration = min(int(value), MAX_DURATION_MS)
    return None if signal is None else _digit(signal, duration)


def _digit(text: str, duration: int) -> Dtmf | None:
    if text.isdigit() and len(text) <= 2 and int(text) < 16:
        text = _EVENT_DIGITS[int(text)]  # some phones send the event code (10 = *)
    text = text.upper()
    if text not in DTMF_DIGITS:
        return None
    return Dtmf(text, duration, DtmfSource.INFO)


def relay_body(digit: str, duration_ms: int) -> bytes:
    return f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode("ascii")
