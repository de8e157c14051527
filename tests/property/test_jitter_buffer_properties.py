"""Hypothesis: whatever arrives, the jitter buffer gives one well-formed frame per tick,
accounts for every packet, never plays a stream backwards, stays within its bounds,
behaves the same wherever the timestamps start (wrap-safe), and absorbs jitter up to
its minimum depth without a loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

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
    return np.full(FS, n % 30000 + 1, dtype=np.int16)


@dataclass(frozen=True)
class Push:
    index: int  # frame number in the stream; its timestamp is base + index * FS (+ skew)
    skew: int = 0


@dataclass(frozen=True)
class Tick:
    pass


EVENTS = st.lists(
    st.one_of(
        st.builds(Push, st.integers(-40, 120), st.sampled_from([0, 0, 0, 3, -5])),
        st.just(Tick()),
    ),
    max_size=300,
)
CONFIGS = st.builds(
    JitterConfig,
    min_depth=st.integers(1, 3),
    max_depth=st.integers(3, 6),
    capacity=st.integers(8, 30),
    conceal_frames=st.integers(0, 6),
    shrink_after=st.integers(5, 100),
    compress_window=st.integers(2, 60),
)
BASES = st.one_of(st.integers(0, TS_MOD - 1), st.integers(TS_MOD - 5000, TS_MOD - 1))


def run(
    config: JitterConfig, base: int, events: list[Push | Tick]
) -> tuple[JitterBuffer, list[tuple[PlayKind, int | None, bytes]], list[PushResult]]:
    jb = JitterBuffer(config)
    outs: list[tuple[PlayKind, int | None, bytes]] = []
    results: list[PushResult] = []
    for event in events:
        if isinstance(event, Push):
            ts = (base + event.index * FS + event.skew) % TS_MOD
            results.append(jb.push(ts, frame(event.index)))
        else:
            out = jb.pop()
            assert out.frame.dtype == np.int16
            assert out.frame.shape == (FS,)
            rel = None if out.timestamp is None else ts_diff(out.timestamp, base)
            outs.append((out.kind, rel, out.frame.tobytes()))
        assert config.min_depth <= jb.target_depth <= config.max_depth
        assert jb.queued <= config.capacity
    return jb, outs, results


@given(CONFIGS, BASES, EVENTS)
def test_every_packet_is_accounted_for(
    config: JitterConfig, base: int, events: list[Push | Tick]
) -> None:
    jb, outs, _ = run(config, base, events)
    c = jb.counters
    assert c.received == sum(isinstance(e, Push) for e in events)
    assert c.received == c.played + c.late + c.duplicate + c.dropped + c.discarded + jb.queued
    assert len(outs) == c.played + c.concealed + c.stretched + c.silence


@given(CONFIGS, BASES, EVENTS)
def test_a_stream_never_plays_backwards(
    config: JitterConfig, base: int, events: list[Push | Tick]
) -> None:
    _, outs, results = run(config, base, events)
    if PushResult.RESYNC in results:
        return  # a new stream may start anywhere
    played = [ts for kind, ts, _ in outs if kind is PlayKind.PLAYED and ts is not None]
    assert all(b > a for a, b in zip(played, played[1:], strict=False))


@given(CONFIGS, BASES, EVENTS)
def test_concealment_is_never_louder_than_what_it_repeats(
    config: JitterConfig, base: int, events: list[Push | Tick]
) -> None:
    _, outs, _ = run(config, base, events)
    last = 0
    for kind, _, raw in outs:
        peak = int(np.abs(np.frombuffer(raw, dtype=np.int16).astype(np.int32)).max())
        if kind is PlayKind.PLAYED:
            last = peak
        elif kind in (PlayKind.CONCEALED, PlayKind.STRETCHED):
            assert peak <= last
        else:
            assert peak == 0


@given(CONFIGS, BASES, EVENTS)
def test_where_timestamps_start_does_not_matter(
    config: JitterConfig, base: int, events: list[Push | Tick]
) -> None:
    _, from_zero, results_zero = run(config, 0, events)
    _, from_base, results_base = run(config, base, events)
    assert from_zero == from_base
    assert results_zero == results_base


@given(
    st.integers(0, 4),
    BASES,
    st.lists(st.integers(0, 4), min_size=1, max_size=150),
)
def test_jitter_within_min_depth_costs_nothing(
    jitter: int, base: int, raw_delays: list[int]
) -> None:
    """Packet n sent at tick n arrives by tick n + jitter; with min_depth = jitter + 1
    every packet plays, in order, none is late and nothing is concealed."""
    delays = [min(d, jitter) for d in raw_delays]
    config = JitterConfig(min_depth=jitter + 1, max_depth=jitter + 2, capacity=jitter + 10)
    jb = JitterBuffer(config)
    count = len(delays)
    arrivals: dict[int, list[int]] = {}
    for n, delay in enumerate(delays):
        arrivals.setdefault(n + delay, []).append(n)
    played: list[int] = []
    for tick in range(count + 2 * jitter + 2):
        for n in arrivals.get(tick, []):
            assert jb.push((base + n * FS) % TS_MOD, frame(n)) is PushResult.QUEUED
        out = jb.pop()
        if out.kind is PlayKind.PLAYED:
            played.append(int(out.frame[0]) - 1)
        elif played and len(played) < count:
            raise AssertionError(f"tick {tick}: {out.kind} mid-stream")
    assert played == list(range(count))
    assert jb.counters.late == 0
    assert jb.target_depth == config.min_depth
