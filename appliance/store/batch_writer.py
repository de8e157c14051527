"""One background thread that writes queued items to SQLite in batches.

The event loop must never wait on SQLite: it only puts items on an unbounded queue.
The thread takes whatever has queued since its last commit (up to ``max_batch``) and
hands it to ``write`` as one list, so a storm of changes costs one transaction and
one fsync per batch. peewee keeps one connection per thread, so the thread owns a
connection the loop never touches. Subclasses say how a batch is written.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import peewee

from appliance.store.errors import StoreError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Flush:
    done: threading.Event


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


class BatchWriter(ABC, Generic[T]):
    """Queue in any thread, write in this one. ``write`` runs on the writer thread."""

    def __init__(
        self, db: peewee.SqliteDatabase, *, name: str, max_batch: int, start: bool = True
    ) -> None:
        self._db = db
        self._name = name
        self._max_batch = max_batch
        # Items, or tuples of items handed over together (one wake-up for many).
        self._queue: queue.SimpleQueue[T | tuple[T, ...] | _Flush | _Stop] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        if start:
            self.start()

    @abstractmethod
    def write(self, items: list[T]) -> None:
        """Write one batch (on the writer thread); count and log failures, never raise."""

    def start(self) -> None:
        """Start the thread (separate so tests can queue work before it runs)."""
        self._thread.start()

    def submit(self, item: T) -> None:
        if self._closed:
            raise StoreError(f"{self._name} is closed")
        self._queue.put(item)

    def submit_many(self, items: Iterable[T]) -> None:
        """Queue several items with one wake-up of the thread.

        Waking the writer (and taking the GIL from the event loop) once per item cost
        the SIP server more than the SQLite work itself.
        """
        if self._closed:
            raise StoreError(f"{self._name} is closed")
        batch = tuple(items)
        if batch:
            self._queue.put(batch)

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted before this call is committed (or failed)."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Refuse new work, commit what is queued, stop the thread; True if it stopped."""
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        if not self._thread.is_alive():
            if self._queue.empty():
                return True
            self._thread.start()  # queued before start() and never run: drain it now
        self._queue.put(_Stop())
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                batch = self._unpack(self._queue.get())
                while len(batch) < self._max_batch:
                    try:
                        batch += self._unpack(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not self._commit(batch):
                    return
        finally:
            self._db.close()  # this thread's connection

    @staticmethod
    def _unpack(item: T | tuple[T, ...] | _Flush | _Stop) -> list[T | _Flush | _Stop]:
        return list(item) if isinstance(item, tuple) else [item]

    def _commit(self, batch: list[T | _Flush | _Stop]) -> bool:
        """Write one batch; False once a stop marker was seen (after writing the rest)."""
        items = [item for item in batch if not isinstance(item, _Flush | _Stop)]
        if items:
            self.write(items)
        for item in batch:
            if isinstance(item, _Flush):
                item.done.set()
        return not any(isinstance(item, _Stop) for item in batch)
