"""Per-port audio: 20 ms frames of 8 kHz signed 16-bit samples to and from the line.

Everything above this module sees a `Pcm`: open it, read a captured frame (what the
line says) when one is ready, write a frame (what the line hears), close it. Three
kinds sit behind it:

- `AlsaPcm`: a sound card (I2S or USB codec) or an ALSA plugin PCM, through
  pyalsaaudio in non-blocking mode with 160-frame periods. Underruns and overruns are
  counted and recovered from; playback starts with a little silence so the first late
  write does not underrun at once.
- `StereoSplit`: one two-channel PCM shared by two ports (a stereo codec carries two
  lines, channel 0 and 1), de-interleaving capture and interleaving playback.
- `MemoryPcm`: for tests; what is written can be read back and the "line" can be made
  to say anything.

The sim board's PCMs are real ALSA PCMs over the `file` plugin (board/README.md);
`install_alsa_config` puts the board's extra ALSA configuration in place for them.
An `AlsaPcm` is not thread-safe: one ALSA thread owns it (STYLE §2.10).
"""

from __future__ import annotations

import errno
import importlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, cast

import numpy as np
import numpy.typing as npt

from appliance.hw.board_spec import RUN_DIR_FIELD, AudioSpec, BoardSpec

log = logging.getLogger(__name__)

RATE: Final = 8000
FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz (STYLE §2.8)
SAMPLE_BYTES: Final = 2  # S16_LE
DEFAULT_ALSA_CONF: Final = Path("/usr/share/alsa/alsa.conf")

Frame = npt.NDArray[np.int16]


class PcmError(Exception):
    """A PCM cannot be opened or has failed (device gone, wrong format)."""


@dataclass(slots=True)
class PcmCounters:
    frames_read: int = 0
    frames_written: int = 0
    overruns: int = 0  # capture: samples were lost because nobody read in time
    underruns: int = 0  # playback: the device ran dry and was restarted
    dropped: int = 0  # playback: a frame was thrown away because the device was full


class Pcm(Protocol):
    """One port's audio (or, for `StereoSplit`'s card, an interleaved stereo PCM)."""

    @property
    def channels(self) -> int: ...

    @property
    def counters(self) -> PcmCounters: ...

    def open(self) -> None: ...

    def read_frame(self) -> Frame | None:
        """The next captured frame (160 * channels samples, interleaved), or None if none is
        ready yet."""
        ...

    def write_frame(self, frame: Frame) -> bool:
        """Queue one frame for playback; False when a frame had to be dropped."""
        ...

    def close(self) -> None: ...


def silence(channels: int = 1) -> Frame:
    return np.zeros(FRAME_SAMPLES * channels, dtype=np.int16)


def _check_frame(frame: Frame, channels: int) -> None:
    # A wrong frame is a bug in our own media code, not line input: fail loudly.
    if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES * channels,):
        raise ValueError(
            f"a frame is {FRAME_SAMPLES * channels} int16 samples, got {frame.shape} {frame.dtype}"
        )


# -- in memory ---------------------------------------------------------------------


class MemoryPcm:
    """A PCM in memory: tests inject what the line says and read back what it heard."""

    def __init__(self, channels: int = 1, capture_frames: int = 50) -> None:
        self._channels = channels
        self._counters = PcmCounters()
        self._capture_limit = capture_frames * FRAME_SAMPLES * channels
        self._capture: deque[int] = deque()
        self._played: list[Frame] = []
        self.is_open = False

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def counters(self) -> PcmCounters:
        return self._counters

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def inject(self, samples: npt.ArrayLike) -> None:
        """The line says these samples (interleaved if stereo), any length."""
        self._capture.extend(np.asarray(samples, dtype=np.int16).ravel().tolist())
        excess = len(self._capture) - self._capture_limit
        if excess > 0:
            # Like a sound card's ring buffer: nobody read in time, the oldest are lost.
            self._counters.overruns += 1
            for _ in range(excess):
                self._capture.popleft()

    def played(self) -> Frame:
        """Every sample written since creation, in order."""
        if not self._played:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._played)

    def read_frame(self) -> Frame | None:
        if not self.is_open:
            raise PcmError("memory PCM is not open")
        size = FRAME_SAMPLES * self._channels
        if len(self._capture) < size:
            return None
        frame = np.fromiter((self._capture.popleft() for _ in range(size)), np.int16, size)
        self._counters.frames_read += 1
        return frame

    def write_frame(self, frame: Frame) -> bool:
        if not self.is_open:
            raise PcmError("memory PCM is not open")
        _check_frame(frame, self._channels)
        self._played.append(frame.copy())
        self._counters.frames_written += 1
        return True


# -- one stereo PCM, two ports ---------------------------------------------------------


class StereoSplit:
    """Two ports on one interleaved stereo PCM: channel 0 is left, channel 1 right.

    Capture is pulled on demand: whichever port reads first reads the card, and the
    other channel waits in that port's short queue. Playback pairs one frame from each
    port; when a port writes a second frame before the other wrote one, the other
    port is idle and its channel plays silence, so a lone active port is never held back
    by more than one frame.
    """

    def __init__(self, card: Pcm, queue_frames: int = 4) -> None:
        if card.channels != 2:
            raise ValueError(f"a stereo split needs a 2-channel PCM, got {card.channels}")
        self.card = card
        self._queues: tuple[deque[Frame], deque[Frame]] = (deque(), deque())
        self._pending: list[Frame | None] = [None, None]
        self._queue_frames = queue_frames
        self._opened = [False, False]
        self._ports = (_SplitPort(self, 0), _SplitPort(self, 1))

    def port(self, channel: int) -> Pcm:
        return self._ports[channel]

    def _open(self, channel: int) -> None:
        if not any(self._opened):
            self.card.open()
        self._opened[channel] = True

    def _close(self, channel: int) -> None:
        if not self._opened[channel]:
            return
        if self._pending[channel] is not None:
            self._flush()
        self._opened[channel] = False
        self._queues[channel].clear()
        if not any(self._opened):
            self.card.close()

    def _read(self, channel: int) -> Frame | None:
        queue = self._queues[channel]
        if not queue:
            stereo = self.card.read_frame()
            if stereo is None:
                return None
            for side, side_queue in enumerate(self._queues):
                if not self._opened[side]:
                    continue  # a closed port hears nothing; don't let its queue grow
                if len(side_queue) >= self._queue_frames:
                    side_queue.popleft()  # that port stopped reading: keep the newest
                    self._ports[side].counters.overruns += 1
                side_queue.append(stereo[side::2].copy())
        if not queue:
            return None
        self._ports[channel].counters.frames_read += 1
        return queue.popleft()

    def _write(self, channel: int, frame: Frame) -> bool:
        _check_frame(frame, 1)
        ok = True
        if self._pending[channel] is not None:
            ok = self._flush()  # the other port is idle: its channel plays silence
        self._pending[channel] = frame.copy()
        if all(p is not None for p in self._pending):
            ok = self._flush() and ok
        self._ports[channel].counters.frames_written += 1
        return ok

    def _flush(self) -> bool:
        stereo = np.empty(FRAME_SAMPLES * 2, dtype=np.int16)
        for side in (0, 1):
            pending = self._pending[side]
            stereo[side::2] = 0 if pending is None else pending
        self._pending = [None, None]
        return self.card.write_frame(stereo)


class _SplitPort:
    """One channel of a `StereoSplit`, seen as a mono `Pcm`."""

    def __init__(self, split: StereoSplit, channel: int) -> None:
        self._split = split
        self._channel = channel
        self._counters = PcmCounters()

    @property
    def channels(self) -> int:
        return 1

    @property
    def counters(self) -> PcmCounters:
        return self._counters

    def open(self) -> None:
        self._split._open(self._channel)

    def close(self) -> None:
        self._split._close(self._channel)

    def read_frame(self) -> Frame | None:
        return self._split._read(self._channel)

    def write_frame(self, frame: Frame) -> bool:
        return self._split._write(self._channel, frame)


# -- ALSA --------------------------------------------------------------------------------


class AlsaHandle(Protocol):
    """The part of `alsaaudio.PCM` we use (pyalsaaudio ships no type stubs)."""

    def read(self) -> tuple[int, bytes]: ...

    def write(self, data: bytes) -> int: ...

    def info(self) -> dict[str, object]: ...

    def close(self) -> None: ...


class AlsaModule(Protocol):
    """The part of the `alsaaudio` module we use; tests pass a fake to script xruns."""

    PCM_PLAYBACK: int
    PCM_CAPTURE: int
    PCM_NONBLOCK: int
    PCM_FORMAT_S16_LE: int
    ALSAAudioError: type[Exception]

    def PCM(  # pyalsaaudio's name for its class
        self,
        type: int,
        mode: int,
        rate: int,
        channels: int,
        format: int,
        periodsize: int,
        periods: int,
        device: str,
    ) -> AlsaHandle: ...


def import_alsaaudio() -> AlsaModule:
    """pyalsaaudio, imported only when a real PCM opens: tests and tools run without it."""
    try:
        module = importlib.import_module("alsaaudio")
    except ImportError as exc:
        raise PcmError(
            f"pyalsaaudio is not installed ({exc}); pip install 'pyalsaaudio>=0.11'"
        ) from exc
    return cast(AlsaModule, module)


class AlsaPcm:
    """One ALSA PCM, opened once for playback and once for capture, non-blocking."""

    def __init__(
        self,
        device: str,
        channels: int = 1,
        *,
        periods: int = 4,
        prefill_frames: int = 2,
        alsa: Callable[[], AlsaModule] = import_alsaaudio,
    ) -> None:
        self.device = device
        self._channels = channels
        self._periods = periods  # 4 x 20 ms of device buffer: room for a late tick or two
        self._prefill = prefill_frames  # silence ahead of the first frame: 40 ms of slack
        self._alsa_loader = alsa
        self._counters = PcmCounters()
        self._frame_bytes = FRAME_SAMPLES * channels * SAMPLE_BYTES
        self._playback: AlsaHandle | None = None
        self._capture: AlsaHandle | None = None
        self._alsa: AlsaModule | None = None
        self._captured = bytearray()  # partial reads, until a whole frame is there
        self._tail = b""  # the part of a frame the device could not take yet

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def counters(self) -> PcmCounters:
        return self._counters

    def open(self) -> None:
        if self._playback is not None:
            return
        alsa = self._alsa_loader()
        self._alsa = alsa
        playback = self._open_one(alsa, alsa.PCM_PLAYBACK, "playback")
        try:
            capture = self._open_one(alsa, alsa.PCM_CAPTURE, "capture")
        except PcmError:
            playback.close()
            raise
        self._playback, self._capture = playback, capture
        self._captured.clear()
        self._tail = b""
        self._write_prefill()

    def _open_one(self, alsa: AlsaModule, kind: int, what: str) -> AlsaHandle:
        try:
            handle = alsa.PCM(
                type=kind,
                mode=alsa.PCM_NONBLOCK,
                rate=RATE,
                channels=self._channels,
                format=alsa.PCM_FORMAT_S16_LE,
                periodsize=FRAME_SAMPLES,
                periods=self._periods,
                device=self.device,
            )
        except alsa.ALSAAudioError as exc:
            raise PcmError(f"{self.device}: cannot open for {what}: {exc}") from exc
        info = handle.info()
        # ALSA may settle on other parameters than asked for; a hw: device that cannot do
        # 8 kHz mono would play every sample at the wrong speed, so refuse it here.
        if info.get("rate") != RATE or info.get("channels") != self._channels:
            handle.close()
            raise PcmError(
                f"{self.device}: {what} runs at {info.get('rate')} Hz with "
                f"{info.get('channels')} channel(s), not {RATE} Hz with {self._channels}; "
                "use a plughw: device to convert"
            )
        if info.get("period_size") != FRAME_SAMPLES:
            log.info("%s: %s period is %s frames, not 160", self.device, what, info["period_size"])
        return handle

    def close(self) -> None:
        for handle in (self._playback, self._capture):
            if handle is not None:
                handle.close()
        self._playback = self._capture = None

    def _handles(self) -> tuple[AlsaModule, AlsaHandle, AlsaHandle]:
        if self._alsa is None or self._playback is None or self._capture is None:
            raise PcmError(f"{self.device}: not open")
        return self._alsa, self._playback, self._capture

    def read_frame(self) -> Frame | None:
        alsa, _, capture = self._handles()
        if len(self._captured) < self._frame_bytes:
            try:
                count, data = capture.read()
            except alsa.ALSAAudioError as exc:
                raise PcmError(f"{self.device}: capture failed: {exc}") from exc
            if count == -errno.EPIPE:
                # Overrun: pyalsaaudio has re-prepared the stream and the next read
                # starts it again; what was in the buffer is gone, and so is our partial.
                self._counters.overruns += 1
                self._captured.clear()
                return None
            if count > 0:
                self._captured += data
        if len(self._captured) < self._frame_bytes:
            return None  # -EAGAIN: the period is not complete yet
        raw = bytes(self._captured[: self._frame_bytes])
        del self._captured[: self._frame_bytes]
        self._counters.frames_read += 1
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)

    def write_frame(self, frame: Frame) -> bool:
        _check_frame(frame, self._channels)
        self._handles()
        data = self._tail + frame.astype("<i2").tobytes()
        written = self._write(data)
        rest = data[written * self._channels * SAMPLE_BYTES :]
        ok = True
        if len(rest) > self._frame_bytes:
            # The device is full and more than a frame is waiting: drop the oldest
            # samples so playback latency stays bounded.
            self._counters.dropped += 1
            rest = rest[-self._frame_bytes :]
            ok = False
        self._tail = rest
        self._counters.frames_written += 1
        return ok

    def _write(self, data: bytes) -> int:
        """Frames the device took; an underrun is recovered from and the write retried."""
        alsa, playback, _ = self._handles()
        try:
            result = playback.write(data)
            if result == -errno.EPIPE:
                # Underrun: pyalsaaudio re-prepared the stream but wrote nothing. Put
                # the prefill back first, or the next late tick underruns again.
                self._counters.underruns += 1
                self._write_prefill()
                result = playback.write(data)
        except alsa.ALSAAudioError as exc:
            raise PcmError(f"{self.device}: playback failed: {exc}") from exc
        return max(result, 0)  # 0: -EAGAIN, the buffer is full; a second -EPIPE: skip

    def _write_prefill(self) -> None:
        if self._playback is None or self._prefill == 0:
            return
        self._playback.write(silence(self._channels).tobytes() * self._prefill)


# -- wiring a board's ports --------------------------------------------------------------


def port_pcms(
    spec: BoardSpec,
    run_dir: Path,
    make: Callable[[str, int], Pcm] = AlsaPcm,
) -> dict[int, Pcm]:
    """One `Pcm` per port number: each card's PCM made once, stereo cards split in two.

    Gains from the board file are applied per port when they are not 0 dB.
    """
    pcms: dict[int, Pcm] = {}
    for card in spec.cards():
        pcm = make(card.device.replace(RUN_DIR_FIELD, str(run_dir)), card.channels)
        split = StereoSplit(pcm) if card.channels == 2 else None
        for channel, number in enumerate(card.ports):
            if not number:
                continue  # a channel no port uses: it plays silence
            port = pcm if split is None else split.port(channel)
            audio = spec.port(number).audio
            if audio.gain_to_line_db or audio.gain_from_line_db:
                port = GainPcm(port, audio)
            pcms[number] = port
    return pcms


class GainPcm:
    """A port with the board file's fixed gains applied, saturating at full scale."""

    def __init__(self, inner: Pcm, audio: AudioSpec) -> None:
        self._inner = inner
        self._to_line = 10 ** (audio.gain_to_line_db / 20)
        self._from_line = 10 ** (audio.gain_from_line_db / 20)

    @property
    def channels(self) -> int:
        return self._inner.channels

    @property
    def counters(self) -> PcmCounters:
        return self._inner.counters

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def read_frame(self) -> Frame | None:
        frame = self._inner.read_frame()
        return None if frame is None else _scale(frame, self._from_line)

    def write_frame(self, frame: Frame) -> bool:
        return self._inner.write_frame(_scale(frame, self._to_line))


def _scale(frame: Frame, gain: float) -> Frame:
    if gain == 1.0:
        return frame
    scaled = np.rint(frame.astype(np.float32) * gain)
    out: Frame = np.clip(scaled, -32768, 32767).astype(np.int16)
    return out


def install_alsa_config(text: str, run_dir: Path, base: Path = DEFAULT_ALSA_CONF) -> str:
    """Write a board's extra ALSA configuration into run_dir; the ALSA_CONFIG_PATH value.

    ALSA_CONFIG_PATH replaces ALSA's top configuration file, so ALSA's own alsa.conf
    comes first in the colon-separated list, then ours. alsa-lib re-reads its
    configuration when the list changes, so setting the variable before the first
    PCM of the board opens is enough.
    """
    path = run_dir / "asound.conf"
    path.write_text(text, encoding="utf-8")
    return f"{base}:{path}"


def sim_audio_files(spec: BoardSpec, run_dir: Path) -> list[tuple[Path, bool]]:
    """The files a board's ALSA `file` PCMs play into (OUT=) and capture from (IN=), as
    (path, is_capture), for devices that name them under ``{run_dir}`` (the sim board)."""
    found: list[tuple[Path, bool]] = []
    for card in spec.cards():
        device = card.device.replace(RUN_DIR_FIELD, str(run_dir))
        for key, capture in (("OUT=", False), ("IN=", True)):
            if key in device:
                value = device.split(key, 1)[1].split(",", 1)[0].strip("'\"")
                found.append((Path(value), capture))
    return found
