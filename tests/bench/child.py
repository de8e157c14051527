"""A benchmarked server of ours in a spawned child process, so its CPU is its own.

The child's function gets a pipe end as its last argument, sends one message when it
is ready (what it sends is the parent's to read), and ends when it reads "stop". The
parent stops it by that message, then by its PID if it does not go.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any


@contextmanager
def affinity(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside inherit `cpus` (the calling thread's affinity)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class ChildServer:
    def __init__(self, cpus: set[int] | None) -> None:
        self.cpus = cpus
        self.ctx = mp.get_context("spawn")
        self.proc: Any = None
        self.conn: Connection | None = None

    def spawn(
        self, target: Callable[..., None], args: Sequence[object], what: str, timeout: float
    ) -> object:
        """Start ``target(*args, pipe)`` on our CPUs; its ready message."""
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=target, args=(*args, child), daemon=True)
        with affinity(self.cpus):
            self.proc.start()
        child.close()
        if not self.conn.poll(timeout):
            raise RuntimeError(f"{what} did not report ready within {timeout:g} s")
        try:
            return self.conn.recv()
        except EOFError:
            self.proc.join(10)
            raise RuntimeError(
                f"{what} exited at start (exit code {self.proc.exitcode}; "
                "its traceback is on stderr)"
            ) from None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def end(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send("stop")
            except (BrokenPipeError, OSError):
                pass  # the child is gone already; join() below reaps it
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            self.proc.join(30)
            if self.proc.is_alive():
                self.proc.kill()  # by its PID
                self.proc.join(10)
            self.proc = None

    def close(self) -> None:
        self.end()
