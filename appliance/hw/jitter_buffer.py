"""Jitter buffer between RTP and a sound card: timestamped 20 ms frames in, one frame out
per 20 ms tick.

Sans-IO: `push` is called as packets arrive and `pop` once per tick of the sound card's
clock; nothing here reads a clock, so tests drive it tick by tick. Timestamps are RTP
timestamps (8 kHz units, modulo 2**32, RFC 3550 §5.1), compared with wrap-safe maths.

Depth adapts between `min_depth` and `max_depth` frames (40-120 ms by default): a late
packet raises the target by one frame and the next tick stretches playout by repeating
the last frame; a long quiet spell lowers the target again, and a buffer that stays
deeper than its target for a whole window drops one frame to cut latency. A missing
frame is concealed by repeating the last one, 6 dB quieter each time, then silence;
when the buffer has run dry for that long it primes again, as at the start of a stream.
Priming plays silence until the target depth is queued or the first frame has waited
that many ticks. Memory is bounded by `capacity`; a timestamp further away than that
is a new stream (a resync), not a reason to hold more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.int16]

TS_MOD: Final = 1 << 32


def ts_diff(a: int, b: int) -> int:
    """a - b for RTP timestamps, in [-2**31, 2**31): wraps like RFC 3550 §A.1's sequence maths."""
    return ((a - b + (1 << 31)) % TS_MOD) - (1 << 31)


@dataclass(frozen=True, slots=True)
class JitterConfig:
    frame_samples: int = 160  # 20 ms at 8 kHz (STYLE §2.8)
    min_depth: int = 2  # frames: 40 ms
    max_depth: int = 6  # frames: 120 ms
    capacity: int = 25  # frames held at most (500 ms); a timestamp further out is a new stream
    conceal_frames: int = 5  # lost frames repeated (fading) before silence: 100 ms
    conceal_gain: float = 0.5  # each repeat 6 dB below the one before
    shrink_after: int = 500  # ticks (10 s) without a late packet before the target drops
    compress_window: int = 50  # ticks (1 s) the buffer must stay over target to lose a frame

    def __post_init__(self) -> None:
        if not 1 <= self.min_depth <= self.max_depth < self.capacity:
            raise ValueError("need 1 <= min_depth <= max_depth < capacity")
        if self.frame_samples < 1 or self.conceal_frames < 0 or not 0 <= self.conceal_gain <= 1:
            raise ValueError("bad frame_samples, conceal_frames or conceal_gain")


class PushResult(Enum):
    QUEUED = "queued"
    LATE = "late"  # its playout time had passed: dropped
    DUPLICATE = "duplicate"
    RESYNC = "resync"  # a timestamp jump: the buffer restarted from this packet
    MALFORMED = "malformed"  # not a frame of frame_samples int16 samples: dropped


class PlayKind(Enum):
    PLAYED = "played"  # a received frame
    CONCEALED = "concealed"  # the last frame repeated, fading, for a lost one
    STRETCHED = "stretched"  # the last frame repeated to grow the buffer after a late packet
    SILENCE = "silence"  # priming, or concealment ran out


@dataclass(frozen=True, slots=True)
class Playout:
    frame: Frame
    kind: PlayKind
    timestamp: int | None  # the RTP timestamp played or concealed; None while priming


@dataclass(slots=True)
class JitterCounters:
    received: int = 0  # well-formed frames pushed
    played: int = 0
    concealed: int = 0
    stretched: int = 0
    silence: int = 0
    late: int = 0
    duplicate: int = 0
    dropped: int = 0  # played-out-of-the-way to cut latency
    discarded: int = 0  # thrown away by a resync
    resyncs: int = 0
    malformed: int = 0


class JitterBuffer:
    def __init__(self, config: JitterConfig | None = None) -> None:
        self.config = config or JitterConfig()
        self.counters = JitterCounters()
        self._silence = np.zeros(self.config.frame_samples, dtype=np.int16)
        self._frames: dict[int, Frame] = {}  # RTP timestamp -> frame
        self._next_ts: int | None = None  # the timestamp the next tick plays
        self._playing = False
        self._waited = 0  # ticks spent priming with something queued
        self._target = self.config.min_depth
        self._last: Frame = self._silence
        self._last_played_ts: int | None = None  # refuses stragglers while priming again
        self._loss_run = 0
        self._stretch = False
        self._quiet_ticks = 0
        self._window_ticks = 0
        self._window_min = 0

    @property
    def target_depth(self) -> int:
        """Frames the buffer aims to hold ahead of playout."""
        return self._target

    @property
    def queued(self) -> int:
        return len(self._frames)

    @property
    def playing(self) -> bool:
        return self._playing

    def span(self) -> int:
        """Frames from the next to play to the newest held, holes included; 0 when empty."""
        if not self._frames or self._next_ts is None:
            return 0
        start = self._next_ts
        return max(ts_diff(ts, start) for ts in self._frames) // self.config.frame_samples + 1

    def reset(self) -> None:
        """Forget the stream (a new SSRC); counters and the learnt target are kept."""
        self.counters.discarded += len(self._frames)
        self._frames.clear()
        self._next_ts = None
        self._playing = False
        self._waited = 0
        self._last_played_ts = None
        self._loss_run = 0
        self._stretch = False

    # -- packets in ------------------------------------------------------------------

    def push(self, timestamp: int, frame: Frame) -> PushResult:
        cfg = self.config
        if (
            not 0 <= timestamp < TS_MOD
            or frame.dtype != np.int16
            or frame.shape != (cfg.frame_samples,)
        ):
            self.counters.malformed += 1
            return PushResult.MALFORMED
        self.counters.received += 1
        if self._next_ts is None:
            if self._is_straggler(timestamp):
                return self._late()
            if self._is_rewind(timestamp):
                return self._resync(timestamp, frame)
            self._next_ts = timestamp
            self._frames[timestamp] = frame
            return PushResult.QUEUED
        # Snap to the frame grid of the stream: a sender whose timestamps are a few
        # samples off must not make every frame a "new" slot.
        offset = round(ts_diff(timestamp, self._next_ts) / cfg.frame_samples)
        slot = (self._next_ts + offset * cfg.frame_samples) % TS_MOD
        if not -cfg.capacity < offset < cfg.capacity:
            return self._resync(slot, frame)
        if offset < 0:
            if self._playing or self._is_straggler(slot):
                return self._late()
            if self.span() - 1 - offset >= cfg.capacity:
                return self._resync(slot, frame)
            self._next_ts = slot  # reordered start of the stream: begin earlier
        if slot in self._frames:
            self.counters.duplicate += 1
            return PushResult.DUPLICATE
        self._frames[slot] = frame
        return PushResult.QUEUED

    def _is_straggler(self, timestamp: int) -> bool:
        if self._last_played_ts is None:
            return False
        back = ts_diff(timestamp, self._last_played_ts)
        return -self.config.capacity * self.config.frame_samples < back <= 0

    def _is_rewind(self, timestamp: int) -> bool:
        """Further back than a straggler could be: the sender restarted its timestamps."""
        if self._last_played_ts is None:
            return False
        back = ts_diff(timestamp, self._last_played_ts)
        return back <= -self.config.capacity * self.config.frame_samples

    def _late(self) -> PushResult:
        self.counters.late += 1
        self._quiet_ticks = 0
        if self._target < self.config.max_depth:
            self._target += 1
            self._stretch = self._playing
        return PushResult.LATE

    def _resync(self, timestamp: int, frame: Frame) -> PushResult:
        self.counters.resyncs += 1
        self.reset()
        self._next_ts = timestamp
        self._frames[timestamp] = frame
        return PushResult.RESYNC

    # -- one frame out per tick --------------------------------------------------------

    def pop(self) -> Playout:
        cfg = self.config
        if self._next_ts is not None and not self._playing:
            self._waited += 1
        # Start once target frames are in, or the first has waited that long: a stream
        # (or talkspurt) shorter than the target must still be heard.
        ready = self._playing or self.span() >= self._target or self._waited >= self._target
        if self._next_ts is None or not ready:
            self.counters.silence += 1
            return Playout(self._silence.copy(), PlayKind.SILENCE, None)
        if not self._playing:
            self._playing = True
            self._loss_run = 0
            self._window_ticks = 0
            self._window_min = self.span()
        self._adapt()
        if self._stretch:
            # Grow by one frame: play the last frame again and keep the position.
            self._stretch = False
            self.counters.stretched += 1
            return Playout(self._last.copy(), PlayKind.STRETCHED, self._last_played_ts)
        ts = self._next_ts
        self._next_ts = (ts + cfg.frame_samples) % TS_MOD
        frame = self._frames.pop(ts, None)
        if frame is not None:
            self._loss_run = 0
            self._last = frame
            self._last_played_ts = ts
            self.counters.played += 1
            return Playout(frame, PlayKind.PLAYED, ts)
        self._loss_run += 1
        if not self._frames and self._loss_run >= max(cfg.conceal_frames, 1):
            self._playing = False  # ran dry: prime again before playing on
            self._waited = 0
            self._next_ts = None
            self._last_played_ts = ts
        if self._loss_run <= cfg.conceal_frames:
            self.counters.concealed += 1
            gain = cfg.conceal_gain ** (self._loss_run - 1)
            faded = np.rint(self._last.astype(np.float32) * gain).astype(np.int16)
            return Playout(faded, PlayKind.CONCEALED, ts)
        self.counters.silence += 1
        return Playout(self._silence.copy(), PlayKind.SILENCE, ts)

    def _adapt(self) -> None:
        """Lower the target after a quiet spell; drop a frame if too deep for a window."""
        cfg = self.config
        self._quiet_ticks += 1
        if self._quiet_ticks >= cfg.shrink_after and self._target > cfg.min_depth:
            self._target -= 1
            self._quiet_ticks = 0
        span = self.span()
        self._window_min = min(self._window_min, span)
        self._window_ticks += 1
        if self._window_ticks < cfg.compress_window:
            return
        if self._window_min > self._target and self._next_ts is not None:
            # Held more than needed for a whole window: skip one frame (a 20 ms cut
            # is less audible than carrying the extra latency for the rest of the call).
            if self._frames.pop(self._next_ts, None) is not None:
                self.counters.dropped += 1
            self._next_ts = (self._next_ts + cfg.frame_samples) % TS_MOD
            span -= 1
        self._window_ticks = 0
        self._window_min = span
