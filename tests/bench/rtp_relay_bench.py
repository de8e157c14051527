"""Media relay bench: our MediaRelay next to rtpengine (userspace), side by side in one run.

N calls = 2N G.711 streams of 50 packets/s, 172 bytes each (12-byte RTP header, 160 bytes
of payload), both directions, everything on 127.0.0.1. This process is the generator: it
binds two "phone" sockets per call, has the server under test anchor the call, then sends
and receives every stream on uvloop. Servers:

  direct     no relay: phone A sends straight to phone B. The generator's own ceiling and
             latency floor; relay mode only.
  ours       appliance.media.relay (MediaRelay of two RelayLegs on RtpEndpoints) on uvloop
             in a child process, started per run; legs latch onto the phones' first packet.
  rtpengine  Debian's rtpengine-daemon 10.5, `--table=-1` (no kernel forwarding), started
             once per bench; each call is set up over the ng protocol (offer, answer) and
             deleted after the run (tests/bench/rtpengine.py).

Modes: `relay` (PCMU on both legs) and `transcode` (PCMU on leg A, PCMA on leg B, every
packet translated both ways). rtpengine 10.5 transcodes G.711 in userspace (its `codec`
`transcode`/`mask` offer options); the report also gives ours-transcoding / rtpengine-relaying,
the target in /work/shared/bench/README.md.

The generator (rtp_load.py) stamps every payload with its send time in a form that survives
G.711 transcoding, checks payload types on arrival and spreads the streams over the 20 ms
frame. On a machine with 2 or more CPUs the generator is pinned to the first CPU and the
servers to the others (`--no-pin` turns that off): both need about a core at the top
steps, and rtpengine's worker threads (one per server CPU) would otherwise take turns with
the generator, which then falls behind and the step measures the generator.

A run is clean when < 0.1 % of the packets are lost or arrive over 100 ms late (a jitter
buffer drops those; without that bound a saturated relay hides its backlog in its socket
buffers for seconds), every payload type is right, every stamp decodes and the generator
kept its schedule. A step (a call count) is clean when all its runs are; each server steps
up until a step is not clean. The report gives, per server and mode, the most streams
carried clean, the server's CPU there (its process time; 1 core = 100 %) and latency
p50/p99 (generator -> server -> generator), side by side with the ratios, and writes
OUT/relay-*.json. Nothing is asserted; the exit code is 0 even when a server fails.

    .venv/bin/python tests/bench/rtp_relay_bench.py --quick
    .venv/bin/python tests/bench/rtp_relay_bench.py --steps 100,200,400,800 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import uvloop
from child import ChildServer, affinity
from procs import LOCALHOST, free_port_range
from rtp_load import LOSS_LIMIT, NOISY, SLOTS, TOO_LATE, Run, bind_phones, drive
from rtpengine import NgCall, NgError, Rtpengine, delete_call, set_up_call

from appliance.dsp.g711 import Codec
from appliance.media.ports import PortPool
from appliance.media.relay import MediaRelay, RelayLeg, RtpEndpoint

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

SERVERS = ("direct", "ours", "rtpengine")
MODES = ("relay", "transcode")
STEPS = (100, 200, 400, 600, 800, 1000, 1200, 1600)  # calls; streams = 2 x calls
QUICK_STEPS = (10, 50)
SECONDS, QUICK_SECONDS = 10.0, 2.0
RUNS = 3
MEDIA_PORT_LOW = 20000
LATENCY_AT_CALLS = 400  # the reference README quotes latency at 800 streams


log = logging.getLogger("relay-bench")


# --- our relay, in a child process -----------------------------------------------------------


def relay_main(calls: int, transcode: bool, ports: tuple[int, int], conn: Connection) -> None:
    """The child: `calls` MediaRelays on uvloop until the parent says stop."""

    async def main() -> None:
        pool = PortPool(*ports)
        relays = []
        codec_b = Codec.PCMA if transcode else Codec.PCMU
        for _ in range(calls):
            a = RelayLeg(await RtpEndpoint.open(pool, LOCALHOST), Codec.PCMU, None)
            b = RelayLeg(await RtpEndpoint.open(pool, LOCALHOST), codec_b, None)
            relays.append(MediaRelay(a, b))
        conn.send([(r.a.endpoint.port, r.b.endpoint.port) for r in relays])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        for r in relays:
            r.close()
        for r in relays:
            await r.wait_closed()

    uvloop.run(main())


# --- servers ---------------------------------------------------------------------------------


class Server(Protocol):
    name: str

    def begin(self, calls: int, transcode: bool) -> None: ...
    def wire(self, phones: list[tuple[int, int]], transcode: bool) -> list[tuple[int, int]]:
        """For each call's phone ports (A, B): the ports A and B send to."""
        ...

    def pids(self) -> list[int]: ...
    def end(self) -> None: ...
    def close(self) -> None: ...


class Direct:
    name = "direct"

    def begin(self, calls: int, transcode: bool) -> None:
        return None

    def wire(self, phones: list[tuple[int, int]], transcode: bool) -> list[tuple[int, int]]:
        return [(b, a) for a, b in phones]

    def pids(self) -> list[int]:
        return []

    def end(self) -> None:
        return None

    def close(self) -> None:
        return None


class Ours(ChildServer):
    name = "ours"

    def __init__(self, ports: tuple[int, int], cpus: set[int] | None) -> None:
        super().__init__(cpus)
        self.ports_range = ports
        self.ports: list[tuple[int, int]] = []

    def begin(self, calls: int, transcode: bool) -> None:
        ready = self.spawn(relay_main, (calls, transcode, self.ports_range), "our relay", 60)
        if not isinstance(ready, list):  # relay_main sends its port pairs
            raise RuntimeError(f"our relay said {ready!r} at start")
        self.ports = ready

    def wire(self, phones: list[tuple[int, int]], transcode: bool) -> list[tuple[int, int]]:
        return self.ports  # the legs latch onto the phones' first packets


class RtpengineServer:
    name = "rtpengine"

    def __init__(self, rundir: Path, ports: tuple[int, int], cpus: set[int] | None) -> None:
        with affinity(cpus):  # its worker threads share the server's CPUs
            threads = len(cpus) if cpus else None
            self.daemon = Rtpengine(rundir, *ports, threads)
        self.version = self.daemon.version()
        self.calls: list[NgCall] = []
        self.run_tag = 0

    def begin(self, calls: int, transcode: bool) -> None:
        self.run_tag += 1

    def wire(self, phones: list[tuple[int, int]], transcode: bool) -> list[tuple[int, int]]:
        tag = f"bench-{os.getpid()}-{self.run_tag}"
        for index, (a, b) in enumerate(phones):
            self.calls.append(set_up_call(self.daemon.ng, index, a, b, transcode, tag))
        return [(c.a_sends_to, c.b_sends_to) for c in self.calls]

    def pids(self) -> list[int]:
        return [self.daemon.pid]

    def end(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            delete_call(self.daemon.ng, call)
        if (code := self.daemon.child.process.poll()) is not None:
            raise RuntimeError(f"rtpengine exited ({code}):\n{self.daemon.child.tail()}")

    def close(self) -> None:
        self.daemon.stop()


# --- one run ---------------------------------------------------------------------------------


def one_run(server: Server, mode: str, calls: int, run: int, seconds: float) -> Run:
    result = Run(server.name, mode, calls, run, seconds)
    transcode = mode == "transcode"
    streams = bind_phones(calls, transcode)
    try:
        server.begin(calls, transcode)
        try:
            phones = [
                (streams[2 * i].sock.getsockname()[1], streams[2 * i + 1].sock.getsockname()[1])
                for i in range(calls)
            ]
            for i, (to_a, to_b) in enumerate(server.wire(phones, transcode)):
                streams[2 * i].sock.connect((LOCALHOST, to_a))
                streams[2 * i + 1].sock.connect((LOCALHOST, to_b))
            uvloop.run(drive(streams, seconds, server.pids(), result))
        finally:
            server.end()
    except (NgError, OSError, RuntimeError, EOFError) as exc:
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        log.error("%s %s %d calls run %d: %s", server.name, mode, calls, run, exc)
    finally:
        for stream in streams:
            if stream.transport is not None:
                stream.transport.close()
            stream.sock.close()
    return result


# --- stepping --------------------------------------------------------------------------------


@dataclass
class Series:
    """One server in one mode: its runs and the step it carried clean."""

    server: str
    mode: str
    runs: list[Run] = field(default_factory=list)
    max_clean_calls: int = 0
    topped_out: bool = False  # the highest step was clean: the figure is a floor
    error: str | None = None

    def at(self, calls: int) -> list[Run]:
        return [r for r in self.runs if r.calls == calls]

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "mode": self.mode,
            "max_clean_calls": self.max_clean_calls,
            "max_clean_streams": 2 * self.max_clean_calls,
            "topped_out": self.topped_out,
            "error": self.error,
            "runs": [r.as_dict() for r in self.runs],
        }


def step_up(server: Server, mode: str, steps: Sequence[int], seconds: float, runs: int) -> Series:
    series = Series(server.name, mode)
    for calls in steps:
        for run in range(1, runs + 1):
            result = one_run(server, mode, calls, run, seconds)
            series.runs.append(result)
            log.info("%s", describe(result))
            if not result.clean:
                return series
        series.max_clean_calls = calls
    series.topped_out = True
    return series


def describe(r: Run) -> str:
    verdict = "clean" if r.clean else f"NOT CLEAN: {r.reason}"
    latency = (
        f"p50 {r.p50_ms:.2f} ms p99 {r.p99_ms:.2f} ms"
        if r.p50_ms is not None and r.p99_ms is not None
        else "no latency"
    )
    return (
        f"{r.server:>9} {r.mode:<9} {r.calls:>5} calls {r.streams:>5} streams run {r.run}: "
        f"{verdict}; loss {r.loss:.3f} %, {latency}, server CPU {r.server_cpu:.0f} %, "
        f"generator {r.generator_cpu:.0f} %, other {r.other_cpu:.0f} %"
        + (" -- NOISY" if r.noisy else "")
    )


def open_server(name: str, rundir: Path, ports: tuple[int, int], cpus: set[int] | None) -> Server:
    if name == "direct":
        return Direct()
    if name == "ours":
        return Ours(ports, cpus)
    return RtpengineServer(rundir / "rtpengine", ports, cpus)


def placement(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """CPUs for the generator and for the server: the first CPU, and the others.

    The generator needs about one core at the top steps. Unpinned, rtpengine's worker
    threads (one per CPU) and the generator take turns on the same cores and the generator
    falls behind first, so the step measures the generator; pinned, each side has its own.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


# --- report ----------------------------------------------------------------------------------


def summary(series: Series) -> dict[str, Any]:
    """The max clean step's figures: mean CPU, worst p50 and p99 over its runs."""
    runs = series.at(series.max_clean_calls)
    p50s = [r.p50_ms for r in runs if r.p50_ms is not None]
    p99s = [r.p99_ms for r in runs if r.p99_ms is not None]
    ref = [r for r in series.at(LATENCY_AT_CALLS) if r.clean]
    return {
        "streams": 2 * series.max_clean_calls,
        "cpu": (sum(r.server_cpu for r in runs) / len(runs))
        if runs and series.server != "direct"
        else None,
        "p50": max(p50s) if p50s else None,
        "p99": max(p99s) if p99s else None,
        "p50_ref": max((r.p50_ms for r in ref if r.p50_ms is not None), default=None),
        "p99_ref": max((r.p99_ms for r in ref if r.p99_ms is not None), default=None),
    }


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(results: dict[str, Any], all_series: list[Series]) -> str:
    width = 26
    lines = [
        "",
        f"Media relay: N calls = 2N G.711 streams, 50 pps, 172-byte packets, "
        f"{results['seconds']:g} s per run, {results['runs']} run(s) per step; "
        f"clean = < {LOSS_LIMIT} % of packets lost or over {1000 * TOO_LATE:.0f} ms late "
        "in every run",
        f"generator on CPU {results['generator_cpus'] or 'any'}, servers on CPU "
        f"{results['server_cpus'] or 'any'}; latency is generator -> server -> generator",
        "",
    ]
    for mode in results["modes"]:
        columns = [s for s in all_series if s.mode == mode]
        if not columns:
            continue
        lines.append(f"{mode}: streams  " + "".join(f"{s.server:<{width}}" for s in columns))
        for calls in results["steps"]:
            cells = []
            for s in columns:
                runs = s.at(calls)
                if not runs:
                    cells.append("-")
                elif all(r.clean for r in runs):
                    noisy = "*" if any(r.noisy for r in runs) else ""
                    cpu = max(r.server_cpu for r in runs)
                    worst = max(r.loss for r in runs)
                    load = "" if s.server == "direct" else f" cpu {cpu:.0f}%"
                    cells.append(f"ok{noisy} {worst:.3f}%{load}")
                else:
                    bad = next(r for r in runs if not r.clean)
                    cells.append(f"FAIL{'*' if bad.noisy else ''} {bad.reason}"[: width - 1])
            if any(c != "-" for c in cells):
                lines.append(f"{2 * calls:>16}  " + "".join(f"{c:<{width}}" for c in cells))
        lines.append("")
    header = f"{'':<34}" + "".join(f"{s.server + ' ' + s.mode:<{width}}" for s in all_series)
    lines.append(header)
    rows: list[tuple[str, list[str]]] = [
        ("max clean streams", []),
        ("server CPU there", []),
        ("latency p50 / p99 there, ms", []),
        (f"p50 / p99 at {2 * LATENCY_AT_CALLS} streams, ms", []),
    ]
    for s in all_series:
        fig = summary(s)
        if s.error and not s.runs:
            rows[0][1].append("error")
        else:
            rows[0][1].append(f"{'>= ' if s.topped_out else ''}{fig['streams']}")
        rows[1][1].append("-" if fig["cpu"] is None else f"{fig['cpu']:.0f} %")
        rows[2][1].append(f"{ms(fig['p50'])} / {ms(fig['p99'])}")
        rows[3][1].append(f"{ms(fig['p50_ref'])} / {ms(fig['p99_ref'])}")
    for label, cells in rows:
        lines.append(f"{label:<34}" + "".join(f"{c:<{width}}" for c in cells))
    if any(r.noisy for s in all_series for r in s.runs):
        lines.append(
            f"* other processes used > {100 * NOISY:.0f} % of a core during the run: "
            "the machine was not quiet"
        )
    lines.append("")
    by_key = {(s.server, s.mode): s for s in all_series}
    for label, ours, ref, target in (
        ("relay, ours / rtpengine", ("ours", "relay"), ("rtpengine", "relay"), "> 1.0"),
        (
            "transcode, ours / rtpengine transcoding",
            ("ours", "transcode"),
            ("rtpengine", "transcode"),
            None,
        ),
        (
            "ours transcoding / rtpengine relaying",
            ("ours", "transcode"),
            ("rtpengine", "relay"),
            ">= 0.5",
        ),
    ):
        a, b = by_key.get(ours), by_key.get(ref)
        if a is None or b is None:
            continue
        if not a.max_clean_calls or not b.max_clean_calls:
            lines.append(f"{label}: n/a (no clean step)")
            continue
        ratio = a.max_clean_calls / b.max_clean_calls
        floors = " (a clean top step: more steps needed)" if a.topped_out or b.topped_out else ""
        goal = f", target {target}" if target else ""
        lines.append(f"{label} (max clean streams): {ratio:.2f}{goal}{floors}")
    lines.append(f"bench took {results['elapsed_s']:.0f} s")
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", help="comma-separated call counts (streams = 2 x calls)")
    parser.add_argument("--seconds", type=float, help=f"per run (default {SECONDS:g})")
    parser.add_argument("--runs", type=int, help=f"runs per step, all clean (default {RUNS})")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--modes", default=",".join(MODES), help="relay, transcode or both")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke: steps {QUICK_STEPS}, {QUICK_SECONDS:g} s, 1 run",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not give the generator the first CPU and the server the others",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run dir (rtpengine log)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="results dir")
    args = parser.parse_args(argv)
    for name, allowed in (("servers", SERVERS), ("modes", MODES)):
        chosen = [v for v in getattr(args, name).split(",") if v]
        if bad := [v for v in chosen if v not in allowed]:
            parser.error(f"--{name}: unknown {bad}; choose from {allowed}")
        setattr(args, name, [v for v in allowed if v in chosen])
    return args


def raise_fd_limit() -> None:
    """Phones and relays hold thousands of sockets: soft RLIMIT_NOFILE up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    steps = (
        tuple(int(c) for c in args.steps.split(","))
        if args.steps
        else QUICK_STEPS
        if args.quick
        else STEPS
    )
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    runs = args.runs or (1 if args.quick else RUNS)
    raise_fd_limit()
    generator_cpus, server_cpus = placement(args.pin)
    if generator_cpus is not None:
        os.sched_setaffinity(0, generator_cpus)
    size = 4 * max(steps) + 400  # RTP and RTCP per leg: 4 ports per call, and some spare
    # a block no other program (or bench) uses just now, above yakyak's default RTP range
    # (10000-20000: e2e tests running meanwhile sent RTP into rtpengine's ports there) and
    # below the ephemeral range, where the phones bind
    low = free_port_range(size, low=MEDIA_PORT_LOW)
    ports = (low, low + size - 1)
    run_dir = Path(tempfile.mkdtemp(prefix="yakyak-relay-", dir="/tmp"))
    started = time.monotonic()
    log.info("run dir %s; steps %s calls, %g s x %d runs", run_dir, list(steps), seconds, runs)
    results: dict[str, Any] = {
        "benchmark": "rtp_relay",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "host": platform.node(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "steps": list(steps),
        "seconds": seconds,
        "runs": runs,
        "modes": args.modes,
        "loss_limit_pct": LOSS_LIMIT,
        "slots": SLOTS,
        "media_ports": list(ports),
        "too_late_s": TOO_LATE,
        "generator_cpus": sorted(generator_cpus or []),
        "server_cpus": sorted(server_cpus or []),
    }
    all_series: list[Series] = []
    for name in args.servers:
        try:
            server = open_server(name, run_dir, ports, server_cpus)
        except (NgError, OSError) as exc:
            log.error("%s did not start: %s", name, exc)
            for mode in args.modes:
                all_series.append(Series(name, mode, error=str(exc)))
            continue
        if isinstance(server, RtpengineServer):
            results["rtpengine"] = server.version
        try:
            for mode in args.modes:
                if name == "direct" and mode == "transcode":
                    continue  # no relay, nothing to transcode
                all_series.append(step_up(server, mode, steps, seconds, runs))
        finally:
            server.close()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / f"relay-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out = dict(
        results,
        series=[s.as_dict() for s in all_series],
        summary=[dict(summary(s), server=s.server, mode=s.mode) for s in all_series],
    )
    out_file.write_text(json.dumps(out, indent=2) + "\n")
    sys.stdout.write(report(results, all_series))
    sys.stdout.write(f"results: {out_file}\n")
    failed = any(s.error or any(r.error for r in s.runs) for s in all_series)
    if args.keep or failed:  # rtpengine's log is there
        log.info("run dir kept: %s", run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
