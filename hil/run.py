"""`make hil`: every scenario against the sim board, each on a fresh rig; a report.

The analog scenarios run the ports alone (``SimRig``, call control played by the
scenario); the call scenarios run the whole appliance with a SIP desk phone
(``ApplianceRig``). With ``--rig FILE`` (a bench file, hil/README.md) the scenarios a
bench can run go against a real board instead (``BenchRig``); those needing a port
the bench does not wire are left out and said so.

python -m hil.run [--rig hil/bench.toml] [--only NAME,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.report import Report, ScenarioResult
from hil.rig import SimRig
from hil.scenarios.analog import BENCH, PREPARE, SCENARIOS

SCENARIO_TIMEOUT = 45.0

CALL_NAMES = [
    "fxs_calls_sip_phone",
    "sip_phone_rings_fxs",
    "far_end_hangup_releases_fxs",
    "fxo_inbound_reaches_attendant",
    "controller_reset_mid_call",
    "fxs_voicemail_lights_stutter_dial",
    "sip_phone_dials_out_on_the_line",
    "fxs_flash_holds_and_resumes",
]
ALL_NAMES = [*SCENARIOS, *CALL_NAMES]


def _call_scenarios() -> tuple[dict[str, Any], dict[str, Any]]:
    # imported late: the call scenarios need baresip's driver and the whole appliance
    from hil.scenarios.calls import CALL_PREPARE, CALL_SCENARIOS

    return CALL_SCENARIOS, CALL_PREPARE


def bench_ports() -> dict[str, tuple[int, ...]]:
    """The scenarios a bench can run, in run order, with the ports each needs."""
    from hil.scenarios.calls import BENCH as CALL_BENCH

    wanted = {**BENCH, **CALL_BENCH}
    return {name: wanted[name] for name in ALL_NAMES if name in wanted}


async def run_one(name: str, folder: Path, bench: Any = None) -> ScenarioResult:
    """``name`` on a fresh rig: the sim's, or with ``bench`` (a ``BenchConfig``) a
    ``BenchRig`` on it."""
    result = ScenarioResult(name)
    rig: Any
    calls, call_prepare = ({}, {}) if name in SCENARIOS else _call_scenarios()
    scenario = SCENARIOS[name] if name in SCENARIOS else calls[name]
    prepare = PREPARE.get(name) if name in SCENARIOS else call_prepare.get(name)
    if bench is not None:
        from hil.bench import BenchRig

        rig = BenchRig(bench, folder / name)
    elif name in SCENARIOS:
        rig = SimRig(folder / name)
    else:
        from hil.appliance_rig import ApplianceRig

        rig = ApplianceRig(folder / name)
    if prepare is not None:
        prepare(rig)
    started = time.monotonic()
    try:
        await rig.start()
        await asyncio.wait_for(scenario(rig, result), SCENARIO_TIMEOUT)
        result.passed = True
    except AssertionError as exc:
        result.error = str(exc) or "assertion failed"
    except TimeoutError:
        result.error = f"did not finish within {SCENARIO_TIMEOUT:g} s"
    except Exception as exc:  # a rig that cannot start is a failed scenario, reported
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        aclose = getattr(rig, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            rig.close()
        result.seconds = time.monotonic() - started
    return result


async def run(names: list[str], folder: Path, bench: Any = None) -> Report:
    if bench is None:
        report = Report(board="sim", side="sim")
    else:
        report = Report(board=bench.board.name, side=f"bench {bench.name}")
    for name in names:
        report.results.append(await run_one(name, folder, bench))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rig", type=Path, help="a bench file: run against a real board")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--out", type=Path, default=Path("hil-results"))
    args = parser.parse_args(argv)
    bench = None
    known = list(ALL_NAMES)
    left_out: list[str] = []
    if args.rig is not None:
        from hil.bench_config import BenchConfigError, load_bench

        try:
            bench = load_bench(args.rig)
        except BenchConfigError as exc:
            parser.error(str(exc))
        capable = bench_ports()
        wired = bench.ports()
        known = [n for n, ports in capable.items() if set(ports) <= wired]
        left_out = [
            f"{n} (needs port {', '.join(map(str, sorted(set(p) - wired)))})"
            for n, p in capable.items()
            if n not in known
        ]
    names = args.only.split(",") if args.only else known
    unknown = [n for n in names if n not in known]
    if unknown:
        where = "on this bench" if bench is not None else "known"
        parser.error(f"scenario(s) {unknown} not runnable; {where}: {', '.join(known)}")
    for text in left_out:
        sys.stdout.write(f"not on this bench: {text}\n")
    with tempfile.TemporaryDirectory(prefix="yakyak-hil-") as tmp:
        report = asyncio.run(run(names, Path(tmp), bench))
    sys.stdout.write(report.text() + "\n")
    path = report.write_json(args.out)
    sys.stdout.write(f"report: {path}\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
