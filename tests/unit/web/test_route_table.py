"""Every registered route, with every system role, a must-change account and no login.

The walk starts from Bottle's own route list, not the registry, so a route added any
other way is caught: it has no declared permission, and the guard answers it 500.
"""

from __future__ import annotations

import re
from typing import Any

import bottle
import pytest

from appliance.store.permissions import SYSTEM_ROLES, grants
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.registry import PUBLIC, ROUTE_PERMISSIONS, SIGNED_IN, Registry, RouteSpec
from appliance.web.services import WebServices

from .conftest import Client

# Path parameters name objects that do not exist, so an allowed request changes nothing.
SAMPLES = {"token_id": "987654", "username": "nobody", "number": "999", "name": "no-such-role"}
ACCOUNTS = {role: None for role in SYSTEM_ROLES}  # role -> username, filled by fixture
USERNAMES = {"administrator": "admin", "operator": "oper", "user": "alice"}


def undeclared(app: bottle.Bottle, registry: Registry) -> list[str]:
    """Routes Bottle serves that declare no valid permission in the registry."""
    bad = []
    for route in app.routes:
        spec = registry.spec(route.method, route.rule)
        if spec is None or spec.permission not in ROUTE_PERMISSIONS:
            bad.append(f"{route.method} {route.rule}")
    return bad


def concrete(rule: str) -> str:
    return re.sub(r"<(\w+)(?::\w+)?>", lambda m: SAMPLES[m.group(1)], rule)


def send(client: Client, spec: RouteSpec, csrf: str | None) -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    path = concrete(spec.rule)
    if spec.method == "GET":
        return client.get(path)
    if spec.kind == "api":
        return client.request(spec.method, path, json_body={}, headers=headers)
    return client.request(spec.method, path, form={"csrf_token": csrf or ""})


def session_client(app: Any, services: WebServices, username: str) -> tuple[Client, str]:
    token, session = services.sessions.create(username, "192.0.2.10")
    client = Client(app)
    client.cookies["__Host-yakyak_session"] = token
    return client, session.csrf_token


def test_every_route_declares_a_permission(services: WebServices) -> None:
    app, registry = create_app(services)
    assert undeclared(app, registry) == []
    assert len(app.routes) == len(registry.specs()) >= 25


def test_a_route_added_outside_the_registry_is_caught_and_refused(services: WebServices) -> None:
    app, registry = create_app(services)
    app.route("/api/sneaky", "GET", lambda: {"secret": True})
    assert undeclared(app, registry) == ["GET /api/sneaky"]
    token, _ = services.sessions.create("admin", "192.0.2.10")
    client = Client(SecurityHeaders(app), cookies={"__Host-yakyak_session": token})
    response = client.get("/api/sneaky")
    assert response.status == 500
    assert "secret" not in response.text


@pytest.mark.parametrize("role", [None, *SYSTEM_ROLES, "must-change"])
def test_route_table(app: Any, services: WebServices, role: str | None) -> None:
    _, registry = create_app(services)
    permissions: tuple[str, ...] = ()
    failures = []
    for spec in registry.specs():
        if role is None:
            client, csrf = Client(app), None
        elif role == "must-change":
            client, csrf = session_client(app, services, "fresh")
        else:
            client, csrf = session_client(app, services, USERNAMES[role])
            permissions = SYSTEM_ROLES[role][1]
        response = send(client, spec, csrf)
        location = response.header("Location") or ""
        if spec.permission == PUBLIC:
            allowed = True
        elif role is None:
            allowed = False
        elif role == "must-change":
            allowed = spec.while_must_change
        else:
            allowed = spec.permission == SIGNED_IN or grants(permissions, spec.permission)
        if allowed:
            # Allowed: whatever the handler answers (400 for the empty body, 404 for the
            # sample names), but not a refusal or the guard's sign-in redirect.
            ok = response.status not in (401, 403, 500) and not location.startswith("/login?")
        elif role is None:
            want = 303 if spec.kind == "page" else 401
            ok = response.status == want and (
                spec.kind == "api" or location.startswith("/login?next=")
            )
        elif role == "must-change":
            ok = (response.status, location) == (
                (303, "/password") if spec.kind == "page" else (403, "")
            )
        else:
            ok = response.status == 403
        if not ok:
            failures.append(f"{spec.method} {spec.rule}: {response.status} {location}")
    assert failures == []


def test_state_changes_need_the_csrf_token(app: Any, services: WebServices) -> None:
    """Every state-changing route refuses a session request without its CSRF token."""
    _, registry = create_app(services)
    unsafe = [s for s in registry.specs() if s.method != "GET" and s.permission != PUBLIC]
    assert len(unsafe) >= 12
    for spec in unsafe:
        client, _ = session_client(app, services, "admin")
        response = send(client, spec, "not-the-token")
        assert response.status == 403, f"{spec.method} {spec.rule}"
        assert "CSRF" in response.text
