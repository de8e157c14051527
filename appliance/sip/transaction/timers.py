"""Transaction timer values: RFC 3261 §17 and Table 4 (Appendix A), RFC 6026 §8.

T1, T2 and T4 are the only inputs; every lettered timer derives from them. The
values that depend on the transport (D, I, J, K) take ``reliable`` and are zero on
reliable transports, where the network does not retransmit behind our back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerConfig:
    t1: float = 0.5  # RFC 3261 §17.1.1.1: round-trip time estimate
    t2: float = 4.0  # §17.1.2.2: maximum retransmit interval for non-INVITE requests
    t4: float = 5.0  # §17.1.2.2: maximum time a message stays in the network
    # §17.2.1: a 100 Trying goes out unless the TU answers within 200 ms.
    trying_delay: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.t4 <= 0 or self.trying_delay < 0:
            raise ValueError(f"bad T4 {self.t4} or Trying delay {self.trying_delay}")

    def timer_a(self) -> float:
        """INVITE request retransmit interval, initially T1, doubling (§17.1.1.2)."""
        return self.t1

    def timer_b(self) -> float:
        """INVITE client transaction timeout (§17.1.1.2)."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait for response retransmits: at least 32 s on UDP, 0 on TCP (§17.1.1.2).

        Kept no shorter than the server's Timer H, which it mirrors, when T1 is raised.
        """
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    def timer_e(self) -> float:
        """Non-INVITE request retransmit interval, initially T1 (§17.1.2.2)."""
        return self.t1

    def timer_f(self) -> float:
        """Non-INVITE client transaction timeout (§17.1.2.2)."""
        return 64 * self.t1

    def timer_g(self) -> float:
        """INVITE final response retransmit interval, initially T1 (§17.2.1)."""
        return self.t1

    def timer_h(self) -> float:
        """Wait for the ACK to a non-2xx final response (§17.2.1)."""
        return 64 * self.t1

    def timer_i(self, reliable: bool) -> float:
        """Absorb ACK retransmits: T4 on UDP, 0 on TCP (§17.2.1)."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Absorb non-INVITE request retransmits: 64*T1 on UDP, 0 on TCP (§17.2.2)."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Absorb non-INVITE response retransmits: T4 on UDP, 0 on TCP (§17.1.2.2)."""
        return 0.0 if reliable else self.t4

    def timer_l(self) -> float:
        """INVITE server: how long Accepted absorbs INVITE retransmits (RFC 6026 §8.7)."""
        return 64 * self.t1

    def timer_m(self) -> float:
        """INVITE client: how long Accepted passes up 2xx retransmits (RFC 6026 §8.4)."""
        return 64 * self.t1

    def cancel_wait(self) -> float:
        """Give up on an INVITE this long after CANCELling it (RFC 3261 §9.1)."""
        return 64 * self.t1

    def tu_wait(self) -> float:
        """Abandon a non-INVITE server transaction the TU never answered.

        Not an RFC timer: the client stopped waiting at its Timer F (64*T1,
        §17.1.2.2), so after that an answer is useless; without this a TU that
        forgets a request would leak the transaction, which has no timer in Trying.
        """
        return 64 * self.t1
