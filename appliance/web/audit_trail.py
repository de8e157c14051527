"""Changes made through the web: the change and its audit row commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from appliance.web.auth import client_address, current
from appliance.web.services import WebServices


@contextmanager
def change(
    services: WebServices, action: str, target: str = "", detail: str = ""
) -> Iterator[None]:
    """Run the body in a transaction and, if it succeeds, record who did `action`."""
    with services.db.atomic():
        yield
        services.audit.record(current().username, action, target, client_address(), detail)
