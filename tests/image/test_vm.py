"""The `virt` image in qemu (software emulation), booted by U-Boot like a board
(`make image-test-vm` for arm64, `make image-test-vm-armhf` for the BeagleBone Black's armhf
rootfs; issue #8): the PBX comes up (SIP OPTIONS 200, the web sign-in page, a sipp REGISTER,
the watchdog), then updates through the web UI's API as an installer would do them: an
unsigned bundle, a foreign-signed one and one of ours for the other architecture are refused
with nothing changed; a signed bundle is installed into slot B and the box restarts into
it; a signed bundle whose PBX cannot start is installed into A, fails its health check,
and the box rolls back to B by itself. Tests run in file order against one machine.

Skipped unless YAKYAK_IMAGE_VM names the folder `image/build.sh virt` (or virt-armhf) wrote
and YAKYAK_IMAGE_ROOT_EXT4 the root file system image the test bundles are made from;
YAKYAK_IMAGE_VM_ARCH (arm64 unless given) says which architecture's image it is."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode

import pytest
from e2e.https_session import CookieSession

from image.nspawn import ARTIFACTS
from image.qemu_vm import VirtMachine
from image.sipp_register import DOMAIN, RELOADED, sipp_register

REPO = Path(__file__).resolve().parents[2]
BUNDLE_SH = REPO / "image" / "bundle.sh"
NEW_PASSWORD = "vm-test-Password-42"
BOOT_TIMEOUT = 600.0  # s: emulated ARM on a busy 2-core machine
ARCH = os.environ.get("YAKYAK_IMAGE_VM_ARCH", "arm64")
OTHER_ARCH = "armhf" if ARCH == "arm64" else "arm64"
VM_ARTIFACTS = ARTIFACTS.parent / "image-vm"
GROWN_BY = 1024 * 1024 * 1024


def sh(*argv: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def build() -> tuple[Path, Path]:
    out, ext4 = os.environ.get("YAKYAK_IMAGE_VM"), os.environ.get("YAKYAK_IMAGE_ROOT_EXT4")
    if not out or not ext4:
        pytest.skip("no YAKYAK_IMAGE_VM: `make image-test-vm` builds the virt image and runs these")
    if os.geteuid() != 0:
        pytest.skip("the image files belong to root")
    return Path(out), Path(ext4)


@pytest.fixture(scope="module")
def bundle_job(
    build: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Future[dict[str, Path]]]:
    """The bundles are made in a thread while the machine boots (minutes each way)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(make_bundles, build[1], tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="module")
def vm(
    build: tuple[Path, Path],
    bundle_job: Future[dict[str, Path]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VirtMachine]:
    out, _ = build
    work = tmp_path_factory.mktemp("vm")
    disk = work / "disk.img"
    shutil.copy(out / f"yakyak-virt-{ARCH}.img", disk)  # sparse stays sparse (copy_file_range)
    # a bigger "card" than the image: first boot grows the data partition into the rest
    os.truncate(disk, disk.stat().st_size + GROWN_BY)
    machine = VirtMachine(disk, out / f"yakyak-virt-{ARCH}.u-boot.bin", work, ARCH)
    machine.prepare()
    machine.start()
    try:
        yield machine
    finally:
        machine.stop(VM_ARTIFACTS)


@pytest.fixture(scope="module")
def bundles(bundle_job: Future[dict[str, Path]]) -> dict[str, Path]:
    return bundle_job.result(timeout=1200)


def make_bundles(ext4: Path, work: Path) -> dict[str, Path]:
    """A good bundle, one whose PBX cannot start, an unsigned one, one signed by a key
    the box does not trust, and one signed by ours for the other architecture."""
    made: dict[str, Path] = {}
    good = work / "good.raucb"
    done = sh(BUNDLE_SH, "bundle", ext4, good, "vmtest-good")
    assert done.returncode == 0, done.stderr[-2000:]
    made["good"] = good
    # the same root with the PBX's program replaced by one that exits at once
    broken_root = work / "broken.ext4"
    assert sh("cp", "--sparse=always", ext4, broken_root).returncode == 0
    failing = work / "yakyak"
    failing.write_text("#!/bin/sh\necho 'deliberately broken build' >&2\nexit 1\n")
    script = work / "debugfs.cmd"
    script.write_text(
        "rm /opt/yakyak/venv/bin/yakyak\n"
        f"write {failing} /opt/yakyak/venv/bin/yakyak\n"
        "sif /opt/yakyak/venv/bin/yakyak mode 0100755\n"
    )
    assert sh("debugfs", "-w", "-f", script, broken_root).returncode == 0
    broken = work / "broken.raucb"
    done = sh(BUNDLE_SH, "bundle", broken_root, broken, "vmtest-broken")
    assert done.returncode == 0, done.stderr[-2000:]
    broken_root.unlink()
    made["broken"] = broken
    # small ones for the refusals: RAUC stops at the signature
    tiny = work / "tiny"
    (tiny / "etc").mkdir(parents=True)
    (tiny / "etc" / "os-release").write_text("ID=not-yakyak\n")
    (tiny / "noise").write_bytes(os.urandom(256 * 1024))  # RAUC wants a squashfs > 4 KiB
    (tiny / "etc" / "rauc").mkdir()
    (tiny / "etc" / "rauc" / "system.conf").write_text(f"[system]\ncompatible=yakyak-{ARCH}\n")
    tiny_root = work / "tiny.ext4"
    assert sh("mkfs.ext4", "-q", "-F", "-d", tiny, tiny_root, "8M").returncode == 0
    (tiny / "etc" / "rauc" / "system.conf").write_text(
        f"[system]\ncompatible=yakyak-{OTHER_ARCH}\n"
    )
    other_root = work / "other-arch.ext4"
    assert sh("mkfs.ext4", "-q", "-F", "-d", tiny, other_root, "8M").returncode == 0
    other = work / "other-arch.raucb"
    done = sh(BUNDLE_SH, "bundle", other_root, other, "vmtest-other-arch")
    assert done.returncode == 0, done.stderr[-2000:]
    made["other-arch"] = other
    content = work / "unsigned"
    content.mkdir()
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible=yakyak-{ARCH}\nversion=vmtest-unsigned\n\n"
        "[image.rootfs]\nfilename=rootfs.ext4\n"
    )
    shutil.copy(tiny_root, content / "rootfs.ext4")
    unsigned = work / "unsigned.raucb"
    done = sh("mksquashfs", content, unsigned, "-quiet", "-all-root", "-noappend")
    assert done.returncode == 0, done.stderr
    made["unsigned"] = unsigned
    foreign_pair = work / "foreign-key"
    assert sh(BUNDLE_SH, "pair", foreign_pair, "someone else").returncode == 0
    foreign = work / "foreign.raucb"
    done = subprocess.run(
        [str(BUNDLE_SH), "bundle", str(tiny_root), str(foreign), "vmtest-foreign"],
        env={**os.environ, "SIGN_CERT": str(foreign_pair / "cert.pem"),
             "SIGN_KEY": str(foreign_pair / "key.pem"),
             "YAKYAK_RAUC_CERT": str(foreign_pair / "cert.pem")},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    made["foreign"] = foreign
    return made


class Web:
    """The box's web UI through the forwarded port: a session to sign in, then a token."""

    def __init__(self, port: int) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the box's own first-boot certificate
        self.session = CookieSession("127.0.0.1", port, context)
        self.token = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | BinaryIO = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 60,
        auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if auth and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        response, data = self.session.send(
            method, path, body, sent, timeout=timeout, with_cookies=auth and not self.token
        )
        return response.status, dict(response.headers), data

    def csrf(self, path: str) -> str:
        _, _, page = self.request("GET", path)
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        assert match is not None, page[:1000]
        return match.group(1).decode()

    def form(self, path: str, fields: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", path, urlencode(fields).encode(), headers)

    def sign_in_and_make_token(self, password: str) -> None:
        status, headers, _ = self.form(
            "/login", {"username": "admin", "password": password, "csrf_token": self.csrf("/login")}
        )
        assert status == 303, headers
        if headers.get("Location") == "/password":
            status, _, _ = self.form(
                "/password",
                {"current": password, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD,
                 "csrf_token": self.csrf("/password")},
            )  # fmt: skip
            assert status == 303
        _, _, me = self.request("GET", "/api/me")
        headers = {"Content-Type": "application/json",
                   "X-CSRF-Token": json.loads(me)["csrf_token"]}  # fmt: skip
        status, _, data = self.request("POST", "/api/tokens", b'{"name": "vm-test"}', headers)
        assert status == 201, data
        self.token = json.loads(data)["token"]

    def api(self, method: str, path: str) -> tuple[int, Any]:
        status, _, data = self.request(method, path)
        return status, json.loads(data) if data else None

    def upload(self, bundle: Path) -> tuple[int, Any]:
        with open(bundle, "rb") as f:
            status, _, data = self.request(
                "PUT", "/api/system/update", f,
                {"Content-Type": "application/octet-stream",
                 "Content-Length": str(bundle.stat().st_size)},
                timeout=900,
            )  # fmt: skip
        return status, json.loads(data) if data else None

    def up(self) -> bool:
        try:
            status, _, page = self.request("GET", "/login", timeout=15, auth=False)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and b"password" in page


state: dict[str, Any] = {}


def web(vm: VirtMachine) -> Web:
    if "web" not in state:
        state["web"] = Web(vm.web_port)
    client: Web = state["web"]
    return client


def system(vm: VirtMachine) -> dict[str, Any]:
    status, doc = web(vm).api("GET", "/api/system")
    assert status == 200, doc
    assert isinstance(doc, dict)
    return doc


def wait_for_boot(vm: VirtMachine, boots: list[str], what: str) -> float:
    """Until U-Boot has booted ``boots`` and the web UI answers on the last one."""
    vm.wait_for(what, lambda: vm.boots() == boots and web(vm).up(), BOOT_TIMEOUT)
    return time.monotonic() - vm.started


def wait_for_health(vm: VirtMachine) -> dict[str, Any]:
    """This boot's health check has written its verdict (its oneshot unit has finished)."""

    def judged() -> bool:
        unit = vm.ssh("systemctl show -p ActiveState --value yakyak-health.service", check=False)
        return unit.strip() == "active"

    vm.wait_for("the boot's health verdict", judged, 420)
    return system(vm)


@pytest.mark.timeout(900)
def test_boots_slot_a_through_u_boot_and_serves_the_web_ui(vm: VirtMachine) -> None:
    elapsed = wait_for_boot(vm, ["A"], "first boot: slot A, web UI up")
    VM_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (VM_ARTIFACTS / "boot-to-ready.txt").write_text(f"first boot to web UI: {elapsed:.0f} s\n")
    assert "rauc.slot=A" in vm.ssh("cat /proc/cmdline")
    assert vm.ssh("systemctl is-active yakyak.service").strip() == "active"
    assert vm.ssh("findmnt -no OPTIONS /").startswith("ro"), "read-only root"
    state["machine_id"] = vm.ssh("cat /etc/machine-id").strip()


@pytest.mark.timeout(120)
def test_data_partition_grew_to_the_end_of_the_disk(vm: VirtMachine) -> None:
    size = int(vm.ssh("findmnt -bno SIZE /data").strip())
    assert size > 512 * 1024 * 1024 + GROWN_BY * 9 // 10, size
    assert vm.ssh("test -e /data/.grown && echo once").strip() == "once"


@pytest.mark.timeout(120)
def test_sip_options_answered_200(vm: VirtMachine) -> None:
    request = (
        f"OPTIONS sip:{DOMAIN} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-vm-options;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=vm1\r\n"
        f"To: <sip:{DOMAIN}>\r\nCall-ID: vm-options-1\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for _ in range(6):  # UDP through qemu's user network: retransmit as SIP does
            s.sendto(request, ("127.0.0.1", vm.sip_port))
            try:
                answer = s.recv(65535)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no answer to OPTIONS")
    assert answer.startswith(b"SIP/2.0 200 "), answer[:200]


@pytest.mark.timeout(300)
def test_sign_in_with_the_first_boot_password(vm: VirtMachine) -> None:
    boot_copy = vm.ssh("cat /boot/firmware/yakyak-admin.txt")  # the installer's copy
    found = re.search(r"^Password: (\S+)$", boot_copy, re.MULTILINE)
    assert found is not None, boot_copy
    password = found.group(1)
    assert password in vm.ssh("cat /var/lib/yakyak/admin-password.txt")
    web(vm).sign_in_and_make_token(password)
    status, me = web(vm).api("GET", "/api/me")
    assert status == 200 and me["auth"] == "token"


@pytest.mark.timeout(300)
def test_sipp_registers_an_extension(vm: VirtMachine, tmp_path: Path) -> None:
    password = "vmPw" + os.urandom(8).hex()
    vm.ssh(
        "runuser -u yakyak -- /opt/yakyak/venv/bin/yakyak ext add 150 --data /var/lib/yakyak "
        f"--password {password}"
    )

    def reloaded() -> bool:  # the server rereads its directory about every second
        return RELOADED in vm.ssh("journalctl -b -u yakyak -o cat --no-pager")

    vm.wait_for("the server to reload its directory", reloaded, 60)
    sipp_register("150", password, "127.0.0.1", f"127.0.0.1:{vm.sip_port}", tmp_path, 60)


@pytest.mark.timeout(600)
def test_first_boot_is_judged_healthy(vm: VirtMachine) -> None:
    doc = wait_for_health(vm)
    assert doc["health"] == "good", doc
    assert doc["booted"] == "A"
    slots = {s["bootname"]: s for s in doc["slots"]}
    assert slots["A"]["boot_status"] == "good", doc
    env = vm.ssh("fw_printenv BOOT_ORDER BOOT_A_LEFT")
    assert "BOOT_A_LEFT=3" in env, f"mark-good gave slot A its tries back: {env}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [("unsigned", ("signature", "verif")), ("foreign", ("signature", "verif")),
     ("other-arch", ("compatible",))],
)  # fmt: skip
def test_bundle_not_made_for_this_box_is_refused(
    vm: VirtMachine, bundles: dict[str, Path], kind: str, reason: tuple[str, ...]
) -> None:
    boots = vm.boots()
    status, queued = web(vm).upload(bundles[kind])
    assert status == 202, queued

    def finished() -> bool:
        state = web(vm).api("GET", "/api/system/update")[1]
        return isinstance(state, dict) and state.get("state") in ("failed", "installed")

    vm.wait_for(f"RAUC's verdict on the {kind} bundle", finished, 300)
    result = web(vm).api("GET", "/api/system/update")[1]
    assert result["state"] == "failed", result
    assert any(word in result["message"].lower() for word in reason), result
    time.sleep(10)
    assert vm.boots() == boots, "no restart"
    assert system(vm)["booted"] == "A"


@pytest.mark.timeout(1800)
def test_signed_bundle_installs_into_b_and_the_box_restarts_into_it(
    vm: VirtMachine, bundles: dict[str, Path]
) -> None:
    status, queued = web(vm).upload(bundles["good"])
    assert status == 202, queued
    elapsed_from = time.monotonic()
    wait_for_boot(vm, ["A", "B"], "a restart into slot B")
    (VM_ARTIFACTS / "update-to-ready.txt").write_text(
        f"upload accepted to web UI up on B: {time.monotonic() - elapsed_from:.0f} s\n"
    )
    doc = wait_for_health(vm)
    assert doc["booted"] == "B" and doc["health"] == "good", doc
    slots = {s["bootname"]: s for s in doc["slots"]}
    assert slots["B"]["version"] == "vmtest-good" and slots["B"]["boot_status"] == "good", doc
    assert doc["last_update"]["state"] == "installed", doc
    assert "rauc.slot=B" in vm.ssh("cat /proc/cmdline")
    # the box keeps its identity across reboots and slots (yakyak-machine-id.service)
    assert vm.ssh("cat /etc/machine-id").strip() == state["machine_id"]


@pytest.mark.timeout(2400)
def test_bundle_that_does_not_come_up_is_rolled_back(
    vm: VirtMachine, bundles: dict[str, Path]
) -> None:
    status, queued = web(vm).upload(bundles["broken"])
    assert status == 202, queued
    # into A, which fails its health check; U-Boot then skips A and boots B again
    wait_for_boot(vm, ["A", "B", "A", "B"], "the broken slot A, then B again")
    doc = wait_for_health(vm)
    assert doc["booted"] == "B" and doc["health"] == "good", doc
    assert doc["rollback"]["from_slot"] == "A", doc
    assert doc["rollback"]["version"] == "vmtest-broken", doc
    assert doc["last_update"]["state"] == "failed", doc
    slots = {s["bootname"]: s for s in doc["slots"]}
    assert slots["A"]["boot_status"] == "bad", doc
    assert slots["B"]["version"] == "vmtest-good"


@pytest.mark.timeout(600)
def test_watchdog_restarts_a_frozen_service(vm: VirtMachine) -> None:
    pid = vm.ssh("systemctl show -p MainPID --value yakyak.service").strip()
    vm.ssh(f"kill -STOP {pid}")

    def restarted() -> bool:
        now = vm.ssh("systemctl show -p MainPID -p ActiveState yakyak.service")
        return f"MainPID={pid}\n" not in now and "ActiveState=active" in now

    vm.wait_for("a restart by the watchdog", restarted, 300)
    assert "Watchdog timeout" in vm.ssh("journalctl -b -u yakyak --no-pager -o cat")
