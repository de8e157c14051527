"""End-to-end fixtures: a real `yakyak serve` subprocess, and sipp/sipsak peers on 127.0.0.1.

`yakyak_server` initialises a data dir in `tmp_path` with `yakyak init` and `yakyak ext add`
(run as `sys.executable -m appliance`), starts `serve --sip 127.0.0.1:PORT --http
127.0.0.1:PORT2` and waits, bounded, for the line saying `ready`. Teardown stops that process
by its PID (SIGTERM, then SIGKILL after a timeout) and fails the test unless it exited 0.

`sipp` runs /usr/bin/sipp with a scenario from tests/e2e/sipp/ and returns its exit code and
final statistics; `sipsak` does the same for /usr/bin/sipsak. Neither skips: a missing tool
fails the test with a hint to run `make test`, which installs them.

Tests choose their own extensions or domain by overriding the `yakyak_extensions` or
`yakyak_domain` fixtures in their module.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

SIPP = "/usr/bin/sipp"
SIPSAK = "/usr/bin/sipsak"
SCENARIOS = Path(__file__).parent / "sipp"
READY = re.compile(r"\bready\b", re.IGNORECASE)
READY_TIMEOUT = 20.0  # s, from spawn to the `ready` line
STOP_TIMEOUT = 10.0  # s, from SIGTERM to exit, before SIGKILL
CLI_TIMEOUT = 30.0  # s, per `yakyak init` / `ext add` call
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Extension:
    number: str
    password: str
    name: str = ""


DEFAULT_EXTENSIONS = (
    Extension("101", "e2e-pass-101", "Alice"),
    Extension("102", "e2e-pass-102", "Bob"),
    Extension("103", "e2e-pass-103", "Carol"),
)


def free_port(host: str = LOCALHOST, attempts: int = 50) -> int:
    """A port that is free for both UDP and TCP on `host` (SIP listens on both)."""
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
    raise RuntimeError(f"no port free for both UDP and TCP on {host} after {attempts} tries")


def missing_tool(path: str) -> str | None:
    if os.access(path, os.X_OK):
        return None
    return f"{path} is missing: run `make test`, which installs sip-tester, sipsak and baresip"


class OutputPump:
    """Reads a child's merged stdout/stderr on a thread, keeping every line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="yakyak-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float, start: int = 0) -> str | None:
        """The first line from index `start` matching `pattern`, or None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        seen = start
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if pattern.search(line):
                        return line
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def line_count(self) -> int:
        with self._changed:
            return len(self._lines)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


@dataclass(frozen=True)
class YakyakServer:
    host: str
    port: int
    data: Path
    domain: str
    extensions: tuple[Extension, ...]
    process: subprocess.Popen[str]
    output: OutputPump
    started_at: float  # time.monotonic() at spawn
    ready_after: float  # seconds from spawn to the `ready` line

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def target(self) -> str:
        """host:port, as sipp takes it."""
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        return self.output.text()

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> str | None:
        """The first log line matching the regex `pattern`, waiting up to `timeout` s."""
        return self.output.wait_for(re.compile(pattern), timeout)

    def extension(self, number: str) -> Extension:
        for ext in self.extensions:
            if ext.number == number:
                return ext
        raise KeyError(number)


def yakyak_cli(
    *args: str, cwd: Path, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Runs `yakyak ARGS` with this interpreter in `cwd`; fails the test on a non-zero exit."""
    command = [sys.executable, "-m", "appliance", *args]
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def init_data_dir(data: Path, domain: str, extensions: Sequence[Extension]) -> None:
    """`yakyak init` then one `yakyak ext add` per extension, run from data's parent."""
    cwd = data.parent
    yakyak_cli(
        "init", "--data", str(data), "--admin-password", "e2e-admin", "--domain", domain, cwd=cwd
    )
    for ext in extensions:
        args = ["ext", "add", ext.number, "--password", ext.password, "--data", str(data)]
        if ext.name:
            args += ["--name", ext.name]
        yakyak_cli(*args, cwd=cwd)


def stop_process(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM to this process's PID, wait, then SIGKILL; returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
            return -signal.SIGKILL
    return process.returncode


def start_server(
    data: Path,
    host: str,
    port: int,
    *,
    domain: str,
    extensions: Sequence[Extension],
    extra: Sequence[str] = (),
) -> YakyakServer:
    command = [
        sys.executable,
        "-m",
        "appliance",
        "serve",
        "--data",
        str(data),
        "--sip",
        f"{host}:{port}",
        "--http",  # never the default port: servers of parallel tests would collide
        f"{host}:{free_port(host)}",
        *extra,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started_at = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=data.parent,  # not the checkout: `-m` would import appliance from the cwd first
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
    )
    if process.stdout is None:  # cannot happen with stdout=PIPE; keeps mypy honest
        raise RuntimeError("no stdout pipe")
    output = OutputPump(process.stdout)
    line = output.wait_for(READY, READY_TIMEOUT)
    if line is None:
        code = stop_process(process)
        output.join(2.0)
        pytest.fail(
            f"`{' '.join(command)}` printed no `ready` line within {READY_TIMEOUT:.0f} s "
            f"(exit code {code}); its output:\n{output.text()}"
        )
    return YakyakServer(
        host=host,
        port=port,
        data=data,
        domain=domain,
        extensions=tuple(extensions),
        process=process,
        output=output,
        started_at=started_at,
        ready_after=time.monotonic() - started_at,
    )


@pytest.fixture
def yakyak_domain() -> str:
    return "yakyak.local"


@pytest.fixture
def yakyak_extensions() -> tuple[Extension, ...]:
    return DEFAULT_EXTENSIONS


@pytest.fixture
def yakyak_server(
    tmp_path: Path, yakyak_domain: str, yakyak_extensions: tuple[Extension, ...]
) -> Iterator[YakyakServer]:
    """A `yakyak serve` on a fresh data dir, UDP and TCP on one free 127.0.0.1 port."""
    data = tmp_path / "data"
    init_data_dir(data, yakyak_domain, yakyak_extensions)
    server = start_server(
        data, LOCALHOST, free_port(), domain=yakyak_domain, extensions=yakyak_extensions
    )
    try:
        yield server
    finally:
        code = stop_process(server.process)
        server.output.join(2.0)
    if code != 0:
        pytest.fail(f"yakyak serve exited {code} on SIGTERM; its output:\n{server.log()}")


# --- sipp -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SippResult:
    """sipp's exit code (0: every call succeeded, 1: some failed) and its final counters."""

    command: tuple[str, ...]
    returncode: int
    stats: dict[str, str]
    screen: str
    errors: str
    messages: str
    output: str = field(repr=False)

    def counter(self, name: str) -> int:
        """A cumulative counter from the -trace_stat CSV, e.g. counter("FailedCall")."""
        return int(self.stats.get(f"{name}(C)", "0") or 0)

    @property
    def successful(self) -> int:
        return self.counter("SuccessfulCall")

    @property
    def failed(self) -> int:
        return self.counter("FailedCall")

    @property
    def retransmissions(self) -> int:
        return self.counter("Retransmissions")

    def describe(self) -> str:
        """Everything worth reading when a test fails."""
        return (
            f"$ {' '.join(self.command)}\nexit code {self.returncode}, "
            f"{self.successful} successful, {self.failed} failed, "
            f"{self.retransmissions} retransmissions\n--- errors\n{self.errors}\n"
            f"--- screen\n{self.screen}\n--- messages (last 6000 chars)\n{self.messages[-6000:]}"
        )


def read_final_stats(path: Path) -> dict[str, str]:
    """The last row of a sipp -trace_stat CSV (';'-separated, header first)."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="latin-1") as f:
        rows = [row for row in csv.reader(f, delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def write_injection(path: Path, domain: str, extensions: Sequence[Extension]) -> Path:
    """sipp -inf file: user;domain;[authentication ...];[authentication ... wrong password].

    sipp 3.6.1 expands per-user credentials only when the whole [authentication] keyword comes
    from an injection field. Passwords must not contain ';', ' ' or ']'.
    """
    lines = ["SEQUENTIAL"]
    for ext in extensions:
        if any(c in ext.password for c in "; ]"):
            raise ValueError(f"password of {ext.number} cannot go in a sipp injection file")
        lines.append(
            f"{ext.number};{domain};"
            f"[authentication username={ext.number} password={ext.password}];"
            f"[authentication username={ext.number} password=wrong-{ext.password}]"
        )
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def read_text(path: Path) -> str:
    return path.read_text(encoding="latin-1", errors="replace") if path.exists() else ""


SippRunner = Callable[..., SippResult]


@pytest.fixture
def sipp(tmp_path: Path) -> SippRunner:
    """Runs sipp against a server; call it as
    `sipp("register_auth.xml", server, calls=1, users=[...], rate=10, local_port=None)`.

    `users` defaults to the server's extensions, one call per CSV line in order.
    """
    problem = missing_tool(SIPP)
    if problem:
        pytest.fail(problem)
    counter = iter(range(1, 1_000_000))

    def run(
        scenario: str,
        server: YakyakServer,
        *,
        calls: int = 1,
        users: Sequence[Extension] | None = None,
        rate: float | None = None,
        local_port: int | None = None,
        transport: str = "u1",
        timeout: float = 45.0,
        extra: Sequence[str] = (),
    ) -> SippResult:
        scenario_path = SCENARIOS / scenario
        if not scenario_path.is_file():
            raise FileNotFoundError(scenario_path)
        run_dir = tmp_path / f"sipp-{next(counter)}-{scenario_path.stem}"
        run_dir.mkdir()
        injection = write_injection(
            run_dir / "users.csv",
            server.domain,
            server.extensions if users is None else users,
        )
        stats = run_dir / "stats.csv"
        screen = run_dir / "screen.log"
        errors = run_dir / "errors.log"
        messages = run_dir / "messages.log"
        command = [
            SIPP,
            server.target,
            "-sf",
            str(scenario_path),
            "-inf",
            str(injection),
            "-i",
            LOCALHOST,
            "-p",
            str(local_port if local_port is not None else free_port()),
            "-t",
            transport,
            "-m",
            str(calls),
            "-r",
            str(rate if rate is not None else max(1, calls)),
            "-nostdin",
            "-default_behaviors",
            "all,-bye",  # an aborted REGISTER must not be followed by a BYE
            "-recv_timeout",
            "10000",
            "-trace_stat",
            "-stf",
            str(stats),
            "-fd",
            "1",
            "-trace_screen",
            "-screen_file",
            str(screen),
            "-trace_err",
            "-error_file",
            str(errors),
            "-trace_msg",
            "-message_file",
            str(messages),
            *extra,
        ]
        try:
            completed = subprocess.run(
                command,
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"sipp did not finish in {timeout:.0f} s: {' '.join(command)}\n"
                f"--- errors\n{read_text(errors)}\n--- messages\n{read_text(messages)[-6000:]}"
                f"\n--- output\n{exc.output!r}"
            )
        return SippResult(
            command=tuple(command),
            returncode=completed.returncode,
            stats=read_final_stats(stats),
            screen=read_text(screen),
            errors=read_text(errors),
            messages=read_text(messages),
            output=completed.stdout + completed.stderr,
        )

    return run


# --- sipsak -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipsakResult:
    """sipsak's exit code: 0 a 2xx came back, 1 another final reply, 2 no reply or auth refused."""

    command: tuple[str, ...]
    returncode: int
    output: str

    def describe(self) -> str:
        return f"$ {' '.join(self.command)}\nexit code {self.returncode}\n{self.output}"


SipsakRunner = Callable[..., SipsakResult]


@pytest.fixture
def sipsak() -> SipsakRunner:
    """Runs sipsak; `sipsak(server, "-U", ...)` targets the server's AOR for `user` if given.

    Examples: `sipsak(server)` sends OPTIONS; `sipsak(server, "-U", "-x", "3600", user="101",
    password=...)` registers 101 (usrloc mode). Pass `-x`: sipsak asks for Expires 15, below
    our Min-Expires of 60, and gets 423 (RFC 3261 §10.3). sipsak 0.9.8.1 also cuts 5-digit
    ports to 4 digits in its Request-URI, From and To, and prints "'CSeq' not found in reply"
    on a 401 it then answers correctly: both are sipsak's quirks.
    """
    problem = missing_tool(SIPSAK)
    if problem:
        pytest.fail(problem)

    def run(
        server: YakyakServer,
        *args: str,
        user: str | None = None,
        password: str | None = None,
        transport: str = "udp",
        timeout: float = 30.0,
    ) -> SipsakResult:
        target = f"sip:{user}@{server.host}:{server.port}" if user else server_uri(server)
        command = [
            SIPSAK,
            "-s",
            target,
            "-l",
            str(free_port()),
            "-E",
            transport,
            "-H",
            LOCALHOST,
            "-vv",
        ]
        if user is not None:
            command += ["-u", user]  # else sipsak sends username="101@"
        if password is not None:
            command += ["-a", password]
        command += list(args)
        try:
            completed = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"sipsak did not finish in {timeout:.0f} s: {' '.join(command)}\n{exc}")
        return SipsakResult(
            tuple(command), completed.returncode, completed.stdout + completed.stderr
        )

    return run


def server_uri(server: YakyakServer) -> str:
    return f"sip:{server.host}:{server.port}"
