"""The analog ports as SIP user agents of our own registrar and B2BUA (sans-IO).

Why a user agent and not a second kind of leg inside the B2BUA: an FXS port is an
extension "like any SIP phone" (the issue's words, and what installers expect of an
ATA), so it registers, is rung by forking, diverts to voicemail, gets message-waiting
NOTIFYs, holds with re-INVITEs and sends pulse digits as SIP INFO, all through the
code paths every phone already exercises. The price is one more RTP hop over loopback
per port, a few hundred packets a second on boards with two to eight ports.

- An FXS port registers its extension with the HA1 the store keeps (no clear-text
  password anywhere). ``PlaceCall`` sends an INVITE; the server's INVITE to the
  extension rings the port (``IncomingCallOffer``, caller ID from From); flash holds
  (re-INVITE sendonly), swaps and answers a waiting call; unsolicited message-summary
  NOTIFYs become ``MessagesWaiting``.
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
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import unquote

from appliance.lines.gateway_call import GwCall, GwCallState, Role
from appliance.lines.line_registration import LineRegistration, RegState
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
from appliance.sdp.session import SessionDescription, bump_version, parse
from appliance.sip.dialog import Accept, Dialog, DialogError, Ignore
from appliance.sip.dialog_retransmit import AckTimedOut, Resend, TwoXxRetransmitter
from appliance.sip.digest_client import authorization, pick
from appliance.sip.errors import ParseError
from appliance.sip.grammar import split_list
from appliance.sip.headers import NameAddr, Via
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import (
    Action,
    RequestReceived,
    ResponseReceived,
    Send,
    TimedOut,
    TimerConfig,
    TransactionError,
    TransactionKey,
    TransactionLayer,
)
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri

log = logging.getLogger(__name__)

SDP_TYPE: Final = "application/sdp"
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, UPDATE"
USER_AGENT: Final = "YakYak analog gateway"
LINE_PARAM: Final = "line"  # ;line=N in a Request-URI names the port


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
        self.registrations: dict[int, LineRegistration] = {
            line.port: LineRegistration(line.port, line.user, self._token() + "@yakyak-gw")
            for line in self.lines.values()
            if line.type is PortType.FXS
        }
        self._calls: dict[int, list[GwCall]] = {port: [] for port in self.lines}
        self._by_call_id: dict[str, GwCall] = {}
        self._client: dict[TransactionKey, tuple[str, int | GwCall]] = {}
        self._server: dict[TransactionKey, GwCall] = {}
        self._aimed: dict[int, StreamTarget | None] = {}
        self._last_register: dict[int, Request] = {}

    # -- public -------------------------------------------------------------------------

    def calls(self, port: int) -> list[GwCall]:
        return list(self._calls.get(port, ()))

    def registered(self, port: int) -> bool:
        reg = self.registrations.get(port)
        return reg is not None and reg.state is RegState.REGISTERED

    def receive(self, data: bytes, peer: Peer, now: float) -> list[GatewayAction]:
        try:
            message = parse_message(data)
        except ParseError as exc:
            log.warning("gateway: unreadable message from %s:%d: %s", peer.host, peer.port, exc)
            return []
        out: list[GatewayAction] = []
        self._layer_actions(self.layer.receive(message, peer, now), now, out)
        for port in self.lines:
            self._aim(port, out)
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
        deadlines = [self.layer.next_deadline()]
        deadlines += [reg.due for reg in self.registrations.values()]
        for calls in self._calls.values():
            deadlines += [c.retransmit.next_deadline() for c in calls if c.retransmit]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> list[GatewayAction]:
        out: list[GatewayAction] = []
        self._layer_actions(self.layer.handle_timer(now), now, out)
        for reg in self.registrations.values():
            if reg.due is not None and reg.due <= now:
                self._register(reg, now, out)
        for calls in list(self._calls.values()):
            for call in list(calls):
                if call.retransmit is not None:
                    for action in call.retransmit.handle_timer(now):
                        if isinstance(action, Resend):
                            self._layer_actions(
                                self.layer.respond(call.key, action.response, now), now, out
                            )
                        elif isinstance(action, AckTimedOut):
                            self._remote_gone(call, now, out, bye=True)
        for port in self.lines:
            self._aim(port, out)
        return out

    def stop(self, now: float) -> list[GatewayAction]:
        """Hang up every call and unregister: the appliance is stopping."""
        out: list[GatewayAction] = []
        for calls in list(self._calls.values()):
            for call in list(calls):
                self._hang_up(call, Cause.NORMAL_CLEARING, now, out)
        for reg in self.registrations.values():
            if reg.state is RegState.REGISTERED:
                self._register(reg, now, out, expires=0)
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

    # -- requests from the server ------------------------------------------------------

    def _request(self, action: RequestReceived, now: float, out: list[GatewayAction]) -> None:
        request = action.request
        key = action.key
        if key is None:  # an ACK for a 2xx of ours
            call = self._by_call_id.get(request.call_id)
            if call is not None and call.dialog is not None:
                if isinstance(call.dialog.receive_request(request, now), Accept):
                    if call.retransmit is not None:
                        call.retransmit.ack_received()
                        call.retransmit = None
            return
        method = request.method
        try:
            to_tag = request.to_addr().tag
        except ParseError:
            out.extend(self._reply(key, request, 400, now))
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
        calls = self._calls[line.port]
        if line.type is PortType.FXO:
            busy = bool(calls)
        else:
            busy = any(c.role is Role.WAITING for c in calls) or len(calls) >= 2
        if busy:
            out.extend(self._reply(key, request, 486, now))
            return
        try:
            offer = _sdp(request)
        except ParseError as exc:
            out.extend(self._reply(key, request, exc.status, now, reason=exc.reason[:80]))
            return
        if offer is None:  # a delayed offer: the B2BUA never sends one to us
            out.extend(self._reply(key, request, 488, now, reason="An SDP offer is required"))
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
            remote_sdp=offer,
        )
        try:
            answer = self._answer(line, offer)
        except NegotiationError as exc:
            out.extend(self._reply(key, request, exc.status, now, reason=exc.reason[:80]))
            return
        call.local_sdp = answer.session
        call.media = answer.media
        self._add(call)
        self._server[key] = call
        if line.type is PortType.FXS:
            out.extend(self._reply(key, request, 180, now, to_tag=call.local_tag))
            sender = request.from_addr()
            number = sender.uri.user
            if number in (None, "", "anonymous"):
                number = None
            out.append(ToPort(line.port, IncomingCallOffer(number, sender.display_name)))
        else:
            out.extend(self._reply(key, request, 100, now))
            out.append(ToPort(line.port, DialOut(unquote(request.uri.user or ""))))

    def _answer(self, line: LineAccount, offer: SessionDescription) -> Answer:
        local = LocalMedia(self.config.media_host, line.rtp_port, (PCMU, PCMA), None)
        origin = new_origin(self._rng.randrange(1, 2**31), self.config.media_host)
        return make_answer(offer, local, origin)

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
            self._remote_gone(call, now, out, bye=False)
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
            offer = _sdp(request)
        except ParseError as exc:
            out.extend(self._reply(key, request, exc.status, now, dialog=call))
            return
        body = b""
        if offer is not None:
            line = self.lines[call.port]
            try:
                answer = self._answer(line, offer)
            except NegotiationError as exc:
                out.extend(self._reply(key, request, exc.status, now, dialog=call))
                return
            if call.local_sdp is not None:
                # the same session, a new version (RFC 3264 §8): keep our origin
                session = _new_version(call.local_sdp, answer.session)
            else:
                session = answer.session
            call.local_sdp = session
            call.media = answer.media
            body = bytes(session)
        elif request.method == "INVITE" and call.local_sdp is not None:
            body = bytes(call.local_sdp)  # an offerless re-INVITE: our SDP as the offer
        extra = [("Content-Type", SDP_TYPE)] if body else []
        out.extend(self._reply(key, request, 200, now, extra, body=body, dialog=call))

    def _cancel(
        self, key: TransactionKey, request: Request, now: float, out: list[GatewayAction]
    ) -> None:
        invite_key = self.layer.cancel_matching(request)
        call = self._server.get(invite_key) if invite_key is not None else None
        out.extend(self._reply(key, request, 200 if call else 481, now))
        if call is None or invite_key is None or call.state is not GwCallState.OFFERED:
            return
        out.extend(self._reply(invite_key, call.invite, 487, now, to_tag=call.local_tag))
        self._drop(call)
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
        if event != "message-summary" or line is None or line.type is not PortType.FXS:
            out.extend(self._reply(key, request, 489 if line else 404, now))
            return
        out.extend(self._reply(key, request, 200, now))
        waiting = _messages_waiting(request.body)
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
            self._place(
                line,
                line.inbound,
                cid.number if cid else None,
                cid.name if cid else None,
                now,
                out,
            )
        elif isinstance(action, AnswerIncoming):
            if waiting is not None:
                if active is not None and active is not waiting:
                    self._hold(active, True, now, out)
                waiting.role = Role.ACTIVE
                self._accept(waiting, now, out)
        elif isinstance(action, OutboundAnswered):
            if active is not None and active.state is GwCallState.OFFERED:
                self._accept(active, now, out)
        elif isinstance(action, OutboundProgress):
            if active is not None and active.state is GwCallState.OFFERED:
                active.early_media = True
                sdp = active.local_sdp
                body = bytes(sdp) if sdp is not None else b""
                out.extend(
                    self._reply(
                        active.key,
                        active.invite,
                        183,
                        now,
                        [("Content-Type", SDP_TYPE)],
                        body=body,
                        to_tag=active.local_tag,
                    )
                )
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
            if active is not None:
                active.role = Role.HELD
                self._hold(active, True, now, out)
        elif isinstance(action, ResumeCall):
            if held is not None:
                if active is not None:
                    active.role = Role.HELD
                    self._hold(active, True, now, out)
                held.role = Role.ACTIVE
                self._hold(held, False, now, out)
        elif isinstance(action, DigitInCall):
            if active is not None and active.up and active.dialog is not None:
                body = f"Signal={action.digit}\r\nDuration=100\r\n".encode()
                extra = [("Content-Type", "application/dtmf-relay")]
                request = active.dialog.request("INFO", now, body, extra, rng=self._rng)
                self._send_request(request, ("info", active), now, out)

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
        server = self.config.server
        domain = _host(server)
        offer = make_offer(
            LocalMedia(self.config.media_host, line.rtp_port, (PCMU, PCMA), None),
            new_origin(self._rng.randrange(1, 2**31), self.config.media_host),
        )
        call_id = f"{self._token()}{self._token()}@yakyak-gw"
        tag = self._token()
        # FXO: the trunk account asserts the caller ID it decoded; "anonymous" when the
        # line gave none (withheld or unavailable)
        from_user = (asserted or "anonymous") if line.type is PortType.FXO else line.user
        name = f'"{_quote(display)}" ' if display else ""
        headers = [
            ("Max-Forwards", "70"),
            ("From", f"{name}<sip:{from_user}@{domain}>;tag={tag}"),
            ("To", f"<sip:{number}@{domain}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self._contact(line)),
            ("Allow", ALLOW),
            ("User-Agent", USER_AGENT),
            ("Content-Type", SDP_TYPE),
        ]
        invite = self._new_request("INVITE", Uri("sip", number, host=domain), headers, bytes(offer))
        key, actions = self.layer.request(invite, server, now)
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
        self._client[key] = ("invite", call)
        self._layer_actions(actions, now, out)

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
        call.final = response
        call.state = GwCallState.CONFIRMED
        call.retransmit = TwoXxRetransmitter(response, now, self._timers)
        self._server.pop(call.key, None)

    def _hold(self, call: GwCall, hold: bool, now: float, out: list[GatewayAction]) -> None:
        if not call.up or call.dialog is None or call.local_sdp is None:
            return
        if call.held_by_us == hold:
            return
        if call.reinvite_key is not None:
            call.pending_hold = hold  # sent once the re-INVITE in flight is answered
            return
        call.held_by_us = hold
        offer = hold_offer(call.local_sdp) if hold else resume_offer(call.local_sdp)
        call.local_sdp = offer
        request = call.dialog.request(
            "INVITE", now, bytes(offer), [("Content-Type", SDP_TYPE)], rng=self._rng
        )
        call.reinvite = request
        key = self._send_request(request, ("reinvite", call), now, out)
        call.reinvite_key = key

    def _hang_up(self, call: GwCall, cause: Cause, now: float, out: list[GatewayAction]) -> None:
        if call.state is GwCallState.CALLING:
            # §9.1: CANCEL only once a provisional came; until then the port's hang-up
            # is remembered and a late 2xx is ACKed and ended with BYE
            call.state = GwCallState.CANCELLING
            if call.heard:
                self._send_cancel(call, now, out)
            return
        if call.state is GwCallState.OFFERED:
            status = status_for(cause) if cause is not Cause.NORMAL_CLEARING else 480
            out.extend(self._reply(call.key, call.invite, status, now, to_tag=call.local_tag))
            self._drop(call)
            return
        if call.state is GwCallState.CONFIRMED and call.dialog is not None:
            try:
                bye = call.dialog.request("BYE", now, rng=self._rng)
            except DialogError:
                bye = None
            if bye is not None:
                self._send_request(bye, ("bye", call), now, out)
        self._drop(call)

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
        if response.status >= 200:
            self._client.pop(action.key, None)
        if kind == "register" and isinstance(subject, int):
            self._registered(self.registrations[subject], response, now, out)
        elif isinstance(subject, GwCall):
            if kind == "invite":
                self._invite_response(subject, response, now, out)
            elif kind == "reinvite":
                self._reinvite_response(subject, response, now, out)
            elif kind == "cancel" and subject.state is GwCallState.CANCELLING:
                pass  # the INVITE's 487 ends it

    def _stray(self, response: Response, now: float, out: list[GatewayAction]) -> None:
        """A 2xx retransmission for an INVITE whose transaction ended: ACK it again."""
        call = self._by_call_id.get(response.call_id)
        if call is None or call.dialog is None or not 200 <= response.status < 300:
            return
        try:
            if response.cseq().method == "INVITE":
                ack = call.dialog.ack_for_2xx(response, rng=self._rng)
                out.append(Send(ack, self.config.server, bytes(ack)))
        except (DialogError, ParseError):
            pass

    def _invite_response(
        self, call: GwCall, response: Response, now: float, out: list[GatewayAction]
    ) -> None:
        status = response.status
        line = self.lines[call.port]
        if status < 200:
            if status == 100:
                return
            if call.state is GwCallState.CANCELLING and not call.heard:
                call.heard = True  # something heard: the CANCEL may go now (§9.1)
                self._send_cancel(call, now, out)
                return
            if call.state is not GwCallState.CALLING:
                return
            call.heard = True
            early = self._read_answer(call, response) is not None
            call.early_media = call.early_media or early
            if line.type is PortType.FXS:
                out.append(ToPort(call.port, RemoteProgress(early_media=early)))
            return
        if status < 300:
            self._invite_ok(call, response, now, out)
            return
        if status in (401, 407) and call.state is GwCallState.CALLING and call.auth_tries == 0:
            if self._retry_with_auth(call, response, now, out):
                return
        if call.state is GwCallState.CANCELLING:
            self._drop(call)
            return
        self._drop(call)
        cause = cause_for(status) if 400 <= status <= 699 else Cause.NORMAL_UNSPECIFIED
        out.append(ToPort(call.port, CallFailed(cause)))

    def _send_cancel(self, call: GwCall, now: float, out: list[GatewayAction]) -> None:
        cancel = Request("CANCEL", call.invite.uri, _cancel_headers(call.invite), b"")
        try:
            self._send_request(cancel, ("cancel", call), now, out)
        except TransactionError as exc:
            log.debug("port %d: no CANCEL: %s", call.port, exc)

    def _invite_ok(
        self, call: GwCall, response: Response, now: float, out: list[GatewayAction]
    ) -> None:
        try:
            dialog = Dialog.from_uac(call.invite, response, now=now)
        except DialogError as exc:
            log.warning("port %d: bad 2xx to our INVITE: %s", call.port, exc)
            return
        ack = dialog.ack_for_2xx(response, rng=self._rng)
        out.append(Send(ack, self.config.server, bytes(ack)))
        if call.state is not GwCallState.CALLING:
            # answered after the port gave up (CANCEL crossed the 2xx): end it (§15)
            bye = dialog.request("BYE", now, rng=self._rng)
            self._send_request(bye, ("bye", call), now, out)
            self._drop(call)
            return
        call.dialog = dialog
        self._read_answer(call, response)
        call.state = GwCallState.CONFIRMED
        out.append(ToPort(call.port, RemoteAnswered()))

    def _read_answer(self, call: GwCall, response: Response) -> SessionDescription | None:
        try:
            sdp = _sdp(response)
        except ParseError:
            return None
        if sdp is None or call.local_sdp is None:
            return None
        try:
            call.media = apply_answer(call.local_sdp, sdp)
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
        uri = str(call.invite.uri)
        value = authorization(
            challenge,
            username=line.user,
            ha1=line.ha1[challenge.algorithm],
            method="INVITE",
            uri=uri,
            cnonce=self._token(),
        )
        auth_name = "Authorization" if response.status == 401 else "Proxy-Authorization"
        headers = [
            (name, "2 INVITE" if name == "CSeq" else old)
            for name, old in call.invite.headers
            if name != "Via"
        ]
        headers.append((auth_name, value))
        invite = self._new_request("INVITE", call.invite.uri, headers, call.invite.body)
        key, actions = self.layer.request(invite, self.config.server, now)
        call.invite = invite
        call.key = key
        self._client[key] = ("invite", call)
        self._layer_actions(actions, now, out)
        return True

    def _reinvite_response(
        self, call: GwCall, response: Response, now: float, out: list[GatewayAction]
    ) -> None:
        if response.status < 200 or call.dialog is None:
            return
        call.reinvite_key = None
        try:
            call.dialog.receive_response(response, now)
        except DialogError:
            pass
        if response.status < 300:
            ack = call.dialog.ack_for_2xx(response, rng=self._rng)
            out.append(Send(ack, self.config.server, bytes(ack)))
            self._read_answer(call, response)
        pending = call.pending_hold
        call.pending_hold = None
        if pending is not None and call.up:
            self._hold(call, pending, now, out)

    def _timed_out(self, key: TransactionKey, now: float, out: list[GatewayAction]) -> None:
        purpose = self._client.pop(key, None)
        if purpose is None:
            self._server.pop(key, None)
            return
        kind, subject = purpose
        if kind == "register" and isinstance(subject, int):
            reg = self.registrations[subject]
            log.warning("port %d: REGISTER for %s unanswered", subject, reg.user)
            reg.failed(None, now)
        elif kind == "invite" and isinstance(subject, GwCall):
            call = subject
            cancelled = call.state is GwCallState.CANCELLING
            self._drop(call)
            if not cancelled:
                out.append(ToPort(call.port, CallFailed(Cause.RECOVERY_ON_TIMER_EXPIRY)))
        elif kind == "reinvite" and isinstance(subject, GwCall):
            subject.reinvite_key = None

    # -- registration ------------------------------------------------------------------

    def _register(
        self,
        reg: LineRegistration,
        now: float,
        out: list[GatewayAction],
        *,
        expires: int | None = None,
        auth: str | None = None,
        contacts: list[str] | None = None,
    ) -> None:
        line = self.lines[reg.port]
        domain = _host(self.config.server)
        aor = f"<sip:{reg.user}@{domain}>"
        seconds = self.config.register_expires if expires is None else expires
        headers = [
            ("Max-Forwards", "70"),
            ("From", f"{aor};tag={self._token()}"),
            ("To", aor),
            ("Call-ID", reg.call_id),
            ("CSeq", f"{reg.next_cseq()} REGISTER"),
            *(("Contact", c) for c in (contacts or [self._contact(line)])),
            ("Expires", str(seconds)),
            ("User-Agent", USER_AGENT),
        ]
        if auth is not None:
            headers.append(("Authorization", auth))
        request = self._new_request("REGISTER", Uri("sip", host=domain), headers)
        try:
            key, actions = self.layer.request(request, self.config.server, now)
        except TransactionError as exc:
            log.warning("port %d: cannot REGISTER: %s", reg.port, exc)
            reg.failed(None, now)
            return
        reg.sent()
        self._client[key] = ("register", reg.port)
        self._last_register[reg.port] = request
        self._layer_actions(actions, now, out)

    def _registered(
        self, reg: LineRegistration, response: Response, now: float, out: list[GatewayAction]
    ) -> None:
        status = response.status
        if status < 200:
            return
        if status < 300:
            line = self.lines[reg.port]
            ours = self._contact_uri(line)
            sent = self._last_register.get(reg.port)
            removing = sent is not None and sent.get("Expires") == "0"
            if not removing:
                log.info("port %d registered as %s", reg.port, reg.user)
            reg.accepted(_granted(response, ours, self.config.register_expires), now)
            stale = _stale_contacts(response, line, ours)
            if stale:
                # bindings of this port from an earlier run (another gateway address)
                # would fork calls to nobody until they expire: remove them now
                self._register(reg, now, out, expires=0, contacts=[f"<{u}>" for u in stale])
            return
        if status in (401, 407):
            line = self.lines[reg.port]
            header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            challenge = pick(response.get_all(header), line.ha1)
            if challenge is not None and reg.may_answer(challenge.nonce, challenge.stale):
                sent = self._last_register.get(reg.port)
                domain = _host(self.config.server)
                value = authorization(
                    challenge,
                    username=line.user,
                    ha1=line.ha1[challenge.algorithm],
                    method="REGISTER",
                    uri=f"sip:{domain}",
                    cnonce=self._token(),
                )
                expires = int(sent.get("Expires") or 0) if sent is not None else None
                contacts = sent.get_all("Contact") if sent is not None else None
                self._register(reg, now, out, expires=expires, auth=value, contacts=contacts)
                return
        log.warning("port %d: registration of %s refused: %d", reg.port, reg.user, status)
        reg.failed(status, now)

    # -- call bookkeeping --------------------------------------------------------------

    def _remote_gone(
        self, call: GwCall, now: float, out: list[GatewayAction], *, bye: bool
    ) -> None:
        """The far end ended the call (BYE), or never ACKed our 2xx (then we BYE)."""
        if bye and call.dialog is not None:
            try:
                request = call.dialog.request("BYE", now, rng=self._rng)
                self._send_request(request, ("bye", call), now, out)
            except DialogError:
                pass
        was_held = call.role is Role.HELD
        self._drop(call)
        out.append(ToPort(call.port, RemoteHungUp(held=was_held)))

    def _add(self, call: GwCall) -> None:
        self._calls[call.port].append(call)
        self._by_call_id[call.call_id] = call

    def _drop(self, call: GwCall) -> None:
        call.state = GwCallState.ENDED
        calls = self._calls[call.port]
        if call in calls:
            calls.remove(call)
        if self._by_call_id.get(call.call_id) is call:
            del self._by_call_id[call.call_id]
        self._server.pop(call.key, None)
        call.retransmit = None

    def _aim(self, port: int, out: list[GatewayAction]) -> None:
        """Point the port's stream at the call the user hears, if its media is known."""
        active = _with_role(self._calls.get(port, []), Role.ACTIVE)
        target: StreamTarget | None = None
        if active is not None and active.media is not None:
            audible = active.up or active.early_media
            if audible and not active.held_by_us:
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

    def _send_request(
        self,
        request: Request,
        purpose: tuple[str, GwCall],
        now: float,
        out: list[GatewayAction],
    ) -> TransactionKey:
        key, actions = self.layer.request(request, self.config.server, now)
        self._client[key] = purpose
        self._layer_actions(actions, now, out)
        return key

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
        tag = to_tag
        if tag is None and dialog is None and status != 100:
            tag = self._token()
        response = make_response(request, status, reason, extra, body, to_tag=tag)
        if dialog is not None and dialog.dialog is not None:
            dialog.dialog.response_sent(response, now)
        try:
            sent: list[GatewayAction] = []
            self._layer_actions(self.layer.respond(key, response, now), now, sent)
            return sent
        except TransactionError as exc:
            log.debug("gateway: %d not sent: %s", status, exc)
            return []

    def _contact(self, line: LineAccount) -> str:
        return f"<{self._contact_uri(line)}>"

    def _contact_uri(self, line: LineAccount) -> str:
        # ;line= names the port in every request the server sends to this contact, and
        # tells this port's bindings from a softphone sharing the extension
        return f"sip:{line.user}@{self._hostport()};{LINE_PARAM}={line.port}"

    def _hostport(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.config.port}"

    def _via(self) -> Via:
        return Via("UDP", self.config.host, self.config.port, (("rport", None),))

    def _new_request(
        self, method: str, uri: Uri, headers: list[tuple[str, str]], body: bytes = b""
    ) -> Request:
        """An out-of-dialog request with our Via and a fresh branch on top."""
        via = self._via().with_param("branch", self.layer.new_branch())
        return Request(method, uri, (("Via", str(via)), *headers), body)

    def _token(self) -> str:
        return format(self._rng.getrandbits(48), "x")


# -- helpers ------------------------------------------------------------------------------


def _with_role(calls: list[GwCall], role: Role) -> GwCall | None:
    # a call the port gave up on (CANCEL sent, its answer awaited) has no role left
    return next(
        (c for c in calls if c.role is role and c.state is not GwCallState.CANCELLING), None
    )


def _sdp(message: Request | Response) -> SessionDescription | None:
    if not message.body.strip():
        return None
    kind = (message.get("Content-Type") or SDP_TYPE).split(";")[0].strip().lower()
    if kind != SDP_TYPE:
        raise NegotiationError(f"body of type {kind[:40]} is not SDP", 415)
    return parse(message.body)


def _new_version(previous: SessionDescription, answer: SessionDescription) -> SessionDescription:
    """``answer`` under ``previous``'s origin with the version moved on (RFC 3264 §8)."""
    bumped = bump_version(previous)
    return replace(answer, origin=bumped.origin)


def _cancel_headers(invite: Request) -> tuple[tuple[str, str], ...]:
    keep = ("Via", "From", "To", "Call-ID", "Max-Forwards", "Route")
    headers = [(name, value) for name, value in invite.headers if name in keep]
    cseq = invite.cseq()
    headers.append(("CSeq", f"{cseq.number} CANCEL"))
    return tuple(headers)


def _contacts(response: Response) -> list[NameAddr]:
    found: list[NameAddr] = []
    for value in response.get_all("Contact"):
        for part in split_list(value):
            try:
                found.append(NameAddr.parse(part))
            except ParseError:
                continue
    return found


def _granted(response: Response, ours: str, asked: int) -> int:
    """The expiry the registrar granted our contact: its ``expires``, else Expires."""
    for addr in _contacts(response):
        number = addr.param("expires")
        if str(addr.uri) == ours and number is not None and number.isdigit():
            return int(number)
    expires = response.get("Expires")
    if expires is not None and expires.strip().isdigit():
        return int(expires)
    return asked


def _stale_contacts(response: Response, line: LineAccount, ours: str) -> list[str]:
    """Contacts of this port (its user and ;line=) at another address than ours."""
    stale: list[str] = []
    for addr in _contacts(response):
        uri = addr.uri
        text = str(uri)
        if text != ours and uri.user == line.user and uri.param(LINE_PARAM) == str(line.port):
            stale.append(text)
    return stale


def _messages_waiting(body: bytes) -> bool | None:
    """``Messages-Waiting: yes|no`` of an RFC 3842 message-summary body."""
    for raw in body.decode("utf-8", "replace").splitlines():
        name, _, value = raw.partition(":")
        if name.strip().lower() == "messages-waiting":
            answer = value.strip().lower()
            if answer in ("yes", "no"):
                return answer == "yes"
    return None


def _host(peer: Peer) -> str:
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    return f"{host}:{peer.port}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
