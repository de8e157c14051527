"""Recording what a phone says: decoded frames kept until a stop condition.

The recorder is fed each audio payload the leg's phone sends (decoded to 8 kHz
linear), and ends itself on ``max_seconds`` of audio or ``silence_seconds`` of
silence after the caller stopped speaking; the silent tail is cut off then, so a
message does not end in five seconds of nothing. Silence is a 20 ms frame whose
RMS level is under ``SILENCE_RMS`` (about -46 dBFS: quieter than a quiet office
through a handset, louder than G.711 idle noise).

Audio is kept in memory (a three-minute message is 2.9 MB of 16-bit PCM) and
written as a file only when the recording is over, in one atomic write off the
event loop: a crash mid-recording leaves nothing behind to clean up.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.pbx.app_events import RecordEnd
from appliance.pbx.media_port import RecordedAudio

SAMPLE_RATE: Final = 8000
SILENCE_RMS: Final = 160.0
# The key press itself is in the audio of phones that also send it in-band: a
# recording stopped by a digit loses its last 0.4 s.
DIGIT_TRIM_SAMPLES: Final = SAMPLE_RATE * 2 // 5


class RecorderState(Enum):
    RECORDING = "recording"
    DONE = "done"


class Recorder:
    def __init__(self, max_seconds: float, silence_seconds: float) -> None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds {max_seconds} must be positive")
        self.max_samples = int(max_seconds * SAMPLE_RATE)
        self.silence_samples = int(silence_seconds * SAMPLE_RATE) if silence_seconds > 0 else 0
        self.state = RecorderState.RECORDING
        self._chunks: list[bytes] = []
        self._samples = 0
        self._silent_run = 0  # samples of silence at the end
        self.heard_speech = False
        self._result: RecordedAudio | None = None

    @property
    def samples(self) -> int:
        return self._samples

    def feed(self, frame: npt.NDArray[np.int16]) -> RecordEnd | None:
        """Keep one decoded payload; the reason the recording is over, if it is."""
        if self.state is RecorderState.DONE:
            return None
        room = self.max_samples - self._samples
        if frame.size > room:
            frame = frame[:room]
        self._chunks.append(frame.astype("<i2", copy=False).tobytes())
        self._samples += frame.size
        level = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) if frame.size else 0.0
        if level < SILENCE_RMS:
            self._silent_run += frame.size
        else:
            self._silent_run = 0
            self.heard_speech = True
        if self._samples >= self.max_samples:
            return RecordEnd.MAX_LENGTH
        # Leading silence counts too: a caller who says nothing for the whole
        # window is done (the message under a second is discarded by the app).
        if self.silence_samples and self._silent_run >= self.silence_samples:
            return RecordEnd.SILENCE
        return None

    def finish(self, end: RecordEnd) -> RecordedAudio:
        """The recording, ended for ``end``; a second call returns the first result."""
        if self._result is not None:
            return self._result
        self.state = RecorderState.DONE
        pcm = b"".join(self._chunks)
        self._chunks = []
        keep = self._samples
        if end is RecordEnd.SILENCE:
            keep -= self._silent_run
        elif end is RecordEnd.DIGIT:
            keep -= DIGIT_TRIM_SAMPLES
        self._result = RecordedAudio(pcm[: max(keep, 0) * 2], end)
        return self._result
