"""PortPool: even RTP ports, RTCP above, round-robin reuse, exhaustion."""

from __future__ import annotations

import pytest

from appliance.media.ports import PortPool, PortPoolError, PortsExhausted


def test_allocates_even_ports_with_rtcp_inside_range() -> None:
    pool = PortPool(10001, 10008)  # odd low rounds up; 10008 has no RTCP port
    assert pool.capacity == 3
    assert [pool.allocate() for _ in range(3)] == [10002, 10004, 10006]
    assert pool.in_use == 3


def test_exhaustion_raises_clear_error() -> None:
    pool = PortPool(10000, 10003)
    pool.allocate()
    pool.allocate()
    with pytest.raises(PortsExhausted, match="all 2 RTP port pairs of 10000-10003 are in use"):
        pool.allocate()


def test_released_port_reused_last() -> None:
    pool = PortPool(10000, 10007)
    first = pool.allocate()
    pool.release(first)
    assert [pool.allocate() for _ in range(4)] == [10002, 10004, 10006, 10000]


def test_release_unknown_or_twice_raises() -> None:
    pool = PortPool(10000, 10003)
    port = pool.allocate()
    pool.release(port)
    with pytest.raises(PortPoolError, match="RTP port 10000 is not allocated"):
        pool.release(port)
    with pytest.raises(PortPoolError):
        pool.release(12345)
    assert pool.in_use == 0
    assert pool.available == 2


@pytest.mark.parametrize(("low", "high"), [(0, 100), (100, 65536), (200, 100), (10000, 10000)])
def test_bad_ranges_rejected(low: int, high: int) -> None:
    with pytest.raises(PortPoolError):
        PortPool(low, high)


def test_full_range() -> None:
    pool = PortPool(10000, 20000)
    assert pool.capacity == 5000
    ports = {pool.allocate() for _ in range(5000)}
    assert min(ports) == 10000 and max(ports) == 19998
    assert all(p % 2 == 0 for p in ports)
