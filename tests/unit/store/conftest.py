"""Fixtures for store tests: a real database file under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from appliance.store.db import open_database
from appliance.store.extensions import Directory

REALM = "pbx.example.com"


class ManualClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "yakyak.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[peewee.SqliteDatabase]:
    database = open_database(db_path)
    yield database
    database.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def directory(db: peewee.SqliteDatabase, clock: ManualClock) -> Directory:
    return Directory(db, REALM, clock)
