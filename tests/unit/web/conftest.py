"""Fixtures for web tests: the WSGI app called in process over a real database file.

`Client` plays a browser: it keeps cookies (honouring Max-Age=0), sends Host and
Origin like a same-origin page would, and can sign in through the real form.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import peewee
import pytest

from appliance.store.db import open_database
from appliance.store.settings import set_setting
from appliance.store.users import Accounts
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices, build_services
from appliance.web.throttle import ThrottlePolicy
from appliance.web.wizard import SETUP_DONE

REALM = "pbx.example.com"
HOST = "yakyak.test"
PASSWORDS = {
    "admin": "admin-password-1",
    "oper": "oper-password-1",
    "alice": "alice-password-1",
    "fresh": "fresh-password-1",
}
ROLES = {"admin": "administrator", "oper": "operator", "alice": "user"}


class ManualClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    app: Any
    address: str = "192.0.2.10"
    cookies: dict[str, str] = field(default_factory=dict)
    send_origin: bool = True

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        json_body: object = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        parts = urlsplit(path)
        content_type = ""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            content_type = "application/x-www-form-urlencoded"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "SERVER_NAME": HOST,
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": HOST,
            "REMOTE_ADDR": self.address,
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": content_type,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.send_origin and method not in ("GET", "HEAD"):
            environ["HTTP_ORIGIN"] = f"https://{HOST}"
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = value
        seen: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            seen["status"] = int(status.split()[0])
            seen["headers"] = headers
            return lambda data: None

        chunks = self.app(environ, start_response)
        data = b"".join(chunks)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        response = Response(seen["status"], seen["headers"], data)
        for cookie in response.header_all("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)

    def form_csrf(self, path: str = "/login") -> str:
        page = self.get(path)
        match = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert match, page.text
        return match.group(1)

    def login(self, username: str, password: str | None = None) -> Response:
        token = self.form_csrf("/login")
        return self.post(
            "/login",
            form={
                "username": username,
                "password": PASSWORDS[username] if password is None else password,
                "csrf_token": token,
                "next": "/",
            },
        )

    def csrf(self) -> str:
        token = self.get("/api/me").json()["csrf_token"]
        assert isinstance(token, str)
        return token


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[peewee.SqliteDatabase]:
    database = open_database(tmp_path / "yakyak.db")
    yield database
    database.close()


@pytest.fixture
def services(db: peewee.SqliteDatabase, clock: ManualClock) -> WebServices:
    built = build_services(
        db,
        REALM,
        clock=clock,
        throttle=ThrottlePolicy(max_failures=3, address_max_failures=6),
        updates_available=False,  # whatever this machine is: tests that want the image say so
    )
    built.directory.add("101", "sip-password-101", "Alice")
    built.directory.add("102", "sip-password-102", "Bob")
    accounts: Accounts = built.accounts
    accounts.create_user("admin", PASSWORDS["admin"], "administrator", must_change_password=False)
    accounts.create_user("oper", PASSWORDS["oper"], "operator", must_change_password=False)
    accounts.create_user(
        "alice", PASSWORDS["alice"], "user", extension="101", must_change_password=False
    )
    accounts.create_user("fresh", PASSWORDS["fresh"], "administrator")  # must change
    # the first-run wizard is done (its own tests start from a database without this)
    set_setting(db, SETUP_DONE, True)
    return built


@pytest.fixture
def app(services: WebServices) -> Any:
    bottle_app, _ = create_app(services)
    return SecurityHeaders(bottle_app)


@pytest.fixture
def client(app: Any) -> Client:
    return Client(app)


def signed_in(app: Any, username: str) -> Client:
    client = Client(app)
    response = client.login(username)
    assert response.status == 303, response.text
    return client


@pytest.fixture
def admin(app: Any) -> Client:
    return signed_in(app, "admin")


@pytest.fixture
def alice(app: Any) -> Client:
    return signed_in(app, "alice")


@pytest.fixture
def oper(app: Any) -> Client:
    return signed_in(app, "oper")
