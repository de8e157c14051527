"""The web server for real: HTTPS over 127.0.0.1 on free ports, the redirect listener,
cookie flags, sign-in and lockout, CSRF refusal and bearer tokens, certificate swap.

The server runs in this process (`start_web`), on its own cheroot threads, against
a database file under tmp_path; clients are the standard library's http.client.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from https_session import CookieSession

from appliance.store.db import open_database
from appliance.store.users import Accounts
from appliance.web import tls
from appliance.web.server import WebServer, start_web
from appliance.web.throttle import ThrottlePolicy

HOST = "127.0.0.1"
PASSWORD = "web-e2e-password"
TIMEOUT = 10.0  # s per request


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebServer]:
    db_path = tmp_path / "yakyak.db"
    db = open_database(db_path)
    Accounts(db).create_user("admin", PASSWORD, "administrator", must_change_password=False)
    db.close()
    web = start_web(
        data_dir=tmp_path,
        db_path=db_path,
        listen=(HOST, 0),
        redirect_listen=(HOST, 0),
        realm="pbx.example.com",
        threads=4,
        throttle=ThrottlePolicy(max_failures=3),
    )
    try:
        yield web
    finally:
        web.stop()


def trust(web: WebServer, tmp_path: Path) -> ssl.SSLContext:
    """A client context trusting only the server's certificate, hostname checked."""
    pem = web.certificate_path.read_bytes()
    cert = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
    assert cert is not None
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.group(0))
    return ssl.create_default_context(cafile=str(ca))


class Browser(CookieSession):
    def __init__(self, web: WebServer, context: ssl.SSLContext) -> None:
        super().__init__(*web.address, context)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        return self.send(method, path, body, headers)

    def login(self, password: str) -> tuple[http.client.HTTPResponse, bytes]:
        _, page = self.request("GET", "/login")
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        assert match is not None
        form = {"username": "admin", "password": password, "csrf_token": match.group(1).decode()}
        return self.request(
            "POST",
            "/login",
            urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )


def test_https_with_the_self_signed_certificate_and_headers(
    server: WebServer, tmp_path: Path
) -> None:
    browser = Browser(server, trust(server, tmp_path))
    response, body = browser.request("GET", "/login")
    assert response.status == 200
    assert b"<h1>Sign in</h1>" in body
    headers = response.headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    missing, _ = browser.request("GET", "/api/nothing")
    assert missing.status == 404 and missing.headers["X-Frame-Options"] == "DENY"


def test_plain_http_on_the_https_port_gets_no_page(server: WebServer) -> None:
    host, port = server.address
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(65536)  # cheroot may answer 400 before it closes
        except ConnectionResetError:
            answer = b""
    assert b"Sign in" not in answer and b"yakyak_login" not in answer


def test_redirect_listener_only_redirects(server: WebServer) -> None:
    assert server.redirect_address is not None
    host, port = server.redirect_address
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("POST", "/api/me?x=1", body=b"{}", headers={"Host": f"{host}:{port}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    https_port = server.address[1]
    assert response.status == 308
    assert response.headers["Location"] == f"https://{HOST}:{https_port}/api/me?x=1"
    assert b"username" not in body


def test_sign_in_cookie_flags_csrf_and_tokens(server: WebServer, tmp_path: Path) -> None:
    browser = Browser(server, trust(server, tmp_path))
    response, _ = browser.login(PASSWORD)
    assert response.status == 303
    [cookie] = [c for c in response.headers.get_all("Set-Cookie") or [] if "yakyak_session=" in c]
    assert {p.strip() for p in cookie.split(";")[1:]} == {
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    }
    json_headers = {"Content-Type": "application/json"}
    body = json.dumps({"name": "e2e"}).encode()
    refused, data = browser.request("POST", "/api/tokens", body, json_headers)
    assert refused.status == 403 and b"CSRF" in data
    _, me = browser.request("GET", "/api/me")
    csrf = json.loads(me)["csrf_token"]
    made, data = browser.request(
        "POST", "/api/tokens", body, {**json_headers, "X-CSRF-Token": csrf}
    )
    assert made.status == 201
    secret = json.loads(data)["token"]
    script = Browser(server, browser.context)
    ok, data = script.request("GET", "/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert ok.status == 200 and json.loads(data)["auth"] == "token"
    denied, _ = script.request("GET", "/api/me", headers={"Authorization": "Bearer yk_nope"})
    assert denied.status == 401
    _, audit = browser.request("GET", "/api/audit")
    actions = [e["action"] for e in json.loads(audit)["items"]]
    assert actions == ["token.create", "login"]
    assert {e["address"] for e in json.loads(audit)["items"]} == {HOST}


def test_lockout_after_repeated_failures(server: WebServer, tmp_path: Path) -> None:
    browser = Browser(server, trust(server, tmp_path))
    statuses = [browser.login("wrong-password")[0].status for _ in range(3)]
    assert statuses == [401, 401, 429]
    response, body = browser.login(PASSWORD)
    assert response.status == 429
    assert b"Too many failed sign-ins" in body
    assert not any("yakyak_session" in name for name in browser.cookies)


def test_an_installed_certificate_is_served_to_new_connections(
    server: WebServer, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uploaded.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(tls.CertificateError):
        server.install_certificate(cert_pem, b"not a key")
    info = server.install_certificate(cert_pem, key_pem)
    assert info.subject == "CN=uploaded.example"
    ca = tmp_path / "uploaded.pem"
    ca.write_bytes(cert_pem)
    browser = Browser(server, ssl.create_default_context(cafile=str(ca)))
    response, _ = browser.request("GET", "/login")
    assert response.status == 200


def test_stop_closes_the_listeners(tmp_path: Path) -> None:
    db_path = tmp_path / "yakyak.db"
    web = start_web(data_dir=tmp_path, db_path=db_path, listen=(HOST, 0), realm="x.example")
    address = web.address
    web.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=TIMEOUT).close()
