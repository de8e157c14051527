"""An FXS port's registration with our registrar, as a small sans-IO machine.

The port registers its extension like any phone, so calls, voicemail diversion and
message-waiting reach it through the same registrar and B2BUA. The machine decides
what to send and when; the gateway (``gateway``) owns the transaction.

States: UNREGISTERED --send--> REGISTERING --2xx--> REGISTERED --refresh due--> ...
A 401/407 is answered once per nonce (again only when it says ``stale``); a refusal
or a timeout waits ``retry_s`` and tries again, so a registrar that restarts or an
extension created later is picked up without anyone touching the port.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

RETRY_S: Final = 30.0
MIN_REFRESH_S: Final = 10.0


class RegState(Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"  # refused or unanswered: waiting to try again


@dataclass(slots=True)
class LineRegistration:
    port: int
    user: str
    call_id: str
    expires: int = 600
    state: RegState = RegState.UNREGISTERED
    cseq: int = 0
    due: float | None = 0.0  # when to send the next REGISTER; None while one is out
    answered_nonce: str | None = None  # the nonce the last Authorization used
    last_status: int | None = None

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq

    def sent(self) -> None:
        self.state = RegState.REGISTERING if self.state is not RegState.REGISTERED else self.state
        self.due = None

    def may_answer(self, nonce: str, stale: bool) -> bool:
        """Whether to answer this challenge: a nonce already answered and refused means
        the credentials are wrong (unless the server says the nonce was only stale)."""
        if nonce == self.answered_nonce and not stale:
            return False
        self.answered_nonce = nonce
        return True

    def accepted(self, granted: int, now: float) -> None:
        self.state = RegState.REGISTERED
        self.last_status = 200
        self.answered_nonce = None
        # refresh at half the granted time, as most phones do; never in a tight loop
        self.due = now + max(MIN_REFRESH_S, granted / 2)

    def failed(self, status: int | None, now: float) -> None:
        self.state = RegState.FAILED
        self.last_status = status
        self.answered_nonce = None
        self.due = now + RETRY_S
