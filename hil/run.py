"""`make hil`: every scenario against the sim board, each on a fresh rig; a report.

python -m hil.run [--only NAME,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from hil.report import Report, ScenarioResult
from hil.rig import SimRig
from hil.scenarios.analog import PREPARE, SCENARIOS

SCENARIO_TIMEOUT = 30.0


async def run_one(name: str, folder: Path) -> ScenarioResult:
    result = ScenarioResult(name)
    rig = SimRig(folder / name)
    prepare = PREPARE.get(name)
    if prepare is not None:
        prepare(rig)
    started = time.monotonic()
    try:
        await rig.start()
        await asyncio.wait_for(SCENARIOS[name](rig, result), SCENARIO_TIMEOUT)
        result.passed = True
    except AssertionError as exc:
        result.error = str(exc) or "assertion failed"
    except TimeoutError:
        result.error = f"did not finish within {SCENARIO_TIMEOUT:g} s"
    finally:
        rig.close()
        result.seconds = time.monotonic() - started
    return result


async def run(names: list[str], folder: Path) -> Report:
    report = Report(board="sim", side="sim")
    for name in names:
        report.results.append(await run_one(name, folder))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--out", type=Path, default=Path("hil-results"))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    with tempfile.TemporaryDirectory(prefix="yakyak-hil-") as tmp:
        report = asyncio.run(run(names, Path(tmp)))
    sys.stdout.write(report.text() + "\n")
    path = report.write_json(args.out)
    sys.stdout.write(f"report: {path}\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
