"""Voicemail, message waiting and the auto-attendant with real baresip phones.

101 (Alice) sends a known noise signal in every call. 102 (Bob) has a mailbox with a
PIN; his phone loads baresip's mwi module, which SUBSCRIBEs to message-summary.

* A call to 102 while no phone of his is registered goes to his mailbox: greeting,
  beep, Alice talks, hangs up; the stored WAV must contain what Alice sent (found by
  cross-correlation against her source, after two G.711 passes).
* Bob's phone registers and subscribes: the first NOTIFY says one new message.
* Bob dials *97, enters his PIN by RFC 4733, presses 1 and hears the message (his
  recording correlates with Alice's source), presses 7: the message is deleted (row
  marked, file gone) and a NOTIFY says no messages.
* An auto-attendant call: Alice dials 500, presses 1, Bob's phone rings; he answers
  and each hears the other.
* A crash: the server is SIGKILLed while Alice is recording; after a restart the
  database and the folder agree and the earlier message still plays.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from audio_check import TONE_B_HZ, check_wav, read_wav, write_tone_wav, write_wav
from baresip_phone import BaresipPhone, Phones, Registrar
from sipp_peer import finished, free_udp_port, register, start_uas, stop_uas

if TYPE_CHECKING:
    from conftest import Extension, ServerFactory, SippRunner, YakyakServer

pytestmark = pytest.mark.e2e

PASSWORDS = {"101": "e2e-vm-101", "102": "e2e-vm-102"}
PIN = "4321"
SOURCE_SECONDS = 60.0
RELOADED = r"directory or lockouts changed: reloaded"
RECORDING = r"call \d+: recording"
TIMEOUT = 20.0
SPEAK_SECONDS = 4.0
MATCH = 0.8  # normalised cross-correlation peak: noise against unrelated audio is < 0.1
ATTENDANT = {
    "menus": {
        "main": {
            "greeting": ["welcome"],
            "timeout": 5,
            "retries": 3,
            "options": {"1": {"action": "transfer", "extension": "102"}},
        }
    },
    "schedules": {},
}


@pytest.fixture
def yakyak_extensions(extension_record: type[Extension]) -> tuple[Extension, ...]:
    return tuple(extension_record(n, p, None) for n, p in PASSWORDS.items())


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Phones]:
    with Phones(tmp_path / "phones") as started:
        yield started


def noise_source(path: Path, seconds: float = SOURCE_SECONDS) -> Path:
    """Band-limited noise (300-3000 Hz): a signal whose every stretch is unique, so
    where a recording sits in it is found by correlation."""
    rng = np.random.default_rng(1234)
    n = int(seconds * 8000)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / 8000)
    spectrum[(freqs < 300) | (freqs > 3000)] = 0
    signal_ = np.fft.irfft(spectrum, n)
    signal_ *= 8000 / np.max(np.abs(signal_))
    return write_wav(path, signal_.astype(np.int16))


def read_pcm(path: Path) -> np.ndarray:
    """A mono 16-bit 8 kHz WAV as floats; also a baresip dump still being written."""
    samples, rate = read_wav(path)
    assert rate == 8000, f"{path}: {rate} Hz"
    return samples.astype(np.float64)


def best_match(recording: np.ndarray, source: np.ndarray, window: float = 1.0) -> float:
    """The highest normalised correlation of any 1 s stretch of `recording` (every
    0.5 s) against any place in `source`: prompts around a message do not match."""
    w = int(window * 8000)
    size = 1 << int(np.ceil(np.log2(len(source) + w)))
    spectrum = np.fft.rfft(source, size)
    energy = np.convolve(source**2, np.ones(w), "full")[w - 1 : w - 1 + len(source)]
    norm = np.sqrt(np.maximum(energy, 1e-9))
    best = 0.0
    for start in range(0, len(recording) - w + 1, w // 2):
        piece = recording[start : start + w] - recording[start : start + w].mean()
        length = np.linalg.norm(piece)
        if length < 1e-6:
            continue
        corr = np.fft.irfft(spectrum * np.conj(np.fft.rfft(piece / length, size)), size)
        best = max(best, float(np.max(corr[: len(source)] / norm)))
    return best


def query(server: YakyakServer, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{server.data / 'yakyak.db'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def wait_rows(server: YakyakServer, sql: str, want: int, timeout: float = TIMEOUT) -> list:
    deadline = time.monotonic() + timeout
    rows = query(server, sql)
    while len(rows) != want and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = query(server, sql)
    assert len(rows) == want, f"{sql}: {rows}\n{server.log()[-4000:]}"
    return rows


def prepare(server: YakyakServer, ivr: Path | None = None, email: str | None = None) -> None:
    """MD5-only challenges for baresip, a mailbox for 102, the menus if given."""
    mailbox = ("mailbox", "add", "102", "--pin", PIN) + (("--email", email) if email else ())
    steps: list[tuple[str, ...]] = [
        ("ext", "auth", "101", "--algorithms", "MD5"),
        ("ext", "auth", "102", "--algorithms", "MD5"),
        mailbox,
    ]
    if ivr is not None:
        steps.append(("ivr", "load", str(ivr)))
    for step in steps:
        mark = server.log_mark()
        server.cli(*step)
        assert server.wait_for_log(RELOADED, 5.0, since=mark), server.log()[-4000:]


def registrar(server: YakyakServer, number: str) -> Registrar:
    return Registrar(server.host, server.port, PASSWORDS[number])


def leave_message(server: YakyakServer, alice: BaresipPhone, seconds: float) -> None:
    """Alice calls 102 (whose phone is absent or busy), waits for the beep, talks,
    hangs up."""
    mark = server.log_mark()
    alice.dial(f"sip:102@{server.host}:{server.port}")
    alice.wait_event("CALL_ESTABLISHED", TIMEOUT)
    assert server.wait_for_log(RECORDING, TIMEOUT, since=mark), server.log()[-4000:]
    time.sleep(seconds)
    alice.hangup()
    alice.wait_event("CALL_CLOSED", TIMEOUT)


def test_message_left_notified_played_back_and_deleted(
    yakyak_server: YakyakServer, phones: Phones, tmp_path: Path
) -> None:
    server = yakyak_server
    prepare(server)
    source = noise_source(tmp_path / "alice.wav")
    alice = phones.registered("101", source, registrar(server, "101"))
    alice.wait_registered()

    leave_message(server, alice, SPEAK_SECONDS)
    rows = wait_rows(
        server,
        "SELECT m.id, m.caller, m.duration, m.status, m.filename FROM voicemail_message m",
        1,
    )
    message_id, caller, duration, status, filename = rows[0]
    assert (caller, status) == ("101", "new")
    assert SPEAK_SECONDS - 1.5 <= float(duration) <= SPEAK_SECONDS + 1.0  # type: ignore[arg-type]
    stored = server.data / "voicemail" / str(filename)
    match = best_match(read_pcm(stored), read_pcm(source))
    assert match > MATCH, f"stored message does not match what 101 sent ({match:.2f})"

    bob = phones.registered(
        "102",
        write_tone_wav(tmp_path / "bob.wav", TONE_B_HZ, SOURCE_SECONDS),
        registrar(server, "102"),
        apps=["mwi.so"],
    )
    bob.wait_registered()
    notify = bob.wait_event("MWI_NOTIFY", TIMEOUT)
    assert "Messages-Waiting: yes" in notify.param, notify
    assert "Voice-Message: 1/0" in notify.param, notify

    mark = server.log_mark()
    bob.dial(f"sip:*97@{server.host}:{server.port}")
    bob.wait_event("CALL_ESTABLISHED", TIMEOUT)
    assert server.wait_for_log(r"LoadMailbox", TIMEOUT, since=mark)
    time.sleep(1.0)  # the PIN prompt is playing
    bob.send_dtmf(PIN + "#")
    assert server.wait_for_log(r"CheckPin", TIMEOUT, since=mark)
    opened = server.wait_for_log(r"call \d+: mailbox 102: LoadMailbox", TIMEOUT, since=mark)
    assert opened
    time.sleep(1.0)
    bob.send_dtmf("1")  # listen to new messages (barges in on the counts)
    deadline = time.monotonic() + TIMEOUT
    heard = 0.0
    while time.monotonic() < deadline:
        time.sleep(2.0)
        recordings = bob.recordings("dec")
        if recordings:
            heard = best_match(read_pcm(recordings[-1]), read_pcm(source))
            if heard > MATCH:
                break
    assert heard > MATCH, f"102 did not hear the message ({heard:.2f})\n{server.log()[-3000:]}"
    mark = server.log_mark()
    bob.send_dtmf("7")  # delete
    wait_rows(
        server,
        f"SELECT id FROM voicemail_message WHERE id = {message_id} AND status = 'deleted'",
        1,
    )
    assert not stored.exists()
    cleared = bob.wait_event("MWI_NOTIFY", TIMEOUT)
    assert "Voice-Message: 0/" in cleared.param, cleared
    bob.hangup()
    bob.wait_event("CALL_CLOSED", TIMEOUT)


def test_auto_attendant_routes_a_digit_to_a_ringing_extension(
    yakyak_servers: ServerFactory, phones: Phones, tmp_path: Path
) -> None:
    route = '[{ name = "attendant", pattern = "500", target = { type = "ivr", menu = "main" } }]'
    server = yakyak_servers(config={"dialplan.routes": route})
    ivr = tmp_path / "ivr.json"
    ivr.write_text(json.dumps(ATTENDANT), encoding="utf-8")
    prepare(server, ivr)
    alice = phones.registered("101", noise_source(tmp_path / "alice.wav"), registrar(server, "101"))
    bob = phones.registered(
        "102",
        write_tone_wav(tmp_path / "bob.wav", TONE_B_HZ, SOURCE_SECONDS),
        registrar(server, "102"),
    )
    alice.wait_registered()
    bob.wait_registered()
    server.wait_for_contacts({"101": 1, "102": 1})

    alice.dial(f"sip:500@{server.host}:{server.port}")
    alice.wait_event("CALL_ESTABLISHED", TIMEOUT)
    time.sleep(1.0)  # the greeting plays; the digit barges in
    alice.send_dtmf("1")
    bob.wait_event("CALL_INCOMING", TIMEOUT, unless=alice.closed_reason)
    bob.answer()
    bob.wait_event("CALL_ESTABLISHED", TIMEOUT)
    bob.wait_heard(2.0, TIMEOUT)
    alice.wait_heard(4.0, TIMEOUT)
    heard, _ = read_wav(alice.heard())  # greeting and ringback first: check the end
    tail = write_wav(tmp_path / "alice-tail.wav", heard[-2 * 8000 :])
    at_alice = check_wav(tail, TONE_B_HZ)
    assert at_alice.ok, f"101 did not hear 102 after the transfer: {at_alice.describe()}"
    assert best_match(read_pcm(bob.heard()), read_pcm(tmp_path / "alice.wav")) > MATCH
    alice.hangup()
    bob.wait_event("CALL_CLOSED", TIMEOUT)


def test_a_crash_while_recording_leaves_the_mailbox_consistent(
    yakyak_servers: ServerFactory, phones: Phones, tmp_path: Path
) -> None:
    server = yakyak_servers()
    prepare(server)
    source = noise_source(tmp_path / "alice.wav")
    alice = phones.registered("101", source, registrar(server, "101"))
    alice.wait_registered()
    leave_message(server, alice, 2.5)
    first = wait_rows(server, "SELECT filename FROM voicemail_message", 1)[0][0]

    mark = server.log_mark()
    alice.dial(f"sip:102@{server.host}:{server.port}")
    alice.wait_event("CALL_ESTABLISHED", TIMEOUT)
    assert server.wait_for_log(RECORDING, TIMEOUT, since=mark)
    time.sleep(1.5)
    os.kill(server.pid, signal.SIGKILL)  # mid-recording, by PID
    server.process.wait(10)
    server.process.killed_by_test = True  # type: ignore[attr-defined]  # for the teardown
    alice.hangup()

    # the same port, so the phone (registered there) can un-register when it stops
    restarted = yakyak_servers(server.data, extra=("--sip", f"{server.host}:{server.port}"))
    rows = query(restarted, "SELECT filename, status FROM voicemail_message")
    assert [r[0] for r in rows] == [first], rows
    folder = restarted.data / "voicemail"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav"))
    assert files == [first], files  # nothing half-written, no orphan
    assert not list((folder / ".spool").glob("*")) if (folder / ".spool").exists() else True
    assert best_match(read_pcm(folder / str(first)), read_pcm(source)) > MATCH


class Sink:
    """An SMTP server on loopback (aiosmtpd) keeping what it is sent."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        self.messages.append(bytes(envelope.original_content))
        return "250 OK"


def test_busy_phone_voicemail_notify_without_subscription_and_email(
    yakyak_servers: ServerFactory, phones: Phones, sipp: SippRunner, tmp_path: Path
) -> None:
    """102's phone is a sipp that answers 486 and never subscribes: the caller gets the
    busy greeting and leaves a message, the phone gets an unsolicited NOTIFY, and the
    owner an e-mail with the message attached, through an SMTP server on loopback."""
    sink = Sink()
    smtp_port = free_udp_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        server = yakyak_servers(
            config={"voicemail.smtp_host": '"127.0.0.1"', "voicemail.smtp_port": str(smtp_port)}
        )
        prepare(server, email="bob@example.com")
        source = noise_source(tmp_path / "alice.wav")
        alice = phones.registered("101", source, registrar(server, "101"))
        alice.wait_registered()
        bob = next(e for e in server.extensions if e.number == "102")
        run_dir = tmp_path / "bob"
        port = register(server, sipp, bob, run_dir)
        busy = start_uas(server, "call_uas_busy.xml", run_dir, port, "busy")
        try:
            mark = server.log_mark()
            alice.dial(f"sip:102@{server.host}:{server.port}")
            alice.wait_event("CALL_ESTABLISHED", TIMEOUT)
            finished(busy, run_dir, "busy")  # 486 from the phone came first
        finally:
            stop_uas(busy)
        notified = start_uas(server, "notify_uas.xml", run_dir, port, "notify")
        try:
            assert server.wait_for_log(RECORDING, TIMEOUT, since=mark), server.log()[-3000:]
            time.sleep(3.0)
            alice.hangup()
            alice.wait_event("CALL_CLOSED", TIMEOUT)
            finished(notified, run_dir, "notify")
        finally:
            stop_uas(notified)
        assert server.wait_for_log(r"to the mailbox of 102 \(busy\)", 1.0, since=mark)
        assert server.wait_for_log(r"mailbox 102: StoreMessage", 1.0, since=mark)

        (filename,) = wait_rows(server, "SELECT filename FROM voicemail_message", 1)[0]
        stored = server.data / "voicemail" / str(filename)
        deadline = time.monotonic() + TIMEOUT
        while not sink.messages and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sink.messages, server.log()[-3000:]
        mail = BytesParser(policy=policy.default).parsebytes(sink.messages[0])
        assert mail["To"] == "bob@example.com"
        assert "101" in str(mail["Subject"])
        (attachment,) = [part for part in mail.iter_attachments()]
        assert attachment.get_content_type() == "audio/wav"
        assert attachment.get_content() == stored.read_bytes()
    finally:
        controller.stop()


def test_unanswered_call_is_cancelled_at_the_phone_and_goes_to_voicemail(
    yakyak_servers: ServerFactory, phones: Phones, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_servers(config={"calls.no_answer_timeout": "2"})
    prepare(server)
    alice = phones.registered("101", noise_source(tmp_path / "alice.wav"), registrar(server, "101"))
    alice.wait_registered()
    bob = next(e for e in server.extensions if e.number == "102")
    run_dir = tmp_path / "bob"
    port = register(server, sipp, bob, run_dir)
    ringing = start_uas(server, "call_uas_ring.xml", run_dir, port, "ring")
    try:
        mark = server.log_mark()
        alice.dial(f"sip:102@{server.host}:{server.port}")
        alice.wait_event("CALL_ESTABLISHED", TIMEOUT)  # after 2 s: the mailbox answers
        finished(ringing, run_dir, "ring")  # the phone got CANCEL and answered 487
    finally:
        stop_uas(ringing)
    assert server.wait_for_log(r"to the mailbox of 102 \(no-answer\)", 1.0, since=mark)
    assert server.wait_for_log(RECORDING, TIMEOUT, since=mark), server.log()[-3000:]
    alice.hangup()
    alice.wait_event("CALL_CLOSED", TIMEOUT)


def test_hold_plays_music_to_the_other_phone(
    yakyak_server: YakyakServer, phones: Phones, tmp_path: Path
) -> None:
    """A holding baresip sends no RTP at all (see baresip_phone.py): what the held phone
    receives meanwhile is our music on hold."""
    server = yakyak_server
    prepare(server)
    alice = phones.registered("101", noise_source(tmp_path / "alice.wav"), registrar(server, "101"))
    bob = phones.registered(
        "102",
        write_tone_wav(tmp_path / "bob.wav", TONE_B_HZ, SOURCE_SECONDS),
        registrar(server, "102"),
    )
    alice.wait_registered()
    bob.wait_registered()
    server.wait_for_contacts({"101": 1, "102": 1})
    alice.dial(f"sip:102@{server.host}:{server.port}")
    bob.wait_event("CALL_INCOMING", TIMEOUT, unless=alice.closed_reason)
    bob.answer()
    alice.wait_event("CALL_ESTABLISHED", TIMEOUT)
    bob.wait_heard(1.0, TIMEOUT)

    alice.hold()
    alice.wait_event("CALL_REMOTE_SDP", TIMEOUT)
    bob.wait_event("CALL_REMOTE_SDP", TIMEOUT)  # our sendonly re-INVITE
    time.sleep(0.5)
    before = bob.rtp_received()
    assert bob.wait_rtp(before + 75, 5.0) >= before + 75, "102 hears nothing while held"
    alice.resume()
    alice.wait_event("CALL_REMOTE_SDP", TIMEOUT)
    at_alice = alice.rtp_received()
    assert alice.wait_rtp(at_alice + 25, 5.0) >= at_alice + 25
    alice.hangup()
    bob.wait_event("CALL_CLOSED", TIMEOUT)
