"""First boot: certificate, admin password (data folder, boot partition, console) and
database, once; an interrupted first boot shows the same password again."""

from __future__ import annotations

import datetime
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import _first_setup, main
from appliance.config import CONFIG_FILE, DATABASE_FILE, Config
from appliance.store.db import open_database
from appliance.store.users import Accounts
from appliance.system import firstboot
from appliance.system.admin_reset import ADMIN_USERNAME, PASSWORD_FILE
from appliance.web import tls

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
HOSTS = ("127.0.0.1", "yakyak-test")


class Passwords:
    """Hands out first-pass-0001, first-pass-0002, ... and counts them."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self) -> str:
        self.made += 1
        return f"first-pass-{self.made:04d}"


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """`yakyak firstboot` sets up logging for the journal; put the root logger back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


def run(data: Path, passwords: Passwords, boot_file: Path | None = None) -> firstboot.FirstBoot:
    done = firstboot.first_boot(
        data,
        create_setup=_first_setup,
        new_password=passwords,
        hosts=HOSTS,
        now=NOW,
        boot_file=boot_file,
    )
    assert done is not None
    return done


def admin_password_works(data: Path, password: str) -> bool:
    db = open_database(data / DATABASE_FILE)
    try:
        user = Accounts(db).verify(ADMIN_USERNAME, password)
        return user is not None and user.must_change_password and user.role == "administrator"
    finally:
        db.close()


def test_first_boot_makes_certificate_password_and_database_then_never_again(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    boot = tmp_path / "boot"
    boot.mkdir()
    passwords = Passwords()

    done = run(data, passwords, boot / "yakyak-admin.txt")

    assert done.password == "first-pass-0001" and done.created_database
    assert admin_password_works(data, done.password)
    assert Config.load(data).general.domain == "yakyak.local"
    assert done.certificate == tls.current(data)
    assert "yakyak-test" in done.certificate.names and "127.0.0.1" in done.certificate.names
    saved = data / PASSWORD_FILE
    assert done.password_file == saved
    assert saved.read_text() == "web UI: admin / first-pass-0001 (change it at sign-in)\n"
    assert done.boot_file == boot / "yakyak-admin.txt"
    text = done.boot_file.read_bytes().decode()
    assert "Password: first-pass-0001\r\n" in text and done.certificate.sha256 in text
    for path in (saved, done.boot_file, data / firstboot.MARKER, data / tls.TLS_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(data.glob(".*.tmp")) and not list(boot.glob(".*.tmp"))

    assert firstboot.is_done(data)
    again = firstboot.first_boot(
        data, create_setup=_first_setup, new_password=passwords, hosts=HOSTS, now=NOW
    )
    assert again is None and passwords.made == 1
    assert admin_password_works(data, "first-pass-0001")


def test_no_boot_partition_is_not_an_error(tmp_path: Path) -> None:
    data = tmp_path / "var"
    done = run(data, Passwords(), tmp_path / "absent" / "yakyak-admin.txt")
    assert done.boot_file is None
    assert firstboot.is_done(data) and admin_password_works(data, done.password)


def test_an_interrupted_first_boot_shows_the_same_password(tmp_path: Path) -> None:
    data = tmp_path / "var"
    passwords = Passwords()
    run(data, passwords)
    (data / firstboot.MARKER).unlink()  # the power went before the marker was written

    done = run(data, passwords)

    assert (done.password, done.created_database, passwords.made) == ("first-pass-0001", False, 1)
    assert admin_password_works(data, "first-pass-0001")


def test_a_power_cut_inside_database_creation_is_finished_at_the_next_boot(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    passwords = Passwords()

    def crash(folder: Path, password: str) -> None:
        open_database(folder / DATABASE_FILE).close()  # tables made, admin not yet
        raise OSError("power cut")

    with pytest.raises(OSError):
        firstboot.first_boot(data, create_setup=crash, new_password=passwords, hosts=HOSTS, now=NOW)
    assert not firstboot.is_done(data)

    done = run(data, passwords)

    assert done.password == "first-pass-0002"  # the saved one opened no account
    assert admin_password_works(data, done.password)


def test_removing_the_marker_gives_the_admin_a_new_password(tmp_path: Path) -> None:
    data = tmp_path / "var"
    passwords = Passwords()
    first = run(data, passwords)
    db = open_database(data / DATABASE_FILE)
    try:
        Accounts(db).set_user_password(ADMIN_USERNAME, "chosen-by-admin-1")
    finally:
        db.close()
    (data / firstboot.MARKER).unlink()

    done = run(data, passwords)

    assert done.password == "first-pass-0002" and not done.created_database
    assert admin_password_works(data, done.password)
    assert not admin_password_works(data, first.password)
    assert done.certificate.sha256 == first.certificate.sha256  # the certificate stays


def test_a_config_the_image_put_there_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / CONFIG_FILE).write_text('[general]\ndomain = "pbx.example.com"\n')
    done = run(data, Passwords())
    assert Config.load(data).general.domain == "pbx.example.com"
    assert admin_password_works(data, done.password)


def test_cli_firstboot_shows_the_password_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "var"
    boot = tmp_path / "boot"
    boot.mkdir()
    argv = ["firstboot", "--data", str(data), "--boot-file", str(boot / "yakyak-admin.txt")]

    assert main(argv) == 0
    out = capsys.readouterr().out
    password = (data / PASSWORD_FILE).read_text().split(" / ")[1].split(" ")[0]
    assert f"user admin, password {password}" in out
    assert str(boot / "yakyak-admin.txt") in out
    assert tls.current(data).sha256 in out
    assert admin_password_works(data, password)

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "first boot was done already" in out and password not in out
