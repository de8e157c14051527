"""REGISTER-with-digest-auth benchmark: yakyak next to Kamailio, on this machine, in one run.

`make bench` runs this with the venv's python. In one run it:

1. starts a yakyak with 10,000 extensions, records the time from spawn to its `ready` line and
   its idle RSS, registers all 10,000 (10,000 distinct contacts) and records RSS again;
2. starts Kamailio 5.6 as in /work/shared/bench/README.md (tests/bench/kamailio-registrar.cfg
   with a free port and a fresh runtime dir, 2 workers, usrloc in memory, a SQLite subscriber
   table of 1,000 users) and steps sipp's REGISTER rate up until a step is not clean;
3. does the same against a yakyak with the same 1,000 users (`yakyak ext import`);
4. prints both tables, the ratio ours / Kamailio (target >= 0.5), RSS (target idle < 40 MB)
   and start-up time, and writes everything to bench-results/register-*.json.

A step is clean with 0 failed calls and 0 retransmissions, every call successful and the rate
kept (see sipp_load.py). The reference README ran each step 3 times; `--runs 3` does that.
Everything started here is stopped by its PID. `--only kamailio` measures the reference alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import LOCALHOST, Child, cpu_seconds, free_port, sip_answers
from sipp_load import NOISY, SIPP, Step, User, run_step, write_injection

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIO = REPO / "tests" / "e2e" / "sipp" / "register_auth.xml"
KAMAILIO_CFG = HERE / "kamailio-registrar.cfg"
KAMAILIO = "/usr/sbin/kamailio"

DOMAIN = "yakyak.local"
LOAD_USERS = 1_000
MEMORY_USERS = 10_000
CONTACTS_RATE = 500  # REGISTER/s while filling 10,000 contacts; slow enough for any server
IMPORT_CHUNK = 5_000  # rows per `yakyak ext import` file (the importer allows 10,000)
READY_TIMEOUT = 20.0  # s from spawn to `ready`
SETTLE = 2.0  # s after ready (or after load) before reading RSS
PAUSE = 2.0  # s between steps
STEPS = (500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000, 12500, 15000, 17500, 20000)
QUICK_STEPS = (500, 2000, 4000, 8000, 12500, 15000)
RATIO_TARGET = 0.5
IDLE_RSS_TARGET_MB = 40.0
READY = re.compile(r"\bready\b", re.IGNORECASE)

log = logging.getLogger("bench")


class BenchError(RuntimeError):
    """Something the bench cannot go on without; the message says what to do."""


@dataclass
class ServerResult:
    name: str
    steps: list[Step] = field(default_factory=list)
    max_clean_rate: int = 0
    topped_out: bool = False  # the highest planned step was clean: the figure is a floor
    ready_s: float | None = None
    idle_rss_kib: int | None = None
    loaded_rss_kib: int | None = None
    exit_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_clean_rate": self.max_clean_rate,
            "topped_out": self.topped_out,
            "ready_s": self.ready_s,
            "idle_rss_kib": self.idle_rss_kib,
            "loaded_rss_kib": self.loaded_rss_kib,
            "exit_code": self.exit_code,
            "steps": [step.as_dict() for step in self.steps],
        }


def make_users(count: int, first: int) -> list[User]:
    return [User(str(n), f"bench-{n}-pw") for n in range(first, first + count)]


# --- Kamailio ---------------------------------------------------------------------------------


def kamailio_modules() -> Path:
    for candidate in sorted(Path("/usr/lib").glob("*/kamailio/modules")):
        if (candidate / "db_sqlite.so").exists() and (candidate / "auth_db.so").exists():
            return candidate
    raise BenchError(
        "Kamailio modules not found: run `make bench` (installs kamailio and "
        "kamailio-sqlite-modules)"
    )


def write_subscribers(path: Path, users: Sequence[User], domain: str) -> None:
    """Kamailio's subscriber table (auth_db, plain passwords, calculate_ha1) plus the
    `version` row auth_db checks at start-up (subscriber table version 7 in 5.6)."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE version (
                table_name VARCHAR(32) NOT NULL PRIMARY KEY,
                table_version INTEGER DEFAULT 0 NOT NULL);
            INSERT INTO version VALUES ('subscriber', 7);
            CREATE TABLE subscriber (
                id INTEGER PRIMARY KEY NOT NULL,
                username VARCHAR(64) DEFAULT '' NOT NULL,
                domain VARCHAR(64) DEFAULT '' NOT NULL,
                password VARCHAR(64) DEFAULT '' NOT NULL,
                ha1 VARCHAR(128) DEFAULT '' NOT NULL,
                ha1b VARCHAR(128) DEFAULT '' NOT NULL,
                CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
            """
        )
        db.executemany(
            "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
            [(u.number, domain, u.password) for u in users],
        )


def start_kamailio(run_dir: Path, users: Sequence[User]) -> tuple[Child, int]:
    if not os.access(KAMAILIO, os.X_OK):
        raise BenchError(f"{KAMAILIO} is missing: run `make bench`, which installs it")
    rundir = run_dir / "kamailio"
    rundir.mkdir()
    port = free_port()
    cfg = (
        KAMAILIO_CFG.read_text()
        .replace("@BENCH_PORT@", str(port))
        .replace("@BENCH_RUNDIR@", str(rundir))
        .replace("@BENCH_MODULES@", str(kamailio_modules()))
    )
    cfg_path = rundir / "kamailio.cfg"
    cfg_path.write_text(cfg)
    write_subscribers(rundir / "subscriber.sqlite", users, DOMAIN)
    argv = [
        KAMAILIO,
        "-f", str(cfg_path),
        "-P", str(rundir / "kamailio.pid"),
        "-Y", str(rundir),
        "-m", "1024",
        "-M", "16",
        "-DD",
        "-E",
    ]  # fmt: skip
    child = Child("kamailio", argv, rundir / "kamailio.log", cwd=rundir)
    if sip_answers(LOCALHOST, port, READY_TIMEOUT) is None:
        code = child.stop()
        raise BenchError(
            f"Kamailio did not answer SIP on {LOCALHOST}:{port} within {READY_TIMEOUT:.0f} s "
            f"(exit {code}); its log:\n{child.tail()}"
        )
    return child, port


# --- yakyak -----------------------------------------------------------------------------------


def yakyak_cli(*args: str, cwd: Path) -> str:
    command = [sys.executable, "-m", "appliance", *args]
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`yakyak {' '.join(args)}` did not finish in 600 s") from exc
    if result.returncode != 0:
        raise BenchError(
            f"`yakyak {' '.join(args)}` exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}".rstrip()
        )
    return result.stdout + result.stderr


def prepare_yakyak(data: Path, users: Sequence[User]) -> float:
    """`yakyak init` then `yakyak ext import` in chunks; returns the seconds it took."""
    started = time.monotonic()
    cwd = data.parent
    yakyak_cli("init", "--data", str(data), "--admin-password", "bench-admin",
               "--domain", DOMAIN, cwd=cwd)  # fmt: skip
    for start in range(0, len(users), IMPORT_CHUNK):
        chunk = users[start : start + IMPORT_CHUNK]
        csv_path = data.parent / f"{data.name}-import-{start}.csv"
        rows = ["number,password,name,email"]
        rows += [f"{u.number},{u.password},Bench {u.number}," for u in chunk]
        csv_path.write_text("\n".join(rows) + "\n", encoding="ascii")
        yakyak_cli("ext", "import", str(csv_path), "--data", str(data), cwd=cwd)
    return time.monotonic() - started


def start_yakyak(name: str, data: Path) -> tuple[Child, int, float]:
    """`yakyak serve` on free ports; returns the child, its SIP port and spawn-to-ready s."""
    port = free_port()
    argv = [
        sys.executable, "-m", "appliance", "serve",
        "--data", str(data),
        "--sip", f"{LOCALHOST}:{port}",
        "--http", f"{LOCALHOST}:{free_port()}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    child = Child(name, argv, data.parent / f"{name}.log", cwd=data.parent, env=env)
    ready = child.wait_for_line(READY, READY_TIMEOUT)
    if ready is None:
        code = child.stop()
        raise BenchError(
            f"yakyak serve did not print a `ready` line within {READY_TIMEOUT:.0f} s "
            f"(exit code {code}). Is the server (appliance/app.py) there yet? "
            f"`--only kamailio` measures the reference alone. Its output:\n{child.tail()}"
        )
    if sip_answers(LOCALHOST, port, 5.0) is None:
        child.stop()
        raise BenchError(f"yakyak said ready but does not answer SIP on {LOCALHOST}:{port}")
    return child, port, ready


# --- steps ------------------------------------------------------------------------------------


def step_up(
    name: str,
    child: Child,
    port: int,
    injection: Path,
    steps: Sequence[int],
    duration: float,
    runs: int,
    workdir: Path,
) -> ServerResult:
    result = ServerResult(name)
    sipp_port = free_port()  # one Contact per user for all steps (see run_step)
    for index, rate in enumerate(steps):
        clean = True
        for run in range(1, runs + 1):
            if index or run > 1:
                time.sleep(PAUSE)  # bench only: let queues and sockets drain between steps
            step = run_step(
                server=name,
                target=f"{LOCALHOST}:{port}",
                scenario=SCENARIO,
                injection=injection,
                rate=rate,
                duration=duration,
                run=run,
                workdir=workdir,
                server_cpu=lambda: cpu_seconds(child.tree()),
                local_port=sipp_port,
            )
            result.steps.append(step)
            log.info("%s", describe_step(step))
            if child.process.poll() is not None:
                raise BenchError(f"{name} died during the {rate}/s step:\n{child.tail()}")
            if not step.clean:
                clean = False
                break
        if not clean:
            return result
        result.max_clean_rate = rate
    result.topped_out = True
    return result


def describe_step(step: Step) -> str:
    cpu = 100 * step.server_cpu / step.wall if step.wall else 0.0
    sipp_cpu = 100 * step.sipp_cpu / step.wall if step.wall else 0.0
    other = 100 * step.other_cpu / step.wall if step.wall else 0.0
    verdict = "clean" if step.clean else f"NOT CLEAN: {step.reason}"
    return (
        f"{step.server:>8} {step.rate:>6}/s run {step.run}: {verdict}; "
        f"{step.successful}/{step.calls} ok, {step.wall:.1f} s, "
        f"server CPU {cpu:.0f} %, sipp CPU {sipp_cpu:.0f} %, other processes {other:.0f} %"
        + (" -- NOISY: something else was running, do not trust this step" if step.noisy else "")
    )


# --- report -----------------------------------------------------------------------------------


def mb(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MB"


def report(results: dict[str, Any]) -> str:
    servers: list[ServerResult] = results["servers"]
    duration = results["step_seconds"]
    lines = [
        "",
        f"REGISTER with digest auth, sipp -r RATE for {duration:.0f} s per step, "
        f"{results['runs']} run(s) each; clean = 0 failed, 0 retransmissions, rate kept",
        "",
    ]
    header = f"{'rate/s':>8}" + "".join(f"  {s.name:<34}" for s in servers)
    lines.append(header)
    for rate in results["steps"]:
        cells = []
        for server in servers:
            steps = [s for s in server.steps if s.rate == rate]
            if not steps:
                cells.append("-")
            elif all(s.clean for s in steps):
                cpu = max(100 * s.server_cpu / s.wall for s in steps if s.wall)
                noisy = "*" if any(s.noisy for s in steps) else ""
                cells.append(f"clean{noisy} (server CPU {cpu:.0f} %)")
            else:
                bad = next(s for s in steps if not s.clean)
                noisy = "*" if bad.noisy else ""
                cells.append(f"FAIL{noisy} {bad.reason}"[:34])
        if any(c != "-" for c in cells):
            lines.append(f"{rate:>8}" + "".join(f"  {c:<34}" for c in cells))
    lines.append(
        f"{'max':>8}"
        + "".join(
            f"  {str(s.max_clean_rate) + '/s' + (' (top step: more?)' if s.topped_out else ''):<34}"
            for s in servers
        )
    )
    if any(step.noisy for server in servers for step in server.steps):
        lines.append(
            f"{'*':>8}  other processes used > {100 * NOISY:.0f} % of a core during the step: "
            "the machine was not quiet, run again"
        )
    lines.append("")
    by_name = {s.name: s for s in servers}
    if "kamailio" in by_name and "yakyak" in by_name:
        ref = by_name["kamailio"].max_clean_rate
        ours = by_name["yakyak"].max_clean_rate
        ratio = ours / ref if ref else None
        verdict = "n/a" if ratio is None else ("met" if ratio >= RATIO_TARGET else "NOT met")
        shown = "n/a" if ratio is None else f"{ratio:.2f}"
        lines.append(f"ours / Kamailio: {shown} (target >= {RATIO_TARGET}: {verdict})")
    memory = results.get("memory")
    load = by_name.get("yakyak")
    if memory or load:
        lines += memory_table(memory, load)
    lines.append(f"bench took {results['elapsed_s']:.0f} s")
    return "\n".join(lines) + "\n"


def memory_table(memory: dict[str, Any] | None, load: ServerResult | None) -> list[str]:
    """yakyak VmRSS and start-up time, one column per instance."""

    def idle(kib: int | None) -> str:
        if kib is None:
            return "-"
        return f"{mb(kib)} ({'ok' if kib / 1024 < IDLE_RSS_TARGET_MB else 'OVER'})"

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    m = memory or {}
    rows = [
        ("", f"{LOAD_USERS:,} extensions", f"{MEMORY_USERS:,} extensions"),
        (
            f"idle RSS, {SETTLE:.0f} s after ready (target < {IDLE_RSS_TARGET_MB:.0f} MB)",
            idle(load.idle_rss_kib) if load else "-",
            idle(m.get("idle_rss_kib")),
        ),
        (
            f"RSS after {m.get('contacts_registered', 0):,} distinct contacts",
            "-",
            mb(m["contacts_rss_kib"]) if m else "-",
        ),
        ("RSS after the rate steps", mb(load.loaded_rss_kib) if load else "-", "-"),
        ("spawn to `ready`", secs(load.ready_s) if load else "-", secs(m.get("ready_s"))),
    ]
    return ["yakyak memory and start-up:"] + [f"  {a:<46} {b:>18} {c:>18}" for a, b, c in rows]


def machine() -> dict[str, Any]:
    def first_line(argv: Sequence[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "n/a"
        text = (out.stdout + out.stderr).strip()
        return text.splitlines()[0].strip() if text else "n/a"

    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sipp": first_line([SIPP, "-v"]),
        "kamailio": first_line([KAMAILIO, "-v"]),
        "commit": first_line(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
    }


def to_json(results: dict[str, Any]) -> dict[str, Any]:
    out = dict(results)
    out["servers"] = [s.as_dict() for s in results["servers"]]
    return out


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("kamailio", "yakyak"), help="measure one server")
    parser.add_argument("--quick", action="store_true", help="5 s steps and fewer of them")
    parser.add_argument("--duration", type=float, help="seconds per step (default 20, quick 5)")
    parser.add_argument("--steps", help="comma-separated rates, e.g. 500,1000,2000")
    parser.add_argument("--runs", type=int, default=1, help="runs per step, all must be clean")
    parser.add_argument("--keep", action="store_true", help="keep the /tmp run dir and logs")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    duration = args.duration or (5.0 if args.quick else 20.0)
    steps = (
        tuple(int(r) for r in args.steps.split(","))
        if args.steps
        else (QUICK_STEPS if args.quick else STEPS)
    )
    for tool in (SIPP,):
        if not os.access(tool, os.X_OK):
            raise BenchError(f"{tool} is missing: run `make bench`, which installs sip-tester")
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="yakyak-bench-", dir="/tmp"))
    log.info("run dir %s; steps %s/s, %.0f s each", run_dir, list(steps), duration)
    load_users = make_users(LOAD_USERS, 1000)
    injection = write_injection(run_dir / "load-users.csv", load_users, DOMAIN)
    results: dict[str, Any] = {
        "benchmark": "register_auth",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "step_seconds": duration,
        "steps": list(steps),
        "runs": args.runs,
        "servers": [],
        "memory": None,
    }
    children: list[Child] = []
    failed = True
    try:
        if args.only != "kamailio":
            results["memory"] = memory_phase(run_dir, children)
        if args.only != "yakyak":
            kam, port = start_kamailio(run_dir, load_users)
            children.append(kam)
            log.info("kamailio pid %d on %s:%d", kam.pid, LOCALHOST, port)
            server = step_up("kamailio", kam, port, injection, steps, duration, args.runs, run_dir)
            server.exit_code = kam.stop()
            children.remove(kam)
            results["servers"].append(server)
        if args.only != "kamailio":
            results["servers"].append(
                yakyak_load_phase(
                    run_dir, load_users, injection, steps, duration, args.runs, children
                )  # fmt: skip
            )
        failed = False
    except BenchError as exc:
        log.error("%s", exc)
        results["error"] = str(exc)
    finally:
        for child in children:
            child.stop()
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.mkdir(parents=True, exist_ok=True)
        out_file = args.out / f"register-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out_file.write_text(json.dumps(to_json(results), indent=2) + "\n")
        if args.keep or failed:
            log.info("logs kept in %s", run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    sys.stdout.write(report(results))
    sys.stdout.write(f"results: {out_file}\n")
    return 1 if failed else 0


def memory_phase(run_dir: Path, children: list[Child]) -> dict[str, Any]:
    """yakyak with 10,000 extensions: time to ready, idle RSS, RSS with 10,000 contacts."""
    users = make_users(MEMORY_USERS, 10000)
    data = run_dir / "yakyak-memory" / "data"
    data.parent.mkdir()
    prep = prepare_yakyak(data, users)
    log.info("yakyak: %d extensions imported in %.1f s", len(users), prep)
    child, port, ready = start_yakyak("yakyak-memory", data)
    children.append(child)
    log.info("yakyak (memory) pid %d ready after %.2f s", child.pid, ready)
    time.sleep(SETTLE)  # bench only: let start-up garbage settle before reading RSS
    idle = child.rss_kib()
    injection = write_injection(data.parent / "users.csv", users, DOMAIN)
    step = run_step(
        server="yakyak-contacts",
        target=f"{LOCALHOST}:{port}",
        scenario=SCENARIO,
        injection=injection,
        rate=CONTACTS_RATE,
        duration=MEMORY_USERS / CONTACTS_RATE,
        run=1,
        workdir=data.parent,
        server_cpu=lambda: cpu_seconds(child.tree()),
    )
    log.info("%s", describe_step(step))
    time.sleep(SETTLE)
    loaded = child.rss_kib()
    code = child.stop()
    children.remove(child)
    if code != 0:
        log.error("yakyak (memory) exited %d on SIGTERM", code)
    return {
        "extensions": len(users),
        "import_s": round(prep, 2),
        "ready_s": round(ready, 3),
        "idle_rss_kib": idle,
        "contacts_registered": step.successful,
        "contacts_step": step.as_dict(),
        "contacts_rss_kib": loaded,
        "exit_code": code,
    }


def yakyak_load_phase(
    run_dir: Path,
    users: Sequence[User],
    injection: Path,
    steps: Sequence[int],
    duration: float,
    runs: int,
    children: list[Child],
) -> ServerResult:
    data = run_dir / "yakyak-load" / "data"
    data.parent.mkdir()
    prepare_yakyak(data, users)
    child, port, ready = start_yakyak("yakyak", data)
    children.append(child)
    log.info("yakyak pid %d on %s:%d ready after %.2f s", child.pid, LOCALHOST, port, ready)
    time.sleep(SETTLE)  # bench only
    idle = child.rss_kib()
    server = step_up("yakyak", child, port, injection, steps, duration, runs, data.parent)
    server.ready_s = round(ready, 3)
    server.idle_rss_kib = idle
    server.loaded_rss_kib = child.rss_kib()
    server.exit_code = child.stop()
    children.remove(child)
    if server.exit_code != 0:
        log.error("yakyak exited %d on SIGTERM", server.exit_code)
    return server


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        logging.getLogger("bench").error("%s", error)
        sys.exit(2)
