"""The B2BUA hosting call applications: voicemail diversion, barge-in, transfers from
an application, music on hold (sans-IO, with the recording media of test_b2bua)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_b2bua import ALICE, BOB1, OFFER, Rig, sdp_answer  # noqa: E402

from appliance.pbx.app_events import (  # noqa: E402
    AppAction,
    AppEvent,
    CallApp,
    CallerHungUp,
    DepositReason,
    DigitPressed,
    LoadMailbox,
    Play,
    PlaybackDone,
    Record,
    RecordEnd,
    StartVoicemail,
    Transfer,
    TransferFailed,
)
from appliance.pbx.call_apps import AppRequest, AppTarget, SaveRecording  # noqa: E402
from appliance.pbx.dialplan import Dialplan  # noqa: E402
from appliance.pbx.media_port import PlaybackFinished, RecordedAudio, RecordingStopped  # noqa: E402
from appliance.sip.message import Response  # noqa: E402

ATTENDANT = Dialplan.from_dicts(
    [{"name": "menu", "pattern": "500", "target": {"type": "ivr", "menu": "main"}}]
)


@dataclass
class ScriptApp:
    """Plays a prompt, then does what each digit names; records what it was told."""

    target: AppTarget
    events: list[AppEvent] = field(default_factory=list)
    done: bool = False

    @property
    def finished(self) -> bool:
        return self.done

    def start(self, now: float) -> list[AppAction]:
        return [LoadMailbox("102"), Play(("beep",))]

    def handle(self, event: AppEvent, now: float) -> list[AppAction]:
        self.events.append(event)
        if isinstance(event, CallerHungUp):
            self.done = True
        if isinstance(event, DigitPressed):
            if event.digit == "1":
                return [Transfer("102")]
            if event.digit == "2":
                return [Record(60.0)]
        return []


@dataclass
class Apps:
    mailboxes: set[str] = field(default_factory=lambda: {"102"})
    made: list[ScriptApp] = field(default_factory=list)
    trusted: list[bool] = field(default_factory=list)

    def has_mailbox(self, extension: str) -> bool:
        return extension in self.mailboxes

    def create(
        self,
        target: AppTarget,
        caller: str,
        caller_name: str | None,
        wall: float,
        *,
        trusted: bool = True,
    ) -> CallApp | None:
        self.trusted.append(trusted)
        app = ScriptApp(target)
        self.made.append(app)
        return app

    def music_class(self, extension: str) -> str | None:
        return "default"


def test_a_call_to_an_extension_without_phones_goes_to_its_mailbox() -> None:
    apps = Apps()
    rig = Rig(contacts=(), apps=apps)
    rig.invite()
    statuses = [r.status for r in rig.responses(ALICE)]
    assert statuses[-1] == 200  # answered by the appliance
    (app,) = apps.made
    assert app.target == StartVoicemail("102", DepositReason.UNAVAILABLE)
    assert ("1a", ("beep",), False) in rig.media.played
    assert any(isinstance(a, AppRequest) and a.action == LoadMailbox("102") for a in rig.out)


def test_an_unanswered_call_is_diverted_after_the_timeout_and_the_phone_cancelled() -> None:
    apps = Apps()
    rig = Rig(apps=apps, no_answer_timeout=5.0)
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 180, "b1")
    rig.take(BOB1)
    rig.advance(6.0)
    assert rig.requests(BOB1, "CANCEL")
    assert [r.status for r in rig.responses(ALICE)][-1] == 200
    assert apps.made[0].target == StartVoicemail("102", DepositReason.NO_ANSWER)


def test_busy_goes_to_the_busy_greeting() -> None:
    apps = Apps()
    rig = Rig(apps=apps)
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.respond_to(BOB1, b_invite, 486)
    assert apps.made[0].target == StartVoicemail("102", DepositReason.BUSY)


def test_a_digit_barges_in_and_a_hang_up_while_recording_hands_over_the_audio() -> None:
    apps = Apps()
    rig = Rig(contacts=(), apps=apps)
    rig.invite()
    ok = [r for r in rig.responses(ALICE) if r.status == 200][0]
    rig.ack(ok)
    app = apps.made[0]
    rig.info_digit(ok, "2")  # while the beep plays
    assert app.events == [PlaybackDone(True), DigitPressed("2")]
    assert "1a" in rig.media.recording
    rig.media_event(PlaybackFinished("1a", 1))  # a late report of the stopped queue
    assert app.events == [PlaybackDone(True), DigitPressed("2")]
    rig.out.clear()
    rig.in_dialog(ALICE, ok, "BYE", 5)
    saved = [a for a in rig.out if isinstance(a, SaveRecording)]
    assert len(saved) == 1 and saved[0].audio.end is RecordEnd.HANG_UP
    assert isinstance(app.events[-1], CallerHungUp) and app.finished
    assert rig.finished  # the CDR


def test_a_transfer_rings_the_extension_and_bridges_when_it_answers() -> None:
    apps = Apps()
    rig = Rig(apps=apps, dialplan=ATTENDANT)
    ok = rig.call_attendant()
    rig.info_digit(ok, "1")
    assert rig.media.tones.get("1a") == "ringback"
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host))
    assert ("1a", "1b") in rig.media.bridges
    assert rig.calls._calls[1].app is None


def test_a_transfer_to_a_busy_phone_returns_to_the_application() -> None:
    apps = Apps()
    rig = Rig(apps=apps, dialplan=ATTENDANT)
    ok = rig.call_attendant()
    rig.info_digit(ok, "1")
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.respond_to(BOB1, b_invite, 486)
    assert apps.made[-1].events[-1] == TransferFailed("102", busy=True)
    assert rig.media.tones.get("1a") is None


def test_hold_plays_music_to_the_other_phone_until_resume() -> None:
    apps = Apps()
    rig = Rig(apps=apps)
    _, ok, _ = rig.connect()
    hold = OFFER.replace("o=alice 1 1", "o=alice 1 2").replace("a=sendrecv", "a=sendonly")
    rig.in_dialog(ALICE, ok, "INVITE", 3, hold)
    assert ("1b", ("moh:default",), True) in rig.media.played
    assert rig.media.playing.get("1b")
    resume = OFFER.replace("o=alice 1 1", "o=alice 1 3")
    rig.in_dialog(ALICE, ok, "INVITE", 4, resume)
    assert not rig.media.playing.get("1b")


@dataclass
class ReplayApp(ScriptApp):
    """Plays "beep" again on every digit."""

    def handle(self, event: AppEvent, now: float) -> list[AppAction]:
        self.events.append(event)
        if isinstance(event, DigitPressed):
            return [Play(("vm-intro",))]
        return []


def test_a_queue_that_ran_out_as_a_digit_came_is_not_taken_for_the_next_one() -> None:
    apps = Apps()
    rig = Rig(contacts=(), apps=apps)
    made: list[ScriptApp] = []

    def create(
        target: AppTarget,
        caller: str,
        caller_name: str | None,
        wall: float,
        *,
        trusted: bool = True,
    ) -> CallApp | None:
        app = ReplayApp(target)
        made.append(app)
        return app

    apps.create = create  # type: ignore[method-assign]
    rig.invite()
    ok = [r for r in rig.responses(ALICE) if r.status == 200][0]
    rig.ack(ok)
    app = made[0]
    first = rig.media.queues
    rig.info_digit(ok, "5")  # the engine's "queue ran out" for `first` is on its way
    assert app.events == [PlaybackDone(True), DigitPressed("5")]
    rig.media_event(PlaybackFinished("1a", first))  # stale: the app is playing anew
    assert app.events == [PlaybackDone(True), DigitPressed("5")]
    rig.media_event(PlaybackFinished("1a", rig.media.queues))
    assert app.events[-1] == PlaybackDone(False)


def recording_call() -> tuple[Rig, Response, ScriptApp]:
    apps = Apps()
    rig = Rig(contacts=(), apps=apps)
    rig.invite()
    ok = [r for r in rig.responses(ALICE) if r.status == 200][0]
    rig.ack(ok)
    rig.info_digit(ok, "2")  # the app starts recording
    assert "1a" in rig.media.recording
    return rig, ok, apps.made[0]


def test_a_recording_the_engine_ended_as_the_caller_hung_up_is_still_kept() -> None:
    rig, ok, app = recording_call()
    del rig.media.recording["1a"]  # the engine ended it (silence); its event is queued
    rig.out.clear()
    rig.in_dialog(ALICE, ok, "BYE", 5)
    assert not [a for a in rig.out if isinstance(a, SaveRecording)]
    assert rig.calls.apps_pending == 1  # the application waits for its recording
    audio = RecordedAudio(b"\0\0" * 16000, RecordEnd.SILENCE)
    rig.media_event(RecordingStopped("1a", audio))
    (saved,) = [a for a in rig.out if isinstance(a, SaveRecording)]
    assert saved.call == 1 and saved.audio is audio


def test_a_stop_digit_racing_the_engine_s_own_end_loses_nothing() -> None:
    rig, ok, app = recording_call()
    del rig.media.recording["1a"]
    rig.out.clear()
    rig.info_digit(ok, "#", cseq=4)
    assert not [a for a in rig.out if isinstance(a, SaveRecording)]
    audio = RecordedAudio(b"\0\0" * 16000, RecordEnd.MAX_LENGTH)
    rig.media_event(RecordingStopped("1a", audio))
    assert [a.audio for a in rig.out if isinstance(a, SaveRecording)] == [audio]


def test_a_diversion_after_early_media_unbridges_the_callee() -> None:
    apps = Apps()
    rig = Rig(apps=apps, no_answer_timeout=5.0)
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 183, "b1", sdp_answer(BOB1.host))
    assert ("1a", "1b") in rig.media.bridges
    rig.advance(6.0)
    assert rig.media.unbridged == ["1a"]


def test_a_fork_given_up_before_it_rang_is_cancelled_when_it_rings() -> None:
    apps = Apps()
    rig = Rig(apps=apps, dialplan=ATTENDANT, no_answer_timeout=5.0)
    ok = rig.call_attendant()
    rig.info_digit(ok, "1")
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.take(BOB1)
    rig.advance(6.0)  # no answer, not even a 100: the transfer fails, no CANCEL yet
    assert not rig.requests(BOB1, "CANCEL")
    rig.info_digit(ok, "1", cseq=4)  # try again: a new INVITE
    rig.take(BOB1)
    rig.answer(BOB1, b_invite, 180, "b1")  # the first one rings after all
    assert rig.requests(BOB1, "CANCEL")
