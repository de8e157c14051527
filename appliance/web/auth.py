"""Who is asking and may they: session cookies, bearer tokens, CSRF, and the route guard.

Every route goes through `Guard` (installed on the whole app, not only on routes that
ask: a route that forgot to declare a permission must fail closed, answering 500,
rather than be open). Browsers authenticate with the session cookie and must send the
session's CSRF token on every state-changing request (OWASP CSRF Prevention Cheat
Sheet, synchronizer token); scripts send `Authorization: Bearer`, which a browser
never adds by itself, so they need no CSRF token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from urllib.parse import quote

import bottle

from appliance.store.errors import NotFoundError, StoreError
from appliance.store.permissions import grants
from appliance.store.web_sessions import SessionInfo
from appliance.web.jsonio import FieldErrors
from appliance.web.registry import PUBLIC, SIGNED_IN, Registry, RouteSpec
from appliance.web.services import WebServices

log = logging.getLogger(__name__)

# __Host-: browsers accept the cookie only with Secure, Path=/ and no Domain (RFC 6265bis
# §4.1.3.2), so nothing on another name or over plain HTTP can plant or read it.
SESSION_COOKIE: Final = "__Host-yakyak_session"
LOGIN_COOKIE: Final = "__Host-yakyak_login"  # CSRF token of the sign-in form itself
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset(("GET", "HEAD", "OPTIONS"))
PRINCIPAL_KEY: Final = "yakyak.principal"
LOGIN_PATH: Final = "/login"
PASSWORD_PATH: Final = "/password"


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in account of one request."""

    username: str
    role: str
    extension: str | None
    permissions: frozenset[str]
    must_change_password: bool
    session: SessionInfo | None  # None when the request came with an API token

    def may(self, permission: str) -> bool:
        if permission == SIGNED_IN:
            return True
        return grants(self.permissions, permission)


def client_address() -> str:
    """The peer's address as the socket saw it. Not `request.remote_addr`, which
    believes X-Forwarded-For and would let anybody reset their sign-in throttle."""
    return str(bottle.request.environ.get("REMOTE_ADDR", ""))


def cookie_header(name: str, value: str, *, max_age: int | None = None) -> str:
    """A Set-Cookie value; written by hand so 0.12 and 0.13 Bottles send the same."""
    parts = [f"{name}={value}", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def set_cookie(name: str, value: str) -> None:
    # No Max-Age: the browser drops it when it closes; the server enforces expiry.
    bottle.response.add_header("Set-Cookie", cookie_header(name, value))


def clear_cookie(name: str) -> None:
    bottle.response.add_header("Set-Cookie", cookie_header(name, "", max_age=0))


def see_other(location: str) -> str:
    """Answer 303 to a path of ours; returned (not raised) so cookies set so far stay."""
    bottle.response.status = 303
    bottle.response.set_header("Location", location)
    return ""


def _redirect(location: str) -> NoReturn:
    raise bottle.HTTPResponse(status=303, headers={"Location": location})


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: no open redirects."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 0x21 for c in target):
        return default
    return target


def _load(services: WebServices, username: str, session: SessionInfo | None) -> Principal | None:
    try:
        user = services.accounts.get_user(username)
        role = services.accounts.get_role(user.role)
    except NotFoundError:  # deleted between the look-up and now
        return None
    return Principal(
        username=user.username,
        role=user.role,
        extension=user.extension,
        permissions=frozenset(role.permissions),
        must_change_password=user.must_change_password,
        session=session,
    )


def authenticate(services: WebServices) -> Principal | None:
    """The principal of this request; 401 for a bad bearer token (no cookie fallback)."""
    header = bottle.request.get_header("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        username = services.tokens.authenticate(secret.strip())
        principal = None
        if scheme.lower() == "bearer" and username is not None:
            principal = _load(services, username, None)
        if principal is None:
            raise bottle.HTTPError(
                401,
                "invalid or revoked API token",
                headers={"WWW-Authenticate": 'Bearer realm="yakyak", error="invalid_token"'},
            )
        return principal
    token = bottle.request.get_cookie(SESSION_COOKIE)
    if not token:
        return None
    session = services.sessions.lookup(token)
    if session is None:
        return None
    return _load(services, session.username, session)


def current() -> Principal:
    """The principal the guard let through; only for routes that are not PUBLIC."""
    principal = bottle.request.environ.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise RuntimeError("no principal: route is PUBLIC or the guard was bypassed")
    return principal


def maybe_current() -> Principal | None:
    principal = bottle.request.environ.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


def submitted_csrf() -> str:
    header = bottle.request.get_header(CSRF_HEADER)
    if header:
        return str(header)
    value = bottle.request.forms.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


def tokens_equal(a: str, b: str) -> bool:
    return bool(a) and hmac.compare_digest(a.encode(), b.encode())


def _check_origin() -> None:
    """A state-changing request from a page of another origin is refused outright;
    requests without Origin (older browsers on same-origin forms, scripts) pass on to
    the token checks."""
    origin = bottle.request.get_header("Origin")
    if origin is None:
        return
    environ = bottle.request.environ
    expected = f"{environ.get('wsgi.url_scheme', 'https')}://{environ.get('HTTP_HOST', '')}"
    if origin != expected:
        raise bottle.HTTPError(403, "cross-origin request refused")


class Guard:
    """Bottle plugin: authenticates, enforces the route's permission and CSRF."""

    name = "yakyak-guard"
    api = 2

    def __init__(self, services: WebServices, registry: Registry) -> None:
        self.services = services
        self.registry = registry

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        spec = self.registry.spec(route.method, route.rule)
        if spec is None:
            rule = f"{route.method} {route.rule}"

            def refuse(*args: Any, **kwargs: Any) -> NoReturn:
                log.error("route %s was added outside the registry: refused", rule)
                raise bottle.HTTPError(500, "route declares no permission")

            return refuse

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if bottle.request.method not in SAFE_METHODS:
                _check_origin()
            principal = authenticate(self.services)
            bottle.request.environ[PRINCIPAL_KEY] = principal
            if spec.permission != PUBLIC:
                self._admit(spec, principal)
            try:
                return callback(*args, **kwargs)
            except FieldErrors as exc:
                return exc.response()
            except NotFoundError as exc:
                raise bottle.HTTPError(404, str(exc)) from None
            except StoreError as exc:
                raise bottle.HTTPError(400, str(exc)) from None

        return guarded

    def _admit(self, spec: RouteSpec, principal: Principal | None) -> None:
        """Return if the request may go on; raise the refusal otherwise."""
        page = spec.kind == "page"
        if principal is None:
            if page:
                _redirect(f"{LOGIN_PATH}?next={quote(bottle.request.fullpath, safe='/')}")
            raise bottle.HTTPError(
                401,
                "sign in, or send an API token: Authorization: Bearer yk_...",
                headers={"WWW-Authenticate": 'Bearer realm="yakyak"'},
            )
        if principal.must_change_password and not spec.while_must_change:
            if page:
                _redirect(PASSWORD_PATH)
            raise bottle.HTTPError(403, "password change required: sign in to the web UI first")
        if not principal.may(spec.permission):
            raise bottle.HTTPError(
                403, f"role {principal.role!r} lacks permission {spec.permission}"
            )
        session = principal.session
        if bottle.request.method not in SAFE_METHODS and session is not None:
            if not tokens_equal(submitted_csrf(), session.csrf_token):
                raise bottle.HTTPError(403, "missing or wrong CSRF token: reload the page")
