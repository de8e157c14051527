"""The dashboard against a real `yakyak serve`: a phone registered with sipsak shows in
/api/live, in the /events stream and on the page, next to the sim board's analog ports;
event streams are limited and do not hold up the server's stop.

The web UI is reached over HTTPS on the address the ready line names, trusting only the
certificate the server made in its data folder; the admin signs in with the password
from `yakyak init` and changes it, as the first sign-in requires.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

if TYPE_CHECKING:
    from conftest import ServerFactory, SipsakRunner, YakyakServer

pytestmark = pytest.mark.e2e

WEB_URL = re.compile(r"web UI on https://([0-9.]+):([0-9]+)/")
TIMEOUT = 10.0  # s per HTTP request, and for the first event of a stream
SEEN_TIMEOUT = 10.0  # s for a registration or the analog port to show
ADMIN_PASSWORD = "e2e-admin"  # what conftest's `yakyak init` sets
NEW_PASSWORD = "e2e-admin-changed-1"
PORT_EXTENSION = "103"  # the sim board's FXS port 1 registers as this extension
MAX_STREAMS = 4


@pytest.fixture
def server(yakyak_servers: ServerFactory) -> YakyakServer:
    return yakyak_servers(config={"board.fxs_extensions": f'{{ "1" = "{PORT_EXTENSION}" }}'})


class Web:
    """An HTTPS client with a cookie jar, trusting only the server's own certificate."""

    def __init__(self, server: YakyakServer) -> None:
        self.server = server
        match = WEB_URL.search(server.log())
        assert match is not None, server.log()
        self.host, self.port = match.group(1), int(match.group(2))
        pem = (server.data / "web-tls.pem").read_bytes()
        cert = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
        assert cert is not None
        self.context = ssl.create_default_context(cadata=cert.group(0).decode())
        self.cookies: dict[str, str] = {}

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=TIMEOUT
        )

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        sent = dict(extra or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return sent

    def keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = rest.split(";", 1)[0]

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, str]:
        connection = self.connect()
        try:
            extra = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
            body = urlencode(form).encode() if form else None
            connection.request(method, path, body=body, headers=self.headers(extra))
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        self.keep_cookies(response)
        return response, text

    def json(self, path: str) -> Any:
        response, text = self.request("GET", path)
        assert response.status == 200, text
        return json.loads(text)

    def csrf(self, path: str) -> str:
        _, text = self.request("GET", path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert match is not None, text
        return match.group(1)

    def sign_in(self) -> str:
        """Signs the admin in, changes the first password; returns the page shown then."""
        form = {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": self.csrf("/login")}
        response, _ = self.request("POST", "/login", form)
        assert (response.status, response.headers["Location"]) == (303, "/password"), (
            self.server.log()
        )
        form = {
            "current": ADMIN_PASSWORD,
            "new": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "csrf_token": self.csrf("/password"),
        }
        response, text = self.request("POST", "/password", form)
        assert response.status == 303, text
        # a fresh box: the administrator's first dashboard is the setup wizard
        first, _ = self.request("GET", response.headers["Location"])
        assert (first.status, first.headers["Location"]) == (303, "/setup"), self.server.log()
        done, text = self.request("POST", "/setup/done", {"csrf_token": self.csrf("/setup")})
        assert done.status == 303, text
        _, page = self.request("GET", response.headers["Location"])
        return page


class EventReader:
    """One open /events stream, read event by event."""

    def __init__(self, web: Web) -> None:
        self.connection = web.connect()
        self.connection.request("GET", "/events", headers=web.headers())
        self.response = self.connection.getresponse()

    def next_snapshot(self) -> dict[str, Any]:
        data = None
        while True:
            line = self.response.readline().decode()
            assert line, "the stream ended"
            if line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
            elif line == "\n" and data is not None:
                return data

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def readers() -> Iterator[list[EventReader]]:
    opened: list[EventReader] = []
    yield opened
    for reader in opened:
        reader.close()


def wait_for(web: Web, accept: Any, timeout: float = SEEN_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        live: dict[str, Any] = web.json("/api/live")
        if accept(live) or time.monotonic() >= deadline:
            return live
        time.sleep(0.2)


def aors(live: dict[str, Any]) -> set[str]:
    return {r["aor"] for r in live["registrations"]}


def test_a_registered_phone_and_the_sim_ports_show_in_the_api_stream_and_page(
    server: YakyakServer, sipsak: SipsakRunner, readers: list[EventReader]
) -> None:
    web = Web(server)
    first_page = web.sign_in()
    assert "Your password has been changed." in first_page  # the notice, on the dashboard

    alice = server.extension("101")
    result = sipsak(server, "-U", "-x", "3600", user=alice.number, password=alice.password)
    assert result.returncode == 0, result.describe()
    live = wait_for(web, lambda d: "101" in aors(d))
    assert "101" in aors(live), live

    # The sim board: FXS 1 is extension 103 and registers by itself; FXS 2 and the
    # FXO line have no role in this yakyak.toml.
    live = wait_for(web, lambda d: d["ports"] and d["ports"][0]["registered"] is True)
    ports = {p["port"]: p for p in live["ports"]}
    assert ports[1]["type"] == "fxs" and ports[1]["role"] == f"extension {PORT_EXTENSION}"
    assert ports[1]["registered"] is True, live
    assert ports[3]["type"] == "fxo" and ports[3]["role"] == "not set"
    assert live["line_controller_up"] is True
    assert {"101", PORT_EXTENSION} <= aors(live)

    stream = EventReader(web)
    readers.append(stream)
    assert stream.response.status == 200
    assert stream.response.headers["Content-Type"] == "text/event-stream"
    assert stream.response.headers["Cache-Control"] == "no-store"
    first = stream.next_snapshot()
    assert "101" in aors(first) and "102" not in aors(first)
    # While the stream stays open, a new registration arrives as the next event: the
    # body really streams through the server, it is not held back until the end.
    bob = server.extension("102")
    result = sipsak(server, "-U", "-x", "3600", user=bob.number, password=bob.password)
    assert result.returncode == 0, result.describe()
    assert "102" in aors(stream.next_snapshot())

    _, page = web.request("GET", "/")
    assert "<td>101</td>" in page and "<td>Sim phone 1</td>" in page
    assert "Line controller: up." in page and "Calls per hour (all calls)" in page
    health = web.json("/api/health")
    assert isinstance(health["cpu_percent"], float)
    assert health["disk"]["path"] == str(server.data)
    assert health["memory"]["total_bytes"] > 0 and health["uptime_s"] > 0


def test_streams_are_limited_and_do_not_hold_up_the_stop(
    server: YakyakServer, readers: list[EventReader]
) -> None:
    web = Web(server)
    web.sign_in()
    for _ in range(MAX_STREAMS):
        reader = EventReader(web)
        readers.append(reader)
        assert reader.response.status == 200
        assert reader.next_snapshot()["available"] is True
    refused, text = web.request("GET", "/events")
    assert refused.status == 503 and refused.headers["Retry-After"] == "30", text
    assert web.json("/api/me")["username"] == "admin"  # pages are still served

    started = time.monotonic()
    code = server.stop()
    assert code == 0, server.log()
    # cheroot waits for its workers; the streams notice the stop at their next look.
    assert time.monotonic() - started < 8.0
