from __future__ import annotations

import peewee
import pytest

from appliance.store.errors import StoreError
from appliance.store.lockouts import (
    Lockout,
    LockoutKind,
    clear_lockouts,
    delete_lockout,
    list_lockouts,
    purge_expired,
    upsert_lockout,
)
from appliance.store.settings import all_settings, delete_setting, get_setting, set_setting

NOW = 1_700_000_000.0


def _lock(kind: LockoutKind, key: str, until: float, failures: int = 5) -> Lockout:
    return Lockout(kind, key, until, failures, f"{failures} failures", NOW)


def test_lockouts_upsert_list_and_lift(db: peewee.SqliteDatabase) -> None:
    upsert_lockout(db, _lock(LockoutKind.ADDRESS, "198.51.100.9", NOW + 900))
    upsert_lockout(db, _lock(LockoutKind.ADDRESS, "198.51.100.9", NOW + 1800, failures=9))
    upsert_lockout(db, _lock(LockoutKind.EXTENSION, "101", NOW + 900, failures=20))
    upsert_lockout(db, _lock(LockoutKind.ADDRESS, "203.0.113.5", NOW - 1))
    assert list_lockouts(db) == [
        _lock(LockoutKind.ADDRESS, "198.51.100.9", NOW + 1800, failures=9),
        _lock(LockoutKind.ADDRESS, "203.0.113.5", NOW - 1),
        _lock(LockoutKind.EXTENSION, "101", NOW + 900, failures=20),
    ]
    assert [lock.key for lock in list_lockouts(db, now=NOW)] == ["198.51.100.9", "101"]
    assert purge_expired(db, NOW) == 1
    assert delete_lockout(db, "101", LockoutKind.ADDRESS) == 0
    assert delete_lockout(db, "101") == 1
    assert delete_lockout(db, "101") == 0
    upsert_lockout(db, _lock(LockoutKind.EXTENSION, "102", NOW + 5))
    assert clear_lockouts(db) == 2
    assert list_lockouts(db) == []


def test_lockout_active() -> None:
    lock = _lock(LockoutKind.ADDRESS, "192.0.2.1", NOW)
    assert lock.active(NOW - 0.1) and not lock.active(NOW)


def test_settings_round_trip_json(db: peewee.SqliteDatabase) -> None:
    assert get_setting(db, "voicemail.max_seconds", 120) == 120
    set_setting(db, "voicemail.max_seconds", 300)
    set_setting(db, "night.mode", {"enabled": True, "ring": ["101", "102"]})
    set_setting(db, "voicemail.max_seconds", 240)
    assert get_setting(db, "voicemail.max_seconds") == 240
    assert all_settings(db) == {
        "night.mode": {"enabled": True, "ring": ["101", "102"]},
        "revision.directory": 0,  # seeded by migration 4
        "voicemail.max_seconds": 240,
    }
    assert delete_setting(db, "night.mode")
    assert not delete_setting(db, "night.mode")


def test_settings_refuse_bad_keys_and_values(db: peewee.SqliteDatabase) -> None:
    with pytest.raises(StoreError, match="bad setting key"):
        set_setting(db, "Bad Key", 1)
    with pytest.raises(StoreError, match="not JSON"):
        set_setting(db, "x.nan", float("nan"))
    with pytest.raises(StoreError, match="larger than"):
        set_setting(db, "x.big", "x" * 70_000)
