"""The B2BUA: every call is two SIP dialogs with the appliance in the middle (sans-IO).

The caller's authenticated INVITE is answered by us (we anchor the media, so our SDP
answer is known at once); the callee's registered contacts are each sent an INVITE of
ours (forking), and the first 2xx wins: the other forks are cancelled, or BYEd if
they answer too. 18x are passed on (with our answer SDP, so the caller hears the
callee's early media or our ringback), failures are mapped through Q.850 causes.

In the call, hold and resume from either phone are answered locally and passed to the
other phone as a re-INVITE; session timers (RFC 4028) are kept per leg; DTMF from SIP
INFO, RFC 4733 events and in-band detection become one stream per leg, relayed in
the form the other phone takes. Every call that ends yields one ``CallFinished``.

Input: messages and actions from the transaction layer, media events, ``now``.
Output: transaction-layer actions (``Send``) and ``CallFinished``. The media engine is
called directly (see ``media_port``); nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import unquote

from appliance.pbx.addressing import binding_target, our_contact
from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallerHungUp,
    CancelTimer,
    CheckPin,
    DepositReason,
    DigitPressed,
    DiscardRecording,
    HangUp,
    LoadMailbox,
    Play,
    PlaybackDone,
    Record,
    RecordEnd,
    SaveGreeting,
    SetMessageStatus,
    SetPin,
    SetTimer,
    StartMailboxAccess,
    StartMenu,
    StartVoicemail,
    StopPlayback,
    StopRecording,
    StoreMessage,
    TimerFired,
    Transfer,
    TransferFailed,
)
from appliance.pbx.call import AppSession, Call, Fork, Offer, Purpose, SipLeg
from appliance.pbx.call_apps import AppRequest, AppTarget, CallApps, SaveRecording
from appliance.pbx.call_events import (
    Answer,
    CallLog,
    CallRecord,
    CallState,
    CallStateError,
    Dtmf,
    Fail,
    Hangup,
    Hold,
    Party,
    Progress,
    Resume,
    Setup,
    Side,
)
from appliance.pbx.call_media import SDP_TYPE, local_media, media_offer, sdp_of, stream_params
from appliance.pbx.causes import Cause, cause_for, parse_reason, reason_header, status_for
from appliance.pbx.dialplan import (
    AnalogTarget,
    Dialplan,
    ExtensionTarget,
    IvrTarget,
    RejectTarget,
    VoicemailTarget,
)
from appliance.pbx.dtmf_info import PLAIN_TYPE, RELAY_TYPE, parse_info, relay_body
from appliance.pbx.location import Binding
from appliance.pbx.media_port import (
    DtmfDetected,
    LegQualityReport,
    MediaEngine,
    MediaEvent,
    MediaUnavailable,
    PlaybackFinished,
    RecordedAudio,
    RecordingStopped,
    RtpStopped,
    StreamParams,
)
from appliance.pbx.registrar import Registrar
from appliance.pbx.session_timer import (
    MIN_SE_FLOOR,
    Refresher,
    SessionExpires,
    SessionTimer,
    min_se,
    session_expires,
    supports,
)
from appliance.sdp.negotiate import (
    NegotiationError,
    apply_answer,
    hold_offer,
    is_hold,
    make_answer,
    make_offer,
    new_origin,
    resume_offer,
)
from appliance.sdp.session import Origin, SessionDescription
from appliance.sip.dialog import Dialog, DialogError, Ignore, Reject
from appliance.sip.dialog_retransmit import AckTimedOut, Resend, TwoXxRetransmitter
from appliance.sip.dialog_table import DialogTable
from appliance.sip.errors import ParseError
from appliance.sip.headers import Via
from appliance.sip.message import Header, Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import (
    Action,
    Send,
    TransactionError,
    TransactionKey,
    TransactionLayer,
    make_cancel,
)
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri

log = logging.getLogger(__name__)

ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REGISTER, SUBSCRIBE"
IN_DIALOG: Final = frozenset({"INVITE", "BYE", "INFO", "UPDATE", "PRACK", "OPTIONS"})
MAX_CALLS: Final = 2000
MAX_DETACHED_APPS: Final = 256  # hung-up calls whose application still saves a message
_STORE_ACTIONS: Final = (
    LoadMailbox,
    CheckPin,
    StoreMessage,
    DiscardRecording,
    SetMessageStatus,
    SaveGreeting,
    SetPin,
)


@dataclass(frozen=True, slots=True)
class CallConfig:
    no_answer_timeout: float = 30.0  # s of ringing before the caller gets 480
    session_expires: int = 1800  # s, RFC 4028 interval we ask for
    min_se: int = MIN_SE_FLOOR
    max_calls: int = MAX_CALLS
    user_agent: str = "YakYak"
    voicemail_own: str = "*97"  # dial-in to the caller's own mailbox
    voicemail_any: str = "*98"  # dial-in to any mailbox (asks which)
    music_on_hold: bool = True


@dataclass(frozen=True, slots=True)
class CallFinished:
    """One ended call, for the CDR writer."""

    record: CallRecord
    codec: str | None
    a: LegQualityReport | None
    b: LegQualityReport | None


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One call in progress, as a status page shows it."""

    number: int
    caller: str
    caller_name: str | None
    callee: str
    state: str  # "ringing", "talking", "application" (voicemail, a menu)
    started: float  # loop time the call arrived
    answered: float | None
    codec: str | None
    external: bool


B2buaAction = Action | CallFinished | AppRequest | SaveRecording
LocalAddress = Callable[[Peer], tuple[str, int]]


class B2bua:
    def __init__(
        self,
        layer: TransactionLayer,
        registrar: Registrar,
        media: MediaEngine,
        extensions: Callable[[], Collection[str]],
        local_address: LocalAddress,
        rng: random.Random,
        *,
        domain: str,
        config: CallConfig | None = None,
        dialplan: Dialplan | None = None,
        wall_clock: Callable[[float], float] | None = None,
        apps: CallApps | None = None,
        analog_gateway: tuple[str, int] | None = None,
    ) -> None:
        self.layer = layer
        self.registrar = registrar
        self.media = media
        self._extensions = extensions
        self._local = local_address
        self._rng = rng
        self.domain = domain
        self.config = config or CallConfig()
        self.dialplan = dialplan or Dialplan(())
        self._wall = wall_clock or (lambda now: now)
        self.apps = apps
        # Where the analog ports' user agent listens (``appliance.lines.gateway``): a
        # route of type ``analog`` rings its port there; None: no analog ports run.
        self.analog_gateway = analog_gateway
        # Calls hung up while their application still had a message to save: the
        # application lives on until the store has it (``app_event``).
        self._detached: dict[int, Call] = {}
        self._detached_legs: dict[str, int] = {}  # their media leg ids, for a late recording
        self._dialogs = DialogTable()
        self._calls: dict[int, Call] = {}
        self._by_server_key: dict[TransactionKey, Call] = {}
        self._by_dialog_call_id: dict[str, Call] = {}  # both legs' Call-IDs
        self._client: dict[TransactionKey, tuple[Call, Purpose, SipLeg | Fork | None]] = {}
        self._by_leg_id: dict[str, Call] = {}
        # Fork INVITEs of ended calls, as bytes, until their transaction ends: a 2xx
        # that still comes gets ACK and BYE. Bytes, not the call: an ended call must not
        # stay alive (with its SDP and media objects) for Timer M's 32 s.
        self._ended_forks: dict[TransactionKey, tuple[bytes, Peer]] = {}
        self._heap: list[tuple[float, int]] = []
        self._next_number = 1
        self._now = 0.0  # the latest entry point's time, for responses sent deep inside
        self._header: Header = ("User-Agent", self.config.user_agent)

    def __len__(self) -> int:
        return len(self._calls)

    def summaries(self) -> list[CallSummary]:
        """The calls in progress, oldest first."""
        out: list[CallSummary] = []
        for call in self._calls.values():
            state = "application" if call.app is not None else "talking"
            if not call.answered and call.app is None:
                state = "ringing"
            params = call.a_params
            out.append(
                CallSummary(
                    number=call.number,
                    caller=call.caller,
                    caller_name=call.caller_name,
                    callee=call.callee,
                    state=state,
                    started=call.log.started or 0.0,
                    answered=call.log.answered_at,
                    codec=params.codec if params is not None else None,
                    external=call.external,
                )
            )
        return out

    # -- entry points from the SIP front ---------------------------------------------

    def invite(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        caller: str,
        now: float,
        *,
        external: bool = False,
    ) -> list[B2buaAction]:
        """A new INVITE from the authenticated extension ``caller``; ``external``: from
        a trunk, ``caller`` being the number it asserted (shown, never trusted)."""
        out: list[B2buaAction] = []
        self._now = now
        try:
            self._start_call(key, request, peer, caller, now, out, external)
        except NegotiationError as exc:
            out.extend(self._reply(key, request, exc.status, reason=exc.reason[:100]))
        except ParseError as exc:
            out.extend(self._reply(key, request, exc.status, reason=exc.reason[:100]))
        return out

    def request(
        self, key: TransactionKey | None, request: Request, peer: Peer, now: float
    ) -> list[B2buaAction]:
        """A request with a To tag (in a dialog), or an ACK for a 2xx (``key`` None)."""
        out: list[B2buaAction] = []
        self._now = now
        call = self._by_dialog_call_id.get(request.call_id)
        dialog = self._dialogs.match_request(request) if call is not None else None
        if call is None or dialog is None:
            if key is not None and request.method != "ACK":
                out.extend(self._reply(key, request, 481))
            return out
        leg = call.a if call.a.dialog is dialog else call.b
        if leg is None or leg.dialog is not dialog:
            if key is not None:
                out.extend(self._reply(key, request, 481))
            return out
        decision = dialog.receive_request(request, now)
        if isinstance(decision, Ignore):
            return out
        if isinstance(decision, Reject):
            if key is not None:
                out.extend(self._send_response(key, decision.response(request), now))
            return out
        method = request.method
        try:
            if method == "ACK":
                self._ack(call, leg, request, now, out)
            elif key is None:
                return out
            elif method == "BYE":
                out.extend(self._reply(key, request, 200, dialog=dialog))
                self._end(call, Hangup(_cause_of(request)), leg.side, now, out, informed=leg.side)
            elif method in ("INVITE", "UPDATE"):
                self._reinvite(call, leg, key, request, now, out)
            elif method == "INFO":
                self._info(call, leg, key, request, now, out)
            elif method == "PRACK":
                status = 200 if self._prack(call, request) else 481
                out.extend(self._reply(key, request, status, dialog=dialog))
            else:  # OPTIONS in a dialog: a keep-alive
                out.extend(self._reply(key, request, 200, [("Allow", ALLOW)], dialog=dialog))
        except (ParseError, DialogError) as exc:  # NegotiationError (488) included
            if key is not None:
                out.extend(self._reply(key, request, exc.status, reason=exc.reason[:100]))
        self._schedule(call)
        return out

    def cancel(self, invite_key: TransactionKey, cancel: Request, now: float) -> list[B2buaAction]:
        """The caller cancelled its INVITE (the front already answered the CANCEL 200)."""
        out: list[B2buaAction] = []
        self._now = now
        call = self._by_server_key.get(invite_key)
        if call is None or call.answered or call.ended:
            return out
        self._end(call, Hangup(_cause_of(cancel)), Side.CALLER, now, out, informed=Side.CALLER)
        return out

    def response(
        self, key: TransactionKey | None, response: Response, now: float
    ) -> list[B2buaAction]:
        out: list[B2buaAction] = []
        self._now = now
        entry = self._client.get(key) if key is not None else None
        if entry is None:
            ended = self._ended_forks.get(key) if key is not None else None
            if ended is not None and 200 <= response.status < 300:
                self._end_unwanted(ended, response, now, out)
            elif ended is not None and 100 < response.status < 200:
                self._cancel_ended(ended, now, out)
            else:
                self._stray_response(key, response, now, out)
            return out
        call, purpose, target = entry
        try:
            if purpose is Purpose.FORK and isinstance(target, Fork):
                self._fork_response(call, target, response, now, out)
            elif purpose is Purpose.REINVITE and isinstance(target, SipLeg):
                self._reinvite_response(call, target, response, now, out)
            elif purpose is Purpose.BYE or purpose is Purpose.CANCEL:
                pass  # nothing more to do: the call is already ending or ended
            elif isinstance(target, SipLeg) and response.status in (408, 481):
                self._end(call, Hangup(Cause.RECOVERY_ON_TIMER_EXPIRY), target.side, now, out)
        except (DialogError, ParseError) as exc:
            log.info("call %d: unusable response %d: %s", call.number, response.status, exc)
        if response.status >= 200 and key is not None and purpose is not Purpose.FORK:
            self._client.pop(key, None)
        self._schedule(call)
        return out

    def transaction_failed(self, key: TransactionKey, now: float) -> list[B2buaAction]:
        """Timer B/F fired or the transport failed for one of our requests."""
        out: list[B2buaAction] = []
        self._now = now
        entry = self._client.pop(key, None)
        if entry is None:
            return out
        call, purpose, target = entry
        if call.ended:
            return out
        if purpose is Purpose.FORK and isinstance(target, Fork):
            target.done = True
            self._fork_failed(call, 408, None, now, out)
        elif purpose in (Purpose.REINVITE, Purpose.INFO) and isinstance(target, SipLeg):
            # RFC 3261 §12.2.1.2: a timed-out in-dialog request ends the dialog.
            log.info("call %d: %s leg stopped answering", call.number, target.side.value)
            self._end(call, Hangup(Cause.RECOVERY_ON_TIMER_EXPIRY), target.side, now, out)
        return out

    def transaction_ended(self, key: TransactionKey) -> None:
        """The layer forgot a transaction: so do we."""
        self._client.pop(key, None)
        self._by_server_key.pop(key, None)
        self._ended_forks.pop(key, None)

    def hang_up_all(self, now: float) -> list[B2buaAction]:
        """End every call, as the appliance shuts down (Q.850 41, temporary failure:
        the phones may try again when it is back)."""
        out: list[B2buaAction] = []
        self._now = now
        for call in list(self._calls.values()):
            self._end(call, Hangup(Cause.TEMPORARY_FAILURE), Side.SYSTEM, now, out)
        return out

    def media_event(self, event: MediaEvent, now: float) -> list[B2buaAction]:
        out: list[B2buaAction] = []
        self._now = now
        call = self._by_leg_id.get(event.leg_id)
        if call is None and isinstance(event, RecordingStopped):
            number = self._detached_legs.pop(event.leg_id, None)
            detached = self._detached.get(number) if number is not None else None
            if detached is not None and detached.app is not None:
                detached.app.recording = False
                out.append(SaveRecording(detached.number, event.audio))
            return out
        if call is None or call.ended:
            return out
        leg = call.a if call.a.leg_id == event.leg_id else call.b
        if leg is None:
            return out
        if isinstance(event, RtpStopped):
            log.info(
                "call %d: no RTP from the %s for %.0f s",
                call.number,
                leg.side.value,
                event.silent_for,
            )
            self._end(call, Hangup(Cause.RECOVERY_ON_TIMER_EXPIRY), leg.side, now, out)
        elif isinstance(event, DtmfDetected):
            self._dtmf(call, leg, event.dtmf)
            if event.relay_as_info:
                other = self._other(call, leg)
                if other is not None:
                    self._send_info(call, other, event.dtmf, now, out)
            self._app_digit(call, leg, event.dtmf.digit, now, out)
        elif isinstance(event, PlaybackFinished):
            session = call.app
            if session is not None and leg is call.a and session.playing:
                if event.queue == session.queue:
                    session.playing = False
                    session.queue = None
                    self._app_run(call, session, [], now, out, [PlaybackDone(False)])
        elif isinstance(event, RecordingStopped):
            session = call.app
            if session is not None and session.recording:
                session.recording = False
                out.append(SaveRecording(call.number, event.audio))
        self._schedule(call)
        return out

    # -- timers ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, number = heap[0]
            call = self._calls.get(number)
            current = None if call is None else _deadline(call)
            if current == deadline:
                return deadline
            heapq.heappop(heap)  # stale: moved or the call ended
            if current is not None:
                heapq.heappush(heap, (current, number))
        return None

    def handle_timer(self, now: float) -> list[B2buaAction]:
        out: list[B2buaAction] = []
        self._now = now
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, number = heapq.heappop(self._heap)
            call = self._calls[number]
            self._timers(call, now, out)
            self._schedule(call)
        return out

    def _schedule(self, call: Call) -> None:
        deadline = _deadline(call)
        if deadline is not None and not call.ended:
            heapq.heappush(self._heap, (deadline, call.number))

    def _timers(self, call: Call, now: float, out: list[B2buaAction]) -> None:
        session = call.app
        if session is not None and session.timer_at is not None and session.timer_at <= now:
            session.timer_at = None
            self._app_run(call, session, [], now, out, [TimerFired()])
            if call.ended:
                return
        if call.no_answer_at is not None and call.no_answer_at <= now:
            call.no_answer_at = None
            if session is not None and session.transferring is not None:
                for fork in call.forks:
                    self._send_cancel(call, fork, now, out)
                self._transfer_failed(call, session, False, now, out)
                return
            if not call.answered:
                log.info("call %d: no answer in %.0f s", call.number, self.config.no_answer_timeout)
                if self._divert(call, DepositReason.NO_ANSWER, now, out):
                    return
                self._end(call, Fail(Cause.NO_ANSWER), Side.SYSTEM, now, out)
                return
        if call.unacked is not None and call.unacked_next is not None:
            if call.unacked_next <= now:
                if call.unacked_interval >= 32 * self.layer.timers.t1:
                    call.unacked_next = None  # 64*T1 in all: give up resending, go on
                else:
                    out.append(Send(call.unacked, call.a.peer))
                    call.unacked_interval *= 2
                    call.unacked_next = now + call.unacked_interval
        for leg in (call.a, call.b):
            if leg is None or call.ended:
                continue
            if leg.retransmit is not None:
                for action in leg.retransmit.handle_timer(now):
                    if isinstance(action, Resend):
                        out.append(Send(action.response, leg.peer))
                    elif isinstance(action, AckTimedOut):
                        leg.retransmit = None
                        log.info("call %d: the caller never sent ACK", call.number)
                        self._end(call, Hangup(Cause.RECOVERY_ON_TIMER_EXPIRY), leg.side, now, out)
                        return
                if leg.retransmit is not None and leg.retransmit.next_deadline() is None:
                    leg.retransmit = None
            timer = leg.timer
            if timer is None:
                continue
            if timer.expire_at is not None and timer.expire_at <= now:
                log.info("call %d: session timer of the %s expired", call.number, leg.side.value)
                self._end(call, Hangup(Cause.RECOVERY_ON_TIMER_EXPIRY), leg.side, now, out)
                return
            if timer.refresh_at is not None and timer.refresh_at <= now:
                timer.refresh_at = None
                self._reoffer(call, leg, Offer.REFRESH, now, out)
                if timer.refresh_at is None and timer.expire_at is None:
                    timer.retry_soon(now)

    # -- a new call ------------------------------------------------------------------

    def _start_call(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        caller: str,
        now: float,
        out: list[B2buaAction],
        external: bool = False,
    ) -> None:
        if key in self._by_server_key:
            return  # already ours (the layer absorbs retransmissions; belt and braces)
        # a '#' (feature codes like *21#) arrives escaped as %23 (RFC 3261 §25.1)
        callee = unquote(request.uri.user or "")
        offer = sdp_of(request)  # None: a delayed offer, answered in the ACK
        expires = session_expires(request)
        if expires is not None and expires.interval < self.config.min_se:
            out.extend(self._reply(key, request, 422, [("Min-SE", str(self.config.min_se))]))
            return
        if len(self._calls) >= self.config.max_calls:
            out.extend(self._reply(key, request, 503, [("Retry-After", "5")]))
            return
        app_target: AppTarget | None = None
        extension: str | None = None
        bindings: list[Binding] = []
        if callee == self.config.voicemail_own:
            # own mailbox: an outside caller has none, so it is asked which
            app_target = StartMailboxAccess(None if external else caller)
        elif callee == self.config.voicemail_any:
            app_target = StartMailboxAccess(None)
        else:
            decision = self.dialplan.route(callee, self._extensions())
            target = decision.target
            if isinstance(target, RejectTarget):
                out.extend(self._fail_early(key, request, target.cause))
                return
            if isinstance(target, VoicemailTarget):
                app_target = StartVoicemail(target.mailbox)
            elif isinstance(target, IvrTarget):
                app_target = StartMenu(target.menu)
            elif isinstance(target, AnalogTarget):
                line = self._analog_binding(target.port, decision.destination)
                if line is None:
                    out.extend(self._fail_early(key, request, Cause.NO_CIRCUIT_AVAILABLE))
                    return
                bindings = [line]
            elif not isinstance(target, ExtensionTarget):
                out.extend(self._fail_early(key, request, Cause.SERVICE_NOT_IMPLEMENTED))
                return
            else:
                extension = target.number
                bindings = list(self.registrar.lookup(extension, self._wall(now)))
                if not bindings:
                    if not self._has_mailbox(extension):
                        out.extend(self._fail_early(key, request, Cause.SUBSCRIBER_ABSENT))
                        return
                    app_target = StartVoicemail(extension, DepositReason.UNAVAILABLE)
        if app_target is not None and (self.apps is None or offer is None):
            # An application answers at once, so it needs the caller's offer; a
            # delayed offer (answered in the ACK) is not supported for them.
            out.extend(self._fail_early(key, request, Cause.SERVICE_NOT_IMPLEMENTED))
            return
        number = self._next_number
        self._next_number += 1
        try:
            a_media = self.media.open_leg(f"{number}a", peer.host)
        except MediaUnavailable:
            out.extend(self._fail_early(key, request, Cause.RESOURCE_UNAVAILABLE))
            return
        try:
            if bindings:
                first = bindings[0]
                b_host = first.source_host or Uri.parse(first.contact).host
            else:
                b_host = peer.host  # an application: a transfer, if any, rings a phone here
            b_media = self.media.open_leg(f"{number}b", b_host)
        except MediaUnavailable:
            self.media.close(a_media)
            out.extend(self._fail_early(key, request, Cause.RESOURCE_UNAVAILABLE))
            return
        a_answer: SessionDescription | None = None
        a_params: StreamParams | None = None
        if offer is not None:
            try:
                answer = make_answer(offer, local_media(a_media), self._origin(a_media.host))
            except NegotiationError:
                self.media.close(a_media)
                self.media.close(b_media)
                raise
            a_answer = answer.session
            a_params = stream_params(answer.media)
            self.media.configure(a_media, a_params)
        b_offer = make_offer(
            local_media(b_media, prefer=a_params.codec if a_params else None),
            self._origin(b_media.host),
        )
        from_addr = request.from_addr()
        host, port = self._local(peer)
        a_leg = SipLeg(
            Side.CALLER, a_media.leg_id, peer, a_media, our_contact(host, port, peer.transport)
        )
        a_leg.local_sdp = a_answer
        a_leg.params = a_params
        call = Call(
            number=number,
            a=a_leg,
            a_invite=request,
            a_key=key,
            a_tag=self._token(),
            a_offer=offer,
            a_answer=a_answer,
            a_params=a_params,
            caller=caller,
            callee=callee,
            b_call_id=f"{self._token()}{self._token()}@yakyak",
            b_tag=self._token(),
            b_offer=b_offer,
            b_media=b_media,
            log=CallLog(),
            caller_name=from_addr.display_name,
            extension=extension,
            external=external,
        )
        call.reliable = supports(request, "100rel")
        call.rseq = self._rng.randrange(1, 2**31)
        call.log.record(
            Setup(Party(caller, from_addr.display_name), callee, None, request.call_id),
            Side.CALLER,
            now,
        )
        self._calls[number] = call
        self._by_server_key[key] = call
        self._by_dialog_call_id[request.call_id] = call
        self._by_dialog_call_id[call.b_call_id] = call
        self._by_leg_id[a_media.leg_id] = call
        self._by_leg_id[b_media.leg_id] = call
        if app_target is not None:
            if not self._to_app(call, app_target, now, out):
                self._end(call, Fail(Cause.UNALLOCATED_NUMBER), Side.SYSTEM, now, out)
            self._schedule(call)
            return
        call.no_answer_at = now + self.config.no_answer_timeout
        display = from_addr.display_name
        for binding in bindings:
            self._send_fork(call, binding, display, now, out)
        log.debug("call %d: %s -> %s, ringing %d contact(s)", number, caller, callee, len(bindings))
        self._schedule(call)

    def _analog_binding(self, port: int, number: str) -> Binding | None:
        """A binding that reaches analog port ``port`` through the gateway, the number
        to dial (an FXO line) in its user part."""
        gateway = self.analog_gateway
        if gateway is None:
            return None
        host, udp_port = gateway
        shown = f"[{host}]" if ":" in host else host
        return Binding(
            aor=f"line{port}",
            # '#' is not allowed bare in a SIP user part (RFC 3261 §25.1)
            contact=f"sip:{number.replace('#', '%23')}@{shown}:{udp_port};line={port}",
            expires_at=float("inf"),
            call_id="",
            cseq=0,
            source_host=host,
            source_port=udp_port,
        )

    def _send_fork(
        self, call: Call, binding: Binding, display: str | None, now: float, out: list[B2buaAction]
    ) -> None:
        contact = binding.contact
        uri, peer = binding_target(binding)
        transport = peer.transport
        local_host, local_port = self._local(peer)
        via = Via(transport.upper(), local_host, local_port, (("rport", None),))
        via = via.with_param("branch", self.layer.new_branch())
        name = f'"{_quote(display)}" ' if display else ""
        headers: list[Header] = [
            ("Via", str(via)),
            ("Max-Forwards", "70"),
            ("From", f"{name}<sip:{call.caller}@{self.domain}>;tag={call.b_tag}"),
            ("To", f"<sip:{call.ringing or call.callee}@{self.domain}>"),
            ("Call-ID", call.b_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", our_contact(local_host, local_port, transport)),
            ("Allow", ALLOW),
            ("Supported", "100rel, timer"),
            ("Session-Expires", str(self.config.session_expires)),
            ("Min-SE", str(self.config.min_se)),
            self._header,
            ("Content-Type", SDP_TYPE),
        ]
        invite = Request("INVITE", uri, tuple(headers), bytes(call.b_offer))
        try:
            key, actions = self.layer.request(invite, peer, now)
        except TransactionError as exc:
            log.warning("call %d: cannot send INVITE to %s: %s", call.number, contact, exc)
            return
        fork = Fork(key, invite, peer)
        call.forks.append(fork)
        self._client[key] = (call, Purpose.FORK, fork)
        out.extend(actions)

    # -- the callee's answers --------------------------------------------------------

    def _fork_response(
        self, call: Call, fork: Fork, response: Response, now: float, out: list[B2buaAction]
    ) -> None:
        status = response.status
        if status == 100:
            return
        if status < 200:
            fork.provisional = True
            if fork.cancel_wanted:
                self._send_cancel(call, fork, now, out)
                return
        elif status >= 300:
            fork.done = True
        elif self._is_winner(call, response):
            if call.b is not None and call.b.last_ack is not None:
                out.append(Send(call.b.last_ack, call.b.peer))  # the 2xx came again
            return
        if call.ended:
            if 200 <= status < 300:
                self._ack_and_bye(call, fork, response, now, out)
            return
        outcome = self._dialogs.uac_response(fork.invite, response, now)
        if status >= 300:
            self._fork_failed(call, status, response.get("Reason"), now, out)
            return
        dialog = outcome.dialog
        if dialog is None:
            return
        if status < 200:
            self._provisional(call, fork, dialog, response, now, out)
            return
        fork.done = True
        if call.answered and _transferring(call) is None:  # a second fork answered: it loses
            self._ack_and_bye(call, fork, response, now, out)
            return
        self._answered(call, fork, dialog, response, now, out)

    @staticmethod
    def _is_winner(call: Call, response: Response) -> bool:
        leg = call.b
        if leg is None or leg.dialog is None or not call.answered:
            return False
        try:
            return response.to_addr().tag == leg.dialog.id.remote_tag
        except ParseError:
            return False

    def _provisional(
        self,
        call: Call,
        fork: Fork,
        dialog: Dialog,
        response: Response,
        now: float,
        out: list[B2buaAction],
    ) -> None:
        rseq = response.get("RSeq")
        if rseq is not None and supports(response, "100rel") and response.get("Require"):
            # RFC 3262 §4: acknowledge a reliable provisional with PRACK.
            rack = f"{rseq.strip()} {response.cseq().number} INVITE"
            prack = dialog.request("PRACK", now, extra_headers=[("RAck", rack)], rng=self._rng)
            self._send_in_dialog(call, None, prack, fork.peer, Purpose.PRACK, now, out)
        if call.app is not None:
            return  # a transfer: the caller, answered already, hears our ringback
        answer = sdp_of(response)
        ringing = response.status == 180
        # Early media and ringback need the caller's offer answered: not so for a
        # delayed offer, where the phone plays its own ringback on 180.
        can_hear = call.a_answer is not None
        if answer is not None and not call.early_media and can_hear:
            media = apply_answer(call.b_offer, answer)
            leg = self._b_leg(call, fork, dialog)
            leg.params = stream_params(media)
            self.media.configure(leg.media, leg.params)
            self.media.bridge(call.a.media, leg.media)
            call.early_media = True
            call.ringback = False
            call.log.record(Progress(ringing, media_offer(leg.params)), Side.CALLEE, now)
        elif ringing and not call.early_media and not call.ringback and can_hear:
            call.ringback = True
            self.media.play_tone(call.a.media, "ringback")
            call.log.record(Progress(True), Side.CALLEE, now)
        elif call.log.state is CallState.ROUTING:
            call.log.record(Progress(ringing), Side.CALLEE, now)
        status = 183 if response.status == 183 else 180
        if call.unacked is not None:
            return  # RFC 3262 §3: no second reliable 18x before the first is PRACKed
        call.answer_sent_early = True
        out.extend(self._reply_to_caller(call, status, body=call.a_answer, now=now))

    def _b_leg(self, call: Call, fork: Fork, dialog: Dialog) -> SipLeg:
        leg = call.b
        if leg is None or leg.dialog is not dialog:
            host, port = self._local(fork.peer)
            leg = SipLeg(
                Side.CALLEE,
                call.b_media.leg_id,
                fork.peer,
                call.b_media,
                our_contact(host, port, fork.peer.transport),
            )
            leg.dialog = dialog
            leg.local_sdp = call.b_offer
            call.b = leg
        return leg

    def _answered(
        self,
        call: Call,
        fork: Fork,
        dialog: Dialog,
        response: Response,
        now: float,
        out: list[B2buaAction],
    ) -> None:
        leg = self._b_leg(call, fork, dialog)
        ack = dialog.ack_for_2xx(response, rng=self._rng)
        leg.last_ack = ack
        out.append(Send(ack, fork.peer))
        try:
            answer = sdp_of(response)
            if answer is None:
                raise NegotiationError("2xx without SDP answer")
            media = apply_answer(call.b_offer, answer)
        except NegotiationError as exc:
            log.info("call %d: callee's answer unusable: %s", call.number, exc.reason)
            self._bye(call, leg, Cause.INCOMPATIBLE_DESTINATION, now, out)  # its 2xx made a dialog
            session = call.app
            if session is not None and session.transferring is not None:
                for other in call.forks:
                    self._send_cancel(call, other, now, out)
                self._transfer_failed(call, session, False, now, out)
                return
            self._end(call, Fail(Cause.INCOMPATIBLE_DESTINATION), Side.CALLEE, now, out)
            return
        leg.params = stream_params(media)
        self.media.configure(leg.media, leg.params)
        if call.app is not None:
            self._transfer_answered(call, fork, leg, response, now, out)
            return
        body = call.a_answer
        if body is None:
            # Delayed offer: our offer in the 200, the bridge waits for the ACK's answer.
            body = make_offer(
                local_media(call.a.media, prefer=leg.params.codec), self._origin(call.a.media.host)
            )
            call.a.local_sdp = call.a.offer_sent = body
        else:
            self.media.bridge(call.a.media, leg.media)
        call.answered = True
        call.ringback = False
        call.no_answer_at = None
        for other in call.forks:
            if other is not fork and not other.done:
                self._send_cancel(call, other, now, out)
        leg.timer = self._callee_timer(response, now)
        extra = self._caller_timer_headers(call, now)
        call.log.record(Answer(media_offer(leg.params)), Side.CALLEE, now)
        out.extend(self._reply_to_caller(call, 200, extra, body, now))
        log.debug("call %d: answered, callee speaks %s", call.number, leg.params.codec)
        self._schedule(call)

    def _caller_timer_headers(self, call: Call, now: float) -> list[Header]:
        """Start the caller's session timer as we answer; the headers our 2xx needs."""
        call.a.timer = self._caller_timer(call.a_invite, now)
        if call.a.timer is None:
            return []
        refresher = "uas" if call.a.timer.refresher is Refresher.US else "uac"
        return [
            ("Session-Expires", str(SessionExpires(call.a.timer.interval, refresher))),
            ("Require", "timer"),
        ]

    def _fork_failed(
        self, call: Call, status: int, reason: str | None, now: float, out: list[B2buaAction]
    ) -> None:
        session = call.app
        transfer = session is not None and session.transferring is not None
        if (call.answered and not transfer) or call.ended:
            return
        if status >= 600 or call.best_failure is None or _better(status, call.best_failure):
            call.best_failure = status
            call.reason = reason
        pending = [f for f in call.forks if not f.done]
        if status >= 600:
            for fork in pending:
                self._send_cancel(call, fork, now, out)
        elif pending:
            return
        if session is not None and session.transferring is not None:
            busy = call.best_failure in (486, 600)
            self._transfer_failed(call, session, busy, now, out)
            return
        busy = call.best_failure in (486, 600)
        reason_vm = DepositReason.BUSY if busy else DepositReason.UNAVAILABLE
        if self._divert(call, reason_vm, now, out):
            return
        cause = (reason and parse_reason(reason)) or cause_for(call.best_failure or status)
        self._end(call, Fail(cause), Side.CALLEE, now, out, status=call.best_failure)

    def _send_cancel(self, call: Call, fork: Fork, now: float, out: list[B2buaAction]) -> None:
        if fork.done:
            return
        if not fork.provisional:
            fork.cancel_wanted = True  # §9.1: wait for a provisional response
            return
        fork.cancel_wanted = False
        cancel = make_cancel(fork.invite)
        try:
            key, actions = self.layer.request(cancel, fork.peer, now)
        except TransactionError:
            return  # a CANCEL is already on its way
        self._client[key] = (call, Purpose.CANCEL, None)
        out.extend(actions)

    def _ack_and_bye(
        self, call: Call, fork: Fork, response: Response, now: float, out: list[B2buaAction]
    ) -> None:
        """A 2xx we do not want (a losing fork, a call already over): ACK, then BYE."""
        bye = self._ack_unwanted(fork.invite, fork.peer, response, now, out)
        if bye is not None:
            self._send_in_dialog(call, None, bye, fork.peer, Purpose.BYE, now, out)

    def _ack_unwanted(
        self, invite: Request, peer: Peer, response: Response, now: float, out: list[B2buaAction]
    ) -> Request | None:
        """ACK a 2xx to ``invite`` we do not want; returns the BYE that ends its dialog."""
        try:
            dialog = Dialog.from_uac(invite, response, now=now)
        except DialogError as exc:
            log.info("cannot end an unwanted 2xx: %s", exc)
            return None
        out.append(Send(dialog.ack_for_2xx(response, rng=self._rng), peer))
        return dialog.request("BYE", now, extra_headers=[self._header], rng=self._rng)

    def _end_unwanted(
        self, ended: tuple[bytes, Peer], response: Response, now: float, out: list[B2buaAction]
    ) -> None:
        """A 2xx to a fork of a call that is over: ACK it and BYE the dialog it made."""
        data, peer = ended
        invite = parse_message(data)
        if not isinstance(invite, Request):
            return
        bye = self._ack_unwanted(invite, peer, response, now, out)
        if bye is None:
            return
        try:
            _, actions = self.layer.request(bye, peer, now)
        except TransactionError:
            return
        out.extend(actions)

    def _cancel_ended(self, ended: tuple[bytes, Peer], now: float, out: list[B2buaAction]) -> None:
        """A fork we gave up on before it sent anything now rings: CANCEL it (RFC 3261
        §9.1 let us only once it had answered provisionally)."""
        data, peer = ended
        try:
            invite = parse_message(data)
            if not isinstance(invite, Request):
                return
            _, actions = self.layer.request(make_cancel(invite), peer, now)
        except (ParseError, TransactionError):
            return  # a CANCEL is already on its way
        out.extend(actions)

    def _stray_response(
        self, key: TransactionKey | None, response: Response, now: float, out: list[B2buaAction]
    ) -> None:
        """A 2xx retransmission after its transaction ended: repeat our ACK."""
        if not 200 <= response.status < 300:
            return
        try:
            if response.cseq().method != "INVITE":
                return
        except ParseError:
            return
        call = self._by_dialog_call_id.get(response.call_id)
        if call is not None and call.b is not None and call.b.last_ack is not None:
            dialog = self._dialogs.match_response(response)
            if dialog is not None and dialog is call.b.dialog:
                out.append(Send(call.b.last_ack, call.b.peer))
                return

    # -- in the call -----------------------------------------------------------------

    def _ack(
        self, call: Call, leg: SipLeg, ack: Request, now: float, out: list[B2buaAction]
    ) -> None:
        if leg.retransmit is not None:
            leg.retransmit.ack_received()
            leg.retransmit = None
        offer, leg.offer_sent = leg.offer_sent, None
        if offer is None:
            return
        # The answer to the offer we put in a 2xx to an offerless (re-)INVITE.
        try:
            answer = sdp_of(ack)
            if answer is None:
                raise NegotiationError("the ACK carries no answer to our offer")
            leg.params = stream_params(apply_answer(offer, answer))
        except NegotiationError as exc:
            log.info("call %d: %s", call.number, exc.reason)
            self._end(call, Hangup(Cause.INCOMPATIBLE_DESTINATION), leg.side, now, out)
            return
        self.media.configure(leg.media, leg.params)
        if leg is call.a and call.a_params is None and call.b is not None:
            call.a_params = leg.params
            self.media.bridge(call.a.media, call.b.media)

    def _reinvite(
        self,
        call: Call,
        leg: SipLeg,
        key: TransactionKey,
        request: Request,
        now: float,
        out: list[B2buaAction],
    ) -> None:
        """A re-INVITE or an UPDATE from a phone in the call: an offer we answer
        ourselves (we anchor the media) and a hold or resume we pass on; without an
        offer, a session refresh."""
        offer = sdp_of(request)
        if leg.timer is not None:
            leg.timer.refreshed(now)
        extra = self._refresh_headers(leg)
        if offer is None:
            body: SessionDescription | None = None
            if request.method == "INVITE":
                # An offerless re-INVITE: our current SDP is the offer, the answer
                # comes in the ACK. An offerless UPDATE carries no SDP either way.
                body = leg.offer_sent = leg.local_sdp
            out.extend(self._reply_in_dialog(leg, key, request, 200, extra, body, now))
            return
        answer = self._answer_offer(call, leg, offer)
        out.extend(self._reply_in_dialog(leg, key, request, 200, extra, answer, now))
        self._hold_changed(call, leg, is_hold(offer), now, out)

    def _answer_offer(
        self, call: Call, leg: SipLeg, offer: SessionDescription
    ) -> SessionDescription:
        previous = leg.local_sdp
        prefer = leg.params.codec if leg.params is not None else None
        origin = previous.origin if previous is not None else self._origin(leg.media.host)
        origin = replace(origin, sess_version=origin.sess_version + 1)
        answer = make_answer(offer, local_media(leg.media, prefer), origin)
        leg.local_sdp = answer.session
        leg.params = stream_params(answer.media)
        self.media.configure(leg.media, leg.params)
        return answer.session

    def _hold_changed(
        self, call: Call, leg: SipLeg, held: bool, now: float, out: list[B2buaAction]
    ) -> None:
        if held == leg.held:
            return
        leg.held = held
        log.info("call %d: %s %s", call.number, leg.side.value, "holds" if held else "resumes")
        if held:
            if call.log.state in (CallState.ANSWERED, CallState.HELD):
                call.log.record(Hold(), leg.side, now)
        elif call.log.state is CallState.HELD and not any(
            other is not None and other.held for other in (call.a, call.b)
        ):
            call.log.record(Resume(), leg.side, now)
        other = self._other(call, leg)
        if other is not None and call.answered:
            self._reoffer(call, other, Offer.HOLD if held else Offer.RESUME, now, out)
            self._music_on_hold(call, leg, other, held)

    def _reoffer(
        self, call: Call, leg: SipLeg, what: Offer, now: float, out: list[B2buaAction]
    ) -> None:
        """A re-INVITE of ours on ``leg``: hold, resume, or a session refresh."""
        if leg.dialog is None or leg.dialog.is_terminated or leg.local_sdp is None:
            return
        if leg.reinvite is not None:
            leg.queued = what  # §14.1: one INVITE at a time; the latest wish wins
            return
        previous = leg.local_sdp
        if what is Offer.HOLD:
            offer = hold_offer(previous)
        elif what is Offer.RESUME:
            offer = resume_offer(previous)
        else:
            offer = previous  # RFC 4028 §7.4: a refresh may repeat the SDP unchanged
        try:
            invite = leg.dialog.request(
                "INVITE",
                now,
                body=bytes(offer),
                extra_headers=[
                    ("Content-Type", SDP_TYPE),
                    ("Allow", ALLOW),
                    ("Supported", "timer"),
                    *self._refresh_headers(leg),
                    self._header,
                ],
                rng=self._rng,
            )
        except DialogError as exc:
            if exc.status == 491:
                leg.queued = what
                return
            raise
        leg.offer_sent = offer
        key = self._send_in_dialog(call, leg, invite, leg.peer, Purpose.REINVITE, now, out)
        leg.reinvite = key

    def _reinvite_response(
        self, call: Call, leg: SipLeg, response: Response, now: float, out: list[B2buaAction]
    ) -> None:
        dialog = leg.dialog
        if dialog is None or response.status < 200:
            return
        dialog.receive_response(response, now)
        leg.reinvite = None
        offer, leg.offer_sent = leg.offer_sent, None
        if 200 <= response.status < 300:
            out.append(Send(dialog.ack_for_2xx(response, rng=self._rng), leg.peer))
            answer = sdp_of(response)
            if offer is not None and answer is not None:
                try:
                    leg.params = stream_params(apply_answer(offer, answer))
                    leg.local_sdp = offer
                    self.media.configure(leg.media, leg.params)
                except NegotiationError as exc:
                    log.info("call %d: re-INVITE answer unusable: %s", call.number, exc.reason)
            if leg.timer is not None:
                leg.timer.refreshed(now)
        elif response.status in (408, 481) or dialog.is_terminated:
            self._end(call, Hangup(Cause.RECOVERY_ON_TIMER_EXPIRY), leg.side, now, out)
            return
        elif leg.timer is not None and leg.timer.refresh_at is None:
            leg.timer.retry_soon(now)
        if leg.queued is not None and not call.ended:
            what, leg.queued = leg.queued, None
            self._reoffer(call, leg, what, now, out)
        self._schedule(call)

    def _info(
        self,
        call: Call,
        leg: SipLeg,
        key: TransactionKey,
        request: Request,
        now: float,
        out: list[B2buaAction],
    ) -> None:
        dtmf = parse_info(request.get("Content-Type"), request.body)
        if dtmf is None:
            if request.body.strip():
                out.extend(
                    self._reply(key, request, 415, [("Accept", f"{RELAY_TYPE}, {PLAIN_TYPE}")])
                )
            else:
                out.extend(self._reply(key, request, 200, dialog=leg.dialog))
            return
        out.extend(self._reply(key, request, 200, dialog=leg.dialog))
        self._dtmf(call, leg, dtmf)
        self._app_digit(call, leg, dtmf.digit, now, out)
        other = self._other(call, leg)
        if other is None or not call.answered:
            return
        if other.params is not None and other.params.telephone_event_pt is not None:
            self.media.send_dtmf(other.media, dtmf.digit, dtmf.duration_ms)
        else:
            self._send_info(call, other, dtmf, now, out)

    def _send_info(
        self, call: Call, leg: SipLeg, dtmf: Dtmf, now: float, out: list[B2buaAction]
    ) -> None:
        if leg.dialog is None or leg.dialog.is_terminated or leg.dialog.is_early:
            return
        info = leg.dialog.request(
            "INFO",
            now,
            body=relay_body(dtmf.digit, dtmf.duration_ms),
            extra_headers=[("Content-Type", RELAY_TYPE), self._header],
            rng=self._rng,
        )
        self._send_in_dialog(call, leg, info, leg.peer, Purpose.INFO, now, out)

    def _dtmf(self, call: Call, leg: SipLeg, dtmf: Dtmf) -> None:
        leg.dtmf.append(dtmf)
        del leg.dtmf[:-64]  # the stream for features to read; a bound, not a log
        log.info(
            "call %d: DTMF %s from the %s (%s, %d ms)",
            call.number,
            dtmf.digit,
            leg.side.value,
            dtmf.source.value,
            dtmf.duration_ms,
        )

    # -- call applications -------------------------------------------------------------

    def app_event(self, number: int, event: AppEvent, now: float) -> list[B2buaAction]:
        """The store edge's answer to an ``AppRequest`` or ``SaveRecording`` of call
        ``number`` (also after the caller hung up, while the application lives on)."""
        out: list[B2buaAction] = []
        self._now = now
        call = self._calls.get(number) or self._detached.get(number)
        if call is None or call.app is None:
            return out
        session = call.app
        self._app_run(call, session, [], now, out, [event])
        if call.ended:
            if session.app.finished and not session.recording:
                self._drop_detached(number)
        else:
            self._schedule(call)
        return out

    @property
    def apps_pending(self) -> int:
        """Hung-up calls whose application still has a message to keep."""
        return len(self._detached)

    def _drop_detached(self, number: int) -> None:
        call = self._detached.pop(number, None)
        if call is not None:
            self._detached_legs.pop(call.a.leg_id, None)

    def _has_mailbox(self, extension: str) -> bool:
        return self.apps is not None and self.apps.has_mailbox(extension)

    def _divert(
        self, call: Call, reason: DepositReason, now: float, out: list[B2buaAction]
    ) -> bool:
        """Send an unanswered call to its extension's mailbox, if it has one."""
        extension = call.extension
        if extension is None or call.a_answer is None or not self._has_mailbox(extension):
            return False
        log.info("call %d: to the mailbox of %s (%s)", call.number, extension, reason.value)
        call.b = None  # an early dialog being cancelled; its fork gets CANCEL below
        if call.early_media:
            self.media.unbridge(call.a.media)  # the caller talks to the mailbox only
        return self._to_app(call, StartVoicemail(extension, reason), now, out)

    def _to_app(self, call: Call, target: AppTarget, now: float, out: list[B2buaAction]) -> bool:
        """Hand the caller to an application, answering the call first if need be."""
        apps = self.apps
        app = (
            None
            if apps is None
            else apps.create(
                target, call.caller, call.caller_name, self._wall(now), trusted=not call.external
            )
        )
        if app is None:
            log.info("call %d: no application for %s", call.number, target)
            return False
        if not call.answered:
            self._answer_for_app(call, now, out)
        self.media.play_tone(call.a.media, None)
        call.ringback = False
        session = call.app = AppSession(app)
        self._app_run(call, session, app.start(now), now, out)
        return True

    def _answer_for_app(self, call: Call, now: float, out: list[B2buaAction]) -> None:
        call.answered = True
        call.no_answer_at = None
        for fork in call.forks:
            self._send_cancel(call, fork, now, out)
        extra = self._caller_timer_headers(call, now)
        params = call.a_params
        call.log.record(Answer(media_offer(params) if params else None), Side.CALLEE, now)
        out.extend(self._reply_to_caller(call, 200, extra, call.a_answer, now))

    def _app_run(
        self,
        call: Call,
        session: AppSession,
        actions: list[AppAction],
        now: float,
        out: list[B2buaAction],
        events: Collection[AppEvent] = (),
    ) -> None:
        """Carry out ``actions``, then feed ``events`` and what the actions caused back
        to the application until it has nothing more to say."""
        queue: list[AppEvent] = []
        for action in actions:
            self._app_action(call, session, action, now, out, queue)
        queue.extend(events)
        while queue and call.app is session:
            event = queue.pop(0)
            for action in session.app.handle(event, now):
                self._app_action(call, session, action, now, out, queue)
        if call.app is session and session.app.finished and not call.ended:
            self._end(call, Hangup(Cause.NORMAL_CLEARING), Side.CALLEE, now, out)

    def _app_action(
        self,
        call: Call,
        session: AppSession,
        action: AppAction,
        now: float,
        out: list[B2buaAction],
        queue: list[AppEvent],
    ) -> None:
        if isinstance(action, _STORE_ACTIONS):
            # rare (a few per voicemail call) and what an installer looks for in the log
            box = getattr(action, "mailbox", "-")
            log.info("call %d: mailbox %s: %s", call.number, box, type(action).__name__)
            out.append(AppRequest(call.number, action))
            return
        if call.ended or call.app is not session:
            return  # the caller is gone: only mailbox work still counts
        leg = call.a.media
        if isinstance(action, Play):
            language = action.language or session.language
            session.barge_in = action.barge_in and (session.barge_in or not session.playing)
            session.playing = True
            session.queue = self.media.play(leg, action.items, language)
        elif isinstance(action, StopPlayback):
            if self.media.stop_playback(leg) or session.playing:
                session.playing = False
                session.queue = None  # a PlaybackFinished of it still on its way is stale
                queue.append(PlaybackDone(True))
        elif isinstance(action, Record):
            log.info("call %d: recording (at most %.0f s)", call.number, action.max_seconds)
            session.recording = True
            session.stop_digits = action.stop_digits
            self.media.record(leg, action.max_seconds, action.silence_seconds)
        elif isinstance(action, StopRecording):
            audio = self.media.stop_recording(leg, RecordEnd.STOPPED)
            if audio is not None:  # else the engine ended it: RecordingStopped is coming
                session.recording = False
                out.append(SaveRecording(call.number, audio))
        elif isinstance(action, SetTimer):
            session.timer_at = now + action.seconds
        elif isinstance(action, CancelTimer):
            session.timer_at = None
        elif isinstance(action, Transfer):
            self._app_transfer(call, session, action.extension, now, out, queue)
        elif isinstance(action, HangUp):
            self._end(call, Hangup(Cause.NORMAL_CLEARING), Side.CALLEE, now, out)
        else:  # another application takes over
            self.media.stop_playback(leg)
            if session.recording:
                self.media.stop_recording(leg)
            call.app = None
            if not self._to_app(call, action, now, out):
                self._end(call, Hangup(Cause.NORMAL_CLEARING), Side.CALLEE, now, out)

    def _app_digit(
        self, call: Call, leg: SipLeg, digit: str, now: float, out: list[B2buaAction]
    ) -> None:
        session = call.app
        if session is None or leg is not call.a or session.transferring is not None:
            return
        if session.recording and digit in session.stop_digits:
            audio = self.media.stop_recording(call.a.media, RecordEnd.DIGIT)
            if audio is not None:  # else the engine ended it: RecordingStopped is coming
                session.recording = False
                out.append(SaveRecording(call.number, audio))
            return  # the stop key ends the recording and is not a choice
        events: list[AppEvent] = []
        if session.playing and session.barge_in:
            self.media.stop_playback(call.a.media)
            session.playing = False
            session.queue = None  # its PlaybackFinished, if already sent, is stale
            events.append(PlaybackDone(True))
        events.append(DigitPressed(digit))
        self._app_run(call, session, [], now, out, events)

    def _app_transfer(
        self,
        call: Call,
        session: AppSession,
        extension: str,
        now: float,
        out: list[B2buaAction],
        queue: list[AppEvent],
    ) -> None:
        """Ring ``extension`` for the application's caller: a new outgoing INVITE
        (fresh Call-ID and tag) to each of its contacts, ringback meanwhile."""
        known = extension in self._extensions()
        bindings = self.registrar.lookup(extension, self._wall(now)) if known else []
        if not bindings:
            queue.append(TransferFailed(extension, busy=False))
            return
        for fork in call.forks:  # an earlier attempt's: a late 2xx gets ACK and BYE
            self._send_cancel(call, fork, now, out)
            if self._client.pop(fork.key, None) is not None:
                self._ended_forks[fork.key] = (bytes(fork.invite), fork.peer)
        for dialog in self._dialogs.forks(call.b_call_id, call.b_tag):
            self._dialogs.remove(dialog.id)
        self._by_dialog_call_id.pop(call.b_call_id, None)
        call.forks = []
        call.b = None
        call.best_failure = None
        call.reason = None
        call.b_call_id = f"{self._token()}{self._token()}@yakyak"
        call.b_tag = self._token()
        self._by_dialog_call_id[call.b_call_id] = call
        call.ringing = extension
        self.media.stop_playback(call.a.media)
        session.playing = False
        session.transferring = extension
        self.media.play_tone(call.a.media, "ringback")
        for binding in bindings:
            self._send_fork(call, binding, call.caller_name, now, out)
        call.no_answer_at = now + self.config.no_answer_timeout
        log.info("call %d: transferring to %s", call.number, extension)

    def _transfer_answered(
        self,
        call: Call,
        fork: Fork,
        leg: SipLeg,
        response: Response,
        now: float,
        out: list[B2buaAction],
    ) -> None:
        """The extension an application transferred to answered: the application
        ends and the caller talks to it."""
        call.app = None
        call.no_answer_at = None
        self.media.stop_playback(call.a.media)
        self.media.bridge(call.a.media, leg.media)
        for other in call.forks:
            if other is not fork and not other.done:
                self._send_cancel(call, other, now, out)
        leg.timer = self._callee_timer(response, now)
        log.info("call %d: transfer to %s answered", call.number, call.ringing)
        self._schedule(call)

    def _transfer_failed(
        self, call: Call, session: AppSession, busy: bool, now: float, out: list[B2buaAction]
    ) -> None:
        extension = session.transferring or ""
        session.transferring = None
        call.no_answer_at = None
        call.b = None
        self.media.play_tone(call.a.media, None)
        log.info("call %d: transfer to %s failed%s", call.number, extension, " (busy)" * busy)
        self._app_run(call, session, [], now, out, [TransferFailed(extension, busy)])

    def _music_on_hold(self, call: Call, holder: SipLeg, other: SipLeg, held: bool) -> None:
        """The phone ``holder`` put the other on hold: music for the other, from the
        holder's extension's class (configured per extension)."""
        if self.apps is None or not self.config.music_on_hold or call.app is not None:
            return
        if not held:
            self.media.stop_playback(other.media)
            return
        extension = (
            call.caller if holder is call.a else (call.ringing or call.extension or call.callee)
        )
        music = self.apps.music_class(extension)
        if music:
            self.media.play(other.media, [f"moh:{music}"], "en", loop=True)

    # -- ending ----------------------------------------------------------------------

    def _end(
        self,
        call: Call,
        event: Hangup | Fail,
        by: Side,
        now: float,
        out: list[B2buaAction],
        status: int | None = None,
        informed: Side | None = None,
    ) -> None:
        """End the call. ``informed`` is the side whose phone ended it (its BYE or CANCEL
        is being answered); every other phone in the call is told."""
        if call.ended:
            return
        session = call.app
        recorded = None
        if session is not None:
            if session.recording:
                recorded = self.media.stop_recording(call.a.media, RecordEnd.HANG_UP)
                # None: the engine ended it this very turn; its RecordingStopped reaches
                # the detached application (``_detached_legs``)
                session.recording = recorded is None
            self.media.stop_playback(call.a.media)
            session.playing = False
            session.timer_at = None
            if session.transferring is not None:
                for fork in call.forks:
                    self._send_cancel(call, fork, now, out)
        call.ended = True
        cause = event.cause
        # The caller's side.
        if not call.answered:
            if by is Side.CALLER:
                final = 487  # Request Terminated (RFC 3261 §9.2)
            else:
                final = status if status is not None else status_for(cause)
            headers: list[Header] = [("Reason", call.reason or reason_header(cause))]
            out.extend(self._reply_to_caller(call, final, headers, None, now))
        elif informed is not Side.CALLER:
            self._bye(call, call.a, cause, now, out)
        # The callee's side: a fork that answers after this gets ACK and BYE.
        if not call.answered:
            for fork in call.forks:
                self._send_cancel(call, fork, now, out)
        elif call.b is not None and informed is not Side.CALLEE:
            self._bye(call, call.b, cause, now, out)
        try:
            call.log.record(event, by, now)
        except CallStateError:  # e.g. a failure after answer: it is a hang-up then
            call.log.record(Hangup(cause), by, now)
        a_quality = self.media.close(call.a.media)
        b_quality = self.media.close(call.b_media)
        self._forget(call)
        if session is not None:
            self._end_app(call, session, recorded, now, out)
        media_flowed = call.answered or call.early_media
        codec = call.a_params.codec if call.a_params is not None and media_flowed else None
        try:
            record = call.log.cdr()
        except ValueError:
            return
        # One line per call at info (a busy office makes thousands a day); the steps
        # of a call are at debug.
        log.info(
            "call %d: %s -> %s %s, ended by %s, cause %d (%s)",
            call.number,
            call.caller,
            call.callee,
            record.disposition.value,
            by.value,
            cause.value,
            cause.text,
        )
        out.append(CallFinished(record, codec, a_quality, b_quality))

    def _end_app(
        self,
        call: Call,
        session: AppSession,
        recorded: RecordedAudio | None,
        now: float,
        out: list[B2buaAction],
    ) -> None:
        """The application's call is over: it hears so, and lives on (detached) while
        it still has a recording to keep."""
        if recorded is not None:
            out.append(SaveRecording(call.number, recorded))
        self._app_run(call, session, [], now, out, [CallerHungUp()])
        if not session.app.finished or session.recording:
            self._detached[call.number] = call
            if session.recording:
                self._detached_legs[call.a.leg_id] = call.number
            while len(self._detached) > MAX_DETACHED_APPS:
                dropped = next(iter(self._detached))
                log.warning("call %d: application dropped before it finished", dropped)
                self._drop_detached(dropped)

    def _bye(
        self, call: Call, leg: SipLeg, cause: Cause, now: float, out: list[B2buaAction]
    ) -> None:
        dialog = leg.dialog
        if dialog is None or dialog.is_terminated:
            return
        try:
            bye = dialog.request(
                "BYE",
                now,
                extra_headers=[("Reason", reason_header(cause)), self._header],
                rng=self._rng,
            )
        except DialogError:
            return
        self._send_in_dialog(call, leg, bye, leg.peer, Purpose.BYE, now, out)

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.number, None)
        self._by_server_key.pop(call.a_key, None)
        for fork in call.forks:
            if self._client.pop(fork.key, None) is not None:
                self._ended_forks[fork.key] = (bytes(fork.invite), fork.peer)
        for leg in (call.a, call.b):
            if leg is not None and leg.dialog is not None:
                self._dialogs.remove(leg.dialog.id)
        for dialog in self._dialogs.forks(call.b_call_id, call.b_tag):
            self._dialogs.remove(dialog.id)
        self._by_leg_id.pop(call.a.leg_id, None)
        self._by_leg_id.pop(call.b_media.leg_id, None)
        # Call-IDs stay mapped for late in-dialog requests only while the call lives.
        self._by_dialog_call_id.pop(call.a_invite.call_id, None)
        self._by_dialog_call_id.pop(call.b_call_id, None)

    # -- sending ---------------------------------------------------------------------

    def _send_in_dialog(
        self,
        call: Call,
        leg: SipLeg | None,
        request: Request,
        peer: Peer,
        purpose: Purpose,
        now: float,
        out: list[B2buaAction],
    ) -> TransactionKey | None:
        try:
            key, actions = self.layer.request(request, peer, now)
        except TransactionError as exc:
            log.warning("call %d: cannot send %s: %s", call.number, request.method, exc)
            return None
        self._client[key] = (call, purpose, leg)
        out.extend(actions)
        return key

    def _reply_to_caller(
        self,
        call: Call,
        status: int,
        extra: list[Header] | None = None,
        body: SessionDescription | None = None,
        now: float = 0.0,
    ) -> list[Action]:
        headers: list[Header] = list(extra or ())
        headers.append(self._header)
        if status < 300:
            headers.append(("Contact", call.a.contact))
            headers.append(("Allow", ALLOW))
        if body is not None:
            headers.append(("Content-Type", SDP_TYPE))
        if 100 < status < 200 and call.reliable:
            call.rseq += 1
            headers.append(("Require", "100rel"))
            headers.append(("RSeq", str(call.rseq)))
        response = make_response(
            call.a_invite,
            status,
            None,
            headers,
            bytes(body) if body is not None else b"",
            to_tag=call.a_tag,
        )
        if 100 < status < 300 and call.a.dialog is None:
            call.a.dialog = Dialog.from_uas(call.a_invite, response, call.a.contact, now=now)
            self._dialogs.add(call.a.dialog)
        elif call.a.dialog is not None and status >= 200:
            call.a.dialog.response_sent(response, now)
        if 200 <= status < 300 and not call.a.peer.reliable:
            call.a.retransmit = TwoXxRetransmitter(response, now, self.layer.timers)
        if status >= 200:
            call.unacked = call.unacked_next = None  # a final response ends the resends
        elif 100 < status and call.reliable:
            call.unacked = response
            if not call.a.peer.reliable:  # RFC 3262 §3: T1, doubling, for 64*T1
                call.unacked_interval = self.layer.timers.t1
                call.unacked_next = now + call.unacked_interval
        return self._send_response(call.a_key, response, now)

    @staticmethod
    def _prack(call: Call, prack: Request) -> bool:
        """The caller's PRACK (RFC 3262 §3): does its RAck name our pending 18x?"""
        pending = call.unacked
        if pending is None:
            return False
        parts = (prack.get("RAck") or "").split()
        try:
            cseq = call.a_invite.cseq().number
        except ParseError:
            return False
        if parts != [pending.get("RSeq") or "", str(cseq), "INVITE"]:
            return False
        call.unacked = call.unacked_next = None
        return True

    def _reply_in_dialog(
        self,
        leg: SipLeg,
        key: TransactionKey,
        request: Request,
        status: int,
        extra: list[Header],
        body: SessionDescription | None,
        now: float,
    ) -> list[Action]:
        headers = [*extra, ("Contact", leg.contact), ("Allow", ALLOW), self._header]
        if body is not None:
            headers.append(("Content-Type", SDP_TYPE))
        response = make_response(
            request, status, None, headers, bytes(body) if body is not None else b""
        )
        if leg.dialog is not None:
            leg.dialog.response_sent(response, now)
        if request.method == "INVITE" and 200 <= status < 300 and not leg.peer.reliable:
            leg.retransmit = TwoXxRetransmitter(response, now, self.layer.timers)
        return self._send_response(key, response, now)

    def _reply(
        self,
        key: TransactionKey,
        request: Request,
        status: int,
        extra: list[Header] | None = None,
        reason: str | None = None,
        dialog: Dialog | None = None,
    ) -> list[Action]:
        headers = list(extra or ())
        headers.append(self._header)
        tag = None if request.to_addr().tag else self._token()
        response = make_response(request, status, reason, headers, to_tag=tag)
        if dialog is not None:
            dialog.response_sent(response, dialog.last_activity)
        return self._send_response(key, response, self._now)

    def _send_response(self, key: TransactionKey, response: Response, now: float) -> list[Action]:
        try:
            return self.layer.respond(key, response, now)
        except TransactionError as exc:
            log.debug("response %d not sent: %s", response.status, exc)
            return []

    def _fail_early(self, key: TransactionKey, request: Request, cause: Cause) -> list[Action]:
        log.info("call to %s refused: %s", request.uri.user, cause.text)
        return self._reply(key, request, status_for(cause), [("Reason", reason_header(cause))])

    # -- session timers --------------------------------------------------------------

    def _caller_timer(self, invite: Request, now: float) -> SessionTimer | None:
        """RFC 4028 §9: the caller's timer, when it supports them."""
        if not supports(invite, "timer"):
            return None
        asked = session_expires(invite)
        interval = asked.interval if asked is not None else self.config.session_expires
        interval = max(interval, self.config.min_se, min_se(invite) or 0)
        refresher = asked.refresher if asked is not None else None
        # We refresh only if asked to; otherwise the caller does and we watch it.
        return SessionTimer(interval, Refresher.US if refresher == "uas" else Refresher.PEER, now)

    def _callee_timer(self, response: Response, now: float) -> SessionTimer | None:
        """RFC 4028 §7.2: the callee's 2xx says the interval and who refreshes."""
        answered = session_expires(response)
        if answered is None:
            return None
        refresher = Refresher.US if answered.refresher in (None, "uac") else Refresher.PEER
        return SessionTimer(max(answered.interval, MIN_SE_FLOOR), refresher, now)

    @staticmethod
    def _refresh_headers(leg: SipLeg) -> list[Header]:
        timer = leg.timer
        if timer is None:
            return []
        us_uac = leg.side is Side.CALLEE  # we sent the callee's INVITE
        if timer.refresher is Refresher.US:
            who = "uac" if us_uac else "uas"
        else:
            who = "uas" if us_uac else "uac"
        return [("Session-Expires", f"{timer.interval};refresher={who}")]

    # -- small things ----------------------------------------------------------------

    @staticmethod
    def _other(call: Call, leg: SipLeg) -> SipLeg | None:
        return call.b if leg is call.a else call.a

    def _origin(self, host: str) -> Origin:
        return new_origin(self._rng.randrange(1, 2**31), host)

    def _token(self) -> str:
        return format(self._rng.getrandbits(48), "x")


def _deadline(call: Call) -> float | None:
    if call.ended:
        return None
    times = [call.no_answer_at, call.unacked_next]
    if call.app is not None:
        times.append(call.app.timer_at)
    for leg in (call.a, call.b):
        if leg is None:
            continue
        if leg.retransmit is not None:
            times.append(leg.retransmit.next_deadline())
        if leg.timer is not None:
            times.append(leg.timer.next_deadline())
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _transferring(call: Call) -> str | None:
    return call.app.transferring if call.app is not None else None


def _better(status: int, best: int) -> bool:
    """RFC 3261 §16.7 step 6, simplified: busy beats everything, 4xx beats 5xx."""
    if best == 486:
        return False
    if status == 486:
        return True
    return status // 100 < best // 100


def _cause_of(request: Request) -> Cause:
    reason = request.get("Reason")
    return (reason and parse_reason(reason)) or Cause.NORMAL_CLEARING


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
