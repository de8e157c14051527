"""One analog port's RTP stream: frames to G.711 packets and back, aimed at one far end.

Sans-IO: every test drives ``outgoing``/``incoming``/``playout`` by hand, tick by tick.
"""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from appliance.dsp.g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw
from appliance.hw.jitter_buffer import JitterConfig
from appliance.hw.port_stream import FRAME_SAMPLES, PortStream
from appliance.lines.gateway import StreamTarget
from appliance.rtp.packet import RtpPacket, seq_add

Frame = npt.NDArray[np.int16]
FAR = ("192.0.2.10", 40000)
CODECS = [("PCMU", 0), ("PCMA", 8)]


def target(
    codec: str = "PCMU",
    pt: int = 0,
    host: str = FAR[0],
    port: int = FAR[1],
    send: bool = True,
) -> StreamTarget:
    return StreamTarget(host=host, port=port, codec=codec, payload_type=pt, send=send)


def tone(n: int, amplitude: float = 12000.0) -> Frame:
    """Frame n of a 400 Hz tone (different n, different samples)."""
    t = np.arange(n * FRAME_SAMPLES, (n + 1) * FRAME_SAMPLES) / 8000.0
    return np.rint(amplitude * np.sin(2 * np.pi * 400.0 * t)).astype(np.int16)


def const(value: int) -> Frame:
    return np.full(FRAME_SAMPLES, value, dtype=np.int16)


def encode(codec: str, frame: Frame) -> bytes:
    return encode_alaw(frame) if codec == "PCMA" else encode_ulaw(frame)


def decode(codec: str, payload: bytes) -> Frame:
    return decode_alaw(payload) if codec == "PCMA" else decode_ulaw(payload)


def within_g711_error(decoded: Frame, original: Frame) -> bool:
    """|error| at most half a segment step: under |x|/32 + a few LSBs; |x|/16 + 16 is safe."""
    x = original.astype(np.int64)
    err = np.abs(decoded.astype(np.int64) - x)
    return bool(np.all(err <= np.abs(x) // 16 + 16))


def send(stream: PortStream, frame: Frame) -> RtpPacket:
    data = stream.outgoing(frame)
    assert data is not None
    return RtpPacket.parse(data)


def rtp(codec: str, pt: int, seq: int, ts: int, frame: Frame, ssrc: int = 0x1234) -> bytes:
    return bytes(RtpPacket(pt, seq, ts, ssrc, encode(codec, frame)))


# --- no target -------------------------------------------------------------------------


def test_no_target_sends_and_plays_nothing() -> None:
    stream = PortStream(random.Random(1))
    assert stream.target is None
    assert stream.outgoing(tone(0)) is None
    assert stream.playout() is None
    stream.incoming(rtp("PCMU", 0, 1, 0, tone(0)), FAR)
    assert stream.counters.ignored == 1 and stream.counters.received == 0
    assert stream.counters.sent == 0


def test_aiming_at_none_stops_the_stream() -> None:
    stream = PortStream(random.Random(1))
    stream.aim(target())
    assert stream.outgoing(tone(0)) is not None
    stream.aim(None)
    assert stream.outgoing(tone(1)) is None
    assert stream.playout() is None
    assert stream.counters.sent == 1


# --- outgoing --------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "pt"), [*CODECS, ("PCMU", 96), ("PCMA", 101)])
def test_outgoing_packets_carry_the_frames(codec: str, pt: int) -> None:
    stream = PortStream(random.Random(7))
    stream.aim(target(codec, pt))
    packets = [send(stream, tone(n)) for n in range(6)]
    first = packets[0]
    for n, packet in enumerate(packets):
        assert packet.payload_type == pt
        assert len(packet.payload) == 160
        assert packet.ssrc == first.ssrc
        assert packet.sequence == seq_add(first.sequence, n)
        assert packet.timestamp == (first.timestamp + 160 * n) % (1 << 32)
        assert packet.marker is (n == 0)
        assert packet.payload == encode(codec, tone(n))
        assert within_g711_error(decode(codec, packet.payload), tone(n))
    assert stream.counters.sent == 6


@pytest.mark.parametrize(("codec", "pt"), CODECS)
def test_payload_is_g711_of_the_right_law(codec: str, pt: int) -> None:
    stream = PortStream(random.Random(3))
    stream.aim(target(codec, pt))
    frame = const(1000)
    payload = send(stream, frame).payload
    assert within_g711_error(decode(codec, payload), frame)
    # The other law would decode it to something else entirely.
    other = "PCMU" if codec == "PCMA" else "PCMA"
    assert not within_g711_error(decode(other, payload), frame)


def test_marker_only_on_first_packet_after_aim() -> None:
    stream = PortStream(random.Random(2))
    stream.aim(target())
    marks = [send(stream, tone(n)).marker for n in range(4)]
    assert marks == [True, False, False, False]


def test_reaim_at_another_far_end_changes_ssrc_and_marks_again() -> None:
    stream = PortStream(random.Random(2))
    stream.aim(target())
    first = [send(stream, tone(n)) for n in range(3)]
    stream.aim(target(host="192.0.2.99"))
    moved = send(stream, tone(3))
    assert moved.ssrc != first[0].ssrc
    assert moved.marker is True
    # Sequence and timestamp carry on (only the SSRC says it is a new stream).
    assert moved.sequence == seq_add(first[-1].sequence, 1)
    assert moved.timestamp == (first[-1].timestamp + 160) % (1 << 32)
    assert send(stream, tone(4)).marker is False
    stream.aim(target(host="192.0.2.99", port=40002))
    port_moved = send(stream, tone(5))
    assert port_moved.ssrc not in (first[0].ssrc, moved.ssrc)
    assert port_moved.marker is True


def test_reaim_at_the_same_far_end_keeps_the_stream() -> None:
    stream = PortStream(random.Random(2))
    stream.aim(target("PCMU", 0))
    before = [send(stream, tone(n)) for n in range(2)]
    stream.aim(target("PCMA", 8))  # re-offer: same host and port, other codec
    after = send(stream, tone(2))
    assert after.ssrc == before[0].ssrc
    assert after.marker is False
    assert after.payload_type == 8
    assert after.sequence == seq_add(before[-1].sequence, 1)
    assert after.timestamp == (before[-1].timestamp + 160) % (1 << 32)


def test_send_false_sends_nothing_but_time_runs_on() -> None:
    stream = PortStream(random.Random(4))
    stream.aim(target())
    first = send(stream, tone(0))
    stream.aim(target(send=False))  # the far end holds us
    for n in range(1, 6):
        assert stream.outgoing(tone(n)) is None
    assert stream.counters.sent == 1
    stream.aim(target(send=True))
    resumed = send(stream, tone(6))
    assert resumed.ssrc == first.ssrc
    assert resumed.sequence == seq_add(first.sequence, 1)  # no packets were skipped
    assert resumed.timestamp == (first.timestamp + 6 * 160) % (1 << 32)  # 5 silent frames
    assert stream.counters.sent == 2


# --- incoming --------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "pt"), CODECS)
def test_incoming_is_decoded_after_the_jitter_buffer_primes(codec: str, pt: int) -> None:
    stream = PortStream(random.Random(1))
    stream.aim(target(codec, pt))
    depth = JitterConfig().min_depth
    frames = [tone(n, 9000.0) for n in range(8)]
    out: list[Frame] = []
    for n, frame in enumerate(frames):
        stream.incoming(rtp(codec, pt, 100 + n, 5000 + 160 * n, frame), FAR)
        played = stream.playout()
        assert played is not None
        out.append(played)
    assert stream.counters.received == len(frames)
    assert stream.counters.ignored == 0
    silent = depth - 1  # one frame arrives per tick: playout starts once min_depth are held
    for played in out[:silent]:
        assert not played.any()
    for n, played in enumerate(out[silent:]):
        assert np.array_equal(played, decode(codec, encode(codec, frames[n])))
        assert within_g711_error(played, frames[n])


def test_priming_follows_the_configured_min_depth() -> None:
    stream = PortStream(random.Random(1), JitterConfig(min_depth=4, max_depth=6))
    stream.aim(target())
    out = []
    for n in range(8):
        stream.incoming(rtp("PCMU", 0, n, 160 * n, const(1000 + n)), FAR)
        played = stream.playout()
        assert played is not None
        out.append(int(played[0]))
    silent = 4 - 1
    assert out[:silent] == [0] * silent
    expected = [int(decode_ulaw(encode_ulaw(const(1000 + n)))[0]) for n in range(8 - silent)]
    assert out[silent:] == expected


def test_playout_is_silence_with_a_target_but_no_packets() -> None:
    stream = PortStream(random.Random(1))
    stream.aim(target())
    for _ in range(3):
        played = stream.playout()
        assert played is not None and played.shape == (160,) and not played.any()


@pytest.mark.parametrize(("codec", "pt"), CODECS)
def test_foreign_packets_are_ignored_and_counted(codec: str, pt: int) -> None:
    stream = PortStream(random.Random(1))
    stream.aim(target(codec, pt))
    loud = const(8000)
    other_pt = 8 if pt == 0 else 0
    bad = [
        (rtp(codec, pt, 1, 0, loud), ("192.0.2.11", FAR[1])),  # another host
        (rtp(codec, pt, 2, 160, loud), (FAR[0], FAR[1] + 2)),  # another port
        (rtp(codec, other_pt, 3, 320, loud), FAR),  # another payload type
        (rtp(codec, 101, 4, 480, loud), FAR),  # telephone-event or anything else
        (bytes(RtpPacket(pt, 5, 640, 1, encode(codec, loud)[:80])), FAR),  # 10 ms
        (bytes(RtpPacket(pt, 6, 800, 1, encode(codec, loud) * 2)), FAR),  # 40 ms
        (bytes(RtpPacket(pt, 7, 960, 1, b"")), FAR),  # empty payload
        (b"\x00" * 172, FAR),  # RTP version 0
        (b"garbage", FAR),  # shorter than a header
        (b"", FAR),
    ]
    for data, source in bad:
        stream.incoming(data, source)
    assert stream.counters.ignored == len(bad)
    assert stream.counters.received == 0
    for _ in range(6):
        played = stream.playout()
        assert played is not None and not played.any()  # none of it was played


def test_packets_from_the_old_far_end_are_ignored_after_reaim() -> None:
    stream = PortStream(random.Random(1))
    stream.aim(target())
    stream.incoming(rtp("PCMU", 0, 1, 0, const(5000)), FAR)
    assert stream.counters.received == 1
    new = ("192.0.2.20", 41000)
    stream.aim(target(host=new[0], port=new[1]))
    stream.incoming(rtp("PCMU", 0, 2, 160, const(5000)), FAR)
    assert stream.counters.ignored == 1
    # The old stream's queued frame was forgotten with the new far end.
    for _ in range(4):
        played = stream.playout()
        assert played is not None and not played.any()
    for n in range(3):
        stream.incoming(rtp("PCMU", 0, 10 + n, 9000 + 160 * n, const(-3000), ssrc=9), new)
    played = stream.playout()
    assert played is not None
    assert np.array_equal(played, decode_ulaw(encode_ulaw(const(-3000))))


def test_loopback_between_two_streams() -> None:
    a = PortStream(random.Random(10))
    b = PortStream(random.Random(11))
    a.aim(target("PCMA", 8, host="192.0.2.2", port=2000))
    b.aim(target("PCMA", 8, host="192.0.2.1", port=1000))
    sent = [tone(n) for n in range(6)]
    heard = []
    for frame in sent:
        data = a.outgoing(frame)
        assert data is not None
        b.incoming(data, ("192.0.2.1", 1000))  # a's address, where b is aimed
        played = b.playout()
        assert played is not None
        heard.append(played)
    assert b.counters.received == 6 and b.counters.ignored == 0
    for n, played in enumerate(heard[1:]):
        assert within_g711_error(played, sent[n])
