"""`python -m appliance serve` under a fake systemd: READY=1 once it answers SIP, then
STOPPING=1 on SIGTERM (sd_notify(3), through systemd-python as under Type=notify)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ServerFactory

pytestmark = pytest.mark.e2e

NOTIFY_TIMEOUT = 5.0  # s, for a notification after the event that causes it


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    if len(bytes(path)) >= 100:  # sun_path holds 108 bytes
        pytest.fail(f"tmp_path too long for a unix socket path: {path}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield sock


def wait_for_notification(sock: socket.socket, field: str, timeout: float) -> list[str]:
    """Reads notifications until one has the line `field` (e.g. READY=1), or `timeout`
    passes; returns every one read, oldest first."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            break
        seen.append(message)
        if field in message.splitlines():
            break
    return seen


def test_ready_then_stopping(yakyak_servers: ServerFactory, notify_socket: socket.socket) -> None:
    server = yakyak_servers(env={"NOTIFY_SOCKET": notify_socket.getsockname()})

    ready = wait_for_notification(notify_socket, "READY=1", NOTIFY_TIMEOUT)

    # Without systemd-python the server only warns; the Makefile installs `.[test,systemd]`.
    assert ready and "READY=1" in ready[-1].splitlines(), (ready, server.log())
    status = [line for line in ready[-1].splitlines() if line.startswith("STATUS=")]
    assert status and "registrations restored" in status[0], ready
    assert "NOTIFY_SOCKET is set but systemd-python is not installed" not in server.log()

    assert server.stop() == 0, server.log()

    stopping = wait_for_notification(notify_socket, "STOPPING=1", NOTIFY_TIMEOUT)
    assert stopping and "STOPPING=1" in stopping[-1].splitlines(), (stopping, server.log())


def test_watchdog_pings_and_running_status(
    yakyak_servers: ServerFactory, notify_socket: socket.socket
) -> None:
    """After READY=1: WATCHDOG=1 about every second (the housekeeping coroutine) and,
    within STATUS_EVERY rounds, the running STATUS= summary with the web URL."""
    server = yakyak_servers(env={"NOTIFY_SOCKET": notify_socket.getsockname()})
    ready = wait_for_notification(notify_socket, "READY=1", NOTIFY_TIMEOUT)
    assert ready and "READY=1" in ready[-1].splitlines(), (ready, server.log())

    seen: list[str] = []
    deadline = time.monotonic() + 5 + NOTIFY_TIMEOUT  # STATUS_EVERY rounds of 1 s
    while time.monotonic() < deadline:
        seen += wait_for_notification(notify_socket, "WATCHDOG=1", NOTIFY_TIMEOUT)
        if any(m.startswith("STATUS=") and "in progress" in m for m in seen):
            break
    statuses = [m for m in seen if m.startswith("STATUS=")]
    assert statuses, (seen, server.log())
    assert statuses[0].startswith("STATUS=0 calls in progress, 0 registrations; web UI on https://")
    assert seen.count("WATCHDOG=1") >= 3, seen
    assert server.stop() == 0, server.log()
