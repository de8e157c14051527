"""System health for the dashboard: CPU use, load, memory, disk of the data folder,
uptime and temperatures, read straight from /proc and /sys (proc(5)), without psutil.

The parsers are pure functions of the files' text, so tests feed them samples; the
`HealthProbe` is the edge that reads the files, keeps the previous CPU sample (use is a
difference of two counters) and turns any unreadable or malformed source into "not
known" for that item alone.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from appliance.web.registry import Registry, Schema
from appliance.web.schemas import obj

MAX_ZONES: Final = 16  # thermal zones read per look; a Pi has one or two
MAX_READ: Final = 64 * 1024  # bytes of one /proc file: /proc/stat grows with CPUs
# proc(5): the first eight numbers of the "cpu" line are user, nice, system, idle,
# iowait, irq, softirq, steal. guest and guest_nice are already counted in user and
# nice, so adding them would count guest time twice.
_CPU_FIELDS: Final = 8
_IDLE: Final = 3
_IOWAIT: Final = 4
_ZONE: Final = re.compile(r"thermal_zone[0-9]{1,3}")
T = TypeVar("T")


class HealthError(ValueError):
    """A /proc or /sys text that does not read as the kernel writes it."""


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative CPU time in clock ticks, all CPUs together."""

    busy: int
    total: int


@dataclass(frozen=True, slots=True)
class Memory:
    total_bytes: int
    available_bytes: int

    @property
    def used_percent(self) -> float:
        if self.total_bytes <= 0:
            return 0.0
        return 100.0 * (self.total_bytes - self.available_bytes) / self.total_bytes


@dataclass(frozen=True, slots=True)
class Disk:
    path: str
    total_bytes: int
    free_bytes: int  # what an unprivileged process may still write (f_bavail)

    @property
    def used_percent(self) -> float:
        if self.total_bytes <= 0:
            return 0.0
        return 100.0 * (self.total_bytes - self.free_bytes) / self.total_bytes


@dataclass(frozen=True, slots=True)
class Temperature:
    zone: str  # the zone's type, "cpu-thermal" on a Pi
    celsius: float


@dataclass(frozen=True, slots=True)
class Health:
    cpu_percent: float | None  # busy share since the previous look (since boot at first)
    load_average: tuple[float, float, float] | None
    memory: Memory | None
    disk: Disk | None
    uptime_s: float | None
    temperatures: tuple[Temperature, ...]

    def as_dict(self) -> dict[str, object]:
        memory = self.memory
        disk = self.disk
        return {
            "cpu_percent": None if self.cpu_percent is None else round(self.cpu_percent, 1),
            "load_average": None if self.load_average is None else list(self.load_average),
            "memory": None
            if memory is None
            else {
                "total_bytes": memory.total_bytes,
                "available_bytes": memory.available_bytes,
                "used_percent": round(memory.used_percent, 1),
            },
            "disk": None
            if disk is None
            else {
                "path": disk.path,
                "total_bytes": disk.total_bytes,
                "free_bytes": disk.free_bytes,
                "used_percent": round(disk.used_percent, 1),
            },
            "uptime_s": self.uptime_s,
            "temperatures": [{"zone": t.zone, "celsius": t.celsius} for t in self.temperatures],
        }


_NUMBER: Final[Schema] = {"type": ["number", "null"]}
HEALTH_SCHEMA: Final = obj(
    {
        "cpu_percent": _NUMBER,
        "load_average": {
            "type": ["array", "null"],
            "items": {"type": "number"},
            "minItems": 3,
            "maxItems": 3,
        },
        "memory": {
            "oneOf": [
                {"type": "null"},
                obj(
                    {
                        "total_bytes": {"type": "integer"},
                        "available_bytes": {"type": "integer"},
                        "used_percent": {"type": "number"},
                    }
                ),
            ]
        },
        "disk": {
            "oneOf": [
                {"type": "null"},
                obj(
                    {
                        "path": {"type": "string"},
                        "total_bytes": {"type": "integer"},
                        "free_bytes": {"type": "integer"},
                        "used_percent": {"type": "number"},
                    }
                ),
            ]
        },
        "uptime_s": _NUMBER,
        "temperatures": {
            "type": "array",
            "items": obj({"zone": {"type": "string"}, "celsius": {"type": "number"}}),
        },
    }
)


# -- parsers: text in, values out ------------------------------------------------------


def _integers(words: list[str], what: str) -> list[int]:
    try:
        values = [int(w) for w in words]
    except ValueError:
        raise HealthError(f"{what}: not a list of integers: {' '.join(words)[:80]!r}") from None
    if any(v < 0 for v in values):
        raise HealthError(f"{what}: negative counter")
    return values


def parse_cpu_times(stat: str) -> CpuTimes:
    """The all-CPU line of /proc/stat; idle time counts iowait too (the CPU was free)."""
    for line in stat.splitlines():
        words = line.split()
        if words[:1] == ["cpu"]:
            values = _integers(words[1 : 1 + _CPU_FIELDS], "/proc/stat cpu")
            if len(values) < _IOWAIT + 1:  # kernels before 2.5.41 had four fields only
                raise HealthError("/proc/stat cpu: fewer than 5 fields")
            total = sum(values)
            idle = values[_IDLE] + values[_IOWAIT]
            return CpuTimes(busy=total - idle, total=total)
    raise HealthError("/proc/stat: no cpu line")


def cpu_percent(before: CpuTimes | None, after: CpuTimes) -> float:
    """Busy share of the CPU time between two samples; since boot without `before`.
    A counter that went back (a new boot between the samples) also means since boot."""
    start = before if before is not None else CpuTimes(0, 0)
    if after.total < start.total or after.busy < start.busy:
        start = CpuTimes(0, 0)
    elapsed = after.total - start.total
    if elapsed <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (after.busy - start.busy) / elapsed))


def parse_meminfo(text: str) -> Memory:
    """MemTotal and MemAvailable of /proc/meminfo (kernel 3.14 and later), in bytes."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("MemTotal", "MemAvailable"):
            words = rest.split()
            if len(words) != 2 or words[1] != "kB":
                raise HealthError(f"/proc/meminfo {name}: expected 'N kB', got {rest.strip()!r}")
            [kib] = _integers(words[:1], f"/proc/meminfo {name}")
            found[name] = kib * 1024
    if "MemTotal" not in found or "MemAvailable" not in found:
        raise HealthError("/proc/meminfo: MemTotal or MemAvailable missing")
    return Memory(total_bytes=found["MemTotal"], available_bytes=found["MemAvailable"])


def _float(word: str, what: str) -> float:
    try:
        value = float(word)
    except ValueError:
        raise HealthError(f"{what}: not a number: {word[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise HealthError(f"{what}: not a finite number")
    return value


def parse_uptime(text: str) -> float:
    """Seconds since boot, the first number of /proc/uptime."""
    words = text.split()
    if not words:
        raise HealthError("/proc/uptime: empty")
    value = _float(words[0], "/proc/uptime")
    if value < 0:
        raise HealthError("/proc/uptime: negative")
    return value


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages of /proc/loadavg."""
    words = text.split()
    if len(words) < 3:
        raise HealthError("/proc/loadavg: fewer than 3 numbers")
    one, five, fifteen = (_float(w, "/proc/loadavg") for w in words[:3])
    return one, five, fifteen


def parse_temperature(text: str) -> float:
    """A thermal zone's `temp`: millidegrees Celsius (sysfs-class-thermal ABI)."""
    word = text.strip()
    if not re.fullmatch(r"-?[0-9]{1,9}", word):
        raise HealthError(f"thermal temp: not an integer: {word[:40]!r}")
    return int(word) / 1000.0


# -- the edge: reading the files -------------------------------------------------------


def _read(path: Path) -> str:
    with path.open("rb") as f:
        return f.read(MAX_READ).decode("ascii", errors="replace")


class HealthProbe:
    """Reads the machine's health; one per app, shared by the request threads."""

    def __init__(
        self,
        data_dir: Path | None,
        *,
        proc: Path = Path("/proc"),
        thermal: Path = Path("/sys/class/thermal"),
    ) -> None:
        self._data_dir = data_dir
        self._proc = proc
        self._thermal = thermal
        self._lock = threading.Lock()
        self._last_cpu: CpuTimes | None = None

    def read(self) -> Health:
        return Health(
            cpu_percent=self._cpu(),
            load_average=self._parsed(self._proc / "loadavg", parse_loadavg),
            memory=self._parsed(self._proc / "meminfo", parse_meminfo),
            disk=self._disk(),
            uptime_s=self._parsed(self._proc / "uptime", parse_uptime),
            temperatures=self._temperatures(),
        )

    @staticmethod
    def _parsed(path: Path, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(_read(path))
        except (OSError, HealthError):  # the one except where /proc text enters
            return None

    def _cpu(self) -> float | None:
        now = self._parsed(self._proc / "stat", parse_cpu_times)
        if now is None:
            return None
        with self._lock:  # cheroot threads: the previous sample is shared
            before, self._last_cpu = self._last_cpu, now
        return cpu_percent(before, now)

    def _disk(self) -> Disk | None:
        if self._data_dir is None:
            return None
        try:
            st = os.statvfs(self._data_dir)
        except OSError:
            return None
        return Disk(
            path=str(self._data_dir),
            total_bytes=st.f_blocks * st.f_frsize,
            free_bytes=st.f_bavail * st.f_frsize,
        )

    def _temperatures(self) -> tuple[Temperature, ...]:
        try:
            zones = sorted(
                (p for p in self._thermal.iterdir() if _ZONE.fullmatch(p.name)),
                key=lambda p: int(p.name.removeprefix("thermal_zone")),
            )[:MAX_ZONES]
        except OSError:  # no /sys/class/thermal: a container, or not Linux
            return ()
        found = []
        for zone in zones:
            celsius = self._parsed(zone / "temp", parse_temperature)
            if celsius is None:
                continue  # some zones refuse reads while their sensor sleeps
            try:
                name = _read(zone / "type").strip()[:64] or zone.name
            except OSError:
                name = zone.name
            found.append(Temperature(zone=name, celsius=celsius))
        return tuple(found)


def register_health(reg: Registry, probe: HealthProbe) -> None:
    @reg.add(
        "GET",
        "/api/health",
        "system:read",
        "System health: CPU, load, memory, data disk, uptime, temperatures (null: not known)",
        response=HEALTH_SCHEMA,
    )
    def health() -> dict[str, object]:
        return probe.read().as_dict()
