"""The one list of routes: path, method, the permission each needs, and for the API its
request and response schemas. The Bottle app, the permission check and the OpenAPI
document are all built from it, so none of them can drift from the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import bottle

from appliance.store.permissions import PERMISSIONS

# Not grantable permissions but the two other answers a route can give to "who may":
PUBLIC: Final = "public"  # anybody, signed in or not (the sign-in page, the style sheet)
SIGNED_IN: Final = "signed-in"  # any signed-in account, whatever its role (sign-out, /api/me)
ROUTE_PERMISSIONS: Final = frozenset((*PERMISSIONS, PUBLIC, SIGNED_IN))

Schema = dict[str, Any]
Handler = TypeVar("Handler", bound=Callable[..., Any])
_PARAM = re.compile(r"<(\w+)(?::(\w+))?>")


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    rule: str  # Bottle syntax: /api/users/<username>
    permission: str
    summary: str
    kind: Literal["api", "page"]
    request: Schema | None = None  # JSON Schema of the request body
    response: Schema | None = None  # JSON Schema of the success body
    status: int = 200
    # Reachable while the account must still change its password (the change itself).
    while_must_change: bool = False
    # A page in the menu: its label, and its place (lower first); None: not in the menu.
    nav: str | None = None
    nav_order: int = 50
    # A success body that is not JSON (an archive, a WAV): its media type
    produces: str | None = None
    # A request body that is not JSON (an archive): its media type
    consumes: str | None = None
    # Query parameters the handler reads: (name, JSON Schema type)
    query: tuple[tuple[str, str], ...] = ()
    # Answers beyond the common errors that this operation gives: (status, when)
    errors: tuple[tuple[int, str], ...] = ()

    @property
    def openapi_path(self) -> str:
        return _PARAM.sub(r"{\1}", self.rule)

    @property
    def parameters(self) -> tuple[tuple[str, str], ...]:
        """(name, Bottle filter) of each path parameter; the filter is "" for strings."""
        return tuple((m.group(1), m.group(2) or "") for m in _PARAM.finditer(self.rule))


class Registry:
    """Routes of one app; `add` registers the handler on Bottle and keeps its spec."""

    def __init__(self, app: bottle.Bottle) -> None:
        self.app = app
        self._specs: dict[tuple[str, str], RouteSpec] = {}

    def add(
        self,
        method: str,
        rule: str,
        permission: str,
        summary: str,
        *,
        request: Schema | None = None,
        response: Schema | None = None,
        status: int = 200,
        while_must_change: bool = False,
        nav: str | None = None,
        nav_order: int = 50,
        produces: str | None = None,
        consumes: str | None = None,
        query: tuple[tuple[str, str], ...] = (),
        errors: tuple[tuple[int, str], ...] = (),
    ) -> Callable[[Handler], Handler]:
        if permission not in ROUTE_PERMISSIONS:
            raise ValueError(f"{method} {rule}: unknown permission {permission!r}")
        spec = RouteSpec(
            method=method,
            rule=rule,
            permission=permission,
            summary=summary,
            kind="api" if rule.startswith("/api/") else "page",
            request=request,
            response=response,
            status=status,
            while_must_change=while_must_change,
            nav=nav,
            nav_order=nav_order,
            produces=produces,
            consumes=consumes,
            query=query,
            errors=errors,
        )
        if nav is not None and (method != "GET" or "<" in rule):
            raise ValueError(f"{method} {rule}: only a GET page without parameters is a menu entry")
        if (method, rule) in self._specs:
            raise ValueError(f"{method} {rule}: registered twice")

        def register(handler: Handler) -> Handler:
            self._specs[(method, rule)] = spec
            self.app.route(rule, method, handler)
            return handler

        return register

    def spec(self, method: str, rule: str) -> RouteSpec | None:
        return self._specs.get((method, rule))

    def specs(self) -> list[RouteSpec]:
        return list(self._specs.values())

    def menu(self, may: Callable[[str], bool]) -> list[tuple[str, str]]:
        """(path, label) of the menu pages ``may`` allows, in menu order."""
        pages = [s for s in self._specs.values() if s.nav is not None and may(s.permission)]
        pages.sort(key=lambda s: (s.nav_order, s.rule))
        return [(s.rule, s.nav or "") for s in pages]
