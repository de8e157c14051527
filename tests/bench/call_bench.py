"""Call-setup benchmark: calls/s through sippy's B2BUA, Kamailio and yakyak, in one run.

sipp UAC (tests/bench/sipp/uac_call.xml: INVITE, 100, 180, 200, ACK, 1 s hold, BYE, 200)
-> the server -> sipp UAS (tests/bench/sipp/uas_call.xml), everything on 127.0.0.1. For each
server the call rate steps up until a step is not clean. A step is clean when the UAC's step
is clean as in sipp_load.py (0 failed calls, 0 retransmissions, every call successful, rate
kept) AND the UAS saw 0 failed calls and 0 retransmissions (it is restarted for each step on
the same port, so its counters belong to that step).

Servers, as in /work/shared/bench/README.md:
  sippy     sippy 2.5.0 `b2bua` from PyPI with a static route to the UAS, no media (no
            rtpproxy), no auth, no accounting. It is installed at bench time into a throwaway
            venv under the run dir: the product never depends on it.
  kamailio  Kamailio as a stateful proxy with record-route (tests/bench/kamailio-proxy.cfg,
            `-m 1024`), every INVITE relayed to the UAS.
  yakyak    `yakyak serve` with 1,000 extensions; the UAC authenticates
            (tests/bench/sipp/uac_call_auth.xml: 401/407, then INVITE with credentials)
            and calls extension 2000, which the sipp UAS registered from its port before
            the first step (a B2BUA with anchored media: 4 RTP/RTCP sockets per call).
            A status that rejects every call is reported as "not supported" with it.

Prints a side-by-side table and the ratios ours / sippy (target >= 3) and ours / Kamailio,
and writes bench-results/calls-*.json. Everything started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs import LOCALHOST, Child, cpu_seconds, free_port, sip_answers
from register_bench import (
    DOMAIN,
    KAMAILIO,
    BenchError,
    kamailio_modules,
    machine,
    make_users,
    prepare_yakyak,
    start_yakyak,
)
from register_bench import (
    SCENARIO as REGISTER_SCENARIO,
)
from sipp_load import (
    BUFF_SIZE,
    NOISY,
    SIPP,
    Step,
    User,
    counter,
    read_final_stats,
    run_step,
    write_injection,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
UAC = HERE / "sipp" / "uac_call.xml"
UAC_AUTH = HERE / "sipp" / "uac_call_auth.xml"
UAS = HERE / "sipp" / "uas_call.xml"
KAMAILIO_PROXY_CFG = HERE / "kamailio-proxy.cfg"

SIPPY_REQUIREMENT = "sippy==2.5.0"
SIPPY_FALLBACK = "sippy>=2.5,<2.6"  # the closest available when 2.5.0 itself is not
SERVERS = ("sippy", "kamailio", "yakyak")
USERS = 1_000
READY_TIMEOUT = 20.0
SETTLE = 2.0  # s after ready before reading idle RSS
PAUSE = 2.0  # s between steps: let the servers' transactions and dialogs expire
UAS_LINGER = 1.5  # s after the UAC exits before the UAS is stopped (last stats row)
STEPS = (25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000)
QUICK_STEPS = (25, 50, 100, 200, 500, 1000, 2000, 3000, 4000, 5000)
SIPPY_TARGET = 3.0
CALLEE = "2000"  # the extension the sipp UAS registers as for yakyak

REJECTION = re.compile(r"received 'SIP/2\.0 ([3-6]\d\d) ([^\r\n']*)")

log = logging.getLogger("call-bench")


@dataclass
class CallStep:
    """One rate step: the UAC's sipp step plus what the UAS counted meanwhile."""

    uac: Step
    uas_successful: int
    uas_failed: int
    uas_retransmissions: int
    uas_cpu: float
    rejected: str | None = None  # the first final error status the UAC got, "484 Address ..."

    @property
    def rate(self) -> int:
        return self.uac.rate

    @property
    def reason(self) -> str:
        problems = [self.uac.reason] if self.uac.reason else []
        if self.uas_failed:
            problems.append(f"UAS {self.uas_failed} failed")
        if self.uas_retransmissions:
            problems.append(f"UAS {self.uas_retransmissions} retransmissions")
        return ", ".join(problems)

    @property
    def clean(self) -> bool:
        return not self.reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "uac": self.uac.as_dict(),
            "uas_successful": self.uas_successful,
            "uas_failed": self.uas_failed,
            "uas_retransmissions": self.uas_retransmissions,
            "uas_cpu": self.uas_cpu,
            "rejected": self.rejected,
            "clean": self.clean,
            "reason": self.reason,
        }


@dataclass
class ServerResult:
    name: str
    detail: str = ""
    steps: list[CallStep] = field(default_factory=list)
    max_clean_rate: int = 0
    topped_out: bool = False
    supported: bool = True
    rejected: str | None = None  # why not supported: the status every call was answered with
    error: str | None = None
    idle_rss_kib: int | None = None
    loaded_rss_kib: int | None = None
    exit_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "detail": self.detail,
            "supported": self.supported,
            "rejected": self.rejected,
            "error": self.error,
            "max_clean_rate": self.max_clean_rate,
            "topped_out": self.topped_out,
            "idle_rss_kib": self.idle_rss_kib,
            "loaded_rss_kib": self.loaded_rss_kib,
            "exit_code": self.exit_code,
            "steps": [s.as_dict() for s in self.steps],
        }


# --- the sipp UAS ----------------------------------------------------------------------------


class Uas:
    """A sipp UAS on a fixed port, restarted for every step so its counters are the step's."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.child: Child | None = None
        self.stats: Path | None = None

    def start(self, label: str) -> None:
        self.stats = self.workdir / f"uas-{label}-stats.csv"
        argv = [
            SIPP,
            "-sf", str(UAS),
            "-i", LOCALHOST,
            "-p", str(self.port),
            "-buff_size", str(BUFF_SIZE),
            "-nostdin",
            "-trace_stat", "-stf", str(self.stats), "-fd", "1",
            "-trace_err", "-error_file", str(self.workdir / f"uas-{label}-errors.log"),
        ]  # fmt: skip
        self.child = Child(f"uas-{label}", argv, self.workdir / f"uas-{label}.log",
                           cwd=self.workdir)  # fmt: skip
        time.sleep(0.3)  # bench only: sipp binds its socket right after start
        if self.child.process.poll() is not None:
            raise BenchError(f"the sipp UAS exited at start:\n{self.child.tail()}")

    def cpu(self) -> float:
        return cpu_seconds([self.child.pid]) if self.child else 0.0

    def stop(self) -> dict[str, str]:
        if self.child is None:
            return {}
        self.child.stop()
        self.child = None
        return read_final_stats(self.stats) if self.stats else {}


# --- steps -----------------------------------------------------------------------------------


def call_step(
    name: str,
    server_cpu: Callable[[], float],
    port: int,
    scenario: Path,
    injection: Path,
    rate: int,
    duration: float,
    run: int,
    uas: Uas,
    workdir: Path,
) -> CallStep:
    uas.start(f"{name}-{rate}-{run}")
    uas_cpu_before = uas.cpu()
    uac = run_step(
        server=name,
        target=f"{LOCALHOST}:{port}",
        scenario=scenario,
        injection=injection,
        rate=rate,
        duration=duration,
        run=run,
        workdir=workdir,
        server_cpu=server_cpu,
    )
    time.sleep(UAS_LINGER)  # bench only: the UAS writes its stats row once a second
    uas_cpu = uas.cpu() - uas_cpu_before
    stats = uas.stop()
    # run_step counts every CPU second that is neither the server's nor the UAC's as "other";
    # the UAS is part of the bench, not noise.
    uac = dataclasses.replace(uac, other_cpu=round(max(0.0, uac.other_cpu - uas_cpu), 2))
    errors = workdir / f"{name}-{rate}-{run}-errors.log"
    text = errors.read_text(encoding="latin-1", errors="replace") if errors.exists() else ""
    return CallStep(
        uac=uac,
        uas_successful=counter(stats, "SuccessfulCall"),
        uas_failed=counter(stats, "FailedCall"),
        uas_retransmissions=counter(stats, "Retransmissions"),
        uas_cpu=round(uas_cpu, 2),
        rejected=first_rejection(text),
    )


def step_up(
    result: ServerResult,
    child: Child,
    port: int,
    scenario: Path,
    injection: Path,
    steps: Sequence[int],
    duration: float,
    runs: int,
    uas: Uas,
    workdir: Path,
) -> ServerResult:
    for index, rate in enumerate(steps):
        for run in range(1, runs + 1):
            if index or run > 1:
                time.sleep(PAUSE)  # bench only: let queues, transactions and dialogs drain
            step = call_step(result.name, lambda: cpu_seconds(child.tree()), port, scenario,
                             injection, rate, duration, run, uas, workdir)  # fmt: skip
            result.steps.append(step)
            log.info("%s", describe(step))
            if child.process.poll() is not None:
                raise BenchError(f"{result.name} died during the {rate}/s step:\n{child.tail()}")
            if not step.clean:
                if index == 0 and step.rejected and not step.uac.successful:
                    result.supported = False
                    result.rejected = step.rejected
                    log.warning("%s answers every INVITE with %s: not supported yet",
                                result.name, step.rejected)  # fmt: skip
                return result
        result.max_clean_rate = rate
    result.topped_out = True
    return result


def first_rejection(errors: str) -> str | None:
    """The first final error response (not a 401/407 challenge) in a sipp error log."""
    for match in REJECTION.finditer(errors):
        if match.group(1) not in ("401", "407"):
            return f"{match.group(1)} {match.group(2).strip()}"
    return None


def describe(step: CallStep) -> str:
    s = step.uac
    pct = (lambda v: 100 * v / s.wall) if s.wall else (lambda v: 0.0)
    verdict = "clean" if step.clean else f"NOT CLEAN: {step.reason}"
    return (
        f"{s.server:>8} {s.rate:>5}/s run {s.run}: {verdict}; {s.successful}/{s.calls} ok "
        f"(UAS {step.uas_successful}), {s.wall:.1f} s, server CPU {pct(s.server_cpu):.0f} %, "
        f"sipp CPU UAC {pct(s.sipp_cpu):.0f} % UAS {pct(step.uas_cpu):.0f} %, "
        f"other {pct(s.other_cpu):.0f} %"
        + (" -- NOISY: something else was running, do not trust this step" if s.noisy else "")
    )


# --- servers ---------------------------------------------------------------------------------


def install_sippy(run_dir: Path) -> tuple[Path, str]:
    """A throwaway venv under the run dir with sippy; returns its b2bua and sippy's version."""
    venv = run_dir / "sippy-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    tried = []
    for requirement in (SIPPY_REQUIREMENT, SIPPY_FALLBACK):
        done = subprocess.run([*pip, requirement], capture_output=True, text=True, timeout=600,
                              check=False)  # fmt: skip
        if done.returncode == 0:
            break
        tried.append(f"{requirement}: {(done.stderr or done.stdout).strip()[-500:]}")
    else:
        raise BenchError("pip could not install sippy from PyPI:\n" + "\n".join(tried))
    show = subprocess.run([str(venv / "bin" / "pip"), "show", "sippy"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    version = next((line.split(":", 1)[1].strip() for line in show.stdout.splitlines()
                    if line.startswith("Version:")), "?")  # fmt: skip
    return venv / "bin" / "b2bua", version


def start_sippy(run_dir: Path, uas: Uas) -> tuple[Child, int, str]:
    rundir = run_dir / "sippy"
    rundir.mkdir()
    b2bua, version = install_sippy(run_dir)
    log.info("sippy %s installed in %s", version, b2bua.parent.parent)
    port = free_port()
    argv = [
        str(b2bua),
        "-f",  # foreground
        "-l", LOCALHOST,
        "-p", str(port),
        "-s", f"{LOCALHOST}:{uas.port}",  # --static_route: every call to the sipp UAS
        "-u",  # no Radius auth
        "-D",  # no digest auth
        "-A", "0",  # no accounting
        "-L", str(rundir / "b2bua.log"),
        "-P", str(rundir / "b2bua.pid"),
        "-c", str(rundir / "b2bua.sock"),
    ]  # fmt: skip
    child = Child("sippy", argv, rundir / "sippy.out", cwd=rundir)
    if sip_answers(LOCALHOST, port, READY_TIMEOUT) is None:
        code = child.stop()
        raise BenchError(f"sippy b2bua did not answer SIP on {LOCALHOST}:{port} "
                         f"(exit {code}):\n{child.tail()}")  # fmt: skip
    return child, port, f"sippy {version} b2bua, static route, no media, no auth"


def start_kamailio_proxy(run_dir: Path, uas: Uas) -> tuple[Child, int, str]:
    if not os.access(KAMAILIO, os.X_OK):
        raise BenchError(f"{KAMAILIO} is missing: `make bench-calls` installs it")
    rundir = run_dir / "kamailio"
    rundir.mkdir()
    port = free_port()
    cfg = (
        KAMAILIO_PROXY_CFG.read_text()
        .replace("@BENCH_PORT@", str(port))
        .replace("@BENCH_RUNDIR@", str(rundir))
        .replace("@BENCH_MODULES@", str(kamailio_modules()))
        .replace("@BENCH_UAS@", f"{LOCALHOST}:{uas.port}")
    )
    cfg_path = rundir / "kamailio.cfg"
    cfg_path.write_text(cfg)
    argv = [KAMAILIO, "-f", str(cfg_path), "-P", str(rundir / "kamailio.pid"), "-Y", str(rundir),
            "-m", "1024", "-M", "16", "-DD", "-E"]  # fmt: skip
    child = Child("kamailio", argv, rundir / "kamailio.log", cwd=rundir)
    if sip_answers(LOCALHOST, port, READY_TIMEOUT) is None:
        code = child.stop()
        raise BenchError(f"Kamailio did not answer SIP on {LOCALHOST}:{port} (exit {code}):\n"
                         f"{child.tail()}")  # fmt: skip
    return child, port, "Kamailio stateful proxy, record-route, -m 1024"


def start_yakyak_calls(run_dir: Path, users: Sequence[Any], uas: Uas) -> tuple[Child, int, str]:
    data = run_dir / "yakyak" / "data"
    data.parent.mkdir()
    callee = User(CALLEE, "bench-callee-pw")
    prepare_yakyak(data, [*users, callee])
    # The default cap (500 calls at once, sized for a small board) would refuse calls at
    # the top steps; the bench measures how fast calls are set up, not the cap.
    config = data / "yakyak.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("# max_calls = 500", "max_calls = 20000"), encoding="utf-8")
    child, port, ready = start_yakyak("yakyak", data)
    log.info("yakyak ready after %.2f s", ready)
    register_uas(run_dir / "yakyak", port, uas, callee)
    return child, port, f"yakyak serve, {len(users):,} extensions, digest auth on INVITE"


def register_uas(workdir: Path, port: int, uas: Uas, callee: Any) -> None:
    """REGISTER extension CALLEE from the UAS's port, so yakyak calls the UAS there."""
    injection = write_injection(workdir / "callee.csv", [callee], DOMAIN)
    argv = [
        SIPP, f"{LOCALHOST}:{port}",
        "-sf", str(REGISTER_SCENARIO),
        "-inf", str(injection),
        "-i", LOCALHOST, "-p", str(uas.port),
        "-m", "1", "-nostdin", "-timeout", "10",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise BenchError(f"the UAS could not register as {CALLEE}: {done.stdout[-2000:]}")


def measure(
    name: str,
    run_dir: Path,
    injection: Path,
    users: Sequence[Any],
    steps: Sequence[int],
    duration: float,
    runs: int,
    children: list[Child],
) -> ServerResult:
    result = ServerResult(name)
    workdir = run_dir / f"{name}-steps"
    workdir.mkdir()
    uas = Uas(workdir)
    try:
        if name == "sippy":
            child, port, result.detail = start_sippy(run_dir, uas)
            scenario = UAC
        elif name == "kamailio":
            child, port, result.detail = start_kamailio_proxy(run_dir, uas)
            scenario = UAC
        else:
            child, port, result.detail = start_yakyak_calls(run_dir, users, uas)
            scenario = UAC_AUTH
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        log.error("%s: %s", name, exc)
        result.error = str(exc)
        result.supported = False
        return result
    children.append(child)
    log.info("%s pid %d on %s:%d, UAS on %d", name, child.pid, LOCALHOST, port, uas.port)
    try:
        time.sleep(SETTLE)  # bench only
        result.idle_rss_kib = rss_tree(child)
        step_up(result, child, port, scenario, injection, steps, duration, runs, uas, workdir)
        result.loaded_rss_kib = rss_tree(child)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:  # stop stepping this one
        log.error("%s: %s", name, exc)
        result.error = str(exc)
    finally:
        uas.stop()
        result.exit_code = child.stop()
        children.remove(child)
    return result


def rss_tree(child: Child) -> int:
    from procs import rss_kib

    return sum(rss_kib(pid) or 0 for pid in child.tree())


# --- report ----------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    servers: list[ServerResult] = results["servers"]
    width = 30
    lines = [
        "",
        f"Call setups (INVITE..200, ACK, 1 s hold, BYE..200), sipp -r RATE for "
        f"{results['step_seconds']:.0f} s per step, {results['runs']} run(s) each; "
        "clean = 0 failed, 0 retransmissions at UAC and UAS, rate kept",
        "",
        f"{'calls/s':>8}" + "".join(f"  {s.name:<{width}}" for s in servers),
    ]
    for rate in results["steps"]:
        cells = []
        for server in servers:
            steps = [s for s in server.steps if s.rate == rate]
            if not steps:
                cells.append("-")
            elif all(s.clean for s in steps):
                cpu = max(100 * s.uac.server_cpu / s.uac.wall for s in steps if s.uac.wall)
                noisy = "*" if any(s.uac.noisy for s in steps) else ""
                cells.append(f"clean{noisy} (server CPU {cpu:.0f} %)")
            else:
                bad = next(s for s in steps if not s.clean)
                noisy = "*" if bad.uac.noisy else ""
                cells.append(f"FAIL{noisy} {bad.reason}"[:width])
        if any(c != "-" for c in cells):
            lines.append(f"{rate:>8}" + "".join(f"  {c:<{width}}" for c in cells))
    lines.append(f"{'max':>8}" + "".join(f"  {headline(s):<{width}}" for s in servers))
    lines.append(
        f"{'RSS':>8}"
        + "".join(
            f"  {mb(s.idle_rss_kib) + ' idle, ' + mb(s.loaded_rss_kib) + ' load':<{width}}"
            for s in servers
        )  # fmt: skip
    )
    if any(step.uac.noisy for s in servers for step in s.steps):
        lines.append(f"{'*':>8}  other processes used > {100 * NOISY:.0f} % of a core: "
                     "the machine was not quiet, run again")  # fmt: skip
    lines.append("")
    for s in servers:
        lines.append(f"  {s.name}: {s.detail or '-'}")
    lines.append("")
    by_name = {s.name: s for s in servers}
    ours = by_name.get("yakyak")
    for ref_name, target in (("sippy", SIPPY_TARGET), ("kamailio", None)):
        ref = by_name.get(ref_name)
        if ours is None or ref is None:
            continue
        label = f"ours / {ref_name}"
        if not ours.supported or not ours.max_clean_rate or not ref.max_clean_rate:
            if ours.rejected:
                why = f"yakyak does not route calls yet: {ours.rejected}"
            elif ours.error:
                why = f"yakyak failed: {ours.error.splitlines()[0][:120]}"
            else:
                why = "no clean step"
            lines.append(f"{label}: n/a ({why})")
            continue
        ratio = ours.max_clean_rate / ref.max_clean_rate
        goal = (
            ""
            if target is None
            else (f" (target >= {target:g}: {'met' if ratio >= target else 'NOT met'})")
        )
        lines.append(f"{label}: {ratio:.2f}{goal}")
    lines.append(f"bench took {results['elapsed_s']:.0f} s")
    return "\n".join(lines) + "\n"


def headline(s: ServerResult) -> str:
    if s.rejected:
        return f"not supported yet ({s.rejected})"
    if s.error and (not s.supported or not s.steps):
        return "error (see log)"
    return f"{s.max_clean_rate}/s" + (" (top step: more?)" if s.topped_out else "")


def mb(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MB"


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=SERVERS, help="measure one server")
    parser.add_argument("--quick", action="store_true", help="5 s steps and fewer of them")
    parser.add_argument("--duration", type=float, help="seconds per step (default 20, quick 5)")
    parser.add_argument("--steps", help="comma-separated call rates, e.g. 50,100,200")
    parser.add_argument("--runs", type=int, default=1, help="runs per step, all must be clean")
    parser.add_argument("--keep", action="store_true", help="keep the /tmp run dir and logs")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)  # fmt: skip
    duration = args.duration or (5.0 if args.quick else 20.0)
    steps = (tuple(int(r) for r in args.steps.split(",")) if args.steps
             else (QUICK_STEPS if args.quick else STEPS))  # fmt: skip
    if not os.access(SIPP, os.X_OK):
        raise SystemExit(f"{SIPP} is missing: `make bench-calls` installs sip-tester")
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="yakyak-calls-", dir="/tmp"))
    log.info("run dir %s; steps %s calls/s, %.0f s each", run_dir, list(steps), duration)
    users = make_users(USERS, 1000)
    injection = write_injection(run_dir / "users.csv", users, DOMAIN)
    results: dict[str, Any] = {
        "benchmark": "call_setup",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "step_seconds": duration,
        "steps": list(steps),
        "runs": args.runs,
        "servers": [],
    }
    children: list[Child] = []
    try:
        for name in SERVERS:
            if args.only in (None, name):
                results["servers"].append(measure(name, run_dir, injection, users, steps,
                                                  duration, args.runs, children))  # fmt: skip
    finally:
        for child in children:
            child.stop()
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.mkdir(parents=True, exist_ok=True)
        out_file = args.out / f"calls-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out = dict(results, servers=[s.as_dict() for s in results["servers"]])
        out_file.write_text(json.dumps(out, indent=2) + "\n")
    # a server that failed keeps the logs; the exit code stays 0: the table says what failed
    failed = any(s.error for s in results["servers"])
    if args.keep or failed:
        log.info("logs kept in %s", run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    sys.stdout.write(report(results))
    sys.stdout.write(f"results: {out_file}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
