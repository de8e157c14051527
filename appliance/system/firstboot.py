"""First boot of the appliance: the web UI's TLS certificate, a unique admin password
and the database, once (systemd/yakyak-firstboot.service runs it before yakyak.service).

The admin password is made here, on the box, so no two boxes share one and none is
baked into the image. It is written to ``DATA/admin-password.txt`` (mode 0600, the
file the reset button also writes) and, when given, to a file on the boot partition
(e.g. ``/boot/firmware/yakyak-admin.txt``), which an installer can read by putting
the SD card in a laptop; the caller also shows it on the console. It must be changed
at the first sign-in.

Every step can be run again: an existing certificate is kept (`tls.ensure`), the
password is written to the data folder before the database is created, so a power cut
in between shows the same password at the next boot, and the marker file
``DATA/.firstboot-done``, written last, is what makes later boots skip the unit
(``ConditionPathExists=!``). Removing the marker and rebooting gives ``admin`` a new
password and leaves everything else as it is.

SSH host keys are the OS image's job (its own first-boot step), not this module's.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from appliance.config import DATABASE_FILE
from appliance.store.db import open_database
from appliance.store.errors import NotFoundError
from appliance.store.permissions import ADMINISTRATOR
from appliance.store.users import Accounts
from appliance.system.admin_reset import ADMIN_USERNAME, PASSWORD_FILE
from appliance.system.files import fsync_folder
from appliance.web import tls

log = logging.getLogger(__name__)

MARKER: Final = ".firstboot-done"
DEFAULT_BOOT_FILE: Final = Path("/boot/firmware/yakyak-admin.txt")
_LINE_START: Final = f"web UI: {ADMIN_USERNAME} / "

# Makes the config (unless one is there) and a new database whose admin has this
# password: `yakyak init`'s own steps, handed in by the CLI.
CreateSetup = Callable[[Path, str], None]


@dataclass(frozen=True, slots=True)
class FirstBoot:
    """What a first boot did, for the console."""

    password: str
    password_file: Path  # in the data folder
    boot_file: Path | None  # on the boot partition; None when not written
    certificate: tls.CertificateInfo
    created_database: bool  # False: the database was there (an interrupted first boot)


def is_done(data_dir: Path) -> bool:
    return (data_dir / MARKER).exists()


def first_boot(
    data_dir: Path,
    *,
    create_setup: CreateSetup,
    new_password: Callable[[], str],
    hosts: Iterable[str],
    now: datetime.datetime,
    boot_file: Path | None = None,
) -> FirstBoot | None:
    """Set the box up; None when an earlier first boot finished (the marker is there).

    `hosts`: the names and addresses the self-signed certificate covers.
    """
    if is_done(data_dir):
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    tls.ensure(data_dir, hosts, now)  # kept if there is a usable one
    certificate = tls.current(data_dir)
    password, created = _admin_password(data_dir, create_setup, new_password)
    written = _write_boot_file(boot_file, password, certificate) if boot_file else None
    _write_durably(data_dir / MARKER, f"first boot done at {now.isoformat()}\n".encode())
    log.info("first boot done: certificate %s, database in %s", certificate.sha256, data_dir)
    return FirstBoot(password, data_dir / PASSWORD_FILE, written, certificate, created)


def _admin_password(
    data_dir: Path, create_setup: CreateSetup, new_password: Callable[[], str]
) -> tuple[str, bool]:
    """The admin password this first boot hands out, and whether it made the database."""
    saved_file = data_dir / PASSWORD_FILE
    if not (data_dir / DATABASE_FILE).exists():
        password = new_password()
        # Before the database: a power cut between the two leaves the password to be
        # found (and checked against the database) at the next boot.
        _write_durably(saved_file, _password_line(password).encode())
        create_setup(data_dir, password)
        return password, True
    # The database is here already: an earlier first boot stopped before its marker,
    # or the marker was removed on purpose. Show the saved password if it still opens
    # the admin account, else give the admin a new one.
    saved = _read_saved(saved_file)
    db = open_database(data_dir / DATABASE_FILE)
    try:
        accounts = Accounts(db)
        if saved is not None and accounts.verify(ADMIN_USERNAME, saved) is not None:
            log.info("first boot: the database was there; showing the saved admin password")
            return saved, False
        password = new_password()
        _write_durably(saved_file, _password_line(password).encode())
        try:
            accounts.set_user_password(ADMIN_USERNAME, password, must_change_password=True)
        except NotFoundError:
            accounts.create_user(ADMIN_USERNAME, password, ADMINISTRATOR, must_change_password=True)
    finally:
        db.close()
    log.warning("first boot: the database was there; the admin got a new password")
    return password, False


def _password_line(password: str) -> str:
    # admin_reset writes the same line to the same file
    return f"{_LINE_START}{password} (change it at sign-in)\n"


def _read_saved(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith(_LINE_START):
        return None
    password = text[len(_LINE_START) :].split(" ", 1)[0].strip()
    return password or None


def boot_file_text(password: str, certificate: tls.CertificateInfo) -> str:
    return (
        "YakYak phone system: first sign-in\r\n"
        "\r\n"
        "Open https://yakyak.local/ (or https://THE-BOX-ADDRESS/) in a browser.\r\n"
        f"User: {ADMIN_USERNAME}\r\n"
        f"Password: {password}\r\n"
        "You must choose a new password at the first sign-in; this one then stops working.\r\n"
        "\r\n"
        "The browser warns about the box's own (self-signed) certificate. Its SHA-256\r\n"
        f"fingerprint is {certificate.sha256}\r\n"
        "\r\n"
        "Delete this file once you have signed in.\r\n"
    )  # CRLF: the installer opens it on whatever laptop reads the card


def _write_boot_file(path: Path, password: str, certificate: tls.CertificateInfo) -> Path | None:
    """The password where an installer finds it; None (logged) if it cannot be written:
    the console, the journal and the data folder have it anyway."""
    if not path.parent.is_dir():
        log.warning("first boot: %s does not exist; the password is not written there", path.parent)
        return None
    try:
        _write_durably(path, boot_file_text(password, certificate).encode())
    except OSError as exc:
        log.warning("first boot: cannot write %s: %s", path, exc)
        return None
    return path


def _write_durably(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only (0600), atomically and durably.

    On the FAT boot partition the mode is whatever the mount's fmask says; the
    rename is still atomic there.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)  # a leftover keeps its mode through O_TRUNC
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    fsync_folder(path.parent)
