"""A leg's playback queue: prompts and recordings cut into 20 ms G.711 frames.

Items are resolved to audio only when the queue reaches them (a long queue of
prompts costs nothing until it plays, and a missing file is found at the moment it
would have played, and skipped). Each clip is encoded for the leg's codec in one
numpy call when it starts (again if the codec changes while it plays), then handed
out a frame per media-clock tick.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.g711 import Codec, encode
from appliance.pbx.app_events import PlayItem

log = logging.getLogger(__name__)

FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz
Samples = npt.NDArray[np.int16]

# Resolves an item (prompt name, "moh:<class>", Recording) in a language to 8 kHz
# int16 mono clips; raises LookupError or OSError/ValueError when it cannot.
ClipLoader = Callable[[PlayItem, str], Sequence[npt.NDArray[np.int16]]]


class EncodedClips:
    """G.711 bytes of clips, encoded once per codec and shared by every leg playing them.

    Encoding a prompt costs about 70 us per leg; 800 callers reaching the same prompt
    in one tick would otherwise stall the media clock for a frame or more. Clips are
    keyed by the array itself (the prompt library hands out one read-only array while
    it caches a file), held by a weak reference so an entry goes with its array.
    Writable arrays are encoded every time: they may change.
    """

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._cache: OrderedDict[tuple[int, Codec], tuple[weakref.ref[Samples], bytes]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._cache)

    def encode(self, clip: Samples, codec: Codec) -> bytes:
        """``clip`` padded with silence to whole 20 ms frames, encoded for ``codec``."""
        key = (id(clip), codec)
        hit = self._cache.get(key)
        if hit is not None and hit[0]() is clip:
            self._cache.move_to_end(key)
            return hit[1]
        short = -clip.size % FRAME_SAMPLES  # the last partial frame: padded with silence
        padded = np.concatenate((clip, np.zeros(short, dtype=np.int16))) if short else clip
        data = encode(codec, padded)
        if clip.flags.writeable:
            return data
        self._drop(key)
        self._cache[key] = (weakref.ref(clip, lambda _: self._drop(key)), data)
        self._bytes += len(data)
        while self._bytes > self._max_bytes and len(self._cache) > 1:
            self._drop(next(iter(self._cache)))
        return data

    def _drop(self, key: tuple[int, Codec]) -> None:
        entry = self._cache.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])


class Playback:
    """The queue of one leg; ``next_frame`` is called once per tick."""

    def __init__(
        self,
        loader: ClipLoader,
        codec: Codec,
        loop: bool = False,
        ident: int = 0,
        encoded: EncodedClips | None = None,
    ) -> None:
        self.ident = ident  # the queue's number, which PlaybackFinished carries back
        self._encoded = encoded if encoded is not None else EncodedClips(0)
        self._loader = loader
        self._codec = codec
        self.loop = loop
        self._items: deque[tuple[PlayItem, str]] = deque()
        self._played: list[tuple[PlayItem, str]] = []  # for looping
        self._clips: deque[npt.NDArray[np.int16]] = deque()
        self._samples: Samples = np.zeros(0, dtype=np.int16)
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
            self._current = self._encoded.encode(self._samples, codec)

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
        self._samples = clip
        self._current = self._encoded.encode(clip, self._codec)
        self._offset = 0
        return True
