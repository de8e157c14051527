"""The appliance's SIP front door: bytes in, actions out (sans-IO).

It parses (the one place where bad bytes become 400/505 answers), applies RFC 3581
``received``/``rport`` to the top Via, runs requests through the transaction layer,
and answers them: OPTIONS directly, REGISTER through digest authentication, the
brute-force guard and the registrar. Methods the appliance does not serve yet are
authenticated first and then refused, so no answer reveals whether an extension exists.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from appliance.pbx.auth import Authenticator, Outcome
from appliance.pbx.guard import AuthGuard, Lockout, Verdict
from appliance.pbx.registrar import Change, Registrar
from appliance.sip.errors import ParseError
from appliance.sip.grammar import replace_param, split_list
from appliance.sip.headers import Via
from appliance.sip.message import (
    REASONS,
    Header,
    Request,
    Response,
    make_response,
    response_headers,
)
from appliance.sip.parser import DEFAULT_LIMITS, Limits, parse_message
from appliance.sip.transaction import (
    Action,
    RequestReceived,
    Send,
    TransactionLayer,
)
from appliance.sip.transport import Peer

log = logging.getLogger(__name__)

# What this release serves; INVITE and BYE join when calls do.
ALLOW: Final = "ACK, CANCEL, OPTIONS, REGISTER"
SUPPORTED: Final = frozenset({"path"})  # option tags we honour (RFC 3261 §20.37)
NOT_SERVED: Final = 501  # Not Implemented, after authentication


@dataclass(frozen=True, slots=True)
class Persist:
    """A binding change for the store to write."""

    change: Change


@dataclass(frozen=True, slots=True)
class Locked:
    """The guard locked something out: log it and record it for administrators."""

    lockout: Lockout


FrontAction = Send | Persist | Locked


class SipFront:
    def __init__(
        self,
        layer: TransactionLayer,
        auth: Authenticator,
        guard: AuthGuard,
        registrar: Registrar,
        rng: random.Random,
        server: str = "YakYak",
        limits: Limits = DEFAULT_LIMITS,
        wall_clock: Callable[[float], float] | None = None,
    ) -> None:
        self.layer = layer
        self.auth = auth
        self.guard = guard
        self.registrar = registrar
        self._rng = rng
        self._server: Header = ("Server", server)
        self._limits = limits
        # Maps the monotonic `now` to Unix time for bindings; tests pass their own.
        self._wall = wall_clock or (lambda now: now)

    # -- entry points --------------------------------------------------------------

    def receive(self, data: bytes, peer: Peer, now: float) -> list[FrontAction]:
        if not data.strip(b"\r\n\x00 "):
            return []  # keep-alive (RFC 5626 §4.4.1 CRLF on datagrams)
        try:
            message = parse_message(data, self._limits)
        except ParseError as exc:  # the one except where bytes enter (STYLE §2.5)
            return self._reject(exc, data, peer)
        if isinstance(message, Response):
            try:
                return self._dispatch(self.layer.receive(message, peer, now), now)
            except ParseError:
                return []  # a response we cannot match is dropped (RFC 3261 §18.1.2)
        try:
            request, reply_to = self._apply_rport(message, peer)
            if self._stateless(request):
                return self._answer_statelessly(request, reply_to, now)
            actions = self.layer.receive(request, reply_to, now)
        except ParseError as exc:
            return self._reject(exc, data, peer)
        return self._dispatch(actions, now)

    def next_deadline(self) -> float | None:
        return self.layer.next_deadline()

    def handle_timer(self, now: float) -> list[FrontAction]:
        return self._dispatch(self.layer.handle_timer(now), now)

    # -- plumbing ------------------------------------------------------------------

    def _dispatch(self, actions: list[Action], now: float) -> list[FrontAction]:
        out: list[FrontAction] = []
        for action in actions:
            if isinstance(action, Send):
                out.append(action)
            elif isinstance(action, RequestReceived):
                if action.key is None:
                    continue  # ACK for a 2xx: no dialogs to give it to yet
                try:
                    response, extra = self._answer(action.request, action.peer, now)
                except _Drop:
                    # Rate-limited: no answer at all. The layer abandons the silent
                    # transaction after tu_wait and absorbs retransmissions until then.
                    continue
                out.extend(extra)
                out.extend(
                    a for a in self.layer.respond(action.key, response, now) if isinstance(a, Send)
                )
        return out

    @staticmethod
    def _stateless(request: Request) -> bool:
        """Requests answered at once without a transaction (RFC 3261 §8.2.7).

        Everything without credentials gets its final answer straight away (a
        challenge, OPTIONS 200, 420, 403): keeping a transaction for it would only
        cost memory (Timer J holds it 32 s) and time. A retransmission simply gets a
        fresh answer. Authenticated requests keep transactions, so a retransmitted
        REGISTER is absorbed instead of tripping the nonce-count replay check.
        """
        if request.method in ("ACK", "CANCEL"):
            return False
        for name, _ in request.headers:
            if name == "Authorization":
                return False
        return True

    def _answer_statelessly(self, request: Request, peer: Peer, now: float) -> list[FrontAction]:
        try:
            response, extra = self._answer(request, peer, now)
        except _Drop:
            return []
        out: list[FrontAction] = list(extra)
        out.append(Send(response, peer, bytes(response)))
        return out

    def _reject(self, exc: ParseError, data: bytes, peer: Peer) -> list[FrontAction]:
        """Answer a request we could not parse, if enough of it was read to reply."""
        names = {name for name, _ in exc.headers}
        # Only Via is needed to route an answer; the client matches it by the branch
        # (RFC 3261 §17.1.3), and a 400 that names the missing header beats silence.
        if data.startswith(b"SIP/") or "Via" not in names:
            log.debug("dropped unparseable message from %s: %s", peer, exc.reason)
            return []
        if data.lstrip(b"\r\n").startswith(b"ACK "):
            return []  # never answer an ACK (RFC 3261 §17.2.1)
        status = exc.status
        reason = exc.reason.replace("\r", " ").replace("\n", " ")[:120]
        try:
            fixed, reply_to = self._fix_top_via(exc.headers, peer)
        except ParseError:
            return []  # not even the Via can be read: nowhere to send an answer
        headers = response_headers(fixed, to_tag=self._tag())
        headers.append(self._server)
        if status == 505:
            reason = REASONS[505]
        response = Response(status, reason, tuple(headers))
        log.debug("answered %d to %s: %s", status, peer, exc.reason)
        return [Send(response, reply_to)]

    def _apply_rport(self, request: Request, peer: Peer) -> tuple[Request, Peer]:
        """RFC 3261 §18.2.1 received and RFC 3581 rport on the top Via."""
        headers, reply_to = self._fix_top_via(request.headers, peer)
        if headers is not request.headers:
            request = Request(request.method, request.uri, headers, request.body, request.version)
        return request, reply_to

    def _fix_top_via(
        self, headers: tuple[Header, ...], peer: Peer
    ) -> tuple[tuple[Header, ...], Peer]:
        """Headers with received/rport set on the top Via, and where to answer."""
        for i, (name, value) in enumerate(headers):
            if name != "Via":
                continue
            values = split_list(value)
            via = Via.parse(values[0])
            params = via.params
            rport = via.param("rport") is not None
            if via.host != peer.host and via.host.strip("[]") != peer.host:
                params = replace_param(params, "received", peer.host)
            if rport:
                params = replace_param(params, "rport", str(peer.port))
            if params is via.params:
                return headers, self._reply_peer(via, peer, rport)
            fixed = Via(via.transport, via.host, via.port, params, via.protocol)
            values[0] = str(fixed)
            patched = (*headers[:i], (name, ", ".join(values)), *headers[i + 1 :])
            return patched, self._reply_peer(fixed, peer, rport)
        raise ParseError("missing Via header")

    @staticmethod
    def _reply_peer(via: Via, peer: Peer, rport: bool) -> Peer:
        if peer.reliable or rport:
            return peer  # streams: the same connection; rport: the source port
        return Peer(peer.transport, peer.host, via.port or 5060, peer.connection)

    def _tag(self) -> str:
        return format(self._rng.getrandbits(48), "x")

    # -- answering requests --------------------------------------------------------

    def _answer(
        self, request: Request, peer: Peer, now: float
    ) -> tuple[Response, list[FrontAction]]:
        method = request.method
        if method not in ("ACK", "CANCEL") and (unknown := self._unsupported(request)):
            return self._response(request, 420, [("Unsupported", ", ".join(unknown))]), []
        if method == "OPTIONS":
            return self._response(
                request,
                200,
                [("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "path")],
            ), []
        if method == "CANCEL":
            return self._response(request, 481), []
        try:
            return self._authenticated(request, peer, now)
        except ParseError as exc:
            return self._response(request, exc.status, reason=exc.reason[:120]), []

    def _authenticated(
        self, request: Request, peer: Peer, now: float
    ) -> tuple[Response, list[FrontAction]]:
        address = peer.host
        to_user = request.to_addr().uri.user
        creds = self.auth.credentials(request)
        if creds is None:
            verdict = self.guard.before_challenge(address, now)
            if verdict is Verdict.ALLOW:
                return self._challenge(request, to_user, now), []
            return self._refusal(request, verdict), []
        verdict = self.guard.before_verify(address, creds.username, now)
        if verdict is not Verdict.ALLOW:
            return self._refusal(request, verdict), []
        result = self.auth.verify(request, creds, now)
        if result.outcome is Outcome.STALE:
            return self._challenge(request, to_user, now, stale=True), []
        if result.outcome is not Outcome.OK:
            locks = self.guard.failure(address, creds.username, now)
            for lock in locks:
                log.warning(
                    "lockout: %s %s after %d failed authentications (last from %s)",
                    lock.kind.value,
                    lock.key,
                    lock.failures,
                    address,
                )
            return self._challenge(request, to_user, now), [Locked(lock) for lock in locks]
        self.guard.success(address, creds.username, now)
        if request.method != "REGISTER":
            return self._response(request, NOT_SERVED, [("Allow", ALLOW)]), []
        if to_user != creds.username:
            return self._response(request, 403, reason="Not allowed to register this AOR"), []
        answer, changes = self.registrar.register(request, creds.username, peer, self._wall(now))
        response = self._response(request, answer.status, list(answer.headers), answer.reason)
        return response, [Persist(change) for change in changes]

    def _refusal(self, request: Request, verdict: Verdict) -> Response:
        if verdict is Verdict.DROP:
            raise _Drop
        return self._response(request, 403)

    def _challenge(
        self, request: Request, username: str | None, now: float, stale: bool = False
    ) -> Response:
        return self._response(request, 401, self.auth.challenge(username, now, stale))

    def _response(
        self,
        request: Request,
        status: int,
        extra: list[Header] | None = None,
        reason: str | None = None,
    ) -> Response:
        headers = list(extra or ())
        headers.append(self._server)
        return make_response(request, status, reason, headers, to_tag=self._tag())

    @staticmethod
    def _unsupported(request: Request) -> list[str]:
        return [tag for tag in request.get_all("Require") if tag.lower() not in SUPPORTED]


class _Drop(Exception):
    """Internal: the guard decided this request gets no answer at all."""
