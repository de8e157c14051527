"""Q.850 cause values and their SIP mappings: RFC 3398 §7.2.4.1 and §8.2.6.1, RFC 3326.

Call control speaks Q.850 causes only (STYLE §2.7); SIP legs translate at their edge with
``status_for`` / ``cause_for`` and carry the exact cause in a Reason header.

The two RFC 3398 tables are kept verbatim in ``RFC3398_CAUSE_TO_STATUS`` and
``RFC3398_STATUS_TO_CAUSE`` (``None`` where the RFC gives no value). Where a PBX needs a
different answer the deviation is listed, with its reason, in ``PBX_CAUSE_TO_STATUS`` /
``PBX_STATUS_TO_CAUSE``; the public functions apply those first.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Cause(IntEnum):
    """ITU-T Q.850 cause values (those RFC 3398 maps plus the class "unspecified" ones)."""

    UNALLOCATED_NUMBER = 1
    NO_ROUTE_TRANSIT_NETWORK = 2
    NO_ROUTE_DESTINATION = 3
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONDING = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    REDIRECTION = 23
    EXCHANGE_ROUTING_ERROR = 25
    NON_SELECTED_USER_CLEARING = 26
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    FACILITY_REJECTED = 29
    NORMAL_UNSPECIFIED = 31
    NO_CIRCUIT_AVAILABLE = 34
    NETWORK_OUT_OF_ORDER = 38
    TEMPORARY_FAILURE = 41
    SWITCHING_CONGESTION = 42
    RESOURCE_UNAVAILABLE = 47
    INCOMING_BARRED_CUG = 55
    BEARER_NOT_AUTHORIZED = 57
    BEARER_NOT_AVAILABLE = 58
    SERVICE_UNAVAILABLE = 63
    BEARER_NOT_IMPLEMENTED = 65
    RESTRICTED_DIGITAL_ONLY = 70
    SERVICE_NOT_IMPLEMENTED = 79
    NOT_CUG_MEMBER = 87
    INCOMPATIBLE_DESTINATION = 88  # the PBX uses it for "no common codec"
    INVALID_MESSAGE = 95
    RECOVERY_ON_TIMER_EXPIRY = 102
    PROTOCOL_ERROR = 111
    INTERWORKING = 127

    @property
    def text(self) -> str:
        """The Q.850 wording, as carried in a Reason header's text parameter."""
        return _TEXT[self]

    @classmethod
    def from_value(cls, value: int) -> Cause | None:
        """A received cause number; an unknown one in 1..127 becomes its class's
        "unspecified" value (Q.850 treats an unrecognised cause as the unspecified
        cause of its class). Out of range -> None."""
        if not 1 <= value <= 127:
            return None
        if value in _BY_VALUE:
            return _BY_VALUE[value]
        for upper, unspecified in _CLASS_UNSPECIFIED:
            if value <= upper:
                return unspecified
        return cls.INTERWORKING  # pragma: no cover - the last class ends at 127


_TEXT: Final[dict[Cause, str]] = {
    Cause.UNALLOCATED_NUMBER: "Unallocated (unassigned) number",
    Cause.NO_ROUTE_TRANSIT_NETWORK: "No route to specified transit network",
    Cause.NO_ROUTE_DESTINATION: "No route to destination",
    Cause.NORMAL_CLEARING: "Normal call clearing",
    Cause.USER_BUSY: "User busy",
    Cause.NO_USER_RESPONDING: "No user responding",
    Cause.NO_ANSWER: "No answer from user (user alerted)",
    Cause.SUBSCRIBER_ABSENT: "Subscriber absent",
    Cause.CALL_REJECTED: "Call rejected",
    Cause.NUMBER_CHANGED: "Number changed",
    Cause.REDIRECTION: "Redirection to new destination",
    Cause.EXCHANGE_ROUTING_ERROR: "Exchange routing error",
    Cause.NON_SELECTED_USER_CLEARING: "Non-selected user clearing",
    Cause.DESTINATION_OUT_OF_ORDER: "Destination out of order",
    Cause.INVALID_NUMBER_FORMAT: "Invalid number format (address incomplete)",
    Cause.FACILITY_REJECTED: "Facility rejected",
    Cause.NORMAL_UNSPECIFIED: "Normal, unspecified",
    Cause.NO_CIRCUIT_AVAILABLE: "No circuit/channel available",
    Cause.NETWORK_OUT_OF_ORDER: "Network out of order",
    Cause.TEMPORARY_FAILURE: "Temporary failure",
    Cause.SWITCHING_CONGESTION: "Switching equipment congestion",
    Cause.RESOURCE_UNAVAILABLE: "Resource unavailable, unspecified",
    Cause.INCOMING_BARRED_CUG: "Incoming calls barred within CUG",
    Cause.BEARER_NOT_AUTHORIZED: "Bearer capability not authorized",
    Cause.BEARER_NOT_AVAILABLE: "Bearer capability not presently available",
    Cause.SERVICE_UNAVAILABLE: "Service or option not available, unspecified",
    Cause.BEARER_NOT_IMPLEMENTED: "Bearer capability not implemented",
    Cause.RESTRICTED_DIGITAL_ONLY: "Only restricted digital information bearer capability",
    Cause.SERVICE_NOT_IMPLEMENTED: "Service or option not implemented, unspecified",
    Cause.NOT_CUG_MEMBER: "User not member of CUG",
    Cause.INCOMPATIBLE_DESTINATION: "Incompatible destination",
    Cause.INVALID_MESSAGE: "Invalid message, unspecified",
    Cause.RECOVERY_ON_TIMER_EXPIRY: "Recovery on timer expiry",
    Cause.PROTOCOL_ERROR: "Protocol error, unspecified",
    Cause.INTERWORKING: "Interworking, unspecified",
}
_BY_VALUE: Final[dict[int, Cause]] = {c.value: c for c in Cause}
# Q.850 cause classes (upper bound of the class, its "unspecified" member).
_CLASS_UNSPECIFIED: Final[tuple[tuple[int, Cause], ...]] = (
    (31, Cause.NORMAL_UNSPECIFIED),
    (47, Cause.RESOURCE_UNAVAILABLE),
    (63, Cause.SERVICE_UNAVAILABLE),
    (79, Cause.SERVICE_NOT_IMPLEMENTED),
    (95, Cause.INVALID_MESSAGE),
    (111, Cause.PROTOCOL_ERROR),
    (127, Cause.INTERWORKING),
)

# RFC 3398 §7.2.4.1, "ISUP Cause value -> SIP response", as printed. Cause 16 has no
# response ("--- (*)": it becomes a BYE or CANCEL). 21 -> 403 and 22 -> 410 are the
# "location not user" / "without diagnostic" rows.
RFC3398_CAUSE_TO_STATUS: Final[dict[Cause, int | None]] = {
    Cause.UNALLOCATED_NUMBER: 404,
    Cause.NO_ROUTE_TRANSIT_NETWORK: 404,
    Cause.NO_ROUTE_DESTINATION: 404,
    Cause.NORMAL_CLEARING: None,
    Cause.USER_BUSY: 486,
    Cause.NO_USER_RESPONDING: 408,
    Cause.NO_ANSWER: 480,
    Cause.SUBSCRIBER_ABSENT: 480,
    Cause.CALL_REJECTED: 403,
    Cause.NUMBER_CHANGED: 410,
    Cause.REDIRECTION: 410,
    Cause.NON_SELECTED_USER_CLEARING: 404,
    Cause.DESTINATION_OUT_OF_ORDER: 502,
    Cause.INVALID_NUMBER_FORMAT: 484,
    Cause.FACILITY_REJECTED: 501,
    Cause.NORMAL_UNSPECIFIED: 480,
    Cause.NO_CIRCUIT_AVAILABLE: 503,
    Cause.NETWORK_OUT_OF_ORDER: 503,
    Cause.TEMPORARY_FAILURE: 503,
    Cause.SWITCHING_CONGESTION: 503,
    Cause.RESOURCE_UNAVAILABLE: 503,
    Cause.INCOMING_BARRED_CUG: 403,
    Cause.BEARER_NOT_AUTHORIZED: 403,
    Cause.BEARER_NOT_AVAILABLE: 503,
    Cause.BEARER_NOT_IMPLEMENTED: 488,
    Cause.RESTRICTED_DIGITAL_ONLY: 488,
    Cause.SERVICE_NOT_IMPLEMENTED: 501,
    Cause.NOT_CUG_MEMBER: 403,
    Cause.INCOMPATIBLE_DESTINATION: 503,
    Cause.RECOVERY_ON_TIMER_EXPIRY: 504,
    Cause.PROTOCOL_ERROR: 500,
    Cause.INTERWORKING: 500,
}

# RFC 3398 §8.2.6.1, "SIP response received -> cause value in the REL", as printed.
# None: "no mapping" (487) or "by Warning header" (488, 606).
RFC3398_STATUS_TO_CAUSE: Final[dict[int, Cause | None]] = {
    400: Cause.TEMPORARY_FAILURE,
    401: Cause.CALL_REJECTED,
    402: Cause.CALL_REJECTED,
    403: Cause.CALL_REJECTED,
    404: Cause.UNALLOCATED_NUMBER,
    405: Cause.SERVICE_UNAVAILABLE,
    406: Cause.SERVICE_NOT_IMPLEMENTED,
    407: Cause.CALL_REJECTED,
    408: Cause.RECOVERY_ON_TIMER_EXPIRY,
    410: Cause.NUMBER_CHANGED,
    413: Cause.INTERWORKING,
    414: Cause.INTERWORKING,
    415: Cause.SERVICE_NOT_IMPLEMENTED,
    416: Cause.INTERWORKING,
    420: Cause.INTERWORKING,
    421: Cause.INTERWORKING,
    423: Cause.INTERWORKING,
    480: Cause.NO_USER_RESPONDING,
    481: Cause.TEMPORARY_FAILURE,
    482: Cause.EXCHANGE_ROUTING_ERROR,
    483: Cause.EXCHANGE_ROUTING_ERROR,
    484: Cause.INVALID_NUMBER_FORMAT,
    485: Cause.UNALLOCATED_NUMBER,
    486: Cause.USER_BUSY,
    487: None,
    488: None,
    500: Cause.TEMPORARY_FAILURE,
    501: Cause.SERVICE_NOT_IMPLEMENTED,
    502: Cause.NETWORK_OUT_OF_ORDER,
    503: Cause.TEMPORARY_FAILURE,
    504: Cause.RECOVERY_ON_TIMER_EXPIRY,
    505: Cause.INTERWORKING,
    513: Cause.INTERWORKING,
    600: Cause.USER_BUSY,
    603: Cause.CALL_REJECTED,
    604: Cause.UNALLOCATED_NUMBER,
    606: None,
}

# Where YakYak answers differently from the RFC 3398 tables, and why.
PBX_CAUSE_TO_STATUS: Final[dict[Cause, int]] = {
    # A call cleared before answer (the caller hung up) ends the callee's INVITE with
    # 487, the CANCEL carrying Reason: Q.850;cause=16 (common RFC 3326 practice).
    Cause.NORMAL_CLEARING: 487,
    # The PBX raises 88 only for "no common codec"; RFC 3261 §21.4.26 says 488 for that,
    # and RFC 3398's 503 would invite the phone to retry another server (§21.5.4).
    Cause.INCOMPATIBLE_DESTINATION: 488,
}
PBX_STATUS_TO_CAUSE: Final[dict[int, Cause]] = {
    487: Cause.NORMAL_CLEARING,  # inverse of the 16 -> 487 rule above (RFC 3326 CANCEL)
    488: Cause.INCOMPATIBLE_DESTINATION,  # RFC 3398: "by Warning header"; 305/304 mean codecs
    606: Cause.INCOMPATIBLE_DESTINATION,
}
DEFAULT_STATUS: Final = 500  # a cause neither table lists: our choice, as for 111 and 127
DEFAULT_CAUSE: Final = Cause.INTERWORKING  # a 4xx-6xx neither table lists: our choice

REASON_MAX_LENGTH: Final = 1024  # longer Reason values are not looked at


def status_for(cause: Cause) -> int:
    """The SIP final response for a call that failed with ``cause`` (RFC 3398 §7.2.4.1)."""
    if cause in PBX_CAUSE_TO_STATUS:
        return PBX_CAUSE_TO_STATUS[cause]
    status = RFC3398_CAUSE_TO_STATUS.get(cause)
    return DEFAULT_STATUS if status is None else status


def cause_for(status: int) -> Cause:
    """The Q.850 cause for a SIP final failure response (RFC 3398 §8.2.6.1).

    Raises ``ValueError`` for a status that is not a 4xx-6xx failure.
    """
    if not 400 <= status <= 699:
        raise ValueError(f"SIP status {status} is not a failure response")
    if status in PBX_STATUS_TO_CAUSE:
        return PBX_STATUS_TO_CAUSE[status]
    cause = RFC3398_STATUS_TO_CAUSE.get(status)
    return DEFAULT_CAUSE if cause is None else cause


def reason_header(cause: Cause) -> str:
    """A Reason header value (RFC 3326 §2): ``Q.850;cause=16;text="Normal call clearing"``."""
    return f'Q.850;cause={cause.value};text="{cause.text}"'


def parse_reason(value: str) -> Cause | None:
    """The Q.850 cause in a Reason header value, or None. Never raises.

    The value may list several reasons separated by commas (RFC 3326 §2); the first
    ``Q.850`` one with a numeric cause counts. Quoted text may hold commas and ``;``.
    """
    if len(value) > REASON_MAX_LENGTH:
        return None
    for element in _split_outside_quotes(value, ","):
        params = _split_outside_quotes(element, ";")
        if not params or params[0].strip().upper() != "Q.850":
            continue
        for param in params[1:]:
            name, sep, raw = param.partition("=")
            if sep and name.strip().lower() == "cause":
                digits = raw.strip()
                if digits.isascii() and digits.isdigit() and len(digits) <= 3:
                    return Cause.from_value(int(digits))
                return None
    return None


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside a quoted-string (RFC 3261 §25.1, with \\ escapes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts
