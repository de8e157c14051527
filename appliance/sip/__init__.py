"""Sans-IO SIP core: message model, parser, transactions and digest auth (RFC 3261)."""
