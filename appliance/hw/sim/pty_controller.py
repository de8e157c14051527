"""The simulated controller behind a pseudo-terminal, on the asyncio loop.

``os.openpty`` gives a pair: the sim reads and writes the master end, and the slave
end's path (``/dev/pts/N``) is opened by the real ``SerialLink`` with pyserial exactly
as it opens a UART. Raw mode keeps the line discipline from echoing or translating
bytes. This edge only moves bytes and keeps the sim's one timer (STYLE §2.6).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tty

from appliance.hw.sim.controller import SimController

log = logging.getLogger(__name__)


class PtyController:
    def __init__(self, sim: SimController, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.sim = sim
        self._loop = loop
        self._master = -1
        self._slave = -1  # held open so the master never reads EIO between host opens
        self._path = ""
        self._outbox = bytearray()
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None
        self._woken = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def path(self) -> str:
        """The device the host opens, like /dev/ttyAMA0 on a board."""
        return self._path

    def open(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._path = os.ttyname(self._slave)
        self.loop.add_reader(self._master, self._readable)
        self.sim.on_wake = self._wake
        self._tick()
        return self._path

    def inject(self, data: bytes) -> None:
        """Send raw bytes to the host as if the controller had (line noise, say)."""
        self._write(data)

    def close(self) -> None:
        self.sim.on_wake = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._master >= 0:
            self.loop.remove_reader(self._master)
            if self._writing:
                self.loop.remove_writer(self._master)
            os.close(self._master)
            os.close(self._slave)
        self._master = self._slave = -1
        self._writing = False

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: no host has the slave open; nothing to read
            log.debug("sim pty read: %s", exc)
            return
        self._write(self.sim.receive(data, self.loop.time()))
        self._rearm()

    def _wake(self) -> None:
        if not self._woken:  # several actions queued at once need one tick
            self._woken = True
            self.loop.call_soon(self._tick)

    def _tick(self) -> None:
        self._woken = False
        self._timer = None
        self._write(self.sim.handle_timer(self.loop.time()))
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.sim.next_deadline()
        if deadline is not None and self._master >= 0:
            self._timer = self.loop.call_at(deadline, self._tick)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        self._outbox += data
        self._flush()

    def _flush(self) -> None:
        while self._outbox:
            try:
                written = os.write(self._master, self._outbox)
            except BlockingIOError:
                break
            del self._outbox[:written]
        wanted = bool(self._outbox)
        if wanted and not self._writing:
            self.loop.add_writer(self._master, self._flush)
        elif not wanted and self._writing:
            self.loop.remove_writer(self._master)
        self._writing = wanted
