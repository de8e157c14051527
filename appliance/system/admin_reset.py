"""The reset button's one job: a way back into the web UI for whoever holds the box.

The ``admin`` account gets a new random password that must be changed at the next
sign-in, written to ``DATA/admin-password.txt`` (mode 0600, replaced atomically) so the
installer can read it over the console or from the SD card. Extensions, calls and
settings are left alone: a button anyone can press must not be able to wipe the PBX.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

import peewee

from appliance.store.errors import NotFoundError
from appliance.store.permissions import ADMINISTRATOR
from appliance.store.users import Accounts
from appliance.system.files import fsync_folder

ADMIN_USERNAME: Final = "admin"
PASSWORD_FILE: Final = "admin-password.txt"


def reset_admin_password(db: peewee.SqliteDatabase, data_dir: Path) -> Path:
    """Give ``admin`` a fresh password (creating the account if it was deleted); the
    file it was written to."""
    password = secrets.token_urlsafe(12)
    accounts = Accounts(db)
    try:
        accounts.set_user_password(ADMIN_USERNAME, password, must_change_password=True)
    except NotFoundError:
        accounts.create_user(ADMIN_USERNAME, password, ADMINISTRATOR, must_change_password=True)
    path = data_dir / PASSWORD_FILE
    temp = path.with_name(f".{PASSWORD_FILE}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"web UI: {ADMIN_USERNAME} / {password} (change it at sign-in)\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_folder(data_dir)
    return path
