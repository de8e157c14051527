"""Where a request to a registered phone goes, and the Contact we give phones.

A phone is reached where its REGISTER came from (RFC 3581 received/rport, kept in
the binding), not at the address in its Contact, which behind NAT names a private
address; the Request-URI stays the Contact it registered.
"""

from __future__ import annotations

from appliance.pbx.location import Binding
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri


def binding_target(binding: Binding) -> tuple[Uri, Peer]:
    """The Request-URI and the transport peer of a request to ``binding``'s phone."""
    uri = Uri.parse(binding.contact)
    transport = binding.transport or "udp"
    host = binding.source_host or uri.host.strip("[]")
    port = binding.source_port or uri.port or 5060
    return uri, Peer(transport, host, port)


def our_contact(host: str, port: int, transport: str) -> str:
    """Our Contact header value for a phone that reaches us at ``host:port``."""
    host_text = f"[{host}]" if ":" in host else host
    suffix = "" if transport == "udp" else f";transport={transport}"
    return f"<sip:yakyak@{host_text}:{port}{suffix}>"
