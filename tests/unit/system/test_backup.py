"""Backup archives: what goes in, every check a hostile or broken archive must fail, and
applying a restore so that a crash at any step leaves the old state or the new one."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.config import write_default
from appliance.store.db import open_database
from appliance.store.extensions import Directory
from appliance.store.migrations import CURRENT_VERSION
from appliance.system import backup
from appliance.system.backup import (
    APPLYING,
    ITEMS,
    MANIFEST,
    PENDING,
    PREVIOUS,
    BackupError,
    Limits,
    create_backup,
)
from appliance.system.restore import (
    apply_pending_restore,
    begin_restore,
    cancel_pending_restore,
    discard_previous_state,
    finish_restore,
    pending_restore,
    stage_restore,
    swap_item,
)
from appliance.web import tls

T0 = 1_700_000_000.0
PLENTY = 10 << 40  # free bytes to claim, so the 2 GB limit is the one that binds
Entry = tuple[tarfile.TarInfo, bytes | None]


def make_data(
    data: Path, domain: str, numbers: tuple[str, ...], files: dict[str, bytes], *, cert: bool
) -> Path:
    data.mkdir(parents=True)
    write_default(data, domain)
    db = open_database(data / "yakyak.db")
    directory = Directory(db, domain)
    for number in numbers:
        directory.add(number, f"password-{number}", None)
    db.close()
    for name, content in files.items():
        path = data / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    if cert:
        tls.ensure(data, ["localhost"], datetime.datetime.now(datetime.UTC))
    return data


NEW_FILES = {
    "prompts/en/welcome.wav": b"RIFF new welcome",
    "moh/default/tune.wav": b"RIFF tune",
    "voicemail/201/msg-1700000000000-0123456789ab.wav": b"RIFF message",
    "voicemail/201/greet-unavailable.wav": b"RIFF greeting",
}
OLD_FILES = {"prompts/en/old.wav": b"RIFF old", "voicemail/101/greet-busy.wav": b"RIFF busy"}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The box the backup is taken from."""
    return make_data(tmp_path / "source", "new.example", ("201", "202"), NEW_FILES, cert=True)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """The box it is restored to."""
    return make_data(tmp_path / "target", "old.example", ("101",), OLD_FILES, cert=True)


def numbers(data: Path) -> set[str]:
    """Extension numbers in the data folder's database, read from a copy (with its WAL)
    so looking changes nothing."""
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("yakyak.db", "yakyak.db-wal"):
            if (data / name).exists():
                shutil.copy(data / name, Path(scratch) / name)
        connection = sqlite3.connect(Path(scratch) / "yakyak.db")
        try:
            return {row[0] for row in connection.execute("SELECT number FROM extension")}
        finally:
            connection.close()


def tree(data: Path) -> dict[str, bytes]:
    """Every file of the restorable items but the database, by relative path."""
    found = {}
    for item in ("yakyak.toml", "web-tls.pem", "prompts", "moh", "voicemail"):
        path = data / item
        if path.is_file():
            found[item] = path.read_bytes()
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                found[file.relative_to(data).as_posix()] = file.read_bytes()
    return found


def state(data: Path) -> tuple[set[str], dict[str, bytes]]:
    return numbers(data), tree(data)


def listing(data: Path) -> dict[str, bytes | None]:
    """The whole data folder: every path, with the content of files."""
    return {
        p.relative_to(data).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(data.rglob("*"))
    }


def archive_of(data: Path) -> bytes:
    out = io.BytesIO()
    create_backup(data, out, now=T0, version="9.9")
    return out.getvalue()


def members(archive: bytes) -> list[Entry]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        found: list[Entry] = []
        for info in tar.getmembers():
            content = tar.extractfile(info)
            found.append((info, None if content is None else content.read()))
        return found


def entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def manifest_for(entries: list[Entry], **changes: object) -> Entry:
    files = {
        info.name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for info, data in entries
        if info.isreg() and data is not None
    }
    document: dict[str, object] = {
        "format": 1,
        "yakyak_version": "9.9",
        "created_at": T0,
        "schema_version": CURRENT_VERSION,
        "files": files,
    }
    document.update(changes)
    return entry(MANIFEST, json.dumps(document).encode())


def pack(entries: list[Entry]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return gzip_bytes(raw.getvalue())


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    import gzip

    with gzip.GzipFile(fileobj=out, mode="wb") as zipped:
        zipped.write(data)
    return out.getvalue()


def content(source: Path) -> list[Entry]:
    """The members of a real backup of `source`, manifest left out."""
    return [(i, d) for i, d in members(archive_of(source)) if i.name != MANIFEST]


def with_manifest(entries: list[Entry], **changes: object) -> bytes:
    return pack([*entries, manifest_for(entries, **changes)])


def replaced(entries: list[Entry], name: str, data: bytes) -> list[Entry]:
    return [entry(name, data) if i.name == name else (i, d) for i, d in entries]


def database_bytes(source: Path, user_version: int | None = None, damage: bool = False) -> bytes:
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "copy.db"
        backup.snapshot_database(source / "yakyak.db", copy)
        if user_version is not None:
            connection = sqlite3.connect(copy)
            connection.execute(f"PRAGMA user_version = {user_version:d}")
            connection.close()
        data = bytearray(copy.read_bytes())
    if damage:  # garble the b-tree pages after the header page
        data[4096 + 8 : 4096 * 4] = b"\xa5" * (4096 * 3 - 8)
    out.write(bytes(data))
    return out.getvalue()


# -- what goes in ------------------------------------------------------------------------


def test_tls_file_name_matches_the_web_servers() -> None:
    assert backup.TLS_FILE == tls.TLS_FILE


def test_a_backup_holds_a_consistent_database_config_cert_and_folders(source: Path) -> None:
    (source / "voicemail" / ".spool").mkdir()
    (source / "voicemail" / ".spool" / "rec-1.wav").write_bytes(b"in flight")
    (source / "prompts" / "en" / "half.wav.part").write_bytes(b"half")
    (source / "prompts" / "en" / "link.wav").symlink_to(source / "yakyak.toml")
    (source / "moh" / "bad name.wav").write_bytes(b"x")
    # A writer holding a transaction open: the copy neither waits for it nor sees it.
    writer = open_database(source / "yakyak.db")
    with writer.atomic():
        Directory(writer, "new.example").add("299", "password-299", None)
        out = io.BytesIO()
        manifest, skipped = create_backup(source, out, now=T0, version="9.9")
    writer.close()
    assert sorted(skipped) == ["moh/bad name.wav", "prompts/en/link.wav"]
    found = {info.name: data for info, data in members(out.getvalue())}
    assert sorted(found) == sorted(
        ["yakyak.db", "yakyak.toml", "web-tls.pem", MANIFEST, *NEW_FILES]
    )
    assert list(found)[-1] == MANIFEST  # written last, after every hash is known
    assert (manifest.format, manifest.yakyak_version, manifest.created_at) == (1, "9.9", T0)
    assert manifest.schema_version == CURRENT_VERSION
    for name, data in found.items():
        if name != MANIFEST:
            assert data is not None
            assert manifest.files[name].sha256 == hashlib.sha256(data).hexdigest(), name
    assert json.loads(found[MANIFEST] or b"")["files"]["prompts/en/welcome.wav"]["size"] == 16
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "yakyak.db"
        copy.write_bytes(found["yakyak.db"] or b"")
        connection = sqlite3.connect(copy)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert {r[0] for r in connection.execute("SELECT number FROM extension")} == {"201", "202"}
        connection.close()
    modes = {info.name: info.mode for info, _ in members(out.getvalue())}
    assert modes["web-tls.pem"] == modes["yakyak.db"] == 0o600


# -- checks: a bad archive changes nothing --------------------------------------------------


def _cases(source: Path) -> dict[str, tuple[bytes, str]]:
    good = content(source)
    sound = "voicemail/201/msg-1700000000000-0123456789ab.wav"
    huge = tarfile.TarInfo("voicemail/201/msg-1-0123456789ab.wav")
    huge.size = 3 << 30  # the header claims 3 GB; no data follows
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 3 << 30
    whole = archive_of(source)
    return {
        "traversal": (with_manifest([*good, entry("../evil", b"x")]), "points outside"),
        "traversal inside": (
            with_manifest([*good, entry("voicemail/../../evil", b"x")]),
            "points outside",
        ),
        "absolute": (with_manifest([*good, entry("/etc/cron.d/x", b"x")]), "points outside"),
        "symlink": (
            with_manifest([*good, entry("prompts/en/x.wav", kind=tarfile.SYMTYPE, link="/etc")]),
            "is a link",
        ),
        "hard link": (
            with_manifest(
                [*good, entry("prompts/en/y.wav", kind=tarfile.LNKTYPE, link="yakyak.db")]
            ),
            "is a link",
        ),
        "device": (with_manifest([*good, entry("moh/null", kind=tarfile.CHRTYPE)]), "device"),
        "fifo": (with_manifest([*good, entry("moh/pipe", kind=tarfile.FIFOTYPE)]), "FIFO"),
        "unknown member": (
            with_manifest([*good, entry("run/board/x", b"x")]),
            "not part of a YakYak backup",
        ),
        "hidden member": (
            with_manifest([*good, entry("prompts/.ssh", b"x")]),
            "not part of a YakYak backup",
        ),
        "tampered": (
            pack([*replaced(good, sound, b"RIFF forged"), manifest_for(good)]),
            f"{sound}: its SHA-256 or size does not match",
        ),
        "huge member header": (pack([*good, (huge, None)]), "expands past 2.1 GB"),
        "huge pax header": (gzip_bytes(pax.tobuf(tarfile.USTAR_FORMAT)), "expands past"),
        "truncated": (whole[: len(whole) // 2], "truncated"),
        "newer schema": (
            with_manifest(replaced(good, "yakyak.db", database_bytes(source, CURRENT_VERSION + 1))),
            f"schema version {CURRENT_VERSION + 1}, newer than this YakYak's {CURRENT_VERSION}",
        ),
        "not yakyak's database": (
            with_manifest(replaced(good, "yakyak.db", database_bytes(source, 0))),
            "not a YakYak database",
        ),
        "damaged database": (
            with_manifest(replaced(good, "yakyak.db", database_bytes(source, damage=True))),
            "yakyak.db fails PRAGMA integrity_check: ",
        ),
        "not a database": (
            with_manifest(replaced(good, "yakyak.db", b"hello")),
            "not an SQLite database",
        ),
        "no database": (
            with_manifest([(i, d) for i, d in good if i.name != "yakyak.db"]),
            "yakyak.db is missing",
        ),
        "no manifest": (pack(good), "manifest.json is missing"),
        "newer manifest": (with_manifest(good, format=2), "manifest format 2"),
        "unlisted member": (
            pack([*good, entry("moh/extra.wav", b"x"), manifest_for(good)]),
            "moh/extra.wav is not listed",
        ),
        "missing member": (
            pack([*good[1:], manifest_for(good)]),
            "which the archive lacks",
        ),
        "duplicate": (
            with_manifest([*good, entry("moh/default/tune.wav", b"RIFF tune")]),
            "appears twice",
        ),
        "bad toml": (
            with_manifest(replaced(good, "yakyak.toml", b"[sip\nx=")),
            "yakyak.toml is not valid TOML",
        ),
        "bad setting": (
            with_manifest(replaced(good, "yakyak.toml", b"[sip]\nmin_expires = -5\n")),
            "yakyak.toml: sip.min_expires",
        ),
        "bad certificate": (
            with_manifest(replaced(good, "web-tls.pem", b"-----BEGIN nothing")),
            "web-tls.pem: OpenSSL refuses",
        ),
        "folder over a file": (
            with_manifest([*good, entry("moh/default/tune.wav", kind=tarfile.DIRTYPE)]),
            "moh/default/tune.wav clashes with another member",
        ),
        "file under a file": (
            with_manifest([*good, entry("moh/default/tune.wav/x.wav", b"x")]),
            "clashes with another member",
        ),
        "not gzip": (b"PK\x03\x04 a zip file", "not a readable .tar.gz archive"),
        "not tar": (gzip_bytes(b"plain text, " * 100), "not a readable .tar.gz archive"),
    }


CASE_NAMES = [
    "traversal",
    "traversal inside",
    "absolute",
    "symlink",
    "hard link",
    "device",
    "fifo",
    "unknown member",
    "hidden member",
    "tampered",
    "huge member header",
    "huge pax header",
    "truncated",
    "newer schema",
    "not yakyak's database",
    "damaged database",
    "not a database",
    "no database",
    "no manifest",
    "newer manifest",
    "unlisted member",
    "missing member",
    "duplicate",
    "folder over a file",
    "file under a file",
    "bad toml",
    "bad setting",
    "bad certificate",
    "not gzip",
    "not tar",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_a_bad_archive_is_refused_and_changes_nothing(
    case: str, source: Path, target: Path
) -> None:
    archive, reason = _cases(source)[case]
    before = listing(target)
    with pytest.raises(BackupError, match=None) as refused:
        stage_restore(target, io.BytesIO(archive), free_bytes=PLENTY)
    assert reason in str(refused.value), str(refused.value)
    assert listing(target) == before  # no pending restore, no leftovers
    assert pending_restore(target) is None


def test_every_case_is_tested() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data = make_data(Path(scratch) / "d", "x.example", ("1",), {}, cert=False)
        assert sorted(_cases(data)) == sorted(CASE_NAMES)


def test_a_good_archive_is_refused_without_room_or_past_the_member_count(
    source: Path, target: Path
) -> None:
    archive = archive_of(source)
    before = listing(target)
    limits = Limits()
    with pytest.raises(BackupError, match="of disk space, and only"):
        stage_restore(target, io.BytesIO(archive), free_bytes=limits.reserve + 1000)
    with pytest.raises(BackupError, match="more than 3 members"):
        stage_restore(target, io.BytesIO(archive), limits=Limits(max_members=3), free_bytes=PLENTY)
    with pytest.raises(BackupError, match="expands past 1.0 KB"):
        stage_restore(
            target, io.BytesIO(archive), limits=Limits(max_expanded=1000), free_bytes=PLENTY
        )
    assert listing(target) == before


# -- staging and applying -------------------------------------------------------------------


def test_a_restore_is_staged_then_applied_at_start_up(source: Path, target: Path) -> None:
    old, new = state(target), state(source)
    manifest = stage_restore(target, io.BytesIO(archive_of(source)), free_bytes=PLENTY)
    assert manifest.yakyak_version == "9.9" and len(manifest.files) == 7
    assert state(target) == old  # staged only: the running box is untouched
    assert pending_restore(target) == manifest
    message = apply_pending_restore(target)
    assert message is not None and "restored the backup of 2023-11-14 22:13:20 UTC" in message
    assert state(target) == new
    assert not (target / PENDING).exists() and not (target / APPLYING).exists()
    assert state(target / PREVIOUS) == old  # kept until the restored state has started
    assert apply_pending_restore(target) is None  # nothing more to do
    db = open_database(target / "yakyak.db")  # the restored database opens and migrates
    assert [e.number for e in Directory(db, "new.example").list()] == ["201", "202"]
    db.close()
    assert discard_previous_state(target) and not (target / PREVIOUS).exists()
    assert not discard_previous_state(target)


def test_a_new_upload_replaces_the_pending_one_and_cancel_drops_it(
    source: Path, target: Path, tmp_path: Path
) -> None:
    other = make_data(tmp_path / "other", "other.example", ("301",), {}, cert=False)
    stage_restore(target, io.BytesIO(archive_of(source)), free_bytes=PLENTY)
    second = stage_restore(target, io.BytesIO(archive_of(other)), free_bytes=PLENTY)
    assert pending_restore(target) == second
    assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []
    assert cancel_pending_restore(target) and pending_restore(target) is None
    assert not cancel_pending_restore(target)
    assert apply_pending_restore(target) is None


def test_leftovers_of_an_interrupted_upload_are_removed_at_start_up(target: Path) -> None:
    (target / ".restore-upload-abc").mkdir()
    (target / ".restore-upload-abc" / "yakyak.db").write_bytes(b"half")
    (target / ".backup-xyz.tar.gz").write_bytes(b"half")
    before = state(target)
    assert apply_pending_restore(target) is None
    assert not any(p.name.startswith(".") for p in target.iterdir())
    assert state(target) == before


def _steps() -> list[tuple[str, Callable[[Path], object]]]:
    steps: list[tuple[str, Callable[[Path], object]]] = [("begin", begin_restore)]
    for item in ITEMS:
        steps.append((f"swap {item}", lambda data, item=item: swap_item(data, item)))
    steps.append(("finish", finish_restore))
    return steps


@pytest.mark.parametrize("done", range(len(_steps()) + 1))
def test_a_crash_after_any_step_leaves_the_old_state_or_the_new(
    done: int, source: Path, target: Path
) -> None:
    """Steps run one by one, as if the power went after `done` of them; then the next
    start runs apply_pending_restore before anything opens the database."""
    old, new = state(target), state(source)
    stage_restore(target, io.BytesIO(archive_of(source)), free_bytes=PLENTY)
    for _, step in _steps()[:done]:
        step(target)
    if done == 0:
        assert state(target) == old  # before the commit point: the old state, still pending
    apply_pending_restore(target)
    assert state(target) == new
    assert state(target / PREVIOUS) == old
    assert not (target / APPLYING).exists() and not (target / PENDING).exists()


@pytest.mark.parametrize("crash", [False, True])
def test_the_new_database_is_never_paired_with_the_old_wal(
    crash: bool, source: Path, target: Path
) -> None:
    # The old database with a WAL beside it, as a power cut leaves one.
    db = open_database(target / "yakyak.db")
    db.execute_sql("PRAGMA wal_autocheckpoint=0")
    Directory(db, "old.example").add("105", "password-105", None)
    wal = (target / "yakyak.db-wal").read_bytes()
    db.close()
    (target / "yakyak.db-wal").write_bytes(wal)
    old = state(target)
    assert old[0] == {"101", "105"}
    stage_restore(target, io.BytesIO(archive_of(source)), free_bytes=PLENTY)
    if crash:  # the power goes inside the database's swap, after its WAL moved out
        begin_restore(target)
        (target / "yakyak.db-wal").rename(target / PREVIOUS / "yakyak.db-wal")
    apply_pending_restore(target)
    assert numbers(target) == {"201", "202"}
    assert not (target / "yakyak.db-wal").exists()
    assert (target / PREVIOUS / "yakyak.db-wal").read_bytes() == wal
    assert numbers(target / PREVIOUS) == {"101", "105"}


def test_a_crash_inside_finish_is_finished_at_the_next_start(source: Path, target: Path) -> None:
    stage_restore(target, io.BytesIO(archive_of(source)), free_bytes=PLENTY)
    begin_restore(target)
    for item in ITEMS:
        swap_item(target, item)
    (target / APPLYING / MANIFEST).unlink()  # finish had begun removing restore-applying
    message = apply_pending_restore(target)
    assert message is not None and "restored a backup" in message
    assert state(target) == state(source)


def test_a_backup_without_a_certificate_keeps_the_current_one(tmp_path: Path, target: Path) -> None:
    bare = make_data(tmp_path / "bare", "bare.example", ("401",), {}, cert=False)
    pem = (target / "web-tls.pem").read_bytes()
    stage_restore(target, io.BytesIO(archive_of(bare)), free_bytes=PLENTY)
    apply_pending_restore(target)
    assert numbers(target) == {"401"}
    assert (target / "web-tls.pem").read_bytes() == pem
    assert not (target / "prompts" / "en" / "old.wav").exists()  # folders are replaced whole
