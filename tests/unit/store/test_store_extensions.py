from __future__ import annotations

from pathlib import Path

import peewee
import pytest
from playhouse.test_utils import count_queries

from appliance.pbx.location import Binding
from appliance.sip.digest_hash import ALGORITHMS, ha1
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.extensions import Directory
from appliance.store.models import SipCredential
from appliance.store.registrations import Upsert, apply, load_active

REALM = "pbx.example.com"  # what the directory fixture uses
START = 1_700_000_000.0  # the clock fixture's time
SECRET = "Plaintext-Canary-7d1f"


def test_add_stores_one_ha1_per_algorithm(directory: Directory, db: peewee.SqliteDatabase) -> None:
    info = directory.add("101", SECRET, name="Reception", email="desk@example.com")
    assert (info.number, info.name, info.email, info.created_at) == (
        "101",
        "Reception",
        "desk@example.com",
        START,
    )
    rows = SipCredential.select().execute(db)
    assert {(r.algorithm, r.realm, r.ha1) for r in rows} == {
        (a, REALM, ha1(a, "101", REALM, SECRET)) for a in ALGORITHMS
    }


def test_plaintext_password_is_nowhere_in_the_database_files(
    db_path: Path, db: peewee.SqliteDatabase, directory: Directory
) -> None:
    directory.add("101", SECRET)
    directory.set_password("101", SECRET + "-2")

    def dump() -> bytes:
        return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))

    assert SECRET.encode() not in dump()  # database and WAL while open
    db.close()
    assert SECRET.encode() not in dump()  # after the checkpoint


@pytest.mark.parametrize(
    ("number", "password", "email", "message"),
    [
        ("10a", "long-enough", None, "bad extension number '10a'"),
        ("", "long-enough", None, "bad extension number"),
        ("1234567890123456", "long-enough", None, "1 to 15 digits"),
        ("101", "short", None, "password too short"),
        ("101", " padded-pass", None, "white space"),
        ("101", "long-enough", "not-an-address", "bad e-mail address"),
    ],
)
def test_add_validates(
    directory: Directory, number: str, password: str, email: str | None, message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        directory.add(number, password, email=email)
    assert directory.list() == []


def test_duplicate_number_is_refused(directory: Directory) -> None:
    directory.add("101", "password-1")
    with pytest.raises(StoreError, match="extension 101 already exists"):
        directory.add("101", "password-2")


def test_delete_removes_credentials_and_registrations(
    directory: Directory, db: peewee.SqliteDatabase
) -> None:
    directory.add("101", "password-1")
    directory.add("102", "password-2")
    for aor in ("101", "102"):
        binding = Binding(aor, f"sip:{aor}@192.0.2.1", 2e9, "cid", 1)
        apply(db, Upsert(binding))
    directory.delete("101")
    assert [e.number for e in directory.list()] == ["102"]
    assert SipCredential.select().count(db) == len(ALGORITHMS)
    assert [b.aor for b in load_active(db, 0.0)] == ["102"]
    with pytest.raises(NotFoundError, match="no extension 101"):
        directory.delete("101")


def test_realm_change_makes_hashes_stale_until_set_password(db: peewee.SqliteDatabase) -> None:
    Directory(db, "old.example").add("101", "password-1")
    moved = Directory(db, "new.example")
    assert moved.stale_numbers() == ["101"]
    assert moved.load_credentials()["101"].ha1 == {}
    moved.set_password("101", "password-2")
    assert moved.stale_numbers() == []
    assert moved.load_credentials()["101"].ha1["MD5"] == ha1(
        "MD5", "101", "new.example", "password-2"
    )


def test_load_credentials_is_one_query(directory: Directory) -> None:
    for n in range(100, 120):
        directory.add(str(n), f"password-{n}")
    directory.set_enabled("101", False)
    directory.set_algorithms("102", ["sha-256", "MD5"])
    with count_queries() as counter:
        creds = directory.load_credentials()
    assert counter.count == 1
    assert len(creds) == 20
    assert creds["101"].enabled is False
    assert creds["102"].algorithms == ("SHA-256", "MD5")
    assert creds["103"].algorithms is None
    assert set(creds["103"].ha1) == set(ALGORITHMS)


def test_algorithm_override_is_validated(directory: Directory) -> None:
    directory.add("101", "password-1")
    with pytest.raises(StoreError, match="unknown digest algorithm"):
        directory.set_algorithms("101", ["SHA-1"])
    with pytest.raises(StoreError, match="at most once"):
        directory.set_algorithms("101", ["MD5", "md5"])
    directory.set_algorithms("101", None)
    assert directory.get("101").algorithms is None


def test_unknown_extension(directory: Directory) -> None:
    with pytest.raises(NotFoundError):
        directory.get("999")
    with pytest.raises(NotFoundError):
        directory.set_password("999", "password-9")
