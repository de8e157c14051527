"""`make hil`: every scenario against the sim board, each on a fresh rig; a report.

The analog scenarios run the ports alone (``SimRig``, call control played by the
scenario); the call scenarios run the whole appliance with a SIP desk phone
(``ApplianceRig``).

python -m hil.run [--only NAME,...] [--out DIR]
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
from hil.scenarios.analog import PREPARE, SCENARIOS

SCENARIO_TIMEOUT = 45.0


def _call_scenarios() -> tuple[dict[str, Any], dict[str, Any]]:
    # imported late: the call scenarios need baresip's driver and the whole appliance
    from hil.scenarios.calls import CALL_PREPARE, CALL_SCENARIOS

    return CALL_SCENARIOS, CALL_PREPARE


ALL_NAMES = [
    *SCENARIOS,
    "fxs_calls_sip_phone",
    "sip_phone_rings_fxs",
    "far_end_hangup_releases_fxs",
    "fxo_inbound_reaches_attendant",
    "controller_reset_mid_call",
    "fxs_voicemail_lights_stutter_dial",
    "sip_phone_dials_out_on_the_line",
    "fxs_flash_holds_and_resumes",
]


async def run_one(name: str, folder: Path) -> ScenarioResult:
    result = ScenarioResult(name)
    rig: SimRig
    if name in SCENARIOS:
        rig, scenario, prepare = SimRig(folder / name), SCENARIOS[name], PREPARE.get(name)
    else:
        from hil.appliance_rig import ApplianceRig

        calls, call_prepare = _call_scenarios()
        rig, scenario, prepare = ApplianceRig(folder / name), calls[name], call_prepare.get(name)
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
    names = args.only.split(",") if args.only else list(ALL_NAMES)
    unknown = [n for n in names if n not in ALL_NAMES]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(ALL_NAMES)}")
    with tempfile.TemporaryDirectory(prefix="yakyak-hil-") as tmp:
        report = asyncio.run(run(names, Path(tmp)))
    sys.stdout.write(report.text() + "\n")
    path = report.write_json(args.out)
    sys.stdout.write(f"report: {path}\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
