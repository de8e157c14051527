"""systemd service notification (sd_notify: READY=1, STATUS=, STOPPING=1, WATCHDOG=1).

Uses systemd-python's ``systemd.daemon.notify``. Outside systemd (no NOTIFY_SOCKET)
or without the module every call is a cheap no-op, so development runs need nothing.

The composition root sends READY=1 once SIP and the web UI listen, WATCHDOG=1 from
its housekeeping coroutine (on the event loop: a stalled loop stops the pings and
systemd's WatchdogSec= restarts the service), and a STATUS= line from there every
few seconds, sent only when it changed (`systemctl status yakyak` shows the last).
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
        self._status: str | None = None
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
        self._status = status
        self._notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """Send a STATUS= line, unless it is the one sent last."""
        if status == self._status:
            return
        self._status = status
        self._notify(f"STATUS={status}")

    def stopping(self) -> None:
        self._notify("STOPPING=1")

    def watchdog(self) -> None:
        self._notify("WATCHDOG=1")

    def _notify(self, message: str) -> None:
        if self._send is not None:
            self._send(message)


def running_status(calls: int, registrations: int, web_url: str) -> str:
    """The STATUS= summary while running, e.g. for `systemctl status yakyak`."""
    return (
        f"{calls} call{'s' if calls != 1 else ''} in progress, "
        f"{registrations} registration{'s' if registrations != 1 else ''}; "
        f"web UI on {web_url}"
    )
