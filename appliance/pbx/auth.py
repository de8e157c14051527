"""Digest authentication of requests against the extension directory (RFC 3261 §22.4).

Unknown user names are checked against a keyed fake HA1, so a request for an extension
that does not exist costs the same work and gets the same answers as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from appliance.sip.digest import (
    ChallengeTemplate,
    Credentials,
    NonceBook,
    NonceCheck,
    expected_response,
    supported,
)
from appliance.sip.message import Header, Request

# Why MD5 is offered first by default: sipp 3.6 and many deployed phones answer only
# the first challenge they see and know only MD5; a phone that knows SHA-256 and reads
# every challenge still picks it (RFC 8760 §2.4). Installers can reorder globally or
# per extension. A per-extension order is the one thing that differs between a known
# and an unknown user's challenge, so it is only worth setting for a phone that needs it.
DEFAULT_ALGORITHMS = ("MD5", "SHA-256", "SHA-512-256")


@dataclass(frozen=True, slots=True)
class Account:
    """What authentication needs to know of one extension."""

    number: str
    ha1: Mapping[str, str]  # algorithm -> hex HA1 for our realm
    algorithms: tuple[str, ...] | None = None  # per-extension challenge order
    enabled: bool = True
    # A trunk of ours (the analog gateway's FXO lines): its calls come from whoever its
    # From names, the caller ID the line delivered, not from the account itself.
    asserts_caller: bool = False


class Outcome(Enum):
    OK = "ok"
    FAILED = "failed"  # wrong password, unknown user, forged or replayed nonce
    STALE = "stale"  # right password, old nonce: challenge again with stale=true
    MALFORMED = "malformed"  # the credentials could not be parsed


@dataclass(frozen=True, slots=True)
class Verification:
    outcome: Outcome
    username: str = ""


class Authenticator:
    def __init__(
        self,
        realm: str,
        accounts: Mapping[str, Account],
        nonces: NonceBook,
        secret: bytes,
        algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
    ) -> None:
        self.realm = realm
        self.accounts = accounts
        self.nonces = nonces
        self.algorithms = algorithms
        self._secret = secret
        self._opaque = hashlib.sha256(b"opaque" + secret).hexdigest()[:16]
        self._templates: dict[str, ChallengeTemplate] = {}

    def challenge(self, username: str | None, now: float, stale: bool = False) -> list[Header]:
        """WWW-Authenticate headers, one per algorithm in the configured order."""
        order = self.algorithms
        account = self.accounts.get(username) if username else None
        if account is not None and account.algorithms:
            order = account.algorithms
        nonce = self.nonces.issue(now)
        templates = self._templates
        return [
            ("WWW-Authenticate", (templates.get(alg) or self._template(alg)).fill(nonce, stale))
            for alg in order
        ]

    def _template(self, algorithm: str) -> ChallengeTemplate:
        template = ChallengeTemplate(self.realm, algorithm, self._opaque)
        self._templates[algorithm] = template
        return template

    def verify(self, request: Request, creds: Credentials, now: float) -> Verification:
        username = creds.username
        account = self.accounts.get(username)
        if account is not None and account.enabled:
            ha1 = account.ha1.get(creds.algorithm)
        else:
            ha1 = None
        if ha1 is None:
            ha1 = self._fake_ha1(creds.algorithm, username)
        if not supported(creds.algorithm) or creds.realm != self.realm:
            return Verification(Outcome.FAILED, username)
        if creds.qop is not None and (creds.qop != "auth" or not creds.cnonce or not creds.nc):
            return Verification(Outcome.FAILED, username)
        good = hmac.compare_digest(expected_response(creds, ha1, request.method), creds.response)
        check = self.nonces.check(creds.nonce, creds.nc, now)
        if not good or check in (NonceCheck.FORGED, NonceCheck.REPLAYED):
            return Verification(Outcome.FAILED, username)
        if check is NonceCheck.STALE:
            return Verification(Outcome.STALE, username)
        self.nonces.consume(creds.nonce, creds.nc)
        return Verification(Outcome.OK, username)

    def credentials(self, request: Request) -> Credentials | None:
        """The request's credentials for our realm; None when it carries none."""
        values = [v for k, v in request.headers if k == "Authorization"]
        if not values:
            return None
        first: Credentials | None = None
        for value in values:
            creds = Credentials.parse(value)  # ParseError -> caller answers 400
            if creds.realm == self.realm:
                return creds
            first = first or creds
        return first

    def _fake_ha1(self, algorithm: str, username: str) -> str:
        """A stable HA1 for a user that does not exist (same cost as a real check)."""
        digest = hmac.digest(self._secret, f"{algorithm}:{username}".encode(), "sha256").hex()
        return digest[: 32 if algorithm == "MD5" else 64]
