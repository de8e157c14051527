"""The YakYak rootfs booted in systemd-nspawn, checked from outside (issue #8):
the service is up, SIP OPTIONS gets 200, the web sign-in page loads over HTTPS, a phone
registers with sipp, and the watchdog restarts a frozen service. Tests run in file order
against one boot; the watchdog test goes last as it restarts the service."""

from __future__ import annotations

import hashlib
import secrets
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from image.nspawn import ARTIFACTS, Container
from image.sipp_register import RELOADED, sipp_register

REPO = Path(__file__).resolve().parents[2]


def is_active(container: Container, unit: str) -> bool:
    return container.run_status("systemctl", "is-active", unit).stdout.strip() == "active"


@pytest.mark.timeout(240)
def test_yakyak_service_becomes_active(container: Container) -> None:
    container.wait_for("yakyak.service active", lambda: is_active(container, "yakyak"), 120)
    boot_to_ready = time.monotonic() - container.started
    ready = container.show("yakyak", "ActiveState", "SubState", "Type", "NRestarts")
    assert ready["SubState"] == "running", ready
    assert ready["NRestarts"] == "0", "it started cleanly, without restarts"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "boot-to-ready.txt").write_text(f"{boot_to_ready:.1f} s\n")


def test_first_boot_ran_and_wrote_the_data_partition(container: Container) -> None:
    assert is_active(container, "yakyak-firstboot")
    assert (container.data / "yakyak" / "yakyak.db").is_file()
    assert (container.boot / "yakyak-admin.txt").is_file(), "the installer's copy of the password"


def test_root_is_read_only_and_identity_is_the_appliances(container: Container) -> None:
    touch = container.run_status("touch", "/usr/yakyak-write-test")
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    assert container.run("hostname") == "yakyak"
    assert container.run_status("systemctl", "is-enabled", "ssh.service").stdout.strip() == (
        "disabled"
    )
    assert not is_active(container, "ssh.service"), "SSH is off by default"
    assert is_active(container, "avahi-daemon.service"), "mDNS: yakyak.local"
    # timesyncd is skipped in containers (ConditionVirtualization=!container) but enabled
    enabled = container.run_status("systemctl", "is-enabled", "systemd-timesyncd.service")
    assert enabled.stdout.strip() == "enabled"


def test_update_keyring_is_the_build_certificate(container: Container) -> None:
    cert = subprocess.run(
        [REPO / "image" / "bundle.sh", "key"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert container.run("cat", "/etc/rauc/keyring.pem") == Path(cert).read_text().strip()


def test_no_failed_units(container: Container) -> None:
    failed = container.run("systemctl", "list-units", "--failed", "--plain", "--no-legend")
    assert failed == ""


def test_sip_options_answered_200(container: Container) -> None:
    container.wait_for("yakyak.service active", lambda: is_active(container, "yakyak"), 60)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((container.network.host_address, 0))
        sock.settimeout(0.5)
        port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:{container.address} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {container.network.host_address}:{port}"
            f";branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{container.network.host_address}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{container.address}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@image-test\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        answer = b""
        for _ in range(10):  # RFC 3261 Timer E: retransmit until answered
            sock.sendto(request, (container.address, 5060))
            try:
                answer, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            if not answer.startswith(b"SIP/2.0 1"):
                break
    assert answer.split(b"\r\n", 1)[0] == b"SIP/2.0 200 OK", answer[:200]


def test_web_sign_in_page_over_https(container: Container) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # first boot's self-signed certificate, checked below
    url = f"https://{container.address}/login"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        assert response.status == 200
        body = response.read().decode()
    assert 'action="/login"' in body
    # the certificate served is the one first boot made and announced
    der = ssl.get_server_certificate((container.address, 443))
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(der)).hexdigest().upper()
    announced = (container.boot / "yakyak-admin.txt").read_text()
    pairs = ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2))
    assert fingerprint in announced.replace(":", "") or pairs in announced


@pytest.mark.timeout(120)
def test_sipp_registers_an_extension(container: Container, tmp_path: Path) -> None:
    password = secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
    # as the service's user: the database and its WAL must stay the service's files
    container.run(
        "runuser", "-u", "yakyak", "--", "/opt/yakyak/venv/bin/yakyak", "ext", "add", "150",
        "--data", "/var/lib/yakyak", "--password", password,
    )  # fmt: skip

    def reloaded() -> bool:  # the server rereads its directory about every second
        log = container.run("journalctl", "-b", "-u", "yakyak", "-o", "cat", "--no-pager")
        return RELOADED in log

    container.wait_for("the server to reload its directory", reloaded, 15)
    sipp_register(
        "150", password, container.network.host_address, f"{container.address}:5060", tmp_path
    )
    contacts = container.run(
        "runuser", "-u", "yakyak", "--", "/opt/yakyak/venv/bin/yakyak", "ext", "list",
        "--data", "/var/lib/yakyak",
    )  # fmt: skip
    row = next(line.split() for line in contacts.splitlines() if line.startswith("150 "))
    assert row[-1] == "1", contacts  # one contact registered


def test_ssh_switch_starts_and_stops_ssh_with_keys_on_the_data_partition(
    container: Container,
) -> None:
    """What the web UI's switch writes (appliance/system/updates.py set_ssh): the flag
    file, the keys the installer pasted, and ssh-switch rewritten on every change."""
    state = container.data / "yakyak"
    switch, keys = state / "ssh-switch", state / "ssh-authorized-keys"
    keys.write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxYakYakTestKeyOnlyNotReal00000000000 t\n"
    )
    (state / "ssh-enabled").touch()
    switch.write_text("on 1\n")
    try:
        container.wait_for("ssh.service active", lambda: is_active(container, "ssh"), 30)
        assert (container.data / "ssh" / "etc" / "ssh" / "ssh_host_ed25519_key.pub").is_file()
        installed = container.data / "ssh" / "authorized_keys"
        assert installed.read_text() == keys.read_text()
        assert installed.stat().st_mode & 0o777 == 0o600 and installed.stat().st_uid == 0
        (state / "ssh-enabled").unlink()
        switch.write_text("off 2\n")
        container.wait_for("ssh.service stopped", lambda: not is_active(container, "ssh"), 30)
    finally:
        (state / "ssh-enabled").unlink(missing_ok=True)
        container.run("systemctl", "stop", "ssh.service")


@pytest.mark.timeout(150)
def test_watchdog_restarts_a_frozen_service(container: Container) -> None:
    before = container.show("yakyak", "MainPID", "NRestarts", "WatchdogUSec")
    assert before["WatchdogUSec"] not in ("0", "infinity"), "yakyak.service has WatchdogSec="
    container.run("kill", "-STOP", before["MainPID"])

    def restarted() -> bool:
        now = container.show("yakyak", "MainPID", "NRestarts", "ActiveState")
        return (
            now["NRestarts"] == str(int(before["NRestarts"]) + 1)
            and now["MainPID"] not in ("0", before["MainPID"])
            and now["ActiveState"] == "active"
        )

    container.wait_for("a restart by the watchdog", restarted, 120)
    log = container.run("journalctl", "-b", "-u", "yakyak", "--no-pager", "-o", "cat")
    assert "Watchdog timeout" in log
