"""Brute-force protection for digest authentication: lockouts and rate limits.

Policy (why it looks like this):
- An address that keeps failing is locked out (default 5 failures in 300 s locks it
  for 900 s), and unauthenticated or failing traffic from an address is rate-limited
  by a token bucket.
- An address that has recently authenticated successfully is *trusted*: a whole office
  registers from one NAT address, so one misconfigured phone there must not lock out
  the others. From a trusted address failures lock only the (address, extension)
  pair, and its traffic is never throttled. A trusted address that fails on a broad
  front (many extensions) loses its trust and is locked like any other.
- An extension attacked from many addresses (default 20 failures in the window, all
  addresses together) is closed to every address that has not authenticated as that
  extension before, so its own phones keep working.
- Keys are the user names as sent, whether or not the extension exists, so a lockout
  never tells an attacker which extensions are real.
All tables are bounded; the oldest entries are evicted first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class GuardConfig:
    max_failures: int = 5
    window: float = 300.0
    lockout: float = 900.0
    extension_max_failures: int = 20
    unauth_rate: float = 20.0  # requests/s per address while untrusted
    unauth_burst: float = 40.0
    trust_time: float = 3600.0  # how long one success keeps an address trusted
    broad_failure_factor: int = 4  # trusted address failing this many times max_failures
    max_entries: int = 100_000


class LockKind(Enum):
    ADDRESS = "address"
    EXTENSION = "extension"
    ADDRESS_EXTENSION = "address-extension"


@dataclass(frozen=True, slots=True)
class Lockout:
    kind: LockKind
    key: str  # "192.0.2.7", "101", or "192.0.2.7/101"
    until: float
    failures: int

    def covers(self, text: str) -> bool:
        """Whether lifting ``text`` (an address or an extension) should lift this one."""
        return text == self.key or text in self.key.split("/")


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"  # answer 403
    DROP = "drop"  # rate-limited: no answer at all


NO_LOCKOUTS: Final[tuple[Lockout, ...]] = ()


class AuthGuard:
    """Counts failures and successes per address and extension. Times are monotonic."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._locks: dict[tuple[LockKind, str], Lockout] = {}
        self._failures: dict[tuple[LockKind, str], deque[float]] = {}
        self._trusted: dict[str, float] = {}  # address -> last success
        self._known: dict[str, dict[str, float]] = {}  # extension -> {address: last success}
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    # -- queries made before answering ---------------------------------------------

    def before_challenge(self, address: str, now: float) -> Verdict:
        """A request without credentials is about to be challenged."""
        if self._locked(LockKind.ADDRESS, address, now):
            return self._refuse(address, now)
        return self._throttle(address, now)

    def before_verify(self, address: str, username: str, now: float) -> Verdict:
        """Credentials for ``username`` arrived from ``address``: may we check them?"""
        if self._locked(LockKind.ADDRESS, address, now) or self._locked(
            LockKind.ADDRESS_EXTENSION, f"{address}/{username}", now
        ):
            return self._refuse(address, now)
        if self._locked(LockKind.EXTENSION, username, now) and not self._is_known(
            username, address, now
        ):
            return self._refuse(address, now)
        return self._throttle(address, now)

    # -- outcomes ------------------------------------------------------------------

    def success(self, address: str, username: str, now: float) -> None:
        _put(self._trusted, address, now, self.config.max_entries)
        known = self._known.get(username)
        if known is None:
            known = {}
            _put(self._known, username, known, self.config.max_entries)
        _put(known, address, now, 64)
        self._failures.pop((LockKind.ADDRESS_EXTENSION, f"{address}/{username}"), None)

    def failure(self, address: str, username: str, now: float) -> list[Lockout]:
        """Record a failed authentication; returns the lockouts it started."""
        cfg = self.config
        started: list[Lockout] = []
        if self._is_trusted(address, now):
            pair = f"{address}/{username}"
            if (n := self._count(LockKind.ADDRESS_EXTENSION, pair, now)) >= cfg.max_failures:
                started.append(self._lock(LockKind.ADDRESS_EXTENSION, pair, n, now))
            broad = cfg.max_failures * cfg.broad_failure_factor
            if (n := self._count(LockKind.ADDRESS, address, now)) >= broad:
                self._trusted.pop(address, None)
                started.append(self._lock(LockKind.ADDRESS, address, n, now))
        elif (n := self._count(LockKind.ADDRESS, address, now)) >= cfg.max_failures:
            started.append(self._lock(LockKind.ADDRESS, address, n, now))
        n = self._count(LockKind.EXTENSION, username, now)
        if n >= cfg.extension_max_failures and not self._locked(LockKind.EXTENSION, username, now):
            started.append(self._lock(LockKind.EXTENSION, username, n, now))
        return started

    # -- administration ------------------------------------------------------------

    def active(self, now: float) -> list[Lockout]:
        return [lock for lock in self._locks.values() if lock.until > now]

    def restore(self, lockouts: list[Lockout]) -> None:
        """Replace the lock table (start-up, or after an administrator lifted some).

        Failure counts are kept: the store's copy changes whenever a lockout is
        recorded, and an attacker must not get a clean slate each time it does.
        """
        self._locks = {(lock.kind, lock.key): lock for lock in lockouts}

    def lift(self, text: str) -> list[Lockout]:
        """Lift every lockout naming an address or extension; returns what was lifted."""
        lifted = [lock for lock in self._locks.values() if lock.covers(text)]
        for lock in lifted:
            del self._locks[(lock.kind, lock.key)]
            self._failures.pop((lock.kind, lock.key), None)
        return lifted

    def trusted(self, address: str, now: float) -> bool:
        return self._is_trusted(address, now)

    # -- internals -----------------------------------------------------------------

    def _locked(self, kind: LockKind, key: str, now: float) -> bool:
        lock = self._locks.get((kind, key))
        if lock is None:
            return False
        if lock.until <= now:
            del self._locks[(kind, key)]
            return False
        return True

    def _lock(self, kind: LockKind, key: str, failures: int, now: float) -> Lockout:
        lock = Lockout(kind, key, now + self.config.lockout, failures)
        _put(self._locks, (kind, key), lock, self.config.max_entries)
        self._failures.pop((kind, key), None)
        return lock

    def _count(self, kind: LockKind, key: str, now: float) -> int:
        window = self._failures.get((kind, key))
        if window is None:
            window = deque()
            _put(self._failures, (kind, key), window, self.config.max_entries)
        window.append(now)
        while window and now - window[0] > self.config.window:
            window.popleft()
        return len(window)

    def _is_trusted(self, address: str, now: float) -> bool:
        last = self._trusted.get(address)
        return last is not None and now - last < self.config.trust_time

    def _is_known(self, username: str, address: str, now: float) -> bool:
        last = self._known.get(username, {}).get(address)
        return last is not None and now - last < self.config.trust_time

    def _refuse(self, address: str, now: float) -> Verdict:
        # Answers to a locked address are rate-limited too, so a flood gets silence.
        return Verdict.REFUSE if self._take_token(address, now) else Verdict.DROP

    def _throttle(self, address: str, now: float) -> Verdict:
        if self._is_trusted(address, now):
            return Verdict.ALLOW
        return Verdict.ALLOW if self._take_token(address, now) else Verdict.DROP

    def _take_token(self, address: str, now: float) -> bool:
        cfg = self.config
        tokens, at = self._buckets.get(address, (cfg.unauth_burst, now))
        tokens = min(cfg.unauth_burst, tokens + (now - at) * cfg.unauth_rate)
        if tokens < 1.0:
            self._buckets[address] = (tokens, now)
            return False
        _put(self._buckets, address, (tokens - 1.0, now), cfg.max_entries)
        return True


def _put(table: dict[K, V], key: K, value: V, limit: int) -> None:
    """Insert, evicting the oldest-inserted entry when the table is full."""
    if key not in table and len(table) >= limit:
        del table[next(iter(table))]
    table[key] = value
