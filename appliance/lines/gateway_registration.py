"""The FXS ports' registrations, as the gateway (``gateway``) runs them: when to send
REGISTER, how to answer a challenge, what the answer means (sans-IO).

Each port's timing lives in a ``LineRegistration``; this module builds the requests
and reads the responses. The gateway sends what it gets through its transaction layer
and brings back the response or the timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from appliance.lines.gateway_sip import LINE_PARAM, granted_expiry, hostport, stale_contacts
from appliance.lines.line_registration import LineRegistration, RegState
from appliance.sip.digest_client import authorization, pick
from appliance.sip.message import Request, Response
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri

log = logging.getLogger(__name__)

USER_AGENT = "YakYak analog gateway"


@dataclass(frozen=True, slots=True)
class RegistrationTarget:
    """One FXS port as it registers."""

    port: int
    user: str
    ha1: Mapping[str, str]


class Registrations:
    def __init__(
        self,
        server: Peer,
        contact_host: str,
        lines: list[RegistrationTarget],
        expires: int,
        via: Callable[[], str],
        token: Callable[[], str],
    ) -> None:
        self._server = server
        self._contact_host = contact_host  # "127.0.0.1:40000": where the server reaches us
        self._expires = expires
        self._via = via  # a fresh top Via value, new branch
        self._token = token
        self._targets = {t.port: t for t in lines}
        self.lines: dict[int, LineRegistration] = {
            t.port: LineRegistration(t.port, t.user, token() + "@yakyak-gw") for t in lines
        }
        self._sent: dict[int, Request] = {}

    def registered(self, port: int) -> bool:
        reg = self.lines.get(port)
        return reg is not None and reg.state is RegState.REGISTERED

    def contact_uri(self, port: int, user: str) -> str:
        # ;line= names the port in every request the server sends to this contact, and
        # tells this port's bindings from a softphone sharing the extension
        return f"sip:{user}@{self._contact_host};{LINE_PARAM}={port}"

    def next_deadline(self) -> float | None:
        due = [reg.due for reg in self.lines.values() if reg.due is not None]
        return min(due) if due else None

    def due(self, now: float) -> list[tuple[int, Request]]:
        """REGISTERs to send now (first ones, refreshes, retries)."""
        return [
            (port, self._register(reg))
            for port, reg in self.lines.items()
            if reg.due is not None and reg.due <= now
        ]

    def unregister(self) -> list[tuple[int, Request]]:
        """REGISTER with Expires: 0 for every registered port."""
        out: list[tuple[int, Request]] = []
        for port, reg in self.lines.items():
            if reg.state is RegState.REGISTERED:
                out.append((port, self._register(reg, expires=0)))
                reg.state = RegState.UNREGISTERED
                reg.due = None
        return out

    def timed_out(self, port: int, now: float) -> None:
        reg = self.lines[port]
        log.warning("port %d: REGISTER for %s unanswered", port, reg.user)
        if reg.state is not RegState.UNREGISTERED:
            reg.failed(None, now)

    def response(self, port: int, response: Response, now: float) -> Request | None:
        """Read a final answer to the port's REGISTER; a follow-up request to send (the
        same with credentials, or the removal of stale bindings), or None."""
        reg = self.lines[port]
        target = self._targets[port]
        sent = self._sent.get(port)
        status = response.status
        if status < 200 or sent is None:
            return None
        ours = self.contact_uri(port, reg.user)
        if status < 300:
            if reg.state is RegState.UNREGISTERED:
                return None  # our own removal (stop): nothing more to do
            first = reg.state is not RegState.REGISTERED
            reg.accepted(granted_expiry(response, ours, self._expires), now)
            if first:
                log.info("port %d registered as %s", port, reg.user)
            stale = stale_contacts(response, reg.user, port, ours)
            if stale:
                # bindings of this port from an earlier run (another gateway address)
                # would fork calls to nobody until they expire: remove them now
                return self._register(reg, expires=0, contacts=[f"<{u}>" for u in stale])
            return None
        if status in (401, 407):
            header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            challenge = pick(response.get_all(header), target.ha1)
            if challenge is not None and reg.may_answer(challenge.nonce, challenge.stale):
                value = authorization(
                    challenge,
                    username=reg.user,
                    ha1=target.ha1[challenge.algorithm],
                    method="REGISTER",
                    uri=str(sent.uri),
                    cnonce=self._token(),
                )
                name = "Authorization" if status == 401 else "Proxy-Authorization"
                return self._again(reg, sent, (name, value))
        if reg.state is not RegState.UNREGISTERED:
            log.warning("port %d: registration of %s refused: %d", port, reg.user, status)
            reg.failed(status, now)
        return None

    def _register(
        self,
        reg: LineRegistration,
        *,
        expires: int | None = None,
        contacts: list[str] | None = None,
    ) -> Request:
        domain = hostport(self._server)
        aor = f"<sip:{reg.user}@{domain}>"
        seconds = self._expires if expires is None else expires
        headers = [
            ("Via", self._via()),
            ("Max-Forwards", "70"),
            ("From", f"{aor};tag={self._token()}"),
            ("To", aor),
            ("Call-ID", reg.call_id),
            ("CSeq", f"{reg.next_cseq()} REGISTER"),
            *(("Contact", c) for c in (contacts or [f"<{self.contact_uri(reg.port, reg.user)}>"])),
            ("Expires", str(seconds)),
            ("User-Agent", USER_AGENT),
        ]
        request = Request("REGISTER", Uri("sip", host=domain), tuple(headers), b"")
        if reg.state is not RegState.UNREGISTERED or expires != 0:
            reg.sent()
        self._sent[reg.port] = request
        return request

    def _again(self, reg: LineRegistration, sent: Request, auth: tuple[str, str]) -> Request:
        """``sent`` once more with credentials: new branch and CSeq, same contacts."""
        headers: list[tuple[str, str]] = []
        for name, value in sent.headers:
            if name == "Via":
                headers.append((name, self._via()))
            elif name == "CSeq":
                headers.append((name, f"{reg.next_cseq()} REGISTER"))
            elif name not in ("Authorization", "Proxy-Authorization"):
                headers.append((name, value))
        headers.append(auth)
        request = Request("REGISTER", sent.uri, tuple(headers), b"")
        self._sent[reg.port] = request
        return request
