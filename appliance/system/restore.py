"""Restoring a backup: a checked archive staged beside the data, and put in place at
start-up, before anything opens the database (the steps and why: ``backup``)."""

from __future__ import annotations

import datetime
import fcntl
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from appliance.config import DATABASE_FILE
from appliance.system.backup import (
    APPLYING,
    DB_SIDECARS,
    ITEMS,
    MANIFEST,
    PENDING,
    PREVIOUS,
    TEMP_PREFIXES,
    BackupError,
    Limits,
    Manifest,
    check_archive,
)
from appliance.system.files import fsync_folder

log = logging.getLogger(__name__)


# -- staging a restore -----------------------------------------------------------------


def _fsync_folders(root: Path) -> None:
    """fsync every folder under `root`, deepest first (files were synced as written)."""
    for folder, _, _ in os.walk(root, topdown=False):
        fsync_folder(Path(folder))


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """One restore change at a time (two uploads from two web threads, say); flock on
    the data folder itself, so no lock file is left behind."""
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _discard(data_dir: Path, folder: Path) -> None:
    """Remove `folder` as one step: renamed out of sight first, then deleted."""
    trash = data_dir / f"{TEMP_PREFIXES[2]}{secrets.token_hex(4)}"
    os.rename(folder, trash)
    fsync_folder(data_dir)
    shutil.rmtree(trash, ignore_errors=True)


def stage_restore(
    data_dir: Path,
    source: BinaryIO,
    *,
    limits: Limits | None = None,
    free_bytes: int | None = None,
) -> Manifest:
    """Check the archive in `source` and make it the pending restore; its manifest.

    BackupError, and the data folder as it was, if anything is wrong. A restore
    pending already is replaced by this one.
    """
    limits = limits or Limits()
    free = shutil.disk_usage(data_dir).free if free_bytes is None else free_bytes
    staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIXES[1], dir=data_dir))
    try:
        manifest = check_archive(source, staging, data_dir, limits, free)
        _fsync_folders(staging)
        with _locked(data_dir):
            pending = data_dir / PENDING
            if pending.exists():
                _discard(data_dir, pending)
            os.rename(staging, pending)
            fsync_folder(data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("restore staged: the backup of %s, %d files", _when(manifest), len(manifest.files))
    return manifest


def pending_restore(data_dir: Path) -> Manifest | None:
    """The manifest of the restore waiting for the next start, if there is one."""
    try:
        return Manifest.parse((data_dir / PENDING / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    except BackupError as exc:  # checked when staged; only a hand edit gets here
        log.error("%s: %s", data_dir / PENDING, exc)
        return None


def cancel_pending_restore(data_dir: Path) -> bool:
    """Drop the pending restore; False if there was none."""
    with _locked(data_dir):
        pending = data_dir / PENDING
        if not pending.exists():
            return False
        _discard(data_dir, pending)
    return True


def previous_state_kept(data_dir: Path) -> bool:
    return (data_dir / PREVIOUS).is_dir()


# -- applying a restore at start-up ------------------------------------------------------


def begin_restore(data_dir: Path) -> None:
    """Step 1: an empty restore-previous, then the commit point (pending -> applying)."""
    previous = data_dir / PREVIOUS
    if previous.exists():
        shutil.rmtree(previous)  # the state before an earlier restore, long superseded
    previous.mkdir()
    fsync_folder(data_dir)
    os.rename(data_dir / PENDING, data_dir / APPLYING)
    fsync_folder(data_dir)


def swap_item(data_dir: Path, item: str) -> bool:
    """Step 2, for one item: the current one into restore-previous, the new one into
    place. Idempotent; False when there is nothing (more) to move in."""
    applying = data_dir / APPLYING
    previous = data_dir / PREVIOUS
    new = applying / item
    if not new.exists():
        return False  # moved in already, or an optional item the backup lacks
    previous.mkdir(exist_ok=True)
    # The database's -wal last but one: never leave the old WAL beside the new file,
    # where SQLite would replay it into the wrong database.
    olds = (*DB_SIDECARS, DATABASE_FILE) if item == DATABASE_FILE else (item,)
    moved = False
    for name in olds:
        old = data_dir / name
        if old.exists() or old.is_symlink():
            os.rename(old, previous / name)
            moved = True
    if moved:
        fsync_folder(previous)
        fsync_folder(data_dir)
    os.rename(new, data_dir / item)
    fsync_folder(data_dir)
    fsync_folder(applying)
    return True


def finish_restore(data_dir: Path) -> str:
    """Step 3: remove restore-applying; the message for the log."""
    applying = data_dir / APPLYING
    try:
        manifest: Manifest | None = Manifest.parse((applying / MANIFEST).read_bytes())
    except (OSError, BackupError):
        manifest = None  # a crash in an earlier finish got that far
    shutil.rmtree(applying)
    fsync_folder(data_dir)
    what = "a backup" if manifest is None else f"the backup of {_when(manifest)}"
    made_by = "" if manifest is None else f" (YakYak {manifest.yakyak_version})"
    return (
        f"restored {what}{made_by}; the state before it is kept in "
        f"{data_dir / PREVIOUS} until this start succeeds"
    )


def _remove_leftovers(data_dir: Path) -> None:
    """Temporary folders and files of backups and uploads a crash interrupted."""
    removed = False
    for entry in data_dir.iterdir():
        if entry.name.startswith(TEMP_PREFIXES) and not entry.is_symlink():
            log.warning("removing %s, left by an interrupted backup or restore", entry)
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed = True
    if removed:
        fsync_folder(data_dir)


def apply_pending_restore(data_dir: Path) -> str | None:
    """Put a staged restore in place, or finish one a crash interrupted; call it at
    start-up before anything opens the database. A message for the log, or None when
    there was nothing to do."""
    if not data_dir.is_dir():
        return None
    _remove_leftovers(data_dir)
    if not (data_dir / APPLYING).is_dir():
        if not (data_dir / PENDING).is_dir():
            return None
        begin_restore(data_dir)
    for item in ITEMS:
        swap_item(data_dir, item)
    return finish_restore(data_dir)


def discard_previous_state(data_dir: Path) -> bool:
    """Remove restore-previous once the restored state has started; False if absent."""
    previous = data_dir / PREVIOUS
    if not previous.is_dir():
        return False
    _discard(data_dir, previous)
    return True


def _when(manifest: Manifest) -> str:
    moment = datetime.datetime.fromtimestamp(manifest.created_at, datetime.UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
