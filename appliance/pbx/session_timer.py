"""RFC 4028 session timers for one leg, sans-IO.

A leg has a session interval and a refresher. When the refresher is us, a refresh
is due at half the interval (§10); when it is the phone, the session is dead if no
refresh arrives by the interval minus min(32 s, interval / 3) (§10) and the call is
torn down. Header values are read and written here; the B2BUA decides what to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from appliance.sip.errors import ParseError
from appliance.sip.grammar import split_list
from appliance.sip.message import Request, Response

MIN_SE_FLOOR: Final = 90  # RFC 4028 §4: Min-SE may never be below 90 s


class Refresher(Enum):
    US = "us"  # the appliance sends the refreshes on this leg
    PEER = "peer"  # the phone does; we watch the deadline


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A Session-Expires value: delta-seconds and an optional refresher (uac/uas)."""

    interval: int
    refresher: str | None  # "uac", "uas" or None

    @classmethod
    def parse(cls, value: str) -> SessionExpires:
        parts = [p.strip() for p in value.split(";")]
        if not parts[0].isdigit() or len(parts[0]) > 10:
            raise ParseError(f"bad Session-Expires {value[:40]!r}")
        refresher: str | None = None
        for param in parts[1:]:
            name, _, val = param.partition("=")
            if name.strip().lower() == "refresher":
                refresher = val.strip().lower()
                if refresher not in ("uac", "uas"):
                    raise ParseError(f"bad refresher {val[:20]!r}")
        return cls(int(parts[0]), refresher)

    def __str__(self) -> str:
        if self.refresher is None:
            return str(self.interval)
        return f"{self.interval};refresher={self.refresher}"


def session_expires(message: Request | Response) -> SessionExpires | None:
    value = message.get("Session-Expires")
    return None if value is None else SessionExpires.parse(value)


def min_se(message: Request | Response) -> int | None:
    value = message.get("Min-SE")
    if value is None:
        return None
    head = value.split(";")[0].strip()
    if not head.isdigit() or len(head) > 10:
        raise ParseError(f"bad Min-SE {value[:40]!r}")
    return int(head)


def supports(message: Request | Response, tag: str) -> bool:
    """The option tag is in Supported or Require (RFC 3261 §20.37, §20.32)."""
    for name in ("Supported", "Require"):
        for value in message.get_all(name):
            if any(t.strip().lower() == tag for t in split_list(value)):
                return True
    return False


class SessionTimer:
    """Deadlines of one leg's session timer, moved on by every refresh."""

    __slots__ = ("interval", "refresher", "refresh_at", "expire_at")

    def __init__(self, interval: int, refresher: Refresher, now: float) -> None:
        self.interval = interval
        self.refresher = refresher
        self.refresh_at: float | None = None
        self.expire_at: float | None = None
        self.refreshed(now)

    def refreshed(self, now: float) -> None:
        """A 2xx to a refresh (either direction) went out or came in at ``now``."""
        if self.refresher is Refresher.US:
            self.refresh_at = now + self.interval / 2
            self.expire_at = None
        else:
            self.refresh_at = None
            self.expire_at = now + self.interval - min(32.0, self.interval / 3)

    def retry_soon(self, now: float) -> None:
        """Our refresh was refused for a passing reason (491, 500): try again later."""
        self.refresh_at = now + max(1.0, self.interval / 8)

    def next_deadline(self) -> float | None:
        return self.refresh_at if self.refresh_at is not None else self.expire_at
