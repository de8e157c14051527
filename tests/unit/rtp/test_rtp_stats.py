"""Receiver and sender statistics: RFC 3550 §A.1, §A.3, §A.8, §6.4.1."""

from __future__ import annotations

import pytest

from appliance.rtp.rtcp import SenderReport, ntp_from_unix
from appliance.rtp.stats import ReceiverStats, SenderStats, SequenceConfig

RATE = 8000
STEP = 160  # 20 ms of 8 kHz audio


def feed(stats: ReceiverStats, seqs: list[int], ts0: int = 0, t0: float = 0.0) -> list[bool]:
    """Packets sent every 20 ms with constant transit; ts and arrival follow the seq."""
    first = seqs[0]
    out = []
    for seq in seqs:
        n = (seq - first) & 0xFFFF
        out.append(stats.update(seq, (ts0 + n * STEP) % 2**32, t0 + n * 0.020))
    return out


def test_probation_then_wrap_rfc3550_a1() -> None:
    stats = ReceiverStats(ssrc=0x1234, clock_rate=RATE)
    seqs = [(65530 + i) & 0xFFFF for i in range(16)]  # 65530..65535, 0..9
    valid = feed(stats, seqs)
    # MIN_SEQUENTIAL = 2: the first packet is on probation and not counted
    assert valid == [False] + [True] * 15
    assert stats.base_seq == 65531
    assert stats.cycles == 65536
    assert stats.extended_highest == 65536 + 9
    assert stats.received == 15
    assert stats.expected == 15
    assert stats.lost == 0
    block = stats.report_block(now=1.0)
    assert (block.ssrc, block.highest_seq, block.cumulative_lost, block.fraction_lost) == (
        0x1234,
        0x0001_0009,
        0,
        0,
    )


def test_probation_restarts_on_a_gap() -> None:
    stats = ReceiverStats(1, RATE)
    assert [stats.update(s, 0, 0.0) for s in (10, 20, 21)] == [False, False, True]
    assert stats.base_seq == 21 and stats.received == 1
    assert stats.expected == 1


def test_nothing_expected_while_on_probation() -> None:
    stats = ReceiverStats(1, RATE)
    stats.update(5, 0, 0.0)
    assert (stats.expected, stats.lost, stats.loss) == (0, 0, 0.0)
    assert stats.report_block(0.0).fraction_lost == 0


def test_reordered_duplicated_lost_stream_counts_and_fraction() -> None:
    stats = ReceiverStats(7, RATE)
    # 100..120 with 105 and 110 lost, 112 duplicated, 115/116 swapped
    seqs = [s for s in range(100, 121) if s not in (105, 110)]
    seqs.insert(seqs.index(112) + 1, 112)
    i = seqs.index(115)
    seqs[i], seqs[i + 1] = seqs[i + 1], seqs[i]
    for seq in seqs:
        stats.update(seq, (seq - 100) * STEP, (seq - 100) * 0.02)
    # base 101 (100 was probation): expected 101..120 = 20, received 17 + 1 dup + 1 = 19
    assert stats.expected == 20
    assert stats.received == 19
    assert stats.lost == 1  # RFC 3550 §A.3: the duplicate hides one loss
    block = stats.report_block(now=0.5)
    assert block.cumulative_lost == 1
    assert block.fraction_lost == (1 << 8) // 20  # 12
    # next interval: 121..130 with 123, 125, 129 lost
    for seq in (s for s in range(121, 131) if s not in (123, 125, 129)):
        stats.update(seq, (seq - 100) * STEP, (seq - 100) * 0.02)
    block = stats.report_block(now=1.0)
    assert block.cumulative_lost == 4
    assert block.fraction_lost == (3 << 8) // 10  # 76, this interval only
    assert block.highest_seq == 130
    assert stats.loss == pytest.approx(4 / 30)
    # an empty interval reports no fraction lost
    assert stats.report_block(now=2.0).fraction_lost == 0


def test_duplicates_make_cumulative_lost_negative() -> None:
    stats = ReceiverStats(7, RATE)
    feed(stats, [1, 2, 3, 3, 3, 4])
    assert stats.lost == -2
    block = stats.report_block(0.0)
    assert block.cumulative_lost == -2 and block.fraction_lost == 0
    assert stats.loss == 0.0


def test_large_jump_needs_two_sequential_packets_to_resync() -> None:
    stats = ReceiverStats(7, RATE)
    feed(stats, list(range(1000, 1010)))
    assert stats.update(9000, 0, 1.0) is False  # beyond MAX_DROPOUT: held back
    assert stats.received == 9
    assert stats.update(9001, 160, 1.02) is True  # sequential: the source restarted
    assert stats.base_seq == 9001 and stats.received == 1 and stats.expected == 1


def test_late_packets_within_and_beyond_max_misorder() -> None:
    stats = ReceiverStats(7, RATE)
    feed(stats, list(range(1000, 1300)))
    received = stats.received
    assert stats.update(1299 - 50, 0, 6.0) is True  # late but within MAX_MISORDER
    assert stats.update(1299 - 200, 0, 6.0) is False  # treated as a large jump
    assert stats.received == received + 1


def test_sequence_config_is_passed_in() -> None:
    stats = ReceiverStats(7, RATE, SequenceConfig(min_sequential=1))
    assert stats.update(50, 0, 0.0) is True
    assert stats.base_seq == 50 and stats.expected == 1


def test_constant_transit_gives_zero_jitter_across_timestamp_wrap() -> None:
    stats = ReceiverStats(7, RATE)
    feed(stats, [(65000 + i) & 0xFFFF for i in range(1000)], ts0=2**32 - 50 * STEP, t0=100.0)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)
    assert stats.report_block(0.0).jitter == 0


def test_alternating_transit_converges_to_rfc_formula() -> None:
    stats = ReceiverStats(7, RATE)
    d = 40  # transit alternates +-40 timestamp units (5 ms) around a constant
    expected_j = 0.0
    first_counted = True
    for n in range(200):
        transit = d if n % 2 else -d
        valid = stats.update(n, n * STEP, (n * STEP + transit + 8000) / RATE)
        if not valid:
            continue
        if not first_counted:
            expected_j += (abs(2 * d) - expected_j) / 16  # |D(i-1,i)| = 2d, RFC 3550 §A.8
        first_counted = False
    assert stats.jitter == pytest.approx(expected_j, rel=1e-9)
    assert stats.jitter == pytest.approx(2 * d, rel=1e-4)
    assert stats.jitter_ms == pytest.approx(10.0, rel=1e-4)
    assert stats.report_block(0.0).jitter == int(expected_j)


def test_lsr_and_dlsr_from_last_sender_report() -> None:
    stats = ReceiverStats(7, RATE)
    feed(stats, [1, 2, 3])
    assert (stats.report_block(5.0).lsr, stats.report_block(5.0).dlsr) == (0, 0)
    sr = SenderReport(7, 0xE6C5A1B2, 0x80001234, 0, 3, 480)
    stats.on_sender_report(sr, now=10.0)
    block = stats.report_block(now=11.5)
    assert block.lsr == 0xA1B28000
    assert block.dlsr == 98304  # 1.5 s in 1/65536 s


def test_sender_stats_build_sender_report() -> None:
    sender = SenderStats(ssrc=99, clock_rate=RATE)
    assert not sender.has_sent
    for n in range(3):
        sender.on_sent(160, 1000 + n * STEP, now=50.0 + n * 0.02)
    report = sender.sender_report(now=50.05, wallclock=1_700_000_000.5)
    assert (report.ssrc, report.packet_count, report.octet_count) == (99, 3, 480)
    assert report.rtp_timestamp == 1000 + 2 * STEP + 80  # 10 ms after the last packet
    assert (report.ntp_seconds, report.ntp_fraction) == ntp_from_unix(1_700_000_000.5)


def test_sender_counts_and_timestamp_wrap() -> None:
    sender = SenderStats(ssrc=1, clock_rate=RATE)
    sender.packet_count = sender.octet_count = 0xFFFFFFFF
    sender.on_sent(10, 0xFFFFFFF0, now=0.0)
    assert (sender.packet_count, sender.octet_count) == (0, 9)
    assert sender.sender_report(now=0.01, wallclock=0.0).rtp_timestamp == 80 - 16
