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

More for test modules (which reach helpers through fixtures and methods, since importing
conftest at run time depends on which conftest pytest loaded last; `from conftest import`
under TYPE_CHECKING is fine for annotations): `shared_yakyak_server` (one per module, for
tests that leave no state), `yakyak_servers` (start with config edits or env, restart on
the same data dir), `raw_sip` (hand-built requests over UDP, digest computed with hashlib),
`extension_record`; and on a server, `cli()`, `contacts()` and `wait_for_contacts()` over
`yakyak ext list`, `log_mark()`/`wait_for_log(since=)`, `stop()`.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import pytest

SIPP = "/usr/bin/sipp"
SIPSAK = "/usr/bin/sipsak"
SCENARIOS = Path(__file__).parent / "sipp"
READY = re.compile(r"\bready\b", re.IGNORECASE)
READY_TIMEOUT = 20.0  # s, from spawn to the `ready` line
STOP_TIMEOUT = 10.0  # s, from SIGTERM to exit, before SIGKILL
CLI_TIMEOUT = 30.0  # s, per `yakyak init` / `ext add` call
LOCALHOST = "127.0.0.1"
CONTACTS_TIMEOUT = 5.0  # s, for the registration writer's commit to show in `ext list`
POLL_INTERVAL = 0.2  # s, between two looks while waiting for the server to catch up


@dataclass(frozen=True, slots=True)
class Extension:
    number: str
    password: str
    name: str = ""


T = TypeVar("T")

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


def wait_until(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout: float,
    interval: float = POLL_INTERVAL,
) -> T:
    """Calls `probe` until `accept` takes its value or `timeout` s pass; returns the last
    value either way, so the caller's assert shows what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if accept(value) or time.monotonic() >= deadline:
            return value
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


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

    def wait_for_log(self, pattern: str, timeout: float = 5.0, since: int = 0) -> str | None:
        """The first log line matching the regex `pattern`, waiting up to `timeout` s;
        `since` skips the lines before that index (take it from `log_mark()`)."""
        return self.output.wait_for(re.compile(pattern), timeout, start=since)

    def log_mark(self) -> int:
        """How many log lines there are now: pass it as `since` to wait for new ones."""
        return self.output.line_count()

    def extension(self, number: str) -> Extension:
        for ext in self.extensions:
            if ext.number == number:
                return ext
        raise KeyError(number)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM by PID (SIGKILL after `timeout`); the exit code, -9 if it was killed."""
        code = stop_process(self.process, timeout)
        self.output.join(2.0)
        return code

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`yakyak ARGS --data DIR` on this server's data dir; fails the test unless it exits 0."""
        return yakyak_cli(*args, "--data", str(self.data), cwd=self.data.parent)

    def contacts(self) -> dict[str, int]:
        """{number: contacts} as `yakyak ext list --data DIR` shows them now."""
        return ext_contacts(self.data)

    def wait_for_contacts(
        self, expected: Mapping[str, int], timeout: float = CONTACTS_TIMEOUT
    ) -> dict[str, int]:
        """Polls `ext list` until the given numbers show the given counts, or `timeout`
        runs out; returns the last table seen, which the caller asserts on (the
        registration writer commits asynchronously, so a fresh change may lag)."""
        return wait_until(
            self.contacts,
            lambda seen: all(seen.get(k) == v for k, v in expected.items()),
            timeout,
        )


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


def ext_contacts(data: Path) -> dict[str, int]:
    """`yakyak ext list --data DIR` as {number: contacts}; the count is the last column."""
    result = yakyak_cli("ext", "list", "--data", str(data), cwd=data.parent)
    lines = result.stdout.splitlines()
    if not lines or lines[0].split()[:1] != ["NUMBER"]:
        return {}  # "no extensions; ..."
    table: dict[str, int] = {}
    for line in lines[1:]:
        cells = line.split()
        if len(cells) >= 4 and cells[-1].isdigit():
            table[cells[0]] = int(cells[-1])
    return table


def set_config(data: Path, section: str, key: str, value: str) -> None:
    """Sets `key = value` (TOML text) in `[section]` of DIR/yakyak.toml, replacing the
    commented default `yakyak init` wrote there."""
    path = data / "yakyak.toml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"[{section}]") + 1
    commented = re.compile(rf"#?\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if lines[i].startswith("["):
            lines.insert(i, f"{key} = {value}")
            break
        if commented.match(lines[i]):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.append(f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    env: Mapping[str, str] | None = None,
) -> YakyakServer:
    """Spawns `serve` on `data` and waits, bounded, for `ready`; `env` adds variables."""
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
    child_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    started_at = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=data.parent,  # not the checkout: `-m` would import appliance from the cwd first
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=child_env,
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
def extension_record() -> type[Extension]:
    """The `Extension` class, for test modules that make their own (they cannot import
    conftest reliably): `extension_record("104", "secret-104")`."""
    return Extension


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


@pytest.fixture(scope="module")
def shared_yakyak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YakyakServer]:
    """One `yakyak serve` for a whole module (default domain and extensions), for tests
    that leave nothing behind: parse errors, OPTIONS. Checked like `yakyak_server`."""
    data = tmp_path_factory.mktemp("shared") / "data"
    init_data_dir(data, "yakyak.local", DEFAULT_EXTENSIONS)
    server = start_server(
        data, LOCALHOST, free_port(), domain="yakyak.local", extensions=DEFAULT_EXTENSIONS
    )
    try:
        yield server
    finally:
        code = server.stop()
    if code != 0:
        pytest.fail(f"yakyak serve exited {code} on SIGTERM; its output:\n{server.log()}")


ServerFactory = Callable[..., YakyakServer]


@pytest.fixture
def yakyak_servers(
    tmp_path: Path, yakyak_domain: str, yakyak_extensions: tuple[Extension, ...]
) -> Iterator[ServerFactory]:
    """Starts servers the test shapes itself; call it as
    `yakyak_servers(data=None, config={"sip.min_expires": "1"}, env=None, extra=())`;
    `extra` adds `serve` flags (a later `--sip` wins over the fixture's IPv4 one).

    A `data` dir without a yakyak.toml is initialised first (`tmp_path/data` by default),
    then each `config` item, "section.key": TOML value, is set in its yakyak.toml before
    `serve` starts. Calling it again on the same dir is a restart. Teardown stops every
    server it started by PID and fails the test unless each exited 0 (a test may stop one
    itself first with `server.stop()`).
    """
    started: list[YakyakServer] = []

    def start(
        data: Path | None = None,
        *,
        config: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> YakyakServer:
        data = data if data is not None else tmp_path / "data"
        if not (data / "yakyak.toml").exists():
            init_data_dir(data, yakyak_domain, yakyak_extensions)
        for name, value in (config or {}).items():
            section, _, key = name.partition(".")
            set_config(data, section, key, value)
        server = start_server(
            data,
            LOCALHOST,
            free_port(),
            domain=yakyak_domain,
            extensions=yakyak_extensions,
            extra=extra,
            env=env,
        )
        started.append(server)
        return server

    yield start
    failures = []
    for server in started:
        if getattr(server.process, "killed_by_test", False):
            continue  # a crash the test made itself (SIGKILL by PID)
        code = server.stop()
        if code != 0:
            failures.append(f"yakyak serve (pid {server.pid}) exited {code}:\n{server.log()}")
    if failures:
        pytest.fail("\n".join(failures))


# --- raw SIP over a socket --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SipResponse:
    """A response read off the wire, headers in order as sent."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    @classmethod
    def parse(cls, data: bytes) -> SipResponse:
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
        start, *lines = head.split("\r\n")
        version, status, reason = (start.split(" ", 2) + [""])[:3]
        if version != "SIP/2.0" or not status.isdigit():
            raise ValueError(f"not a SIP response: {start!r}")
        headers = tuple(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines)
        )
        return cls(int(status), reason, headers, data)

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def digest_params(challenge: str) -> dict[str, str]:
    """The parameters of a `Digest ...` challenge, quotes removed."""
    if not challenge.startswith("Digest "):
        raise ValueError(f"not a Digest challenge: {challenge!r}")
    pairs = re.findall(r'([\w-]+)=(?:"([^"]*)"|([^,\s]+))', challenge[len("Digest ") :])
    return {name: quoted or bare for name, quoted, bare in pairs}


def digest_authorization(
    challenge: str, method: str, uri: str, username: str, password: str, cnonce: str = "e2e0"
) -> str:
    """An MD5 `Authorization` value answering `challenge` (RFC 7616 §3.4, qop=auth),
    computed here with hashlib so the test does not trust the server's own digest code."""
    params = digest_params(challenge)
    if params.get("algorithm", "MD5") != "MD5":
        raise ValueError(f"only MD5 is computed here: {challenge!r}")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    realm, nonce = params["realm"], params["nonce"]
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    nc = "00000001"
    response = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    fields = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        "algorithm=MD5",
        f'cnonce="{cnonce}"',
        "qop=auth",
        f"nc={nc}",
    ]
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def branch_of(message: bytes) -> str | None:
    """The branch parameter of a message's first Via, if it has one."""
    match = re.search(rb"^Via:[^\r\n]*?;branch=([^;,\s]+)", message, re.MULTILINE)
    return match.group(1).decode() if match else None


class RawSip:
    """One UDP socket on 127.0.0.1 (or another loopback `source`, to act as a second
    address) talking to a server with hand-built requests.

    `request()` builds the bytes (so a test can break them), `exchange()` sends bytes and
    returns the first final response, or None when none came within the timeout.
    """

    def __init__(self, server: YakyakServer, source: str = LOCALHOST) -> None:
        self.server = server
        self.source = source
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.port = int(self.sock.getsockname()[1])
        self._count = iter(range(1, 1_000_000))

    def __enter__(self) -> RawSip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def uri(self) -> str:
        return f"sip:{self.server.domain}"

    def request(
        self,
        method: str,
        user: str,
        *,
        uri: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        omit: Sequence[str] = (),
        version: str = "SIP/2.0",
        cseq: int = 1,
        call_id: str | None = None,
        transport: str = "UDP",
    ) -> bytes:
        """A request from `user` to `user`, Content-Length 0; `headers` go before it and
        `omit` drops headers by name. Branch and Call-ID are new on every call."""
        n = next(self._count)
        domain = self.server.domain
        branch = f"z9hG4bK-e2e-{self.port}-{n}"
        lines = [
            ("Via", f"SIP/2.0/{transport} {self.source}:{self.port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{user}@{domain}>;tag=e2e{n}"),
            ("To", f"<sip:{user}@{domain}>"),
            ("Call-ID", call_id or f"e2e-{self.port}-{n}@{self.source}"),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{user}@{self.source}:{self.port}>"),
            *headers,
            ("Content-Length", "0"),
        ]
        text = f"{method} {uri or self.uri} {version}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in lines if name not in omit
        )
        return (text + "\r\n").encode()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, (self.server.host, self.server.port))

    def exchange(self, data: bytes, timeout: float = 2.0) -> SipResponse | None:
        """Sends `data` and returns the first final (>= 200) response to it, matched by the
        top Via branch as a client transaction does (RFC 3261 §17.1.3; any response if
        `data` has none), or None within `timeout`."""
        self.send(data)
        return self.receive(timeout, branch_of(data))

    def receive(self, timeout: float = 2.0, branch: str | None = None) -> SipResponse | None:
        """The next final response (with this Via `branch`, if given); others, such as a
        401 resent until its ACK arrives (RFC 3261 §17.2.1), are skipped."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return None
            response = SipResponse.parse(data)
            if response.status >= 200 and branch in (None, branch_of(response.raw)):
                return response
        return None

    @staticmethod
    def digest(challenge: str, method: str, uri: str, username: str, password: str) -> str:
        """`digest_authorization`, for test modules."""
        return digest_authorization(challenge, method, uri, username, password)

    def ack(self, invite: bytes, response: SipResponse) -> None:
        """ACKs a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): same branch,
        Call-ID, From and CSeq number, the response's To; stops the server resending it."""
        head = invite.decode().split("\r\n\r\n", 1)[0].split("\r\n")
        uri, version = head[0].split(" ")[1:]
        fields = dict(line.split(": ", 1) for line in head[1:])
        cseq = fields["CSeq"].split()[0]
        lines = [
            f"ACK {uri} {version}",
            f"Via: {fields['Via']}",
            "Max-Forwards: 70",
            f"From: {fields['From']}",
            f"To: {response.get('To')}",
            f"Call-ID: {fields['Call-ID']}",
            f"CSeq: {cseq} ACK",
            "Content-Length: 0",
        ]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def options(self, timeout: float = 2.0) -> SipResponse | None:
        return self.exchange(self.request("OPTIONS", "e2e", uri=server_uri(self.server)), timeout)


@pytest.fixture
def raw_sip() -> Iterator[Callable[..., RawSip]]:
    """`raw_sip(server)` or `raw_sip(server, source="127.0.0.2")`: a RawSip; all are
    closed at teardown. Only 127.0.0.0/8 sources: traffic stays on loopback."""
    opened: list[RawSip] = []

    def open_one(server: YakyakServer, source: str = LOCALHOST) -> RawSip:
        if not source.startswith("127."):
            raise ValueError(f"{source} is not a loopback address")
        client = RawSip(server, source)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        client.close()


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

    @property
    def local_port(self) -> int:
        """The -p port sipp ran on: its Contact, so a later run there updates that binding."""
        return int(self.command[self.command.index("-p") + 1])

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
