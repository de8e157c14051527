"""The line controller's UART on the asyncio loop: moves bytes between pyserial and a
``ControllerLink`` and keeps the link's one timer (STYLE §2.6).

The device is opened non-blocking (``timeout=0``); reading waits on the loop
(``add_reader``), and a write the UART cannot take at once waits in an outbox for
``add_writer``. Nothing here interprets the bytes. A device that fails (a USB adapter
pulled) is closed; the link then times out and reports ``LinkDown``, and building a
new ``SerialLink`` is the composition root's decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import serial  # type: ignore[import-untyped]  # pyserial ships no type stubs

from appliance.hw.board_spec import BoardSpec, DisconnectMode, PortSpec
from appliance.lines.controller_config import FxoConfig, FxsConfig, PortConfig
from appliance.lines.controller_link import ControllerLink, LinkNotice, LinkOutput, Send
from appliance.lines.signals import LineIntent, LineSignal

log = logging.getLogger(__name__)

Deliver = Callable[[LineSignal | LinkNotice], None]


class SerialLink:
    def __init__(
        self,
        link: ControllerLink,
        device: str,
        deliver: Deliver,
        baudrate: int = 115200,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.link = link
        self.device = device
        self.baudrate = baudrate
        self._deliver = deliver
        self._loop = loop
        self._serial: Any = None  # serial.Serial: untyped
        self._fd = -1
        self._outbox = bytearray()
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def open(self) -> None:
        """Open the device and start the session (HELLO, CONFIG, intents, STATUS).
        A missing or busy device raises ``serial.SerialException`` (an OSError)."""
        self._serial = serial.Serial(self.device, self.baudrate, timeout=0)
        self._fd = self._serial.fileno()
        self.loop.add_reader(self._fd, self._readable)
        self._write(self.link.start(self.loop.time()))
        self._rearm()

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def reopen(self) -> bool:
        """Open the device again after it failed (a USB adapter plugged back in); the
        link, down meanwhile, brings itself up with its next HELLO. False if the
        device is still not there."""
        if self._fd >= 0:
            return True
        try:
            self._serial = serial.Serial(self.device, self.baudrate, timeout=0)
        except (OSError, serial.SerialException):
            return False
        self._fd = self._serial.fileno()
        self.loop.add_reader(self._fd, self._readable)
        self._rearm()
        return True

    def send_intent(self, intent: LineIntent) -> None:
        self._write(self.link.send_intent(intent, self.loop.time()))
        self._rearm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd >= 0:
            self.loop.remove_reader(self._fd)
            if self._writing:
                self.loop.remove_writer(self._fd)
            self._fd = -1
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        self._outbox.clear()
        self._writing = False

    # -- bytes -------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data: bytes = self._serial.read(4096)
        except (OSError, serial.SerialException) as exc:
            self._failed(exc)
            return
        if data:
            self._apply(self.link.receive(data, self.loop.time()))

    def _write(self, data: bytes) -> None:
        if self._fd < 0:
            return  # closed or failed: the link's timeouts will tell
        self._outbox += data
        self._flush()

    def _flush(self) -> None:
        while self._outbox and self._fd >= 0:
            try:
                written = os.write(self._fd, self._outbox)
            except BlockingIOError:
                break
            except OSError as exc:
                self._failed(exc)
                return
            del self._outbox[:written]
        wanted = bool(self._outbox) and self._fd >= 0
        if wanted and not self._writing:
            self.loop.add_writer(self._fd, self._flush)
        elif not wanted and self._writing and self._fd >= 0:
            self.loop.remove_writer(self._fd)
        self._writing = wanted

    def _failed(self, exc: BaseException) -> None:
        log.error("line controller device %s failed: %s", self.device, exc)
        timer, self._timer = self._timer, None
        self.close()
        self._timer = timer  # keep the link's timer: its timeouts report the loss

    # -- the core ----------------------------------------------------------------------

    def _apply(self, outputs: list[LinkOutput]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                self._write(output.data)
            else:
                self._deliver(output)
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.link.next_deadline()
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._apply(self.link.handle_timer(self.loop.time()))


def port_configs(board: BoardSpec) -> list[PortConfig]:
    """The CONFIG settings of a board file's ports."""
    return [port_config(port, board.country) for port in board.ports]


_DISCONNECT_WIRE = {
    DisconnectMode.LOOP_CURRENT: "loop",
    DisconnectMode.POLARITY_REVERSAL: "polarity",
}


def port_config(port: PortSpec, country: str) -> PortConfig:
    """One port's board settings as the controller takes them. Whole volts and hertz;
    busy-tone disconnect is the host's (it listens to the audio), not the controller's.
    """
    impedance = port.impedance.name.lower()
    if port.fxs is not None:
        fxs = port.fxs
        return FxsConfig(
            port.number,
            country,
            impedance,
            ring_vrms=round(fxs.ring_vrms),
            ring_hz=round(fxs.ring_hz),
            cadence_min_ms=fxs.ring_segment_min_ms,
            cadence_max_ms=fxs.ring_segment_max_ms,
            cadence_max_segments=fxs.ring_cadence_max_segments,
            debounce_ms=fxs.hook_debounce_ms,
            flash_min_ms=fxs.flash_min_ms,
            flash_max_ms=fxs.flash_max_ms,
        )
    if port.fxo is None:
        raise ValueError(f"port {port.number} has neither fxs nor fxo settings")
    fxo = port.fxo
    return FxoConfig(
        port.number,
        country,
        impedance,
        disconnect=tuple(w for m, w in _DISCONNECT_WIRE.items() if m in fxo.disconnect),
        loop_drop_ms=fxo.disconnect_min_ms,
        ring_debounce_ms=fxo.ring_debounce_ms,
        ring_min_ms=fxo.ring_on_min_ms,
    )
