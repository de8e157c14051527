"""sipp as a load generator: one rate step against one server, its counters, pass or fail.

A step is clean when sipp exits 0 and its final -trace_stat counters show every call
successful, FailedCall(C) == 0 and Retransmissions(C) == 0, and sipp finished close to the
planned time (a server that answers slowly makes sipp hold calls open and fall behind the
rate, so the rate was not really sustained).
"""

from __future__ import annotations

import csv
import re
import resource
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from procs import LOCALHOST, free_port, system_busy_seconds

SIPP = "/usr/bin/sipp"
BUFF_SIZE = 4_194_304  # 64 KB sipp default drops packets in sipp itself at ~6,000/s
LATE_FACTOR = 1.15  # a step may take this much longer than planned, plus LATE_SLACK
LATE_SLACK = 2.0  # s: sipp start-up and the last responses
NOISY = 0.15  # other processes busier than this share of one core make a step "noisy"
ARROW = re.compile(r"^\s*(\S+)\s+(-+>|<-+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(\d+))?\s*$")


@dataclass(frozen=True, slots=True)
class User:
    number: str
    password: str


def write_injection(path: Path, users: Sequence[User], domain: str) -> Path:
    """sipp -inf file: user;domain;[authentication ...];[authentication ... wrong password].

    sipp 3.6.1 only expands per-user credentials when the whole [authentication] keyword
    comes from an injection field (see tests/e2e/sipp/register_auth.xml).
    """
    lines = ["SEQUENTIAL"]
    for user in users:
        lines.append(
            f"{user.number};{domain};"
            f"[authentication username={user.number} password={user.password}];"
            f"[authentication username={user.number} password=wrong-{user.password}]"
        )
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


@dataclass(frozen=True, slots=True)
class MessageCount:
    """One row of sipp's scenario screen."""

    message: str
    direction: str  # "send" or "recv"
    count: int
    retrans: int
    timeout: int
    unexpected: int | None


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one sipp run at one rate."""

    server: str
    rate: int
    duration: float
    run: int
    calls: int
    returncode: int
    successful: int
    failed: int
    retransmissions: int
    wall: float  # s from spawning sipp to its exit
    sipp_cpu: float  # CPU s used by sipp
    server_cpu: float  # CPU s used by the server's processes meanwhile
    other_cpu: float  # CPU s used meanwhile by everything else on the machine
    reason: str  # empty when the step is clean
    messages: tuple[MessageCount, ...] = field(default=())

    @property
    def clean(self) -> bool:
        return not self.reason

    @property
    def noisy(self) -> bool:
        """Other work on the machine competed with the step: its figure is not trustworthy."""
        return self.wall > 0 and self.other_cpu / self.wall > NOISY

    @property
    def achieved_rate(self) -> float:
        return self.successful / self.wall if self.wall > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["clean"] = self.clean
        data["noisy"] = self.noisy
        data["achieved_rate"] = round(self.achieved_rate, 1)
        return data


def read_final_stats(path: Path) -> dict[str, str]:
    """The last row of a sipp -trace_stat CSV (';'-separated, header first)."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="latin-1") as f:
        rows = [row for row in csv.reader(f, delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def counter(stats: dict[str, str], name: str) -> int:
    value = stats.get(f"{name}(C)", "")
    return int(value) if value.strip().isdigit() else 0


def parse_scenario_screen(screen: str) -> tuple[MessageCount, ...]:
    """Per-message counts from the last scenario screen in a -trace_screen file."""
    start = screen.rfind("Scenario Screen")
    if start < 0:
        return ()
    rows: list[MessageCount] = []
    for line in screen[start:].splitlines()[1:]:
        if "Screen --" in line:
            break
        if match := ARROW.match(line):
            name, arrow, count, retrans, timeout, unexpected = match.groups()
            rows.append(
                MessageCount(
                    message=name,
                    direction="send" if arrow.endswith(">") else "recv",
                    count=int(count),
                    retrans=int(retrans),
                    timeout=int(timeout),
                    unexpected=int(unexpected) if unexpected is not None else None,
                )
            )
    return tuple(rows)


def run_step(
    *,
    server: str,
    target: str,
    scenario: Path,
    injection: Path,
    rate: int,
    duration: float,
    run: int,
    workdir: Path,
    server_cpu: Callable[[], float],
    local_port: int | None = None,
) -> Step:
    """One sipp run: `rate` REGISTER transactions per second for `duration` seconds.

    Pass the same `local_port` to every step against one server: the Contact is
    sip:USER@127.0.0.1:PORT, so each step then refreshes the same binding. A new port per
    step would add a contact per user per step, growing every 200 OK and, past 10, hitting
    the registrar's per-AOR contact limit.
    """
    calls = max(1, round(rate * duration))
    prefix = workdir / f"{server}-{rate}-{run}"
    stats, screen, errors = (
        prefix.with_name(prefix.name + "-stats.csv"),
        prefix.with_name(prefix.name + "-screen.log"),
        prefix.with_name(prefix.name + "-errors.log"),
    )
    command = [
        SIPP,
        target,
        "-sf",
        str(scenario),
        "-inf",
        str(injection),
        "-i",
        LOCALHOST,
        "-p",
        str(local_port if local_port is not None else free_port()),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(calls),
        "-buff_size",
        str(BUFF_SIZE),
        "-nostdin",
        "-default_behaviors",
        "all,-bye",
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
    ]
    cpu_before = server_cpu()
    busy_before = system_busy_seconds()
    rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            timeout=duration * 3 + 60,
            check=False,
        )
        returncode = completed.returncode
        stderr = completed.stderr
    except subprocess.TimeoutExpired:  # subprocess.run has SIGKILLed sipp by its PID
        returncode = -9
        stderr = "sipp timed out"
    wall = time.monotonic() - started
    busy = system_busy_seconds() - busy_before
    server_used = server_cpu() - cpu_before
    rusage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = (rusage_after.ru_utime - rusage_before.ru_utime) + (
        rusage_after.ru_stime - rusage_before.ru_stime
    )
    final = read_final_stats(stats)
    successful = counter(final, "SuccessfulCall")
    failed = counter(final, "FailedCall")
    retrans = counter(final, "Retransmissions")
    screen_text = screen.read_text(encoding="latin-1") if screen.exists() else ""
    reason = verdict(returncode, calls, successful, failed, retrans, wall, duration, stderr, final)
    return Step(
        server=server,
        rate=rate,
        duration=duration,
        run=run,
        calls=calls,
        returncode=returncode,
        successful=successful,
        failed=failed,
        retransmissions=retrans,
        wall=round(wall, 3),
        sipp_cpu=round(sipp_cpu, 2),
        server_cpu=round(server_used, 2),
        other_cpu=round(max(0.0, busy - server_used - sipp_cpu), 2),
        reason=reason,
        messages=parse_scenario_screen(screen_text),
    )


def verdict(
    returncode: int,
    calls: int,
    successful: int,
    failed: int,
    retrans: int,
    wall: float,
    duration: float,
    stderr: str,
    final: dict[str, str],
) -> str:
    """Why a step is not clean, or "" when it is."""
    if not final:
        detail = stderr.strip().splitlines()[-1:] or ["no output"]
        return f"sipp wrote no statistics (exit {returncode}): {detail[0]}"
    problems = []
    if failed:
        problems.append(f"{failed} failed")
    if retrans:
        problems.append(f"{retrans} retransmissions")
    if successful != calls and not failed:
        problems.append(f"{successful}/{calls} successful")
    if returncode != 0 and not problems:
        problems.append(f"sipp exit {returncode}")
    if wall > duration * LATE_FACTOR + LATE_SLACK:
        problems.append(f"rate not kept: {wall:.1f} s for a {duration:.0f} s step")
    return ", ".join(problems)
