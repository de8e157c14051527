"""`create_app`: the Bottle application of the web UI and REST API, built from services.

Every route is added through one `Registry`, so the permission guard, the OpenAPI
document and the route table test all see the same list.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import TYPE_CHECKING

import bottle

from appliance.web.accounts_pages import register_account_pages
from appliance.web.analog_pages import register_analog_pages
from appliance.web.api import register_api
from appliance.web.auth import Guard
from appliance.web.backup_pages import register_backup_pages
from appliance.web.cdr_pages import register_cdr_pages
from appliance.web.certificate_pages import register_certificate_pages
from appliance.web.dashboard import register_dashboard
from appliance.web.extensions_pages import register_extension_pages
from appliance.web.headers import SecurityHeaders
from appliance.web.ivr_pages import register_ivr_pages
from appliance.web.openapi import document
from appliance.web.pages import REGISTRY_KEY, error_page, register_pages
from appliance.web.registry import SIGNED_IN, Registry
from appliance.web.routes_pages import register_routes_pages
from appliance.web.schemas import obj
from appliance.web.services import WebServices
from appliance.web.system_pages import UpdatePolicy, register_system_pages
from appliance.web.voicemail_pages import register_voicemail_pages
from appliance.web.wizard import register_wizard

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def _version() -> str:
    try:
        return metadata.version("yakyak")
    except metadata.PackageNotFoundError:  # running from a tree that was never installed
        return "0"


def _error(err: bottle.HTTPError) -> str:
    """The one error handler: JSON under /api/, an HTML page elsewhere."""
    if bottle.request.path.startswith("/api/"):
        bottle.response.content_type = "application/json"
        return json.dumps({"error": str(err.body)})
    return error_page(err.status_code, str(err.body))


def create_app(
    services: WebServices, *, updates: UpdatePolicy | None = None
) -> tuple[bottle.Bottle, Registry]:
    """The Bottle app and its route registry (tests walk the registry); `updates`:
    limits of update uploads other than the defaults (tests make them small)."""
    app = bottle.Bottle(catchall=True)
    registry = Registry(app)
    app.config[REGISTRY_KEY] = registry  # the menu of every page is built from it
    register_pages(registry, services)
    register_api(registry, services)
    register_extension_pages(registry, services)
    register_account_pages(registry, services)
    register_wizard(registry, services)
    register_dashboard(registry, services)
    register_analog_pages(registry, services)
    register_cdr_pages(registry, services)
    register_certificate_pages(registry, services)
    register_voicemail_pages(registry, services)
    register_backup_pages(registry, services)
    register_system_pages(registry, services, updates)
    register_routes_pages(registry, services)
    register_ivr_pages(registry, services)
    version = _version()

    @registry.add(
        "GET",
        "/api/openapi.json",
        SIGNED_IN,
        "This description",
        response=obj({}, required=()) | {"additionalProperties": True},
    )
    def openapi_json() -> dict[str, object]:
        return document(registry, version)

    app.install(Guard(services, registry))
    app.default_error_handler = _error
    return app, registry


def wsgi(services: WebServices) -> WSGIApplication:
    """The app as the server runs it: with the security headers on every answer."""
    app, _ = create_app(services)
    return SecurityHeaders(app)
