"""The SIP core's error types: bad input becomes a protocol answer (STYLE §2.5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.sip.message import Header


class ParseError(ValueError):
    """Input that is not a valid SIP message (or part of one).

    ``status`` is what a UAS answers when the message was a request it can still reply
    to (400 by default, 505 for a version we do not speak, 413/513 for size limits).
    ``headers`` holds whatever header lines were read before the error, so the
    transport can still form a response from Via/From/To/Call-ID/CSeq.
    """

    def __init__(self, reason: str, status: int = 400, headers: tuple[Header, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers
