"""The web certificate: made on first start, replaced only by a pair that checks out."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from appliance.web import tls

NOW = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)


def make_pair(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    *,
    not_before: datetime.datetime = NOW - datetime.timedelta(days=1),
    not_after: datetime.datetime = NOW + datetime.timedelta(days=90),
) -> tuple[bytes, bytes]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pbx.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("pbx.example.com")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_first_start_makes_a_self_signed_p256_certificate(tmp_path: Path) -> None:
    path = tls.ensure(tmp_path, ["192.0.2.5", "pbx", "::1"], NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = tls.current(tmp_path)
    assert info.self_signed
    assert info.names[0] == "yakyak.local"
    assert {"192.0.2.5", "pbx", "::1"} <= set(info.names)
    assert info.not_before <= NOW < info.not_after
    cert = x509.load_pem_x509_certificate(path.read_bytes().split(b"-----END PRIVATE KEY-----")[1])
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("192.0.2.5") in san.get_values_for_type(x509.IPAddress)
    # A second start keeps it.
    before = path.read_bytes()
    tls.ensure(tmp_path, ["198.51.100.1"], NOW)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [tls.TLS_FILE]  # no temporary left


def test_an_unusable_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / tls.TLS_FILE).write_bytes(b"half written")
    tls.ensure(tmp_path, [], NOW)
    assert tls.current(tmp_path).self_signed


def test_a_good_upload_replaces_the_pair(tmp_path: Path) -> None:
    tls.ensure(tmp_path, [], NOW)
    cert, key = make_pair(rsa.generate_private_key(65537, 2048))
    info = tls.install(tmp_path, cert, key, NOW)
    assert info.names == ("pbx.example.com",)
    assert tls.current(tmp_path).sha256 == info.sha256
    assert stat.S_IMODE((tmp_path / tls.TLS_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: (b"garbage", make_pair()[1]), "no PEM certificate found"),
        (
            lambda: (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                make_pair()[1],
            ),
            "certificate does not parse",
        ),
        (lambda: (make_pair()[0], b"not a key"), "private key does not parse"),
        (lambda: (make_pair()[0], make_pair()[1]), "does not match the certificate"),
        (
            lambda: make_pair(not_after=NOW - datetime.timedelta(days=1)),
            "the certificate expired on 2025-05-31",
        ),
        (
            lambda: make_pair(not_before=NOW + datetime.timedelta(days=2)),
            "valid only from 2025-06-03",
        ),
        (
            lambda: make_pair(rsa.generate_private_key(65537, 1024)),
            "RSA key of 1024 bits: at least 2048",
        ),
        (lambda: (b"x" * 70_000, b""), "must each be under"),
    ],
)
def test_a_bad_upload_changes_nothing(tmp_path: Path, upload: object, message: str) -> None:
    tls.ensure(tmp_path, [], NOW)
    before = (tmp_path / tls.TLS_FILE).read_bytes()
    cert, key = upload()  # type: ignore[operator]
    with pytest.raises(tls.CertificateError, match=message):
        tls.install(tmp_path, cert, key, NOW)
    assert (tmp_path / tls.TLS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [tls.TLS_FILE]
