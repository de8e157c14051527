"""OutboundStream, sans-IO: our RTP stream's fields, queued RFC 4733 key presses, SRs."""

from __future__ import annotations

import random

import pytest

from appliance.media.outbound import OutboundStream
from appliance.rtp.dtmf_event import DtmfEventReceiver, KeyPress
from appliance.rtp.packet import RtpPacket
from appliance.rtp.rtcp import SenderReport, SourceDescription, parse_compound

pytestmark = pytest.mark.timeout(30)

T0 = 1000.0


def stream() -> OutboundStream:
    return OutboundStream(random.Random(5), T0, "test@yakyak")


def test_audio_packets_advance_sequence_by_one_and_timestamp_by_160() -> None:
    out = stream()
    packets = [
        RtpPacket.parse(out.audio(8, bytes(160), T0 + n * 0.020, marker=n == 0)) for n in range(5)
    ]
    assert [p.marker for p in packets] == [True, False, False, False, False]
    assert {p.ssrc for p in packets} == {out.ssrc} and {p.payload_type for p in packets} == {8}
    for a, b in zip(packets, packets[1:], strict=False):
        assert b.sequence == (a.sequence + 1) & 0xFFFF
        assert b.timestamp == (a.timestamp + 160) & 0xFFFFFFFF


def test_timestamps_follow_time_across_a_pause() -> None:
    out = stream()
    first = RtpPacket.parse(out.audio(0, bytes(160), T0, marker=True))
    later = RtpPacket.parse(out.audio(0, bytes(160), T0 + 3.0, marker=True))
    assert later.sequence == (first.sequence + 1) & 0xFFFF  # no packets were lost
    assert later.timestamp == (first.timestamp + 24_000) & 0xFFFFFFFF  # but 3 s passed


def collect(out: OutboundStream, until: float) -> list[RtpPacket]:
    packets: list[RtpPacket] = []
    n = 0
    while T0 + n * 0.020 <= until:
        packets += [RtpPacket.parse(d) for d in out.due_events(T0 + n * 0.020, 0.010)]
        n += 1
    return packets


def test_queued_digit_goes_out_one_packet_per_tick_after_its_onset() -> None:
    out = stream()
    out.queue_digit("5", 0.100, 101, onset=T0, gap=0.06)
    assert out.due_events(T0, 0.010) == []  # RFC 4733 §2.5.1: first packet one ptime in
    packets = collect(out, T0 + 1.0)
    assert len(packets) == 4 + 3  # 100 ms: 4 updates and the first end, then 2 more ends
    assert not out.has_events
    receiver = DtmfEventReceiver()
    presses: list[KeyPress] = []
    for packet in packets:
        presses += receiver.receive(packet, 0.0)
    assert [(p.digit, p.duration, p.start_seen, p.end_seen) for p in presses] == [
        ("5", 800, True, True)
    ]
    assert packets[0].timestamp == out.timestamp_at(T0)


def test_a_second_digit_waits_for_the_first_and_a_gap() -> None:
    out = stream()
    out.queue_digit("1", 0.060, 101, onset=T0, gap=0.06)
    out.queue_digit("2", 0.060, 101, onset=T0, gap=0.06)
    packets = collect(out, T0 + 1.0)
    first = [p for p in packets if p.payload[0] == 1]
    second = [p for p in packets if p.payload[0] == 2]
    assert len(first) == len(second) == 5
    # the first's last packet at +100 ms, the second's onset 60 ms later
    assert second[0].timestamp == out.timestamp_at(T0 + 0.160)
    sequences = [p.sequence for p in packets]
    assert sequences == [(sequences[0] + i) & 0xFFFF for i in range(10)]


def test_sender_report_counts_what_was_sent() -> None:
    out = stream()
    for n in range(10):
        out.audio(0, bytes(160), T0 + n * 0.020, marker=n == 0)
    sr, sdes = parse_compound(out.sender_report(T0 + 0.2, 1_700_000_000.0))
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (out.ssrc, 10, 1600)
    assert sr.rtp_timestamp == out.timestamp_at(T0 + 0.2)
    assert sdes.chunks[0].cname == "test@yakyak"
