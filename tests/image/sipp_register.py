"""One REGISTER with digest authentication from sipp (tests/e2e/sipp/register_auth.xml)
to an image under test, for the container and the VM tests alike."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIPP = "/usr/bin/sipp"
REGISTER_SCENARIO = REPO / "tests" / "e2e" / "sipp" / "register_auth.xml"
DOMAIN = "yakyak.local"  # `yakyak firstboot` keeps init's default domain
RELOADED = "directory or lockouts changed: reloaded"  # tests/e2e/test_cli_live.py


def sipp_register(
    number: str, password: str, local_ip: str, target: str, work: Path, wait_s: int = 30
) -> None:
    """Register ``number`` at ``target`` (host:port) from ``local_ip``; fails the test
    with sipp's own error output when the registrar does not answer 200."""
    injection = work / "users.csv"
    injection.write_text(
        "SEQUENTIAL\n"
        f"{number};{DOMAIN};[authentication username={number} password={password}];"
        f"[authentication username={number} password=wrong-{password}]\n"
    )
    errors = work / "sipp-errors.log"
    done = subprocess.run(
        [
            SIPP, "-sf", str(REGISTER_SCENARIO), "-inf", str(injection), "-i", local_ip,
            "-p", "0", "-m", "1", "-timeout", f"{wait_s}s", "-nostdin", "-trace_err",
            "-error_file", str(errors), target,
        ],
        capture_output=True, text=True, timeout=wait_s + 30, cwd=work,
    )  # fmt: skip
    said = errors.read_text() if done.returncode and errors.exists() else ""
    assert done.returncode == 0, f"sipp exited {done.returncode}\n{done.stdout[-2000:]}{said}"
