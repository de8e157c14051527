"""The bench's audio on one line: what the "phone" says, and what the port plays.

A codec on this machine is coupled to each line (through a hybrid: see
hil/README.md). ``LineAudio`` moves one 20 ms frame each way per media-clock tick
(STYLE §2.8: frame n at ``t0 + n * 0.020``): it plays frame n of what ``say()`` laid
out (silence elsewhere) and keeps every captured frame, which is what ``played()``
returns. ``open_line_pcms`` makes the PCMs the way ``port_pcms`` does for a board:
one ``AlsaPcm`` per device, split by ``StereoSplit`` when it has two channels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.hw.pcm import FRAME_SAMPLES, RATE, AlsaPcm, Pcm, StereoSplit
from hil.bench_config import AudioChannel

FRAME_S: Final = FRAME_SAMPLES / RATE
SAY_SECONDS: Final = 60.0  # as the sim rig's capture files: what can be scheduled


class LineAudio:
    def __init__(self, pcm: Pcm, seconds: float = SAY_SECONDS) -> None:
        self.pcm = pcm
        self._say = np.zeros(int(seconds * RATE), dtype=np.int16)
        self._captured: list[npt.NDArray[np.int16]] = []
        self._joined: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
        self._joined_frames = 0
        self.frames_out = 0  # the next frame to play

    def say(self, at: float, samples: npt.NDArray[np.int16]) -> None:
        """Send ``samples`` ``at`` seconds after the media clock's start (what was laid
        out there before is replaced, as on the sim rig)."""
        start = int(at * RATE)
        if start < 0:
            raise ValueError(f"cannot say anything before the start ({at} s)")
        room = max(len(self._say) - start, 0)
        self._say[start : start + min(len(samples), room)] = samples[:room]

    def tick(self) -> None:
        """Play the next frame and keep every frame captured since the last tick."""
        start = self.frames_out * FRAME_SAMPLES
        frame = self._say[start : start + FRAME_SAMPLES]
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), np.int16)])
        self.pcm.write_frame(frame.copy())
        self.frames_out += 1
        while (captured := self.pcm.read_frame()) is not None:
            self._captured.append(captured)

    def played(self) -> npt.NDArray[np.int16]:
        """Everything captured from the line so far."""
        if self._joined_frames != len(self._captured):
            self._joined = (
                np.concatenate(self._captured) if self._captured else np.zeros(0, np.int16)
            )
            self._joined_frames = len(self._captured)
        return self._joined


def open_line_pcms(
    channels: Iterable[tuple[int, AudioChannel]],
    make: Callable[[str, int], Pcm] = AlsaPcm,
) -> dict[int, Pcm]:
    """One mono ``Pcm`` per port; ports naming one device share its PCM."""
    cards: dict[str, tuple[Pcm, StereoSplit | None]] = {}
    pcms: dict[int, Pcm] = {}
    for port, audio in channels:
        if audio.device not in cards:
            card = make(audio.device, audio.channels)
            cards[audio.device] = (card, StereoSplit(card) if audio.channels == 2 else None)
        card, split = cards[audio.device]
        pcms[port] = card if split is None else split.port(audio.channel)
    return pcms
