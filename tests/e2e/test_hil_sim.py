"""The HIL scenarios against the sim board (the same ones `make hil` runs): the real
serial link over a pseudo-terminal to the simulated line controller, the real port
machines and port audio, and the ports' audio through ALSA's file plugin."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))  # the hil/ folder at the top
from hil.run import (
    ALL_NAMES,  # noqa: E402
    run_one,  # noqa: E402
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_scenario_on_the_sim_board(name: str, tmp_path: Path) -> None:
    result = asyncio.run(run_one(name, tmp_path))
    assert result.passed, f"{name}: {result.error}; timings {result.timings_ms}"
