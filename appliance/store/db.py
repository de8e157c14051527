"""Opening the SQLite database: pragmas chosen for power-cut safety, then migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import peewee

from appliance.store.migrations import migrate_to_current

# Applied by peewee on every new connection, so also on the writer thread's own one.
PRAGMAS: Final[tuple[tuple[str, object], ...]] = (
    # WAL: readers never block the writer; with synchronous=FULL a commit is on disk
    # before it returns, so a power cut loses at most the commit in flight and never
    # corrupts the file.
    ("journal_mode", "wal"),
    ("synchronous", "full"),
    ("foreign_keys", 1),  # off by default in SQLite; our CASCADEs depend on it
    ("busy_timeout", 5000),  # ms to wait for the other process (CLI vs server) to commit
)


def open_database(path: Path, *, migrate: bool = True) -> peewee.SqliteDatabase:
    """A new database object for the file at `path`, migrated to the current schema.

    Each call returns its own object; models are never bound to it (queries pass it
    explicitly), so two databases can be open in one process, as tests do.
    Raises `SchemaTooNewError` when the file was written by a newer YakYak.
    """
    db = peewee.SqliteDatabase(None)
    db.init(str(path), pragmas=list(PRAGMAS))
    if migrate:
        try:
            migrate_to_current(db)
        except BaseException:
            db.close()
            raise
    return db


def data_version(db: peewee.SqliteDatabase) -> int:
    """PRAGMA data_version of this thread's connection.

    It changes when *another* connection commits (the CLI, or the registration writer
    thread), never for this connection's own commits: a cheap "reload?" check for the
    server. Compare values only within one thread and one connection.
    """
    return int(db.execute_sql("PRAGMA data_version").fetchone()[0])


def schema_version(db: peewee.SqliteDatabase) -> int:
    """PRAGMA user_version: the number of migrations applied."""
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])
