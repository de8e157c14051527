"""The analog ports as SIP user agents of our own registrar and B2BUA (sans-IO).

Why a user agent and not a second kind of leg inside the B2BUA: an FXS port is an
extension "like any SIP phone" (the issue's words, and what installers expect of an
ATA), so it registers, is rung by forking, diverts to voicemail, gets message-waiting
NOTIFYs, holds with re-INVITEs and sends pulse digits as SIP INFO, all through the
code paths every phone already exercises. The price is one more RTP hop over loopback
per port, a few hundred packets a second on boards with two to eight ports.

- An FXS port registers its extension with the HA1 the store keeps (no clear-text
  password anywhere; ``gateway_registration``). ``PlaceCall`` sends an INVITE; the
  server's INVITE to the extension rings the port (``IncomingCallOffer``, caller ID
  from From); flash holds (re-INVITE sendonly), swaps and answers a waiting call;
  unsolicited message-summary NOTIFYs become ``MessagesWaiting``.
- An FXO line is reached by the B2BUA through a dialplan route of type ``analog``: its
  INVITE carries ``;line=N`` and the number to dial, which become ``DialOut``; the line's
  progress is sent back as 183 with our answer (early media), ``OutboundAnswered`` as
  200. A ringing line (``IncomingCall``) calls the port's inbound number, authenticated
  as the gateway's trunk account, which may assert the caller ID it decoded.

Inputs are datagrams, the ports' call actions and ``now``; outputs are ``Send`` (the
transaction layer's), ``ToPort`` inputs for the port machines and ``AimStream`` for the
port's RTP stream. Nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final
from urllib.parse import unquote

from appliance.lines.gateway_call import GwCall, GwCallState, Reinvite, Role
from appliance.lines.gateway_registration import Registrations, RegistrationTarget
from appliance.lines.gateway_sip import (
    LINE_PARAM,
    SDP_TYPE,
    cancel_for,
    display_name,
    escape_user,
    hostport,
    messages_waiting,
    new_version,
    sdp_of,
)
from appliance.lines.port_actions import (
    AnswerIncoming,
    CallAction,
    CallFailed,
    CallInput,
    DialOut,
    DigitInCall,
    HangUpCall,
    HoldCall,
    IncomingCall,
    IncomingCallOffer,
    MessagesWaiting,
    OfferCancelled,
    OutboundAnswered,
    OutboundProgress,
    PlaceCall,
    RejectOffer,
    RemoteAnswered,
    RemoteHungUp,
    RemoteProgress,
    ResumeCall,
)
from appliance.lines.signals import PortType
from appliance.pbx.causes import Cause, cause_for, status_for
from appliance.sdp.negotiate import (
    PCMA,
    PCMU,
    Answer,
    LocalMedia,
    NegotiationError,
    apply_answer,
    hold_offer,
    make_answer,
    make_offer,
    new_origin,
    resume_offer,
)
from appliance.sdp.session import Direction, SessionDescription
from appliance.sip.dialog import Accept, Dialog, DialogError, Ignore
from appliance.sip.dialog_retransmit import AckTimedOut, Resend, TwoXxRetransmitter
from appliance.sip.digest_client import authorization, pick
from appliance.sip.errors import ParseError
from appliance.sip.headers import Via
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import (
    Action,
    RequestReceived,
    ResponseReceived,
    Send,
    Terminated,
    TimedOut,
    TimerConfig,
    TransactionError,
    TransactionKey,
    TransactionLayer,
)
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri

log = logging.getLogger(__name__)

ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE"
USER_AGENT: Final = "YakYak analog gateway"


@dataclass(frozen=True, slots=True)
class LineAccount:
    """One port as the gateway runs it."""

    port: int
    type: PortType
    user: str  # FXS: the extension it registers as; FXO: the trunk account
    ha1: Mapping[str, str]  # algorithm -> HA1 of ``user`` in the server's realm
    rtp_port: int
    inbound: str = ""  # FXO: the number a ringing line calls (a menu, an extension)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str  # our SIP address, where the server reaches the ports
    port: int
    server: Peer  # the registrar and B2BUA
    media_host: str  # the address in our SDP
    register_expires: int = 600


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """Where a port's call audio goes and how it is coded."""

    host: str
    port: int
    codec: str  # "PCMU" or "PCMA"
    payload_type: int
    send: bool = True  # False while the far end holds us (we must not send)


@dataclass(frozen=True, slots=True)
class ToPort:
    port: int
    event: CallInput


@dataclass(frozen=True, slots=True)
class AimStream:
    """Point the port's RTP stream at ``target``; None: no call audio."""

    port: int
    target: StreamTarget | None


GatewayAction = Send | ToPort | AimStream


class Purpose(Enum):
    """What one of our client transactions is for."""

    REGISTER = "register"
    INVITE = "invite"
    REINVITE = "reinvite"
    CANCEL = "cancel"
    BYE = "bye"
    INFO = "info"


class AnalogGateway:
    def __init__(
        self,
        config: GatewayConfig,
        lines: Iterable[LineAccount],
        timers: TimerConfig,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.lines = {line.port: line for line in lines}
        self._rng = rng
        self.layer = TransactionLayer(timers, rng)
        self._timers = timers
        self.registrations = Registrations(
            config.server,
            _hostport(config.host, config.port),
            [
                RegistrationTarget(line.port, line.user, line.ha1)
                for line in self.lines.values()
                if line.type is PortType.FXS
            ],
            config.register_expires,
            lambda: str(self._via().with_param("branch", self.layer.new_branch())),
            self._token,
        )
        self._calls: dict[int, list[GwCall]] = {port: [] for port in self.lines}
        # every call the SIP side still knows, by Call-ID: the ports' calls and those
        # ending (a CANCEL answered by a 2xx, a BYE waiting for the ACK)
        self._by_call_id: dict[str, GwCall] = {}
        self._client: dict[TransactionKey, tuple[Purpose, int | GwCall]] = {}
        self._server: dict[TransactionKey, GwCall] = {}
        self._aimed: dict[int, StreamTarget | None] = {}

    # -- public -------------------------------------------------------------------------

    def calls(self, port: int) -> list[GwCall]:
        return list(self._calls.get(port, ()))

    def registered(self, port: int) -> bool:
        return self.registrations.registered(port)

    def receive(self, data: bytes, peer: Peer, now: float) -> list[GatewayAction]:
        out: list[GatewayAction] = []
        try:
            message = parse_message(data)
            self._layer_actions(self.layer.receive(message, peer, now), now, out)
        except ParseError as exc:
            # what went out before the bad header was read stays out; nothing else
            log.warning("gateway: unusable message from %s:%d: %s", peer.host, peer.port, exc)
        self._aim_all(out)
        return out

    def port_action(self, port: int, action: CallAction, now: float) -> list[GatewayAction]:
        out: list[GatewayAction] = []
        line = self.lines.get(port)
        if line is None:
            return out
        try:
            self._port_action(line, action, now, out)
        except (TransactionError, DialogError, NegotiationError) as exc:
            log.warning("port %d: %s failed: %s", port, type(action).__name__, exc)
        self._aim(port, out)
        return out

    def next_deadline(self) -> float | None:
        deadlines = [self.layer.next_deadline(), self.registrations.next_deadline()]
        for call in self._by_call_id.values():
            if call.retransmit is not None:
                deadlines.append(call.retransmit.next_deadline())
            deadlines.append(call.retry_at)
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> list[GatewayAction]:
        out: list[GatewayAction] = []
        self._layer_actions(self.layer.handle_timer(now), now, out)
        for port, request in self.registrations.due(now):
            self._send(request, Purpose.REGISTER, port, now, out)
        for call in list(self._by_call_id.values()):
            if call.retransmit is not None and call.retransmit_key is not None:
                for action in call.retransmit.handle_timer(now):
                    if isinstance(action, Resend):
                        actions = self.layer.respond(call.retransmit_key, action.response, now)
                        self._layer_actions(actions, now, out)
                    elif isinstance(action, AckTimedOut):
                        call.retransmit = None
                        self._no_ack(call, now, out)
            if call.retry_at is not None and call.retry_at <= now:
                call.retry_at = None
                self._sync_hold(call, now, out)
        self._aim_all(out)
        return out

    def stop(self, now: float) -> list[GatewayAction]:
        """Hang up every call and unregister: the appliance is stopping."""
        out: list[GatewayAction] = []
        for calls in list(self._calls.values()):
            for call in list(calls):
                self._hang_up(call, Cause.NORMAL_CLEARING, now, out)
        for port, request in self.registrations.unregister():
            self._send(request, Purpose.REGISTER, port, now, out)
        return out

    # -- transaction layer output ------------------------------------------------------

    def _layer_actions(self, actions: list[Action], now: float, out: list[GatewayAction]) -> None:
        for action in actions:
            if isinstance(action, Send):
                out.append(action)
            elif isinstance(action, RequestReceived):
                self._request(action, now, out)
            elif isinstance(action, ResponseReceived):
                self._response(action, now, out)
            elif isinstance(action, TimedOut):
                self._timed_out(action.key, now, out)
            elif isinstance(action, Terminated):
                # kept until now so that 2xx retransmissions still find their call
                purpose = self._client.pop(action.key, None)
                self._server.pop(action.key, None)
                if purpose is not None and purpose[0] is Purpose.INVITE:
                    call = purpose[1]
                    if isinstance(call, GwCall) and call.state is GwCallState.ENDED:
                        self._forget(call)  # its BYE went; no retransmission can come

    def _send(
        self,
        request: Request,
        purpose: Purpose,
        subject: int | GwCall,
        now: float,
        out: list[GatewayAction],
    ) -> TransactionKey | None:
        try:
            key, actions = self.layer.request(request, self.config.server, now)
        except TransactionError as exc:
            log.warning("gateway: %s not sent: %s", request.method, exc)
            return None
        self._client[key] = (purpose, subject)
        self._layer_actions(actions, now, out)
        return key

    # -- requests from the server ------------------------------------------------------

    def _request(self, action: RequestReceived, now: float, out: list[GatewayAction]) -> None:
        request = action.request
        key = action.key
        if key is None:
            self._ack(request, now, out)
            return
        method = request.method
        try:
            to_tag = request.to_addr().tag
            request.from_addr()
        except ParseError as exc:
            out.extend(self._reply(key, request, 400, now, reason=exc.reason[:80]))
            return
        if method == "CANCEL":
            self._cancel(key, request, now, out)
        elif to_tag is not None:
            self._in_dialog(key, request, now, out)
        elif method == "INVITE":
            self._new_invite(key, request, now, out)
        elif method == "NOTIFY":
            self._notify(key, request, now, out)
        elif method == "OPTIONS":
            out.extend(self._reply(key, request, 200, now, [("Allow", ALLOW)]))
        else:
            out.extend(self._reply(key, request, 405, now, [("Allow", ALLOW)]))

    def _ack(self, ack: Request, now: float, out: list[GatewayAction]) -> None:
        """An ACK for a 2xx of ours: stop resending it; read the answer it may carry."""
        call = self._by_call_id.get(ack.call_id)
        if call is None or call.dialog is None:
            return
        if not isinstance(call.dialog.receive_request(ack, now), Accept):
            return
        call.retransmit = None
        call.retransmit_key = None
        if call.offer_in_ack:
            call.offer_in_ack = False
            try:
                answer = sdp_of(ack)
                if answer is not None and call.local_sdp is not None:
                    call.media = apply_answer(call.local_sdp, answer)
                    call.remote_sdp = answer
            except (ParseError, NegotiationError) as exc:
                log.warning("port %d: unusable answer in ACK: %s", call.port, exc)
        if call.bye_after_ack:
            call.bye_after_ack = False
            self._bye(call, now, out)

    def _port_of(self, uri: Uri) -> LineAccount | None:
        line = uri.param(LINE_PARAM)
        if line is not None:
            return self.lines.get(int(line)) if line.isdigit() else None
        for account in self.lines.values():
            if account.type is PortType.FXS and account.user == uri.user:
                return account
        return None

    def _new_invite(
        self, key: TransactionKey, request: Request, now: float, out: list[GatewayAction]
    ) -> None:
        line = self._port_of(request.uri)
        if line is None:
            out.extend(self._reply(key, request, 404, now))
            return
        calls = [c for c in self._calls[line.port] if c.state is not GwCallState.CANCELLING]
        if line.type is PortType.FXO:
            busy = bool(calls)
        else:
            busy = any(c.role is Role.WAITING for c in calls) or len(calls) >= 2
        if busy:
            out.extend(self._reply(key, request, 486, now))
            return
        try:
            offer = sdp_of(request)
        except ParseError as exc:
            out.extend(self._reply(key, request, exc.status, now, reason=exc.reason[:80]))
            return
        if offer is None:  # a delayed offer: the B2BUA never sends one to us
            out.extend(self._reply(key, request, 488, now, reason="An SDP offer is required"))
            return
        try:
            answer = self._answer(line, offer)
        except NegotiationError as exc:
            out.extend(self._reply(key, request, exc.status, now, reason=exc.reason[:80]))
            return
        call = GwCall(
            port=line.port,
            outgoing=False,
            call_id=request.call_id,
            local_tag=self._token(),
            invite=request,
            key=key,
            role=Role.WAITING if line.type is PortType.FXS else Role.ACTIVE,
            state=GwCallState.OFFERED,
            local_sdp=answer.session,
            remote_sdp=offer,
            media=answer.media,
        )
        self._add(call)
        self._server[key] = call
        if line.type is PortType.FXS:
            contact = [("Contact", self._contact(line))]
            out.extend(self._reply(key, request, 180, now, contact, to_tag=call.local_tag))
            sender = request.from_addr()
            number = sender.uri.user
            if number in (None, "", "anonymous"):
                number = None
            out.append(ToPort(line.port, IncomingCallOffer(number, sender.display_name)))
        else:
            out.extend(self._reply(key, request, 100, now))
            out.append(ToPort(line.port, DialOut(unquote(request.uri.user or ""))))

    def _answer(self, line: LineAccount, offer: SessionDescription, hold: bool = False) -> Answer:
        local = LocalMedia(self.config.media_host, line.rtp_port, (PCMU, PCMA), None)
        origin = new_origin(self._rng.randrange(1, 2**31), self.config.media_host)
        # while we hold, an answer must not take the hold back (RFC 3264 §8.4)
        wanted = Direction.SENDONLY if hold else Direction.SENDRECV
        return make_answer(offer, local, origin, wanted)

    def _in_dialog(
        self, key: TransactionKey, request: Request, now: float, out: list[GatewayAction]
    ) -> None:
        call = self._by_call_id.get(request.call_id)
        if call is None or call.dialog is None:
            out.extend(self._reply(key, request, 481, now))
            return
        decision = call.dialog.receive_request(request, now)
        if isinstance(decision, Ignore):
            return
        if not isinstance(decision, Accept):
            out.extend(self._reply(key, request, decision.status, now, reason=decision.reason))
            return
        method = request.method
        if method == "BYE":
            out.extend(self._reply(key, request, 200, now, dialog=call))
            self._remote_gone(call, now, out)
        elif method in ("INVITE", "UPDATE"):
            self._reoffer(call, key, request, now, out)
        elif method in ("INFO", "NOTIFY", "OPTIONS"):
            out.extend(self._reply(key, request, 200, now, dialog=call))
        else:
            out.extend(self._reply(key, request, 405, now, [("Allow", ALLOW)], dialog=call))

    def _reoffer(
        self,
        call: GwCall,
        key: TransactionKey,
        request: Request,
        now: float,
        out: list[GatewayAction],
    ) -> None:
        """A re-INVITE or UPDATE: the far end holds, resumes or just refreshes."""
        try:
            offer = sdp_of(request)
        except ParseError as exc:
            out.extend(self._reply(key, request, exc.status, now, dialog=call))
            return
        body = b""
        if offer is not None:
            line = self.lines[call.port]
            try:
                answer = self._answer(line, offer, hold=call.hold_wanted)
            except NegotiationError as exc:
                out.extend(self._reply(key, request, exc.status, now, dialog=call))
                return
            session = answer.session
            if call.local_sdp is not None:
                # the same session, a new version (RFC 3264 §8): keep our origin
                session = new_version(call.local_sdp, answer.session)
            call.local_sdp = session
            call.remote_sdp = offer
            call.media = answer.media
            body = bytes(session)
        elif request.method == "INVITE" and call.local_sdp is not None:
            # an offerless re-INVITE: our 2xx offers (the session as it is, so the same
            # version, RFC 3264 §8), the ACK answers (§14.2)
            body = bytes(call.local_sdp)
            call.offer_in_ack = True
        extra = [("Content-Type", SDP_TYPE)] if body else []
        if request.method == "INVITE":
            extra.append(("Contact", self._contact(self.lines[call.port])))
        response = self._response_for(request, 200, extra, body, dialog=call)
        out.extend(self._respond(key, response, now, dialog=call))
        if request.method == "INVITE":
            self._resend_until_ack(call, key, response, now)

    def _cancel(
        self, key: TransactionKey, request: Request, now: float, out: list[GatewayAction]
    ) -> None:
        invite_key = self.layer.cancel_matching(request)
        call = self._server.get(invite_key) if invite_key is not None else None
        if call is None or invite_key is None or call.state is not GwCallState.OFFERED:
            out.extend(self._reply(key, request, 481 if call is None else 200, now))
            return
        # §9.2: the 200 to CANCEL carries the To tag of the responses to the INVITE
        out.extend(self._reply(key, request, 200, now, to_tag=call.local_tag))
        out.extend(self._reply(invite_key, call.invite, 487, now, to_tag=call.local_tag))
        self._forget(call)
        line = self.lines[call.port]
        if line.type is PortType.FXS:
            out.append(ToPort(call.port, OfferCancelled()))
        else:
            out.append(ToPort(call.port, RemoteHungUp()))

    def _notify(
        self, key: TransactionKey, request: Request, now: float, out: list[GatewayAction]
    ) -> None:
        event = (request.get("Event") or "").split(";")[0].strip().lower()
        line = self._port_of(request.uri)
        if line is None or line.type is not PortType.FXS:
            out.extend(self._reply(key, request, 404, now))
            return
        if event != "message-summary":
            extra = [("Allow-Events", "message-summary")]
            out.extend(self._reply(key, request, 489, now, extra))
            return
        out.extend(self._reply(key, request, 200, now))
        waiting = messages_waiting(request.body)
        if waiting is not None:
            out.append(ToPort(line.port, MessagesWaiting(waiting)))

    # -- what the ports ask ------------------------------------------------------------

    def _port_action(
        self, line: LineAccount, action: CallAction, now: float, out: list[GatewayAction]
    ) -> None:
        calls = self._calls[line.port]
        active = _with_role(calls, Role.ACTIVE)
        held = _with_role(calls, Role.HELD)
        waiting = _with_role(calls, Role.WAITING)
        if isinstance(action, PlaceCall):
            self._place(line, action.number, None, None, now, out)
        elif isinstance(action, IncomingCall):
            cid = action.caller_id
            number, name = (cid.number, cid.name) if cid is not None else (None, None)
            self._place(line, line.inbound, number, name, now, out)
        elif isinstance(action, AnswerIncoming):
            if waiting is not None:
                if active is not None:  # call waiting: the one talking goes on hold
                    active.role = Role.HELD
                    self._want_hold(active, True, now, out)
                waiting.role = Role.ACTIVE
                self._accept(waiting, now, out)
        elif isinstance(action, OutboundAnswered):
            if active is not None and active.state is GwCallState.OFFERED:
                self._accept(active, now, out)
        elif isinstance(action, OutboundProgress):
            if active is not None and active.state is GwCallState.OFFERED:
                self._early_media(line, active, now, out)
        elif isinstance(action, HangUpCall):
            # the user hung up (FXS: the held call goes too) or the line cleared (FXO)
            for call in (active, held):
                if call is not None:
                    self._hang_up(call, action.cause, now, out)
        elif isinstance(action, RejectOffer):
            target = waiting if line.type is PortType.FXS else active
            if target is not None and target.state is GwCallState.OFFERED:
                self._hang_up(target, action.cause, now, out)
        elif isinstance(action, HoldCall):
            if active is not None and active.up:
                active.role = Role.HELD
                self._want_hold(active, True, now, out)
        elif isinstance(action, ResumeCall):
            if held is not None:
                if active is not None:
                    active.role = Role.HELD
                    self._want_hold(active, True, now, out)
                held.role = Role.ACTIVE
                self._want_hold(held, False, now, out)
        elif isinstance(action, DigitInCall):
            if active is not None and active.up and active.dialog is not None:
                body = f"Signal={action.digit}\r\nDuration=100\r\n".encode()
                extra = [("Content-Type", "application/dtmf-relay")]
                request = active.dialog.request("INFO", now, body, extra, rng=self._rng)
                self._send(request, Purpose.INFO, active, now, out)

    def _place(
        self,
        line: LineAccount,
        number: str,
        asserted: str | None,
        display: str | None,
        now: float,
        out: list[GatewayAction],
    ) -> None:
        if not number:
            out.append(ToPort(line.port, CallFailed(Cause.UNALLOCATED_NUMBER)))
            return
        domain = hostport(self.config.server)
        offer = make_offer(
            LocalMedia(self.config.media_host, line.rtp_port, (PCMU, PCMA), None),
            new_origin(self._rng.randrange(1, 2**31), self.config.media_host),
        )
        call_id = f"{self._token()}{self._token()}@yakyak-gw"
        tag = self._token()
        # FXO: the trunk account asserts the caller ID it decoded; "anonymous" when the
        # line gave none (withheld or unavailable)
        from_user = (asserted or "anonymous") if line.type is PortType.FXO else line.user
        user = escape_user(number)
        headers = [
            ("Via", self._new_via()),
            ("Max-Forwards", "70"),
            ("From", f"{display_name(display)}<sip:{escape_user(from_user)}@{domain}>;tag={tag}"),
            ("To", f"<sip:{user}@{domain}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self._contact(line)),
            ("Allow", ALLOW),
            ("User-Agent", USER_AGENT),
            ("Content-Type", SDP_TYPE),
        ]
        invite = Request("INVITE", Uri("sip", user, host=domain), tuple(headers), bytes(offer))
        try:
            key, actions = self.layer.request(invite, self.config.server, now)
        except TransactionError as exc:
            log.warning("port %d: INVITE not sent: %s", line.port, exc)
            out.append(ToPort(line.port, CallFailed(Cause.TEMPORARY_FAILURE)))
            return
        call = GwCall(
            port=line.port,
            outgoing=True,
            call_id=call_id,
            local_tag=tag,
            invite=invite,
            key=key,
            role=Role.ACTIVE,
            state=GwCallState.CALLING,
            local_sdp=offer,
        )
        self._add(call)
        self._client[key] = (Purpose.INVITE, call)
        self._layer_actions(actions, now, out)

    def _early_media(
        self, line: LineAccount, call: GwCall, now: float, out: list[GatewayAction]
    ) -> None:
        """FXO: the number is dialled and the line cut through: 183 with our answer."""
        call.early_media = True
        sdp = call.local_sdp
        extra = [("Contact", self._contact(line)), ("Content-Type", SDP_TYPE)]
        body = bytes(sdp) if sdp is not None else b""
        out.extend(
            self._reply(call.key, call.invite, 183, now, extra, body=body, to_tag=call.local_tag)
        )

    def _accept(self, call: GwCall, now: float, out: list[GatewayAction]) -> None:
        """Answer the server's INVITE with 200 and our SDP answer."""
        if call.state is not GwCallState.OFFERED or call.local_sdp is None:
            return
        line = self.lines[call.port]
        extra = [("Contact", self._contact(line)), ("Allow", ALLOW), ("Content-Type", SDP_TYPE)]
        response = make_response(
            call.invite, 200, extra=extra, body=bytes(call.local_sdp), to_tag=call.local_tag
        )
        try:
            call.dialog = Dialog.from_uas(
                call.invite, response, self._contact(line), via=self._via(), now=now
            )
        except DialogError as exc:
            log.warning("port %d: cannot answer: %s", call.port, exc)
            self._hang_up(call, Cause.PROTOCOL_ERROR, now, out)
            return
        self._layer_actions(self.layer.respond(call.key, response, now), now, out)
        call.state = GwCallState.CONFIRMED
        self._resend_until_ack(call, call.key, response, now)

    def _resend_until_ack(
        self, call: GwCall, key: TransactionKey, response: Response, now: float
    ) -> None:
        call.retransmit = TwoXxRetransmitter(response, now, self._timers)
        call.retransmit_key = key

    # -- hold (re-INVITEs of ours) -----------------------------------------------------

    def _want_hold(self, call: GwCall, hold: bool, now: float, out: list[GatewayAction]) -> None:
        call.hold_wanted = hold
        self._sync_hold(call, now, out)

    def _sync_hold(self, call: GwCall, now: float, out: list[GatewayAction]) -> None:
        """Send the re-INVITE that brings the far end to what the user wants, unless one
        is in flight (its answer calls this again) or waits out a 491 (§14.1)."""
        if not call.up or call.dialog is None or call.local_sdp is None:
            return
        if call.reinvite is not None or call.retry_at is not None:
            return
        if call.hold_wanted == call.held_by_us:
            return
        hold = call.hold_wanted
        offer = hold_offer(call.local_sdp) if hold else resume_offer(call.local_sdp)
        try:
            request = call.dialog.request(
                "INVITE", now, bytes(offer), [("Content-Type", SDP_TYPE)], rng=self._rng
            )
        except DialogError as exc:  # their re-INVITE is being answered: try again soon
            log.debug("port %d: re-INVITE deferred: %s", call.port, exc)
            call.retry_at = now + self._rng.uniform(0.0, 2.0)
            return
        key = self._send(request, Purpose.REINVITE, call, now, out)
        if key is not None:
            call.reinvite = Reinvite(key, offer, hold)

    def _reinvite_response(
        self,
        call: GwCall,
        key: TransactionKey,
        response: Response,
        now: float,
        out: list[GatewayAction],
    ) -> None:
        status = response.status
        pending = call.reinvite
        if status < 200 or call.dialog is None:
            return
        if 200 <= status < 300:  # every 2xx is ACKed, the first and any retransmission
            self._ack_again(call.dialog, response, out)
        if pending is None or pending.key != key:
            return  # a retransmission of an answer already taken
        call.reinvite = None
        try:
            call.dialog.receive_response(response, now)
        except DialogError:
            pass
        if 200 <= status < 300:
            call.local_sdp = pending.offer
            call.held_by_us = pending.hold
            self._read_answer(call, response)
        elif status == 491:
            # §14.1: we own the Call-ID (our INVITE): 2.1-4 s; else 0-2 s
            low, high = (2.1, 4.0) if call.outgoing else (0.0, 2.0)
            call.retry_at = now + self._rng.uniform(low, high)
            return
        elif status in (408, 481):
            # §12.2.1.2: the dialog is gone (481) or unreachable (408, BYE tried anyway)
            self._remote_gone(call, now, out, bye=status == 408)
            return
        else:
            # refused: the far end keeps the state it had; so do we
            call.hold_wanted = call.held_by_us
        self._sync_hold(call, now, out)

    # -- ending calls --------------------------------------------------------------------

    def _hang_up(self, call: GwCall, cause: Cause, now: float, out: list[GatewayAction]) -> None:
        """The port is done with the call: end it on the SIP side as its state allows."""
        if call.state is GwCallState.CALLING:
            # §9.1: CANCEL only once a provisional came; until then the hang-up is
            # remembered, and a 2xx that still comes is ACKed and ended with BYE
            call.state = GwCallState.CANCELLING
            self._detach(call)
            if call.heard:
                self._send(cancel_for(call.invite), Purpose.CANCEL, call, now, out)
            return
        if call.state is GwCallState.OFFERED:
            status = status_for(cause) if cause is not Cause.NORMAL_CLEARING else 480
            out.extend(self._reply(call.key, call.invite, status, now, to_tag=call.local_tag))
            self._forget(call)
            return
        if call.state is GwCallState.CONFIRMED:
            call.state = GwCallState.ENDING
            self._detach(call)
            if call.retransmit is not None:
                call.bye_after_ack = True  # §15: no BYE before the ACK of our 2xx
                return
            self._bye(call, now, out)
            return
        self._forget(call)

    def _bye(self, call: GwCall, now: float, out: list[GatewayAction]) -> None:
        if call.dialog is not None:
            try:
                bye = call.dialog.request("BYE", now, rng=self._rng)
            except DialogError:
                bye = None
            if bye is not None:
                self._send(bye, Purpose.BYE, call, now, out)
        self._forget(call)

    def _no_ack(self, call: GwCall, now: float, out: list[GatewayAction]) -> None:
        """No ACK for our 2xx within 64*T1: the call is over (§13.3.1.4)."""
        log.warning("port %d: no ACK for our 2xx, ending the call", call.port)
        if call.state is GwCallState.ENDING:
            self._bye(call, now, out)
            return
        self._remote_gone(call, now, out, bye=True)

    def _remote_gone(
        self, call: GwCall, now: float, out: list[GatewayAction], *, bye: bool = False
    ) -> None:
        """The far end ended the call (BYE, 481), or never ACKed our 2xx (then we BYE)."""
        port_knows = call in self._calls.get(call.port, [])
        was_held = call.role is Role.HELD
        if bye:
            self._bye(call, now, out)
        else:
            self._forget(call)
        if port_knows:
            out.append(ToPort(call.port, RemoteHungUp(held=was_held)))

    # -- responses to our requests -----------------------------------------------------

    def _response(self, action: ResponseReceived, now: float, out: list[GatewayAction]) -> None:
        response = action.response
        if action.key is None:
            self._stray(response, now, out)
            return
        purpose = self._client.get(action.key)
        if purpose is None:
            return
        kind, subject = purpose
        if kind is Purpose.REGISTER and isinstance(subject, int):
            follow_up = self.registrations.response(subject, response, now)
            if follow_up is not None:
                self._send(follow_up, Purpose.REGISTER, subject, now, out)
        elif isinstance(subject, GwCall):
            if kind is Purpose.INVITE:
                self._invite_response(subject, action.key, response, now, out)
            elif kind is Purpose.REINVITE:
                self._reinvite_response(subject, action.key, response, now, out)
            elif kind is Purpose.INFO and response.status in (408, 481):
                self._remote_gone(subject, now, out)

    def _stray(self, response: Response, now: float, out: list[GatewayAction]) -> None:
        """A 2xx for an INVITE whose transaction has ended: ACK it again."""
        call = self._by_call_id.get(response.call_id)
        if call is None or call.dialog is None or not 200 <= response.status < 300:
            return
        try:
            if response.cseq().method == "INVITE":
                self._ack_again(call.dialog, response, out)
        except ParseError:
            pass

    def _ack_again(self, dialog: Dialog, response: Response, out: list[GatewayAction]) -> None:
        """ACK a 2xx to one of our INVITEs; every copy of it gets one (§13.2.2.4)."""
        try:
            ack = dialog.ack_for_2xx(response, rng=self._rng)
        except DialogError as exc:
            log.debug("no ACK for a 2xx: %s", exc)
            return
        out.append(Send(ack, self.config.server, bytes(ack)))

    def _invite_response(
        self,
        call: GwCall,
        key: TransactionKey,
        response: Response,
        now: float,
        out: list[GatewayAction],
    ) -> None:
        status = response.status
        if key != call.key:
            if 200 <= status < 300 and call.dialog is not None:
                self._ack_again(call.dialog, response, out)
            return
        if status < 200:
            if call.state is GwCallState.CANCELLING and not call.heard:
                call.heard = True  # something heard, 100 included: the CANCEL may go now
                self._send(cancel_for(call.invite), Purpose.CANCEL, call, now, out)
                return
            call.heard = True
            if status == 100 or call.state is not GwCallState.CALLING:
                return
            early = self._read_answer(call, response) is not None
            call.early_media = call.early_media or early
            if self.lines[call.port].type is PortType.FXS:
                out.append(ToPort(call.port, RemoteProgress(early_media=early)))
            return
        if status < 300:
            self._invite_ok(call, response, now, out)
            return
        if status in (401, 407) and call.state is GwCallState.CALLING and call.auth_tries == 0:
            if self._retry_with_auth(call, response, now, out):
                return
        cancelled = call.state is not GwCallState.CALLING
        self._forget(call)
        if not cancelled:
            cause = cause_for(status) if 400 <= status <= 699 else Cause.NORMAL_UNSPECIFIED
            out.append(ToPort(call.port, CallFailed(cause)))

    def _invite_ok(
        self, call: GwCall, response: Response, now: float, out: list[GatewayAction]
    ) -> None:
        if call.dialog is not None:  # a retransmission: the ACK again, nothing else
            self._ack_again(call.dialog, response, out)
            return
        try:
            dialog = Dialog.from_uac(call.invite, response, now=now)
        except DialogError as exc:
            log.warning("port %d: bad 2xx to our INVITE: %s", call.port, exc)
            return
        call.dialog = dialog
        ack = dialog.ack_for_2xx(response, rng=self._rng)
        out.append(Send(ack, self.config.server, bytes(ack)))
        if call.state is not GwCallState.CALLING:
            # answered after the port gave up (the CANCEL crossed the 2xx): end it (§15);
            # the dialog stays known until the transaction ends, for retransmissions
            bye = dialog.request("BYE", now, rng=self._rng)
            self._send(bye, Purpose.BYE, call, now, out)
            call.state = GwCallState.ENDED
            return
        self._read_answer(call, response)
        call.state = GwCallState.CONFIRMED
        out.append(ToPort(call.port, RemoteAnswered()))

    def _read_answer(self, call: GwCall, response: Response) -> SessionDescription | None:
        try:
            sdp = sdp_of(response)
        except ParseError:
            return None
        offer = call.local_sdp
        if call.reinvite is not None:
            offer = call.reinvite.offer
        if sdp is None or offer is None:
            return None
        try:
            call.media = apply_answer(offer, sdp)
        except NegotiationError as exc:
            log.warning("port %d: unusable SDP answer: %s", call.port, exc)
            return None
        call.remote_sdp = sdp
        return sdp

    def _retry_with_auth(
        self, call: GwCall, response: Response, now: float, out: list[GatewayAction]
    ) -> bool:
        line = self.lines[call.port]
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = pick(response.get_all(header), line.ha1)
        if challenge is None:
            return False
        call.auth_tries += 1
        value = authorization(
            challenge,
            username=line.user,
            ha1=line.ha1[challenge.algorithm],
            method="INVITE",
            uri=str(call.invite.uri),
            cnonce=self._token(),
        )
        auth_name = "Authorization" if response.status == 401 else "Proxy-Authorization"
        cseq = call.invite.cseq().number + 1
        headers: list[tuple[str, str]] = []
        for name, old in call.invite.headers:
            if name == "Via":
                headers.append((name, self._new_via()))
            elif name == "CSeq":
                headers.append((name, f"{cseq} INVITE"))
            else:
                headers.append((name, old))
        headers.append((auth_name, value))
        invite = Request("INVITE", call.invite.uri, tuple(headers), call.invite.body)
        key = self._send(invite, Purpose.INVITE, call, now, out)
        if key is None:
            return False
        call.invite = invite
        call.key = key
        return True

    def _timed_out(self, key: TransactionKey, now: float, out: list[GatewayAction]) -> None:
        purpose = self._client.pop(key, None)
        if purpose is None:
            self._server.pop(key, None)
            return
        kind, subject = purpose
        if kind is Purpose.REGISTER and isinstance(subject, int):
            self.registrations.timed_out(subject, now)
        elif kind is Purpose.INVITE and isinstance(subject, GwCall) and key == subject.key:
            cancelled = subject.state is not GwCallState.CALLING
            self._forget(subject)
            if not cancelled:
                out.append(ToPort(subject.port, CallFailed(Cause.RECOVERY_ON_TIMER_EXPIRY)))
        elif kind is Purpose.REINVITE and isinstance(subject, GwCall):
            subject.reinvite = None
            self._remote_gone(subject, now, out, bye=True)  # §14.1: a timeout ends it
        elif kind is Purpose.INFO and isinstance(subject, GwCall):
            self._remote_gone(subject, now, out, bye=True)

    # -- call bookkeeping --------------------------------------------------------------

    def _add(self, call: GwCall) -> None:
        self._calls[call.port].append(call)
        self._by_call_id[call.call_id] = call

    def _detach(self, call: GwCall) -> None:
        """The port no longer has this call; the SIP side may still finish it."""
        calls = self._calls.get(call.port, [])
        if call in calls:
            calls.remove(call)

    def _forget(self, call: GwCall) -> None:
        self._detach(call)
        call.state = GwCallState.ENDED
        if self._by_call_id.get(call.call_id) is call:
            del self._by_call_id[call.call_id]
        self._server.pop(call.key, None)
        call.retransmit = None
        call.retry_at = None

    def _aim_all(self, out: list[GatewayAction]) -> None:
        for port in self.lines:
            self._aim(port, out)

    def _aim(self, port: int, out: list[GatewayAction]) -> None:
        """Point the port's stream at the call the user hears, if its media is known."""
        active = _with_role(self._calls.get(port, []), Role.ACTIVE)
        target: StreamTarget | None = None
        if active is not None and active.media is not None:
            audible = active.up or active.early_media
            # the user's hold silences the call at once, not when the far end agrees
            if audible and not active.hold_wanted:
                media = active.media
                target = StreamTarget(
                    media.remote_address,
                    media.remote_port,
                    media.codec.upper(),
                    media.payload_type,
                    send=media.direction.sends,
                )
        if self._aimed.get(port) != target:
            self._aimed[port] = target
            out.append(AimStream(port, target))

    # -- message building --------------------------------------------------------------

    def _response_for(
        self,
        request: Request,
        status: int,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        reason: str | None = None,
        to_tag: str | None = None,
        dialog: GwCall | None = None,
    ) -> Response:
        tag = to_tag
        if tag is None and dialog is None and status != 100:
            tag = self._token()
        return make_response(request, status, reason, extra, body, to_tag=tag)

    def _respond(
        self,
        key: TransactionKey,
        response: Response,
        now: float,
        *,
        dialog: GwCall | None = None,
    ) -> list[GatewayAction]:
        if dialog is not None and dialog.dialog is not None:
            dialog.dialog.response_sent(response, now)
        try:
            sent: list[GatewayAction] = []
            self._layer_actions(self.layer.respond(key, response, now), now, sent)
            return sent
        except TransactionError as exc:
            log.debug("gateway: %d not sent: %s", response.status, exc)
            return []

    def _reply(
        self,
        key: TransactionKey,
        request: Request,
        status: int,
        now: float,
        extra: Iterable[tuple[str, str]] = (),
        *,
        reason: str | None = None,
        body: bytes = b"",
        to_tag: str | None = None,
        dialog: GwCall | None = None,
    ) -> list[GatewayAction]:
        response = self._response_for(
            request, status, extra, body, reason=reason, to_tag=to_tag, dialog=dialog
        )
        return self._respond(key, response, now, dialog=dialog)

    def _contact(self, line: LineAccount) -> str:
        return f"<{self.registrations.contact_uri(line.port, line.user)}>"

    def _via(self) -> Via:
        return Via("UDP", self.config.host, self.config.port, (("rport", None),))

    def _new_via(self) -> str:
        return str(self._via().with_param("branch", self.layer.new_branch()))

    def _token(self) -> str:
        return format(self._rng.getrandbits(48), "x")


def _with_role(calls: list[GwCall], role: Role) -> GwCall | None:
    return next((c for c in calls if c.role is role), None)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
