"""Nightly upkeep run by systemd timers: backups kept N days, and a database check.

`nightly_backup` writes the same archive as the web UI's download (`backup.create_backup`)
into ``DATA/backups/yakyak-YYYYMMDDTHHMMSSZ.tar.gz``: to a hidden temporary name,
fsync'd and renamed, so a power cut never leaves half an archive under a real name.
Archives older than the kept days go, judged by the time in their name (not the file's
mtime, which a copy or a restore changes); the newest one always stays, so a box whose
clock jumped forward keeps at least one. The folder is on the data partition: it
guards against a bad change or a corrupted database, not a dead SD card, for which the
installer downloads a backup from the web UI.

`check_database` runs ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check`` on the
live database through a read-only connection (WAL: the running server keeps writing).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from appliance.config import DATABASE_FILE
from appliance.system.backup import create_backup
from appliance.system.files import fsync_folder

log = logging.getLogger(__name__)

BACKUP_FOLDER: Final = "backups"
DEFAULT_KEEP_DAYS: Final = 14
MAX_KEEP_DAYS: Final = 3650
DAY: Final = 86_400.0
_ARCHIVE: Final = re.compile(r"yakyak-(\d{8}T\d{6}Z)\.tar\.gz")
_STAMP: Final = "%Y%m%dT%H%M%SZ"
_PARTIAL_PREFIX: Final = ".yakyak-"
MAX_REPORTED: Final = 100  # problems a check lists; integrity_check stops there too
BUSY_TIMEOUT: Final = 30.0  # s: the server's writer commits in milliseconds


class MaintenanceError(Exception):
    """A backup or check that could not be done; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupRun:
    path: Path
    size: int
    removed: tuple[Path, ...]  # older archives deleted
    skipped: tuple[str, ...]  # data files the archive left out (links, odd names)


@dataclass(frozen=True, slots=True)
class DatabaseCheck:
    integrity: tuple[str, ...]  # PRAGMA integrity_check's lines, empty when "ok"
    foreign_keys: tuple[str, ...]  # one line per row that points at nothing

    @property
    def ok(self) -> bool:
        return not self.integrity and not self.foreign_keys


def archive_name(now: float) -> str:
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return f"yakyak-{moment.strftime(_STAMP)}.tar.gz"


def archive_time(name: str) -> float | None:
    """The Unix time in an archive's name, or None if it is not one of ours."""
    match = _ARCHIVE.fullmatch(name)
    if match is None:
        return None
    moment = datetime.datetime.strptime(match.group(1), _STAMP)
    return moment.replace(tzinfo=datetime.UTC).timestamp()


def nightly_backup(
    data_dir: Path, *, now: float, keep_days: int, version: str | None = None
) -> BackupRun:
    """Write today's archive into DATA/backups and remove those older than `keep_days`."""
    if not 1 <= keep_days <= MAX_KEEP_DAYS:
        raise MaintenanceError(f"keep days must be 1 to {MAX_KEEP_DAYS}, got {keep_days}")
    if not (data_dir / DATABASE_FILE).is_file():
        raise MaintenanceError(f"{data_dir}: no database to back up")
    folder = data_dir / BACKUP_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    _remove_partials(folder)
    target = folder / archive_name(now)
    partial = folder / f"{_PARTIAL_PREFIX}{target.name}.part"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            _, skipped = create_backup(data_dir, f, now=now, version=version)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_folder(folder)
    removed = prune_backups(folder, now=now, keep_days=keep_days, keep=target)
    log.info(
        "backup written: %s (%d bytes); %d older than %d days removed",
        target,
        size,
        len(removed),
        keep_days,
    )
    return BackupRun(target, size, tuple(removed), tuple(skipped))


def prune_backups(folder: Path, *, now: float, keep_days: int, keep: Path) -> list[Path]:
    """Delete our archives in `folder` made more than `keep_days` before `now`, never
    `keep` (the newest); anything else in the folder is left alone."""
    cutoff = now - keep_days * DAY
    removed = []
    for entry in sorted(folder.iterdir()):
        made = archive_time(entry.name)
        if made is None or entry == keep or made >= cutoff or not entry.is_file():
            continue
        entry.unlink()
        removed.append(entry)
    if removed:
        fsync_folder(folder)
    return removed


def _remove_partials(folder: Path) -> None:
    """Archives a crash or a full disk interrupted."""
    for entry in folder.iterdir():
        if entry.name.startswith(_PARTIAL_PREFIX) and entry.name.endswith(".part"):
            log.warning("removing %s, left by an interrupted backup", entry)
            entry.unlink()


def check_database(path: Path) -> DatabaseCheck:
    """Integrity and foreign keys of the database at `path`, through a read-only
    connection; MaintenanceError if it cannot be opened or read at all."""
    if not path.is_file():
        raise MaintenanceError(f"{path}: no database")
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT
        )
    except sqlite3.Error as exc:
        raise MaintenanceError(f"{path}: cannot open: {exc}") from None
    try:
        connection.execute("PRAGMA trusted_schema=OFF")  # run no SQL the file defines
        rows = connection.execute(f"PRAGMA integrity_check({MAX_REPORTED})").fetchall()
        keys = connection.execute("PRAGMA foreign_key_check").fetchmany(MAX_REPORTED)
    except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
        return DatabaseCheck((str(exc),), ())
    finally:
        connection.close()
    lines = [line for row in rows for line in str(row[0]).splitlines()]
    integrity = () if lines == ["ok"] else tuple(lines)
    foreign = tuple(
        f"{table} row {rowid}: no {parent} row for foreign key {fkid}"
        for table, rowid, parent, fkid in keys
    )
    return DatabaseCheck(integrity, foreign)


def report(path: Path, check: DatabaseCheck) -> None:
    """Log the outcome: one info line when fine, an error per problem otherwise."""
    if check.ok:
        log.info("database check: %s passes integrity_check and foreign_key_check", path)
        return
    log.error(
        "database check FAILED: %s: %d integrity problem(s), %d broken foreign key(s); "
        "restore the latest good backup from %s",
        path,
        len(check.integrity),
        len(check.foreign_keys),
        path.parent / BACKUP_FOLDER,
    )
    for line in check.integrity:
        log.error("integrity_check: %s", line)
    for line in check.foreign_keys:
        log.error("foreign_key_check: %s", line)
