"""EventDigits and InbandDigits, sans-IO: packets in, one Dtmf per key press out."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from appliance.dsp.dtmf import COLS, DBM0_PEAK, KEYPAD, ROWS
from appliance.dsp.g711 import Codec, encode
from appliance.media.digits import EventDigits, InbandDigits
from appliance.pbx.call_events import Dtmf, DtmfSource
from appliance.rtp.dtmf_event import DtmfEventSender

pytestmark = pytest.mark.timeout(30)


def events(digit: str, ms: int, ssrc: int = 1, ts: int = 8000, seq: int = 10) -> list[bytes]:
    sender = DtmfEventSender(payload_type=101, ssrc=ssrc)
    return [bytes(p) for _, p in sender.packets(digit, ms / 1000, timestamp=ts, sequence=seq)]


def test_one_dtmf_per_key_press_on_its_end_packet() -> None:
    digits = EventDigits()
    packets = events("A", 120)
    out = [d for p in packets[:-3] for d in digits.feed(p, 0.0)]
    assert out == []
    assert digits.feed(packets[-3], 0.1) == [Dtmf("A", 120, DtmfSource.RFC4733)]
    assert digits.feed(packets[-2], 0.1) == digits.feed(packets[-1], 0.1) == []


def test_lost_end_packets_report_at_the_timeout() -> None:
    digits = EventDigits(timeout=0.5)
    for p in events("4", 200)[:4]:
        digits.feed(p, 1.0)
    assert digits.next_deadline() == 1.5
    assert digits.handle_timer(1.4) == []
    assert digits.handle_timer(1.5) == [Dtmf("4", 80, DtmfSource.RFC4733)]


def test_a_new_ssrc_reports_the_open_press_of_the_old_one() -> None:
    digits = EventDigits()
    for p in events("1", 200, ssrc=1)[:2]:
        digits.feed(p, 0.0)
    out = digits.feed(events("2", 40, ssrc=2)[0], 0.0)
    assert out == [Dtmf("1", 40, DtmfSource.RFC4733)]


def test_malformed_event_packets_are_counted() -> None:
    digits = EventDigits()
    assert digits.feed(b"\x80\x65", 0.0) == []
    header = struct.pack("!BBHII", 0x80, 101, 1, 0, 1)
    assert digits.feed(header + b"\x01\x02", 0.0) == []  # payload must be 4 bytes
    assert digits.malformed == 2


def frames(digit: str, on_ms: int, off_ms: int) -> list[bytes]:
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    n = np.arange((on_ms + off_ms) * 8)
    tone = np.sin(2 * np.pi * ROWS[row] * n / 8000) + np.sin(2 * np.pi * COLS[col] * n / 8000)
    amplitude = DBM0_PEAK * 10 ** (-10 / 20)
    signal = np.where(n < on_ms * 8, np.rint(amplitude * tone), 0).astype(np.int16)
    return [encode(Codec.PCMU, signal[i : i + 160]) for i in range(0, signal.size, 160)]


def rtp(seq: int, payload: bytes, ssrc: int = 7) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, 1000 + seq * 160, ssrc) + payload


def test_inband_digit_is_reported_once_with_its_duration() -> None:
    inband = InbandDigits()
    out = [
        d
        for seq, f in enumerate(frames("8", 120, 100))
        for d in inband.feed(Codec.PCMU, rtp(seq, f))
    ]
    assert len(out) == 1
    assert out[0].digit == "8" and out[0].source is DtmfSource.INBAND
    assert abs(out[0].duration_ms - 120) <= 10


def test_inband_lost_packets_are_bridged_and_late_ones_skipped() -> None:
    inband = InbandDigits()
    packets = [rtp(seq, f) for seq, f in enumerate(frames("0", 200, 100))]
    order = packets[:4] + packets[5:7] + [packets[4]] + packets[7:]  # 4 lost, then late
    out = [d for p in order for d in inband.feed(Codec.PCMU, p)]
    assert [d.digit for d in out] == ["0"]  # a 20 ms hole does not split the press
    assert abs(out[0].duration_ms - 200) <= 10


def test_inband_silence_gives_nothing() -> None:
    inband = InbandDigits()
    silence = encode(Codec.PCMU, np.zeros(160, dtype=np.int16))
    assert [d for seq in range(50) for d in inband.feed(Codec.PCMU, rtp(seq, silence))] == []
