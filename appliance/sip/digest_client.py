"""Answering a Digest challenge as a user agent (RFC 7616 §3.4, RFC 8760 for SIP).

Our own user agents (the analog ports, ``appliance.lines.gateway``) authenticate to our
registrar with the HA1 the store keeps, never a clear-text password: the response is
computed from H(A1) alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Self

from appliance.sip.digest import Credentials, digest_params, expected_response
from appliance.sip.digest_hash import ALGORITHMS
from appliance.sip.errors import ParseError
from appliance.sip.grammar import quote


@dataclass(frozen=True, slots=True)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate value."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    opaque: str | None = None
    qop: tuple[str, ...] = ()
    stale: bool = False

    @classmethod
    def parse(cls, text: str) -> Self:
        fields = digest_params(text)
        try:
            realm, nonce = fields["realm"], fields["nonce"]
        except KeyError as missing:
            raise ParseError(f"digest challenge lacks {missing.args[0]}") from None
        qop = tuple(q.strip().lower() for q in fields.get("qop", "").split(",") if q.strip())
        return cls(
            realm=realm,
            nonce=nonce,
            algorithm=fields.get("algorithm", "MD5").upper(),
            opaque=fields.get("opaque"),
            qop=qop,
            stale=fields.get("stale", "").lower() == "true",
        )


def pick(values: Iterable[str], ha1: Mapping[str, str]) -> Challenge | None:
    """The first parseable challenge whose algorithm we hold an HA1 for (RFC 8760 §2.4:
    the server lists them in its order of preference)."""
    for value in values:
        try:
            challenge = Challenge.parse(value)
        except ParseError:
            continue
        if challenge.algorithm in ALGORITHMS and challenge.algorithm in ha1:
            if challenge.qop and "auth" not in challenge.qop:
                continue  # auth-int would need the body hashed: not offered by us
            return challenge
    return None


def authorization(
    challenge: Challenge,
    *,
    username: str,
    ha1: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The Authorization value answering ``challenge`` for one request."""
    qop = "auth" if challenge.qop else None
    nc_text = f"{nc:08x}" if qop else None
    creds = Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop else None,
        qop=qop,
        nc=nc_text,
        opaque=challenge.opaque,
    )
    response = expected_response(creds, ha1, method)
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)
