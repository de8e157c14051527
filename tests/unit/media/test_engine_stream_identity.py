"""One outgoing RTP stream per leg, over real loopback UDP: once UdpMediaEngine has
generated media on a leg (ringback, DTMF) or bridged it to a second source, its phone
hears one SSRC with sequence numbers one apart and timestamps that never go back,
whatever it is relayed; a leg with neither gets packets exactly as they were sent.

baresip 1.0.0 keeps its jitter buffer across an SSRC change and dropped a whole call
as late when the callee's sequence numbers were below the ringback's. Assertions are
on RTP fields only; the fake phones' pacing is not measured."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Final

import numpy as np
import pytest
from media_harness import (
    HOST,
    LOOPS,
    Harness,
    drain,
    params,
    phone,
    recv,
    recv_packet,
    rtp,
    run,
)

from appliance.dsp.g711 import ALAW_ENCODE, ULAW_DECODE
from appliance.media.engine import EngineConfig
from appliance.rtp.dtmf_event import DtmfEventReceiver, KeyPress
from appliance.rtp.packet import RtpPacket, ts_diff
from appliance.rtp.rtcp import ReceiverReport, SenderReport, parse_compound

pytestmark = pytest.mark.timeout(30)

CALLEE: Final = 0x9999  # the answering phone's SSRC
FORK: Final = 0x7777  # a second phone's


async def until_heard(sock: socket.socket, sent: list[bytes]) -> list[RtpPacket]:
    """Everything ``sock`` receives up to and including the last payload of ``sent``."""
    last = sent[-1][12:]
    heard = [await recv_packet(sock)]
    while heard[-1].payload != last:
        heard.append(await recv_packet(sock))
    return heard


def assert_one_stream(packets: list[RtpPacket], ssrc: int) -> None:
    """One SSRC, and sequence numbers exactly one apart across everything."""
    assert {p.ssrc for p in packets} == {ssrc}
    first = packets[0].sequence
    assert [p.sequence for p in packets] == [(first + i) & 0xFFFF for i in range(len(packets))]


def talkspurts(first_seq: int, first_ts: int, ssrc: int) -> list[bytes]:
    """Six 20 ms frames with 200 ms of silence (not sent) after the third."""
    return [
        rtp(
            (first_seq + i) & 0xFFFF,
            ssrc=ssrc,
            ts=(first_ts + 160 * i + (1600 if i >= 3 else 0)) & 0xFFFFFFFF,
            marker=i == 3,
        )
        for i in range(6)
    ]


def assert_relayed_after(
    relayed: list[RtpPacket], sent: list[bytes], before: RtpPacket, payload_type: int = 0
) -> None:
    """``sent`` arrived in order as ``relayed``: payloads kept, a marker on the first
    (RFC 3551 §4.1) and the source's own markers, its timestamp spacing kept, and
    no timestamp before the end of the frame ``before``."""
    source = [RtpPacket.parse(data) for data in sent]
    assert [p.payload for p in relayed] == [p.payload for p in source]
    assert {p.payload_type for p in relayed} == {payload_type}
    assert relayed[0].marker
    assert [p.marker for p in relayed[1:]] == [p.marker for p in source[1:]]
    assert [ts_diff(p.timestamp, relayed[0].timestamp) for p in relayed] == [
        ts_diff(p.timestamp, source[0].timestamp) for p in source
    ]
    assert ts_diff(relayed[0].timestamp, before.timestamp) >= 160


@pytest.mark.parametrize("loop", LOOPS)
def test_ringback_then_answer_is_one_stream_to_the_caller(loop: str) -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa))
        h.engine.play_tone(a, "ringback")
        tone = [await recv_packet(pa) for _ in range(5)]
        h.engine.configure(b, params(pb))
        h.engine.bridge(a, b)
        # the callee's sequence numbers and timestamps far below the ringback's
        sent = talkspurts(tone[-1].sequence - 1000, tone[-1].timestamp - 80_000, CALLEE)
        for data in sent:
            pb.sendto(data, h.to(b))
        heard = tone + await until_heard(pa, sent)
        assert_one_stream(heard, tone[0].ssrc)
        relayed = heard[-len(sent) :]
        assert_relayed_after(relayed, sent, heard[-len(sent) - 1])
        assert not any(p.marker for p in heard[1 : -len(sent)])  # ringback: one talkspurt
        pa.sendto(rtp(1), h.to(a))  # the callee's phone still hears the caller's untouched
        assert (await recv(pb))[0] == rtp(1)
        await h.close()
        pa.close()
        pb.close()

    run(scenario, loop)


def test_digits_sent_into_a_relayed_stream_continue_it() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.configure(b, params(pb, event_pt=101))
        h.engine.bridge(a, b)
        talk = [rtp(100 + i, ssrc=CALLEE) for i in range(13)]
        for data in talk[:3]:
            pb.sendto(data, h.to(b))
            assert (await recv(pa))[0] == data  # nothing generated yet: untouched
        h.engine.send_dtmf(a, "5", 120)  # 5 updates and 3 end packets (RFC 4733 §2.5.1.4)

        async def keep_talking() -> None:
            for data in talk[3:]:
                pb.sendto(data, h.to(b))
                await asyncio.sleep(0.02)

        talking = asyncio.create_task(keep_talking())
        heard: list[RtpPacket] = []
        while sum(p.payload_type == 101 for p in heard) < 8 or heard[-1].payload != talk[-1][12:]:
            heard.append(await recv_packet(pa))
        await talking
        # the phone sees the stream it was hearing go on: its SSRC, the next numbers
        assert_one_stream([RtpPacket.parse(d) for d in talk[:3]] + heard, CALLEE)
        audio = [p for p in heard if p.payload_type == 0]
        assert [p.payload for p in audio] == [d[12:] for d in talk[3:]]
        assert [p.timestamp for p in audio] == [(100 + i) * 160 for i in range(3, 13)]
        events = [p for p in heard if p.payload_type == 101]
        receiver = DtmfEventReceiver()
        presses: list[KeyPress] = []
        for packet in events:
            presses += receiver.receive(packet, 0.0)
        assert [(p.digit, p.duration, p.end_seen) for p in presses] == [("5", 960, True)]
        assert events[0].timestamp >= 103 * 160  # not inside audio already sent
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


@pytest.mark.parametrize("ringback", [False, True])
def test_a_rebridged_leg_hears_one_stream_across_each_switch(ringback: bool) -> None:
    """Early media from one fork, then another answers (later: transfers)."""

    async def scenario() -> None:
        h = Harness()
        pa, pb, pc = phone(), phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        c = h.engine.open_leg("c", HOST)
        for leg, sock in ((a, pa), (b, pb), (c, pc)):
            h.engine.configure(leg, params(sock))
        heard: list[RtpPacket] = []
        if ringback:
            h.engine.play_tone(a, "ringback")
            heard += [await recv_packet(pa) for _ in range(3)]
        h.engine.bridge(a, b)
        first = talkspurts(5000, 50_000, CALLEE)
        for data in first:
            pb.sendto(data, h.to(b))
        heard += await until_heard(pa, first)
        if ringback:
            assert_relayed_after(heard[-len(first) :], first, heard[-len(first) - 1])
        else:
            assert [bytes(p) for p in heard] == first  # one source so far: untouched
        h.engine.bridge(a, c)  # B is left unbridged
        second = talkspurts(10, 7, FORK)  # lower numbers, other timestamps
        for data in second:
            pc.sendto(data, h.to(c))
        heard += await until_heard(pa, second)
        pa.sendto(rtp(1), h.to(a))  # C's phone has had one source only: untouched
        assert (await recv(pc))[0] == rtp(1)
        h.engine.bridge(a, b)  # and back again
        third = talkspurts(5006, 52_000, CALLEE)
        for data in third:
            pb.sendto(data, h.to(b))
        heard += await until_heard(pa, third)
        assert_one_stream(heard, heard[0].ssrc)
        if not ringback:
            assert heard[0].ssrc == CALLEE  # the stream A's phone heard first goes on
        n = len(second) + len(third)
        assert_relayed_after(heard[-n : -len(third)], second, heard[-n - 1])
        assert_relayed_after(heard[-len(third) :], third, heard[-len(third) - 1])
        await h.close()
        for sock in (pa, pb, pc):
            sock.close()

    run(scenario)


def test_a_leg_with_nothing_generated_gets_packets_byte_identical() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, event_pt=101))
        h.engine.configure(b, params(pb, event_pt=101))
        h.engine.bridge(a, b)
        csrc = struct.pack("!BBHII", 0x82, 0x80, 65535, 0xFFFFFFF0, 0xABCDEF01)
        extension = struct.pack("!BBHII", 0x90, 0x00, 0, 1, 0x42) + b"\xbe\xde\x00\x01abcd"
        padded = struct.pack("!BBHII", 0xA0, 0x00, 1, 161, 0x42) + bytes(160) + b"\x00\x00\x03"
        sent = [
            csrc + b"\x00\x00\x00\x01\x00\x00\x00\x02" + bytes(160),  # two CSRCs, marker
            extension + bytes(160),  # RFC 8285 one-byte header extension
            padded,
            bytes(RtpPacket(101, 2, 320, 0x42, b"\x05\x0a\x00\xa0", marker=True)),  # an event
            rtp(3, ssrc=0x42),
        ]
        for data in sent:
            pb.sendto(data, h.to(b))
            assert (await recv(pa))[0] == data
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_transcoding_and_rewriting_together_are_exact_against_the_g711_tables() -> None:
    async def scenario() -> None:
        h = Harness()
        pa, pb = phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, codec="PCMA"))
        h.engine.configure(b, params(pb, codec="PCMU"))
        h.engine.play_tone(a, "ringback")
        heard = [await recv_packet(pa) for _ in range(3)]
        h.engine.bridge(a, b)
        every = bytes(range(256))
        with_csrc = struct.pack("!BBHII", 0x81, 0x00, 3, 480, CALLEE) + b"\x01\x02\x03\x04"
        for data in (with_csrc + every, rtp(4, pt=0, payload=every, ssrc=CALLEE, ts=640)):
            pb.sendto(data, h.to(b))
        expected = ALAW_ENCODE[ULAW_DECODE[np.arange(256)].view(np.uint16)].tobytes()
        while [p.payload for p in heard[-2:]] != [expected, expected]:
            heard.append(await recv_packet(pa))
        assert_one_stream(heard, heard[0].ssrc)
        relayed = heard[-2:]
        assert [p.payload_type for p in relayed] == [8, 8] and relayed[0].marker
        assert relayed[0].csrcs == (0x01020304,)  # the CSRC list is kept
        assert ts_diff(relayed[1].timestamp, relayed[0].timestamp) == 160
        assert ts_diff(relayed[0].timestamp, heard[-3].timestamp) >= 160
        pa.sendto(rtp(7, pt=8, payload=every), h.to(a))  # B's phone: transcoded only
        data, _ = await recv(pb)
        assert data[1] == 0 and data[2:12] == rtp(7)[2:12]
        await h.close()
        pa.close()
        pb.close()

    run(scenario)


def test_our_sender_reports_replace_the_other_phones_on_a_rewritten_leg() -> None:
    async def scenario() -> None:
        h = Harness(config=EngineConfig(sr_interval=0.1))
        pa, pb, ca, cb = phone(), phone(), phone(), phone()
        a = h.engine.open_leg("a", HOST)
        b = h.engine.open_leg("b", HOST)
        h.engine.configure(a, params(pa, rtcp=ca))
        h.engine.configure(b, params(pb, rtcp=cb))
        h.engine.play_tone(a, "ringback")
        heard = [await recv_packet(pa)]
        h.engine.bridge(a, b)
        callee_sr = bytes(SenderReport(CALLEE, 1, 2, 3, 4, 5))
        cb.sendto(callee_sr, h.to_rtcp(b))  # about an SSRC A's phone never sees
        caller_rr = bytes(ReceiverReport(0x1234))
        ca.sendto(caller_rr, h.to_rtcp(a))
        assert (await recv(cb))[0] == caller_rr  # towards B, not rewritten: passed on
        sent = talkspurts(1, 0, CALLEE)
        for data in sent:
            pb.sendto(data, h.to(b))
        heard += await until_heard(pa, sent)
        assert drain(pa) == 0  # the tone stopped at the bridge: nothing more to count
        while True:  # SRs every 50 to 150 ms until one counts every packet
            data, _ = await recv(ca)
            sr = parse_compound(data)[0]
            assert isinstance(sr, SenderReport) and sr.ssrc == heard[0].ssrc  # ours only
            if sr.packet_count == len(heard):
                break
        assert sr.octet_count == 160 * len(heard)  # tone frames and relayed ones alike
        await h.close()
        for sock in (pa, pb, ca, cb):
            sock.close()

    run(scenario)
