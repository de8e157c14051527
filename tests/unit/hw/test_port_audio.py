"""One analog port's audio: tones and caller ID out, DTMF and progress tones in."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from appliance.dsp.callerid import FskReceiver, FskStandard
from appliance.dsp.dtmf import dtmf_symbol
from appliance.dsp.tones import ToneGenerator, ToneKind, tone_for
from appliance.hw.port_audio import SILENCE, STUTTER_FRAMES, CidMode, PortAudio
from appliance.lines.port_actions import (
    BusyToneDetected,
    CallerIdReceived,
    DialToneDetected,
    DtmfDigit,
)


def frames(samples: np.ndarray) -> list[np.ndarray]:
    short = -len(samples) % 160
    padded = np.concatenate((samples, np.zeros(short, dtype=np.int16)))
    return [padded[i : i + 160] for i in range(0, len(padded), 160)]


def test_a_tone_plays_until_stopped_and_matches_the_country_table() -> None:
    audio = PortAudio("US")
    assert audio.tick(None, 0.0)[0] is None  # nothing of ours
    audio.play_tone("dial")
    expected = ToneGenerator(tone_for("US", ToneKind.DIAL))
    for _ in range(3):
        out, _ = audio.tick(None, 0.0)
        assert out is not None and np.array_equal(out, expected.next_frame())
    audio.stop_tone()
    assert audio.tick(None, 0.0)[0] is None
    with pytest.raises(ValueError, match="unknown tone"):
        audio.play_tone("howler")


def test_stutter_dial_tone_is_interrupted_for_a_second_then_steady() -> None:
    audio = PortAudio("US")
    audio.play_tone("stutter-dial")
    silent = [np.array_equal(audio.tick(None, 0.0)[0], SILENCE) for _ in range(STUTTER_FRAMES)]
    assert 20 <= sum(silent) <= 30  # about half of the first second
    assert not any(np.array_equal(audio.tick(None, 0.0)[0], SILENCE) for _ in range(20))


@pytest.mark.parametrize("mode", [CidMode.FSK_BELL, CidMode.FSK_V23])
def test_caller_id_sent_as_fsk_decodes_back(mode: str) -> None:
    audio = PortAudio("US", cid=mode)
    audio.send_caller_id("5551234", "ALICE", datetime(2026, 11, 25, 10, 30))
    standard = FskStandard.V23 if mode == CidMode.FSK_V23 else FskStandard.BELL202
    receiver = FskReceiver(standard)
    got = None
    for _ in range(200):
        out, _ = audio.tick(None, 0.0)
        if out is None:
            break
        got = receiver.feed(out) or got
    assert got is not None and (got.number, got.name) == ("5551234", "ALICE")


def test_dtmf_keyed_on_a_phone_is_detected() -> None:
    audio = PortAudio("US")
    audio.detect_dtmf(True)
    keyed = np.concatenate([dtmf_symbol(d, 8 * 80, 8 * 80) for d in "101"])
    found = []
    for i, frame in enumerate(frames(np.concatenate((keyed, np.zeros(1600, dtype=np.int16))))):
        _, heard = audio.tick(frame, i * 0.02)
        found += [x.digit for x in heard.inputs if isinstance(x, DtmfDigit)]
    assert found == ["1", "0", "1"]


def test_dtmf_we_dial_is_what_a_detector_hears() -> None:
    sender, listener = PortAudio("US"), PortAudio("US")
    listener.detect_dtmf(True)
    sender.send_dtmf("2#", 100, 100)
    found = []
    for i in range(30):
        out, _ = sender.tick(None, 0.0)
        _, heard = listener.tick(out if out is not None else SILENCE, i * 0.02)
        found += [x.digit for x in heard.inputs if isinstance(x, DtmfDigit)]
    assert found == ["2", "#"]


def test_progress_tones_on_an_exchange_line() -> None:
    exchange, line = PortAudio("US"), PortAudio("US")
    line.detect_progress(True)
    exchange.play_tone("dial")
    inputs = []
    for i in range(30):
        out, _ = exchange.tick(None, 0.0)
        inputs += list(line.tick(out, i * 0.02)[1].inputs)
    assert inputs == [DialToneDetected()]
    exchange.play_tone("busy")
    for i in range(100):  # 2 s of 0.5 s on / 0.5 s off
        out, _ = exchange.tick(None, 0.0)
        inputs += list(line.tick(out, i * 0.02)[1].inputs)
    assert BusyToneDetected() in inputs
    silent = PortAudio("US")
    silent.detect_progress(True)
    assert not any(silent.tick(SILENCE, 0.0)[1].inputs for _ in range(50))


def test_caller_id_heard_on_an_exchange_line() -> None:
    exchange, line = PortAudio("US"), PortAudio("US")
    line.listen_caller_id(True)
    exchange.send_caller_id("0301234", None, datetime(2026, 1, 2, 3, 4))
    inputs = []
    for i in range(200):
        out, _ = exchange.tick(None, 0.0)
        inputs += list(line.tick(out if out is not None else SILENCE, i * 0.02)[1].inputs)
    assert CallerIdReceived("0301234", None) in inputs


@pytest.mark.parametrize("country", ["US", "GB", "DE", "FR", "ES"])
def test_ringback_is_never_taken_for_busy_but_busy_is_found(country: str) -> None:
    exchange, line = PortAudio(country), PortAudio(country)
    line.detect_progress(True)
    exchange.play_tone("ringback")
    heard = []
    for i in range(500):  # 10 s of ringback
        out, _ = exchange.tick(None, 0.0)
        heard += list(line.tick(out, i * 0.02)[1].inputs)
    assert BusyToneDetected() not in heard
    exchange.play_tone("busy")
    for i in range(250):
        out, _ = exchange.tick(None, 0.0)
        heard += list(line.tick(out, i * 0.02)[1].inputs)
    assert BusyToneDetected() in heard


@pytest.mark.parametrize(
    ("number", "name"),
    [("alice", "Alice"), ("", None), ("+49 30 1234", "Zoë Ünal with a long name"), (None, "x")],
)
def test_caller_id_of_any_sip_caller_is_sent_not_raised(
    number: str | None, name: str | None
) -> None:
    for mode in (CidMode.FSK_BELL, CidMode.FSK_V23, CidMode.DTMF):
        audio = PortAudio("US", cid=mode)
        audio.send_caller_id(number, name, datetime(2026, 1, 1, 0, 0))
        assert audio.tick(None, 0.0)[0] is not None


def test_a_port_without_caller_id_sends_none_and_queued_audio_can_be_dropped() -> None:
    quiet = PortAudio("US", cid=None)
    quiet.send_caller_id("2001", "ALICE", datetime(2026, 1, 1))
    assert quiet.tick(None, 0.0)[0] is None
    audio = PortAudio("US")
    audio.send_caller_id("2001", "ALICE", datetime(2026, 1, 1))
    audio.cancel_queued()  # the phone was answered mid caller ID
    assert audio.tick(None, 0.0)[0] is None
    audio.send_dtmf("5", 100, 100)
    audio.play_tone("dial")  # a tone replaces digits not yet played
    out, _ = audio.tick(None, 0.0)
    expected = ToneGenerator(tone_for("US", ToneKind.DIAL)).next_frame()
    assert np.array_equal(out, expected)
