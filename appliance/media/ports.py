"""Sans-IO allocator of RTP/RTCP port pairs from a configured range.

RFC 3550 §11: RTP uses an even port and RTCP the next (odd) one. Ports are handed out
round-robin: a released port goes to the back of the queue, so late packets of a call
that just ended do not land on the next call.
"""

from __future__ import annotations

from collections import deque


class PortPoolError(Exception):
    """A port pool was misconfigured or misused."""


class PortsExhausted(PortPoolError):
    """Every RTP port pair in the range is in use."""


class PortPool:
    """Even RTP ports ``p`` with ``low <= p`` and ``p + 1 <= high`` (RTCP inside the range)."""

    def __init__(self, low: int, high: int) -> None:
        if not 1 <= low <= high <= 65535:
            raise PortPoolError(f"RTP port range {low}-{high} is not within 1-65535")
        first = low + (low & 1)  # RFC 3550 §11: RTP on an even port
        if first + 1 > high:
            raise PortPoolError(f"RTP port range {low}-{high} holds no even/odd pair")
        self.low = low
        self.high = high
        self._free: deque[int] = deque(range(first, high, 2))
        self._used: set[int] = set()
        self.capacity = len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._used)

    @property
    def available(self) -> int:
        return len(self._free)

    def allocate(self) -> int:
        """The next free even RTP port; its RTCP port is the one above."""
        if not self._free:
            raise PortsExhausted(
                f"all {self.capacity} RTP port pairs of {self.low}-{self.high} are in use"
            )
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Give ``port`` back; it is reused only after every other free port."""
        if port not in self._used:
            raise PortPoolError(f"RTP port {port} is not allocated from {self.low}-{self.high}")
        self._used.remove(port)
        self._free.append(port)
