"""Running the web UI: cheroot serves the app over HTTPS on its own threads.

`start_web` is what the composition root (or a test) calls: it opens its own database
object (peewee keeps one SQLite connection per thread, and each request here opens
and closes its thread's), makes the self-signed certificate on first start, binds the
listeners (so a bad address fails at once, in the caller), and starts the threads.
An optional plain-HTTP listener only redirects to the HTTPS address.
"""

from __future__ import annotations

import datetime
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

import peewee
from cheroot import wsgi as cheroot_wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from appliance.store.db import open_database
from appliance.store.web_sessions import SessionPolicy
from appliance.web import tls
from appliance.web.app import wsgi
from appliance.web.headers import SecurityHeaders
from appliance.web.live import LiveSource
from appliance.web.services import WebServices, build_services
from appliance.web.throttle import ThrottlePolicy

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

THREADS: Final = 8  # requests served at once; a LAN admin UI, not a public site
STOP_TIMEOUT: Final = 5  # s for a request in flight to finish at stop
_HOST_HEADER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?")
_WILDCARDS: Final = frozenset(("", "0.0.0.0", "::"))


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def local_names(listen_host: str) -> list[str]:
    """Names and addresses the self-signed certificate should cover."""
    names = [listen_host] if listen_host not in _WILDCARDS else []
    hostname = socket.gethostname()
    names += [hostname, f"{hostname}.local", "localhost", "127.0.0.1", "::1"]
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
        names += [str(info[4][0]) for info in infos]
    except OSError:  # no resolvable hostname: the listen address and defaults do
        pass
    return names


class ConnectionPerRequest:
    """Opens this thread's database connection for one request and closes it after,
    so no connection outlives its request or the server's threads.

    Pages and JSON come as lists (Bottle casts strings to them): read whole, then the
    connection closes. Anything else (an event stream, a backup archive, a voicemail
    file) is handed to the server as it is produced, never held in memory whole, and
    the connection closes when the server closes the body."""

    def __init__(self, app: WSGIApplication, db: peewee.SqliteDatabase) -> None:
        self._app = app
        self._db = db

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self._db.connect(reuse_if_open=True)
        streaming = False
        try:
            body = self._app(environ, start_response)
            if isinstance(body, list | tuple):
                return list(body)
            streaming = True
            return _ClosingBody(body, self._db)
        finally:
            if not streaming:
                self._db.close()


class _ClosingBody:
    """A streamed body that closes the thread's database connection with itself."""

    def __init__(self, body: Iterable[bytes], db: peewee.SqliteDatabase) -> None:
        self._body = body
        self._iter = iter(body)
        self._db = db

    def __iter__(self) -> _ClosingBody:
        return self

    def __next__(self) -> bytes:
        return next(self._iter)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._db.close()


class RedirectToHttps:
    """The plain-HTTP listener's whole app: 308 to the same path over HTTPS (308 keeps
    the method and body, RFC 9110 §15.4.9)."""

    def __init__(self, https_host: str, https_port: int) -> None:
        self._host = https_host
        self._port = https_port

    def location(self, environ: WSGIEnvironment) -> str:
        header = _HOST_HEADER.fullmatch(str(environ.get("HTTP_HOST", "")))
        if header is not None:
            host = header.group(1)
        elif self._host not in _WILDCARDS:
            host = url_host(self._host)
        else:
            host = url_host(str(environ.get("SERVER_NAME", "localhost")))
        port = "" if self._port == 443 else f":{self._port}"
        # PATH_INFO is the raw path decoded as latin-1 (PEP 3333): quote those bytes.
        raw = str(environ.get("PATH_INFO", "/")).encode("latin-1", "replace")
        path = quote(raw, safe="/-_.~!$&'()*+,;=:@%") or "/"
        query = str(environ.get("QUERY_STRING", ""))
        return f"https://{host}{port}{path}{'?' + quote(query, safe='=&%+') if query else ''}"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        location = self.location(environ)
        body = f"Moved to {location}\n".encode()
        start_response(
            "308 Permanent Redirect",
            [
                ("Location", location),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


@dataclass(slots=True)
class _Listener:
    server: cheroot_wsgi.Server
    thread: threading.Thread

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.bind_addr[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(STOP_TIMEOUT)


def _listen(
    name: str,
    address: tuple[str, int],
    app: WSGIApplication,
    threads: int,
    adapter: BuiltinSSLAdapter | None = None,
) -> cheroot_wsgi.Server:
    server = cheroot_wsgi.Server(
        address, app, numthreads=threads, server_name="yakyak", shutdown_timeout=STOP_TIMEOUT
    )
    server.ssl_adapter = adapter
    server.prepare()  # binds now: OSError here, in the caller, for a bad or busy address
    log.info("web %s listening on %s", name, server.bind_addr)
    return server


def _run(name: str, server: cheroot_wsgi.Server) -> _Listener:
    thread = threading.Thread(target=server.serve, name=f"web-{name}", daemon=True)
    thread.start()
    return _Listener(server, thread)


class WebServer:
    """The running web UI; `stop()` ends its threads and closes its database."""

    def __init__(
        self,
        services: WebServices,
        https: _Listener,
        redirect: _Listener | None,
        adapter: BuiltinSSLAdapter,
        data_dir: Path,
    ) -> None:
        self.services = services
        self._https = https
        self._redirect = redirect
        self._adapter = adapter
        self._data_dir = data_dir

    @property
    def address(self) -> tuple[str, int]:
        return self._https.address

    @property
    def redirect_address(self) -> tuple[str, int] | None:
        return None if self._redirect is None else self._redirect.address

    @property
    def url(self) -> str:
        host, port = self.address
        return f"https://{url_host(host)}:{port}/"

    @property
    def certificate_path(self) -> Path:
        return self._data_dir / tls.TLS_FILE

    def install_certificate(self, cert_pem: bytes, key_pem: bytes) -> tls.CertificateInfo:
        """Check and install an uploaded pair, then use it for new connections.
        CertificateError, and nothing changed, if the pair is refused."""
        now = datetime.datetime.now(datetime.UTC)
        info = tls.install(self._data_dir, cert_pem, key_pem, now)
        path = str(self.certificate_path)
        self._adapter.context.load_cert_chain(path)  # the live context, for new handshakes
        return info

    def stop(self) -> None:
        # open event streams end at their next look, so cheroot's stop (which waits
        # for every worker) does not wait for a dashboard left open
        self.services.stopping.set()
        if self._redirect is not None:
            self._redirect.stop()
        self._https.stop()
        self.services.db.close()
        log.info("web stopped")


def start_web(
    *,
    data_dir: Path,
    db_path: Path,
    listen: tuple[str, int],
    realm: str,
    redirect_listen: tuple[str, int] | None = None,
    hosts: Iterable[str] = (),
    threads: int = THREADS,
    clock: Callable[[], float] = time.time,
    sessions: SessionPolicy | None = None,
    throttle: ThrottlePolicy | None = None,
    live: LiveSource | None = None,
    sip_port: int = 5060,
) -> WebServer:
    """Serve the web UI on `listen` (HTTPS), and redirect from `redirect_listen`."""
    db = open_database(db_path)
    try:
        services = build_services(
            db,
            realm,
            clock=clock,
            sessions=sessions,
            throttle=throttle,
            data_dir=data_dir,
            live=live,
            sip_port=sip_port,
        )
        purged = services.sessions.purge_expired()
        if purged:
            log.info("%d expired web session(s) removed", purged)
        now = datetime.datetime.fromtimestamp(clock(), datetime.UTC)
        pem = tls.ensure(data_dir, [*hosts, *local_names(listen[0])], now)
        app = ConnectionPerRequest(wsgi(services), db)
        adapter = BuiltinSSLAdapter(str(pem), str(pem))
        # a certificate installed from the web UI is used for new connections at once
        services.certificate.reload = lambda: adapter.context.load_cert_chain(str(pem))
        https = _listen("https", listen, app, threads, adapter)
    finally:
        db.close()  # this thread's connection; requests open their own
    redirect_server = None
    if redirect_listen is not None:
        host, port = https.bind_addr[:2]
        redirect_app = SecurityHeaders(RedirectToHttps(str(host), int(port)))
        try:
            redirect_server = _listen("http-redirect", redirect_listen, redirect_app, 2)
        except OSError:
            https.stop()
            raise
    https_listener = _run("https", https)
    redirect = None if redirect_server is None else _run("http-redirect", redirect_server)
    return WebServer(services, https_listener, redirect, adapter, data_dir)
