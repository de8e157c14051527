"""A leg's playback queue: prompts and recordings cut into 20 ms G.711 frames.

Items are resolved to audio only when the queue reaches them (a long queue of
prompts costs nothing until it plays, and a missing file is found at the moment it
would have played, and skipped). Each clip is encoded for the leg's codec in one
numpy call when it starts (again if the codec changes while it plays), then handed
out a frame per media-clock tick.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.g711 import Codec, encode
from appliance.pbx.app_events import PlayItem

log = logging.getLogger(__name__)

FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz

# Resolves an item (prompt name, "moh:<class>", Recording) in a language to 8 kHz
# int16 mono clips; raises LookupError or OSError/ValueError when it cannot.
ClipLoader = Callable[[PlayItem, str], Sequence[npt.NDArray[np.int16]]]


class Playback:
    """The queue of one leg; ``next_frame`` is called once per tick."""

    def __init__(
        self, loader: ClipLoader, codec: Codec, loop: bool = False, ident: int = 0
    ) -> None:
        self.ident = ident  # the queue's number, which PlaybackFinished carries back
        self._loader = loader
        self._codec = codec
        self.loop = loop
        self._items: deque[tuple[PlayItem, str]] = deque()
        self._played: list[tuple[PlayItem, str]] = []  # for looping
        self._clips: deque[npt.NDArray[np.int16]] = deque()
        self._samples: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)  # padded
        self._current = b""  # ``_samples`` encoded
        self._offset = 0
        self.frames_sent = 0

    @property
    def codec(self) -> Codec:
        return self._codec

    @codec.setter
    def codec(self, codec: Codec) -> None:
        """A re-INVITE changed the leg's codec: the frames still to come of the clip
        that is playing are encoded again, since the packets carry the new payload
        type from the next one on (one sample per byte: offsets stay the same)."""
        if codec is self._codec:
            return
        self._codec = codec
        if self._offset < len(self._current):
            self._current = encode(codec, self._samples)

    def add(self, items: Sequence[PlayItem], language: str) -> None:
        self._items.extend((item, language) for item in items)

    @property
    def pending(self) -> bool:
        return self._offset < len(self._current) or bool(self._clips) or bool(self._items)

    def next_frame(self) -> bytes | None:
        """The next 160-byte payload, or None when the queue has run out."""
        while self._offset >= len(self._current):
            if not self._next_clip():
                return None
        frame = self._current[self._offset : self._offset + FRAME_SAMPLES]
        self._offset += FRAME_SAMPLES
        self.frames_sent += 1
        return frame

    def _next_clip(self) -> bool:
        restarted = False  # a looping queue whose items all fail must not spin
        while not self._clips:
            if not self._items:
                if not self.loop or not self._played or restarted:
                    return False
                self._items.extend(self._played)
                self._played = []
                restarted = True
            item, language = self._items.popleft()
            if self.loop:  # a queue that plays once need not remember what it played
                self._played.append((item, language))
            try:
                clips = self._loader(item, language)
            except (LookupError, OSError, ValueError) as exc:
                log.warning("cannot play %r: %s", item, exc)
                continue
            self._clips.extend(clip for clip in clips if clip.size)
        clip = self._clips.popleft()
        short = -clip.size % FRAME_SAMPLES  # the last partial frame: padded with silence
        if short:
            clip = np.concatenate((clip, np.zeros(short, dtype=np.int16)))
        self._samples = clip
        self._current = encode(self._codec, clip)
        self._offset = 0
        return True
