"""Lockouts of a source address or an extension after repeated authentication failures.

The SIP server decides and writes them; the CLI lists and lifts them by deleting the
row. The server notices through data_version and reloads its in-memory set.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import peewee

from appliance.store.models import Lockout as LockoutRow


class LockoutKind(enum.Enum):
    ADDRESS = "address"  # too many failures from one IP address
    EXTENSION = "extension"  # too many failures against one extension, from anywhere
    # A trusted address (an office NAT) failing for one extension: only that pair is
    # locked, key "ADDRESS/EXTENSION", so the office's other phones keep working.
    ADDRESS_EXTENSION = "address-extension"


@dataclass(frozen=True, slots=True)
class Lockout:
    kind: LockoutKind
    key: str  # the address, or the extension number
    until: float  # Unix time
    failures: int
    reason: str
    created_at: float

    def active(self, now: float) -> bool:
        return now < self.until


def _lockout(row: LockoutRow) -> Lockout:
    return Lockout(
        kind=LockoutKind(row.kind),
        key=row.key,
        until=row.until,
        failures=row.failures,
        reason=row.reason,
        created_at=row.created_at,
    )


def upsert_lockout(db: peewee.SqliteDatabase, lockout: Lockout) -> None:
    """Record a lockout; a newer one for the same kind and key replaces it."""
    values = {
        LockoutRow.until: lockout.until,
        LockoutRow.failures: lockout.failures,
        LockoutRow.reason: lockout.reason,
        LockoutRow.created_at: lockout.created_at,
    }
    LockoutRow.insert(
        {LockoutRow.kind: lockout.kind.value, LockoutRow.key: lockout.key, **values}
    ).on_conflict(conflict_target=[LockoutRow.kind, LockoutRow.key], update=values).execute(db)


def list_lockouts(db: peewee.SqliteDatabase, now: float | None = None) -> list[Lockout]:
    """All lockouts, or only those still in force at `now`, by kind then key."""
    query = LockoutRow.select().order_by(LockoutRow.kind, LockoutRow.key)
    if now is not None:
        query = query.where(LockoutRow.until > now)
    return [_lockout(row) for row in query.execute(db)]


def delete_lockout(db: peewee.SqliteDatabase, key: str, kind: LockoutKind | None = None) -> int:
    """Lift the lockouts of `key` (of any kind unless given); returns how many.

    An address or an extension also lifts the address-extension pairs it is part of.
    """
    pair = LockoutRow.kind == LockoutKind.ADDRESS_EXTENSION.value
    condition = (LockoutRow.key == key) | (
        pair & ((LockoutRow.key.startswith(f"{key}/")) | (LockoutRow.key.endswith(f"/{key}")))
    )
    if kind is not None:
        condition &= LockoutRow.kind == kind.value
    return int(LockoutRow.delete().where(condition).execute(db))


def clear_lockouts(db: peewee.SqliteDatabase) -> int:
    """Lift every lockout; returns how many."""
    return int(LockoutRow.delete().execute(db))


def purge_expired(db: peewee.SqliteDatabase, now: float) -> int:
    return int(LockoutRow.delete().where(LockoutRow.until <= now).execute(db))
