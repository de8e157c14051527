"""The YakYak rootfs booted as a systemd-nspawn container, in a network namespace of its own.

The container gets a veth pair the test made (`ip netns add`, the host end on 10.231.N.1,
the container's `eth0` on 10.231.N.2 through a .network file in its /run), so SIP and HTTPS
reach it from the host while nothing leaves the machine. Its root is read-only, as on the
board; the "data partition" is a host folder bound at /data and the boot partition one at
/boot/firmware. `--register=no` means no machined, so commands go in through nsenter on the
container's PID 1 (`systemctl -M` needs machined).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NSPAWN = "/usr/bin/systemd-nspawn"
# console log, journal and timings of the last boot
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "image"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@dataclass
class Network:
    """A network namespace with one veth pair: host end `host_if`, container end `eth0`."""

    name: str
    host_if: str
    host_address: str
    address: str

    @classmethod
    def create(cls, tag: int) -> Network:
        net = cls(
            name=f"yakyak-img{tag}",
            host_if=f"yyimg{tag}",
            host_address=f"10.231.{tag % 250}.1",
            address=f"10.231.{tag % 250}.2",
        )
        net.delete()
        _run("ip", "netns", "add", net.name)
        _run("ip", "link", "add", net.host_if, "type", "veth", "peer", "name", f"{net.host_if}c")
        _run("ip", "link", "set", f"{net.host_if}c", "netns", net.name)
        _run("ip", "-n", net.name, "link", "set", f"{net.host_if}c", "name", "eth0")
        _run("ip", "addr", "add", f"{net.host_address}/24", "dev", net.host_if)
        _run("ip", "link", "set", net.host_if, "up")
        return net

    def network_file(self) -> str:
        """systemd-networkd config for the container's eth0: static, the host as gateway
        (`yakyak serve --http lan:443` listens on the default route's address)."""
        return (
            "[Match]\nName=eth0\n\n[Network]\n"
            f"Address={self.address}/24\nGateway={self.host_address}\n"
            # no router here: without this, wait-online waits ~12 s for IPv6 RAs
            "IPv6AcceptRA=no\nMulticastDNS=no\nLLMNR=no\n"
        )

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)


@dataclass
class Container:
    """A booted container; `run()` executes a command inside it."""

    process: subprocess.Popen[bytes]
    leader: int
    network: Network
    data: Path
    boot: Path
    console: Path
    started: float  # time.monotonic() when systemd-nspawn was started

    @property
    def address(self) -> str:
        return self.network.address

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        """Runs argv in all of the container's namespaces; its stdout (stripped)."""
        done = self.run_status(*argv, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} in the container exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout.strip()

    def run_status(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        argv = ["systemctl", "show", unit, *(f"--property={p}" for p in properties)]
        out = self.run(*argv)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for(self, what: str, test: object, timeout: float) -> float:
        """Polls `test()` (a callable returning bool) until true; seconds waited."""
        assert callable(test)
        start = time.monotonic()
        while not test():
            if self.process.poll() is not None:
                raise AssertionError(f"container exited ({self.process.returncode}) waiting {what}")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.5)
        return time.monotonic() - start

    def stop(self, artifacts: Path) -> None:
        """Saves the journal, powers off (SIGTERM: nspawn asks the container's systemd for
        a clean shutdown), and removes the network namespace."""
        artifacts.mkdir(parents=True, exist_ok=True)
        if self.process.poll() is None:
            journal = subprocess.run(
                ["nsenter", "-t", str(self.leader), "-a", "journalctl", "-b", "--no-pager"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            (artifacts / "journal.txt").write_text(journal.stdout + journal.stderr)
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        shutil.copy(self.console, artifacts / "console.log")
        self.network.delete()


def _leader(nspawn_pid: int) -> int | None:
    """The container's PID 1 as the host sees it: a child of systemd-nspawn whose PID in
    its own namespace is 1."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() != str(nspawn_pid):
            continue
        if fields.get("NSpid", "").split()[-1:] == ["1"]:
            return int(entry.name)
    return None


def _dev_null_fix(workdir: Path) -> list[str]:
    """nspawn copies the host's /dev/null with its mode; on a host where it is not
    world-writable (this CI machine's is 0644) the service's user could not open it
    (ALSA's null device does). A 0666 node of our own is bound over it then."""
    if os.stat("/dev/null").st_mode & 0o666 == 0o666:
        return []
    node = workdir / "dev-null"
    if not node.exists():
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(node, 0o666)
    return [f"--bind={node}:/dev/null"]


def boot(rootfs: Path, workdir: Path, tag: int | None = None) -> Container:
    """Boots `rootfs` read-only; returns once the container's PID 1 is known."""
    tag = os.getpid() % 10000 if tag is None else tag
    network = Network.create(tag)
    data, boot_dir, run_net = workdir / "data", workdir / "boot", workdir / "network"
    for folder in (data, boot_dir, run_net):
        folder.mkdir(parents=True, exist_ok=True)
    (run_net / "10-yakyak-test.network").write_text(network.network_file())
    console = workdir / "console.log"
    argv = [
        NSPAWN,
        "--boot",
        "--keep-unit",  # stay in the caller's scope: no machined, no new unit on the host
        "--register=no",
        "--read-only",  # as on the board (rootA/rootB are mounted read-only)
        "--timezone=off",
        "--resolv-conf=off",
        f"--directory={rootfs}",
        f"--machine=yakyak-img{tag}",
        f"--network-namespace-path=/run/netns/{network.name}",
        # networkd inside configures eth0; nspawn keeps CAP_NET_ADMIN only for the
        # networking options it sets up itself, and the namespace is private anyway
        "--capability=CAP_NET_ADMIN",
        f"--bind={data}:/data",
        f"--bind={boot_dir}:/boot/firmware",
        # /etc is read-only; networkd also reads /run/systemd/network
        f"--bind-ro={run_net}:/run/systemd/network",
        "--console=read-only",
    ]
    argv += _dev_null_fix(workdir)
    with console.open("wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    started = time.monotonic()
    leader = None
    while leader is None:
        if process.poll() is not None:
            network.delete()
            raise AssertionError(
                f"systemd-nspawn exited {process.returncode}: {console.read_text()}"
            )
        if time.monotonic() - started > 30:
            process.kill()
            network.delete()
            raise AssertionError("no container PID 1 within 30 s")
        time.sleep(0.2)
        leader = _leader(process.pid)
    return Container(process, leader, network, data, boot_dir, console, started)
