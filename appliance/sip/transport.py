"""What the SIP core knows about transports: where a message came from or goes to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

RELIABLE: Final = frozenset({"tcp", "tls", "ws", "wss"})


@dataclass(frozen=True, slots=True)
class Peer:
    """The far end of one message: transport, address and, on streams, the connection.

    ``connection`` identifies one TCP/TLS/WebSocket connection so a response goes back
    over the connection its request came in on (RFC 3261 §18.2.2); 0 for datagrams.
    """

    transport: str  # "udp", "tcp", "tls", "ws", "wss" (lower case)
    host: str  # literal IP address, IPv6 without brackets
    port: int
    connection: int = 0

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
