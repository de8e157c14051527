"""A sipp phone for end-to-end tests: registered with register_auth.xml from a free
port, then running a UAS scenario on that port (see test_sipp_call.py and
test_voicemail.py). Test modules import this file, not conftest."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Extension, SippRunner, YakyakServer

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = "/usr/bin/sipp"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return port


def start_uas(
    server: YakyakServer, scenario: str, run_dir: Path, port: int, name: str = "messages"
) -> subprocess.Popen[str]:
    """One sipp UAS run of ``scenario`` on ``port`` (a phone registered from there), in
    the background; its SIP trace goes to ``run_dir/NAME.log``."""
    return subprocess.Popen(
        [
            SIPP,
            server.target,
            "-sf",
            str(SCENARIOS / scenario),
            "-inf",
            str(run_dir / "users.csv"),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_udp_port() & ~1),
            "-rtp_echo",
            "-m",
            "1",
            "-bind_local",
            "-nostdin",
            "-recv_timeout",
            "30000",
            "-trace_msg",
            "-message_file",
            str(run_dir / f"{name}.log"),
            "-trace_err",
            "-error_file",
            str(run_dir / f"{name}-errors.log"),
        ],
        cwd=run_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def register(
    server: YakyakServer, sipp: SippRunner, ext: Extension, run_dir: Path, contacts: int = 1
) -> int:
    """Register ``ext`` with sipp from a free port; the port (where its UAS runs)."""
    run_dir.mkdir()
    (run_dir / "users.csv").write_text(
        f"SEQUENTIAL\n{ext.number};{server.domain};"
        f"[authentication username={ext.number} password={ext.password}]\n",
        encoding="ascii",
    )
    port = free_udp_port()
    registered = sipp("register_auth.xml", server, users=[ext], local_port=port)
    assert registered.returncode == 0, registered.describe()
    seen = server.wait_for_contacts({ext.number: contacts}, timeout=10.0)
    assert seen[ext.number] == contacts
    return port


@contextmanager
def sipp_callee(
    server: YakyakServer,
    sipp: SippRunner,
    ext: Extension,
    scenario: str,
    run_dir: Path,
    contacts: int = 1,
) -> Iterator[subprocess.Popen[str]]:
    """Register ``ext`` from a free port with sipp, then run ``scenario`` as a sipp UAS on
    that port in the background; yields it, and makes sure it is gone afterwards.
    ``contacts``: how many phones ``ext`` has registered once this one has."""
    port = register(server, sipp, ext, run_dir, contacts)
    uas = start_uas(server, scenario, run_dir, port)
    try:
        yield uas
    finally:
        stop_uas(uas)


def stop_uas(uas: subprocess.Popen[str]) -> None:
    if uas.poll() is None:
        uas.kill()
        uas.wait(timeout=5)


def finished(uas: subprocess.Popen[str], run_dir: Path, name: str = "messages") -> None:
    rc = uas.wait(timeout=20)
    messages = (run_dir / f"{name}.log").read_text(errors="replace")
    assert rc == 0, f"sipp callee exit {rc}\n{messages[-4000:]}"
