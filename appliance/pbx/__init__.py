"""Call control core: registrar, location service, authentication policy (no I/O)."""
