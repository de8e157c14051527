"""Nightly backups kept N days, and the database check (integrity, foreign keys)."""

from __future__ import annotations

import logging
import sqlite3
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.config import DATABASE_FILE
from appliance.store.db import open_database
from appliance.system import maintenance
from appliance.system.backup import MANIFEST
from appliance.system.maintenance import (
    DAY,
    MaintenanceError,
    archive_name,
    archive_time,
    check_database,
    nightly_backup,
)

NOW = 1_772_366_400.0  # 2026-03-01 12:00:00 UTC

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """The CLI commands set up logging for the journal; put the root logger back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


@pytest.fixture
def data(tmp_path: Path, capsys: Capture) -> Path:
    folder = tmp_path / "var"
    assert main(["init", "--data", str(folder), "--admin-password", "admin-pass-1"]) == 0
    capsys.readouterr()
    return folder


def test_archive_names_carry_their_time() -> None:
    assert archive_name(NOW) == "yakyak-20260301T120000Z.tar.gz"
    assert archive_time(archive_name(NOW)) == NOW
    for other in ("yakyak-20260301T120000Z.tar", "notes.txt", ".yakyak-20260301T120000Z.tar.gz"):
        assert archive_time(other) is None


def test_nightly_backup_writes_a_full_archive_readable_by_the_owner_only(data: Path) -> None:
    run = nightly_backup(data, now=NOW, keep_days=14, version="9.9")

    assert run.path == data / "backups" / "yakyak-20260301T120000Z.tar.gz"
    assert run.size == run.path.stat().st_size and run.removed == ()
    assert stat.S_IMODE(run.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(run.path.parent.stat().st_mode) == 0o700
    with tarfile.open(run.path) as tar:
        names = tar.getnames()
    assert DATABASE_FILE in names and "yakyak.toml" in names and names[-1] == MANIFEST
    assert [p.name for p in run.path.parent.iterdir()] == [run.path.name]


def test_backups_older_than_the_kept_days_go_and_nothing_else(data: Path) -> None:
    folder = data / "backups"
    folder.mkdir()
    old = folder / archive_name(NOW - 8 * DAY)
    recent = folder / archive_name(NOW - 6 * DAY)
    mine = folder / "before-upgrade.tar.gz"  # an installer's own file
    partial = folder / f".{archive_name(NOW - DAY)}.part"  # a crash left it
    for path in (old, recent, mine, partial):
        path.write_bytes(b"x")

    run = nightly_backup(data, now=NOW, keep_days=7)

    assert run.removed == (old,)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [recent.name, mine.name, run.path.name]
    )


def test_a_clock_far_ahead_still_keeps_the_new_backup(data: Path) -> None:
    first = nightly_backup(data, now=NOW, keep_days=1)
    later = nightly_backup(data, now=NOW + 400 * DAY, keep_days=1)
    assert later.removed == (first.path,)
    assert list((data / "backups").iterdir()) == [later.path]


def test_backup_refuses_bad_keep_days_and_a_folder_without_database(
    data: Path, tmp_path: Path
) -> None:
    with pytest.raises(MaintenanceError, match="keep days must be 1 to"):
        nightly_backup(data, now=NOW, keep_days=0)
    with pytest.raises(MaintenanceError, match="no database to back up"):
        nightly_backup(tmp_path / "empty", now=NOW, keep_days=7)


def test_cli_backup(data: Path, capsys: Capture) -> None:
    assert main(["backup", "--data", str(data), "--keep-days", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"backup written: {data / 'backups'}/yakyak-")
    assert main(["backup", "--data", str(data), "--keep-days", "0"]) == 1
    assert "keep days must be 1 to" in capsys.readouterr().err


def test_a_healthy_live_database_passes(data: Path) -> None:
    db = open_database(data / DATABASE_FILE)  # the server holds it open, in WAL mode
    try:
        db.execute_sql("CREATE TABLE scratch (x)")
        check = check_database(data / DATABASE_FILE)
    finally:
        db.close()
    assert check.ok and check.integrity == () and check.foreign_keys == ()


def _orphan_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE extension (id INTEGER PRIMARY KEY);
        CREATE TABLE mailbox (id INTEGER PRIMARY KEY,
                              extension_id INTEGER REFERENCES extension (id));
        INSERT INTO extension VALUES (1);
        INSERT INTO mailbox VALUES (10, 1), (11, 7);
        """
    )
    db.commit()
    db.close()


def test_rows_pointing_at_nothing_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / DATABASE_FILE
    _orphan_database(path)

    check = check_database(path)

    assert not check.ok and check.integrity == ()
    assert check.foreign_keys == ("mailbox row 11: no extension row for foreign key 0",)
    with caplog.at_level(logging.INFO, logger=maintenance.__name__):
        maintenance.report(path, check)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith(f"database check FAILED: {path}: 0 integrity problem(s), 1 broken")
    assert errors[1] == "foreign_key_check: mailbox row 11: no extension row for foreign key 0"


def test_a_damaged_file_fails_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILE
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute("CREATE INDEX t_x ON t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(f"row {i:05d}",) for i in range(2000)])
    db.commit()
    db.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    raw[3 * page + 100 : 3 * page + 400] = b"\xff" * 300  # scribble over a b-tree page
    path.write_bytes(bytes(raw))

    check = check_database(path)

    assert not check.ok and check.integrity


def test_a_file_that_is_no_database_fails(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILE
    path.write_bytes(b"not a database at all" * 100)
    check = check_database(path)
    assert not check.ok and "not a database" in check.integrity[0]


def test_cli_dbcheck_exit_codes(data: Path, tmp_path: Path, capsys: Capture) -> None:
    assert main(["dbcheck", "--data", str(data)]) == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    _orphan_database(broken / DATABASE_FILE)
    assert main(["dbcheck", "--data", str(broken)]) == 1
    assert main(["dbcheck", "--data", str(tmp_path / "nothing")]) == 1
    assert "no database" in capsys.readouterr().err
