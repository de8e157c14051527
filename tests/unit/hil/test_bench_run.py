"""``python -m hil.run --rig FILE``: which scenarios a bench runs, and a bad file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hil.run import ALL_NAMES, bench_ports, main

pytestmark = pytest.mark.timeout(20)

EXAMPLE = Path(__file__).resolve().parents[3] / "hil" / "bench.example.toml"


def test_the_bench_capable_scenarios_and_their_ports() -> None:
    ports = bench_ports()
    assert ports == {
        "fxs_dial_tone": (1,),
        "fxs_calls_sip_phone": (1,),
        "sip_phone_rings_fxs": (1,),
        "far_end_hangup_releases_fxs": (1,),
        "fxo_inbound_reaches_attendant": (3,),
        "sip_phone_dials_out_on_the_line": (3,),
        "fxs_flash_holds_and_resumes": (1,),
    }
    assert list(ports) == [n for n in ALL_NAMES if n in ports]  # in run order


def test_a_bad_bench_file_stops_the_run_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(EXAMPLE.read_text().replace("port = 3", "port = 30"), encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        main(["--rig", str(path)])
    assert stopped.value.code == 2
    assert "fxo[0].port: must be an integer from 1 to 8, got 30" in capsys.readouterr().err


def test_a_scenario_the_bench_cannot_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = EXAMPLE.read_text()
    fxs_only = raw[: raw.index("[[fxo]]")].replace("channels = 2, channel = 0", "channels = 1")
    tomllib.loads(fxs_only)  # still a whole file
    path = tmp_path / "bench.toml"
    path.write_text(fxs_only, encoding="utf-8")
    for name in ("fxo_inbound_reaches_attendant", "controller_reset_mid_call"):
        with pytest.raises(SystemExit):
            main(["--rig", str(path), "--only", name])
        err = capsys.readouterr().err
        assert f"scenario(s) ['{name}'] not runnable; on this bench: fxs_dial_tone," in err
