"""The qemu `virt` image booted the way a board boots it: U-Boot (Debian's u-boot-qemu) runs
the image's boot.scr, which picks root slot A or B. Software emulation (no KVM here); the
box is reached only through forwarded loopback ports (web 443, SIP 5060/udp, SSH 22), and
the serial console goes to a file, where U-Boot's "YakYak: slot X" lines tell which slot
each boot chose. SSH is switched on with a key the test makes, written onto the data
partition before the first boot: a diagnostic channel, as a support engineer would use."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
# image/sdimage.sh's layout: 1 MiB, boot 256 MiB, root A and B 1536 MiB each, data 512 MiB
DATA_OFFSET_MIB = 1 + 256 + 2 * 1536
DATA_MIB = 512
BOOT_OFFSET_MIB = 1
SLOT_LINE = re.compile(r"YakYak: slot ([AB]),")
# the emulator and a CPU the architecture's Debian kernel runs on (armmp: ARMv7, no LPAE needed)
QEMU = {
    "arm64": ("qemu-system-aarch64", "cortex-a72"),
    "armhf": ("qemu-system-arm", "cortex-a15"),
}


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sh(*argv: str | Path, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def seed_ssh(disk: Path, workdir: Path, public_key: str) -> None:
    """Switch SSH on for root with ``public_key``, on the data partition of ``disk``."""
    data = workdir / "data.ext4"
    _sh("dd", f"if={disk}", f"of={data}", "bs=1M", f"skip={DATA_OFFSET_MIB}",
        f"count={DATA_MIB}", "conv=sparse", "status=none")  # fmt: skip
    key = workdir / "authorized_keys"
    key.write_text(public_key)
    empty = workdir / "empty"
    empty.write_text("")
    commands = workdir / "debugfs.cmd"
    commands.write_text(
        f"write {key} ssh/authorized_keys\n"
        "sif ssh/authorized_keys mode 0100600\n"
        "sif ssh/authorized_keys uid 0\n"
        "sif ssh/authorized_keys gid 0\n"
        f"write {empty} yakyak/ssh-enabled\n"
    )
    _sh("debugfs", "-w", "-f", commands, data)
    _sh("e2fsck", "-fn", data)
    _sh("dd", f"if={data}", f"of={disk}", "bs=1M", f"seek={DATA_OFFSET_MIB}",
        "conv=notrunc,sparse", "status=none")  # fmt: skip
    data.unlink()


def read_boot_file(disk: Path, name: str) -> bytes:
    """A file on the FAT boot partition (mtools reads the disk file; no mount)."""
    return subprocess.run(
        ["mcopy", "-n", "-i", f"{disk}@@{BOOT_OFFSET_MIB}M", f"::/{name}", "-"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout


@dataclass
class VirtMachine:
    disk: Path
    firmware: Path
    workdir: Path
    arch: str = "arm64"
    web_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    sip_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    ssh_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def key(self) -> Path:
        return self.workdir / "id_ed25519"

    def prepare(self) -> None:
        _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key)
        seed_ssh(self.disk, self.workdir, (self.workdir / "id_ed25519.pub").read_text())

    def start(self) -> None:
        forward = (
            f"hostfwd=tcp:127.0.0.1:{self.web_port}-:443,"
            f"hostfwd=udp:127.0.0.1:{self.sip_port}-:5060,"
            f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22"
        )
        emulator, cpu = QEMU[self.arch]
        argv = [
            emulator, "-M", "virt", "-cpu", cpu, "-smp", "2",
            "-m", "1024", "-bios", str(self.firmware), "-nographic", "-monitor", "none",
            "-serial", f"file:{self.console_log}",
            "-drive", f"if=none,file={self.disk},format=raw,id=hd,cache=unsafe",
            "-device", "virtio-blk-device,drive=hd",
            "-netdev", f"user,id=n,{forward}", "-device", "virtio-net-device,netdev=n",
            "-device", "virtio-rng-device",
        ]  # fmt: skip
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=open(self.workdir / "qemu.out", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def console(self) -> str:
        try:
            return self.console_log.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def boots(self) -> list[str]:
        """The slot U-Boot chose for each boot so far, in order."""
        return SLOT_LINE.findall(self.console())

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(self, what: str, test: Callable[[], object], timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.alive():
                raise AssertionError(f"qemu exited while waiting for {what}")
            try:
                if test():
                    return time.monotonic() - start
            except OSError:
                pass
            time.sleep(2)
        tail = self.console()[-3000:]
        raise AssertionError(f"no {what} in {timeout:.0f} s; console tail:\n{tail}")

    def ssh(self, command: str, timeout: float = 60, check: bool = True) -> str:
        done = subprocess.run(
            [
                "ssh", "-i", str(self.key), "-p", str(self.ssh_port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
                "root@127.0.0.1", command,
            ],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(f"ssh {command!r}: {done.returncode} {done.stderr[-1000:]}")
        return done.stdout

    def stop(self, artifacts: Path) -> None:
        artifacts.mkdir(parents=True, exist_ok=True)
        if self.alive():
            try:
                journal = self.ssh("journalctl --no-pager -o short-monotonic", timeout=60)
                (artifacts / "journal.txt").write_text(journal)
                self.ssh("systemctl poweroff", timeout=20, check=False)
                assert self.process is not None
                self.process.wait(timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired, OSError):
                pass
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # our own qemu, by its PID
            self.process.wait(timeout=30)
        if self.console_log.exists():
            shutil.copy(self.console_log, artifacts / "console.log")
