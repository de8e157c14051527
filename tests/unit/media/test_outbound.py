"""OutboundStream, sans-IO: our RTP stream's fields, queued RFC 4733 key presses, SRs."""

from __future__ import annotations

import random

import pytest

from appliance.media.outbound import OutboundStream
from appliance.rtp.dtmf_event import DtmfEventReceiver, KeyPress
from appliance.rtp.packet import RtpPacket, ts_diff
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


def source_packet(seq: int, ts: int, pt: int = 0, marker: bool = False) -> bytes:
    """A packet from the other phone: its own SSRC 0x9999, sequence and timestamps."""
    return bytes(RtpPacket(pt, seq, ts, 0x9999, bytes(range(160)), marker=marker))


def relay(out: OutboundStream, data: bytes, now: float, samples: int = 160) -> RtpPacket:
    peek = RtpPacket.parse(data)
    return RtpPacket.parse(
        out.relayed(data, peek.ssrc, peek.timestamp, len(peek.payload), samples, now)
    )


def test_relayed_packets_continue_our_stream_and_keep_the_source_spacing() -> None:
    out = stream()
    tone = [RtpPacket.parse(out.audio(0, bytes(160), T0 + n * 0.020, n == 0)) for n in range(5)]
    now = T0 + 0.130  # the callee answers 50 ms after the last tone frame went out
    # its numbers far below ours: a jitter buffer that kept our stream would drop them
    src_seq, src_ts = (tone[-1].sequence - 1000) & 0xFFFF, 17
    relayed = [
        relay(out, source_packet(src_seq, src_ts), now),
        relay(out, source_packet(src_seq + 1, src_ts + 160), now + 0.020),
        # 300 ms of silence not sent (RFC 3551 §4.1), then a talkspurt with its marker
        relay(out, source_packet(src_seq + 2, src_ts + 2720, marker=True), now + 0.340),
        relay(out, source_packet(src_seq + 3, src_ts + 2880, pt=101), now + 0.360, 0),
    ]
    assert {p.ssrc for p in relayed} == {out.ssrc}
    assert [p.sequence for p in tone + relayed] == [
        (tone[0].sequence + i) & 0xFFFF for i in range(9)
    ]
    assert [p.marker for p in relayed] == [True, False, True, False]
    assert [p.payload_type for p in relayed] == [0, 0, 0, 101]
    assert relayed[0].timestamp == out.timestamp_at(now)  # where our clock is then
    assert [ts_diff(p.timestamp, relayed[0].timestamp) for p in relayed] == [0, 160, 2720, 2880]
    sr, _ = parse_compound(out.sender_report(now + 0.4, 1_700_000_000.0))
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (out.ssrc, 9, 9 * 160)


def test_a_relayed_stream_that_starts_within_the_last_frame_does_not_overlap_it() -> None:
    out = stream()
    last = RtpPacket.parse(out.audio(0, bytes(160), T0, marker=True))
    first = relay(out, source_packet(1, 5000), T0 + 0.005)  # 5 ms later: inside that frame
    assert first.timestamp == (last.timestamp + 160) & 0xFFFFFFFF


def test_a_tone_after_relayed_audio_that_ran_ahead_does_not_go_back() -> None:
    out = stream()
    relay(out, source_packet(1, 0), T0)
    # the phone's clock runs fast (or packets bunched): 1 s of audio in 0.5 s
    last = relay(out, source_packet(2, 8000), T0 + 0.5)
    tone = [
        RtpPacket.parse(out.audio(0, bytes(160), T0 + 0.52 + n * 0.020, n == 0)) for n in range(3)
    ]
    assert tone[0].timestamp == (last.timestamp + 160) & 0xFFFFFFFF
    assert [ts_diff(p.timestamp, tone[0].timestamp) for p in tone] == [0, 160, 320]
    again = relay(out, source_packet(3, 8160), T0 + 0.6)  # relaying resumes after the tone
    assert again.marker and again.sequence == (tone[-1].sequence + 1) & 0xFFFF
    assert ts_diff(again.timestamp, tone[-1].timestamp) >= 160


def test_a_digit_queued_while_relaying_starts_after_the_audio_sent() -> None:
    out = stream()
    relay(out, source_packet(1, 0), T0)
    last = relay(out, source_packet(2, 8000), T0 + 0.02)  # relayed timestamps ran ahead
    out.queue_digit("7", 0.060, 101, onset=T0 + 0.04, gap=0.06)
    packets = collect(out, T0 + 1.0)
    assert {p.timestamp for p in packets} == {(last.timestamp + 160) & 0xFFFFFFFF}
    assert packets[0].sequence == (last.sequence + 1) & 0xFFFF


def test_continuing_a_relayed_stream_changes_nothing_for_its_own_packets() -> None:
    out = stream()
    out.continue_from(0x9999, 41, 6400, at=T0, packets=42, octets=42 * 160)
    same = source_packet(42, 6560)
    assert relay(out, same, T0 + 0.020) == RtpPacket.parse(same)  # byte for byte
    tone = RtpPacket.parse(out.audio(0, bytes(160), T0 + 0.040, marker=True))
    assert (tone.ssrc, tone.sequence, tone.timestamp) == (0x9999, 43, 6720)
    sr, _ = parse_compound(out.sender_report(T0 + 0.06, 1_700_000_000.0))
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (0x9999, 44, 44 * 160)


def test_relayed_rewrites_a_copy_in_place_and_copies_bytes_once() -> None:
    out = stream()
    data = source_packet(1, 0)
    copy = bytearray(data)
    assert out.relayed(copy, 0x9999, 0, 160, 160, T0) is copy
    assert copy[8:12] == out.ssrc.to_bytes(4, "big") and copy[12:] == data[12:]
    rewritten = out.relayed(data, 0x9999, 160, 160, 160, T0 + 0.02)
    assert isinstance(rewritten, bytearray) and data == source_packet(1, 0)  # input kept
