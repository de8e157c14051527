from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import peewee
import pytest

from appliance.pbx.location import Binding
from appliance.sip.digest_hash import ha1
from appliance.store.db import data_version, open_database, schema_version
from appliance.store.errors import SchemaTooNewError
from appliance.store.extensions import Directory
from appliance.store.lockouts import Lockout, LockoutKind, list_lockouts, upsert_lockout
from appliance.store.migrations import (
    CURRENT_VERSION,
    DIRECTORY_REVISION_KEY,
    MIGRATIONS,
    migrate_to_current,
)
from appliance.store.models import MODELS
from appliance.store.registrations import RegistrationWriter, load_active
from appliance.store.settings import get_setting, set_setting
from appliance.store.users import Accounts

V1_FIXTURE = Path(__file__).parents[2] / "data" / "schema_v1.sql"


def _schema(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {(name, " ".join(sql.split())) for name, sql in rows}


def _load_v1(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript(V1_FIXTURE.read_text())
    con.close()


def test_fresh_database_is_at_current_version(db: peewee.SqliteDatabase) -> None:
    assert schema_version(db) == CURRENT_VERSION == len(MIGRATIONS) >= 2


def test_pragmas_are_set_on_every_connection(db: peewee.SqliteDatabase) -> None:
    def pragmas() -> tuple[object, ...]:
        return tuple(
            db.execute_sql(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        )

    seen: list[tuple[object, ...]] = []
    thread = threading.Thread(target=lambda: (seen.append(pragmas()), db.close()))
    thread.start()
    thread.join()
    assert pragmas() == ("wal", 1, 2, 5000)  # synchronous 2 == FULL
    assert seen == [("wal", 1, 2, 5000)]


def test_models_match_the_migrated_schema(db: peewee.SqliteDatabase) -> None:
    for model in MODELS:
        table = model._meta.table_name
        in_db = {column.name for column in db.get_columns(table)}
        assert in_db == set(model._meta.columns), table


def test_v1_fixture_is_what_migration_1_creates(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    v1db = peewee.SqliteDatabase(str(fresh))
    migrate_to_current(v1db, MIGRATIONS[:1])
    v1db.close()
    fixture = tmp_path / "fixture.db"
    _load_v1(fixture)
    assert _schema(fixture) == _schema(fresh)


def test_v1_database_migrates_to_current_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _load_v1(path)
    db = open_database(path)
    try:
        assert schema_version(db) == CURRENT_VERSION
        directory = Directory(db, "yakyak.local")
        assert [(e.number, e.name, e.enabled) for e in directory.list()] == [
            ("101", "Reception", True),
            ("102", None, False),
        ]
        creds = directory.load_credentials()
        assert creds["101"].ha1["SHA-256"] == ha1(
            "SHA-256", "101", "yakyak.local", "v1-password-101"
        )
        assert creds["102"].algorithms == ("MD5",)
        [binding] = load_active(db, now=1_700_000_000.0)
        assert (binding.contact, binding.cseq, binding.user_agent) == (
            "sip:101@192.0.2.7:5062",
            314,
            "",
        )
        assert [lock.key for lock in list_lockouts(db)] == ["198.51.100.9"]
        accounts = Accounts(db)
        assert accounts.verify("admin", "v1-admin-password") is not None
        set_setting(db, "general.greeting", "hello")  # table added by a later migration
        assert get_setting(db, "general.greeting") == "hello"
    finally:
        db.close()


def test_database_newer_than_the_code_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as con:
        con.execute(f"PRAGMA user_version = {CURRENT_VERSION + 5}")
    with pytest.raises(SchemaTooNewError, match=rf"version {CURRENT_VERSION + 5} is newer"):
        open_database(db_path)


def test_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    def broken(db: peewee.SqliteDatabase) -> None:
        db.execute_sql('CREATE TABLE "half_done" ("id" INTEGER)')
        raise RuntimeError("disk on fire")

    db = peewee.SqliteDatabase(str(tmp_path / "x.db"))
    with pytest.raises(RuntimeError):
        migrate_to_current(db, (*MIGRATIONS[:1], broken))
    assert schema_version(db) == 1
    assert "half_done" not in db.get_tables()
    db.close()


def test_data_version_notices_other_connections_only(db_path: Path) -> None:
    server = open_database(db_path)
    cli = open_database(db_path)
    try:
        before = data_version(server)
        set_setting(server, "own.write", 1)
        assert data_version(server) == before  # our own commit is not news
        set_setting(cli, "cli.write", 2)
        assert data_version(server) != before
    finally:
        server.close()
        cli.close()


def test_two_open_databases_do_not_share_state(tmp_path: Path) -> None:
    first = open_database(tmp_path / "a.db")
    second = open_database(tmp_path / "b.db")
    try:
        Directory(first, "a.example").add("201", "password-201")
        assert Directory(second, "b.example").list() == []
        assert [e.number for e in Directory(first, "a.example").list()] == ["201"]
    finally:
        first.close()
        second.close()


def test_directory_revision_moves_with_extensions_and_lockouts_only(
    db: peewee.SqliteDatabase,
) -> None:
    def revision() -> object:
        return get_setting(db, DIRECTORY_REVISION_KEY)

    assert revision() == 0
    directory = Directory(db, "x.example")
    directory.add("101", "password-1")
    after_add = revision()
    assert isinstance(after_add, int) and after_add > 0
    load_before = revision()
    RegistrationWriter(db, start=False).close()  # nothing queued
    writer = RegistrationWriter(db)
    writer.upsert(Binding("101", "sip:101@192.0.2.1", 4e9, "cid", 1))
    assert writer.close(timeout=10)
    assert revision() == load_before  # registrations do not count
    upsert_lockout(db, Lockout(LockoutKind.ADDRESS, "192.0.2.9", 4e9, 5, "x", 0.0))
    after_lock = revision()
    assert isinstance(after_lock, int) and after_lock > after_add
    directory.delete("101")
    after_delete = revision()
    assert isinstance(after_delete, int) and after_delete > after_lock
