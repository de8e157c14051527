"""RFC 4733 telephone-events: payload, receiver de-duplication and timeouts, sender."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rtp.dtmf_event import (
    DtmfEvent,
    DtmfEventReceiver,
    DtmfEventSender,
    KeyPress,
)
from appliance.rtp.packet import RtpError, RtpPacket

PT = 101


def test_payload_parse_and_serialize() -> None:
    # RFC 4733 §2.3: event 5, E=1, R=0, volume 10, duration 800
    assert DtmfEvent.parse(b"\x05\x8a\x03\x20") == DtmfEvent(5, True, 10, 800)
    assert bytes(DtmfEvent(11, False, 63, 0xFFFF)) == b"\x0b\x3f\xff\xff"
    odd = b"\x10\x40\x00\x00"  # flash (16) with the reserved bit set: kept to round-trip
    assert bytes(DtmfEvent.parse(odd)) == odd
    assert DtmfEvent.parse(odd).digit is None


def test_digits_map_to_events_0_to_15() -> None:
    digits = "0123456789*#ABCD"
    assert [DtmfEvent(i).digit for i in range(16)] == list(digits)
    assert [DtmfEvent.for_digit(d).event for d in digits] == list(range(16))
    assert DtmfEvent.for_digit("a").event == 12


@pytest.mark.parametrize("size", [0, 3, 5, 8])
def test_bad_payload_length_is_rejected(size: int) -> None:
    with pytest.raises(RtpError) as info:
        DtmfEvent.parse(bytes(size))
    assert info.value.reason == f"telephone-event payload of {size} bytes, expected 4"


def test_bad_values_are_rejected() -> None:
    with pytest.raises(RtpError, match="volume 64 is outside 0-63"):
        DtmfEvent(1, volume=64)
    with pytest.raises(RtpError, match="duration 65536"):
        DtmfEvent(1, duration=65536)
    with pytest.raises(RtpError, match="not a DTMF digit"):
        DtmfEvent.for_digit("E")
    with pytest.raises(RtpError, match="not a DTMF digit"):
        DtmfEvent.for_digit("12")


@given(st.binary(min_size=4, max_size=4))
def test_every_4_byte_payload_round_trips(raw: bytes) -> None:
    assert bytes(DtmfEvent.parse(raw)) == raw


@given(st.binary(max_size=12))
def test_any_payload_parses_or_raises_rtp_error(raw: bytes) -> None:
    try:
        event = DtmfEvent.parse(raw)
    except RtpError:
        assert len(raw) != 4
        return
    assert bytes(event) == raw


def pkt(
    seq: int, ts: int, event: int, duration: int, end: bool = False, marker: bool = False
) -> RtpPacket:
    payload = bytes(DtmfEvent(event, end, 10, duration))
    return RtpPacket(PT, seq, ts, 0x55, payload, marker=marker)


def run(receiver: DtmfEventReceiver, timed: list[tuple[float, RtpPacket]]) -> list[KeyPress]:
    """Feed packets in order, firing the receiver's timer whenever it falls due."""
    out: list[KeyPress] = []
    for now, packet in timed:
        while (deadline := receiver.next_deadline()) is not None and deadline <= now:
            out += receiver.handle_timer(deadline)
        out += receiver.receive(packet, now)
    if (deadline := receiver.next_deadline()) is not None:
        out += receiver.handle_timer(deadline)
    return out


def test_duplicated_start_and_three_ends_give_one_press() -> None:
    stream = [
        pkt(10, 8000, 1, 0, marker=True),
        pkt(11, 8000, 1, 0, marker=True),  # retransmitted start
        pkt(12, 8000, 1, 160),
        pkt(13, 8000, 1, 320),
        pkt(14, 8000, 1, 480, end=True),
        pkt(15, 8000, 1, 480, end=True),
        pkt(16, 8000, 1, 480, end=True),
        pkt(14, 8000, 1, 480, end=True),  # a network duplicate, too
    ]
    receiver = DtmfEventReceiver()
    out = run(receiver, [(i * 0.02, p) for i, p in enumerate(stream)])
    assert out == [KeyPress(1, 8000, 480, start_seen=True, end_seen=True)]
    assert out[0].digit == "1"
    assert receiver.next_deadline() is None


def test_press_is_reported_at_the_first_end_packet() -> None:
    receiver = DtmfEventReceiver()
    assert receiver.receive(pkt(1, 0, 9, 160, marker=True), 0.0) == []
    assert receiver.receive(pkt(2, 0, 9, 320, end=True), 0.02) == [KeyPress(9, 0, 320, True, True)]
    assert receiver.receive(pkt(3, 0, 9, 320, end=True), 0.04) == []


def test_lost_start_reports_the_press_from_mid_event() -> None:
    receiver = DtmfEventReceiver()
    stream = [
        pkt(22, 100, 11, 320),
        pkt(23, 100, 11, 480, end=True),
        pkt(24, 100, 11, 480, end=True),
    ]
    out = run(receiver, [(i * 0.02, p) for i, p in enumerate(stream)])
    assert out == [KeyPress(11, 100, 480, start_seen=False, end_seen=True)]
    assert out[0].digit == "#"


def test_only_an_end_packet_arrives() -> None:
    receiver = DtmfEventReceiver()
    assert receiver.receive(pkt(30, 7, 0, 800, end=True), 1.0) == [KeyPress(0, 7, 800, False, True)]


def test_lost_end_times_out_after_the_given_duration() -> None:
    receiver = DtmfEventReceiver(timeout=0.3)
    receiver.receive(pkt(1, 500, 4, 160, marker=True), 1.00)
    receiver.receive(pkt(2, 500, 4, 320), 1.02)
    assert receiver.next_deadline() == pytest.approx(1.32)
    assert receiver.handle_timer(1.31) == []
    out = receiver.handle_timer(1.32)
    assert out == [KeyPress(4, 500, 320, start_seen=True, end_seen=False)]
    assert receiver.next_deadline() is None
    # the end packets turn up late: still one press
    assert receiver.receive(pkt(3, 500, 4, 480, end=True), 1.5) == []
    assert receiver.receive(pkt(4, 500, 4, 480, end=True), 1.52) == []


def test_lost_end_then_next_key_reports_both_in_order() -> None:
    receiver = DtmfEventReceiver(timeout=1.0)
    assert receiver.receive(pkt(1, 0, 2, 160, marker=True), 0.0) == []
    out = receiver.receive(pkt(5, 4000, 3, 160, marker=True), 0.5)
    assert out == [KeyPress(2, 0, 160, True, False)]
    out = receiver.receive(pkt(6, 4000, 3, 320, end=True), 0.52)
    assert out == [KeyPress(3, 4000, 320, True, True)]


def test_late_packet_of_an_earlier_event_is_ignored() -> None:
    receiver = DtmfEventReceiver()
    receiver.receive(pkt(1, 0, 2, 160, marker=True), 0.0)
    receiver.receive(pkt(2, 0, 2, 320, end=True), 0.02)
    receiver.receive(pkt(5, 4000, 3, 160, marker=True), 0.5)
    # an end retransmission of the first key, reordered behind the second key's start
    assert receiver.receive(pkt(3, 0, 2, 320, end=True), 0.51) == []
    assert receiver.receive(pkt(6, 4000, 3, 320, end=True), 0.52) == [
        KeyPress(3, 4000, 320, True, True)
    ]


def test_same_digit_twice_is_two_presses() -> None:
    receiver = DtmfEventReceiver()
    stream = [
        pkt(1, 0, 5, 160, marker=True),
        pkt(2, 0, 5, 320, end=True),
        pkt(3, 0, 5, 320, end=True),
        pkt(4, 2400, 5, 160, marker=True),
        pkt(5, 2400, 5, 320, end=True),
    ]
    out = run(receiver, [(i * 0.02, p) for i, p in enumerate(stream)])
    assert [k.digit for k in out] == ["5", "5"]


def test_bad_payload_in_an_event_packet_raises_rtp_error() -> None:
    with pytest.raises(RtpError):
        DtmfEventReceiver().receive(RtpPacket(PT, 1, 0, 1, b"\x01\x02"), 0.0)


def test_sender_packet_sequence_rfc4733_2_5() -> None:
    sender = DtmfEventSender(payload_type=PT, ssrc=0x55)
    timed = sender.packets("5", duration=0.1, timestamp=1000, sequence=65534)
    offsets = [t for t, _ in timed]
    assert offsets == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14])
    packets = [p for _, p in timed]
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1, 2, 3, 4]
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {p.timestamp for p in packets} == {1000}
    assert {(p.payload_type, p.ssrc) for p in packets} == {(PT, 0x55)}
    events = [DtmfEvent.parse(p.payload) for p in packets]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {(e.event, e.volume) for e in events} == {(5, 10)}


def test_sender_short_press_and_partial_last_packet() -> None:
    sender = DtmfEventSender(payload_type=PT, ssrc=1)
    short = [DtmfEvent.parse(p.payload) for _, p in sender.packets("#", 0.01, 0, 0)]
    assert [(e.duration, e.end) for e in short] == [(80, True)] * 3
    odd = [DtmfEvent.parse(p.payload) for _, p in sender.packets("1", 0.05, 0, 0)]
    assert [e.duration for e in odd] == [160, 320, 400, 400, 400]
    with pytest.raises(RtpError):
        sender.packets("1", 0.0, 0, 0)


def loopback(digits: str, keep: list[bool] | None = None) -> tuple[list[KeyPress], list[int]]:
    """Each digit held 100 ms, a key every 300 ms; returns presses and the sent onsets."""
    sender = DtmfEventSender(payload_type=PT, ssrc=0x55)
    timed: list[tuple[float, RtpPacket]] = []
    onsets = []
    sequence = 40_000
    for i, digit in enumerate(digits):
        onset = 0.3 * i
        timestamp = (2**32 - 4000 + round(onset * 8000)) % 2**32  # wraps mid-call
        onsets.append(timestamp)
        for offset, packet in sender.packets(digit, 0.1, timestamp, sequence):
            timed.append((onset + offset, packet))
        sequence = (timed[-1][1].sequence + 1) & 0xFFFF
    if keep is not None:
        timed = [tp for tp, k in zip(timed, keep, strict=False) if k]
    return run(DtmfEventReceiver(timeout=0.25), timed), onsets


def test_sender_to_receiver_loopback() -> None:
    presses, onsets = loopback("0123456789*#ABCD")
    assert "".join(k.digit or "?" for k in presses) == "0123456789*#ABCD"
    assert [k.timestamp for k in presses] == onsets
    assert all(k.duration == 800 and k.start_seen and k.end_seen for k in presses)


@given(st.lists(st.booleans(), min_size=6 * 7, max_size=6 * 7))
def test_lossy_loopback_reports_each_surviving_press_once(keep: list[bool]) -> None:
    digits = "19*#0D"
    presses, onsets = loopback(digits, keep)
    survived = [d for i, d in enumerate(digits) if any(keep[7 * i : 7 * i + 7])]
    assert [k.digit for k in presses] == survived
    for press in presses:
        i = onsets.index(press.timestamp)
        assert press.end_seen == any(keep[7 * i + 4 : 7 * i + 7])
        assert press.start_seen == keep[7 * i]
