"""Digest: RFC 7616 §3.9.1 vectors, nonce forging, staleness and replay."""

from __future__ import annotations

import pytest

from appliance.sip.digest import Credentials, NonceBook, NonceCheck, challenge, expected_response
from appliance.sip.digest_hash import ha1
from appliance.sip.errors import ParseError

RFC7616 = (
    'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
    'algorithm={alg}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, '
    'cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, '
    'response="{resp}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("alg", "resp"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(alg: str, resp: str) -> None:
    creds = Credentials.parse(RFC7616.format(alg=alg, resp=resp))
    assert creds.username == "Mufasa" and creds.nc == "00000001"
    secret = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life")
    assert expected_response(creds, secret, "GET") == resp


def test_sha512_256_is_supported() -> None:
    assert len(ha1("SHA-512-256", "u", "r", "p")) == 64


@pytest.mark.parametrize(
    "bad",
    ["Basic dXNlcjpwYXNz", 'Digest username="a"', 'Digest username="a, realm=x', "Digest ==="],
)
def test_bad_credentials_raise_parse_error(bad: str) -> None:
    with pytest.raises(ParseError):
        Credentials.parse(bad)


def test_challenge_text() -> None:
    text = challenge("yakyak.local", "n1", "SHA-256", "o1", stale=True)
    assert text == (
        'Digest realm="yakyak.local", nonce="n1", opaque="o1", algorithm=SHA-256, '
        'qop="auth", stale=true'
    )


def book(**kw: float) -> NonceBook:
    return NonceBook(
        b"k" * 32, epoch=1, lifetime=kw.get("lifetime", 300), slots=int(kw.get("slots", 8))
    )


def test_nonce_lifecycle() -> None:
    nonces = book()
    n = nonces.issue(1000.0)
    assert nonces.check(n, "00000001", 1001.0) is NonceCheck.VALID
    nonces.consume(n, "00000001")
    assert nonces.check(n, "00000001", 1002.0) is NonceCheck.REPLAYED
    assert nonces.check(n, "00000002", 1002.0) is NonceCheck.VALID
    assert nonces.check(n, "00000002", 1301.0) is NonceCheck.STALE


def test_nonce_without_qop_is_single_use() -> None:
    nonces = book()
    n = nonces.issue(0.0)
    assert nonces.check(n, None, 1.0) is NonceCheck.VALID
    nonces.consume(n, None)
    assert nonces.check(n, None, 1.0) is NonceCheck.REPLAYED


def test_forged_and_foreign_nonces() -> None:
    nonces = book()
    n = nonces.issue(0.0)
    flipped = n[:-2] + ("A" if n[-2] != "A" else "B") + n[-1]
    assert nonces.check(flipped, "00000001", 1.0) is NonceCheck.FORGED
    assert nonces.check("x" * len(n), "00000001", 1.0) is NonceCheck.FORGED
    assert nonces.check(n, "zz", 1.0) is NonceCheck.FORGED
    other_key = NonceBook(b"j" * 32, epoch=1, lifetime=300)
    assert other_key.check(n, "00000001", 1.0) is NonceCheck.FORGED
    restarted = NonceBook(b"k" * 32, epoch=2, lifetime=300)
    restarted.issue(0.0)
    assert restarted.check(n, "00000001", 1.0) is NonceCheck.STALE  # a previous run's


def test_nonce_slot_reuse_makes_old_nonce_stale() -> None:
    nonces = book(slots=4)
    first = nonces.issue(0.0)
    for _ in range(4):
        nonces.issue(0.0)
    assert nonces.check(first, "00000001", 0.0) is NonceCheck.STALE


def test_nonce_count_ceiling() -> None:
    nonces = book()
    n = nonces.issue(0.0)
    assert nonces.check(n, "00000100", 0.0) is NonceCheck.STALE
