"""Dependencies point inward: the sans-IO core imports no edge (STYLE §3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "appliance"
CORE = ("sip", "sdp", "rtp", "dsp", "pbx", "lines")
FORBIDDEN = {
    "asyncio",
    "socket",
    "threading",
    "time",
    "serial",
    "alsaaudio",
    "peewee",
    "bottle",
    "appliance.net",
    "appliance.store",
    "appliance.system",
    "appliance.app",
    "appliance.cli",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path",
    sorted(p for pkg in CORE for p in (ROOT / pkg).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_core_module_imports_no_edge(path: Path) -> None:
    bad = {
        name
        for name in imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
