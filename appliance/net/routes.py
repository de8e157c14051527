"""Which of our addresses a peer should be told about (Via, Contact, SDP c=) when we
listen on a wildcard address: the source address the kernel routes from towards it.

A connected UDP socket sends nothing; connecting only asks the routing table. Results
are cached per peer host (bounded), since every call asks.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Final

log = logging.getLogger(__name__)

# Where the probe "connects" for a peer that is not an address literal: no packet is
# sent, the kernel only picks the source of its default route (RFC 5737, RFC 3849).
_DEFAULT_ROUTE_PROBE: Final = {4: "192.0.2.1", 6: "2001:db8::1"}
CACHE_LIMIT: Final = 4096


class SourceAddresses:
    def __init__(self, prefer_v6: bool = False) -> None:
        self._prefer_v6 = prefer_v6
        self._cache: dict[str, str] = {}

    def towards(self, peer_host: str) -> str:
        cached = self._cache.get(peer_host)
        if cached is not None:
            return cached
        try:
            ip = ipaddress.ip_address(peer_host)
        except ValueError:  # a name: resolving it here would block the loop
            version = 6 if self._prefer_v6 else 4
            target = _DEFAULT_ROUTE_PROBE[version]
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            version, target = ip.version, str(ip)
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                host = str(probe.getsockname()[0])
        except OSError as exc:
            log.warning("no route to %s: %s", peer_host, exc)
            return "::1" if version == 6 else "127.0.0.1"
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[peer_host] = host
        return host
