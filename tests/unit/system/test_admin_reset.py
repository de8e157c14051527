"""The reset button's admin password reset."""

from __future__ import annotations

import stat
from pathlib import Path

from appliance.store.db import open_database
from appliance.store.users import Accounts
from appliance.system.admin_reset import ADMIN_USERNAME, PASSWORD_FILE, reset_admin_password


def _password(path: Path) -> str:
    text = path.read_text()
    return text.split(" / ", 1)[1].split(" ", 1)[0]


def test_the_admin_gets_a_new_password_to_change_and_nothing_else_moves(tmp_path: Path) -> None:
    db = open_database(tmp_path / "yakyak.db")
    try:
        accounts = Accounts(db)
        accounts.create_user(ADMIN_USERNAME, "old-password-123", "administrator",
                             must_change_password=False)  # fmt: skip
        accounts.create_user("ops", "ops-password-123", "operator", must_change_password=False)
        path = reset_admin_password(db, tmp_path)
        assert path == tmp_path / PASSWORD_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        new = _password(path)
        assert accounts.verify(ADMIN_USERNAME, "old-password-123") is None
        user = accounts.verify(ADMIN_USERNAME, new)
        assert user is not None and user.must_change_password
        assert accounts.verify("ops", "ops-password-123") is not None
        again = reset_admin_password(db, tmp_path)  # a second press replaces the file
        assert _password(again) != new
        assert not list(tmp_path.glob(".*.tmp"))
    finally:
        db.close()


def test_a_deleted_admin_is_created_again(tmp_path: Path) -> None:
    db = open_database(tmp_path / "yakyak.db")
    try:
        path = reset_admin_password(db, tmp_path)
        user = Accounts(db).verify(ADMIN_USERNAME, _password(path))
        assert user is not None and user.role == "administrator"
    finally:
        db.close()
