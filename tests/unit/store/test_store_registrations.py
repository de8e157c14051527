from __future__ import annotations

import dataclasses
from pathlib import Path

import peewee
import pytest

from appliance.pbx.location import Binding
from appliance.store.db import open_database
from appliance.store.errors import StoreError
from appliance.store.registrations import (
    RegistrationWriter,
    count_active,
    load_active,
)

NOW = 1_700_000_000.0


def _binding(aor: str, n: int, expires_at: float = NOW + 3600) -> Binding:
    return Binding(
        aor=aor,
        contact=f"sip:{aor}@192.0.2.{n}:5060;transport=tcp",
        expires_at=expires_at,
        call_id=f"call-{aor}-{n}",
        cseq=n,
        q=0.5 if n % 2 else None,
        transport="tcp",
        source_host=f"192.0.2.{n}",
        source_port=5060 + n,
        user_agent="Yealink SIP-T46S",
        instance="<urn:uuid:00000000-0000-0000-0000-000000000001>",
        path="<sip:edge.example.com;lr>",
    )


def test_queued_changes_commit_as_one_batch(db: peewee.SqliteDatabase) -> None:
    writer = RegistrationWriter(db, start=False)
    bindings = [_binding("101", n) for n in range(1, 51)]
    for binding in bindings:
        writer.upsert(binding)
    writer.delete("101", bindings[0].contact)
    writer.start()
    assert writer.flush(timeout=10)
    assert (writer.stats.batches, writer.stats.operations) == (1, 51)
    assert load_active(db, NOW) == sorted(bindings[1:], key=lambda b: b.contact)
    assert writer.close()


def test_upsert_replaces_the_same_contact(db: peewee.SqliteDatabase) -> None:
    writer = RegistrationWriter(db)
    first = _binding("101", 7)
    refreshed = dataclasses.replace(first, cseq=8, expires_at=NOW + 60, user_agent="new")
    writer.upsert(first)
    writer.upsert(refreshed)
    assert writer.flush(timeout=10)
    assert load_active(db, NOW) == [refreshed]
    writer.close()


def test_close_drains_the_queue_and_a_reopened_database_sees_it(db_path: Path) -> None:
    db = open_database(db_path)
    writer = RegistrationWriter(db)
    writer.upsert(_binding("101", 1))
    writer.upsert(_binding("102", 2))
    writer.upsert(_binding("103", 3))
    writer.delete_aor("103")
    assert writer.close(timeout=10)
    with pytest.raises(StoreError, match="closed"):
        writer.upsert(_binding("104", 4))
    db.close()
    reopened = open_database(db_path)
    try:
        assert [b.aor for b in load_active(reopened, NOW)] == ["101", "102"]
    finally:
        reopened.close()


def test_close_of_a_never_started_writer_still_writes(db: peewee.SqliteDatabase) -> None:
    writer = RegistrationWriter(db, start=False)
    writer.upsert(_binding("101", 1))
    assert writer.close(timeout=10)
    assert len(load_active(db, NOW)) == 1


def test_expired_bindings_are_skipped_and_purged(db: peewee.SqliteDatabase) -> None:
    writer = RegistrationWriter(db)
    writer.upsert(_binding("101", 1, expires_at=NOW - 1))
    writer.upsert(_binding("101", 2, expires_at=NOW))
    writer.upsert(_binding("102", 3, expires_at=NOW + 1))
    assert writer.flush(timeout=10)
    assert [b.source_port for b in load_active(db, NOW)] == [5063]
    assert count_active(db, NOW) == {"102": 1}
    assert count_active(db, NOW - 10) == {"101": 2, "102": 1}
    writer.purge_expired(NOW)
    assert writer.flush(timeout=10)
    assert count_active(db, 0.0) == {"102": 1}
    writer.close()


def test_a_failing_batch_is_counted_and_the_writer_goes_on(
    db: peewee.SqliteDatabase, db_path: Path
) -> None:
    db.execute_sql('ALTER TABLE "registration" RENAME TO "gone"')
    writer = RegistrationWriter(db)
    writer.upsert(_binding("101", 1))
    assert writer.flush(timeout=10)
    assert writer.stats.failed_batches == 1
    db.execute_sql('ALTER TABLE "gone" RENAME TO "registration"')
    writer.upsert(_binding("102", 2))
    assert writer.flush(timeout=10)
    assert [b.aor for b in load_active(db, NOW)] == ["102"]
    writer.close()
