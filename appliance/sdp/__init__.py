"""SDP for YakYak: RFC 8866 session descriptions and RFC 3264 offer/answer."""

from appliance.sdp.session import (
    DEFAULT_LIMITS,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    Limits,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
    bump_version,
    parse,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "Limits",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "Timing",
    "bump_version",
    "parse",
]
