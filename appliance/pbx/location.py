"""Location service bindings (RFC 3261 §10.3): which contacts an address-of-record has."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an AOR.

    ``expires_at`` is wall-clock (Unix) time so a binding survives a restart; the
    registrar converts to and from its monotonic clock at the edges.
    """

    aor: str  # the extension number, e.g. "101"
    contact: str  # the Contact URI as the phone sent it, e.g. "sip:101@192.0.2.7:5062;ob"
    expires_at: float
    call_id: str
    cseq: int
    q: float | None = None
    # Where the REGISTER really came from (RFC 3581 received/rport): reach the phone here.
    transport: str = "udp"
    source_host: str = ""
    source_port: int = 0
    user_agent: str = ""
    instance: str = ""  # +sip.instance (RFC 5626), empty when absent
    path: str = ""  # Path header values (RFC 3327), comma-joined, empty when absent
