"""Brute-force guard: lockouts, trust, throttling, bounded tables."""

from __future__ import annotations

from appliance.pbx.guard import AuthGuard, GuardConfig, LockKind, Verdict

CFG = GuardConfig(max_failures=5, window=300, lockout=900, extension_max_failures=20)


def fail(guard: AuthGuard, addr: str, user: str, n: int, now: float = 0.0) -> list[LockKind]:
    kinds: list[LockKind] = []
    for i in range(n):
        kinds += [lock.kind for lock in guard.failure(addr, user, now + i)]
    return kinds


def test_untrusted_address_locked_after_five_failures_for_fifteen_minutes() -> None:
    guard = AuthGuard(CFG)
    assert fail(guard, "198.51.100.9", "101", 4) == []
    assert guard.before_verify("198.51.100.9", "101", 10) is Verdict.ALLOW
    assert fail(guard, "198.51.100.9", "999", 1, now=5) == [LockKind.ADDRESS]
    assert guard.before_verify("198.51.100.9", "101", 10) is Verdict.REFUSE
    assert guard.before_challenge("198.51.100.9", 10) is Verdict.REFUSE
    assert guard.before_verify("198.51.100.9", "101", 5 + 900 + 1) is Verdict.ALLOW


def test_failures_outside_the_window_do_not_count() -> None:
    guard = AuthGuard(CFG)
    for i in range(10):
        assert guard.failure("198.51.100.9", "101", i * 100.0) == []


def test_trusted_office_address_locks_only_the_failing_extension() -> None:
    guard = AuthGuard(CFG)
    nat = "203.0.113.1"
    guard.success(nat, "101", 0)
    assert fail(guard, nat, "102", 5, now=1) == [LockKind.ADDRESS_EXTENSION]
    assert guard.before_verify(nat, "102", 10) is Verdict.REFUSE
    assert guard.before_verify(nat, "101", 10) is Verdict.ALLOW
    assert guard.before_challenge(nat, 10) is Verdict.ALLOW


def test_trusted_address_failing_broadly_loses_trust() -> None:
    guard = AuthGuard(CFG)
    nat = "203.0.113.1"
    guard.success(nat, "101", 0)
    kinds = [k for i in range(20) for k in fail(guard, nat, f"2{i:02d}", 1, now=1 + i)]
    assert LockKind.ADDRESS in kinds
    assert guard.before_verify(nat, "101", 30) is Verdict.REFUSE
    assert not guard.trusted(nat, 30)


def test_extension_under_distributed_attack_stays_open_to_its_own_phones() -> None:
    guard = AuthGuard(CFG)
    guard.success("192.0.2.50", "101", 0)
    kinds = [k for i in range(20) for k in fail(guard, f"198.51.100.{i}", "101", 1, now=1 + i)]
    assert kinds.count(LockKind.EXTENSION) == 1
    assert guard.before_verify("198.51.100.200", "101", 30) is Verdict.REFUSE
    assert guard.before_verify("192.0.2.50", "101", 30) is Verdict.ALLOW
    assert guard.before_verify("198.51.100.200", "102", 30) is Verdict.ALLOW


def test_unknown_and_known_users_are_treated_alike() -> None:
    a, b = AuthGuard(CFG), AuthGuard(CFG)
    assert fail(a, "198.51.100.9", "101", 5) == fail(b, "198.51.100.9", "no-such-user", 5)


def test_untrusted_traffic_is_throttled_but_trusted_never() -> None:
    guard = AuthGuard(GuardConfig(unauth_rate=10, unauth_burst=20))
    verdicts = [guard.before_challenge("198.51.100.9", 0.0) for _ in range(25)]
    assert verdicts.count(Verdict.ALLOW) == 20 and verdicts[-1] is Verdict.DROP
    assert guard.before_challenge("198.51.100.9", 1.0) is Verdict.ALLOW  # refilled
    guard.success("203.0.113.1", "101", 0.0)
    assert all(guard.before_challenge("203.0.113.1", 0.0) is Verdict.ALLOW for _ in range(1000))


def test_lift_by_address_or_extension() -> None:
    guard = AuthGuard(CFG)
    fail(guard, "198.51.100.9", "101", 5)
    guard.success("203.0.113.1", "102", 0)
    fail(guard, "203.0.113.1", "103", 5)
    assert {lock.key for lock in guard.active(10)} == {"198.51.100.9", "203.0.113.1/103"}
    assert [lock.key for lock in guard.lift("103")] == ["203.0.113.1/103"]
    assert [lock.key for lock in guard.lift("198.51.100.9")] == ["198.51.100.9"]
    assert guard.active(10) == []
    assert guard.before_verify("198.51.100.9", "101", 11) is Verdict.ALLOW


def test_restore_replaces_the_lock_table() -> None:
    guard = AuthGuard(CFG)
    fail(guard, "198.51.100.9", "101", 5)
    locks = guard.active(10)
    fresh = AuthGuard(CFG)
    fresh.restore(locks)
    assert fresh.before_challenge("198.51.100.9", 10) is Verdict.REFUSE
    fresh.restore([])
    assert fresh.before_challenge("198.51.100.9", 10) is Verdict.ALLOW


def test_tables_are_bounded() -> None:
    guard = AuthGuard(GuardConfig(max_entries=100))
    for i in range(1000):
        guard.failure(f"10.0.{i // 256}.{i % 256}", f"u{i}", 0.0)
        guard.before_challenge(f"10.1.{i // 256}.{i % 256}", 0.0)
    assert len(guard._failures) <= 100 and len(guard._buckets) <= 100


def test_restore_keeps_failure_counts() -> None:
    # The store's lock table changes whenever a lockout is written; reloading it must
    # not give a distributed attacker a clean slate.
    guard = AuthGuard(CFG)
    for i in range(3):
        fail(guard, f"198.51.100.{i}", "101", 5, now=float(i))
        guard.restore(guard.active(float(i)))
    kinds = [k for i in range(3, 5) for k in fail(guard, f"198.51.100.{i}", "101", 5, now=float(i))]
    assert LockKind.EXTENSION in kinds
