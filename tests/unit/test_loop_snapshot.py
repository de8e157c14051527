"""LoopSnapshot: how the web threads read the PBX's state without touching it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from appliance.app import LoopSnapshot
from appliance.web.live import LiveSnapshot

EMPTY = LiveSnapshot(taken_at=1.0, registrations=(), calls=(), ports=(), line_controller_up=None)


@pytest.fixture
def running_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, threading.Thread]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop, thread
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_the_snapshot_is_built_on_the_loops_thread(
    running_loop: tuple[asyncio.AbstractEventLoop, threading.Thread],
) -> None:
    loop, thread = running_loop
    built_on: list[int | None] = []

    def build() -> LiveSnapshot:
        built_on.append(threading.get_ident())
        return EMPTY

    assert LoopSnapshot(loop, build).snapshot(5.0) is EMPTY
    assert built_on == [thread.ident]


def test_a_failure_on_the_loop_reaches_the_asking_thread(
    running_loop: tuple[asyncio.AbstractEventLoop, threading.Thread],
) -> None:
    loop, _ = running_loop

    def build() -> LiveSnapshot:
        raise RuntimeError("registrar gone")

    with pytest.raises(RuntimeError, match="registrar gone"):
        LoopSnapshot(loop, build).snapshot(5.0)


def test_a_loop_that_does_not_run_times_out_and_never_builds_later() -> None:
    loop = asyncio.new_event_loop()  # never run: as a stalled PBX
    built: list[bool] = []

    def build() -> LiveSnapshot:
        built.append(True)
        return EMPTY

    try:
        with pytest.raises(TimeoutError):
            LoopSnapshot(loop, build).snapshot(0.05)
        loop.call_soon(loop.stop)
        loop.run_forever()  # the queued build runs now, finds its future cancelled
        assert built == []
    finally:
        loop.close()
