"""The systemd units in systemd/: the settings they must keep, their commands against
the real `yakyak` parser, `systemd-analyze verify`, and the exposure scores recorded
in systemd/README.md (`systemd-analyze security --offline`), which must not get worse."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import build_parser
from appliance.config import LAN_HOST, Config
from appliance.system.firstboot import DEFAULT_BOOT_FILE, MARKER
from appliance.system.maintenance import BACKUP_FOLDER

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
SERVICES = ("yakyak", "yakyak-firstboot", "yakyak-backup", "yakyak-dbcheck")
TIMERS = ("yakyak-backup", "yakyak-dbcheck")
ALL_UNITS = tuple(f"{s}.service" for s in SERVICES) + tuple(f"{t}.timer" for t in TIMERS)
VENV_YAKYAK = "/opt/yakyak/venv/bin/yakyak"
STATE = "/var/lib/yakyak"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze missing: Debian package systemd"
)

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections -> key -> every value given, in order (a unit file repeats keys)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, got {values}"
    return values[0]


def words(unit: Unit, section: str, key: str) -> set[str]:
    return {w for value in unit.get(section, {}).get(key, []) for w in value.split()}


def service(name: str) -> Unit:
    return parse_unit(UNITS / f"{name}.service")


def yes(value: str) -> bool:
    return value in ("yes", "true", "1", "on")


def exec_args(unit: Unit) -> list[str]:
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == VENV_YAKYAK
    return argv[1:]


# -- settings ---------------------------------------------------------------------------


def test_the_pbx_is_a_notify_service_with_a_watchdog_and_restarts() -> None:
    unit = service("yakyak")
    s = "Service"
    assert one(unit, s, "Type") == "notify"
    assert one(unit, s, "NotifyAccess") == "main"
    assert 5 <= int(one(unit, s, "WatchdogSec")) <= 60  # the loop pings every second
    assert one(unit, s, "Restart") == "on-failure"
    assert one(unit, s, "RestartSec") == "2"
    assert one(unit, "Unit", "StartLimitIntervalSec") == "0"  # never gives up
    assert "network-online.target" in words(unit, "Unit", "After") & words(unit, "Unit", "Wants")
    assert "yakyak-firstboot.service" in words(unit, "Unit", "After")
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_pbx_runs_as_yakyak_with_only_the_bind_capability() -> None:
    unit = service("yakyak")
    s = "Service"
    assert (one(unit, s, "User"), one(unit, s, "Group")) == ("yakyak", "yakyak")
    assert words(unit, s, "SupplementaryGroups") == {"dialout", "audio", "gpio"}
    assert words(unit, s, "CapabilityBoundingSet") == {"CAP_NET_BIND_SERVICE"}
    assert words(unit, s, "AmbientCapabilities") == {"CAP_NET_BIND_SERVICE"}
    assert one(unit, s, "StateDirectory") == "yakyak"
    assert int(one(unit, s, "LimitNOFILE")) >= 65536  # four sockets per call


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateMounts": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
    "UMask": "0077",
    "StateDirectory": "yakyak",
    "StateDirectoryMode": "0700",
}


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_hardened(name: str) -> None:
    unit = service(name)
    for key, wanted in HARDENING.items():
        assert one(unit, "Service", key) == wanted, key
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert set(filters[1].removeprefix("~").split()) == {"@privileged", "@resources"}
    assert filters[1].startswith("~")


def test_the_pbx_reaches_its_devices_and_nothing_else() -> None:
    unit = service("yakyak")
    s = "Service"
    assert one(unit, s, "PrivateDevices") == "no"  # the UART, ALSA and GPIO must show
    assert one(unit, s, "DevicePolicy") == "closed"
    allowed = {tuple(v.split()) for v in unit[s]["DeviceAllow"]}
    assert allowed == {
        ("char-ttyAMA", "rw"),
        ("char-ttyS", "rw"),
        ("char-alsa", "rw"),
        ("char-gpiochip", "rw"),
        ("/dev/ptmx", "rw"),
        ("char-pts", "rw"),
    }
    assert words(unit, s, "RestrictAddressFamilies") == {"AF_INET", "AF_INET6", "AF_UNIX"}


@pytest.mark.parametrize("name", ("yakyak-firstboot", "yakyak-backup", "yakyak-dbcheck"))
def test_the_oneshots_have_no_capabilities_and_no_network(name: str) -> None:
    unit = service(name)
    s = "Service"
    assert one(unit, s, "Type") == "oneshot"
    assert one(unit, s, "CapabilityBoundingSet") == ""
    assert one(unit, s, "IPAddressDeny") == "any"
    assert one(unit, s, "ProcSubset") == "pid"
    assert yes(one(unit, s, "PrivateDevices"))
    if name != "yakyak-firstboot":
        assert (one(unit, s, "User"), one(unit, s, "PrivateNetwork")) == ("yakyak", "yes")
        assert words(unit, s, "RestrictAddressFamilies") == {"AF_UNIX"}
        assert one(unit, "Unit", "ConditionPathExists") == f"{STATE}/yakyak.db"


def test_first_boot_runs_once_before_the_pbx_and_shows_the_password() -> None:
    unit = service("yakyak-firstboot")
    assert one(unit, "Unit", "ConditionPathExists") == f"!{STATE}/{MARKER}"
    assert one(unit, "Unit", "Before") == "yakyak.service"
    assert yes(one(unit, "Service", "RemainAfterExit"))
    assert one(unit, "Service", "StandardOutput") == "journal+console"
    assert "User" not in unit["Service"]  # root: the boot partition is root's
    assert one(unit, "Service", "ReadWritePaths") == f"-{DEFAULT_BOOT_FILE.parent}"
    assert str(DEFAULT_BOOT_FILE.parent) in words(unit, "Unit", "RequiresMountsFor")
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", TIMERS)
def test_the_timers_run_nightly_and_catch_up(name: str) -> None:
    timer = parse_unit(UNITS / f"{name}.timer")
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:00", one(timer, "Timer", "OnCalendar"))
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Install", "WantedBy") == "timers.target"
    assert "Unit" not in timer["Timer"]  # the service of the same name
    assert (UNITS / f"{name}.service").is_file()


def test_the_commands_are_ones_yakyak_understands() -> None:
    parser = build_parser(Path("var"))
    serve = parser.parse_args(exec_args(service("yakyak")))
    assert (serve.command, serve.data, serve.sip, serve.http) == (
        "serve",
        Path(STATE),
        "0.0.0.0:5060",
        "lan:443",
    )
    # the addresses are ones the configuration takes: `lan` is the LAN address
    config = Config(Path(STATE)).with_overrides(sip=serve.sip, http=serve.http)
    assert (config.http.listen.host, config.http.listen.port) == (LAN_HOST, 443)
    assert {(a.transport, a.port) for a in config.sip.listen} == {("udp", 5060), ("tcp", 5060)}
    first = parser.parse_args(exec_args(service("yakyak-firstboot")))
    assert (first.command, first.data, first.boot_file) == (
        "firstboot",
        Path(STATE),
        DEFAULT_BOOT_FILE,
    )
    backup = parser.parse_args(exec_args(service("yakyak-backup")))
    assert (backup.command, backup.data, backup.keep_days) == ("backup", Path(STATE), 14)
    check = parser.parse_args(exec_args(service("yakyak-dbcheck")))
    assert (check.command, check.data) == ("dbcheck", Path(STATE))
    assert BACKUP_FOLDER in one(service("yakyak-backup"), "Unit", "Description")


def test_the_user_and_its_groups() -> None:
    lines = [
        line.split()
        for line in (UNITS / "sysusers.d" / "yakyak.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    user = next(line for line in lines if line[0] == "u")
    assert user[1] == "yakyak" and user[-1] == "/usr/sbin/nologin"
    assert {line[2] for line in lines if line[:2] == ["m", "yakyak"]} == {
        "dialout",
        "audio",
        "gpio",
    }
    assert ["g", "gpio", "-"] in lines
    rules = (UNITS / "udev" / "60-yakyak-gpio.rules").read_text()
    assert 'KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rules


def test_the_journal_is_persistent_and_bounded() -> None:
    conf = parse_unit(UNITS / "journald.conf.d" / "yakyak.conf")
    assert one(conf, "Journal", "Storage") == "persistent"
    assert one(conf, "Journal", "SystemMaxUse") == "64M"
    assert one(conf, "Journal", "SystemKeepFree") == "256M"
    assert one(conf, "Journal", "RuntimeMaxUse") == "16M"


# -- systemd-analyze ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root directory holding systemd's own units, ours, and a stand-in for the
    venv's `yakyak`, so verify resolves dependencies and ExecStart offline."""
    root = tmp_path_factory.mktemp("root")
    if not SYSTEM_UNITS.is_dir():
        pytest.skip(f"{SYSTEM_UNITS} missing: Debian package systemd")
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    ours = root / "etc" / "systemd" / "system"
    ours.mkdir(parents=True)
    for name in ALL_UNITS:
        shutil.copy(UNITS / name, ours / name)
    tool = root / VENV_YAKYAK.lstrip("/")
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    yield root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=30, check=False)


@needs_analyze
def test_systemd_analyze_verify_is_clean(scratch_root: Path) -> None:
    result = analyze("verify", f"--root={scratch_root}", *ALL_UNITS)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def recorded_scores() -> dict[str, float]:
    text = (UNITS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (yakyak[\w-]*\.service) \| (\d+\.\d) \|$", text, re.MULTILINE)
    return {unit: float(score) for unit, score in rows}


def test_every_service_has_a_recorded_score() -> None:
    assert set(recorded_scores()) == {f"{s}.service" for s in SERVICES}


@needs_analyze
@pytest.mark.parametrize("name", [f"{s}.service" for s in SERVICES])
def test_exposure_stays_at_or_below_the_recorded_score(scratch_root: Path, name: str) -> None:
    recorded = recorded_scores()[name]
    threshold = round(recorded * 10)  # --threshold counts tenths
    result = analyze(
        "security",
        "--offline=true",
        f"--root={scratch_root}",
        f"--threshold={threshold}",
        "--no-pager",
        name,
    )
    found = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert result.returncode == 0, f"{name}: exposure {found.group(1)} > recorded {recorded}"
    assert float(found.group(1)) <= recorded
