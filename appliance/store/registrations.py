"""Registered contacts on disk, so bindings survive a restart (RFC 3261 §10.3).

At run time the registrar's in-memory location service is the truth; the disk copy
is written behind it by one `RegistrationWriter` thread, so a REGISTER is answered
without waiting for SQLite (an fsync under synchronous=FULL can take tens of ms on
an SD card). The writer is the only run-time writer of the table.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Final

import peewee

from appliance.pbx.location import Binding
from appliance.store.batch_writer import BatchWriter
from appliance.store.models import Registration

logger = logging.getLogger(__name__)

MAX_BATCH: Final = 1000  # operations per transaction; bounds the time the lock is held

# Upserts are the hot path (every REGISTER refresh): one prepared statement run with
# executemany costs a few microseconds a row, where peewee's query builder costs ~100 us
# of Python per row, all of it holding the GIL the event loop needs.
_UPSERT_SQL: Final = (
    'INSERT INTO "registration" ("aor", "contact", "expires_at", "call_id", "cseq", "q", '
    '"transport", "source_host", "source_port", "user_agent", "instance", "path") '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    'ON CONFLICT ("aor", "contact") DO UPDATE SET "expires_at" = excluded."expires_at", '
    '"call_id" = excluded."call_id", "cseq" = excluded."cseq", "q" = excluded."q", '
    '"transport" = excluded."transport", "source_host" = excluded."source_host", '
    '"source_port" = excluded."source_port", "user_agent" = excluded."user_agent", '
    '"instance" = excluded."instance", "path" = excluded."path"'
)


def _upsert_row(b: Binding) -> tuple[object, ...]:
    return (
        b.aor,
        b.contact,
        b.expires_at,
        b.call_id,
        b.cseq,
        b.q,
        b.transport,
        b.source_host,
        b.source_port,
        b.user_agent,
        b.instance,
        b.path,
    )


def _binding(row: Registration) -> Binding:
    return Binding(
        aor=row.aor,
        contact=row.contact,
        expires_at=row.expires_at,
        call_id=row.call_id,
        cseq=row.cseq,
        q=row.q,
        transport=row.transport,
        source_host=row.source_host,
        source_port=row.source_port,
        user_agent=row.user_agent,
        instance=row.instance,
        path=row.path,
    )


def load_active(db: peewee.SqliteDatabase, now: float) -> list[Binding]:
    """Bindings not yet expired at `now` (Unix time), ordered by AOR then contact."""
    query = (
        Registration.select()
        .where(Registration.expires_at > now)
        .order_by(Registration.aor, Registration.contact)
    )
    return [_binding(row) for row in query.execute(db)]


def count_active(db: peewee.SqliteDatabase, now: float) -> dict[str, int]:
    """AOR -> number of contacts not yet expired at `now`."""
    query = (
        Registration.select(Registration.aor, peewee.fn.COUNT(Registration.id))
        .where(Registration.expires_at > now)
        .group_by(Registration.aor)
        .tuples()
    )
    return {aor: count for aor, count in query.execute(db)}


@dataclass(frozen=True, slots=True)
class Upsert:
    binding: Binding


@dataclass(frozen=True, slots=True)
class Delete:
    aor: str
    contact: str


@dataclass(frozen=True, slots=True)
class DeleteAor:
    aor: str  # REGISTER with Contact: * (RFC 3261 §10.2.2), or extension removed


@dataclass(frozen=True, slots=True)
class PurgeExpired:
    now: float


Operation = Upsert | Delete | DeleteAor | PurgeExpired


@dataclass(slots=True)
class WriterStats:
    """Counters for tests and the status page; written by the writer thread only."""

    batches: int = 0
    operations: int = 0
    failed_batches: int = 0


def apply(db: peewee.SqliteDatabase, op: Operation) -> None:
    """Run one operation on `db`; the caller holds the transaction."""
    if isinstance(op, Upsert):
        b = op.binding
        values = {
            Registration.expires_at: b.expires_at,
            Registration.call_id: b.call_id,
            Registration.cseq: b.cseq,
            Registration.q: b.q,
            Registration.transport: b.transport,
            Registration.source_host: b.source_host,
            Registration.source_port: b.source_port,
            Registration.user_agent: b.user_agent,
            Registration.instance: b.instance,
            Registration.path: b.path,
        }
        Registration.insert(
            {Registration.aor: b.aor, Registration.contact: b.contact, **values}
        ).on_conflict(
            conflict_target=[Registration.aor, Registration.contact], update=values
        ).execute(db)
    elif isinstance(op, Delete):
        Registration.delete().where(
            (Registration.aor == op.aor) & (Registration.contact == op.contact)
        ).execute(db)
    elif isinstance(op, DeleteAor):
        Registration.delete().where(Registration.aor == op.aor).execute(db)
    else:
        Registration.delete().where(Registration.expires_at <= op.now).execute(db)


class RegistrationWriter(BatchWriter[Operation]):
    """One thread that applies queued registration changes in batched transactions.

    `submit()` never blocks on SQLite. The thread takes whatever has queued up since
    its last commit, up to MAX_BATCH, and applies it in one transaction: under a
    REGISTER storm that is one fsync per batch instead of one per REGISTER.

    The thread uses `db` from its own thread, and peewee keeps one connection per
    thread, so it owns a connection the event loop never touches.
    """

    def __init__(self, db: peewee.SqliteDatabase, *, start: bool = True) -> None:
        self.stats = WriterStats()
        super().__init__(db, name="registration writer", max_batch=MAX_BATCH, start=start)

    def upsert(self, binding: Binding) -> None:
        self.submit(Upsert(binding))

    def delete(self, aor: str, contact: str) -> None:
        self.submit(Delete(aor, contact))

    def delete_aor(self, aor: str) -> None:
        self.submit(DeleteAor(aor))

    def purge_expired(self, now: float) -> None:
        self.submit(PurgeExpired(now))

    def _apply_all(self, ops: list[Operation]) -> None:
        """Apply in order; runs of upserts go in one executemany, last write per key wins."""
        run: dict[tuple[str, str], tuple[object, ...]] = {}
        for op in ops:
            if isinstance(op, Upsert):
                run[(op.binding.aor, op.binding.contact)] = _upsert_row(op.binding)
                continue
            if run:
                self._db.connection().executemany(_UPSERT_SQL, list(run.values()))
                run.clear()
            apply(self._db, op)
        if run:
            self._db.connection().executemany(_UPSERT_SQL, list(run.values()))

    def write(self, items: list[Operation]) -> None:
        try:
            with self._db.atomic():
                self._apply_all(items)
        except (peewee.DatabaseError, sqlite3.DatabaseError):
            # Losing this batch costs a re-REGISTER after a restart; losing the
            # thread would lose every later one. Count it, log it, go on.
            self.stats.failed_batches += 1
            logger.exception("dropped %d registration changes", len(items))
        else:
            self.stats.batches += 1
            self.stats.operations += len(items)
