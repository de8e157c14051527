"""Processes the bench starts: output capture, readiness, RSS and CPU from /proc, stop by PID.

Everything here is Linux-only (it reads /proc) and uses the wall clock on purpose: the bench
measures real time. Nothing is ever stopped by name, only by the PIDs we started or found
as descendants of them.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

LOCALHOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEEP_LINES = 5000  # output lines kept in memory; the log file has all of them


def free_port(host: str = LOCALHOST, attempts: int = 50) -> int:
    """A port free for both UDP and TCP on `host`."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def bound_udp_ports() -> set[int]:
    """Local ports of every UDP socket on the machine (/proc/net/udp and udp6)."""
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local = line.split()[1]  # "0100007F:4E20": address and port in hex
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def free_port_range(size: int, low: int = 10000, high: int = 32768) -> int:
    """The first port p in [low, high) with p..p+size-1 all unbound just now.

    Below Linux's default ephemeral range (32768-60999) by default, so sockets bound to
    port 0 meanwhile do not land in it. Another program may still take one later: the
    callers skip ports they cannot bind.
    """
    used = sorted(p for p in bound_udp_ports() if low <= p < high)
    start = low
    for port in used:
        if port - start >= size:
            break
        start = max(start, port + 1)
    if start + size > high:
        raise RuntimeError(f"no {size} consecutive free UDP ports in {low}-{high}")
    return start


def rss_kib(pid: int) -> int | None:
    """VmRSS of one process in KiB, from /proc/PID/status; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses; the rest follows the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """PIDs whose parent chain leads to `pid` (not including it)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            children[int(fields[1])].append(int(entry))  # fields[1] is ppid
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """user + system CPU seconds used so far by these processes (live ones only)."""
    total = 0
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    return total / CLOCK_TICKS


def system_busy_seconds() -> float:
    """CPU seconds all CPUs have spent in processes since boot, plus time stolen by the
    hypervisor (/proc/stat). irq and softirq time are left out: loopback UDP load is
    processed there and belongs to no process, so counting it would blame a quiet machine."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / CLOCK_TICKS


def sip_answers(host: str, port: int, timeout: float) -> float | None:
    """Sends UDP OPTIONS until any SIP response arrives; seconds taken, or None on timeout."""
    start = time.monotonic()
    deadline = start + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCALHOST, 0))
        local_port = sock.getsockname()[1]
        attempt = 0
        while (now := time.monotonic()) < deadline:
            attempt += 1
            sock.sendto(_options(host, port, local_port, attempt), (host, port))
            sock.settimeout(min(0.2, max(0.01, deadline - now)))
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                continue  # nothing listening yet (ICMP port unreachable) or no answer yet
            if data.startswith(b"SIP/2.0 "):
                return time.monotonic() - start
    return None


def _options(host: str, port: int, local_port: int, attempt: int) -> bytes:
    branch = f"z9hG4bK-bench-probe-{os.getpid()}-{attempt}"
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOCALHOST}:{local_port};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:bench@{LOCALHOST}>;tag=probe{attempt}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: bench-probe-{os.getpid()}-{attempt}@{LOCALHOST}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Child:
    """A process we started. Its merged output goes to `log_path` and, recent lines, memory."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = tuple(argv)
        self.log_path = log_path
        self._lines: collections.deque[str] = collections.deque(maxlen=KEEP_LINES)
        self._count = 0
        self._eof = False
        self._changed = threading.Condition()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        if self.process.stdout is None:  # cannot happen with stdout=PIPE
            raise RuntimeError("no stdout pipe")
        self._reader = threading.Thread(
            target=self._pump, args=(self.process.stdout,), name=f"{name}-output", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _pump(self, stream: IO[str]) -> None:
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                with self._changed:
                    self._lines.append(line)
                    self._count += 1
                    self._changed.notify_all()
            log.flush()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> float | None:
        """Seconds from spawn to the first output line matching `pattern`; None if the
        timeout passes or the output ends first."""
        deadline = time.monotonic() + timeout
        checked = 0
        with self._changed:
            while True:
                fresh = min(self._count - checked, len(self._lines))
                for line in list(self._lines)[len(self._lines) - fresh :]:
                    if pattern.search(line):
                        return time.monotonic() - self.started_at
                checked = self._count
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def tail(self, lines: int = 40) -> str:
        with self._changed:
            return "".join(list(self._lines)[-lines:])

    def tree(self) -> list[int]:
        return [self.pid, *descendants(self.pid)]

    def rss_kib(self) -> int | None:
        return rss_kib(self.pid)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM to our PID, wait; then SIGKILL it and any descendant left behind."""
        leftovers = [
            (pid, _start_time(pid))
            for pid in (descendants(self.pid) if self.process.poll() is None else [])
        ]
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout)
        for pid, started in leftovers:  # Kamailio's workers normally exit with their parent
            _kill_if_alive(pid, started, timeout)
        self._reader.join(timeout)
        return code


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # starttime, stat field 22


def _kill_if_alive(pid: int, started: str | None, timeout: float) -> None:
    """SIGKILL `pid` if it outlives `timeout` and is still the process that started at
    `started` (a PID freed meanwhile may belong to someone else by now)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started is None or _start_time(pid) != started:
            return
        time.sleep(0.05)  # bench only: waiting for another process to go away
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
