"""Per-port PCMs: in memory, the stereo split, and ALSA (scripted xruns, then the real
`file` plugin over `null` on this machine)."""

from __future__ import annotations

import errno
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from appliance.hw.board_loader import load_board
from appliance.hw.board_spec import AudioSpec
from appliance.hw.pcm import (
    FRAME_SAMPLES,
    AlsaHandle,
    AlsaModule,
    AlsaPcm,
    Frame,
    GainPcm,
    MemoryPcm,
    Pcm,
    PcmError,
    StereoSplit,
    install_alsa_config,
    port_pcms,
    silence,
)

BOARDS = Path(__file__).resolve().parents[3] / "board"


def ramp(start: int, channels: int = 1) -> Frame:
    return np.arange(start, start + FRAME_SAMPLES * channels, dtype=np.int16)


# -- MemoryPcm --------------------------------------------------------------------------


def test_memory_pcm_plays_and_captures() -> None:
    pcm = MemoryPcm()
    pcm.open()
    assert pcm.write_frame(ramp(0))
    assert pcm.write_frame(ramp(1000))
    assert np.array_equal(pcm.played(), np.concatenate([ramp(0), ramp(1000)]))
    assert pcm.read_frame() is None  # the line has said nothing yet
    pcm.inject(ramp(7)[:100])
    assert pcm.read_frame() is None  # not a whole frame
    pcm.inject(ramp(7)[100:])
    captured = pcm.read_frame()
    assert captured is not None and np.array_equal(captured, ramp(7))
    assert (pcm.counters.frames_read, pcm.counters.frames_written) == (1, 2)


def test_memory_pcm_overrun_keeps_the_newest() -> None:
    pcm = MemoryPcm(capture_frames=2)
    pcm.open()
    for start in (0, 1000, 2000):
        pcm.inject(ramp(start))
    assert pcm.counters.overruns == 1
    first = pcm.read_frame()
    assert first is not None and np.array_equal(first, ramp(1000))


def test_memory_pcm_refuses_when_closed_and_wrong_frames() -> None:
    pcm = MemoryPcm()
    with pytest.raises(PcmError):
        pcm.read_frame()
    pcm.open()
    with pytest.raises(ValueError, match="160 int16 samples"):
        pcm.write_frame(np.zeros(80, dtype=np.int16))
    with pytest.raises(ValueError):
        pcm.write_frame(np.zeros(160, dtype=np.float32))


# -- StereoSplit ------------------------------------------------------------------------


def _split() -> tuple[MemoryPcm, StereoSplit, Pcm, Pcm]:
    card = MemoryPcm(channels=2)
    split = StereoSplit(card)
    left, right = split.port(0), split.port(1)
    left.open()
    right.open()
    return card, split, left, right


def test_stereo_split_deinterleaves_capture() -> None:
    card, _, left, right = _split()
    stereo = np.empty(2 * FRAME_SAMPLES, dtype=np.int16)
    stereo[0::2] = ramp(0)
    stereo[1::2] = ramp(5000)
    card.inject(stereo)
    got_right = right.read_frame()  # either side may read first
    got_left = left.read_frame()
    assert got_left is not None and np.array_equal(got_left, ramp(0))
    assert got_right is not None and np.array_equal(got_right, ramp(5000))
    assert left.read_frame() is None and right.read_frame() is None


def test_stereo_split_interleaves_playback() -> None:
    card, _, left, right = _split()
    left.write_frame(ramp(0))
    assert card.played().size == 0  # waits for the other channel
    right.write_frame(ramp(5000))
    played = card.played()
    assert np.array_equal(played[0::2], ramp(0))
    assert np.array_equal(played[1::2], ramp(5000))
    assert (left.counters.frames_written, right.counters.frames_written) == (1, 1)


def test_a_lone_port_is_padded_with_silence() -> None:
    card, _, left, _ = _split()
    for start in (0, 1000, 2000):
        left.write_frame(ramp(start))
    played = card.played()
    assert played.size == 2 * 2 * FRAME_SAMPLES  # one frame held back, no more
    assert np.array_equal(played[0::2], np.concatenate([ramp(0), ramp(1000)]))
    assert not played[1::2].any()
    left.close()  # closing flushes what was held back
    assert np.array_equal(card.played()[0::2][-FRAME_SAMPLES:], ramp(2000))


def test_a_port_that_stops_reading_loses_its_oldest_frames() -> None:
    card, _, left, right = _split()
    for start in range(6):
        card.inject(np.full(2 * FRAME_SAMPLES, start, dtype=np.int16))
        assert left.read_frame() is not None
    assert right.counters.overruns == 2  # a 4-frame queue, 6 frames offered
    kept = right.read_frame()
    assert kept is not None and kept[0] == 2


def test_the_card_opens_with_the_first_port_and_closes_with_the_last() -> None:
    card = MemoryPcm(channels=2)
    split = StereoSplit(card)
    split.port(0).open()
    split.port(1).open()
    assert card.is_open
    split.port(0).close()
    assert card.is_open
    split.port(1).close()
    assert not card.is_open
    with pytest.raises(ValueError, match="2-channel"):
        StereoSplit(MemoryPcm(channels=1))


# -- gains and a board's wiring -----------------------------------------------------------


def test_gain_pcm_scales_and_saturates() -> None:
    inner = MemoryPcm()
    pcm = GainPcm(inner, AudioSpec("x", 1, 0, gain_to_line_db=6.0, gain_from_line_db=-6.0))
    pcm.open()
    frame = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    frame[0] = 30000
    pcm.write_frame(frame)
    assert inner.played()[1] == 1995  # +6.02 dB is x1.995
    assert inner.played()[0] == 32767
    inner.inject(np.full(FRAME_SAMPLES, 1000, dtype=np.int16))
    captured = pcm.read_frame()
    assert captured is not None and captured[0] == 501


def test_port_pcms_shares_one_pcm_per_card() -> None:
    made: list[tuple[str, MemoryPcm]] = []

    def make(device: str, channels: int) -> Pcm:
        pcm = MemoryPcm(channels)
        made.append((device, pcm))
        return pcm

    pcms = port_pcms(load_board("sim", BOARDS), Path("/run/x"), make)
    assert [device for device, _ in made] == [
        "yakyak_sim:OUT='/run/x/codec0.out',IN='/run/x/codec0.in'",
        "yakyak_sim:OUT='/run/x/fxo3.out',IN='/run/x/fxo3.in'",
    ]
    assert sorted(pcms) == [1, 2, 3]
    assert pcms[3] is made[1][1]
    pcms[1].open()
    pcms[2].open()
    pcms[2].write_frame(ramp(0))
    pcms[1].write_frame(ramp(100))
    assert np.array_equal(made[0][1].played()[0::2], ramp(100))
    rpi = port_pcms(load_board("rpi4", BOARDS), Path("/run/x"), make)
    assert isinstance(rpi[3], GainPcm)  # gain_from_line_db = 3 on its FXO port


# -- AlsaPcm against a scripted pyalsaaudio ------------------------------------------------


class FakeAlsaError(Exception):
    pass


@dataclass
class FakeHandle:
    kind: int
    info_: dict[str, object]
    reads: list[tuple[int, bytes]] = field(default_factory=list)
    write_results: list[int] = field(default_factory=list)
    written: list[bytes] = field(default_factory=list)
    closed: bool = False

    def read(self) -> tuple[int, bytes]:
        return self.reads.pop(0) if self.reads else (0, b"")

    def write(self, data: bytes) -> int:
        result = self.write_results.pop(0) if self.write_results else len(data) // 2
        if result > 0:
            self.written.append(data[: result * 2])
        return result

    def info(self) -> dict[str, object]:
        return self.info_

    def close(self) -> None:
        self.closed = True


class FakeAlsa:
    PCM_PLAYBACK = 0
    PCM_CAPTURE = 1
    PCM_NONBLOCK = 1
    PCM_FORMAT_S16_LE = 2
    ALSAAudioError: type[Exception] = FakeAlsaError

    def __init__(self, rate: int = 8000, fail: str = "") -> None:
        self.handles: list[FakeHandle] = []
        self.rate = rate
        self.fail = fail

    def PCM(  # noqa: N802 - pyalsaaudio's name
        self,
        type: int,
        mode: int,
        rate: int,
        channels: int,
        format: int,
        periodsize: int,
        periods: int,
        device: str,
    ) -> AlsaHandle:
        assert (mode, rate, format, periodsize) == (1, 8000, 2, 160)
        if self.fail:
            raise FakeAlsaError(self.fail)
        info: dict[str, object] = {"rate": self.rate, "channels": channels, "period_size": 160}
        handle = FakeHandle(type, info)
        self.handles.append(handle)
        return handle


def _fake(alsa: FakeAlsa) -> AlsaModule:
    return alsa


def test_alsa_pcm_prefills_and_recovers_from_an_underrun() -> None:
    alsa = FakeAlsa()
    pcm = AlsaPcm("hw:CARD=x", alsa=lambda: _fake(alsa))
    pcm.open()
    playback = alsa.handles[0]
    assert playback.written == [bytes(2 * 2 * FRAME_SAMPLES)]  # 40 ms of silence first
    playback.write_results = [-errno.EPIPE]  # underrun; pyalsaaudio re-prepared
    assert pcm.write_frame(ramp(0))
    assert pcm.counters.underruns == 1
    # Recovery: prefill again, then the frame itself.
    assert playback.written[1:] == [bytes(2 * 2 * FRAME_SAMPLES), ramp(0).tobytes()]


def test_alsa_pcm_keeps_at_most_one_frame_when_the_device_is_full() -> None:
    alsa = FakeAlsa()
    pcm = AlsaPcm("hw:CARD=x", alsa=lambda: _fake(alsa), prefill_frames=0)
    pcm.open()
    playback = alsa.handles[0]
    playback.write_results = [0, 0, 80]  # -EAGAIN twice, then room for half a frame
    assert pcm.write_frame(ramp(0))  # held back, not lost
    assert not pcm.write_frame(ramp(1000))  # two waiting: the older is dropped
    assert pcm.counters.dropped == 1
    # Half of 1000's frame fits; with 2000's that still leaves more than a frame
    # waiting, so the rest of 1000's goes: the backlog never passes one frame.
    assert not pcm.write_frame(ramp(2000))
    assert pcm.counters.dropped == 2
    assert playback.written == [ramp(1000).tobytes()[:160]]
    assert pcm.write_frame(ramp(3000))  # room again: the held frame, then this one
    assert playback.written[1:] == [ramp(2000).tobytes() + ramp(3000).tobytes()]
    assert pcm.counters.frames_written == 4


def test_alsa_pcm_reads_whole_frames_and_counts_overruns() -> None:
    alsa = FakeAlsa()
    pcm = AlsaPcm("hw:CARD=x", alsa=lambda: _fake(alsa))
    pcm.open()
    capture = alsa.handles[1]
    data = ramp(0).tobytes()
    capture.reads = [(100, data[:200]), (-errno.EPIPE, b""), (100, data[:200]), (60, data[200:])]
    assert pcm.read_frame() is None  # partial
    assert pcm.read_frame() is None  # overrun: the partial is gone too
    assert pcm.counters.overruns == 1
    assert pcm.read_frame() is None
    frame = pcm.read_frame()
    assert frame is not None and np.array_equal(frame, ramp(0))
    assert pcm.read_frame() is None  # -EAGAIN


def test_alsa_pcm_open_errors_are_clear() -> None:
    broken = FakeAlsa(fail="No such device")
    with pytest.raises(PcmError, match=r"hw:CARD=x: cannot open for playback: No such device"):
        AlsaPcm("hw:CARD=x", alsa=lambda: _fake(broken)).open()
    wrong_rate = FakeAlsa(rate=48000)
    with pytest.raises(PcmError, match="runs at 48000 Hz .* use a plughw: device"):
        AlsaPcm("hw:CARD=x", alsa=lambda: _fake(wrong_rate)).open()
    assert all(h.closed for h in wrong_rate.handles)
    with pytest.raises(PcmError, match="not open"):
        AlsaPcm("hw:CARD=x", alsa=lambda: _fake(FakeAlsa())).read_frame()


# -- AlsaPcm through the real ALSA file plugin -------------------------------------------


def _need_alsaaudio() -> None:
    try:
        importlib.import_module("alsaaudio")
    except ImportError as exc:
        pytest.skip(f"pyalsaaudio is not importable ({exc}): pip install 'pyalsaaudio>=0.11'")


@pytest.fixture
def sim_alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sim board's ALSA configuration in place, as serve would do."""
    _need_alsaaudio()
    text = load_board("sim", BOARDS).alsa_config
    monkeypatch.setenv("ALSA_CONFIG_PATH", install_alsa_config(text, tmp_path))
    return tmp_path


def test_playback_through_the_predefined_file_pcm(tmp_path: Path) -> None:
    _need_alsaaudio()
    out = tmp_path / "out.raw"
    pcm = AlsaPcm(f"file:'{out}',raw", prefill_frames=0)
    pcm.open()
    for start in (0, 1000, 2000):
        assert pcm.write_frame(ramp(start))
    pcm.close()
    written = np.fromfile(out, dtype="<i2")
    assert np.array_equal(written, np.concatenate([ramp(0), ramp(1000), ramp(2000)]))


def test_capture_from_an_infile(sim_alsa: Path) -> None:
    infile = sim_alsa / "line.in"
    np.concatenate([ramp(0), ramp(1000), ramp(2000)]).astype("<i2").tofile(infile)
    pcm = AlsaPcm(f"yakyak_sim:IN='{infile}'")
    pcm.open()
    frames = [pcm.read_frame() for _ in range(3)]
    pcm.close()
    for frame, start in zip(frames, (0, 1000, 2000), strict=True):
        assert frame is not None and np.array_equal(frame, ramp(start))
    assert pcm.counters.frames_read == 3


def test_sim_board_ports_through_alsa(sim_alsa: Path) -> None:
    run = sim_alsa
    stereo = np.empty(4 * FRAME_SAMPLES, dtype="<i2")
    stereo[0::2] = np.concatenate([ramp(0), ramp(1000)])
    stereo[1::2] = np.concatenate([ramp(5000), ramp(6000)])
    stereo.tofile(run / "codec0.in")
    ramp(9000).astype("<i2").tofile(run / "fxo3.in")
    pcms = port_pcms(load_board("sim", BOARDS), run)
    for pcm in pcms.values():
        pcm.open()
    captured = {n: pcm.read_frame() for n, pcm in pcms.items()}
    for number, start in ((1, 0), (2, 5000), (3, 9000)):
        frame = captured[number]
        assert frame is not None and np.array_equal(frame, ramp(start))
    pcms[1].write_frame(ramp(100))
    pcms[2].write_frame(ramp(200))
    pcms[3].write_frame(ramp(300))
    for pcm in pcms.values():
        pcm.close()
    codec = np.fromfile(run / "codec0.out", dtype="<i2")
    prefill = 2 * FRAME_SAMPLES  # AlsaPcm's 40 ms of silence per channel at open
    assert not codec[: 2 * prefill].any()
    assert np.array_equal(codec[2 * prefill :][0::2], ramp(100))
    assert np.array_equal(codec[2 * prefill :][1::2], ramp(200))
    fxo = np.fromfile(run / "fxo3.out", dtype="<i2")
    assert np.array_equal(fxo, np.concatenate([silence(), silence(), ramp(300)]))


def test_a_missing_card_is_a_clear_error() -> None:
    _need_alsaaudio()
    with pytest.raises(PcmError, match=r"hw:CARD=yaknosuchcard,DEV=0: cannot open for playback"):
        AlsaPcm("hw:CARD=yaknosuchcard,DEV=0").open()
