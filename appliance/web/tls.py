"""The web server's TLS certificate: self-signed on first start, or one an installer uploads.

Certificate chain and private key live together in one PEM file (mode 0600) in the
data folder, so replacing them is a single atomic rename: a power cut leaves the old
pair or the new one, never a certificate with the wrong key. An upload is checked
completely (parses, key matches, in date, OpenSSL loads it) before anything is
replaced; a bad one changes nothing.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

TLS_FILE: Final = "web-tls.pem"
DEFAULT_NAME: Final = "yakyak.local"
SELF_SIGNED_DAYS: Final = 3650  # a LAN box; browsers ask once to trust it anyway
MAX_PEM_BYTES: Final = 64 * 1024
MIN_RSA_BITS: Final = 2048
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


class CertificateError(ValueError):
    """An uploaded certificate or key refused; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    names: tuple[str, ...]  # subjectAltName entries
    sha256: str  # fingerprint, colon-separated hex
    self_signed: bool


def _not_before(cert: x509.Certificate) -> datetime.datetime:
    # not_valid_*_utc arrived in cryptography 42; Debian bookworm has 38.
    value: datetime.datetime | None = getattr(cert, "not_valid_before_utc", None)
    if value is None:
        value = cert.not_valid_before.replace(tzinfo=datetime.UTC)
    return value


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    value: datetime.datetime | None = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.UTC)
    return value


def describe(cert: x509.Certificate) -> CertificateInfo:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n.value) for n in san)
    except x509.ExtensionNotFound:
        names = ()
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=_not_before(cert),
        not_after=_not_after(cert),
        names=names,
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        self_signed=cert.issuer == cert.subject,
    )


def self_signed(
    hosts: Iterable[str], now: datetime.datetime
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A self-signed ECDSA P-256 certificate for `yakyak.local` and `hosts` (names or
    IP addresses), valid from an hour before `now` (clock skew) for SELF_SIGNED_DAYS."""
    key = ec.generate_private_key(ec.SECP256R1())
    entries: list[x509.GeneralName] = [x509.DNSName(DEFAULT_NAME)]
    for host in dict.fromkeys(hosts):  # de-duplicated, order kept
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if host and host != DEFAULT_NAME:
                entries.append(x509.DNSName(host))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEFAULT_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(entries), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only (0600)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _check_openssl_loads(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _check_openssl_loads(path: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(path))
    except ssl.SSLError as exc:
        raise CertificateError(f"OpenSSL refuses the certificate and key: {exc}") from None


def parse_pair(
    cert_pem: bytes, key_pem: bytes, now: datetime.datetime
) -> tuple[list[x509.Certificate], ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    """The certificate chain and key of an upload, checked; CertificateError if not."""
    if len(cert_pem) > MAX_PEM_BYTES or len(key_pem) > MAX_PEM_BYTES:
        raise CertificateError(f"certificate and key must each be under {MAX_PEM_BYTES} bytes")
    blocks = _PEM_CERT.findall(cert_pem)
    if not blocks:
        raise CertificateError("no PEM certificate found (-----BEGIN CERTIFICATE-----)")
    try:
        chain = [x509.load_pem_x509_certificate(block) for block in blocks]
    except ValueError as exc:
        raise CertificateError(f"certificate does not parse: {exc}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: the key is encrypted
        raise CertificateError(f"private key does not parse (or has a password): {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(f"RSA key of {key.key_size} bits: at least {MIN_RSA_BITS}")
    elif not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError("private key must be RSA or ECDSA")
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if leaf.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise CertificateError("the private key does not match the certificate")
    if _not_after(leaf) <= now:
        raise CertificateError(f"the certificate expired on {_not_after(leaf):%Y-%m-%d}")
    if _not_before(leaf) > now:
        raise CertificateError(f"the certificate is valid only from {_not_before(leaf):%Y-%m-%d}")
    return chain, key


def install(
    directory: Path, cert_pem: bytes, key_pem: bytes, now: datetime.datetime
) -> CertificateInfo:
    """Check an uploaded certificate (chain) and key, then replace the current pair."""
    chain, key = parse_pair(cert_pem, key_pem, now)
    pem = _key_pem(key) + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    _write_private(directory / TLS_FILE, pem)
    return describe(chain[0])


def ensure(directory: Path, hosts: Iterable[str], now: datetime.datetime) -> Path:
    """The PEM file the server loads, made self-signed when missing or unusable."""
    path = directory / TLS_FILE
    if path.exists():
        try:
            _check_openssl_loads(path)
            return path
        except CertificateError:
            pass  # unreadable or half-edited by hand: a new self-signed pair replaces it
    cert, key = self_signed(hosts, now)
    _write_private(path, _key_pem(key) + cert)
    return path


def current(directory: Path) -> CertificateInfo:
    """What the server presents: the first certificate of the PEM file."""
    data = (directory / TLS_FILE).read_bytes()
    block = _PEM_CERT.search(data)
    if block is None:
        raise CertificateError(f"{directory / TLS_FILE}: no certificate")
    return describe(x509.load_pem_x509_certificate(block.group(0)))
