"""systemd service notification (sd_notify: READY=1, STATUS=, STOPPING=1, WATCHDOG=1).

Uses systemd-python's ``systemd.daemon.notify``. Outside systemd (no NOTIFY_SOCKET)
or without the module every call is a cheap no-op, so development runs need nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._send: Callable[[str], object] | None = None
        if not env.get("NOTIFY_SOCKET"):
            return
        try:
            from systemd import daemon  # type: ignore[attr-defined]  # no stubs
        except ImportError:
            log.warning("NOTIFY_SOCKET is set but systemd-python is not installed")
            return
        self._send = daemon.notify

    @property
    def active(self) -> bool:
        return self._send is not None

    def ready(self, status: str) -> None:
        self._notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self._notify(f"STATUS={status}")

    def stopping(self) -> None:
        self._notify("STOPPING=1")

    def watchdog(self) -> None:
        self._notify("WATCHDOG=1")

    def _notify(self, message: str) -> None:
        if self._send is not None:
            self._send(message)
