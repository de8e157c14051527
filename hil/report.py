"""A HIL run's report: pass or fail per scenario, with what was measured.

Scenarios record named timings (dial-tone latency, post-dial delay...) and notes; the
report prints a table a bench technician can read and writes JSON for comparison
between runs and boards.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ScenarioResult:
    name: str
    passed: bool = False
    seconds: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def timing(self, what: str, milliseconds: float) -> None:
        self.timings_ms[what] = round(milliseconds, 1)

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass
class Report:
    board: str
    side: str  # "sim" or the rig config's name
    started: float = field(default_factory=time.time)
    results: list[ScenarioResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def text(self) -> str:
        lines = [f"HIL run on board {self.board!r} ({self.side}), {platform.node()}"]
        width = max((len(r.name) for r in self.results), default=10)
        for r in self.results:
            verdict = "PASS" if r.passed else "FAIL"
            timings = ", ".join(f"{k} {v:g} ms" for k, v in r.timings_ms.items())
            line = f"  {verdict}  {r.name:<{width}}  {r.seconds:5.1f} s  {timings}"
            lines.append(line.rstrip())
            if r.error:
                lines.append(f"        {r.error}")
            lines.extend(f"        {n}" for n in r.notes)
        passed = sum(r.passed for r in self.results)
        lines.append(f"{passed} of {len(self.results)} scenarios passed")
        return "\n".join(lines)

    def write_json(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = folder / f"hil-{self.board}-{stamp}.json"
        document = {
            "board": self.board,
            "side": self.side,
            "started": self.started,
            "passed": self.passed,
            "results": [asdict(r) for r in self.results],
        }
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return path
