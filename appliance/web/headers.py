"""Security headers added to every response, errors and redirects included.

A WSGI middleware rather than a Bottle hook: it also covers Bottle's own 404/405/500
answers and anything a later route forgets. Values follow the OWASP Secure Headers
Project; the CSP allows no inline script or style, so pages load only our own files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("Content-Security-Policy", CSP),
    # One year; no includeSubDomains: the box does not own the LAN's other names.
    ("Strict-Transport-Security", "max-age=31536000"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
# Pages and API answers carry account data: never kept by the browser or a proxy.
NO_STORE: Final = ("Cache-Control", "no-store")
CACHEABLE_PREFIX: Final = "/static/"


class SecurityHeaders:
    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))

        def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            present = {name.lower() for name, _ in headers}
            extra = [h for h in SECURITY_HEADERS if h[0].lower() not in present]
            if not path.startswith(CACHEABLE_PREFIX):
                headers = [h for h in headers if h[0].lower() != "cache-control"]
                extra.append(NO_STORE)
            return start_response(status, headers + extra, exc_info)  # type: ignore[arg-type]

        return self._app(environ, start)  # type: ignore[arg-type]  # same protocol
