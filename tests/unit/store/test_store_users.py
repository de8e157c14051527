from __future__ import annotations

from pathlib import Path

import peewee
import pytest

from appliance.store.errors import NotFoundError, StoreError
from appliance.store.extensions import Directory
from appliance.store.passwords import hash_password, verify_password
from appliance.store.permissions import PERMISSIONS, SYSTEM_ROLES, check_permissions
from appliance.store.users import Accounts


def test_fresh_database_has_exactly_the_system_roles(db: peewee.SqliteDatabase) -> None:
    roles = {role.name: role for role in Accounts(db).list_roles()}
    assert set(roles) == set(SYSTEM_ROLES)
    for name, (description, permissions) in SYSTEM_ROLES.items():
        assert roles[name].is_system
        assert roles[name].description == description
        assert roles[name].permissions == check_permissions(permissions)
    assert roles["administrator"].permissions == PERMISSIONS


def test_system_roles_cannot_be_deleted(db: peewee.SqliteDatabase) -> None:
    for name in SYSTEM_ROLES:
        with pytest.raises(StoreError, match=f"role '{name}' is a system role"):
            Accounts(db).delete_role(name)


def test_custom_role_permissions_are_validated(db: peewee.SqliteDatabase) -> None:
    accounts = Accounts(db)
    with pytest.raises(StoreError, match=r"unknown permission\(s\): call:explode, root"):
        accounts.create_role("night", "Night shift", ["call:make", "root", "call:explode"])
    role = accounts.create_role("night", "Night shift", ["cdr:read", "call:make", "call:make"])
    assert role.permissions == ("call:make", "cdr:read")
    assert not role.is_system
    with pytest.raises(StoreError, match="already exists"):
        accounts.create_role("night", "", [])
    with pytest.raises(StoreError, match="bad role name"):
        accounts.create_role("Night Shift", "", [])


def test_custom_role_in_use_is_kept_until_free(db: peewee.SqliteDatabase) -> None:
    accounts = Accounts(db)
    accounts.create_role("night", "", ["call:make"])
    accounts.create_user("nina", "password-nina", "night")
    with pytest.raises(StoreError, match="still given to 1 user"):
        accounts.delete_role("night")
    accounts.delete_user("nina")
    accounts.delete_role("night")
    with pytest.raises(NotFoundError):
        accounts.get_role("night")


def test_user_password_is_scrypt_and_verifies(db: peewee.SqliteDatabase, db_path: Path) -> None:
    accounts = Accounts(db)
    Directory(db, "x.example").add("101", "sip-password")
    user = accounts.create_user("admin", "Admin-Canary-55", "administrator", extension="101")
    assert (user.role, user.extension, user.must_change_password) == ("administrator", "101", True)
    assert accounts.verify("admin", "Admin-Canary-55") == user
    assert accounts.verify("admin", "wrong-password") is None
    assert accounts.verify("nobody", "Admin-Canary-55") is None
    db.close()
    assert b"Admin-Canary-55" not in db_path.read_bytes()


def test_user_validation(db: peewee.SqliteDatabase) -> None:
    accounts = Accounts(db)
    with pytest.raises(StoreError, match="password too short"):
        accounts.create_user("admin", "short", "administrator")
    with pytest.raises(NotFoundError, match="no role 'boss'"):
        accounts.create_user("admin", "long-enough", "boss")
    with pytest.raises(StoreError, match="bad username"):
        accounts.create_user("has space", "long-enough", "user")
    accounts.create_user("admin", "long-enough", "administrator")
    with pytest.raises(StoreError, match="already exists"):
        accounts.create_user("admin", "long-enough", "administrator")


def test_set_user_password_clears_must_change(db: peewee.SqliteDatabase) -> None:
    accounts = Accounts(db)
    accounts.create_user("admin", "first-password", "administrator")
    accounts.set_user_password("admin", "second-password")
    assert accounts.verify("admin", "first-password") is None
    user = accounts.verify("admin", "second-password")
    assert user is not None and not user.must_change_password


def test_hash_format_and_malformed_hashes() -> None:
    encoded = hash_password("pw", salt=b"s" * 16)
    assert encoded.startswith("scrypt$16384$8$1$")
    assert verify_password("pw", encoded)
    assert hash_password("pw") != hash_password("pw")  # random salt
    for bad in ("", "md5$abc", "scrypt$x$8$1$AA==$AA==", "scrypt$16384$8$1$!!$AA==", encoded + "$"):
        assert not verify_password("pw", bad)
