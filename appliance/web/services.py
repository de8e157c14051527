"""What the web routes work on: the store objects of one database, and sign-in throttling.

Built once by the composition root (`appliance.web.server.start_web`, or a test) and
passed to `create_app`; no module holds any of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import peewee

from appliance.store.api_tokens import ApiTokens
from appliance.store.audit import AuditLog
from appliance.store.extensions import Directory
from appliance.store.users import Accounts
from appliance.store.web_sessions import SessionPolicy, WebSessions
from appliance.web.live import LiveSource
from appliance.web.throttle import LoginThrottle, ThrottlePolicy

# RAUC's configuration: present on the YakYak OS image (A/B slots), absent on a developer
# machine or in a container, where nothing can install an update or start sshd.
RAUC_SYSTEM_CONF: Final = Path("/etc/rauc/system.conf")


class SharedThrottle:
    """A `LoginThrottle` behind a lock: cheroot runs requests on several threads."""

    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float]) -> None:
        self._throttle = LoginThrottle(policy)
        self._lock = threading.Lock()
        self._clock = clock

    def retry_after(self, address: str, username: str) -> float | None:
        with self._lock:
            return self._throttle.retry_after(address, username, self._clock())

    def failed(self, address: str, username: str) -> None:
        with self._lock:
            self._throttle.failed(address, username, self._clock())

    def succeeded(self, address: str, username: str) -> None:
        with self._lock:
            self._throttle.succeeded(address, username)


class CertificateHook:
    """How an installed certificate reaches the running HTTPS listener: the server
    sets ``reload`` once it has its TLS context (tests and a server-less app leave it)."""

    def __init__(self) -> None:
        self.reload: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class WebServices:
    db: peewee.SqliteDatabase
    accounts: Accounts
    directory: Directory
    sessions: WebSessions
    tokens: ApiTokens
    audit: AuditLog
    throttle: SharedThrottle
    clock: Callable[[], float]
    data_dir: Path | None = None  # voicemail, prompts, backups live under it
    live: LiveSource | None = None  # the running PBX's state; None in tests without one
    sip_port: int = 5060  # where phones reach the PBX (shown with new credentials)
    certificate: CertificateHook = field(default_factory=CertificateHook)
    # on the YakYak OS image: root's units install uploaded updates and switch SSH
    # (`appliance.system.updates`); elsewhere the System page only shows the version
    updates_available: bool = False
    # set as the web server stops: long-running answers (event streams) end
    stopping: threading.Event = field(default_factory=threading.Event)


def build_services(
    db: peewee.SqliteDatabase,
    realm: str,
    *,
    clock: Callable[[], float] = time.time,
    sessions: SessionPolicy | None = None,
    throttle: ThrottlePolicy | None = None,
    data_dir: Path | None = None,
    live: LiveSource | None = None,
    sip_port: int = 5060,
    updates_available: bool | None = None,
) -> WebServices:
    """The services of one database; `updates_available` None: decided by whether
    RAUC is configured on this machine."""
    if updates_available is None:
        updates_available = RAUC_SYSTEM_CONF.exists()
    return WebServices(
        db=db,
        accounts=Accounts(db, clock),
        directory=Directory(db, realm, clock),
        sessions=WebSessions(db, sessions or SessionPolicy(), clock),
        tokens=ApiTokens(db, clock),
        audit=AuditLog(db, clock),
        throttle=SharedThrottle(throttle or ThrottlePolicy(), clock),
        clock=clock,
        data_dir=data_dir,
        live=live,
        sip_port=sip_port,
        updates_available=updates_available,
    )
