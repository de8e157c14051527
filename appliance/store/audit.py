"""The audit log: who changed what, when and from which address, through the web or API.

Rows name the actor by username (text, not a foreign key) so the history of a deleted
account stays readable. Fields are cut to bounded lengths: the log must never refuse
a change because its description is long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import peewee

from appliance.store.models import AuditEntry

MAX_FIELD: Final = 200
MAX_DETAIL: Final = 1000
MAX_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: float
    actor: str
    action: str
    target: str
    address: str
    detail: str


class AuditLog:
    """The audit log of one database."""

    def __init__(self, db: peewee.SqliteDatabase, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def record(
        self, actor: str, action: str, target: str = "", address: str = "", detail: str = ""
    ) -> int:
        """Append one entry; returns its id. Call it inside the change's transaction."""
        return int(
            AuditEntry.insert(
                at=self._clock(),
                actor=actor[:MAX_FIELD],
                action=action[:MAX_FIELD],
                target=target[:MAX_FIELD],
                address=address[:MAX_FIELD],
                detail=detail[:MAX_DETAIL],
            ).execute(self._db)
        )

    def entries(
        self, limit: int = 100, before: int | None = None, actor: str | None = None
    ) -> list[AuditRecord]:
        """Newest first: at most `limit` (capped at MAX_PAGE) with ids below `before`."""
        query = (
            AuditEntry.select().order_by(AuditEntry.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
        )
        if before is not None:
            query = query.where(AuditEntry.id < before)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        return [
            AuditRecord(
                id=row.id,
                at=row.at,
                actor=row.actor,
                action=row.action,
                target=row.target,
                address=row.address,
                detail=row.detail,
            )
            for row in query.execute(self._db)
        ]
