"""Recorder, sans-IO: stop conditions (maximum length, a run of silence), the tail
trimmed for silence and for a stop digit, and what happens after it is over."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media.recorder import (
    DIGIT_TRIM_SAMPLES,
    SAMPLE_RATE,
    SILENCE_RMS,
    Recorder,
    RecorderState,
)
from appliance.pbx.app_events import RecordEnd

pytestmark = pytest.mark.timeout(10)

FRAME = 160


def speech(frames: int, start: int = 0) -> list[npt.NDArray[np.int16]]:
    """20 ms frames of a 440 Hz sine at about -16 dBFS (well over SILENCE_RMS)."""
    n = np.arange(start * FRAME, (start + frames) * FRAME)
    signal = np.rint(8000 * np.sin(2 * np.pi * 440 * n / SAMPLE_RATE)).astype(np.int16)
    return [signal[i : i + FRAME] for i in range(0, signal.size, FRAME)]


def quiet(frames: int, level: int = 0) -> list[npt.NDArray[np.int16]]:
    """20 ms frames of silence, or of a constant ``level`` (its RMS is ``level``)."""
    return [np.full(FRAME, level, dtype=np.int16) for _ in range(frames)]


def feed_all(recorder: Recorder, frames: list[npt.NDArray[np.int16]]) -> list[RecordEnd | None]:
    return [recorder.feed(frame) for frame in frames]


def pcm_of(frames: list[npt.NDArray[np.int16]]) -> bytes:
    return b"".join(frame.astype("<i2").tobytes() for frame in frames)


def test_max_length_stops_at_exactly_max_samples() -> None:
    recorder = Recorder(max_seconds=0.05, silence_seconds=0)  # 400 samples: 2.5 frames
    frames = speech(4)
    ends = feed_all(recorder, frames[:3])
    assert ends == [None, None, RecordEnd.MAX_LENGTH]
    assert recorder.samples == 400
    audio = recorder.finish(RecordEnd.MAX_LENGTH)
    assert audio.end is RecordEnd.MAX_LENGTH
    assert audio.pcm == pcm_of(frames)[: 400 * 2]  # the third frame cut in half
    assert audio.seconds == pytest.approx(0.05)


def test_max_length_on_a_frame_boundary() -> None:
    recorder = Recorder(max_seconds=0.1, silence_seconds=0)
    ends = feed_all(recorder, speech(5))
    assert ends == [None] * 4 + [RecordEnd.MAX_LENGTH]
    assert len(recorder.finish(RecordEnd.MAX_LENGTH).pcm) == 800 * 2


def test_a_run_of_silence_stops_and_the_silent_tail_is_cut() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0.2)  # 10 frames of silence
    talk = speech(25)  # half a second
    assert feed_all(recorder, talk) == [None] * 25
    ends = feed_all(recorder, quiet(10))
    assert ends == [None] * 9 + [RecordEnd.SILENCE]
    assert recorder.heard_speech
    audio = recorder.finish(RecordEnd.SILENCE)
    assert audio.end is RecordEnd.SILENCE
    assert audio.pcm == pcm_of(talk)
    assert audio.seconds == pytest.approx(0.5)


def test_speech_after_a_pause_restarts_the_silence_count() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0.2)
    frames = speech(5) + quiet(9) + speech(5, start=14) + quiet(10)
    ends = feed_all(recorder, frames)
    assert ends[:-1] == [None] * (len(frames) - 1)  # the first pause is one frame short
    assert ends[-1] is RecordEnd.SILENCE
    audio = recorder.finish(RecordEnd.SILENCE)
    assert audio.pcm == pcm_of(frames[:19])  # the pause inside the message is kept


def test_quiet_noise_counts_as_silence_and_louder_noise_does_not() -> None:
    under = int(SILENCE_RMS) - 1
    recorder = Recorder(max_seconds=10, silence_seconds=0.1)
    assert feed_all(recorder, quiet(5, level=under))[-1] is RecordEnd.SILENCE
    assert not recorder.heard_speech
    recorder = Recorder(max_seconds=10, silence_seconds=0.1)
    assert feed_all(recorder, quiet(5, level=int(SILENCE_RMS) + 1)) == [None] * 5
    assert recorder.heard_speech


def test_leading_silence_alone_ends_the_recording_empty() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0.1)
    assert feed_all(recorder, quiet(5))[-1] is RecordEnd.SILENCE
    audio = recorder.finish(RecordEnd.SILENCE)
    assert audio.pcm == b"" and audio.seconds == 0


def test_no_silence_limit_means_silence_never_stops_it() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0)
    assert feed_all(recorder, quiet(100)) == [None] * 100


def test_a_stop_digit_trims_the_last_0_4_seconds() -> None:
    assert DIGIT_TRIM_SAMPLES == int(0.4 * SAMPLE_RATE)
    recorder = Recorder(max_seconds=10, silence_seconds=5)
    frames = speech(50)  # one second
    feed_all(recorder, frames)
    audio = recorder.finish(RecordEnd.DIGIT)
    assert audio.end is RecordEnd.DIGIT
    assert audio.pcm == pcm_of(frames)[: (SAMPLE_RATE - DIGIT_TRIM_SAMPLES) * 2]
    assert audio.seconds == pytest.approx(0.6)


def test_a_stop_digit_in_a_recording_shorter_than_the_trim_leaves_nothing() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=5)
    feed_all(recorder, speech(10))  # 0.2 s
    assert recorder.finish(RecordEnd.DIGIT).pcm == b""


@pytest.mark.parametrize("end", [RecordEnd.STOPPED, RecordEnd.HANG_UP, RecordEnd.MAX_LENGTH])
def test_other_ends_keep_everything_including_trailing_silence(end: RecordEnd) -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=1)
    frames = speech(10) + quiet(10)
    feed_all(recorder, frames)
    audio = recorder.finish(end)
    assert (audio.pcm, audio.end) == (pcm_of(frames), end)


def test_finish_twice_returns_the_same_recording() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0.1)
    frames = speech(10)
    feed_all(recorder, frames)
    first = recorder.finish(RecordEnd.STOPPED)
    assert recorder.state is RecorderState.DONE
    assert recorder.finish(RecordEnd.HANG_UP) == first  # not emptied, not re-trimmed
    assert first.pcm == pcm_of(frames)


def test_feed_after_finish_is_ignored() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0.1)
    frames = speech(10)
    feed_all(recorder, frames)
    audio = recorder.finish(RecordEnd.STOPPED)
    assert feed_all(recorder, speech(5) + quiet(10)) == [None] * 15
    assert recorder.samples == 10 * FRAME
    assert recorder.finish(RecordEnd.STOPPED).pcm == audio.pcm == pcm_of(frames)


def test_feed_past_the_maximum_keeps_nothing_more() -> None:
    recorder = Recorder(max_seconds=0.02, silence_seconds=0)
    assert feed_all(recorder, speech(3)) == [RecordEnd.MAX_LENGTH] * 3
    assert len(recorder.finish(RecordEnd.MAX_LENGTH).pcm) == FRAME * 2


def test_frames_of_other_sizes_are_kept_whole() -> None:
    recorder = Recorder(max_seconds=10, silence_seconds=0)
    signal = np.concatenate(speech(3))
    for chunk in (signal[:240], signal[240:]):  # 30 ms packets
        recorder.feed(chunk)
    assert recorder.finish(RecordEnd.STOPPED).pcm == signal.astype("<i2").tobytes()


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_maximum_that_is_not_positive_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Recorder(max_seconds=seconds, silence_seconds=1)
