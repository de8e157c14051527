"""The analog gateway against a scripted registrar/B2BUA: registration with real digest,
calls both ways on FXS and FXO ports, hold and call waiting as ``fxs`` drives them,
message waiting, and bad input (RFC 3261 §9, §10, §12-§15, §17; RFC 3264 §8; RFC 6026).

The server side is built from the project's own SIP pieces (``make_response``,
``Dialog``, ``Authenticator``); everything the gateway sends is re-parsed from its bytes.
Time is a manual clock advanced through ``next_deadline``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from appliance.lines.gateway import (
    AimStream,
    AnalogGateway,
    GatewayAction,
    GatewayConfig,
    LineAccount,
    StreamTarget,
    ToPort,
)
from appliance.lines.port_actions import (
    AnswerIncoming,
    CallAction,
    CallerId,
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
from appliance.pbx.auth import Account, Authenticator, Outcome
from appliance.pbx.causes import Cause, cause_for, status_for
from appliance.sdp.negotiate import LocalMedia, make_answer, make_offer, new_origin
from appliance.sdp.session import Direction, SessionDescription
from appliance.sdp.session import parse as parse_sdp
from appliance.sip.dialog import Dialog
from appliance.sip.digest import NonceBook
from appliance.sip.digest_hash import ALGORITHMS, ha1
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response, make_response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import Send, TimerConfig
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri

T = TypeVar("T")

REALM = "yakyak"
SERVER = Peer("udp", "127.0.0.1", 5060)
SERVER_HOST = "127.0.0.1:5060"
SERVER_CONTACT = "<sip:b2bua@127.0.0.1:5060>"
GW_HOST = "127.0.0.1:5070"
CONFIG = GatewayConfig(host="127.0.0.1", port=5070, server=SERVER, media_host="127.0.0.1")
FAR_MEDIA = "10.0.0.9"  # where the B2BUA anchors the far side's audio
SDP = "application/sdp"


def _ha1s(user: str, password: str, algorithms: Iterable[str] = ALGORITHMS) -> dict[str, str]:
    return {alg: ha1(alg, user, REALM, password) for alg in algorithms}


LINES = (
    LineAccount(1, PortType.FXS, "201", _ha1s("201", "secret-201"), rtp_port=40000),
    # only SHA-256 held: the gateway must pick that challenge, not the first (MD5)
    LineAccount(2, PortType.FXS, "202", _ha1s("202", "secret-202", ["SHA-256"]), 40002),
    LineAccount(3, PortType.FXO, "gw-trunk", _ha1s("gw-trunk", "trunk-pw"), 40004, inbound="500"),
)
ACCOUNTS = {
    "201": Account("201", _ha1s("201", "secret-201")),
    "202": Account("202", _ha1s("202", "secret-202")),
    "gw-trunk": Account("gw-trunk", _ha1s("gw-trunk", "trunk-pw"), asserts_caller=True),
}


# -- reading what the gateway did --------------------------------------------------------


def wire(out: Iterable[GatewayAction]) -> list[Request | Response]:
    """Every message sent, parsed back from the bytes that would go on the wire."""
    messages: list[Request | Response] = []
    for action in out:
        if isinstance(action, Send):
            assert action.peer == SERVER
            data = action.data if action.data is not None else bytes(action.message)
            messages.append(parse_message(data))
    return messages


def requests(out: Iterable[GatewayAction], method: str) -> list[Request]:
    return [m for m in wire(out) if isinstance(m, Request) and m.method == method]


def responses(out: Iterable[GatewayAction], status: int | None = None) -> list[Response]:
    return [
        m for m in wire(out) if isinstance(m, Response) and (status is None or m.status == status)
    ]


def events(out: Iterable[GatewayAction], port: int | None = None) -> list[CallInput]:
    return [a.event for a in out if isinstance(a, ToPort) and (port is None or a.port == port)]


def aims(out: Iterable[GatewayAction]) -> list[AimStream]:
    return [a for a in out if isinstance(a, AimStream)]


def only(items: Sequence[T]) -> T:
    assert len(items) == 1, items
    return items[0]


def sdp_of(message: Request | Response) -> SessionDescription:
    assert (message.get("Content-Type") or "").startswith(SDP)
    return parse_sdp(message.body)


def direction_of(message: Request | Response) -> Direction:
    session = sdp_of(message)
    return session.media[0].direction(session)


def is_our_contact(message: Request | Response, user: str) -> bool:
    """A Contact naming ``user`` at the gateway's address (any URI parameters)."""
    value = message.get("Contact")
    if value is None:
        return False
    uri = NameAddr.parse(value).uri
    return uri.user == user and f"{uri.host}:{uri.port}" == GW_HOST


def far(port: int, *, send: bool = True, codec: str = "PCMU", pt: int = 0) -> StreamTarget:
    return StreamTarget(FAR_MEDIA, port, codec, pt, send)


# -- the scripted server ------------------------------------------------------------------


@dataclass
class Server:
    """The registrar and B2BUA as the gateway sees them, with a manual clock."""

    lines: Sequence[LineAccount] = LINES
    now: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(99))
    timers: TimerConfig = field(default_factory=TimerConfig)

    def __post_init__(self) -> None:
        self.gw = AnalogGateway(CONFIG, self.lines, self.timers, random.Random(7))
        self.auth = Authenticator(REALM, ACCOUNTS, NonceBook(b"n" * 32, 1, 300.0), b"s" * 32)
        self._count = 0

    # the clock and the gateway's inputs

    def advance(self, until: float) -> list[tuple[float, GatewayAction]]:
        """Run every deadline up to ``until``; each action with the time it came."""
        log: list[tuple[float, GatewayAction]] = []
        for _ in range(10_000):
            deadline = self.gw.next_deadline()
            if deadline is None or deadline > until:
                self.now = until
                return log
            self.now = max(self.now, deadline)
            log += [(self.now, a) for a in self.gw.handle_timer(self.now)]
        raise AssertionError("the gateway's deadline never moves on")

    def feed(self, message: Request | Response) -> list[GatewayAction]:
        return self.gw.receive(bytes(message), SERVER, self.now)

    def act(self, port: int, action: CallAction) -> list[GatewayAction]:
        return self.gw.port_action(port, action, self.now)

    # building messages

    def token(self) -> str:
        self._count += 1
        return f"{self.rng.getrandbits(32):08x}{self._count}"

    def offer(self, media_port: int, direction: Direction = Direction.SENDRECV) -> bytes:
        local = LocalMedia(FAR_MEDIA, media_port)
        return bytes(
            make_offer(local, new_origin(self.rng.randrange(1, 2**31), FAR_MEDIA), direction)
        )

    def answer(self, offer: Request | Response, media_port: int) -> bytes:
        local = LocalMedia(FAR_MEDIA, media_port)
        origin = new_origin(self.rng.randrange(1, 2**31), FAR_MEDIA)
        return bytes(make_answer(sdp_of(offer), local, origin).session)

    def request(
        self,
        method: str,
        uri: str,
        *,
        to: str | None = None,
        sender: str = '"Bob" <sip:300@127.0.0.1:5060>',
        call_id: str | None = None,
        cseq: int = 1,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Request:
        headers = [
            ("Via", f"SIP/2.0/UDP {SERVER_HOST};branch=z9hG4bK{self.token()}"),
            ("Max-Forwards", "70"),
            ("From", f"{sender};tag={self.token()}"),
            ("To", to or f"<{uri}>"),
            ("Call-ID", call_id or f"{self.token()}@b2bua"),
            ("CSeq", f"{cseq} {method}"),
            *extra,
        ]
        return Request(method, Uri.parse(uri), tuple(headers), body)

    def invite(
        self,
        uri: str,
        *,
        media_port: int | None = 30000,
        sender: str = '"Bob" <sip:300@127.0.0.1:5060>',
    ) -> Request:
        extra = [("Contact", SERVER_CONTACT)]
        body = b""
        if media_port is not None:
            extra.append(("Content-Type", SDP))
            body = self.offer(media_port)
        return self.request("INVITE", uri, sender=sender, extra=extra, body=body)

    def reply(
        self,
        request: Request,
        status: int,
        *,
        tag: str | None = None,
        body: bytes = b"",
        extra: Iterable[tuple[str, str]] = (),
    ) -> Response:
        headers = list(extra)
        if request.method == "INVITE" and 101 <= status < 300:
            headers.append(("Contact", SERVER_CONTACT))
        if body:
            headers.append(("Content-Type", SDP))
        return make_response(request, status, extra=headers, body=body, to_tag=tag)

    def challenge(self, request: Request) -> Response:
        user = request.from_addr().uri.user
        return make_response(request, 401, extra=self.auth.challenge(user, self.now))

    def verify(self, request: Request) -> str:
        """Check the request's digest credentials as the registrar does; the user."""
        creds = self.auth.credentials(request)
        assert creds is not None, "no Authorization"
        result = self.auth.verify(request, creds, self.now)
        assert result.outcome is Outcome.OK
        return result.username


def fxs_incoming(
    srv: Server, user: str = "201", media_port: int = 30000, sender: str | None = None
) -> tuple[Request, list[GatewayAction]]:
    invite = srv.invite(
        f"sip:{user}@{GW_HOST}",
        media_port=media_port,
        sender=sender or '"Bob" <sip:300@127.0.0.1:5060>',
    )
    return invite, srv.feed(invite)


def answered(
    srv: Server, port: int, invite: Request, *, ack: bool = True
) -> tuple[Response, Dialog, list[GatewayAction]]:
    """The port answers ``invite``; the server builds its dialog and ACKs the 200."""
    out = srv.act(port, AnswerIncoming())
    ok = only(responses(out, 200))
    dialog = Dialog.from_uac(invite, ok, now=srv.now)
    if ack:
        assert srv.feed(dialog.ack_for_2xx(ok, rng=srv.rng)) == []
    return ok, dialog, out


def incoming_up(
    srv: Server, port: int = 1, user: str = "201", media_port: int = 30000
) -> tuple[Request, Response, Dialog]:
    invite, out = fxs_incoming(srv, user, media_port)
    assert isinstance(only(events(out, port)), IncomingCallOffer)
    ok, dialog, _ = answered(srv, port, invite)
    return invite, ok, dialog


def outgoing_up(srv: Server, port: int = 1, number: str = "101") -> tuple[Request, Dialog]:
    """The port calls ``number`` and the server answers at once (no challenge)."""
    invite = only(requests(srv.act(port, PlaceCall(number)), "INVITE"))
    ok = srv.reply(invite, 200, tag="srv-" + srv.token(), body=srv.answer(invite, 30000))
    out = srv.feed(ok)
    assert events(out, port) == [RemoteAnswered()]
    return invite, Dialog.from_uas(invite, ok, SERVER_CONTACT, now=srv.now)


def reinvite_ok(srv: Server, reinvite: Request, media_port: int = 30000) -> list[GatewayAction]:
    """The server accepts the gateway's re-INVITE with an answer; the gateway ACKs."""
    out = srv.feed(srv.reply(reinvite, 200, body=srv.answer(reinvite, media_port)))
    ack = only(requests(out, "ACK"))
    assert ack.call_id == reinvite.call_id
    assert ack.cseq().number == reinvite.cseq().number
    return out


def in_dialog(request: Request, call_id: str) -> bool:
    return request.call_id == call_id and request.to_addr().tag is not None


# == 1. registration ======================================================================


def register_start(srv: Server) -> dict[str, Request]:
    out = srv.gw.handle_timer(0.0)
    return {r.from_addr().uri.user or "": r for r in requests(out, "REGISTER")}


def test_fxs_lines_register_at_start_and_fxo_lines_do_not() -> None:
    srv = Server()
    assert srv.gw.next_deadline() == 0.0
    sent = register_start(srv)
    assert set(sent) == {"201", "202"}  # the FXO line (gw-trunk) never registers
    assert set(srv.gw.registrations.lines) == {1, 2}
    reg = sent["201"]
    assert str(reg.uri) == f"sip:{SERVER_HOST}"
    assert reg.get("Expires") == "600"
    assert is_our_contact(reg, "201")
    assert reg.cseq().method == "REGISTER"
    assert reg.get("Authorization") is None
    assert not any(srv.gw.registered(port) for port in (1, 2, 3))


def test_register_answers_401_with_valid_digest_and_refreshes_at_half_time() -> None:
    srv = Server()
    first = register_start(srv)["201"]
    out = srv.feed(srv.challenge(first))
    second = only(requests(out, "REGISTER"))
    assert second.call_id == first.call_id
    assert second.cseq().number == first.cseq().number + 1
    assert second.get("Expires") == "600"
    assert srv.verify(second) == "201"
    ok = srv.reply(second, 200, extra=[("Contact", f"{second.get('Contact')};expires=600")])
    assert srv.feed(ok) == []
    assert srv.gw.registered(1)
    assert not srv.gw.registered(2)
    log = srv.advance(400.0)
    refresh = [
        (t, r)
        for t, a in log
        for r in requests([a], "REGISTER")
        if r.call_id == first.call_id and r.cseq().number > second.cseq().number
    ]
    assert refresh[0][0] == 300.0  # half the 600 s granted
    assert refresh[0][1].get("Expires") == "600"


def test_register_picks_the_challenge_of_the_algorithm_it_holds() -> None:
    srv = Server()
    first = register_start(srv)["202"]
    out = srv.feed(srv.challenge(first))  # MD5, SHA-256, SHA-512-256 in that order
    second = only(requests(out, "REGISTER"))
    creds = srv.auth.credentials(second)
    assert creds is not None and creds.algorithm == "SHA-256"
    assert srv.verify(second) == "202"


def first_register_at(
    log: list[tuple[float, GatewayAction]], call_id: str, after_cseq: int
) -> float:
    return next(
        t
        for t, a in log
        for r in requests([a], "REGISTER")
        if r.call_id == call_id and r.cseq().number > after_cseq
    )


def test_register_refused_with_403_retries_after_30_s() -> None:
    srv = Server()
    first = register_start(srv)["201"]
    second = only(requests(srv.feed(srv.challenge(first)), "REGISTER"))
    srv.now = 1.0
    assert srv.feed(srv.reply(second, 403)) == []
    assert not srv.gw.registered(1)
    log = srv.advance(100.0)
    assert first_register_at(log, first.call_id, second.cseq().number) == 31.0


def test_second_401_for_the_same_nonce_is_not_answered_again() -> None:
    srv = Server()
    first = register_start(srv)["201"]
    challenge = srv.challenge(first)
    second = only(requests(srv.feed(challenge), "REGISTER"))
    srv.now = 2.0
    again = make_response(
        second, 401, extra=[(k, v) for k, v in challenge.headers if k == "WWW-Authenticate"]
    )
    assert requests(srv.feed(again), "REGISTER") == []
    assert not srv.gw.registered(1)
    log = srv.advance(100.0)
    assert first_register_at(log, first.call_id, second.cseq().number) == 32.0


def test_unanswered_register_times_out_and_is_retried() -> None:
    srv = Server()
    first = register_start(srv)["201"]
    log = srv.advance(200.0)
    same = [t for t, a in log for r in requests([a], "REGISTER") if r == first]
    assert same[:4] == [0.5, 1.5, 3.5, 7.5]  # Timer E, then T2-capped
    assert max(same) < 32.0  # Timer F = 64*T1 ends the transaction
    assert first_register_at(log, first.call_id, first.cseq().number) == 62.0
    assert not srv.gw.registered(1)


def registered(srv: Server, port: int = 1) -> Request:
    sent = register_start(srv)
    user = srv.gw.lines[port].user
    second = only(requests(srv.feed(srv.challenge(sent[user])), "REGISTER"))
    srv.feed(srv.reply(second, 200, extra=[("Contact", f"{second.get('Contact')};expires=600")]))
    assert srv.gw.registered(port)
    return second


def test_stop_unregisters_with_expires_0() -> None:
    srv = Server()
    last = registered(srv)
    srv.now = 10.0
    out = srv.gw.stop(srv.now)
    bye = only(requests(out, "REGISTER"))  # port 2 never registered: nothing for it
    assert bye.call_id == last.call_id
    assert bye.get("Expires") == "0"
    assert bye.get("Contact") == last.get("Contact")
    retry = only(requests(srv.feed(srv.challenge(bye)), "REGISTER"))
    assert retry.get("Expires") == "0"
    assert srv.verify(retry) == "201"


def test_after_unregistering_the_line_is_not_registered() -> None:
    srv = Server()
    registered(srv)
    srv.now = 10.0
    bye = only(requests(srv.gw.stop(srv.now), "REGISTER"))
    retry = only(requests(srv.feed(srv.challenge(bye)), "REGISTER"))
    srv.feed(srv.reply(retry, 200))  # no Contact left: every binding removed
    assert not srv.gw.registered(1)
    log = srv.advance(1000.0)
    assert [r for _, a in log for r in requests([a], "REGISTER") if r.call_id == bye.call_id] == []


def test_refresh_follows_the_expiry_granted_to_our_own_contact() -> None:
    srv = Server()
    first = register_start(srv)["201"]
    second = only(requests(srv.feed(srv.challenge(first)), "REGISTER"))
    contacts = [
        ("Contact", "<sip:201@192.0.2.7:5062>;expires=3600"),  # a desk phone, same AOR
        ("Contact", f"{second.get('Contact')};expires=120"),
    ]
    srv.feed(srv.reply(second, 200, extra=contacts))
    log = srv.advance(400.0)
    assert first_register_at(log, first.call_id, second.cseq().number) == 60.0


def test_stale_bindings_of_this_port_are_removed_and_others_kept() -> None:
    srv = Server()
    first = register_start(srv)["201"]
    second = only(requests(srv.feed(srv.challenge(first)), "REGISTER"))
    ours = second.get("Contact") or ""
    stale = ours.replace("127.0.0.1:5070", "192.0.2.50:5070")  # this port, an earlier run
    contacts = [
        ("Contact", f"{ours};expires=600"),
        ("Contact", f"{stale};expires=500"),
        ("Contact", "<sip:201@192.0.2.7:5062>;expires=3600"),  # a softphone, same AOR
    ]
    out = srv.feed(srv.reply(second, 200, extra=contacts))
    removal = only(requests(out, "REGISTER"))
    assert removal.get("Expires") == "0"
    assert removal.get_all("Contact") == [stale]
    assert srv.gw.registered(1)


# == 2. FXS outgoing calls ================================================================


def test_place_call_sends_invite_with_offer_and_answers_a_401() -> None:
    srv = Server()
    out = srv.act(1, PlaceCall("101"))
    invite = only(wire(out))
    assert isinstance(invite, Request) and invite.method == "INVITE"
    assert str(invite.uri) == f"sip:101@{SERVER_HOST}"
    assert invite.from_addr().uri.user == "201" and invite.from_addr().tag
    assert invite.to_addr().uri.user == "101" and invite.to_addr().tag is None
    assert (invite.cseq().number, invite.cseq().method) == (1, "INVITE")
    offer = sdp_of(invite)
    audio = offer.media[0]
    assert audio.port == 40000
    assert audio.formats[:2] == ("0", "8")  # PCMU, PCMA
    assert offer.connection is not None and offer.connection.address == "127.0.0.1"
    assert events(out) == [] and aims(out) == []

    out = srv.feed(srv.challenge(invite))
    acks = requests(out, "ACK")
    assert len(acks) == 1 and acks[0].top_via() == invite.top_via()  # §17.1.1.3
    again = only(requests(out, "INVITE"))
    assert again.cseq().number == 2
    assert again.call_id == invite.call_id
    assert again.from_addr().tag == invite.from_addr().tag
    assert again.top_via().param("branch") != invite.top_via().param("branch")
    assert again.body == invite.body
    assert srv.verify(again) == "201"
    assert events(out) == []


def test_outgoing_ringing_then_answer() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    tag = "srv-tag"
    out = srv.feed(srv.reply(invite, 100))
    assert out == []
    out = srv.feed(srv.reply(invite, 180, tag=tag))
    assert events(out) == [RemoteProgress(early_media=False)]
    assert aims(out) == []
    out = srv.feed(srv.reply(invite, 200, tag=tag, body=srv.answer(invite, 30000)))
    ack = only(requests(out, "ACK"))
    assert ack.call_id == invite.call_id
    assert ack.cseq().number == 1 and ack.cseq().method == "ACK"
    assert ack.to_addr().tag == tag
    assert str(ack.uri) == "sip:b2bua@127.0.0.1:5060"  # the 2xx's Contact (§13.2.2.4)
    assert events(out) == [RemoteAnswered()]
    assert aims(out) == [AimStream(1, far(30000))]
    assert srv.gw.calls(1)[0].up


def test_early_media_183_aims_the_stream_before_the_answer() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    body = srv.answer(invite, 30010)
    out = srv.feed(srv.reply(invite, 183, tag="t", body=body))
    assert events(out) == [RemoteProgress(early_media=True)]
    assert aims(out) == [AimStream(1, far(30010))]
    out = srv.feed(srv.reply(invite, 200, tag="t", body=body))
    assert events(out) == [RemoteAnswered()]
    assert aims(out) == []  # already aimed there
    assert len(requests(out, "ACK")) == 1


def test_hang_up_an_answered_call_sends_bye() -> None:
    srv = Server()
    invite, dialog = outgoing_up(srv)
    srv.now = 5.0
    out = srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    bye = only(requests(out, "BYE"))
    assert bye.call_id == invite.call_id
    assert bye.cseq().number == 2
    assert bye.from_addr().tag == invite.from_addr().tag
    assert bye.to_addr().tag == dialog.id.local_tag
    assert str(bye.uri) == "sip:b2bua@127.0.0.1:5060"
    assert aims(out) == [AimStream(1, None)]
    assert events(out) == []
    assert srv.gw.calls(1) == []
    assert srv.feed(srv.reply(bye, 200)) == []


def test_busy_answer_fails_the_call_with_user_busy() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    srv.feed(srv.reply(invite, 180, tag="t"))
    out = srv.feed(srv.reply(invite, 486, tag="t"))
    assert events(out) == [CallFailed(Cause.USER_BUSY)]
    ack = only(requests(out, "ACK"))  # the transaction's ACK for a non-2xx
    assert ack.top_via() == invite.top_via()
    assert srv.gw.calls(1) == []


def test_second_challenge_fails_the_call() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    again = only(requests(srv.feed(srv.challenge(invite)), "INVITE"))
    out = srv.feed(srv.challenge(again))
    assert requests(out, "INVITE") == []
    assert events(out) == [CallFailed(cause_for(401))]


def test_unanswered_invite_times_out_as_recovery_on_timer_expiry() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    log = srv.advance(40.0)
    resent = [t for t, a in log for r in requests([a], "INVITE") if r == invite]
    assert resent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # Timer A, §17.1.1.2
    failed = [(t, a.event) for t, a in log if isinstance(a, ToPort)]
    assert failed == [(32.0, CallFailed(Cause.RECOVERY_ON_TIMER_EXPIRY))]


def test_empty_number_fails_at_once() -> None:
    srv = Server()
    out = srv.act(1, PlaceCall(""))
    assert wire(out) == []
    assert events(out) == [CallFailed(Cause.UNALLOCATED_NUMBER)]


# == 3. hanging up before the far end answers =============================================


def test_hang_up_before_any_provisional_waits_for_one_to_cancel() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    srv.now = 0.1
    out = srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    assert wire(out) == []  # §9.1: no CANCEL before a provisional response
    assert events(out) == []
    srv.now = 0.3
    out = srv.feed(srv.reply(invite, 180, tag="t"))
    cancel = only(requests(out, "CANCEL"))
    assert events(out) == []
    assert str(cancel.uri) == str(invite.uri)
    assert cancel.top_via() == invite.top_via()  # same branch (§9.1)
    assert cancel.cseq().number == 1 and cancel.cseq().method == "CANCEL"
    assert cancel.call_id == invite.call_id
    assert cancel.from_addr() == invite.from_addr() and cancel.to_addr() == invite.to_addr()
    assert srv.feed(srv.reply(cancel, 200)) == []
    out = srv.feed(srv.reply(invite, 487, tag="t"))
    assert len(requests(out, "ACK")) == 1
    assert events(out) == []
    assert srv.gw.calls(1) == []


def test_hang_up_after_ringing_cancels_at_once() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    srv.feed(srv.reply(invite, 180, tag="t"))
    out = srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    assert only(requests(out, "CANCEL")).top_via() == invite.top_via()
    assert events(out) == []


def test_a_2xx_crossing_the_cancel_is_acked_and_ended_with_bye() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    cancel = only(requests(srv.feed(srv.reply(invite, 180, tag="t")), "CANCEL"))
    srv.feed(srv.reply(cancel, 200))
    out = srv.feed(srv.reply(invite, 200, tag="t", body=srv.answer(invite, 30000)))
    ack = only(requests(out, "ACK"))
    bye = only(requests(out, "BYE"))
    assert ack.call_id == bye.call_id == invite.call_id
    assert bye.to_addr().tag == "t"
    assert bye.cseq().number > ack.cseq().number
    assert events(out) == []
    assert all(a.target is None for a in aims(out))
    assert srv.gw.calls(1) == []


def test_a_2xx_after_hang_up_without_any_provisional_is_also_ended() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    out = srv.feed(srv.reply(invite, 200, tag="t", body=srv.answer(invite, 30000)))
    assert len(requests(out, "ACK")) == 1
    assert len(requests(out, "BYE")) == 1
    assert requests(out, "CANCEL") == []
    assert events(out) == []


def test_hang_up_then_100_trying_sends_the_cancel() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    out = srv.feed(srv.reply(invite, 100))
    assert only(requests(out, "CANCEL")).top_via() == invite.top_via()


def test_a_retransmitted_2xx_to_our_invite_is_acked_again() -> None:
    srv = Server()
    invite = only(requests(srv.act(1, PlaceCall("101")), "INVITE"))
    ok = srv.reply(invite, 200, tag="t", body=srv.answer(invite, 30000))
    first = only(requests(srv.feed(ok), "ACK"))
    srv.now = 0.5
    out = srv.feed(ok)  # the first ACK was lost
    assert only(requests(out, "ACK")).cseq() == first.cseq()
    assert events(out) == []


# == 4. FXS incoming calls ================================================================


def test_incoming_invite_rings_the_port_with_caller_id() -> None:
    srv = Server()
    invite, out = fxs_incoming(srv)
    ringing = only(responses(out))
    assert ringing.status == 180
    assert ringing.to_addr().tag
    assert ringing.call_id == invite.call_id
    assert events(out) == [IncomingCallOffer("300", "Bob")]
    assert aims(out) == []


def test_invite_naming_the_port_by_line_param_rings_it() -> None:
    srv = Server()
    invite = srv.invite(f"sip:202@{GW_HOST};line=2")
    out = srv.feed(invite)
    assert [r.status for r in responses(out)] == [180]
    assert [(a.port, a.event) for a in out if isinstance(a, ToPort)] == [
        (2, IncomingCallOffer("300", "Bob"))
    ]


def test_anonymous_caller_has_no_number() -> None:
    srv = Server()
    _, out = fxs_incoming(srv, sender='"Anonymous" <sip:anonymous@anonymous.invalid>')
    assert events(out) == [IncomingCallOffer(None, "Anonymous")]
    _, out = fxs_incoming(srv, "202", sender="<sip:anonymous@anonymous.invalid>")
    assert events(out, 2) == [IncomingCallOffer(None, None)]


def test_answer_sends_200_with_sdp_and_aims_the_stream() -> None:
    srv = Server()
    invite, out = fxs_incoming(srv)
    tag = only(responses(out, 180)).to_addr().tag
    ok, _, out = answered(srv, 1, invite, ack=False)
    assert ok.to_addr().tag == tag
    assert is_our_contact(ok, "201")
    answer = sdp_of(ok)
    assert answer.media[0].port == 40000
    assert answer.media[0].formats[0] == "0"
    assert direction_of(ok) is Direction.SENDRECV
    assert aims(out) == [AimStream(1, far(30000))]
    assert events(out) == []


def test_our_200_is_retransmitted_until_the_ack() -> None:
    srv = Server()
    invite, _ = fxs_incoming(srv)
    ok, dialog, _ = answered(srv, 1, invite, ack=False)
    log = srv.advance(2.0)
    assert [t for t, a in log for r in responses([a], 200) if r == ok] == [0.5, 1.5]
    assert srv.feed(dialog.ack_for_2xx(ok, rng=srv.rng)) == []
    log = srv.advance(60.0)
    mine = [a for _, a in log if not isinstance(a, Send) or a.message.call_id == ok.call_id]
    assert mine == []  # no more 200s, no BYE, nothing to the port


def test_no_ack_within_64_t1_ends_the_call_with_bye() -> None:
    srv = Server()
    invite, _ = fxs_incoming(srv)
    ok, _, _ = answered(srv, 1, invite, ack=False)
    log = srv.advance(40.0)
    resent = [t for t, a in log for r in responses([a], 200) if r == ok]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    byes = [(t, r) for t, a in log for r in requests([a], "BYE")]
    assert byes[0][0] == 32.0
    assert byes[0][1].call_id == invite.call_id
    assert all(r == byes[0][1] for _, r in byes)  # one BYE, retransmitted (Timer E)
    assert [(t, a.event) for t, a in log if isinstance(a, ToPort)] == [
        (32.0, RemoteHungUp(held=False))
    ]
    assert [(t, a) for t, a in log if isinstance(a, AimStream)] == [(32.0, AimStream(1, None))]
    assert srv.gw.calls(1) == []


def test_server_bye_hangs_up_the_port() -> None:
    srv = Server()
    invite, _, dialog = incoming_up(srv)
    srv.now = 3.0
    bye = dialog.request("BYE", srv.now, rng=srv.rng)
    out = srv.feed(bye)
    ok = only(responses(out))
    assert ok.status == 200 and ok.cseq() == bye.cseq()
    assert events(out) == [RemoteHungUp(held=False)]
    assert aims(out) == [AimStream(1, None)]
    assert srv.gw.calls(1) == []


def test_cancel_while_ringing() -> None:
    srv = Server()
    invite, _ = fxs_incoming(srv)
    cancel = Request(
        "CANCEL",
        invite.uri,
        (
            *[(k, v) for k, v in invite.headers if k in ("Via", "From", "To", "Call-ID")],
            ("CSeq", "1 CANCEL"),
        ),
    )
    out = srv.feed(cancel)
    assert [r.status for r in responses(out)] == [200, 487]
    assert only(responses(out, 200)).cseq().method == "CANCEL"
    assert only(responses(out, 487)).cseq().method == "INVITE"
    assert events(out) == [OfferCancelled()]
    assert srv.gw.calls(1) == []
    assert srv.act(1, AnswerIncoming()) == []  # too late: nothing to answer


def test_the_200_to_cancel_carries_the_to_tag_of_the_ringing() -> None:
    srv = Server()
    invite, out = fxs_incoming(srv)
    tag = only(responses(out, 180)).to_addr().tag
    cancel = Request(
        "CANCEL",
        invite.uri,
        (
            *[(k, v) for k, v in invite.headers if k in ("Via", "From", "To", "Call-ID")],
            ("CSeq", "1 CANCEL"),
        ),
    )
    out = srv.feed(cancel)
    assert only(responses(out, 200)).to_addr().tag == tag


def test_reject_offer_answers_busy() -> None:
    srv = Server()
    invite, out = fxs_incoming(srv)
    tag = only(responses(out, 180)).to_addr().tag
    out = srv.act(1, RejectOffer(Cause.USER_BUSY))
    busy = only(responses(out))
    assert busy.status == 486 and busy.to_addr().tag == tag
    assert events(out) == []
    assert srv.gw.calls(1) == []


def test_a_third_call_gets_486_without_ringing_the_port() -> None:
    srv = Server()
    incoming_up(srv)
    _, out = fxs_incoming(srv, media_port=30002)
    assert events(out) == [IncomingCallOffer("300", "Bob")]  # call waiting
    _, out = fxs_incoming(srv, media_port=30004)
    assert [r.status for r in responses(out)] == [486]
    assert events(out) == []
    assert len(srv.gw.calls(1)) == 2


def test_invite_for_an_unknown_user_gets_404() -> None:
    srv = Server()
    _, out = fxs_incoming(srv, user="299")
    assert [r.status for r in responses(out)] == [404]
    assert events(out) == []


def test_invite_without_offer_gets_488() -> None:
    srv = Server()
    invite = srv.invite(f"sip:201@{GW_HOST}", media_port=None)
    out = srv.feed(invite)
    assert [r.status for r in responses(out)] == [488]
    assert events(out) == []


def test_invite_with_no_common_codec_gets_488() -> None:
    srv = Server()
    offer = srv.offer(30000).replace(b"RTP/AVP 0 8 101", b"RTP/AVP 18")
    invite = srv.request(
        "INVITE",
        f"sip:201@{GW_HOST}",
        extra=[("Contact", SERVER_CONTACT), ("Content-Type", SDP)],
        body=offer,
    )
    out = srv.feed(invite)
    assert [r.status for r in responses(out)] == [488]
    assert events(out) == []


def test_hang_up_before_the_ack_waits_for_it_to_send_bye() -> None:
    srv = Server()
    invite, _ = fxs_incoming(srv)
    ok, dialog, _ = answered(srv, 1, invite, ack=False)
    out = srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    assert requests(out, "BYE") == []
    out = srv.feed(dialog.ack_for_2xx(ok, rng=srv.rng))
    assert only(requests(out, "BYE")).call_id == invite.call_id


def test_ringing_response_carries_our_contact() -> None:
    srv = Server()
    _, out = fxs_incoming(srv)
    assert is_our_contact(only(responses(out, 180)), "201")


# == 5. hold, swap and call waiting as fxs drives them ====================================


def test_hold_and_resume_an_answered_call() -> None:
    srv = Server()
    invite, dialog = outgoing_up(srv)
    srv.now = 2.0
    out = srv.act(1, HoldCall())
    hold = only(requests(out, "INVITE"))
    assert in_dialog(hold, invite.call_id)
    assert hold.cseq().number == 2
    assert direction_of(hold) is Direction.SENDONLY
    assert sdp_of(hold).origin.sess_version == sdp_of(invite).origin.sess_version + 1  # RFC 3264 §8
    assert aims(out) == [AimStream(1, None)]
    assert events(out) == []
    out = reinvite_ok(srv, hold)
    assert aims(out) == [] and events(out) == []

    srv.now = 4.0
    out = srv.act(1, ResumeCall())
    resume = only(requests(out, "INVITE"))
    assert resume.cseq().number == 3
    assert direction_of(resume) is Direction.SENDRECV
    assert sdp_of(resume).origin.sess_version == sdp_of(hold).origin.sess_version + 1
    assert aims(out) == [AimStream(1, far(30000))]
    out = reinvite_ok(srv, resume)
    assert aims(out) == []


def test_flash_with_a_call_waiting_holds_the_first_and_answers_the_second() -> None:
    srv = Server()
    first_invite, dialog_a = outgoing_up(srv)
    call_a = first_invite.call_id
    srv.now = 1.0
    second_invite, out = fxs_incoming(srv, media_port=30002)
    assert events(out) == [IncomingCallOffer("300", "Bob")]
    assert aims(out) == []  # still talking to the first

    # fxs on flash with a call waiting: [HoldCall(), AnswerIncoming()]
    srv.now = 2.0
    out = srv.act(1, HoldCall())
    hold_a = only(requests(out, "INVITE"))
    assert in_dialog(hold_a, call_a) and direction_of(hold_a) is Direction.SENDONLY
    assert aims(out) == [AimStream(1, None)]
    ok_b, dialog_b, out = answered(srv, 1, second_invite)
    assert ok_b.call_id == second_invite.call_id
    assert aims(out) == [AimStream(1, far(30002))]
    reinvite_ok(srv, hold_a)

    # flash again: swap (hold the second, resume the first)
    srv.now = 3.0
    out = srv.act(1, ResumeCall())
    reinvites = {r.call_id: r for r in requests(out, "INVITE")}
    assert set(reinvites) == {call_a, second_invite.call_id}
    assert direction_of(reinvites[second_invite.call_id]) is Direction.SENDONLY
    assert direction_of(reinvites[call_a]) is Direction.SENDRECV
    assert aims(out) == [AimStream(1, far(30000))]
    reinvite_ok(srv, reinvites[call_a], 30000)
    reinvite_ok(srv, reinvites[second_invite.call_id], 30002)

    # the held (second) call's far end hangs up
    srv.now = 4.0
    out = srv.feed(dialog_b.request("BYE", srv.now, rng=srv.rng))
    assert [r.status for r in responses(out)] == [200]
    assert events(out) == [RemoteHungUp(held=True)]
    assert aims(out) == []  # still talking to the first
    assert [c.call_id for c in srv.gw.calls(1)] == [call_a]


def test_the_active_far_end_hanging_up_leaves_the_held_call() -> None:
    srv = Server()
    first_invite, dialog_a = outgoing_up(srv)
    second_invite, _ = fxs_incoming(srv, media_port=30002)
    hold_a = only(requests(srv.act(1, HoldCall()), "INVITE"))
    _, dialog_b, _ = answered(srv, 1, second_invite)
    reinvite_ok(srv, hold_a)
    out = srv.feed(dialog_b.request("BYE", srv.now, rng=srv.rng))
    assert events(out) == [RemoteHungUp(held=False)]
    assert aims(out) == [AimStream(1, None)]
    out = srv.act(1, ResumeCall())  # fxs: flash in HELD
    resume = only(requests(out, "INVITE"))
    assert resume.call_id == first_invite.call_id
    assert direction_of(resume) is Direction.SENDRECV
    assert aims(out) == [AimStream(1, far(30000))]


def test_hang_up_with_a_held_call_ends_both() -> None:
    srv = Server()
    first_invite, _ = outgoing_up(srv)
    second_invite, _ = fxs_incoming(srv, media_port=30002)
    hold_a = only(requests(srv.act(1, HoldCall()), "INVITE"))
    answered(srv, 1, second_invite)
    reinvite_ok(srv, hold_a)
    out = srv.act(1, HangUpCall(Cause.NORMAL_CLEARING))
    assert {r.call_id for r in requests(out, "BYE")} == {
        first_invite.call_id,
        second_invite.call_id,
    }
    assert srv.gw.calls(1) == []


def test_a_hold_asked_during_a_reinvite_is_sent_after_it() -> None:
    srv = Server()
    invite, _ = outgoing_up(srv)
    hold = only(requests(srv.act(1, HoldCall()), "INVITE"))
    out = srv.act(1, ResumeCall())  # the hold is still unanswered
    assert requests(out, "INVITE") == []  # §14.1: one INVITE at a time
    # the user hears the call again at once, not when the far end has agreed
    assert aims(out) == [AimStream(1, far(30000))]
    out = srv.feed(srv.reply(hold, 200, body=srv.answer(hold, 30000)))
    assert len(requests(out, "ACK")) == 1
    resume = only(requests(out, "INVITE"))
    assert resume.cseq().number == hold.cseq().number + 1
    assert direction_of(resume) is Direction.SENDRECV


def test_hold_resume_hold_during_a_reinvite_ends_held() -> None:
    srv = Server()
    outgoing_up(srv)
    hold = only(requests(srv.act(1, HoldCall()), "INVITE"))
    srv.act(1, ResumeCall())
    srv.act(1, HoldCall())
    out = srv.feed(srv.reply(hold, 200, body=srv.answer(hold, 30000)))
    assert all(direction_of(r) is not Direction.SENDRECV for r in requests(out, "INVITE"))
    assert aims(out) == []


def test_a_hold_refused_with_491_is_retried() -> None:
    srv = Server()
    outgoing_up(srv)
    hold = only(requests(srv.act(1, HoldCall()), "INVITE"))
    srv.feed(srv.reply(hold, 491))
    log = srv.advance(5.0)
    sent = [(t, r) for t, a in log for r in requests([a], "INVITE") if r.call_id == hold.call_id]
    # the new re-INVITE, not its Timer A retransmissions (same CSeq)
    retry = [(t, r) for t, r in sent if r.cseq().number == sent[0][1].cseq().number]
    assert len({r.cseq().number for _, r in sent}) == 1
    assert retry[0][1].cseq().number == hold.cseq().number + 1
    assert 2.1 <= retry[0][0] <= 4.0
    assert direction_of(retry[0][1]) is Direction.SENDONLY


def test_a_481_to_our_reinvite_ends_the_call() -> None:
    srv = Server()
    outgoing_up(srv)
    hold = only(requests(srv.act(1, HoldCall()), "INVITE"))
    out = srv.feed(srv.reply(hold, 481))
    assert events(out) == [RemoteHungUp(held=True)]
    assert srv.gw.calls(1) == []


# == 6. the far end re-offers =============================================================


def test_server_hold_reinvite_is_answered_recvonly_and_we_stop_sending() -> None:
    srv = Server()
    invite, ok, dialog = incoming_up(srv)
    srv.now = 2.0
    body = srv.offer(30000, Direction.SENDONLY)
    reinvite = dialog.request("INVITE", srv.now, body, [("Content-Type", SDP)], rng=srv.rng)
    out = srv.feed(reinvite)
    answer = only(responses(out, 200))
    assert direction_of(answer) is Direction.RECVONLY
    previous, now = sdp_of(ok).origin, sdp_of(answer).origin
    assert (now.username, now.sess_id) == (previous.username, previous.sess_id)
    assert now.sess_version == previous.sess_version + 1  # RFC 3264 §8
    assert aims(out) == [AimStream(1, far(30000, send=False))]
    assert events(out) == []
    dialog.receive_response(answer, srv.now)
    assert srv.feed(dialog.ack_for_2xx(answer, rng=srv.rng)) == []

    out = srv.feed(
        dialog.request("INVITE", srv.now, srv.offer(30000), [("Content-Type", SDP)], rng=srv.rng)
    )
    assert direction_of(only(responses(out, 200))) is Direction.SENDRECV
    assert aims(out) == [AimStream(1, far(30000))]


def test_offerless_reinvite_gets_our_sdp_as_offer() -> None:
    srv = Server()
    _, ok, dialog = incoming_up(srv)
    reinvite = dialog.request("INVITE", srv.now, rng=srv.rng)
    out = srv.feed(reinvite)
    reply = only(responses(out, 200))
    offer = sdp_of(reply)
    assert offer.media[0].port == 40000
    assert offer.origin == sdp_of(ok).origin  # unchanged SDP, unchanged version
    assert events(out) == []


def test_the_answer_in_the_ack_of_an_offerless_reinvite_is_applied() -> None:
    srv = Server()
    _, _, dialog = incoming_up(srv)
    reinvite = dialog.request("INVITE", srv.now, rng=srv.rng)
    reply = only(responses(srv.feed(reinvite), 200))
    dialog.receive_response(reply, srv.now)
    body = srv.answer(reply, 30020)  # the B2BUA moved the far media
    ack = dialog.ack_for_2xx(reply, rng=srv.rng, body=body)
    ack = Request(ack.method, ack.uri, (*ack.headers, ("Content-Type", SDP)), ack.body)
    out = srv.feed(ack)
    assert aims(out) == [AimStream(1, far(30020))]


def test_a_reoffer_while_we_hold_keeps_the_hold() -> None:
    srv = Server()
    _, dialog = outgoing_up(srv)
    hold = only(requests(srv.act(1, HoldCall()), "INVITE"))
    reinvite_ok(srv, hold)
    out = srv.feed(
        dialog.request("INVITE", srv.now, srv.offer(30000), [("Content-Type", SDP)], rng=srv.rng)
    )
    assert direction_of(only(responses(out, 200))) in (Direction.SENDONLY, Direction.INACTIVE)


def test_our_200_to_a_reinvite_is_retransmitted_until_the_ack() -> None:
    srv = Server()
    _, _, dialog = incoming_up(srv)
    srv.advance(100.0)  # registrations and the first call's timers out of the way
    start = srv.now
    reinvite = dialog.request(
        "INVITE",
        srv.now,
        srv.offer(30000, Direction.SENDONLY),
        [("Content-Type", SDP)],
        rng=srv.rng,
    )
    reply = only(responses(srv.feed(reinvite), 200))
    log = srv.advance(start + 2.0)
    assert [t - start for t, a in log for r in responses([a], 200) if r == reply] == [0.5, 1.5]


# == 7. pulse digits during a call ========================================================


def test_pulse_digit_in_a_call_is_sent_as_info() -> None:
    srv = Server()
    invite, _ = outgoing_up(srv)
    out = srv.act(1, DigitInCall("5"))
    info = only(requests(out, "INFO"))
    assert in_dialog(info, invite.call_id)
    assert info.get("Content-Type") == "application/dtmf-relay"
    assert b"Signal=5" in info.body.splitlines()
    assert info.cseq().number == 2
    assert srv.feed(srv.reply(info, 200)) == []


def test_a_digit_without_a_call_up_is_ignored() -> None:
    srv = Server()
    srv.act(1, PlaceCall("101"))
    assert srv.act(1, DigitInCall("5")) == []


# == 8. message waiting and OPTIONS =======================================================


def notify(srv: Server, user: str, waiting: str, event: str = "message-summary") -> Request:
    body = f"Messages-Waiting: {waiting}\r\nMessage-Account: sip:*97@{SERVER_HOST}\r\n"
    return srv.request(
        "NOTIFY",
        f"sip:{user}@{GW_HOST}",
        sender=f"<sip:{user}@{SERVER_HOST}>",
        extra=[
            ("Event", event),
            ("Subscription-State", "active"),
            ("Content-Type", "application/simple-message-summary"),
        ],
        body=body.encode(),
    )


def test_message_summary_notify_lights_and_clears_the_lamp() -> None:
    srv = Server()
    out = srv.feed(notify(srv, "201", "yes"))
    assert [r.status for r in responses(out)] == [200]
    assert events(out) == [MessagesWaiting(True)]
    assert [a.port for a in out if isinstance(a, ToPort)] == [1]
    out = srv.feed(notify(srv, "202", "no"))
    assert [r.status for r in responses(out)] == [200]
    assert events(out, 2) == [MessagesWaiting(False)]


def test_notify_for_an_unknown_user_gets_404() -> None:
    srv = Server()
    out = srv.feed(notify(srv, "299", "yes"))
    assert [r.status for r in responses(out)] == [404]
    assert events(out) == []


def test_notify_for_an_unknown_event_gets_489() -> None:
    srv = Server()
    out = srv.feed(notify(srv, "201", "yes", event="presence"))
    assert [r.status for r in responses(out)] == [489]
    assert events(out) == []


def test_options_gets_200_with_allow() -> None:
    srv = Server()
    out = srv.feed(srv.request("OPTIONS", f"sip:{GW_HOST}"))
    ok = only(responses(out))
    assert ok.status == 200
    allowed = {m.strip() for m in (ok.get("Allow") or "").split(",")}
    assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "NOTIFY", "INFO"} <= allowed


def test_unknown_out_of_dialog_method_gets_405() -> None:
    srv = Server()
    out = srv.feed(srv.request("MESSAGE", f"sip:201@{GW_HOST}"))
    reply = only(responses(out))
    assert reply.status == 405 and reply.get("Allow")


# == 9. FXO lines =========================================================================


def fxo_invite(srv: Server, user: str = "95551234") -> Request:
    return srv.invite(f"sip:{user}@{GW_HOST};line=3", sender=f"<sip:201@{SERVER_HOST}>")


def test_server_invite_to_a_line_dials_out() -> None:
    srv = Server()
    out = srv.feed(fxo_invite(srv))
    assert [r.status for r in responses(out)] == [100]
    assert events(out) == [DialOut("95551234")]
    assert [a.port for a in out if isinstance(a, ToPort)] == [3]
    assert aims(out) == []


def test_escaped_digits_in_the_number_are_unescaped() -> None:
    srv = Server()
    out = srv.feed(fxo_invite(srv, "9%235"))
    assert events(out, 3) == [DialOut("9#5")]


def test_a_busy_line_gets_486() -> None:
    srv = Server()
    srv.feed(fxo_invite(srv))
    out = srv.feed(fxo_invite(srv, "123"))
    assert [r.status for r in responses(out)] == [486]
    assert events(out) == []


def test_line_progress_is_early_media_and_answer_is_200() -> None:
    srv = Server()
    invite = fxo_invite(srv)
    srv.feed(invite)
    out = srv.act(3, OutboundProgress())
    progress = only(responses(out))
    assert progress.status == 183
    tag = progress.to_addr().tag
    assert tag
    assert sdp_of(progress).media[0].port == 40004
    assert aims(out) == [AimStream(3, far(30000))]
    out = srv.act(3, OutboundAnswered())
    ok = only(responses(out))
    assert ok.status == 200 and ok.to_addr().tag == tag
    assert sdp_of(ok).media[0].port == 40004
    dialog = Dialog.from_uac(invite, ok, now=srv.now)
    assert srv.feed(dialog.ack_for_2xx(ok, rng=srv.rng)) == []
    out = srv.feed(dialog.request("BYE", srv.now, rng=srv.rng))
    assert [r.status for r in responses(out)] == [200]
    assert events(out) == [RemoteHungUp(held=False)]
    assert aims(out) == [AimStream(3, None)]


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        (Cause.NORMAL_CLEARING, 480),
        (Cause.NO_CIRCUIT_AVAILABLE, status_for(Cause.NO_CIRCUIT_AVAILABLE)),
        (Cause.USER_BUSY, 486),
    ],
)
def test_line_cleared_before_answer_fails_the_invite(cause: Cause, status: int) -> None:
    srv = Server()
    srv.feed(fxo_invite(srv))
    tag = only(responses(srv.act(3, OutboundProgress()))).to_addr().tag
    out = srv.act(3, HangUpCall(cause))
    failure = only(responses(out))
    assert failure.status == status
    assert failure.to_addr().tag == tag
    assert events(out) == []
    assert aims(out) == [AimStream(3, None)]
    assert srv.gw.calls(3) == []


def test_line_refusing_the_number_rejects_the_invite() -> None:
    srv = Server()
    srv.feed(fxo_invite(srv, "12ab"))
    out = srv.act(3, RejectOffer(Cause.INVALID_NUMBER_FORMAT))
    assert [r.status for r in responses(out)] == [status_for(Cause.INVALID_NUMBER_FORMAT)]


def test_cancel_of_a_dial_out_clears_the_line() -> None:
    srv = Server()
    invite = fxo_invite(srv)
    srv.feed(invite)
    cancel = Request(
        "CANCEL",
        invite.uri,
        (
            *[(k, v) for k, v in invite.headers if k in ("Via", "From", "To", "Call-ID")],
            ("CSeq", "1 CANCEL"),
        ),
    )
    out = srv.feed(cancel)
    assert [r.status for r in responses(out)] == [200, 487]
    assert events(out) == [RemoteHungUp()]


def test_ringing_line_calls_its_inbound_number_as_the_trunk() -> None:
    srv = Server()
    out = srv.act(3, IncomingCall(CallerId("5551234", "ALICE")))
    invite = only(requests(out, "INVITE"))
    assert str(invite.uri) == f"sip:500@{SERVER_HOST}"
    sender = invite.from_addr()
    assert sender.uri.user == "5551234" and sender.display_name == "ALICE"
    assert sdp_of(invite).media[0].port == 40004
    again = only(requests(srv.feed(srv.challenge(invite)), "INVITE"))
    assert srv.verify(again) == "gw-trunk"
    assert again.from_addr().uri.user == "5551234"
    out = srv.feed(srv.reply(again, 180, tag="t"))
    assert events(out) == []  # an FXO line has no ringback to play
    out = srv.feed(srv.reply(again, 200, tag="t", body=srv.answer(again, 30000)))
    assert events(out) == [RemoteAnswered()]
    assert len(requests(out, "ACK")) == 1
    assert aims(out) == [AimStream(3, far(30000))]


def test_ringing_line_without_caller_id_calls_as_anonymous() -> None:
    srv = Server()
    invite = only(requests(srv.act(3, IncomingCall(None)), "INVITE"))
    sender = invite.from_addr()
    assert sender.uri.user == "anonymous"
    assert sender.display is None


def test_refused_line_call_fails_to_the_port() -> None:
    srv = Server()
    invite = only(requests(srv.act(3, IncomingCall(CallerId(None, None))), "INVITE"))
    out = srv.feed(srv.reply(invite, 503, tag="t"))
    assert events(out) == [CallFailed(cause_for(503))]
    assert srv.gw.calls(3) == []


def test_caller_giving_up_cancels_the_line_call() -> None:
    srv = Server()
    invite = only(requests(srv.act(3, IncomingCall(None)), "INVITE"))
    srv.feed(srv.reply(invite, 180, tag="t"))
    out = srv.act(3, HangUpCall(Cause.NORMAL_CLEARING))  # fxo: rings stopped
    assert only(requests(out, "CANCEL")).top_via() == invite.top_via()


# == 10. bad input ========================================================================


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"INVITE sip:201@127.0.0.1 SIP/2.0\r\n",  # no end of headers
        b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n",
    ],
)
def test_garbage_datagram_does_nothing(data: bytes) -> None:
    srv = Server()
    assert srv.gw.receive(data, SERVER, 0.0) == []
    assert srv.gw.calls(1) == []


def test_a_request_with_an_unreadable_via_does_not_raise() -> None:
    srv = Server()
    invite = srv.invite(f"sip:201@{GW_HOST}")
    data = bytes(invite).replace(b"Via: SIP/2.0/UDP", b"Via: nonsense")
    assert events(srv.gw.receive(data, SERVER, 0.0)) == []


def test_an_invite_with_a_malformed_from_gets_400() -> None:
    srv = Server()
    invite = srv.invite(f"sip:201@{GW_HOST}")
    data = bytes(invite).replace(b'From: "Bob" <sip:300', b'From: "Bob <<sip:300')
    out = srv.gw.receive(data, SERVER, 0.0)
    assert [r.status for r in responses(out)] == [400]
    assert events(out) == []


def test_a_hash_in_the_dialled_number_is_escaped() -> None:
    srv = Server()
    out = srv.act(1, PlaceCall("*21#"))
    send = only([a for a in out if isinstance(a, Send)])
    data = send.data if send.data is not None else bytes(send.message)
    assert data.startswith(b"INVITE sip:*21%23@127.0.0.1:5060 SIP/2.0\r\n")


def test_in_dialog_request_for_an_unknown_call_gets_481() -> None:
    srv = Server()
    bye = srv.request(
        "BYE",
        f"sip:201@{GW_HOST}",
        to=f"<sip:201@{GW_HOST}>;tag=gone",
        call_id="nobody@b2bua",
        cseq=7,
    )
    out = srv.feed(bye)
    assert [r.status for r in responses(out)] == [481]
    assert events(out) == []


def test_a_response_for_an_unknown_call_is_dropped() -> None:
    srv = Server()
    stray = srv.request("INVITE", f"sip:101@{SERVER_HOST}", call_id="nobody@b2bua")
    stray = Request(
        "INVITE",
        stray.uri,
        tuple(
            ("Via", f"SIP/2.0/UDP {GW_HOST};branch=z9hG4bKstray") if k == "Via" else (k, v)
            for k, v in stray.headers
        ),
    )
    assert srv.feed(make_response(stray, 200, to_tag="x")) == []
    assert srv.feed(make_response(stray, 486, to_tag="x")) == []


def test_actions_for_an_unknown_port_do_nothing() -> None:
    srv = Server()
    assert srv.act(9, PlaceCall("101")) == []
