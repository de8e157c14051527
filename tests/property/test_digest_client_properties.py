"""Hypothesis: Challenge.parse accepts or raises ParseError, and round-trips quoted values."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from appliance.sip.digest import Credentials, challenge, expected_response
from appliance.sip.digest_client import Challenge, authorization
from appliance.sip.digest_hash import ALGORITHMS, ha1
from appliance.sip.errors import ParseError
from appliance.sip.grammar import quote

SEED = (
    'Digest realm="yakyak.local", nonce="abc\\"def", opaque="o,1", algorithm=SHA-256, '
    'qop="auth,auth-int", stale=true'
)

# Values with plenty of the characters quoting has to deal with.
awkward = st.text(
    alphabet=st.one_of(
        st.sampled_from(['"', "\\", ",", "=", " ", "\t", "a", "Z", "0", "é", "\u2603"]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
)


@given(st.text(max_size=200))
@example("Digest")
@example("Digest ")
@example('Digest realm="\\')
@example('Digest realm="a\\", nonce=x')
@example("Digest realm=, nonce=")
def test_any_text_parses_or_raises_parse_error(text: str) -> None:
    try:
        parsed = Challenge.parse(text)
    except ParseError:
        return
    assert isinstance(parsed, Challenge)


@given(st.data())
def test_mutated_challenges_parse_or_raise_parse_error(data: st.DataObject) -> None:
    text = list(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(text) - 1))
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            text[i] = data.draw(st.characters(codec="utf-8"))
        elif choice == 1:
            del text[i]
        else:
            text[i:i] = data.draw(st.sampled_from(['"', "\\", ",", "=", " ", "\t", "\r\n"]))
    try:
        parsed = Challenge.parse("".join(text))
    except ParseError:
        return
    assert isinstance(parsed, Challenge)
    assert parsed.algorithm == parsed.algorithm.upper()


@given(realm=awkward, nonce=awkward, opaque=st.one_of(st.none(), awkward))
@example(realm='"', nonce="\\", opaque='\\"')
@example(realm="", nonce="", opaque="")
def test_quoted_values_round_trip(realm: str, nonce: str, opaque: str | None) -> None:
    text = f"Digest realm={quote(realm)}, nonce={quote(nonce)}"
    if opaque is not None:
        text += f", opaque={quote(opaque)}"
    text += ', algorithm=SHA-256, qop="auth"'
    parsed = Challenge.parse(text)
    assert (parsed.realm, parsed.nonce, parsed.opaque) == (realm, nonce, opaque)
    assert parsed.algorithm == "SHA-256" and parsed.qop == ("auth",)


@given(realm=awkward, nonce=awkward, opaque=awkward, stale=st.booleans())
def test_server_challenge_round_trips(realm: str, nonce: str, opaque: str, stale: bool) -> None:
    parsed = Challenge.parse(challenge(realm, nonce, "MD5", opaque, stale))
    assert parsed == Challenge(realm, nonce, "MD5", opaque, ("auth",), stale)


@given(
    realm=awkward,
    nonce=awkward,
    opaque=st.one_of(st.none(), awkward),
    username=awkward,
    alg=st.sampled_from(ALGORITHMS),
    qop=st.sampled_from([(), ("auth",)]),
    nc=st.integers(1, 2**32 - 1),
)
def test_authorization_verifies_for_awkward_values(
    realm: str,
    nonce: str,
    opaque: str | None,
    username: str,
    alg: str,
    qop: tuple[str, ...],
    nc: int,
) -> None:
    key = ha1(alg, username, realm, "pw")
    chal = Challenge(realm, nonce, alg, opaque, qop)
    value = authorization(
        chal, username=username, ha1=key, method="INVITE", uri="sip:1@h", cnonce="c", nc=nc
    )
    creds = Credentials.parse(value)
    assert (creds.username, creds.realm, creds.nonce, creds.opaque) == (
        username,
        realm,
        nonce,
        opaque,
    )
    assert expected_response(creds, key, "INVITE") == creds.response
