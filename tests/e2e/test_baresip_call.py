"""Calls between two baresip desk phones through the PBX: 101 calls 102 (RFC 3261 §13).

Both phones register with digest auth (RFC 3261 §10, §22), then 101 dials
`sip:102@127.0.0.1:PBXPORT`. The PBX is a B2BUA with anchored RTP, so everything below
also checks the relay: each phone must hear the other's tone (and not its own), DTMF
from 101 must reach 102 as RFC 4733 events, a hold/resume by 101 (RFC 3264 §8.4:
sendonly, then sendrecv) must leave media flowing both ways, and a BYE from either side
must end the call on the other.

baresip 1.0.0 cannot answer a 401 that also offers SHA-256 (see baresip_phone.py), so
both extensions are set to MD5-only challenges with `yakyak ext auth`, the per-phone
setting made for such phones, before the phones start.

Without call handling in the PBX these tests fail at the first step that needs it: 102
never sees CALL_INCOMING, and the failure shows 101's CALL_CLOSED reason and its log
with the SIP trace. Registration is checked on its own.

The harness and its baresip 1.0.0 facts are in baresip_phone.py; it is proven without a
PBX by test_baresip_direct.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from audio_check import TONE_A_HZ, TONE_B_HZ, check_wav, write_tone_wav
from baresip_phone import BaresipPhone, Phones, Registrar

if TYPE_CHECKING:
    from conftest import Extension, YakyakServer

pytestmark = pytest.mark.e2e

PASSWORDS = {"101": "e2e-baresip-101", "102": "e2e-baresip-102"}
SOURCE_SECONDS = 30.0  # aufile hangs up when its file ends: outlast every test
TALK_SECONDS = 2.0  # of each tone heard before the spectra are checked
HEARD_TIMEOUT = 6.0  # s, for TALK_SECONDS of audio to arrive
RING_TIMEOUT = 5.0  # s, from dial to CALL_INCOMING at the callee
RTP_AFTER_RESUME = 25  # packets (0.5 s at 20 ms) each way within RTP_TIMEOUT
RTP_TIMEOUT = 3.0
DTMF = "1470*#"
RELOADED = r"directory or lockouts changed: reloaded"
RELOAD_TIMEOUT = 5.0  # s: the server rereads the directory about every second


@pytest.fixture
def yakyak_extensions(extension_record: type[Extension]) -> tuple[Extension, ...]:
    return tuple(
        extension_record(number, password, name)
        for (number, password), name in zip(PASSWORDS.items(), ("Alice", "Bob"), strict=True)
    )


@dataclass(frozen=True, slots=True)
class Desk:
    """The two registered phones and where 101 dials 102."""

    alice: BaresipPhone  # 101, the caller, sends TONE_A_HZ
    bob: BaresipPhone  # 102, the callee, sends TONE_B_HZ
    bob_uri: str


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Phones]:
    with Phones(tmp_path / "phones") as started:
        yield started


@pytest.fixture
def desk(yakyak_server: YakyakServer, phones: Phones, tmp_path: Path) -> Desk:
    """101 and 102 started and registered (REGISTER_OK and `ext list` agree). The server
    comes first in the arguments so the phones stop (and un-register) before it does."""
    for number in PASSWORDS:  # one at a time: each reload line then covers its change
        mark = yakyak_server.log_mark()
        yakyak_server.cli("ext", "auth", number, "--algorithms", "MD5")
        reloaded = yakyak_server.wait_for_log(RELOADED, RELOAD_TIMEOUT, since=mark)
        assert reloaded, yakyak_server.log()[-4000:]

    def registrar(number: str) -> Registrar:
        return Registrar(yakyak_server.host, yakyak_server.port, PASSWORDS[number])

    alice = phones.registered(
        "101", write_tone_wav(tmp_path / "101.wav", TONE_A_HZ, SOURCE_SECONDS), registrar("101")
    )
    bob = phones.registered(
        "102", write_tone_wav(tmp_path / "102.wav", TONE_B_HZ, SOURCE_SECONDS), registrar("102")
    )
    alice.wait_registered()
    bob.wait_registered()
    contacts = yakyak_server.wait_for_contacts({"101": 1, "102": 1})
    assert contacts == {"101": 1, "102": 1}, yakyak_server.log()[-4000:]
    return Desk(alice, bob, f"sip:102@{yakyak_server.host}:{yakyak_server.port}")


def connect(desk: Desk) -> None:
    """101 dials 102, 102 answers, both see the call established."""
    desk.alice.dial(desk.bob_uri)
    desk.bob.wait_event("CALL_INCOMING", RING_TIMEOUT, unless=desk.alice.closed_reason)
    desk.bob.answer()
    desk.alice.wait_event("CALL_ESTABLISHED", unless=desk.bob.closed_reason)
    desk.bob.wait_event("CALL_ESTABLISHED", unless=desk.alice.closed_reason)


def assert_tones_cross(desk: Desk) -> None:
    """Each phone heard the other's tone, and not its own, for TALK_SECONDS."""
    desk.alice.wait_heard(TALK_SECONDS, HEARD_TIMEOUT)
    desk.bob.wait_heard(TALK_SECONDS, HEARD_TIMEOUT)
    at_alice = check_wav(desk.alice.heard(), TONE_B_HZ, absent_hz=[TONE_A_HZ])
    at_bob = check_wav(desk.bob.heard(), TONE_A_HZ, absent_hz=[TONE_B_HZ])
    assert at_alice.ok, f"101 heard: {at_alice.describe()}"
    assert at_bob.ok, f"102 heard: {at_bob.describe()}"


def test_both_phones_register(yakyak_server: YakyakServer, desk: Desk) -> None:
    """The part that works before calls do: REGISTER with digest auth from baresip."""
    assert desk.alice.events("REGISTER_OK")[0].account == f"sip:101@127.0.0.1:{yakyak_server.port}"
    assert desk.bob.events("REGISTER_OK")[0].account == f"sip:102@127.0.0.1:{yakyak_server.port}"
    assert not desk.alice.has_event("REGISTER_FAIL")
    assert not desk.bob.has_event("REGISTER_FAIL")


def test_call_carries_tones_and_dtmf_then_caller_hangs_up(desk: Desk) -> None:
    connect(desk)
    assert_tones_cross(desk)

    desk.alice.send_dtmf(DTMF)
    assert desk.bob.wait_dtmf(DTMF) == DTMF

    desk.alice.hangup()
    desk.bob.wait_event("CALL_CLOSED")
    desk.alice.wait_event("CALL_CLOSED")


def test_hold_and_resume_by_caller_then_media_flows_again(desk: Desk) -> None:
    connect(desk)
    assert_tones_cross(desk)  # before the re-INVITEs, which end baresip's recording

    desk.alice.hold()
    desk.alice.wait_event("CALL_REMOTE_SDP")  # the answer to 101's sendonly offer
    desk.bob.wait_event("CALL_REMOTE_SDP")  # 102 got that offer
    desk.alice.resume()
    desk.alice.wait_event("CALL_REMOTE_SDP")
    desk.bob.wait_event("CALL_REMOTE_SDP")

    at_alice, at_bob = desk.alice.rtp_received(), desk.bob.rtp_received()
    assert desk.alice.wait_rtp(at_alice + RTP_AFTER_RESUME, RTP_TIMEOUT) >= (
        at_alice + RTP_AFTER_RESUME
    ), "101 receives no RTP after resume"
    assert desk.bob.wait_rtp(at_bob + RTP_AFTER_RESUME, RTP_TIMEOUT) >= (
        at_bob + RTP_AFTER_RESUME
    ), "102 receives no RTP after resume"
    desk.alice.send_dtmf("5")
    desk.bob.send_dtmf("8")
    assert desk.bob.wait_dtmf("5") == "5"
    assert desk.alice.wait_dtmf("8") == "8"
    assert not desk.alice.has_event("CALL_CLOSED") and not desk.bob.has_event("CALL_CLOSED")

    desk.alice.hangup()
    desk.bob.wait_event("CALL_CLOSED")


def test_callee_hangs_up(desk: Desk) -> None:
    connect(desk)
    desk.bob.wait_heard(0.5, HEARD_TIMEOUT)  # media is up before the BYE

    desk.bob.hangup()

    desk.alice.wait_event("CALL_CLOSED")
    desk.bob.wait_event("CALL_CLOSED")
