"""System health: /proc and /sys parsers on sample text, the probe on a fake tree, the API."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from appliance.web.health import (
    HEALTH_SCHEMA,
    CpuTimes,
    HealthError,
    HealthProbe,
    Memory,
    cpu_percent,
    parse_cpu_times,
    parse_loadavg,
    parse_meminfo,
    parse_temperature,
    parse_uptime,
)

from .conftest import Client

# From a Raspberry Pi 4 (Debian bookworm, kernel 6.1): four CPUs, ten fields per line.
PI_STAT = """\
cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175 0
cpu0 1393280 32966 572637 11590158 4126 0 19813 0 37 0
cpu1 1267567 35043 534880 11773573 3922 0 1871 0 0 0
intr 1080911 0 0 0 0
ctxt 1990473
btime 1062191376
"""
PI_MEMINFO = """\
MemTotal:        3882060 kB
MemFree:         2722372 kB
MemAvailable:    3335080 kB
Buffers:           46592 kB
Cached:           647592 kB
"""


def test_cpu_line_counts_iowait_as_idle_and_skips_guest_time() -> None:
    times = parse_cpu_times(PI_STAT)
    total = 10132153 + 290696 + 3084719 + 46828483 + 16683 + 0 + 25195 + 0  # no guest
    assert times == CpuTimes(busy=total - 46828483 - 16683, total=total)


def test_cpu_use_is_the_busy_share_between_two_samples() -> None:
    before = CpuTimes(busy=1000, total=5000)
    assert cpu_percent(before, CpuTimes(busy=1250, total=6000)) == pytest.approx(25.0)
    assert cpu_percent(None, CpuTimes(busy=1000, total=4000)) == pytest.approx(25.0)  # boot
    assert cpu_percent(before, before) == 0.0  # no time passed
    # Counters that went back (a reboot between samples): since boot, not negative.
    assert cpu_percent(before, CpuTimes(busy=10, total=100)) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("intr 1 2 3\n", "no cpu line"),
        ("cpu  1 2 x 4 5\n", "not a list of integers"),
        ("cpu  1 2 3 4\n", "fewer than 5 fields"),
        ("cpu  1 2 -3 4 5\n", "negative"),
    ],
)
def test_bad_stat_text_raises_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(HealthError, match=reason):
        parse_cpu_times(text)


def test_meminfo_in_bytes_and_its_faults() -> None:
    memory = parse_meminfo(PI_MEMINFO)
    assert memory == Memory(total_bytes=3882060 * 1024, available_bytes=3335080 * 1024)
    assert memory.used_percent == pytest.approx(14.09, abs=0.01)
    with pytest.raises(HealthError, match="MemAvailable missing"):
        parse_meminfo("MemTotal: 100 kB\n")  # kernels before 3.14
    with pytest.raises(HealthError, match="expected 'N kB'"):
        parse_meminfo("MemTotal: 100 MB\nMemAvailable: 5 kB\n")


def test_uptime_loadavg_and_temperature() -> None:
    assert parse_uptime("29357.51 42960.55\n") == 29357.51
    assert parse_loadavg("0.34 0.39 0.43 1/84 1375\n") == (0.34, 0.39, 0.43)
    assert parse_temperature("48312\n") == 48.312
    assert parse_temperature("-5000") == -5.0
    for bad in ("", "nan 1", "-3 1"):
        with pytest.raises(HealthError):
            parse_uptime(bad)
    with pytest.raises(HealthError, match="fewer than 3"):
        parse_loadavg("0.1 0.2")
    with pytest.raises(HealthError, match="not an integer"):
        parse_temperature("48.3")


def fake_tree(root: Path, *, zones: dict[str, tuple[str, str]] | None = None) -> HealthProbe:
    proc = root / "proc"
    proc.mkdir()
    (proc / "stat").write_text(PI_STAT)
    (proc / "meminfo").write_text(PI_MEMINFO)
    (proc / "uptime").write_text("93784.00 1.00\n")
    (proc / "loadavg").write_text("1.00 0.50 0.25 2/100 99\n")
    thermal = root / "thermal"
    thermal.mkdir()
    for name, (kind, temp) in (zones or {}).items():
        (thermal / name).mkdir()
        (thermal / name / "type").write_text(kind + "\n")
        (thermal / name / "temp").write_text(temp)
    (thermal / "cooling_device0").mkdir()  # not a zone: ignored
    data = root / "data"
    data.mkdir()
    return HealthProbe(data, proc=proc, thermal=thermal)


def test_probe_reads_every_source_and_cpu_since_the_previous_look(tmp_path: Path) -> None:
    probe = fake_tree(
        tmp_path,
        zones={
            "thermal_zone10": ("gpu-thermal", "41000"),
            "thermal_zone2": ("cpu-thermal", "48312"),
            "thermal_zone3": ("broken", "garbage"),
        },
    )
    health = probe.read()
    first = health.cpu_percent
    assert first is not None and 0 < first < 100
    assert health.load_average == (1.0, 0.5, 0.25)
    assert health.memory is not None and health.memory.total_bytes == 3882060 * 1024
    assert health.uptime_s == 93784.0
    assert health.disk is not None and health.disk.total_bytes > 0
    assert health.disk.path == str(tmp_path / "data")
    # Zones in number order (2 before 10); the unreadable one left out.
    assert [(t.zone, t.celsius) for t in health.temperatures] == [
        ("cpu-thermal", 48.312),
        ("gpu-thermal", 41.0),
    ]
    # Next look: the difference of the two samples, here 300 busy of 400 ticks.
    (tmp_path / "proc" / "stat").write_text(
        PI_STAT.replace("10132153 290696", "10132453 290696").replace("46828483", "46828583", 1)
    )
    assert probe.read().cpu_percent == pytest.approx(75.0)


def test_probe_without_proc_or_thermal_says_not_known(tmp_path: Path) -> None:
    probe = HealthProbe(None, proc=tmp_path / "none", thermal=tmp_path / "none")
    health = probe.read()
    assert dataclasses.astuple(health) == (None, None, None, None, None, ())
    jsonschema.validate(health.as_dict(), HEALTH_SCHEMA)


def test_health_api_needs_system_read_and_matches_its_schema(
    admin: Client, oper: Client, alice: Client
) -> None:
    for client in (admin, oper):
        response = client.get("/api/health")
        assert response.status == 200
        body: dict[str, Any] = response.json()
        jsonschema.validate(body, HEALTH_SCHEMA)
        assert body["disk"] is None  # the test services have no data folder
        assert response.header("Cache-Control") == "no-store"
    assert alice.get("/api/health").status == 403
