"""The appliance's SIP front door: bytes in, actions out (sans-IO).

It parses (the one place where bad bytes become 400/505 answers), applies RFC 3581
``received``/``rport`` to the top Via, runs requests through the transaction layer,
and answers them: OPTIONS directly, REGISTER through digest authentication, the
brute-force guard and the registrar, INVITE through authentication to the B2BUA
(``b2bua``), which also gets every in-dialog request, CANCEL, and the client
transactions' answers. Methods the appliance does not serve are authenticated first
and then refused, so no answer reveals whether an extension exists.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from appliance.pbx.app_events import AppEvent
from appliance.pbx.auth import Authenticator, Outcome
from appliance.pbx.b2bua import ALLOW, IN_DIALOG, B2bua, CallFinished
from appliance.pbx.call_apps import AppRequest, SaveRecording
from appliance.pbx.guard import AuthGuard, Lockout, Verdict
from appliance.pbx.media_port import MediaEvent
from appliance.pbx.mwi_notifier import EVENT as MWI_EVENT
from appliance.pbx.mwi_notifier import MwiNotifier
from appliance.pbx.registrar import Change, Registrar, Upsert
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
    ResponseReceived,
    Send,
    Terminated,
    TimedOut,
    TransactionLayer,
    TransportFailed,
)
from appliance.sip.transport import Peer

log = logging.getLogger(__name__)

# Option tags we honour in Require (RFC 3261 §20.37): 100rel, since our 18x to a
# caller that allows it are reliable (RFC 3262).
SUPPORTED: Final = frozenset({"path", "timer", "100rel"})
NOT_SERVED: Final = 501  # Not Implemented, after authentication
CALLER_CHARS: Final = frozenset("0123456789*#+")  # what a trunk may assert as caller ID


@dataclass(frozen=True, slots=True)
class Persist:
    """A binding change for the store to write."""

    change: Change


@dataclass(frozen=True, slots=True)
class Locked:
    """The guard locked something out: log it and record it for administrators."""

    lockout: Lockout


FrontAction = Send | Persist | Locked | CallFinished | AppRequest | SaveRecording


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
        calls: B2bua | None = None,
        mwi: MwiNotifier | None = None,
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
        self.calls = calls  # None: a registrar only (INVITE gets 501 after authentication)
        self.mwi = mwi  # None: SUBSCRIBE gets 501 after authentication

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
        deadlines = [self.layer.next_deadline()]
        if self.calls is not None:
            deadlines.append(self.calls.next_deadline())
        if self.mwi is not None:
            deadlines.append(self.mwi.next_deadline())
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> list[FrontAction]:
        out = self._dispatch(self.layer.handle_timer(now), now)
        if self.calls is not None:
            out.extend(self._dispatch(self.calls.handle_timer(now), now))
        if self.mwi is not None:
            out.extend(self._dispatch(self.mwi.handle_timer(now), now))
        return out

    def app_event(self, call: int, event: AppEvent, now: float) -> list[FrontAction]:
        """The store edge's answer for a call application (see ``call_apps``)."""
        if self.calls is None:
            return []
        return self._dispatch(self.calls.app_event(call, event, now), now)

    def mailbox_changed(self, mailbox: str, new: int, old: int, now: float) -> list[FrontAction]:
        """Message waiting: tell the mailbox's phones its new counts."""
        if self.mwi is None:
            return []
        contacts = list(self.registrar.lookup(mailbox, self._wall(now)))
        return self._dispatch(self.mwi.mailbox_changed(mailbox, new, old, contacts, now), now)

    def hang_up_all(self, now: float) -> list[FrontAction]:
        if self.calls is None:
            return []
        return self._dispatch(self.calls.hang_up_all(now), now)

    def media_event(self, event: MediaEvent, now: float) -> list[FrontAction]:
        if self.calls is None:
            return []
        return self._dispatch(self.calls.media_event(event, now), now)

    # -- plumbing ------------------------------------------------------------------

    def _dispatch(
        self, actions: Sequence[Action | CallFinished | AppRequest | SaveRecording], now: float
    ) -> list[FrontAction]:
        out: list[FrontAction] = []
        calls = self.calls
        for action in actions:
            if isinstance(action, Send | CallFinished | AppRequest | SaveRecording):
                out.append(action)
            elif isinstance(action, RequestReceived):
                if calls is not None and self._for_calls(action.request):
                    out.extend(self._call_request(calls, action, now))
                    continue
                if action.key is None:
                    continue  # an ACK that belongs to no call
                try:
                    response, extra = self._answer(action.request, action.peer, now)
                except _Drop:
                    # Rate-limited: no answer at all. The layer abandons the silent
                    # transaction after tu_wait and absorbs retransmissions until then.
                    continue
                except _HandOff as handoff:
                    if calls is not None:
                        answer = calls.invite(
                            action.key,
                            action.request,
                            action.peer,
                            handoff.caller,
                            now,
                            external=handoff.external,
                        )
                        out.extend(self._dispatch(answer, now))
                    continue
                except _Subscribe as handoff:
                    if self.mwi is not None:
                        sub = self.mwi.subscribe(action.request, action.peer, handoff.caller, now)
                        # the 200 first, then the NOTIFY it promises (RFC 6665 §4.2.1.2)
                        out.extend(
                            self._dispatch(self.layer.respond(action.key, sub.response, now), now)
                        )
                        out.extend(self._dispatch(sub.actions, now))
                    continue
                # the answer first: a NOTIFY among the extras must not overtake the
                # 200 to the REGISTER that made the phone known
                out.extend(self._dispatch(self.layer.respond(action.key, response, now), now))
                out.extend(extra)
            elif self.mwi is not None and self._mwi_owns(action):
                self._mwi_answer(self.mwi, action)
            elif calls is None:
                continue
            elif isinstance(action, ResponseReceived):
                out.extend(self._dispatch(calls.response(action.key, action.response, now), now))
            elif isinstance(action, TimedOut | TransportFailed):
                out.extend(self._dispatch(calls.transaction_failed(action.key, now), now))
            elif isinstance(action, Terminated):
                calls.transaction_ended(action.key)
        return out

    def _mwi_owns(self, action: Action) -> bool:
        if not isinstance(action, ResponseReceived | TimedOut | TransportFailed | Terminated):
            return False
        key = action.key
        return key is not None and self.mwi is not None and self.mwi.owns(key)

    def _mwi_answer(self, mwi: MwiNotifier, action: Action) -> None:
        if isinstance(action, ResponseReceived):
            if action.key is not None:
                mwi.response(action.key, action.response)
        elif isinstance(action, TimedOut | TransportFailed):
            mwi.failed(action.key)
        elif isinstance(action, Terminated):
            mwi.ended(action.key)

    @staticmethod
    def _for_calls(request: Request) -> bool:
        """In-dialog requests, ACKs for 2xx and CANCEL go to the B2BUA unauthenticated:
        dialog membership (Call-ID and both tags) is what identifies them."""
        method = request.method
        if method in ("ACK", "CANCEL"):
            return True
        if method not in IN_DIALOG:
            return False
        try:
            return request.to_addr().tag is not None
        except ParseError:
            return False

    def _call_request(self, calls: B2bua, action: RequestReceived, now: float) -> list[FrontAction]:
        request, key = action.request, action.key
        if request.method == "CANCEL":
            if key is None:
                return []
            invite_key = self.layer.cancel_matching(request)
            status = 481 if invite_key is None else 200
            out = self._dispatch(self.layer.respond(key, self._response(request, status), now), now)
            if invite_key is not None:
                out.extend(self._dispatch(calls.cancel(invite_key, request, now), now))
            return out
        return self._dispatch(calls.request(key, request, action.peer, now), now)

    def _stateless(self, request: Request) -> bool:
        """Requests answered at once without a transaction (RFC 3261 §8.2.7).

        Everything without credentials gets its final answer straight away (a
        challenge, OPTIONS 200, 420, 403): keeping a transaction for it would only
        cost memory (Timer J holds it 32 s) and time. A retransmission simply gets a
        fresh answer. Authenticated requests keep transactions, so a retransmitted
        REGISTER is absorbed instead of tripping the nonce-count replay check.
        """
        if request.method in ("ACK", "CANCEL"):
            return False
        if self.calls is not None and request.method in IN_DIALOG and self._for_calls(request):
            return False  # in a dialog: the B2BUA answers, in a transaction
        for name, _ in request.headers:
            if name == "Authorization":
                return False
        return True

    def _answer_statelessly(self, request: Request, peer: Peer, now: float) -> list[FrontAction]:
        try:
            response, extra = self._answer(request, peer, now)
        except (_Drop, _HandOff, _Subscribe):  # a hand-off needs credentials: never stateless
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
                [
                    ("Allow", ALLOW),
                    ("Accept", "application/sdp"),
                    ("Supported", "path"),
                    ("Allow-Events", MWI_EVENT),
                ],
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
        # Whose algorithms a challenge offers: the AOR for REGISTER, else the caller
        # (To names the one called: *97, another extension).
        who = to_user if request.method == "REGISTER" else request.from_addr().uri.user
        creds = self.auth.credentials(request)
        if creds is None:
            verdict = self.guard.before_challenge(address, now)
            if verdict is Verdict.ALLOW:
                return self._challenge(request, who, now), []
            return self._refusal(request, verdict), []
        verdict = self.guard.before_verify(address, creds.username, now)
        if verdict is not Verdict.ALLOW:
            return self._refusal(request, verdict), []
        result = self.auth.verify(request, creds, now)
        if result.outcome is Outcome.STALE:
            return self._challenge(request, who, now, stale=True), []
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
            return self._challenge(request, who, now), [Locked(lock) for lock in locks]
        self.guard.success(address, creds.username, now)
        if request.method == "INVITE" and self.calls is not None:
            caller, external = self._caller(request, creds.username)
            raise _HandOff(caller, external)
        if request.method == "SUBSCRIBE" and self.mwi is not None:
            raise _Subscribe(creds.username)
        if request.method != "REGISTER":
            return self._response(request, NOT_SERVED, [("Allow", ALLOW)]), []
        if to_user != creds.username:
            return self._response(request, 403, reason="Not allowed to register this AOR"), []
        answer, changes = self.registrar.register(request, creds.username, peer, self._wall(now))
        response = self._response(request, answer.status, list(answer.headers), answer.reason)
        extra: list[FrontAction] = [Persist(change) for change in changes]
        mwi = self.mwi
        if mwi is not None and not mwi.subscribed(creds.username):
            # a phone that registers anew learns of waiting messages at once
            for change in changes:
                if isinstance(change, Upsert):
                    sent = mwi.unsolicited(creds.username, change.binding, now, only_waiting=True)
                    extra.extend(self._dispatch(sent, now))
        return response, extra

    def _caller(self, request: Request, username: str) -> tuple[str, bool]:
        """Who an authenticated INVITE is from, and whether from outside: the account,
        or for a trunk the number its From asserts ("anonymous" when the line withheld
        it or it is not a number)."""
        account = self.auth.accounts.get(username)
        if account is None or not account.asserts_caller:
            return username, False
        number = request.from_addr().uri.user or ""
        if not number or len(number) > 32 or set(number) - CALLER_CHARS:
            return "anonymous", True
        return number, True

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


class _Subscribe(Exception):  # noqa: N818 - control flow, not an error
    """Internal: an authenticated SUBSCRIBE goes to the message-waiting notifier."""

    def __init__(self, caller: str) -> None:
        super().__init__(caller)
        self.caller = caller


class _HandOff(Exception):  # noqa: N818 - control flow, not an error
    """Internal: an authenticated INVITE goes to the B2BUA, which answers it."""

    def __init__(self, caller: str, external: bool = False) -> None:
        super().__init__(caller)
        self.caller = caller
        self.external = external
