"""The web UI's certificate: shown, replaced by an upload checked first, used at once."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from appliance.web import tls
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices

from .conftest import Client, signed_in

BOUNDARY = "yakyak-cert-boundary"


def pair(name: str, unix: float) -> tuple[bytes, bytes]:
    """A self-made RSA 2048 certificate for ``name`` valid around ``unix``, and its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.fromtimestamp(unix, datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def upload(client: Client, cert: bytes, key: bytes) -> tuple[int, str, str | None]:
    csrf = client.form_csrf("/certificate")
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
    parts = [f"{head}{csrf}\r\n".encode()]
    for name, data in (("certificate", cert), ("key", key)):
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.pem"\r\nContent-Type: application/x-pem-file\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = client.post("/certificate", body=body, headers=headers)
    return response.status, response.text, response.header("Location")


def box(services: WebServices, tmp_path: Path) -> tuple[WebServices, list[bool]]:
    data = tmp_path / "data"
    data.mkdir()
    tls.ensure(data, ["yakyak.local"], datetime.datetime.now(datetime.UTC))
    with_data = dataclasses.replace(services, data_dir=data)
    reloaded: list[bool] = []
    with_data.certificate.reload = lambda: reloaded.append(True)
    return with_data, reloaded


def client(services: WebServices, username: str) -> Client:
    app, _ = create_app(services)
    return signed_in(SecurityHeaders(app), username)


def test_the_page_shows_the_self_signed_certificate(services: WebServices, tmp_path: Path) -> None:
    with_data, _ = box(services, tmp_path)
    text = client(with_data, "admin").get("/certificate").text
    assert "<h1>Certificate</h1>" in text and "self-signed (browsers warn)" in text
    assert tls.current(with_data.data_dir or tmp_path).sha256 in text
    assert 'href="/certificate"' in text  # in the menu


def test_an_uploaded_pair_is_installed_and_used_at_once(
    services: WebServices, tmp_path: Path
) -> None:
    with_data, reloaded = box(services, tmp_path)
    admin = client(with_data, "admin")
    cert, key = pair("pbx.example.com", services.clock())
    status, _, location = upload(admin, cert, key)
    assert (status, location) == (303, "/certificate?installed=1")
    assert reloaded == [True]
    info = tls.current(with_data.data_dir or tmp_path)
    assert info.names == ("pbx.example.com",) and info.subject == "CN=pbx.example.com"
    assert "The new certificate is in use." in admin.get("/certificate?installed=1").text
    entries = [(e.action, e.actor) for e in with_data.audit.entries(10)]
    assert ("certificate.install", "admin") in entries


def test_a_key_of_another_certificate_changes_nothing(
    services: WebServices, tmp_path: Path
) -> None:
    with_data, reloaded = box(services, tmp_path)
    before = (with_data.data_dir or tmp_path).joinpath(tls.TLS_FILE).read_bytes()
    cert, _ = pair("pbx.example.com", services.clock())
    _, other_key = pair("elsewhere.example.com", services.clock())
    status, text, _ = upload(client(with_data, "admin"), cert, other_key)
    assert status == 400 and 'id="certificate-error">Not installed, nothing changed' in text
    assert (with_data.data_dir or tmp_path).joinpath(tls.TLS_FILE).read_bytes() == before
    assert reloaded == []


def test_the_api_reads_and_replaces_it(services: WebServices, tmp_path: Path) -> None:
    with_data, reloaded = box(services, tmp_path)
    admin = client(with_data, "admin")
    assert admin.get("/api/certificate").json()["self_signed"] is True
    cert, key = pair("pbx.example.com", services.clock())
    response = admin.request(
        "PUT",
        "/api/certificate",
        json_body={"certificate": cert.decode(), "key": key.decode()},
        headers={"X-CSRF-Token": admin.csrf()},
    )
    assert response.status == 200, response.text
    assert response.json()["names"] == ["pbx.example.com"] and reloaded == [True]
    bad = admin.request(
        "PUT",
        "/api/certificate",
        json_body={"certificate": "not a certificate", "key": key.decode()},
        headers={"X-CSRF-Token": admin.csrf()},
    )
    assert bad.status == 400 and "certificate" in bad.json()["fields"]


def test_only_system_write_may_replace_it(services: WebServices, tmp_path: Path) -> None:
    with_data, _ = box(services, tmp_path)
    assert client(with_data, "alice").get("/certificate").status == 403
    oper = client(with_data, "oper")
    cert, key = pair("pbx.example.com", services.clock())
    response = oper.request(
        "PUT",
        "/api/certificate",
        json_body={"certificate": cert.decode(), "key": key.decode()},
        headers={"X-CSRF-Token": oper.csrf()},
    )
    assert response.status == 403
