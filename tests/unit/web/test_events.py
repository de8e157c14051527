"""/events: the first snapshot at once, a new event only on change, keep-alives, and the
bounds (lifetime, client gone, server stopping, concurrent streams). The clock is a
ManualClock that the stream's `wait` advances: nothing sleeps."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bottle

from appliance.web.app import create_app
from appliance.web.auth import Guard
from appliance.web.dashboard import Scope, live_dict, look
from appliance.web.events import (
    LIVE_SCRIPT,
    StreamPolicy,
    change_key,
    register_events,
)
from appliance.web.headers import SecurityHeaders
from appliance.web.live import CallView, LiveSnapshot, RegistrationView
from appliance.web.pages import REGISTRY_KEY, register_pages
from appliance.web.registry import Registry
from appliance.web.services import WebServices

from .conftest import HOST, Client, ManualClock

WAIT_LIMIT = 5.0  # s a thread of the concurrency test may block; never reached when green


class ClockedLive:
    """A PBX whose snapshot follows the clock: registration countdowns run down, and
    the test adds calls."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: tuple[CallView, ...] = ()

    def snapshot(self, timeout: float = 2.0) -> LiveSnapshot:
        now = self.clock.now
        return LiveSnapshot(
            taken_at=now,
            registrations=(
                RegistrationView(
                    "101", "sip:101@192.0.2.7", "udp:192.0.2.7:5060", "A", 3600 - now % 1000
                ),
                RegistrationView(
                    "102", "sip:102@192.0.2.8", "udp:192.0.2.8:5060", "B", 900 - now % 1000
                ),
            ),
            calls=self.calls,
            ports=(),
            line_controller_up=None,
        )


@dataclass
class Pacer:
    """The stream's `wait`: moves the clock on and runs the step's hook, if any."""

    clock: ManualClock
    hooks: dict[int, Callable[[], None]] = field(default_factory=dict)
    waits: int = 0

    def __call__(self, seconds: float) -> None:
        self.waits += 1
        self.clock.now += seconds
        hook = self.hooks.get(self.waits)
        if hook is not None:
            hook()


@dataclass
class Streamed:
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for block in self.text.split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if lines.get("event") == "snapshot":
                found.append(json.loads(lines["data"]))
        return found


def stream(app: Any, token: str | None, *, fail_after: int | None = None) -> Streamed:
    """GET /events as cheroot would serve it: each chunk of the body is sent, the send
    fails after `fail_after` chunks (the client went away), and the body is closed."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/events",
        "QUERY_STRING": "",
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": HOST,
        "REMOTE_ADDR": "192.0.2.10",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if token is not None:
        environ["HTTP_COOKIE"] = f"__Host-yakyak_session={token}"
    out = Streamed(0, [], [])

    def write(chunk: bytes) -> None:
        if fail_after is not None and len(out.chunks) >= fail_after:
            raise BrokenPipeError(32, "Broken pipe")
        out.chunks.append(chunk)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        out.status = int(status.split()[0])
        out.headers = headers
        return write

    body = app(environ, start_response)
    try:  # as a WSGI server does: each chunk written, the body closed at the end
        for chunk in body:
            try:
                write(chunk)
            except BrokenPipeError:
                break
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return out


def stream_app(
    services: WebServices,
    live: Any,
    wait: Callable[[float], None],
    *,
    policy: StreamPolicy | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> Any:
    app = bottle.Bottle(catchall=True)
    reg = Registry(app)
    app.config[REGISTRY_KEY] = reg
    with_live = dataclasses.replace(services, live=live)
    register_pages(reg, with_live)
    register_events(
        reg,
        with_live,
        lambda principal: live_dict(*look(live), Scope.of(principal)),
        policy=policy,
        wait=wait,
        stopping=stopping,
    )
    app.install(Guard(with_live, reg))
    return SecurityHeaders(app)


def session(services: WebServices, username: str) -> str:
    token, _ = services.sessions.create(username, "192.0.2.10")
    return token


def a_call(number: int) -> CallView:
    return CallView(number, "101", None, "102", "talking", 1.0, 1.0, "PCMU", False)


def test_snapshot_at_once_then_only_changes_and_keepalives_until_the_lifetime(
    services: WebServices, clock: ManualClock
) -> None:
    live = ClockedLive(clock)
    pacer = Pacer(clock, {3: lambda: setattr(live, "calls", (a_call(7),))})
    start = clock.now
    out = stream(stream_app(services, live, pacer), session(services, "admin"))
    assert out.status == 200
    assert out.header("Content-Type") == "text/event-stream"
    assert out.header("Cache-Control") == "no-store"
    assert out.header("X-Frame-Options") == "DENY"
    assert out.chunks[0].startswith(b"retry: 2000\nevent: snapshot\ndata: {")
    first, changed = out.events()
    assert first["calls"] == [] and [r["aor"] for r in first["registrations"]] == ["101", "102"]
    assert [c["number"] for c in changed["calls"]] == [7]
    assert changed["taken_at"] == start + 6  # seen at the third look, two seconds apart
    # Registration countdowns alone sent nothing; silence was filled every 10 s.
    assert out.chunks[2:] == [b": keep-alive\n\n"] * 29
    assert pacer.waits == 150 and clock.now == start + 300  # the lifetime


def test_a_users_stream_holds_only_its_own_extension(
    services: WebServices, clock: ManualClock
) -> None:
    live = ClockedLive(clock)
    live.calls = (a_call(1), CallView(2, "103", None, "102", "ringing", 1.0, None, None, False))
    pacer = Pacer(clock, {1: lambda: setattr(live, "calls", ())})
    out = stream(
        stream_app(services, live, pacer, policy=StreamPolicy(lifetime=4)),
        session(services, "alice"),
    )
    first, second = out.events()
    assert [r["aor"] for r in first["registrations"]] == ["101"]
    assert [c["number"] for c in first["calls"]] == [1]
    assert first["ports"] is None
    assert second["calls"] == []


def test_a_client_that_goes_away_ends_the_stream_and_frees_its_place(
    services: WebServices, clock: ManualClock
) -> None:
    live = ClockedLive(clock)
    changes = {n: (lambda n=n: setattr(live, "calls", (a_call(n),))) for n in range(1, 200)}
    pacer = Pacer(clock, changes)  # something new at every look
    app = stream_app(services, live, pacer, policy=StreamPolicy(max_streams=1))
    token = session(services, "admin")
    gone = stream(app, token, fail_after=2)
    assert gone.status == 200 and len(gone.events()) == 2
    assert pacer.waits == 2  # the third write failed, and the stream stopped there
    # The only place was given back: the next stream is served, not refused.
    pacer.waits = 0
    assert stream(app, token, fail_after=1).status == 200


def test_the_stream_ends_when_the_server_stops(services: WebServices, clock: ManualClock) -> None:
    pacer = Pacer(clock)
    out = stream(
        stream_app(services, ClockedLive(clock), pacer, stopping=lambda: pacer.waits >= 3),
        session(services, "admin"),
    )
    assert out.status == 200 and pacer.waits == 3


def test_the_stream_ends_when_the_services_say_the_server_stops(
    services: WebServices, clock: ManualClock
) -> None:
    """The default signal: WebServer.stop() sets services.stopping before cheroot's stop,
    which waits for every worker thread."""
    pacer = Pacer(clock)

    def wait(seconds: float) -> None:
        pacer(seconds)
        if pacer.waits >= 2:
            services.stopping.set()

    app = bottle.Bottle(catchall=True)
    reg = Registry(app)
    app.config[REGISTRY_KEY] = reg
    with_live = dataclasses.replace(services, live=ClockedLive(clock))
    register_pages(reg, with_live)
    register_events(
        reg, with_live, lambda principal: live_dict(*look(with_live.live), Scope.of(principal)),
        wait=wait,
    )  # fmt: skip
    app.install(Guard(with_live, reg))
    out = stream(SecurityHeaders(app), session(services, "admin"))
    assert out.status == 200 and pacer.waits == 2


def test_streams_beyond_the_limit_are_refused_with_503(
    services: WebServices, clock: ManualClock
) -> None:
    holding = threading.Semaphore(0)
    release = threading.Event()

    def wait(seconds: float) -> None:
        holding.release()
        release.wait(WAIT_LIMIT)
        clock.now += 1000  # past the lifetime: the stream ends once released

    app = stream_app(services, ClockedLive(clock), wait, policy=StreamPolicy(max_streams=2))
    token = session(services, "admin")
    results: list[Streamed] = []
    threads = [
        threading.Thread(target=lambda: results.append(stream(app, token))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert holding.acquire(timeout=WAIT_LIMIT)
    refused = stream(app, token)
    release.set()
    for thread in threads:
        thread.join(WAIT_LIMIT)
    assert refused.status == 503 and refused.header("Retry-After") == "30"
    assert "at most 2 live views at once" in refused.text
    assert [r.status for r in results] == [200, 200]
    assert stream(app, token).status == 200  # both places free again


def test_without_a_pbx_one_event_and_a_long_retry(services: WebServices) -> None:
    app, _ = create_app(services)  # the real wiring; these services have no LiveSource
    out = stream(SecurityHeaders(app), session(services, "admin"))
    assert out.status == 200
    assert out.text.startswith("retry: 60000\nevent: snapshot\n")
    [only] = out.events()
    assert only["available"] is False
    assert only["reason"] == "this web server runs without a PBX"


def test_signed_out_and_must_change_accounts_are_sent_away(services: WebServices) -> None:
    app, _ = create_app(services)
    wrapped = SecurityHeaders(app)
    anonymous = stream(wrapped, None)
    assert anonymous.status == 303 and anonymous.header("Location") == "/login?next=/events"
    fresh = stream(wrapped, session(services, "fresh"))
    assert (fresh.status, fresh.header("Location")) == (303, "/password")


def test_change_key_ignores_the_countdown_but_not_a_new_registration() -> None:
    def data(taken: float, expires: list[float]) -> dict[str, object]:
        regs = [{"aor": str(i), "expires_in": e} for i, e in enumerate(expires)]
        return {"taken_at": taken, "registrations": regs, "calls": []}

    assert change_key(data(100, [60])) == change_key(data(130, [30]))
    assert change_key(data(100, [60])) != change_key(data(130, [3600]))  # re-registered
    assert change_key(data(100, [60])) != change_key(data(100, [60, 60]))


def test_the_script_is_public_cacheable_javascript_that_writes_no_markup(client: Client) -> None:
    response = client.get("/static/live.js")
    assert response.status == 200
    assert response.header("Content-Type") == "text/javascript; charset=utf-8"
    assert response.header("Cache-Control") == "max-age=3600"
    assert response.text == LIVE_SCRIPT
    assert "textContent" in LIVE_SCRIPT and "innerHTML" not in LIVE_SCRIPT
    assert 'addEventListener("snapshot"' in LIVE_SCRIPT
