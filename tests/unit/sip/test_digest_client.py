"""Digest client: challenges parsed, picked in the server's order, and answered so that
the server side (``appliance.sip.digest`` and ``appliance.pbx.auth``) accepts them."""

from __future__ import annotations

import pytest

from appliance.pbx.auth import Account, Authenticator, Outcome
from appliance.sip.digest import Credentials, NonceBook, challenge, expected_response
from appliance.sip.digest_client import Challenge, authorization, pick
from appliance.sip.digest_hash import ALGORITHMS, ha1
from appliance.sip.errors import ParseError
from appliance.sip.message import Request
from appliance.sip.uri import Uri

REALM = "yakyak.local"
USER = "101"
PASSWORD = "pw-101-secret"
URI = "sip:102@yakyak.local"


def all_ha1(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {alg: ha1(alg, user, REALM, password) for alg in ALGORITHMS}


# --- Challenge.parse ---------------------------------------------------------------


def test_parse_server_challenge_text() -> None:
    parsed = Challenge.parse(challenge(REALM, "n-1", "SHA-256", "op-1", stale=True))
    assert parsed == Challenge(
        realm=REALM, nonce="n-1", algorithm="SHA-256", opaque="op-1", qop=("auth",), stale=True
    )


def test_parse_defaults_without_algorithm_opaque_qop_stale() -> None:
    parsed = Challenge.parse('Digest realm="r", nonce="n"')
    assert parsed.algorithm == "MD5"
    assert parsed.opaque is None
    assert parsed.qop == ()
    assert parsed.stale is False


def test_parse_normalises_case_and_qop_list() -> None:
    parsed = Challenge.parse(
        'digest REALM="r", Nonce="n", algorithm=sha-512-256, qop=" Auth , auth-int ,", stale=TRUE'
    )
    assert parsed.algorithm == "SHA-512-256"
    assert parsed.qop == ("auth", "auth-int")
    assert parsed.stale is True


def test_parse_stale_false_and_unquoted_qop() -> None:
    parsed = Challenge.parse('Digest realm="r", nonce="n", qop=auth, stale=false')
    assert parsed.qop == ("auth",)
    assert parsed.stale is False


def test_parse_unescapes_quoted_pairs() -> None:
    parsed = Challenge.parse(r'Digest realm="a\"b\\c", nonce="x\,y", opaque="\"\""')
    assert parsed.realm == 'a"b\\c'
    assert parsed.nonce == "x,y"
    assert parsed.opaque == '""'


@pytest.mark.parametrize(
    "bad",
    [
        'Basic realm="r"',
        'Digest nonce="n"',  # no realm
        'Digest realm="r"',  # no nonce
        'Digest realm="r, nonce="n"',  # unterminated quote
        "Digest ===",
        "",
    ],
)
def test_parse_rejects_bad_values(bad: str) -> None:
    with pytest.raises(ParseError):
        Challenge.parse(bad)


# --- pick ------------------------------------------------------------------------


def test_pick_keeps_the_servers_order() -> None:
    values = [challenge(REALM, "n", alg, "o") for alg in ("SHA-256", "MD5", "SHA-512-256")]
    picked = pick(values, all_ha1())
    assert picked is not None and picked.algorithm == "SHA-256"
    values.reverse()
    picked = pick(values, all_ha1())
    assert picked is not None and picked.algorithm == "SHA-512-256"


def test_pick_skips_unparseable_values() -> None:
    values = ["Basic realm=x", 'Digest realm="r"', "garbage", challenge(REALM, "n", "MD5", "o")]
    picked = pick(values, all_ha1())
    assert picked is not None and picked.algorithm == "MD5" and picked.nonce == "n"


def test_pick_skips_algorithms_without_an_ha1() -> None:
    values = [challenge(REALM, "n", alg, "o") for alg in ("MD5", "SHA-256", "SHA-512-256")]
    only_sha = {"SHA-512-256": all_ha1()["SHA-512-256"]}
    picked = pick(values, only_sha)
    assert picked is not None and picked.algorithm == "SHA-512-256"
    assert pick(values, {}) is None


def test_pick_skips_algorithms_we_do_not_implement_even_with_an_ha1() -> None:
    values = [
        'Digest realm="r", nonce="n1", algorithm=MD5-sess, qop="auth"',
        'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"',
    ]
    picked = pick(values, {"MD5-SESS": "00", "SHA-256": "11"})
    assert picked is not None and picked.nonce == "n2"


def test_pick_skips_auth_int_only_challenges() -> None:
    values = [
        'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth-int"',
        'Digest realm="r", nonce="n2", algorithm=MD5, qop="auth-int,auth"',
    ]
    picked = pick(values, all_ha1())
    assert picked is not None and picked.nonce == "n2"
    assert pick(values[:1], all_ha1()) is None


def test_pick_accepts_challenge_without_qop() -> None:
    picked = pick(['Digest realm="r", nonce="n"'], all_ha1())
    assert picked is not None and picked.qop == () and picked.algorithm == "MD5"


def test_pick_of_nothing_is_none() -> None:
    assert pick([], all_ha1()) is None


# --- authorization verifies on the server side -------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("qop", [(), ("auth",), ("auth", "auth-int")])
@pytest.mark.parametrize("opaque", [None, "op/aque+1"])
@pytest.mark.parametrize("method", ["REGISTER", "INVITE"])
def test_authorization_verifies_with_server_side(
    alg: str, qop: tuple[str, ...], opaque: str | None, method: str
) -> None:
    chal = Challenge(realm=REALM, nonce="nonce-123", algorithm=alg, opaque=opaque, qop=qop)
    key = ha1(alg, USER, REALM, PASSWORD)
    value = authorization(
        chal, username=USER, ha1=key, method=method, uri=URI, cnonce="c0ffee", nc=7
    )
    creds = Credentials.parse(value)
    assert creds.username == USER
    assert creds.realm == REALM
    assert creds.nonce == "nonce-123"
    assert creds.uri == URI
    assert creds.algorithm == alg
    assert creds.opaque == opaque
    if qop:
        assert creds.qop == "auth"
        assert creds.nc == "00000007"
        assert creds.cnonce == "c0ffee"
    else:
        assert creds.qop is None and creds.nc is None and creds.cnonce is None
    assert len(creds.response) == (32 if alg == "MD5" else 64)
    assert expected_response(creds, key, method) == creds.response
    # A different password or method would not verify.
    wrong = ha1(alg, USER, REALM, "not-the-password")
    assert expected_response(creds, wrong, method) != creds.response
    other = "BYE" if method != "BYE" else "INVITE"
    assert expected_response(creds, key, other) != creds.response


def test_authorization_response_matches_rfc7616_md5_vector() -> None:
    # RFC 7616 §3.9.1: the MD5 example, answered by our client.
    chal = Challenge(
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm="MD5",
        opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        qop=("auth", "auth-int"),
    )
    value = authorization(
        chal,
        username="Mufasa",
        ha1=ha1("MD5", "Mufasa", "http-auth@example.org", "Circle of Life"),
        method="GET",
        uri="/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert Credentials.parse(value).response == "8ca523f5e9506fed4657c9700eebdbec"


def test_authorization_quotes_awkward_values() -> None:
    chal = Challenge(realm='r"e\\alm', nonce='n,"1', algorithm="SHA-256", opaque='o\\"', qop=())
    key = ha1("SHA-256", 'u"s', 'r"e\\alm', "pw")
    value = authorization(chal, username='u"s', ha1=key, method="INVITE", uri=URI, cnonce="c")
    creds = Credentials.parse(value)
    assert (creds.username, creds.realm, creds.nonce, creds.opaque) == (
        'u"s',
        'r"e\\alm',
        'n,"1',
        'o\\"',
    )
    assert expected_response(creds, key, "INVITE") == creds.response


def test_authorization_nc_is_eight_hex_digits() -> None:
    chal = Challenge(realm=REALM, nonce="n", qop=("auth",))
    creds = Credentials.parse(
        authorization(chal, username=USER, ha1="x", method="REGISTER", uri=URI, cnonce="c", nc=255)
    )
    assert creds.nc == "000000ff"


# --- full round trip against the Authenticator ---------------------------------------


def make_auth(account: Account, lifetime: float = 300.0) -> Authenticator:
    secret = b"s" * 32
    return Authenticator(REALM, {account.number: account}, NonceBook(secret, 1, lifetime), secret)


def signed_request(value: str, method: str = "INVITE") -> Request:
    return Request(method=method, uri=Uri.parse(URI), headers=(("Authorization", value),))


def answer(
    auth: Authenticator, keys: dict[str, str], now: float, nc: int = 1, method: str = "INVITE"
) -> tuple[Challenge, Request]:
    values = [v for name, v in auth.challenge(USER, now) if name == "WWW-Authenticate"]
    chal = pick(values, keys)
    assert chal is not None
    value = authorization(
        chal, username=USER, ha1=keys[chal.algorithm], method=method, uri=URI, cnonce="cn", nc=nc
    )
    return chal, signed_request(value, method)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_round_trip_with_authenticator(alg: str) -> None:
    keys = {alg: ha1(alg, USER, REALM, PASSWORD)}
    auth = make_auth(Account(USER, keys))
    chal, request = answer(auth, keys, now=10.0)
    assert chal.algorithm == alg and chal.realm == REALM and chal.qop == ("auth",)
    assert chal.opaque is not None
    creds = auth.credentials(request)
    assert creds is not None and creds.opaque == chal.opaque
    result = auth.verify(request, creds, 11.0)
    assert result.outcome is Outcome.OK and result.username == USER


def test_round_trip_picks_first_offered_algorithm() -> None:
    keys = all_ha1()
    auth = make_auth(Account(USER, keys, algorithms=("SHA-512-256", "MD5")))
    chal, request = answer(auth, keys, now=0.0)
    assert chal.algorithm == "SHA-512-256"
    creds = auth.credentials(request)
    assert creds is not None
    assert auth.verify(request, creds, 1.0).outcome is Outcome.OK


def test_round_trip_wrong_ha1_fails() -> None:
    good = all_ha1()
    auth = make_auth(Account(USER, good))
    wrong = all_ha1(password="guess")
    _, request = answer(auth, wrong, now=0.0)
    creds = auth.credentials(request)
    assert creds is not None
    assert auth.verify(request, creds, 1.0).outcome is Outcome.FAILED


def test_round_trip_replayed_nc_fails_and_next_nc_succeeds() -> None:
    keys = all_ha1()
    auth = make_auth(Account(USER, keys))
    values = [v for _, v in auth.challenge(USER, 0.0)]
    chal = pick(values, keys)
    assert chal is not None

    def verify(nc: int) -> Outcome:
        key = keys[chal.algorithm]
        value = authorization(
            chal, username=USER, ha1=key, method="INVITE", uri=URI, cnonce="cn", nc=nc
        )
        request = signed_request(value)
        creds = auth.credentials(request)
        assert creds is not None
        return auth.verify(request, creds, 1.0).outcome

    assert verify(1) is Outcome.OK
    assert verify(1) is Outcome.FAILED
    assert verify(2) is Outcome.OK


def test_round_trip_after_nonce_lifetime_is_stale_and_client_sees_stale() -> None:
    keys = all_ha1()
    auth = make_auth(Account(USER, keys), lifetime=30.0)
    _, request = answer(auth, keys, now=0.0)
    creds = auth.credentials(request)
    assert creds is not None
    assert auth.verify(request, creds, 31.0).outcome is Outcome.STALE
    again = pick([v for _, v in auth.challenge(USER, 31.0, stale=True)], keys)
    assert again is not None and again.stale is True
