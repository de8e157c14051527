"""HTTP Digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760): credentials, challenges, nonces.

The server side: parse an Authorization header, build WWW-Authenticate challenges,
check a response against a stored HA1, and mint nonces that cannot be forged (HMAC)
and whose nonce-count cannot be replayed. ``digest_client`` answers challenges.
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
import struct
from dataclasses import dataclass
from enum import Enum
from typing import Final, Self

from appliance.sip.digest_hash import ALGORITHMS, digest_hex
from appliance.sip.errors import ParseError
from appliance.sip.grammar import quote

# One auth-param (RFC 7616 §3.4): name = token or quoted-string, then a comma or the end.
_PARAM: Final = re.compile(
    r"[ \t,]*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)[ \t]*=[ \t]*"
    r'(?:"((?:[^"\\]|\\.)*)"|([^ \t,"]+))[ \t]*(?:,|$)'
)
_ESCAPE: Final = re.compile(r"\\(.)")

MAX_NC: Final = 255  # nonce-count slots are one byte; past this a fresh nonce is issued


@dataclass(frozen=True, slots=True)
class Credentials:
    """An Authorization / Proxy-Authorization value (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    qop: str | None = None
    nc: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str) -> Self:
        fields = digest_params(text)
        try:
            username = fields["username"]
            return cls(
                username=username,
                realm=fields["realm"],
                nonce=fields["nonce"],
                uri=fields["uri"],
                response=fields["response"].lower(),
                algorithm=fields.get("algorithm", "MD5").upper(),
                cnonce=fields.get("cnonce"),
                qop=fields.get("qop"),
                nc=fields.get("nc"),
                opaque=fields.get("opaque"),
            )
        except KeyError as missing:
            raise ParseError(f"digest credentials lack {missing.args[0]}") from None


def digest_params(text: str) -> dict[str, str]:
    """The auth-params of a ``Digest ...`` header value, names lower-cased, quotes undone."""
    scheme, _, rest = text.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ParseError(f"unsupported auth scheme {scheme[:20]!r}")
    fields: dict[str, str] = {}
    rest = rest.rstrip(" \t,")
    pos = 0
    end = len(rest)
    while pos < end:
        match = _PARAM.match(rest, pos)
        if match is None:
            raise ParseError(f"bad digest parameter near {rest[pos : pos + 40]!r}")
        name, quoted, token = match.group(1, 2, 3)
        if quoted is not None:
            fields[name.lower()] = _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            fields[name.lower()] = token
        pos = match.end()
    return fields


def expected_response(creds: Credentials, ha1: str, method: str) -> str:
    """The ``response`` value a client that knows the password computes (RFC 7616 §3.4.1)."""
    alg = creds.algorithm
    ha2 = _ha2(alg, method, creds.uri)
    if creds.qop is None:
        return digest_hex(alg, f"{ha1}:{creds.nonce}:{ha2}")  # RFC 2069 compatibility
    return digest_hex(alg, f"{ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:{creds.qop}:{ha2}")


@functools.lru_cache(maxsize=1024)
def _ha2(algorithm: str, method: str, uri: str) -> str:
    # H(method ":" digest-uri): the same few values for every REGISTER of a phone.
    return digest_hex(algorithm, f"{method}:{uri}")


def challenge(realm: str, nonce: str, algorithm: str, opaque: str, stale: bool = False) -> str:
    """One WWW-Authenticate value offering ``algorithm`` with qop=auth."""
    return ChallengeTemplate(realm, algorithm, opaque).fill(nonce, stale)


class ChallengeTemplate:
    """A challenge with everything but the nonce formatted once (it is per request)."""

    __slots__ = ("_head", "_tail")

    def __init__(self, realm: str, algorithm: str, opaque: str) -> None:
        self._head = f"Digest realm={quote(realm)}, nonce="
        self._tail = f', opaque={quote(opaque)}, algorithm={algorithm}, qop="auth"'

    def fill(self, nonce: str, stale: bool = False) -> str:
        value = self._head + quote(nonce) + self._tail
        return value + ", stale=true" if stale else value


class NonceCheck(Enum):
    VALID = "valid"
    STALE = "stale"  # genuine but expired, from an earlier run, or nc exhausted
    FORGED = "forged"  # not one of ours
    REPLAYED = "replayed"  # nonce-count not higher than one already used


_LAYOUT: Final = struct.Struct(">IQI")  # epoch, nonce id, issue time (s since epoch start)
_MAC_LEN: Final = 12
_NONCE_LEN: Final = 38  # base64url of 16 + 12 bytes, padding stripped


class NonceBook:
    """Mints and checks nonces: HMAC-signed, time-limited, nonce-count checked.

    A nonce carries this run's ``epoch``, a sequential id and its issue time, signed
    with a secret kept in the store (so it survives restarts). Nonce-count replay
    protection uses one byte per id in a fixed ring: memory stays bounded however many
    nonces are issued, and an id whose slot was reused is answered as stale.
    """

    def __init__(self, secret: bytes, epoch: int, lifetime: float, slots: int = 1 << 20) -> None:
        if len(secret) < 16:
            raise ValueError("nonce secret must be at least 16 bytes")
        self._secret = secret
        self._epoch = epoch & 0xFFFFFFFF
        self._lifetime = lifetime
        self._counts = bytearray(slots)
        self._slots = slots
        self._next_id = 0
        self._origin: float | None = None  # the `now` of the first nonce: times are relative

    def issue(self, now: float) -> str:
        if self._origin is None:
            self._origin = now
        nid = self._next_id
        self._next_id += 1
        self._counts[nid % self._slots] = 0
        body = _LAYOUT.pack(self._epoch, nid, int(now - self._origin) & 0xFFFFFFFF)
        mac = hmac.digest(self._secret, body, "sha256")[:_MAC_LEN]
        return base64.urlsafe_b64encode(body + mac).decode("ascii").rstrip("=")

    def check(self, nonce: str, nc: str | None, now: float) -> NonceCheck:
        """Is ``nonce`` ours, fresh, and ``nc`` (hex nonce-count, or None) unused?"""
        if len(nonce) != _NONCE_LEN:
            return NonceCheck.FORGED
        try:
            raw = base64.urlsafe_b64decode(nonce + "==")
        except ValueError:
            return NonceCheck.FORGED
        body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if not hmac.compare_digest(mac, hmac.digest(self._secret, body, "sha256")[:_MAC_LEN]):
            return NonceCheck.FORGED
        epoch, nid, issued = _LAYOUT.unpack(body)
        if epoch != self._epoch or self._origin is None or nid >= self._next_id:
            return NonceCheck.STALE
        if now - self._origin - issued > self._lifetime:
            return NonceCheck.STALE
        if self._next_id - nid > self._slots:
            return NonceCheck.STALE  # its replay slot has been given to a newer nonce
        count = _nonce_count(nc)
        if count is None:
            return NonceCheck.FORGED
        slot = nid % self._slots
        if count > MAX_NC:
            return NonceCheck.STALE
        if count <= self._counts[slot]:
            return NonceCheck.REPLAYED
        return NonceCheck.VALID

    def consume(self, nonce: str, nc: str | None) -> None:
        """Record that ``nc`` of a VALID nonce was used (call after the response checked)."""
        raw = base64.urlsafe_b64decode(nonce + "==")
        _, nid, _ = _LAYOUT.unpack(raw[: _LAYOUT.size])
        count = _nonce_count(nc)
        if count is not None:
            # Without qop there is no nc: the nonce is good for one use only.
            self._counts[nid % self._slots] = MAX_NC if nc is None else min(count, MAX_NC)


def _nonce_count(nc: str | None) -> int | None:
    if nc is None:
        return 1
    if len(nc) != 8:
        return None
    try:
        return int(nc, 16)
    except ValueError:
        return None


def supported(algorithm: str) -> bool:
    return algorithm.upper() in ALGORITHMS
