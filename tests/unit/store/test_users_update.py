"""Changing what exists: a user's role and extension, a custom role, an extension's details."""

from __future__ import annotations

import peewee
import pytest

from appliance.store.errors import NotFoundError, StoreError
from appliance.store.extensions import Directory
from appliance.store.users import Accounts


@pytest.fixture
def accounts(db: peewee.SqliteDatabase, directory: Directory) -> Accounts:
    directory.add("101", "sip-password-101", "Alice")
    directory.add("102", "sip-password-102")
    made = Accounts(db)
    made.create_user("bob", "bob-password-1", "user", extension="101")
    return made


def test_a_users_role_changes_and_an_unknown_role_or_user_is_refused(accounts: Accounts) -> None:
    assert accounts.set_user_role("bob", "operator").role == "operator"
    assert accounts.get_user("bob").role == "operator"
    with pytest.raises(NotFoundError, match="no role 'root'"):
        accounts.set_user_role("bob", "root")
    with pytest.raises(NotFoundError, match="no user 'eve'"):
        accounts.set_user_role("eve", "user")
    assert accounts.get_user("bob").role == "operator"


def test_a_users_extension_is_moved_or_removed(accounts: Accounts) -> None:
    assert accounts.set_user_extension("bob", "102").extension == "102"
    assert accounts.set_user_extension("bob", None).extension is None
    with pytest.raises(NotFoundError, match="no extension 999"):
        accounts.set_user_extension("bob", "999")
    with pytest.raises(NotFoundError, match="no user 'eve'"):
        accounts.set_user_extension("eve", "101")
    assert accounts.get_user("bob").extension is None


def test_a_custom_role_is_rewritten_but_a_system_role_is_not(accounts: Accounts) -> None:
    accounts.create_role("night", "Night shift", ["call:make"])
    role = accounts.update_role("night", "Late shift", ["cdr:read", "call:read", "cdr:read"])
    assert (role.description, role.permissions) == ("Late shift", ("call:read", "cdr:read"))
    assert accounts.update_role("night", "", []).permissions == ()
    with pytest.raises(StoreError, match="unknown permission"):
        accounts.update_role("night", "", ["root:all"])
    with pytest.raises(StoreError, match="bad role description"):
        accounts.update_role("night", "x" * 201, [])
    with pytest.raises(StoreError, match="system role and cannot be changed"):
        accounts.update_role("operator", "mine now", ["system:write"])
    with pytest.raises(NotFoundError):
        accounts.update_role("ghost", "", [])
    assert "system:write" not in accounts.get_role("operator").permissions


def test_an_extensions_name_and_email_are_replaced_or_cleared(directory: Directory) -> None:
    directory.add("150", "sip-password-150", "Desk")
    info = directory.set_details("150", "Front desk", "desk@example.com")
    assert (info.name, info.email) == ("Front desk", "desk@example.com")
    info = directory.set_details("150", "", None)
    assert (info.name, info.email) == (None, None)
    with pytest.raises(StoreError, match="bad e-mail"):
        directory.set_details("150", "Desk", "not-mail")
    with pytest.raises(NotFoundError):
        directory.set_details("999", "x", None)
    assert directory.get("150").name is None
