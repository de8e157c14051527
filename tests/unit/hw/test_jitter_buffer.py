"""Jitter buffer: priming, concealment, late and duplicate packets, adaptation, resyncs.

Each test drives ticks by hand: push what arrived during a tick, then pop once.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.hw.jitter_buffer import (
    TS_MOD,
    JitterBuffer,
    JitterConfig,
    PlayKind,
    PushResult,
    ts_diff,
)

FS = 160


def frame(n: int) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
    """Frame n of a test stream: every sample says n + 1 (so 0 is never a real frame)."""
    return np.full(FS, n + 1, dtype=np.int16)


def ids(buffer: JitterBuffer, ticks: int) -> list[int]:
    """Pop `ticks` frames; what each one holds (0 for silence)."""
    return [int(buffer.pop().frame[0]) for _ in range(ticks)]


def test_ts_diff_wraps() -> None:
    assert ts_diff(5, 3) == 2
    assert ts_diff(3, 5) == -2
    assert ts_diff(10, TS_MOD - 150) == 160
    assert ts_diff(TS_MOD - 150, 10) == -160


def test_silence_while_priming_then_the_stream_in_order() -> None:
    jb = JitterBuffer()
    assert jb.pop().kind is PlayKind.SILENCE  # nothing yet
    jb.push(1000, frame(0))
    out = jb.pop()
    assert (out.kind, out.timestamp) == (PlayKind.SILENCE, None)  # 20 ms < 40 ms target
    jb.push(1000 + FS, frame(1))
    out = jb.pop()
    assert (out.kind, out.timestamp, int(out.frame[0])) == (PlayKind.PLAYED, 1000, 1)
    for n in range(2, 10):
        jb.push(1000 + n * FS, frame(n))
        assert jb.pop().frame[0] == n  # one frame behind, steadily
    assert jb.counters.played == 9
    assert jb.counters.silence == 2


def test_reordered_packets_play_in_order() -> None:
    jb = JitterBuffer()
    for n in (1, 0, 3, 2):
        assert jb.push(n * FS, frame(n)) is PushResult.QUEUED
    assert ids(jb, 4) == [1, 2, 3, 4]


def test_loss_is_concealed_by_fading_repeats_then_silence() -> None:
    jb = JitterBuffer(JitterConfig(conceal_frames=3))
    jb.push(0, frame(99))  # frame value 100
    jb.push(FS, frame(99))
    jb.push(9 * FS, frame(9))  # 2..8 are lost
    outs = [jb.pop() for _ in range(10)]
    assert [o.kind for o in outs] == [
        PlayKind.PLAYED,
        PlayKind.PLAYED,
        PlayKind.CONCEALED,
        PlayKind.CONCEALED,
        PlayKind.CONCEALED,
        PlayKind.SILENCE,
        PlayKind.SILENCE,
        PlayKind.SILENCE,
        PlayKind.SILENCE,
        PlayKind.PLAYED,
    ]
    assert [int(o.frame[0]) for o in outs[2:6]] == [100, 50, 25, 0]  # -6 dB a frame
    assert [o.timestamp for o in outs[2:5]] == [2 * FS, 3 * FS, 4 * FS]
    assert jb.counters.concealed == 3


def test_a_late_packet_is_dropped_and_the_buffer_grows() -> None:
    jb = JitterBuffer()
    for n in range(3):
        jb.push(n * FS, frame(n))
    assert ids(jb, 3) == [1, 2, 3]
    # Frame 3 is missing at its tick and concealed; it turns up one tick late.
    assert jb.pop().kind is PlayKind.CONCEALED
    assert jb.push(3 * FS, frame(3)) is PushResult.LATE
    assert jb.counters.late == 1
    assert jb.target_depth == 3
    jb.push(4 * FS, frame(4))
    out = jb.pop()
    assert out.kind is PlayKind.STRETCHED  # one frame of extra depth, once
    assert jb.pop().frame[0] == 5


def test_duplicates_are_dropped() -> None:
    jb = JitterBuffer()
    assert jb.push(0, frame(0)) is PushResult.QUEUED
    assert jb.push(0, frame(0)) is PushResult.DUPLICATE
    assert jb.counters.duplicate == 1
    assert jb.queued == 1


def test_malformed_frames_are_refused() -> None:
    jb = JitterBuffer()
    assert jb.push(0, np.zeros(80, dtype=np.int16)) is PushResult.MALFORMED
    assert jb.push(0, np.zeros(FS, dtype=np.int32)) is PushResult.MALFORMED
    assert jb.push(-1, frame(0)) is PushResult.MALFORMED
    assert jb.push(TS_MOD, frame(0)) is PushResult.MALFORMED
    assert (jb.counters.malformed, jb.counters.received, jb.queued) == (4, 0, 0)


def test_timestamps_wrap_around() -> None:
    jb = JitterBuffer()
    base = TS_MOD - 2 * FS
    for n in range(6):
        jb.push((base + n * FS) % TS_MOD, frame(n))
    outs = [jb.pop() for _ in range(6)]
    assert [int(o.frame[0]) for o in outs] == [1, 2, 3, 4, 5, 6]
    assert [o.timestamp for o in outs[1:4]] == [TS_MOD - FS, 0, FS]


def test_off_grid_timestamps_snap_to_the_stream() -> None:
    jb = JitterBuffer()
    jb.push(0, frame(0))
    assert jb.push(FS + 3, frame(1)) is PushResult.QUEUED
    out = [jb.pop(), jb.pop()]
    assert [o.timestamp for o in out] == [0, FS]


def test_a_timestamp_jump_restarts_the_buffer() -> None:
    jb = JitterBuffer()
    for n in range(4):
        jb.push(n * FS, frame(n))
    assert ids(jb, 2) == [1, 2]
    assert jb.push(10_000_000, frame(50)) is PushResult.RESYNC
    assert jb.counters.resyncs == 1
    assert jb.counters.discarded == 2
    assert jb.pop().kind is PlayKind.SILENCE  # priming the new stream
    jb.push(10_000_000 + FS, frame(51))
    assert jb.pop().frame[0] == 51


def test_running_dry_primes_again_and_refuses_stragglers() -> None:
    jb = JitterBuffer(JitterConfig(conceal_frames=2))
    jb.push(0, frame(0))
    jb.push(FS, frame(1))
    assert ids(jb, 2) == [1, 2]
    assert [jb.pop().kind for _ in range(2)] == [PlayKind.CONCEALED, PlayKind.CONCEALED]
    assert not jb.playing
    assert jb.push(FS, frame(1)) is PushResult.LATE  # already played
    assert jb.push(3 * FS, frame(3)) is PushResult.LATE  # its slot was concealed
    assert jb.target_depth == 4  # the network was slower than we allowed for
    # The sender resumes after a pause (RFC 3551 §4.1: silence suppression).
    for n in range(50, 53):
        jb.push(n * FS, frame(n))
        assert jb.pop().kind is PlayKind.SILENCE
    jb.push(53 * FS, frame(53))
    assert ids(jb, 4) == [51, 52, 53, 54]


def test_a_quiet_spell_shrinks_the_target_and_the_excess_is_dropped() -> None:
    cfg = JitterConfig(shrink_after=20, compress_window=10)
    jb = JitterBuffer(cfg)
    for n in range(5):  # a burst arrives before playout starts
        jb.push(n * FS, frame(n))
    played: list[int] = []
    for n in range(5, 60):
        jb.push(n * FS, frame(n))
        assert jb.span() == max(6 - jb.counters.dropped, cfg.min_depth)
        played.append(int(jb.pop().frame[0]))
    assert jb.counters.dropped == 4  # 6 deep at each tick -> 2, one frame per window
    assert played == sorted(played)  # never backwards
    # A late packet raises the target; quiet ticks lower it again.
    assert jb.push(40 * FS, frame(40)) is PushResult.LATE
    assert jb.target_depth == 3
    for n in range(60, 100):
        jb.push(n * FS, frame(n))
        jb.pop()
    assert jb.target_depth == cfg.min_depth
    assert jb.counters.concealed == 0


def test_target_stays_within_bounds() -> None:
    jb = JitterBuffer(JitterConfig(min_depth=2, max_depth=3))
    jb.push(10 * FS, frame(10))
    jb.push(11 * FS, frame(11))
    ids(jb, 2)
    for _ in range(5):
        jb.push(0, frame(0))
    assert jb.target_depth == 3
    assert jb.counters.late == 5


@pytest.mark.parametrize(
    "kwargs",
    [{"min_depth": 0}, {"min_depth": 4, "max_depth": 3}, {"capacity": 6}, {"conceal_gain": 2.0}],
)
def test_bad_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JitterConfig(**kwargs)  # type: ignore[arg-type]  # ints and floats mixed on purpose


def test_reset_forgets_the_stream() -> None:
    jb = JitterBuffer()
    jb.push(0, frame(0))
    jb.reset()
    assert (jb.queued, jb.counters.discarded, jb.playing) == (0, 1, False)
    jb.push(5 * FS, frame(5))
    jb.push(6 * FS, frame(6))
    assert jb.pop().frame[0] == 6
