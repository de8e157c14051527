"""The baresip harness proven without a PBX: phone a calls phone b directly on 127.0.0.1.

This is the regression test of baresip_phone.py and audio_check.py themselves: if it
fails, a PBX call test's failure says nothing about the PBX. It checks what the PBX
tests rely on: tones cross (each phone hears the other's and not its own), RFC 4733
DTMF is reported by the receiver, hold/resume leaves RTP and DTMF flowing both ways
(baresip 1.0.0 stops its decode recording at a re-INVITE, see baresip_phone.py), and a
BYE from either side closes the call on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_check import TONE_A_HZ, TONE_B_HZ, check_wav, write_tone_wav
from baresip_phone import (
    BaresipPhone,
    Event,
    NetstringDecoder,
    NetstringError,
    Phones,
    encode_netstring,
    squeeze_repeats,
)

pytestmark = pytest.mark.e2e

SOURCE_SECONDS = 20.0  # aufile hangs up when its file ends: outlast every test
TALK_SECONDS = 2.0
HEARD_TIMEOUT = 5.0
DTMF = "1470*#"
RTP_AFTER_RESUME = 25  # packets, 0.5 s of 20 ms frames
RTP_TIMEOUT = 2.0


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[BaresipPhone, BaresipPhone]]:
    """Phones a (sends TONE_A_HZ) and b (sends TONE_B_HZ), unregistered, a calling b."""
    with Phones(tmp_path / "phones") as phones:
        a = phones.direct("a", write_tone_wav(tmp_path / "a.wav", TONE_A_HZ, SOURCE_SECONDS))
        b = phones.direct("b", write_tone_wav(tmp_path / "b.wav", TONE_B_HZ, SOURCE_SECONDS))
        a.dial(b.uri)
        b.wait_event("CALL_INCOMING", unless=a.closed_reason)
        b.answer()
        a.wait_event("CALL_ESTABLISHED", unless=b.closed_reason)
        b.wait_event("CALL_ESTABLISHED", unless=a.closed_reason)
        yield a, b


def test_tones_cross_dtmf_arrives_hold_resume_then_caller_hangs_up(
    pair: tuple[BaresipPhone, BaresipPhone],
) -> None:
    a, b = pair
    a.wait_heard(TALK_SECONDS, HEARD_TIMEOUT)
    b.wait_heard(TALK_SECONDS, HEARD_TIMEOUT)
    at_a = check_wav(a.heard(), TONE_B_HZ, absent_hz=[TONE_A_HZ])
    at_b = check_wav(b.heard(), TONE_A_HZ, absent_hz=[TONE_B_HZ])
    assert at_a.ok, f"a heard: {at_a.describe()}"
    assert at_b.ok, f"b heard: {at_b.describe()}"
    # The enc dumps are what each sent: the checker must tell the two apart.
    assert check_wav(a.sent(), TONE_A_HZ, absent_hz=[TONE_B_HZ]).ok
    assert not check_wav(a.sent(), TONE_B_HZ).ok

    a.send_dtmf(DTMF)
    assert b.wait_dtmf(DTMF) == DTMF
    assert a.received_dtmf() == ""

    a.hold()
    a.wait_event("CALL_REMOTE_SDP")  # b's recvonly answer
    b.wait_event("CALL_REMOTE_SDP")  # a's sendonly offer
    a.resume()
    a.wait_event("CALL_REMOTE_SDP")
    b.wait_event("CALL_REMOTE_SDP")
    at_a_count, at_b_count = a.rtp_received(), b.rtp_received()
    assert a.wait_rtp(at_a_count + RTP_AFTER_RESUME, RTP_TIMEOUT) >= at_a_count + RTP_AFTER_RESUME
    assert b.wait_rtp(at_b_count + RTP_AFTER_RESUME, RTP_TIMEOUT) >= at_b_count + RTP_AFTER_RESUME
    b.send_dtmf("9")
    assert a.wait_dtmf("9") == "9"

    a.hangup()

    b.wait_event("CALL_CLOSED")
    a.wait_event("CALL_CLOSED")


def test_callee_hangs_up(pair: tuple[BaresipPhone, BaresipPhone]) -> None:
    a, b = pair
    a.wait_heard(0.5, HEARD_TIMEOUT)  # media is up before the BYE

    b.hangup()

    a.wait_event("CALL_CLOSED")
    b.wait_event("CALL_CLOSED")
    assert len(a.events("CALL_CLOSED")) == len(b.events("CALL_CLOSED")) == 1


# --- the harness's own parsing, no processes ----------------------------------------------

EVENT = (
    b'{"event":true,"type":"CALL_DTMF_START","class":"call","accountaor":"sip:b@127.0.0.1",'
    b'"direction":"incoming","peeruri":"sip:a@127.0.0.1","id":"e77232ed9f3487f4","param":"1"}'
)
RESPONSE = b'{"response":true,"ok":true,"data":"","token":"a-1"}'


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000])
def test_netstrings_are_split_whatever_the_chunking(chunk: int) -> None:
    stream = encode_netstring(EVENT) + encode_netstring(b"") + encode_netstring(RESPONSE)
    decoder = NetstringDecoder()

    payloads = [
        p for i in range(0, len(stream), chunk) for p in decoder.feed(stream[i : i + chunk])
    ]

    assert payloads == [EVENT, b"", RESPONSE]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"12x:abc", "bad length prefix"),
        (b"03:abc,", "bad length prefix"),
        (b"3:abc;", "not closed by ','"),
        (b"99999999999:", "exceeds"),
        (b"abcdefghijklmnopqrstuvwxyz", "no length prefix"),
    ],
)
def test_broken_netstrings_raise(data: bytes, message: str) -> None:
    with pytest.raises(NetstringError, match=message):
        NetstringDecoder().feed(data)


def test_an_event_is_read_from_ctrl_tcp_json() -> None:
    event = Event.from_message(json.loads(EVENT))

    assert (event.type, event.category, event.param) == ("CALL_DTMF_START", "call", "1")
    assert (event.direction, event.call_id) == ("incoming", "e77232ed9f3487f4")
    assert (event.peer, event.account) == ("sip:a@127.0.0.1", "sip:b@127.0.0.1")
    assert str(event) == "CALL_DTMF_START('1')"


def test_runs_of_lines_differing_in_numbers_are_squeezed() -> None:
    dropped = [f"stream: audio: dropping 172 bytes [seq={n}]" for n in range(100, 110)]
    text = "\n".join(["start", *dropped, "end"]) + "\n"

    assert squeeze_repeats(text) == "\n".join(
        ["start", *dropped[:2], "[... 6 more like these ...]", *dropped[-2:], "end", ""]
    )
