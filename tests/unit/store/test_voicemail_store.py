from __future__ import annotations

import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import peewee
import pytest

from appliance.pbx.app_events import GreetingKind, MessageStatus, Recording
from appliance.store.db import open_database, schema_version
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.extensions import Directory
from appliance.store.migrations import (
    CURRENT_VERSION,
    DIRECTORY_REVISION_KEY,
    MIGRATIONS,
    migrate_to_current,
)
from appliance.store.models import IvrMenu, Mailbox, VoicemailMessage
from appliance.store.settings import get_setting
from appliance.store.voicemail import (
    EmailTarget,
    ReconcileReport,
    VoicemailStore,
    wav_seconds,
)

T0 = 1_700_000_000.0
REPO = Path(__file__).parents[3]


def _write_wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack("<h", 1000) * round(rate * seconds))
    return path


class Changes:
    def __init__(self) -> None:
        self.numbers: list[str] = []

    def __call__(self, number: str) -> None:
        self.numbers.append(number)


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def store(
    db: peewee.SqliteDatabase, directory: Directory, tmp_path: Path, changes: Changes
) -> VoicemailStore:
    directory.add("2000", "password-2000", name="Bob")
    directory.add("2001", "password-2001", name="Alice")
    vm = VoicemailStore(db, tmp_path / "voicemail", on_change=changes, clock=lambda: T0)
    vm.create_mailbox("2000", "1234", "bob@example.com")
    return vm


def _record(store: VoicemailStore, seconds: float = 0.5) -> Path:
    return _write_wav(store.new_recording_path(), seconds)


def _store(
    store: VoicemailStore,
    at: float = T0,
    box: str = "2000",
    caller: str = "2001",
    urgent: bool = False,
) -> int:
    message_id = store.store_message(box, _record(store), 0.5, caller, "Alice", urgent, at)
    assert message_id is not None
    return message_id


def _box_files(store: VoicemailStore, box: str = "2000") -> set[str]:
    return {p.name for p in (store.root / box).glob("msg-*.wav")}


# --- schema ------------------------------------------------------------------------


def test_v5_database_migrates_to_v6_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    old = peewee.SqliteDatabase(str(path), pragmas={"foreign_keys": 1})
    migrate_to_current(old, MIGRATIONS[:5])
    old.execute_sql(
        'INSERT INTO "extension" ("number", "name", "created_at") VALUES (?, ?, ?)',
        ("101", "Reception", T0),
    )
    old.execute_sql(
        'INSERT INTO "cdr" ("call_id", "caller", "callee", "start_at", "end_at", "duration_s",'
        ' "disposition", "hangup_cause", "hangup_by") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ("c1", "101", "102", T0, T0 + 5, 0.0, "no-answer", 19, "system"),
    )
    old.close()
    db = open_database(path)
    try:
        assert schema_version(db) == CURRENT_VERSION >= 6
        assert db.execute_sql(
            'SELECT "number", "name", "moh_class" FROM "extension"'
        ).fetchall() == [("101", "Reception", "default")]
        assert db.execute_sql('SELECT "call_id" FROM "cdr"').fetchall() == [("c1",)]
        assert {"mailbox", "voicemail_message", "ivr_menu"} <= set(db.get_tables())
        # The v4 triggers survive the new column and still count extension changes.
        revision = get_setting(db, DIRECTORY_REVISION_KEY)
        db.execute_sql('UPDATE "extension" SET "moh_class" = ? WHERE "number" = ?', ("jazz", "101"))
        assert get_setting(db, DIRECTORY_REVISION_KEY) == revision + 1  # type: ignore[operator]
    finally:
        db.close()


def _indexes(db: peewee.SqliteDatabase, table: str) -> set[tuple[tuple[str, ...], bool]]:
    return {(tuple(i.columns), bool(i.unique)) for i in db.get_indexes(table)}


def test_v6_model_indexes_match_the_migration(tmp_path: Path) -> None:
    models = [Mailbox, VoicemailMessage, IvrMenu]
    from_model = peewee.SqliteDatabase(str(tmp_path / "model.db"))
    migrated = open_database(tmp_path / "migrated.db")
    try:
        with from_model.bind_ctx(models):
            from_model.create_tables(models)
        for model in models:
            table = model._meta.table_name
            assert _indexes(from_model, table) == _indexes(migrated, table), table
        assert _indexes(migrated, "voicemail_message") == {
            (("mailbox_id", "status"), False),
            (("filename",), True),
        }
    finally:
        from_model.close()
        migrated.close()


def test_deleting_the_extension_deletes_mailbox_and_message_rows(
    store: VoicemailStore, directory: Directory, db: peewee.SqliteDatabase
) -> None:
    _store(store)
    directory.delete("2000")
    assert Mailbox.select().count(db) == 0
    assert VoicemailMessage.select().count(db) == 0
    assert store.view("2000") is None


# --- mailboxes and PINs --------------------------------------------------------------


def test_new_mailbox_view(store: VoicemailStore) -> None:
    view = store.view("2000")
    assert view is not None
    assert (view.number, view.name, view.language, view.timezone) == ("2000", "Bob", "en", "UTC")
    assert (view.max_message_seconds, view.max_messages, view.has_pin) == (180.0, 100, True)
    assert (view.messages, view.greetings) == ((), {})
    assert store.mailbox_exists("2000") and not store.mailbox_exists("2001")
    assert store.view("2001") is None
    assert store.email_for("2000") == "bob@example.com"
    assert store.email_target("2000") == EmailTarget("bob@example.com", True, "UTC")
    assert store.email_for("2001") is None
    assert (store.root / "2000").is_dir()


@pytest.mark.parametrize(
    ("number", "kwargs", "error", "message"),
    [
        ("2999", {}, NotFoundError, "no extension 2999"),
        ("2000", {}, StoreError, "2000 already has a mailbox"),
        ("2001", {"pin": "12"}, StoreError, "4 to 10 digits"),
        ("2001", {"email": "nope"}, StoreError, "bad e-mail address"),
        ("2001", {"timezone": "Mars/Olympus"}, StoreError, "unknown time zone"),
        ("2001", {"language": "English"}, StoreError, "bad language"),
        ("2001", {"max_messages": 0}, StoreError, "max_messages"),
        ("2001", {"max_message_seconds": float("nan")}, StoreError, "max_message_seconds"),
    ],
)
def test_create_mailbox_refusals(
    store: VoicemailStore,
    number: str,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    pin = kwargs.pop("pin", None)
    with pytest.raises(error, match=message):
        store.create_mailbox(number, pin, **kwargs)  # type: ignore[arg-type]  # test table
    assert not store.mailbox_exists("2001")


def test_pin_check_right_wrong_and_unset(store: VoicemailStore) -> None:
    assert store.check_pin("2000", "1234")
    assert not store.check_pin("2000", "4321")
    assert not store.check_pin("2000", "12345")
    assert not store.check_pin("2000", "12a4")
    assert not store.check_pin("2999", "1234")  # no such mailbox
    store.create_mailbox("2001", None)
    view = store.view("2001")
    assert view is not None and not view.has_pin
    assert not store.check_pin("2001", "1234")  # no PIN matches none
    store.set_pin("2001", "98765")
    assert store.check_pin("2001", "98765")
    store.set_pin("2000", None)
    assert not store.check_pin("2000", "1234")


@pytest.mark.parametrize("pin", ["", "123", "12345678901", "12a4", " 1234", "1234\n", "١٢٣٤"])
def test_set_pin_validates(store: VoicemailStore, pin: str) -> None:
    with pytest.raises(ValueError, match="PIN must be 4 to 10 digits"):
        store.set_pin("2000", pin)
    assert store.check_pin("2000", "1234")


def test_set_pin_on_a_missing_mailbox_is_refused(store: VoicemailStore) -> None:
    with pytest.raises(NotFoundError, match="no mailbox 2001"):
        store.set_pin("2001", "1234")


def test_new_mailbox_clears_files_left_by_a_deleted_one(
    store: VoicemailStore, directory: Directory
) -> None:
    _store(store)
    store.save_greeting("2000", GreetingKind.NAME, _record(store))
    directory.delete("2000")
    directory.add("2000", "password-new")
    store.create_mailbox("2000", None)
    assert list((store.root / "2000").iterdir()) == []
    view = store.view("2000")
    assert view is not None and (view.messages, view.greetings) == ((), {})


# --- messages ------------------------------------------------------------------------


def test_store_list_and_change_status(store: VoicemailStore, changes: Changes) -> None:
    second = _store(store, at=T0 + 60, caller="2002", urgent=True)
    first = _store(store, at=T0)
    view = store.view("2000")
    assert view is not None
    assert [m.id for m in view.messages] == [first, second]  # oldest first
    message = view.messages[1]
    assert (message.caller, message.caller_name, message.received_at) == ("2002", "Alice", T0 + 60)
    assert (message.duration, message.status, message.urgent) == (0.5, MessageStatus.NEW, True)
    path = Path(message.recording.path)
    assert path.parent == store.root / "2000" and path.name.startswith("msg-1700000060000-")
    assert wav_seconds(path) == 0.5
    assert list((store.root / ".spool").iterdir()) == []
    assert store.counts("2000") == (2, 0)
    assert changes.numbers == ["2000", "2000"]

    assert store.set_status("2000", first, MessageStatus.READ)
    assert store.set_status("2000", second, MessageStatus.SAVED)
    assert store.counts("2000") == (0, 2)
    assert store.set_status("2000", first, MessageStatus.DELETED)
    assert len(_box_files(store)) == 1 and path.exists()
    view = store.view("2000")
    assert view is not None and [m.id for m in view.messages] == [second]
    kept = store.message("2000", first)
    assert kept is not None and kept.status is MessageStatus.DELETED  # row kept as history
    assert not Path(kept.recording.path).exists()
    assert store.counts("2000") == (0, 1)
    assert len(changes.numbers) == 5

    assert not store.set_status("2000", first, MessageStatus.NEW)  # deleted stays deleted
    assert not store.set_status("2001", second, MessageStatus.DELETED)  # not 2001's
    assert not store.set_status("2000", 9999, MessageStatus.READ)
    assert store.set_status("2000", second, MessageStatus.SAVED)  # no change, no news
    assert len(changes.numbers) == 5


def test_full_mailbox_drops_the_recording(
    store: VoicemailStore, directory: Directory, changes: Changes
) -> None:
    store.create_mailbox("2001", None, max_messages=2)
    one = _store(store, box="2001", at=T0)
    _store(store, box="2001", at=T0 + 1)
    spooled = _record(store)
    assert store.store_message("2001", spooled, 1.0, "2000", None, False, T0 + 2) is None
    assert not spooled.exists()
    view = store.view("2001")
    assert view is not None and view.full and len(_box_files(store, "2001")) == 2
    store.set_status("2001", one, MessageStatus.DELETED)
    assert store.store_message("2001", _record(store), 1.0, "2000", None, False, T0 + 3)
    assert changes.numbers == ["2001"] * 4


def test_missing_mailbox_drops_the_recording(store: VoicemailStore, changes: Changes) -> None:
    spooled = _record(store)
    assert store.store_message("2001", spooled, 1.0, "2000", None, False, T0) is None
    assert not spooled.exists() and not (store.root / "2001").exists()
    assert changes.numbers == []


def test_only_spooled_recordings_are_taken(store: VoicemailStore) -> None:
    message = Path(store.root / "2000") / "x.wav"
    _store(store)
    [stored] = _box_files(store)
    for path in (_write_wav(message), store.root / "2000" / stored, store.root / "outside.wav"):
        with pytest.raises(StoreError, match="is not a recording in"):
            store.store_message("2000", path, 1.0, "2001", None, False, T0)
        with pytest.raises(StoreError, match="is not a recording in"):
            store.discard_recording(path)
    assert message.exists() and (store.root / "2000" / stored).exists()
    spooled = _record(store)
    store.discard_recording(spooled)
    assert not spooled.exists()
    with pytest.raises(StoreError, match="does not exist"):
        store.store_message("2000", spooled, 1.0, "2001", None, False, T0)


def test_spool_paths_are_fresh(store: VoicemailStore) -> None:
    paths = {store.new_recording_path() for _ in range(100)}
    assert len(paths) == 100
    assert {p.parent for p in paths} == {store.root / ".spool"}


# --- greetings -----------------------------------------------------------------------


def test_greetings_save_replace_and_remove(store: VoicemailStore) -> None:
    store.save_greeting("2000", GreetingKind.BUSY, _record(store, 1.0))
    replacement = _record(store, 2.0)
    data = replacement.read_bytes()
    assert store.save_greeting("2000", GreetingKind.BUSY, replacement)
    store.save_greeting("2000", GreetingKind.NAME, _record(store))
    view = store.view("2000")
    assert view is not None
    busy = store.root / "2000" / "greet-busy.wav"
    assert view.greetings == {
        GreetingKind.BUSY: Recording(str(busy)),
        GreetingKind.NAME: Recording(str(store.root / "2000" / "greet-name.wav")),
    }
    assert busy.read_bytes() == data
    assert store.remove_greeting("2000", GreetingKind.BUSY)
    assert not store.remove_greeting("2000", GreetingKind.BUSY)
    view = store.view("2000")
    assert view is not None and set(view.greetings) == {GreetingKind.NAME}
    spooled = _record(store)
    assert not store.save_greeting("2001", GreetingKind.NAME, spooled)  # no mailbox
    assert not spooled.exists()


# --- reconcile -----------------------------------------------------------------------


def test_reconcile_of_a_tidy_store_changes_nothing(store: VoicemailStore, changes: Changes) -> None:
    _store(store)
    store.save_greeting("2000", GreetingKind.NAME, _record(store))
    before = changes.numbers[:]
    assert store.reconcile() == ReconcileReport()
    assert changes.numbers == before


def test_reconcile_empties_the_spool_and_removes_temp_files(store: VoicemailStore) -> None:
    _record(store)
    (store.root / ".spool" / ".rec-1.wav.abc.tmp").write_bytes(b"half")
    (store.root / ".spool" / "stray").mkdir()
    (store.root / "2000" / ".greet-name.wav.x1.tmp").write_bytes(b"half")
    (store.root / "2000" / "upload.part").write_bytes(b"half")
    (store.root / "export.tmp").write_bytes(b"half")
    report = store.reconcile()
    assert (report.spool_removed, report.temp_removed) == (3, 3)
    assert list((store.root / ".spool").iterdir()) == []
    assert list((store.root / "2000").iterdir()) == []
    assert not (store.root / "export.tmp").exists()


def test_reconcile_adopts_a_valid_file_without_row(store: VoicemailStore, changes: Changes) -> None:
    _write_wav(store.root / "2000" / "msg-1700000123456-0123abcd.wav", seconds=1.25)
    report = store.reconcile()
    assert report.adopted == 1 and report.changed
    view = store.view("2000")
    assert view is not None
    [message] = view.messages
    assert (message.caller, message.caller_name, message.status) == (
        "unknown",
        None,
        MessageStatus.NEW,
    )
    assert (message.received_at, message.duration) == (1_700_000_123.456, 1.25)
    assert changes.numbers == ["2000"]
    assert store.reconcile() == ReconcileReport()  # settled


def test_reconcile_removes_an_invalid_file_without_row(store: VoicemailStore) -> None:
    box = store.root / "2000"
    (box / "msg-1700000000000-00000001.wav").write_bytes(b"not a wav at all")
    truncated = _write_wav(box / "msg-1700000000000-00000002.wav").read_bytes()[:-100]
    (box / "msg-1700000000000-00000002.wav").write_bytes(truncated)
    _write_wav(box / "msg-1700000000000-00000003.wav", seconds=0)  # no audio
    (box / "notes.txt").write_text("an admin's file: left alone")
    report = store.reconcile()
    assert (report.invalid_removed, report.adopted) == (3, 0)
    assert [p.name for p in box.iterdir()] == ["notes.txt"]


def test_reconcile_marks_a_row_without_file_deleted(
    store: VoicemailStore, changes: Changes
) -> None:
    gone = _store(store, at=T0)
    kept = _store(store, at=T0 + 1)
    message = store.message("2000", gone)
    assert message is not None
    Path(message.recording.path).unlink()
    changes.numbers.clear()
    report = store.reconcile()
    assert report.rows_marked_deleted == 1
    view = store.view("2000")
    assert view is not None and [m.id for m in view.messages] == [kept]
    status = store.message("2000", gone)
    assert status is not None and status.status is MessageStatus.DELETED
    assert changes.numbers == ["2000"]


def test_reconcile_removes_the_file_of_a_deleted_row(
    store: VoicemailStore, db: peewee.SqliteDatabase
) -> None:
    message_id = _store(store)
    # As if the unlink had not reached the disk while the row update had.
    VoicemailMessage.update(status="deleted").where(VoicemailMessage.id == message_id).execute(db)
    assert store.reconcile().stale_removed == 1
    assert _box_files(store) == set()


def test_reconcile_removes_folders_of_mailboxes_that_are_gone(store: VoicemailStore) -> None:
    _write_wav(store.root / "3000" / "msg-1700000000000-0123abcd.wav")
    (store.root / "lost+found").mkdir()
    report = store.reconcile()
    assert report.orphan_boxes_removed == 1
    assert sorted(p.name for p in store.root.iterdir()) == [".spool", "2000", "lost+found"]


def test_reconcile_on_a_fresh_root(db: peewee.SqliteDatabase, tmp_path: Path) -> None:
    vm = VoicemailStore(db, tmp_path / "new" / "voicemail")
    assert vm.reconcile() == ReconcileReport()
    assert (vm.root / ".spool").is_dir()


# --- WAV check -----------------------------------------------------------------------


def _riff(fmt_tag: int, byte_rate: int, data: bytes, extra: bytes = b"") -> bytes:
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, 8000, byte_rate, 1, 8)
    chunks = extra + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize(
    ("content", "seconds"),
    [
        (_riff(7, 8000, b"\xff" * 4000), 0.5),  # G.711 u-law, which `wave` refuses
        (_riff(1, 16000, b"\x00" * 8000, extra=b"LIST\x03\x00\x00\x00abc\x00"), 0.5),
        (_riff(1, 0, b"\x00" * 10), None),
        (_riff(1, 8000, b""), None),
        (_riff(1, 8000, b"\x00" * 100)[:-1], None),
        (b"RIFF\x00\x00\x00\x00WAVE", None),
        (b"RIFX" + b"\x00" * 40, None),
        (b"", None),
    ],
)
def test_wav_seconds(tmp_path: Path, content: bytes, seconds: float | None) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    assert wav_seconds(path) == seconds


def test_wav_seconds_of_a_missing_file(tmp_path: Path) -> None:
    assert wav_seconds(tmp_path / "absent.wav") is None


# --- crash safety --------------------------------------------------------------------

# Stores, reads and deletes messages as fast as it can, one line of output per step;
# the test kills it at a random moment.
_CHILD = """
import os, random, struct, sys, wave
from pathlib import Path
from appliance.pbx.app_events import MessageStatus
from appliance.store.db import open_database
from appliance.store.voicemail import VoicemailStore

db = open_database(Path(sys.argv[1]))
store = VoicemailStore(db, Path(sys.argv[2]))
rng = random.Random(int(sys.argv[3]))
step = 0
while True:
    step += 1
    path = store.new_recording_path()
    temp = path.with_name("." + path.name + ".tmp")
    with wave.open(str(temp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(os.urandom(rng.randrange(200, 4000) * 2))
    os.replace(temp, path)
    store.store_message("2000", path, 0.1, "2001", None, False, 1.7e9 + step)
    view = store.view("2000")
    if view.messages and rng.random() < 0.4:
        victim = rng.choice(view.messages)
        store.set_status("2000", victim.id, MessageStatus.DELETED)
    elif view.messages:
        store.set_status("2000", view.messages[-1].id, MessageStatus.READ)
    sys.stdout.write(f"{step}\\n")
    sys.stdout.flush()
"""


def test_killed_writer_leaves_files_and_rows_in_agreement(
    db_path: Path, tmp_path: Path, directory: Directory, db: peewee.SqliteDatabase
) -> None:
    directory.add("2000", "password-2000")
    root = tmp_path / "voicemail"
    store = VoicemailStore(db, root)
    store.create_mailbox("2000", None, max_messages=10_000)
    rng = random.Random(1)
    for round_ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(db_path), str(root), str(round_)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert child.stdout is not None
        for _ in range(rng.randrange(1, 25)):
            assert child.stdout.readline(), "the child died by itself"
        # A random moment within the next steps: killing right after a line would
        # nearly always land while the next recording is being written.
        time.sleep(rng.uniform(0, 0.02))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()

        store.reconcile()
        assert VoicemailMessage.select().count(db) > 0
        live = {
            row.filename
            for row in VoicemailMessage.select()
            .where(VoicemailMessage.status != "deleted")
            .execute(db)
        }
        assert all(wav_seconds(root / name) for name in live)
        assert {f"2000/{name}" for name in _box_files(store)} == live
        assert list((root / ".spool").iterdir()) == []
        with sqlite3.connect(db_path) as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
