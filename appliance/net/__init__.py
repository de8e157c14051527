"""asyncio edges: SIP over UDP and TCP (TLS and WebSocket later, same interface)."""
