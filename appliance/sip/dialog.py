"""SIP dialogs for the B2BUA, sans-IO: RFC 3261 §12 (creation, in-dialog requests,
termination), §13.2.2.4 (ACK for a 2xx), §14 (re-INVITE glare) and §15 (BYE).

Each call leg is one ``Dialog``: the PBX is UAC towards the callee and UAS towards
the caller. A dialog is fed the messages of its leg and returns values; it never
sends, reads a clock or draws randomness of its own (the ``random.Random`` comes in).
Matching messages to dialogs and forking live in ``dialog_table``; the UAS 2xx
retransmission timer (§13.3.1.4) in ``dialog_retransmit``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from appliance.sip.errors import ParseError
from appliance.sip.grammar import is_token, replace_param
from appliance.sip.headers import MAX_CSEQ, NameAddr, Via
from appliance.sip.message import Header, Request, Response, make_response
from appliance.sip.transaction.build import make_cancel
from appliance.sip.transaction.keys import new_branch
from appliance.sip.uri import Uri

MAX_FORWARDS: Final = 70  # RFC 3261 §8.1.1.6
MAX_ROUTES: Final = 32  # a bound on Record-Route entries we keep (STYLE §2.5)
# Requests that refresh the remote target: RFC 3261 §12.2 (INVITE), RFC 3311 §5.1
# (UPDATE), RFC 6665 §4.1.1 / §4.1.2.4 (SUBSCRIBE, NOTIFY).
TARGET_REFRESH: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})
# Requests we send with a Contact (the above, and REFER: RFC 3515 §2.4.1 via RFC 6665).
_WITH_CONTACT: Final = TARGET_REFRESH | {"REFER"}


class DialogError(ValueError):
    """A dialog was used against RFC 3261 §12, or fed a message it cannot read.

    ``status`` is the answer a UAS would give if this came from a request (400 for
    unreadable input, 481 for a dialog that does not exist).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class DialogState(enum.Enum):
    EARLY = "early"  # RFC 3261 §12: created by a 1xx with a To tag
    CONFIRMED = "confirmed"  # created or confirmed by a 2xx
    TERMINATED = "terminated"


class DialogEvent(enum.Enum):
    PROVISIONAL = "1xx"  # a 101-199 for the dialog-creating INVITE
    SUCCESS = "2xx"  # a 2xx for an INVITE (the first confirms; later ones refresh)
    END = "end"  # BYE, a non-2xx for the initial INVITE, 481/408 (§12.2.1.2), TU


TRANSITIONS: Final[dict[tuple[DialogState, DialogEvent], DialogState]] = {
    (DialogState.EARLY, DialogEvent.PROVISIONAL): DialogState.EARLY,
    (DialogState.EARLY, DialogEvent.SUCCESS): DialogState.CONFIRMED,
    (DialogState.EARLY, DialogEvent.END): DialogState.TERMINATED,
    (DialogState.CONFIRMED, DialogEvent.SUCCESS): DialogState.CONFIRMED,
    (DialogState.CONFIRMED, DialogEvent.END): DialogState.TERMINATED,
}


def next_state(state: DialogState, event: DialogEvent) -> DialogState:
    """The state after ``event``; a move missing from ``TRANSITIONS`` is illegal."""
    if (key := (state, event)) not in TRANSITIONS:
        raise DialogError(f"dialog event {event.name} is illegal in state {state.name}")
    return TRANSITIONS[key]


class Role(enum.Enum):
    UAC = "uac"  # we sent the dialog-creating INVITE (callee leg)
    UAS = "uas"  # we received it (caller leg)


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 §12: Call-ID, local tag, remote tag (remote tag "" if the peer had none)."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True, slots=True)
class Accept:
    """The in-dialog request is in order: hand it to the TU."""


@dataclass(frozen=True, slots=True)
class Reject:
    """Answer the request with ``status`` and do nothing else (§12.2.2, §14.2)."""

    status: int
    reason: str
    extra: tuple[Header, ...] = ()

    def response(self, request: Request) -> Response:
        return make_response(request, self.status, self.reason, self.extra)


@dataclass(frozen=True, slots=True)
class Ignore:
    """Drop silently: an ACK that acknowledges nothing we sent (§13.3.1.4)."""

    reason: str


Decision = Accept | Reject | Ignore


class Dialog:
    """One dialog (RFC 3261 §12.1), mutable, fed messages and ``now``.

    Build with ``from_uas`` or ``from_uac``. ``route_set`` is kept in the order the
    Route header of our requests needs (§12.1.1 / §12.1.2).
    """

    __slots__ = (
        "id",
        "role",
        "state",
        "local_addr",
        "remote_addr",
        "local_seq",
        "remote_seq",
        "remote_target",
        "route_set",
        "secure",
        "local_contact",
        "via_template",
        "last_activity",
        "_last_invite",
        "_invite_seq",
        "_outgoing_invite",
        "_incoming_invite",
        "_remote_invite_seq",
        "_pending_targets",
    )

    def __init__(
        self,
        dialog_id: DialogId,
        role: Role,
        state: DialogState,
        *,
        local_addr: NameAddr,
        remote_addr: NameAddr,
        local_seq: int | None,
        remote_seq: int | None,
        remote_target: Uri,
        route_set: tuple[NameAddr, ...],
        secure: bool,
        local_contact: NameAddr,
        via_template: Via,
        now: float = 0.0,
    ) -> None:
        self.id = dialog_id
        self.role = role
        self.state = state
        self.local_addr = local_addr  # From of our requests, with our tag
        self.remote_addr = remote_addr  # To of our requests, with the peer's tag
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.remote_target = remote_target
        self.route_set = route_set
        self.secure = secure
        self.local_contact = local_contact
        self.via_template = via_template  # sent-by for our Via; branch added per request
        self.last_activity = now
        self._last_invite: Request | None = None  # the INVITE a CANCEL would cancel
        self._invite_seq: int | None = None  # CSeq of the last INVITE we sent (for ACK)
        self._outgoing_invite = False  # our INVITE awaits its final response (§14.1)
        self._incoming_invite: int | None = None  # CSeq of a peer INVITE we have not answered
        self._remote_invite_seq: int | None = None  # CSeq an ACK from the peer must carry
        self._pending_targets: dict[int, Uri] = {}  # refresh CSeq -> Contact, until 2xx

    def __repr__(self) -> str:
        return f"Dialog({self.id}, {self.role.name}, {self.state.name})"

    # -- creation (§12.1) ----------------------------------------------------------

    @classmethod
    def from_uas(
        cls,
        invite: Request,
        response: Response,
        local_contact: NameAddr | str,
        *,
        via: Via | None = None,
        now: float = 0.0,
    ) -> Dialog:
        """The caller leg: ``invite`` received, ``response`` (101-299 with To tag) ours.

        §12.1.1: route set is the INVITE's Record-Route in order, remote target its
        Contact, remote sequence its CSeq; the local sequence starts empty. ``via``
        gives the sent-by for our requests; by default it is taken from our Contact.
        """
        try:
            return cls._from_uas(invite, response, local_contact, via, now)
        except ParseError as exc:
            raise DialogError(f"cannot create dialog: {exc.reason}", exc.status) from exc

    @classmethod
    def _from_uas(
        cls,
        invite: Request,
        response: Response,
        local_contact: NameAddr | str,
        via: Via | None,
        now: float,
    ) -> Dialog:
        _check_creating(invite, response)
        contact = NameAddr.parse(local_contact) if isinstance(local_contact, str) else local_contact
        local_addr = response.to_addr()
        remote_addr = invite.from_addr()
        local_tag = local_addr.tag
        if not local_tag:
            raise DialogError("a dialog-creating response needs a To tag (§12.1.1)")
        cseq = invite.cseq()
        state = DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY
        dialog = cls(
            DialogId(invite.call_id, local_tag, remote_addr.tag or ""),
            Role.UAS,
            state,
            local_addr=local_addr,
            remote_addr=remote_addr,
            local_seq=None,
            remote_seq=cseq.number,
            remote_target=_contact_uri(invite) or _target_without_contact(invite),
            route_set=_record_route(invite),
            # §12.1.1 also asks for TLS; the transport edge knows that, we see sips:.
            secure=invite.uri.scheme.lower() == "sips",
            local_contact=contact,
            via_template=via or _via_from_contact(contact),
            now=now,
        )
        dialog._remote_invite_seq = cseq.number
        dialog._incoming_invite = None if response.status >= 200 else cseq.number
        return dialog

    @classmethod
    def from_uac(cls, invite: Request, response: Response, *, now: float = 0.0) -> Dialog:
        """The callee leg: ``invite`` ours, ``response`` a received 101-299 with To tag.

        §12.1.2: route set is the response's Record-Route reversed, remote target its
        Contact, local sequence the INVITE's CSeq; the remote sequence starts empty.
        Our Via sent-by is copied from the INVITE.
        """
        try:
            return cls._from_uac(invite, response, now)
        except ParseError as exc:
            raise DialogError(f"cannot create dialog: {exc.reason}", exc.status) from exc

    @classmethod
    def _from_uac(cls, invite: Request, response: Response, now: float) -> Dialog:
        _check_creating(invite, response)
        local_addr = invite.from_addr()
        remote_addr = response.to_addr()
        if not local_addr.tag:
            raise DialogError("our INVITE has no From tag (§8.1.1.3)")
        if not remote_addr.tag:
            raise DialogError("a dialog-creating response needs a To tag (§12.1.2)")
        contact_text = invite.get("Contact")
        if contact_text is None:
            raise DialogError("our INVITE has no Contact (§8.1.1.8)")
        top = invite.top_via()
        cseq = invite.cseq()
        state = DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY
        dialog = cls(
            DialogId(invite.call_id, local_addr.tag, remote_addr.tag),
            Role.UAC,
            state,
            local_addr=local_addr,
            remote_addr=remote_addr,
            local_seq=cseq.number,
            remote_seq=None,
            remote_target=_contact_uri(response) or _target_without_contact(invite),
            route_set=tuple(reversed(_record_route(response))),
            secure=invite.uri.scheme.lower() == "sips",
            local_contact=NameAddr.parse(contact_text),
            via_template=_without_branch(top),
            now=now,
        )
        dialog._last_invite = invite
        dialog._invite_seq = cseq.number
        dialog._outgoing_invite = response.status < 200
        return dialog

    # -- state ---------------------------------------------------------------------

    @property
    def is_early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def is_terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def terminate(self) -> None:
        """The TU ends the dialog (no ACK for our 2xx, session killed, fork lost)."""
        self._move(DialogEvent.END)

    def _move(self, event: DialogEvent) -> None:
        self.state = next_state(self.state, event)

    # -- requests we send (§12.2.1.1) ------------------------------------------------

    def request(
        self,
        method: str,
        now: float,
        body: bytes = b"",
        extra_headers: Iterable[Header] = (),
        *,
        rng: random.Random,
    ) -> Request:
        """An in-dialog request; CSeq moves on except for ACK and CANCEL.

        ACK acknowledges the last INVITE we sent (§13.2.2.4). CANCEL is the §9.1
        sibling of that INVITE: same branch, Request-URI, Route and CSeq number.
        Sending BYE ends the dialog at once (§15.1.1).
        """
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"cannot send {method} in a terminated dialog", 481)
        if not is_token(method) or method.upper() != method:
            raise DialogError(f"bad method {method[:20]!r}")
        if method == "CANCEL":
            if self._last_invite is None or not self._outgoing_invite:
                raise DialogError("CANCEL needs an INVITE of ours awaiting its answer (§9.1)")
            self.last_activity = now
            return make_cancel(self._last_invite)
        if method == "ACK":
            if self._invite_seq is None:
                raise DialogError("ACK needs an INVITE of ours to acknowledge")
            self.last_activity = now
            return self._build("ACK", self._invite_seq, body, extra_headers, rng)
        if method == "BYE" and self.role is Role.UAS and self.state is DialogState.EARLY:
            raise DialogError("the callee must not send BYE on an early dialog (§15)")
        if method == "INVITE" and (self._outgoing_invite or self._incoming_invite is not None):
            raise DialogError("an INVITE is already in progress in this dialog (§14.1)", 491)
        number = self._next_local_seq(rng)
        request = self._build(method, number, body, extra_headers, rng)
        self.last_activity = now
        if method == "INVITE":
            self._last_invite = request
            self._invite_seq = number
            self._outgoing_invite = True
        elif method == "BYE":
            self._move(DialogEvent.END)
        return request

    def ack_for_2xx(self, response: Response, *, rng: random.Random, body: bytes = b"") -> Request:
        """The ACK for a 2xx to our INVITE (§13.2.2.4): its own transaction, new branch,
        the INVITE's CSeq number, routed like any in-dialog request.

        Built also for a 2xx retransmission, and in a terminated dialog (a forked 2xx
        we will BYE straight after), since every 2xx must be acknowledged.
        """
        try:
            cseq = response.cseq()
        except ParseError as exc:
            raise DialogError(f"cannot acknowledge: {exc.reason}") from exc
        if cseq.method != "INVITE" or not 200 <= response.status < 300:
            raise DialogError(f"only a 2xx to INVITE is ACKed here, not {response.status}")
        return self._build("ACK", cseq.number, body, (), rng)

    def _next_local_seq(self, rng: random.Random) -> int:
        if self.local_seq is None:
            # §12.2.1.1: an empty local sequence starts per §8.1.1.5; kept small so
            # a long call never approaches 2**31.
            self.local_seq = rng.randrange(1, 2**16)
        else:
            self.local_seq += 1
        if self.local_seq > MAX_CSEQ:
            raise DialogError("local CSeq exhausted (§8.1.1.5)", 500)
        return self.local_seq

    def _build(
        self,
        method: str,
        number: int,
        body: bytes,
        extra_headers: Iterable[Header],
        rng: random.Random,
    ) -> Request:
        uri, routes = self._routing()
        via = self.via_template.with_param("branch", new_branch(rng))
        headers: list[Header] = [("Via", str(via)), ("Max-Forwards", str(MAX_FORWARDS))]
        headers.extend(("Route", str(route)) for route in routes)
        headers.append(("From", str(self.local_addr)))
        headers.append(("To", str(self.remote_addr)))
        headers.append(("Call-ID", self.id.call_id))
        headers.append(("CSeq", f"{number} {method}"))
        if method in _WITH_CONTACT:
            headers.append(("Contact", str(self.local_contact)))
        headers.extend(extra_headers)
        return Request(method, uri, tuple(headers), body)

    def _routing(self) -> tuple[Uri, list[NameAddr]]:
        """Request-URI and Route values (§12.2.1.1)."""
        if not self.route_set:
            return request_uri(self.remote_target), []
        first = self.route_set[0]
        if first.uri.param("lr") is not None:
            return request_uri(self.remote_target), list(self.route_set)
        # Strict routing (RFC 2543 proxies): the first route becomes the Request-URI
        # and the remote target rides as the last Route.
        routes = list(self.route_set[1:])
        routes.append(NameAddr(self.remote_target))
        return request_uri(first.uri), routes

    # -- responses we receive (UAC side, §12.2.1.2, §13.2.2.4) -------------------------

    def receive_response(self, response: Response, now: float) -> DialogState:
        """A response to a request of ours in this dialog; returns the new state.

        A 2xx to the initial INVITE confirms an early dialog and recomputes its route
        set; a 2xx to a target refresh replaces the remote target; 481 and 408 end
        the dialog (§12.2.1.2); a non-2xx final to the initial INVITE ends an early
        one (§12.3). Late responses in a terminated dialog change nothing.
        """
        try:
            return self._receive_response(response, now)
        except ParseError as exc:
            raise DialogError(f"bad response: {exc.reason}", exc.status) from exc

    def _receive_response(self, response: Response, now: float) -> DialogState:
        if response.call_id != self.id.call_id or response.from_addr().tag != self.id.local_tag:
            raise DialogError("response does not belong to this dialog", 481)
        remote_tag = response.to_addr().tag
        if self.state is DialogState.TERMINATED or remote_tag is None:
            return self.state  # late retransmission, or a tagless 100
        if remote_tag != self.id.remote_tag:
            raise DialogError("response belongs to another fork of this INVITE", 481)
        cseq = response.cseq()
        status = response.status
        self.last_activity = now
        if cseq.method == "INVITE" and cseq.number == self._invite_seq:
            if status < 200:
                if self.state is DialogState.EARLY:
                    self._move(DialogEvent.PROVISIONAL)
                return self.state
            self._outgoing_invite = False
            if status < 300:
                if self.state is DialogState.EARLY:
                    # §13.2.2.4: the route set is recomputed from the 2xx.
                    self.route_set = tuple(reversed(_record_route(response)))
                self._move(DialogEvent.SUCCESS)
                self.remote_target = _contact_uri(response) or self.remote_target
                return self.state
            if self.state is DialogState.EARLY or status in (408, 481):
                self._move(DialogEvent.END)
            return self.state
        if 200 <= status < 300 and cseq.method in TARGET_REFRESH:
            self.remote_target = _contact_uri(response) or self.remote_target
        elif status in (408, 481) and cseq.method != "BYE":
            self._move(DialogEvent.END)
        return self.state

    # -- requests we receive (UAS side, §12.2.2) ---------------------------------------

    def receive_request(self, request: Request, now: float) -> Decision:
        """Decide on an in-dialog request from the peer; BYE ends the dialog.

        A CSeq lower than the last one seen gets 500 (§12.2.2). An INVITE while one
        of ours is pending gets 491, while one of theirs is unanswered 500 with
        Retry-After (§14.2). A target refresh's Contact is applied when our 2xx goes
        out (``response_sent``), so a refused re-INVITE leaves the target alone.
        """
        try:
            return self._receive_request(request, now)
        except ParseError as exc:
            return Reject(exc.status, exc.reason[:100])

    def _receive_request(self, request: Request, now: float) -> Decision:
        if (
            request.call_id != self.id.call_id
            or request.to_addr().tag != self.id.local_tag
            or (request.from_addr().tag or "") != self.id.remote_tag
        ):
            return Reject(481, "Call/Transaction Does Not Exist")
        cseq = request.cseq()
        if cseq.method != request.method:
            return Reject(400, "CSeq method does not match the request")
        if request.method == "ACK":
            if self.state is DialogState.TERMINATED or cseq.number != self._remote_invite_seq:
                return Ignore("ACK matches no INVITE of this dialog")
            self.last_activity = now
            return Accept()
        if self.state is DialogState.TERMINATED:
            return Reject(481, "Call/Transaction Does Not Exist")
        if request.method == "CANCEL":
            return Accept()  # matched to its INVITE by the transaction layer (§9.2)
        if self.remote_seq is not None and cseq.number < self.remote_seq:
            return Reject(500, "CSeq out of order")
        if request.method == "INVITE":
            if self._incoming_invite is not None:
                return Reject(500, "Previous INVITE pending", (("Retry-After", "1"),))
            if self._outgoing_invite:
                return Reject(491, "Request Pending")
        self.remote_seq = cseq.number
        self.last_activity = now
        if request.method in TARGET_REFRESH:
            target = _contact_uri(request)
            if target is not None:
                self._pending_targets[cseq.number] = target
        if request.method == "INVITE":
            self._incoming_invite = cseq.number
            self._remote_invite_seq = cseq.number
        elif request.method == "BYE":
            self._move(DialogEvent.END)
        return Accept()

    def response_sent(self, response: Response, now: float) -> DialogState:
        """Our response to a request of the peer's in this dialog went out.

        A 2xx to the initial INVITE confirms an early dialog, any non-2xx final ends
        it; a 2xx to a target refresh applies that request's Contact (§12.2.2).
        """
        try:
            cseq = response.cseq()
        except ParseError as exc:
            raise DialogError(f"bad response: {exc.reason}") from exc
        status = response.status
        if status < 200 or self.state is DialogState.TERMINATED:
            return self.state
        self.last_activity = now
        target = self._pending_targets.pop(cseq.number, None)
        if cseq.method == "INVITE" and cseq.number == self._incoming_invite:
            self._incoming_invite = None
            if status < 300:
                self._move(DialogEvent.SUCCESS)
            elif self.state is DialogState.EARLY:
                self._move(DialogEvent.END)
        if target is not None and status < 300 and cseq.method in TARGET_REFRESH:
            self.remote_target = target
        return self.state


def request_uri(uri: Uri) -> Uri:
    """``uri`` without what a Request-URI may not carry: method and headers (§19.1.1)."""
    if uri.headers is None and uri.param("method") is None:
        return uri
    params = tuple((k, v) for k, v in uri.params if k.lower() != "method")
    return Uri(uri.scheme, uri.user, uri.password, uri.host, uri.port, params, None, uri.opaque)


def _check_creating(invite: Request, response: Response) -> None:
    if invite.method not in ("INVITE", "SUBSCRIBE"):  # RFC 6665 §4.1.2.1: SUBSCRIBE too
        raise DialogError(f"dialogs are created by INVITE or SUBSCRIBE, not {invite.method}")
    if not 101 <= response.status < 300:
        raise DialogError(f"a {response.status} does not create a dialog (§12.1)")
    if response.call_id != invite.call_id or response.cseq() != invite.cseq():
        raise DialogError("response does not answer this INVITE")


def _contact_uri(message: Request | Response) -> Uri | None:
    values = message.get_all("Contact")
    if not values:
        return None
    if values[0].strip() == "*":
        raise DialogError("Contact * in a dialog message")
    return NameAddr.parse(values[0]).uri


def _target_without_contact(invite: Request) -> Uri:
    """Interop: a peer that omits Contact (§12.1.1 says MUST) is reached at the
    INVITE's Request-URI, the only target we know of."""
    return invite.uri


def _record_route(message: Request | Response) -> tuple[NameAddr, ...]:
    values = message.get_all("Record-Route")
    if len(values) > MAX_ROUTES:
        raise DialogError(f"more than {MAX_ROUTES} Record-Route entries", 400)
    return tuple(NameAddr.parse(v) for v in values)


def _without_branch(via: Via) -> Via:
    params = tuple((k, v) for k, v in via.params if k.lower() not in ("branch", "received"))
    return Via(via.transport, via.host, via.port, params, via.protocol)


def _via_from_contact(contact: NameAddr) -> Via:
    """Our sent-by, taken from our Contact when the TU gives no Via (§18.1.1)."""
    uri = contact.uri
    transport = uri.param("transport")
    if transport:
        name = transport.upper()
    else:
        name = "TLS" if uri.scheme.lower() == "sips" else "UDP"
    return Via(name, uri.host, uri.port, replace_param((), "rport", None))
