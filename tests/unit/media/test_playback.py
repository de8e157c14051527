"""Playback, sans-IO: clips cut into 20 ms G.711 frames, the queue in order, items
resolved only when reached, failed items skipped, loop mode, and codec changes
(a re-INVITE mid-clip: the payload follows the payload type from the next frame)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from appliance.dsp.g711 import Codec, encode
from appliance.media.playback import FRAME_SAMPLES, EncodedClips, Playback
from appliance.pbx.app_events import PlayItem, Recording

pytestmark = pytest.mark.timeout(10)

Clip = npt.NDArray[np.int16]


def sine(samples: int, freq: float = 440.0, amplitude: int = 8000) -> Clip:
    n = np.arange(samples)
    clip: Clip = np.rint(amplitude * np.sin(2 * np.pi * freq * n / 8000)).astype(np.int16)
    return clip


def padded(codec: Codec, clip: Clip) -> bytes:
    """What the frames of ``clip`` carry: the clip, then silence to a whole frame."""
    short = -clip.size % FRAME_SAMPLES
    return encode(codec, clip) + encode(codec, np.zeros(short, dtype=np.int16))


class Library:
    """A ClipLoader over a dict, recording each call; a value that is an exception
    is raised instead."""

    def __init__(self, clips: dict[str, Sequence[Clip] | Exception]) -> None:
        self.clips = clips
        self.calls: list[tuple[PlayItem, str]] = []

    def __call__(self, item: PlayItem, language: str) -> Sequence[Clip]:
        self.calls.append((item, language))
        key = item if isinstance(item, str) else item.path
        found = self.clips[key]  # KeyError is a LookupError: an unknown prompt
        if isinstance(found, Exception):
            raise found
        return found


def drain(playback: Playback, limit: int = 10_000) -> list[bytes]:
    frames: list[bytes] = []
    while (frame := playback.next_frame()) is not None:
        frames.append(frame)
        assert len(frames) < limit, "the queue never ends"
    return frames


@pytest.mark.parametrize("codec", [Codec.PCMU, Codec.PCMA])
def test_frames_are_the_encoded_clip_with_the_last_one_padded(codec: Codec) -> None:
    clip = sine(1000)  # six whole frames and 40 samples
    playback = Playback(Library({"hello": [clip]}), codec)
    playback.add(["hello"], "en")
    assert playback.pending
    frames = drain(playback)
    assert len(frames) == 7 and all(len(frame) == FRAME_SAMPLES for frame in frames)
    assert b"".join(frames)[:1000] == encode(codec, clip)
    assert frames[-1][40:] == encode(codec, np.zeros(120, dtype=np.int16))
    assert playback.frames_sent == 7
    assert not playback.pending
    assert playback.next_frame() is None  # stays over


def test_a_clip_of_whole_frames_is_not_padded() -> None:
    clip = sine(480)
    playback = Playback(Library({"x": [clip]}), Codec.PCMU)
    playback.add(["x"], "en")
    assert b"".join(drain(playback)) == encode(Codec.PCMU, clip)


def test_the_queue_plays_in_order_across_items_clips_and_calls_to_add() -> None:
    a, b1, b2, c = sine(500, 300), sine(160, 500), sine(330, 700), sine(90, 900)
    library = Library({"a": [a], "b": [b1, b2], "/data/msg1.wav": [c]})
    playback = Playback(library, Codec.PCMA)
    playback.add(["a", "b"], "en")
    playback.add([Recording("/data/msg1.wav")], "fr")
    expected = b"".join(padded(Codec.PCMA, clip) for clip in (a, b1, b2, c))
    assert b"".join(drain(playback)) == expected
    assert library.calls == [("a", "en"), ("b", "en"), (Recording("/data/msg1.wav"), "fr")]


def test_items_are_loaded_only_when_the_queue_reaches_them() -> None:
    library = Library({"a": [sine(320)], "b": [sine(160)], "c": [sine(160)]})
    playback = Playback(library, Codec.PCMU)
    playback.add(["a", "b", "c"], "de")
    assert library.calls == []  # queueing costs nothing
    playback.next_frame()
    assert library.calls == [("a", "de")]
    playback.next_frame()  # the last frame of "a": "b" is not needed yet
    assert library.calls == [("a", "de")]
    playback.next_frame()
    assert library.calls == [("a", "de"), ("b", "de")]
    drain(playback)
    assert [item for item, _ in library.calls] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "error", [LookupError("no such prompt"), OSError("unreadable"), ValueError("not a WAV")]
)
def test_an_item_that_cannot_be_loaded_is_skipped(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = sine(200, 300), sine(200, 600)
    library = Library({"a": [a], "broken": error, "b": [b]})
    playback = Playback(library, Codec.PCMU)
    playback.add(["a", "broken", "missing", "b"], "en")  # "missing": a KeyError
    with caplog.at_level(logging.WARNING, logger="appliance.media.playback"):
        frames = drain(playback)
    assert b"".join(frames) == padded(Codec.PCMU, a) + padded(Codec.PCMU, b)
    assert [item for item, _ in library.calls] == ["a", "broken", "missing", "b"]
    assert sum("cannot play" in r.getMessage() for r in caplog.records) == 2


def test_empty_clips_are_skipped() -> None:
    a = sine(160)
    library = Library({"nothing": [], "blank": [np.zeros(0, dtype=np.int16)], "a": [a]})
    playback = Playback(library, Codec.PCMU)
    playback.add(["nothing", "blank", "a"], "en")
    assert drain(playback) == [encode(Codec.PCMU, a)]


def test_a_queue_of_only_failing_items_ends_at_once() -> None:
    playback = Playback(Library({}), Codec.PCMU)
    playback.add(["x", "y"], "en")
    assert playback.next_frame() is None
    assert not playback.pending


def test_loop_mode_repeats_the_queue_and_loads_items_again() -> None:
    a, b = sine(240, 300), sine(160, 600)
    library = Library({"a": [a], "b": [b]})
    playback = Playback(library, Codec.PCMU, loop=True)
    playback.add(["a", "b"], "en")
    once = padded(Codec.PCMU, a) + padded(Codec.PCMU, b)  # three frames
    frames = [playback.next_frame() for _ in range(3 * 3 + 1)]
    assert all(frame is not None for frame in frames)
    assert b"".join(f for f in frames if f is not None) == once * 3 + once[:FRAME_SAMPLES]
    # each round resolves its items again: a greeting re-recorded meanwhile is heard
    assert [item for item, _ in library.calls] == ["a", "b"] * 3 + ["a"]
    assert playback.pending


def test_loop_mode_skips_the_failing_items_of_each_round() -> None:
    a = sine(160)
    playback = Playback(Library({"a": [a], "bad": OSError("gone")}), Codec.PCMU, loop=True)
    playback.add(["bad", "a", "bad"], "en")
    assert [playback.next_frame() for _ in range(4)] == [encode(Codec.PCMU, a)] * 4


def test_a_loop_whose_every_item_fails_ends_instead_of_spinning() -> None:
    library = Library({"bad": ValueError("corrupt"), "worse": OSError("gone")})
    playback = Playback(library, Codec.PCMU, loop=True)
    playback.add(["bad", "missing", "worse"], "en")
    assert playback.next_frame() is None
    assert len(library.calls) <= 2 * 3  # at most one retry of the whole round


def test_a_loop_that_starts_failing_later_ends() -> None:
    library = Library({"a": [sine(160)]})
    playback = Playback(library, Codec.PCMU, loop=True)
    playback.add(["a"], "en")
    assert playback.next_frame() is not None
    library.clips["a"] = OSError("deleted")
    assert playback.next_frame() is None


def test_a_codec_change_applies_from_the_next_frame() -> None:
    a, b = sine(400, 300), sine(200, 600)  # "a": two whole frames and half of one
    library = Library({"a": [a], "b": [b]})
    playback = Playback(library, Codec.PCMU)
    playback.add(["a", "b"], "en")
    first = playback.next_frame()
    playback.codec = Codec.PCMA  # a re-INVITE while "a" plays: the next packet says PCMA
    rest = drain(playback)
    assert first == padded(Codec.PCMU, a)[:FRAME_SAMPLES]
    # the rest of "a", its silent pad included, and all of "b" are PCMA
    assert b"".join(rest[:2]) == padded(Codec.PCMA, a)[FRAME_SAMPLES:]
    assert b"".join(rest[2:]) == padded(Codec.PCMA, b)
    assert playback.codec is Codec.PCMA
    assert [item for item, _ in library.calls] == ["a", "b"]  # nothing loaded twice


def test_a_codec_change_between_clips_or_when_idle() -> None:
    a, b = sine(160, 300), sine(160, 600)
    playback = Playback(Library({"a": [a], "b": [b]}), Codec.PCMA)
    playback.codec = Codec.PCMU  # before anything played
    playback.add(["a", "b"], "en")
    assert playback.next_frame() == encode(Codec.PCMU, a)
    playback.codec = Codec.PCMA  # "a" is over: "b" is encoded when it starts
    assert playback.next_frame() == encode(Codec.PCMA, b)
    playback.codec = Codec.PCMU
    assert playback.next_frame() is None


def test_encoded_clips_are_shared_until_their_array_goes() -> None:
    import gc

    cache = EncodedClips()
    clip = (np.arange(200) * 50).astype(np.int16)
    clip.setflags(write=False)
    first = cache.encode(clip, Codec.PCMU)
    assert cache.encode(clip, Codec.PCMU) is first  # encoded once, shared
    assert len(first) == 320  # padded to whole frames
    padded = np.concatenate((clip, np.zeros(120, dtype=np.int16)))
    assert first == encode(Codec.PCMU, padded)
    assert cache.encode(clip, Codec.PCMA) == encode(Codec.PCMA, padded)
    assert len(cache) == 2
    del clip
    gc.collect()
    assert len(cache) == 0  # the entries went with the array

    writable = np.zeros(160, dtype=np.int16)
    cache.encode(writable, Codec.PCMU)
    assert len(cache) == 0  # it may change: never cached


def test_encoded_clips_are_bounded_by_bytes() -> None:
    cache = EncodedClips(max_bytes=400)
    clips = [np.full(160, i, dtype=np.int16) for i in range(4)]
    for clip in clips:
        clip.setflags(write=False)
        cache.encode(clip, Codec.PCMU)
    assert len(cache) == 2  # 4 x 160 bytes do not fit in 400
