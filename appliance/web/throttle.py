"""Sign-in throttling: failures counted per source address and per username.

Sans-IO: fed `now`, holds no lock (the web layer serialises calls). After
`max_failures` failures for a username, or `address_max_failures` from one address,
within `window` seconds, that key is refused for `lockout` seconds without even
checking the password (OWASP Authentication Cheat Sheet, "Account Lockout"). The
per-address limit is higher: an office behind one NAT shares an address.
Memory is bounded: at most `max_keys` keys are tracked, the stalest dropped first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

MAX_KEYS: Final = 10_000


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int = 5  # per username within window
    address_max_failures: int = 20  # per source address within window
    window: float = 900.0
    lockout: float = 900.0
    max_keys: int = MAX_KEYS


@dataclass(slots=True)
class _Key:
    failures: deque[float]
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy = ThrottlePolicy()) -> None:
        self.policy = policy
        self._keys: dict[tuple[str, str], _Key] = {}

    def _limits(self) -> dict[str, int]:
        return {"user": self.policy.max_failures, "address": self.policy.address_max_failures}

    def retry_after(self, address: str, username: str, now: float) -> float | None:
        """Seconds until sign-in may be tried again for this pair, or None if it may now."""
        waits = [
            key.locked_until - now
            for key in (self._keys.get(("address", address)), self._keys.get(("user", username)))
            if key is not None and key.locked_until > now
        ]
        return max(waits) if waits else None

    def failed(self, address: str, username: str, now: float) -> None:
        limits = self._limits()
        for kind, value in (("address", address), ("user", username)):
            key = self._keys.pop((kind, value), None) or _Key(deque())
            self._keys[(kind, value)] = key  # re-inserted: dicts keep order, newest last
            while key.failures and key.failures[0] <= now - self.policy.window:
                key.failures.popleft()
            key.failures.append(now)
            if len(key.failures) >= limits[kind]:
                key.locked_until = now + self.policy.lockout
                key.failures.clear()
        while len(self._keys) > self.policy.max_keys:
            del self._keys[next(iter(self._keys))]

    def succeeded(self, address: str, username: str) -> None:
        """A right password clears the username's failures (not the address's: one good
        account must not reset the count of an address guessing at others)."""
        self._keys.pop(("user", username), None)
