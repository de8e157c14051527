"""Web sessions, API tokens and the audit log in SQLite; the v7 migration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import peewee
import pytest

from appliance.store.api_tokens import MAX_TOKENS_PER_USER, ApiTokens
from appliance.store.audit import MAX_DETAIL, AuditLog
from appliance.store.db import open_database, schema_version
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.migrations import CURRENT_VERSION, MIGRATIONS, migrate_to_current
from appliance.store.permissions import SYSTEM_ROLES, check_permissions, grants
from appliance.store.users import Accounts
from appliance.store.web_sessions import SessionPolicy, WebSessions

if TYPE_CHECKING:  # conftest is imported by pytest, not at run time (which one loads varies)
    from conftest import ManualClock

POLICY = SessionPolicy(idle=100.0, absolute=1000.0, touch_every=10.0)


@pytest.fixture
def accounts(db: peewee.SqliteDatabase) -> Accounts:
    accounts = Accounts(db)
    accounts.create_user("ann", "ann-password", "administrator")
    accounts.create_user("bob", "bob-password", "user")
    return accounts


def test_session_round_trip_and_expiry(
    db: peewee.SqliteDatabase, accounts: Accounts, clock: ManualClock, db_path: Path
) -> None:
    sessions = WebSessions(db, POLICY, clock)
    token, info = sessions.create("ann", "192.0.2.1")
    assert (info.username, info.address, len(info.csrf_token)) == ("ann", "192.0.2.1", 43)
    assert sessions.lookup(token) == info
    clock.now += 99
    assert sessions.lookup(token) is not None
    clock.now += 99  # idle 99 s since the last touch
    assert sessions.lookup(token) is not None
    clock.now += 101
    assert sessions.lookup(token) is None
    assert sessions.count_for_user("ann") == 0  # deleted when found expired
    db.close()
    assert token.encode() not in db_path.read_bytes()


def test_absolute_expiry_and_touch_throttling(
    db: peewee.SqliteDatabase, accounts: Accounts, clock: ManualClock
) -> None:
    sessions = WebSessions(db, POLICY, clock)
    token, info = sessions.create("ann", "192.0.2.1")
    clock.now += 5
    assert sessions.lookup(token).last_seen == info.last_seen  # type: ignore[union-attr]
    while clock.now + 50 < info.created_at + 1000:
        clock.now += 50
        assert sessions.lookup(token) is not None
    clock.now = info.created_at + 1000
    assert sessions.lookup(token) is None


def test_sessions_survive_reopening_and_end_with_the_user(
    db_path: Path, accounts: Accounts, clock: ManualClock
) -> None:
    token, _ = WebSessions(open_database(db_path), POLICY, clock).create("bob", "")
    again = open_database(db_path)
    sessions = WebSessions(again, POLICY, clock)
    assert sessions.lookup(token) is not None
    Accounts(again).delete_user("bob")
    assert sessions.lookup(token) is None
    again.close()


def test_malformed_cookies_and_other_sessions(
    db: peewee.SqliteDatabase, accounts: Accounts, clock: ManualClock
) -> None:
    sessions = WebSessions(db, POLICY, clock)
    for bad in ("", "x", "a" * 44, "' OR 1=1 --" + "a" * 32):
        assert sessions.lookup(bad) is None and not sessions.delete(bad)
    keep, kept = sessions.create("ann", "")
    other, _ = sessions.create("ann", "")
    assert sessions.delete_for_user("ann", keep_id=kept.id) == 1
    assert sessions.lookup(keep) is not None and sessions.lookup(other) is None
    with pytest.raises(NotFoundError):
        sessions.create("nobody", "")
    clock.now += 1000
    assert sessions.purge_expired() == 1


def test_api_tokens(db: peewee.SqliteDatabase, accounts: Accounts, clock: ManualClock) -> None:
    tokens = ApiTokens(db, clock)
    secret, info = tokens.create("ann", "  backup  ")
    assert info.name == "backup" and info.last_used_at is None
    assert secret.startswith("yk_") and info.prefix == secret[:11]
    clock.now += 5
    assert tokens.authenticate(secret) == "ann"
    assert tokens.get(info.id).last_used_at == clock.now
    assert tokens.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert tokens.authenticate("Bearer " + secret) is None
    with pytest.raises(NotFoundError):
        tokens.revoke(info.id, "bob")
    assert tokens.revoke(info.id, "ann").id == info.id
    assert tokens.list() == []
    assert tokens.authenticate(secret) is None
    with pytest.raises(StoreError, match="token name"):
        tokens.create("ann", "\x00")


def test_token_count_is_bounded(db: peewee.SqliteDatabase, accounts: Accounts) -> None:
    tokens = ApiTokens(db)
    for n in range(MAX_TOKENS_PER_USER):
        tokens.create("bob", f"t{n}")
    with pytest.raises(StoreError, match="at most 50 tokens"):
        tokens.create("bob", "one more")
    assert len(tokens.list("bob")) == MAX_TOKENS_PER_USER and tokens.list("ann") == []


def test_audit_log(db: peewee.SqliteDatabase, clock: ManualClock) -> None:
    audit = AuditLog(db, clock)
    first = audit.record("ann", "user.create", "bob", "192.0.2.1", "role user")
    audit.record("bob", "login", "bob", "192.0.2.2", "x" * 5000)
    entries = audit.entries()
    assert [e.actor for e in entries] == ["bob", "ann"]
    assert len(entries[0].detail) == MAX_DETAIL
    assert audit.entries(before=first + 1) == entries[1:]
    assert [e.action for e in audit.entries(actor="ann")] == ["user.create"]
    assert entries[1].at == clock.now


def test_v6_database_migrates_to_v7(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    old = peewee.SqliteDatabase(str(path), pragmas={"foreign_keys": 1})
    migrate_to_current(old, MIGRATIONS[:6])
    # A v6 administrator lacks the permissions added with v7.
    old.execute_sql(
        'DELETE FROM "role_permission" WHERE "permission" LIKE ? OR "permission" LIKE ?',
        ("extension:%", "audit:%"),
    )
    old.close()
    db = open_database(path)
    try:
        assert schema_version(db) == CURRENT_VERSION >= 7
        assert {"web_session", "api_token", "audit_entry"} <= set(db.get_tables())
        roles = {r.name: r for r in Accounts(db).list_roles()}
        for name, (_, permissions) in SYSTEM_ROLES.items():
            assert roles[name].permissions == check_permissions(permissions)
        assert grants(roles["user"].permissions, "extension:read_own")
        assert not grants(roles["user"].permissions, "extension:read")
        assert grants(roles["operator"].permissions, "extension:read_own")
    finally:
        db.close()
