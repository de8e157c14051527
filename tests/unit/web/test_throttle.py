"""Sign-in throttling, sans-IO: time is passed in."""

from __future__ import annotations

from appliance.web.throttle import LoginThrottle, ThrottlePolicy

POLICY = ThrottlePolicy(max_failures=3, address_max_failures=5, window=60, lockout=300)


def test_user_name_locks_after_max_failures_within_the_window() -> None:
    throttle = LoginThrottle(POLICY)
    throttle.failed("a1", "admin", 0.0)
    throttle.failed("a2", "admin", 10.0)
    assert throttle.retry_after("a3", "admin", 10.0) is None
    throttle.failed("a3", "admin", 20.0)
    assert throttle.retry_after("a9", "admin", 20.0) == 300.0
    assert throttle.retry_after("a9", "admin", 319.0) == 1.0
    assert throttle.retry_after("a9", "admin", 320.0) is None
    assert throttle.retry_after("a1", "other", 21.0) is None


def test_failures_older_than_the_window_are_forgotten() -> None:
    throttle = LoginThrottle(POLICY)
    for now in (0.0, 30.0, 61.0, 95.0):  # never three within 60 s
        throttle.failed(f"a{now}", "admin", now)
    assert throttle.retry_after("x", "admin", 95.0) is None


def test_address_locks_across_user_names() -> None:
    throttle = LoginThrottle(POLICY)
    for n in range(5):
        throttle.failed("198.51.100.1", f"user{n}", float(n))
    assert throttle.retry_after("198.51.100.1", "fresh", 5.0) == 299.0
    assert throttle.retry_after("198.51.100.2", "fresh", 5.0) is None


def test_success_clears_the_user_name_but_not_the_address() -> None:
    throttle = LoginThrottle(POLICY)
    for n in range(2):
        throttle.failed("a", "admin", float(n))
    throttle.succeeded("a", "admin")
    throttle.failed("a", "admin", 3.0)
    throttle.failed("a", "admin", 4.0)
    assert throttle.retry_after("b", "admin", 4.0) is None
    throttle.failed("a", "x", 5.0)  # the address's fifth failure
    assert throttle.retry_after("a", "y", 5.0) == 300.0


def test_memory_is_bounded() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_keys=100))
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", f"user{n}", float(n))
    assert len(throttle._keys) <= 100
