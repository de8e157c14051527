"""The call applications' edge: applications for targets, clips for the engine, and the
worker's answers, on a real SQLite file and real WAV files."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import peewee
import pytest

from appliance.call_apps_edge import CallAppsEdge
from appliance.media.prompts import MusicOnHold, PromptLibrary
from appliance.media.wav import wav_bytes
from appliance.pbx.app_events import (
    AppEvent,
    CheckPin,
    DepositReason,
    LoadMailbox,
    MailboxLoaded,
    MessageStored,
    PinChecked,
    RecordEnd,
    Recording,
    RecordingDone,
    StartMailboxAccess,
    StartMenu,
    StartVoicemail,
    StoreMessage,
)
from appliance.pbx.call_apps import AppRequest, SaveRecording
from appliance.pbx.ivr.menu_app import MenuApp
from appliance.pbx.media_port import RecordedAudio
from appliance.pbx.voicemail.access import MailboxAccessApp
from appliance.pbx.voicemail.deposit import DepositApp
from appliance.store.extensions import Directory
from appliance.store.ivr import save_ivr

MENUS = {"menus": {"main": {"greeting": ["welcome"], "options": {"1": {"action": "hangup"}}}}}


def put_wav(path: Path, samples: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(samples))
    return path


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture
def edge(
    db: peewee.SqliteDatabase,
    directory: Directory,
    tmp_path: Path,
    loop: asyncio.AbstractEventLoop,
) -> Iterator[CallAppsEdge]:
    directory.add("2000", "password-2000")
    directory.add("2001", "password-2001")
    music = put_wav(tmp_path / "moh" / "a.wav", np.full(800, 300, dtype=np.int16))
    made = CallAppsEdge(
        loop,
        db,
        tmp_path / "data",
        PromptLibrary([tmp_path / "sounds"], custom=tmp_path / "data" / "prompts"),
        MusicOnHold(music.parent),
        lambda: {"2000", "2001"},
    )
    made.store.create_mailbox("2000", "1234")
    save_ivr(db, MENUS)
    made.load()
    yield made
    made.close()


def test_applications_for_targets(edge: CallAppsEdge) -> None:
    assert edge.has_mailbox("2000") and not edge.has_mailbox("2001")
    deposit = edge.create(StartVoicemail("2000", DepositReason.BUSY), "2001", "Alice", 0.0)
    assert isinstance(deposit, DepositApp) and deposit.reason is DepositReason.BUSY
    assert edge.create(StartVoicemail("2001"), "2000", None, 0.0) is None
    assert isinstance(edge.create(StartMailboxAccess("2000"), "2000", None, 0.0), MailboxAccessApp)
    assert isinstance(edge.create(StartMailboxAccess(None), "2001", None, 0.0), MailboxAccessApp)
    assert isinstance(edge.create(StartMenu("main"), "2001", None, 0.0), MenuApp)
    assert edge.create(StartMenu("nope"), "2001", None, 0.0) is None
    assert edge.music_class("2000") == "default"


def test_clips_for_recordings_music_and_custom_prompts(edge: CallAppsEdge, tmp_path: Path) -> None:
    message = put_wav(tmp_path / "m.wav", np.arange(160, dtype=np.int16))
    (clip,) = edge.clips(Recording(str(message)), "en")
    assert np.array_equal(clip, np.arange(160, dtype=np.int16))
    (music,) = edge.clips("moh:default", "en")
    assert len(music) == 800
    put_wav(tmp_path / "data" / "prompts" / "en" / "closed.wav", np.ones(80, dtype=np.int16))
    (custom,) = edge.clips("custom:closed", "fr")  # falls back to the default language
    assert len(custom) == 80
    with pytest.raises(LookupError):
        edge.clips("custom:../../etc", "en")


def test_a_recording_is_written_stored_and_counted(
    edge: CallAppsEdge, loop: asyncio.AbstractEventLoop
) -> None:
    counts: list[tuple[str, int, int]] = []
    edge.post_counts = lambda box, new, old: counts.append((box, new, old))
    pcm = (np.sin(np.arange(8000) / 4) * 5000).astype("<i2").tobytes()  # 1 s
    done = edge._do(SaveRecording(1, RecordedAudio(pcm, RecordEnd.DIGIT)))
    assert isinstance(done, RecordingDone) and done.seconds == 1.0
    with wave.open(done.recording.path, "rb") as f:
        assert (f.getframerate(), f.getnchannels(), f.getnframes()) == (8000, 1, 8000)
    stored = edge._do(AppRequest(1, StoreMessage("2000", done.recording, 1.0, "2001", "Alice")))
    assert isinstance(stored, MessageStored) and stored.message_id is not None
    loop.run_until_complete(asyncio.sleep(0))  # the count posted from the "worker"
    assert counts == [("2000", 1, 0)]
    loaded = edge._do(AppRequest(1, LoadMailbox("2000")))
    assert isinstance(loaded, MailboxLoaded) and loaded.view is not None
    assert [m.caller for m in loaded.view.messages] == ["2001"]
    assert edge._do(AppRequest(1, CheckPin("2000", "1234"))) == PinChecked("2000", True)
    assert edge._do(AppRequest(1, CheckPin("2000", "9999"))) == PinChecked("2000", False)


def test_work_that_fails_still_answers_the_application(
    edge: CallAppsEdge, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[tuple[int, AppEvent]] = []
    edge.post_event = lambda call, event: answers.append((call, event))

    def full_disk() -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edge.store, "new_recording_path", full_disk)
    edge._work(SaveRecording(7, RecordedAudio(b"\0\0" * 8000, RecordEnd.SILENCE)))
    edge._work(AppRequest(8, LoadMailbox("2000")))  # still served after the failure
    loop.run_until_complete(asyncio.sleep(0))
    assert answers[0] == (7, RecordingDone(Recording(""), 0.0, RecordEnd.SILENCE))
    assert answers[1][0] == 8 and isinstance(answers[1][1], MailboxLoaded)


def test_wrong_pins_lock_the_mailbox_for_a_while(edge: CallAppsEdge) -> None:
    for _ in range(6):
        assert edge._do(AppRequest(1, CheckPin("2000", "0000"))) == PinChecked("2000", False)
    # the right PIN is refused too, until the window has passed
    assert edge._do(AppRequest(1, CheckPin("2000", "1234"))) == PinChecked("2000", False)


def test_music_on_hold_takes_the_files_of_a_class_in_turn(
    edge: CallAppsEdge, tmp_path: Path
) -> None:
    put_wav(tmp_path / "moh" / "b.wav", np.full(400, 300, dtype=np.int16))
    lengths = [len(edge.clips("moh:default", "en")[0]) for _ in range(3)]
    assert lengths == [800, 400, 800]
