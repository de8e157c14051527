"""The B2BUA through the SIP front, sans-IO: phones are byte builders, time is manual,
the media engine is a recorder (the real one has its own tests on real sockets)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from appliance.pbx.app_events import PlayItem, RecordEnd
from appliance.pbx.auth import Account, Authenticator
from appliance.pbx.b2bua import B2bua, CallConfig, CallFinished
from appliance.pbx.call_apps import CallApps
from appliance.pbx.call_events import Disposition, Dtmf, DtmfSource, Side
from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import Dialplan
from appliance.pbx.guard import AuthGuard, GuardConfig
from appliance.pbx.location import Binding
from appliance.pbx.media_port import (
    DtmfDetected,
    LegQualityReport,
    MediaEvent,
    MediaUnavailable,
    RecordedAudio,
    RtpStopped,
    StreamDirection,
    StreamParams,
)
from appliance.pbx.registrar import Registrar, RegistrarConfig
from appliance.pbx.sip_front import SipFront
from appliance.sip.digest import Credentials, NonceBook, expected_response
from appliance.sip.digest_hash import ha1
from appliance.sip.message import Request, Response
from appliance.sip.parser import parse_message
from appliance.sip.transaction import Send, TimerConfig, TransactionLayer
from appliance.sip.transport import Peer

REALM = "yakyak.local"
WALL = 1_800_000_000.0
PBX = ("192.0.2.1", 5060)
ALICE = Peer("udp", "192.0.2.11", 5060)  # extension 101
BOB1 = Peer("udp", "192.0.2.21", 5060)  # extension 102, desk phone
BOB2 = Peer("udp", "192.0.2.22", 5060)  # extension 102, softphone

OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 192.0.2.11\r\ns=-\r\nc=IN IP4 192.0.2.11\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\na=sendrecv\r\n"
)


def sdp_answer(
    host: str, codec_pt: int = 0, events: bool = True, direction: str = "sendrecv"
) -> str:
    fmts = f"{codec_pt} 101" if events else str(codec_pt)
    te = "a=rtpmap:101 telephone-event/8000\r\n" if events else ""
    return (
        f"v=0\r\no=p 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio 41000 RTP/AVP {fmts}\r\n{te}a={direction}\r\n"
    )


@dataclass
class FakeLeg:
    leg_id: str
    host: str
    port: int


@dataclass
class RecordingMedia:
    """Records what call control asked; ports from a tiny pool."""

    free: list[int] = field(default_factory=lambda: list(range(10000, 10040, 2)))
    legs: dict[str, FakeLeg] = field(default_factory=dict)
    params: dict[str, StreamParams] = field(default_factory=dict)
    bridges: list[tuple[str, str]] = field(default_factory=list)
    tones: dict[str, str | None] = field(default_factory=dict)
    sent_dtmf: list[tuple[str, str]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    played: list[tuple[str, tuple[PlayItem, ...], bool]] = field(default_factory=list)
    playing: dict[str, bool] = field(default_factory=dict)
    recording: dict[str, float] = field(default_factory=dict)
    unbridged: list[str] = field(default_factory=list)
    queues: int = 0

    def open_leg(self, leg_id: str, peer_host: str) -> FakeLeg:
        if not self.free:
            raise MediaUnavailable("no ports")
        leg = FakeLeg(leg_id, PBX[0], self.free.pop(0))
        self.legs[leg_id] = leg
        return leg

    def configure(self, leg: FakeLeg, params: StreamParams) -> None:
        self.params[leg.leg_id] = params

    def bridge(self, a: FakeLeg, b: FakeLeg) -> None:
        self.bridges.append((a.leg_id, b.leg_id))
        self.tones[a.leg_id] = self.tones[b.leg_id] = None

    def play_tone(self, leg: FakeLeg, tone: str | None) -> None:
        self.tones[leg.leg_id] = tone

    def send_dtmf(self, leg: FakeLeg, digit: str, duration_ms: int) -> None:
        self.sent_dtmf.append((leg.leg_id, digit))

    def play(
        self, leg: FakeLeg, items: Sequence[PlayItem], language: str, *, loop: bool = False
    ) -> int:
        self.played.append((leg.leg_id, tuple(items), loop))
        if not self.playing.get(leg.leg_id):
            self.queues += 1
        self.playing[leg.leg_id] = True
        return self.queues

    def unbridge(self, leg: FakeLeg) -> None:
        self.unbridged.append(leg.leg_id)

    def stop_playback(self, leg: FakeLeg) -> bool:
        return self.playing.pop(leg.leg_id, False)

    def record(self, leg: FakeLeg, max_seconds: float, silence_seconds: float) -> None:
        self.recording[leg.leg_id] = max_seconds

    def stop_recording(
        self, leg: FakeLeg, end: RecordEnd = RecordEnd.STOPPED
    ) -> RecordedAudio | None:
        if self.recording.pop(leg.leg_id, None) is None:
            return None
        return RecordedAudio(b"\0\0" * 8000 * 3, end)

    def close(self, leg: FakeLeg) -> LegQualityReport:
        if leg.leg_id not in self.closed:
            self.closed.append(leg.leg_id)
            self.free.append(leg.port)
        return LegQualityReport(500, 499, 1, 2.5, None, None)


class Rig:
    def __init__(
        self,
        contacts: tuple[Peer, ...] = (BOB1,),
        dialplan: Dialplan | None = None,
        apps: CallApps | None = None,
        **config: float,
    ) -> None:
        accounts = {
            n: Account(n, {"MD5": ha1("MD5", n, REALM, f"pw-{n}")}) for n in ("101", "102", "103")
        }
        secret = b"k" * 32
        auth = Authenticator(REALM, accounts, NonceBook(secret, 1, 300), secret)
        bindings = [
            Binding(
                "102",
                f"sip:102@{p.host}:{p.port}",
                WALL + 3600,
                f"reg-{p.host}",
                1,
                source_host=p.host,
                source_port=p.port,
            )
            for p in contacts
        ]
        registrar = Registrar(RegistrarConfig(), bindings)
        layer = TransactionLayer(TimerConfig(), random.Random(1))
        self.media = RecordingMedia()
        self.calls = B2bua(
            layer,
            registrar,
            self.media,
            lambda: accounts.keys(),
            lambda peer: PBX,
            random.Random(3),
            domain=REALM,
            config=CallConfig(**config),  # type: ignore[arg-type]
            dialplan=dialplan,
            wall_clock=lambda now: now + WALL,
            apps=apps,
        )
        self.front = SipFront(
            layer,
            auth,
            AuthGuard(GuardConfig()),
            registrar,
            random.Random(2),
            wall_clock=lambda now: now + WALL,
            calls=self.calls,
        )
        self.now = 0.0
        self.inbox: dict[Peer, list[Request | Response]] = {}
        self.finished: list[CallFinished] = []
        self.out: list[object] = []
        self._branch = 0

    # -- plumbing --
    def deliver(self, data: str | bytes, peer: Peer) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self._take(self.front.receive(raw, peer, self.now))

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (deadline := self.front.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self._take(self.front.handle_timer(self.now))
        self.now = end

    def _take(self, actions: list[object]) -> None:
        for action in actions:
            if isinstance(action, Send):
                peer = Peer(action.peer.transport, action.peer.host, action.peer.port)
                message = parse_message(bytes(action.message))
                self.inbox.setdefault(peer, []).append(message)
            elif isinstance(action, CallFinished):
                self.finished.append(action)
            else:
                self.out.append(action)  # for call applications: store requests

    def take(self, peer: Peer) -> list[Request | Response]:
        return self.inbox.pop(peer, [])

    def requests(self, peer: Peer, method: str) -> list[Request]:
        return [
            m for m in self.inbox.get(peer, []) if isinstance(m, Request) and m.method == method
        ]

    def responses(self, peer: Peer) -> list[Response]:
        return [m for m in self.inbox.get(peer, []) if isinstance(m, Response)]

    def branch(self) -> str:
        self._branch += 1
        return f"z9hG4bKt{self._branch}"

    # -- the caller --
    def invite(self, callee: str = "102", body: str = OFFER, extra: str = "") -> Request:
        def build(auth: str, cseq: int, branch: str) -> str:
            return (
                f"INVITE sip:{callee}@{REALM} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {ALICE.host}:{ALICE.port};branch={branch};rport\r\n"
                f'From: "Alice" <sip:101@{REALM}>;tag=a1\r\nTo: <sip:{callee}@{REALM}>\r\n'
                f"Call-ID: call-a\r\nCSeq: {cseq} INVITE\r\n"
                f"Contact: <sip:101@{ALICE.host}:{ALICE.port}>\r\n{auth}{extra}"
                f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            )

        self.deliver(build("", 1, self.branch()), ALICE)
        (challenge,) = self.responses(ALICE)
        assert challenge.status == 401
        self.take(ALICE)
        header = challenge.get("WWW-Authenticate") or ""
        nonce = header.split('nonce="')[1].split('"')[0]
        creds = Credentials(
            "101", REALM, nonce, f"sip:{REALM}", "", "MD5", "c0", "auth", "00000001"
        )
        digest = expected_response(creds, ha1("MD5", "101", REALM, "pw-101"), "INVITE")
        auth = (
            f'Authorization: Digest username="101", realm="{REALM}", nonce="{nonce}", '
            f'uri="sip:{REALM}", response="{digest}", algorithm=MD5, cnonce="c0", '
            "qop=auth, nc=00000001\r\n"
        )
        text = build(auth, 2, self.branch())
        self.deliver(text, ALICE)
        message = parse_message(text.encode())
        assert isinstance(message, Request)
        return message

    # -- the callee's phones --
    def answer(
        self, peer: Peer, invite: Request, status: int, tag: str, body: str = "", extra: str = ""
    ) -> None:
        vias = "".join(f"Via: {v}\r\n" for v in invite.get_all("Via"))
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        contact = f"Contact: <sip:102@{peer.host}:{peer.port}>\r\n" if status < 300 else ""
        self.deliver(
            f"SIP/2.0 {status} X\r\n{vias}From: {invite.get('From')}\r\n"
            f"To: {invite.get('To')};tag={tag}\r\nCall-ID: {invite.call_id}\r\n"
            f"CSeq: {invite.get('CSeq')}\r\n{contact}{extra}{ctype}"
            f"Content-Length: {len(body)}\r\n\r\n{body}",
            peer,
        )

    def respond_to(self, peer: Peer, request: Request, status: int = 200, body: str = "") -> None:
        """A phone answers a request we sent it (the To tag is already there)."""
        vias = "".join(f"Via: {v}\r\n" for v in request.get_all("Via"))
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        self.deliver(
            f"SIP/2.0 {status} X\r\n{vias}From: {request.get('From')}\r\n"
            f"To: {request.get('To')}\r\nCall-ID: {request.call_id}\r\n"
            f"CSeq: {request.get('CSeq')}\r\nContact: <sip:x@{peer.host}:{peer.port}>\r\n"
            f"{ctype}Content-Length: {len(body)}\r\n\r\n{body}",
            peer,
        )

    def in_dialog(
        self,
        peer: Peer,
        final: Response | Request,
        method: str,
        cseq: int,
        body: str = "",
        ctype: str = "application/sdp",
        caller: bool = True,
    ) -> None:
        """A request from a phone inside the dialog ``final`` established."""
        if caller:  # alice: From is her tag, To has ours
            frm, to = final.get("From"), final.get("To")
        else:  # bob: the dialog's From/To swap
            frm, to = final.get("To"), final.get("From")
        ctype_line = f"Content-Type: {ctype}\r\n" if body else ""
        self.deliver(
            f"{method} sip:yakyak@{PBX[0]}:{PBX[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {peer.host}:{peer.port};branch={self.branch()};rport\r\n"
            f"From: {frm}\r\nTo: {to}\r\nCall-ID: {final.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\nContact: <sip:p@{peer.host}:{peer.port}>\r\n"
            f"{ctype_line}Content-Length: {len(body)}\r\n\r\n{body}",
            peer,
        )

    def media_event(self, event: MediaEvent) -> None:
        self._take(list(self.front.media_event(event, self.now)))

    def info_digit(self, ok: Response, digit: str, cseq: int = 3) -> None:
        """The caller presses ``digit`` (SIP INFO, which needs no RTP in a unit test)."""
        body = f"Signal={digit}\r\nDuration=160\r\n"
        self.in_dialog(ALICE, ok, "INFO", cseq, body, "application/dtmf-relay")

    def call_attendant(self) -> Response:
        """101 dials 500, routed to menu "main": answered by the appliance; our 200."""
        self.invite("500")
        ok = [r for r in self.responses(ALICE) if r.status == 200][0]
        self.take(ALICE)
        self.ack(ok)
        return ok

    def connect(self) -> tuple[Request, Response, Request]:
        """101 calls 102 at BOB1, 180, 200, ACK: returns (their INVITE, our 200, bob INVITE)."""
        self.invite()
        (b_invite,) = self.requests(BOB1, "INVITE")
        self.take(BOB1)
        self.answer(BOB1, b_invite, 180, "b1")
        self.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host))
        ok = [r for r in self.responses(ALICE) if r.status == 200][0]
        self.take(ALICE)
        self.ack(ok)
        self.take(BOB1)
        return b_invite, ok, b_invite

    def ack(self, ok: Response) -> None:
        self.in_dialog(ALICE, ok, "ACK", ok.cseq().number)


def test_basic_call_rings_answers_bridges_and_hangs_up_with_a_cdr() -> None:
    rig = Rig()
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    assert b_invite.uri.host == BOB1.host
    assert b_invite.call_id != "call-a"  # two dialogs, two Call-IDs
    assert "<sip:101@" in (b_invite.get("From") or "")  # the authenticated number
    assert b"m=audio 1000" in b_invite.body  # our anchored port, not alice's
    rig.take(BOB1)
    rig.answer(BOB1, b_invite, 180, "b1")
    (ringing,) = rig.responses(ALICE)
    assert ringing.status == 180
    assert b"m=audio 10000" in ringing.body  # our answer: alice hears our ringback
    assert rig.media.tones["1a"] == "ringback"
    rig.take(ALICE)
    rig.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host, codec_pt=8))
    acks = rig.requests(BOB1, "ACK")
    assert len(acks) == 1
    (ok,) = rig.responses(ALICE)
    assert ok.status == 200 and ok.to_addr().tag == ringing.to_addr().tag
    assert rig.media.bridges == [("1a", "1b")]
    assert rig.media.params["1a"].codec == "PCMU" and rig.media.params["1b"].codec == "PCMA"
    rig.take(ALICE)
    rig.ack(ok)
    rig.advance(2.0)
    assert not rig.responses(ALICE)  # ACKed: no 2xx retransmission
    rig.in_dialog(ALICE, ok, "BYE", 3)
    assert [r.status for r in rig.responses(ALICE)] == [200]
    (bye,) = rig.requests(BOB1, "BYE")
    assert bye.call_id == b_invite.call_id
    (done,) = rig.finished
    assert done.record.disposition is Disposition.ANSWERED
    assert done.record.ended_by is Side.CALLER
    assert done.record.caller.number == "101" and done.record.callee == "102"
    assert done.codec == "PCMU" and done.a is not None and done.a.packets_received == 500
    assert sorted(rig.media.closed) == ["1a", "1b"] and len(rig.calls) == 0


def test_200_is_retransmitted_until_ack() -> None:
    rig = Rig()
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host))
    rig.take(ALICE)
    rig.advance(1.6)
    repeats = [r for r in rig.responses(ALICE) if r.status == 200]
    assert len(repeats) >= 2


def test_callee_hangs_up() -> None:
    rig = Rig()
    b_invite, ok, _ = rig.connect()
    b_ok_like = b_invite  # bob's dialog: From=ours(b), To=bob with tag b1
    rig.deliver(
        f"BYE sip:yakyak@{PBX[0]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {BOB1.host}:5060;branch=z9hG4bKbye\r\n"
        f"From: {b_ok_like.get('To')};tag=b1\r\nTo: {b_ok_like.get('From')}\r\n"
        f"Call-ID: {b_invite.call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        BOB1,
    )
    assert [r.status for r in rig.responses(BOB1)] == [200]
    (bye,) = rig.requests(ALICE, "BYE")
    assert bye.call_id == "call-a" and bye.to_addr().tag == "a1"
    assert rig.finished[0].record.ended_by is Side.CALLEE


def test_busy_callee_gives_486_and_a_busy_cdr() -> None:
    rig = Rig()
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 486, "b1")
    assert len(rig.requests(BOB1, "ACK")) == 1  # the transaction ACKs a non-2xx
    (busy,) = [r for r in rig.responses(ALICE) if r.status >= 200]
    assert busy.status == 486
    assert "cause=17" in (busy.get("Reason") or "")
    assert rig.finished[0].record.disposition is Disposition.BUSY
    assert sorted(rig.media.closed) == ["1a", "1b"]


@pytest.mark.parametrize(("callee", "status"), [("999", 404), ("103", 480), ("1x", 484)])
def test_unknown_unregistered_and_bad_numbers(callee: str, status: int) -> None:
    rig = Rig()
    rig.invite(callee)
    finals = [r.status for r in rig.responses(ALICE) if r.status >= 200]
    assert finals == [status]
    assert not rig.media.legs  # no ports taken for a call that cannot ring


def test_no_common_codec_is_488() -> None:
    rig = Rig()
    rig.invite(
        body=OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18").replace(
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n", "a=rtpmap:18 G729/8000\r\n"
        )
    )
    assert [r.status for r in rig.responses(ALICE) if r.status >= 200] == [488]
    assert rig.media.closed == ["1a", "1b"] or not rig.media.legs or len(rig.media.free) == 20


def test_forking_first_answer_wins_the_other_is_cancelled() -> None:
    rig = Rig(contacts=(BOB1, BOB2))
    rig.invite()
    (i1,) = rig.requests(BOB1, "INVITE")
    (i2,) = rig.requests(BOB2, "INVITE")
    rig.take(BOB1)
    rig.take(BOB2)
    rig.answer(BOB1, i1, 180, "b1")
    rig.answer(BOB2, i2, 180, "b2")
    rig.answer(BOB2, i2, 200, "b2", sdp_answer(BOB2.host))
    assert rig.requests(BOB2, "ACK")
    (cancel,) = rig.requests(BOB1, "CANCEL")
    assert cancel.top_via().branch == i1.top_via().branch
    rig.respond_to(BOB1, cancel, 200)
    rig.answer(BOB1, i1, 487, "b1")
    assert [r.status for r in rig.responses(ALICE) if r.status >= 200] == [200]
    assert len(rig.calls) == 1


def test_second_fork_answering_late_gets_ack_and_bye() -> None:
    rig = Rig(contacts=(BOB1, BOB2))
    rig.invite()
    (i1,) = rig.requests(BOB1, "INVITE")
    (i2,) = rig.requests(BOB2, "INVITE")
    rig.answer(BOB1, i1, 200, "b1", sdp_answer(BOB1.host))
    rig.take(BOB2)
    rig.answer(BOB2, i2, 200, "b2", sdp_answer(BOB2.host))
    assert rig.requests(BOB2, "ACK") and rig.requests(BOB2, "BYE")


def test_caller_cancels_before_answer() -> None:
    rig = Rig()
    invite = rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 180, "b1")
    rig.take(ALICE)
    rig.deliver(
        f"CANCEL sip:102@{REALM} SIP/2.0\r\nVia: {invite.get('Via')}\r\n"
        f"From: {invite.get('From')}\r\nTo: {invite.get('To')}\r\nCall-ID: call-a\r\n"
        "CSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n",
        ALICE,
    )
    statuses = sorted(r.status for r in rig.responses(ALICE))
    assert statuses == [200, 487]
    (cancel,) = rig.requests(BOB1, "CANCEL")
    assert cancel.call_id == b_invite.call_id
    assert rig.finished[0].record.disposition is Disposition.CANCELLED


def test_no_answer_timeout_cancels_and_gives_480() -> None:
    rig = Rig(no_answer_timeout=20.0)
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 180, "b1")
    rig.take(ALICE)
    rig.advance(19.0)
    assert not rig.requests(BOB1, "CANCEL")
    rig.advance(1.5)
    assert rig.requests(BOB1, "CANCEL")
    final = [r for r in rig.responses(ALICE) if r.status >= 200][0]
    assert final.status == 480 and "cause=19" in (final.get("Reason") or "")
    assert rig.finished[0].record.disposition is Disposition.NO_ANSWER


def test_hold_and_resume_are_passed_to_the_other_leg() -> None:
    rig = Rig()
    _, ok, _ = rig.connect()
    hold = OFFER.replace("o=alice 1 1", "o=alice 1 2").replace("a=sendrecv", "a=sendonly")
    rig.in_dialog(ALICE, ok, "INVITE", 3, hold)
    (answer,) = rig.responses(ALICE)
    assert answer.status == 200 and b"a=recvonly" in answer.body
    assert rig.media.params["1a"].direction is StreamDirection.RECVONLY
    (reinvite,) = rig.requests(BOB1, "INVITE")
    assert b"a=sendonly" in reinvite.body
    rig.take(BOB1)
    rig.respond_to(BOB1, reinvite, 200, sdp_answer(BOB1.host, direction="recvonly"))
    assert rig.requests(BOB1, "ACK")
    assert rig.media.params["1b"].direction is StreamDirection.SENDONLY
    rig.take(BOB1)
    rig.take(ALICE)
    resume = OFFER.replace("o=alice 1 1", "o=alice 1 3")
    rig.in_dialog(ALICE, ok, "INVITE", 4, resume)
    (reinvite,) = rig.requests(BOB1, "INVITE")
    assert b"a=sendrecv" in reinvite.body


def test_info_dtmf_goes_out_as_rfc4733_or_as_info() -> None:
    rig = Rig()
    _, ok, b_invite = rig.connect()
    rig.in_dialog(ALICE, ok, "INFO", 3, "Signal=5\r\nDuration=160\r\n", "application/dtmf-relay")
    assert [r.status for r in rig.responses(ALICE)] == [200]
    assert rig.media.sent_dtmf == [("1b", "5")]  # bob negotiated telephone-event
    # Bob's phone sends events, Alice's only INFO: the engine reports, we send INFO.
    rig.take(ALICE)
    event = DtmfDetected("1b", Dtmf("7", 120, DtmfSource.RFC4733), relay_as_info=True)
    rig._take(rig.front.media_event(event, rig.now))
    (info,) = rig.requests(ALICE, "INFO")
    assert b"Signal=7" in info.body and info.get("Content-Type") == "application/dtmf-relay"


def test_rtp_stopped_tears_the_call_down() -> None:
    rig = Rig()
    rig.connect()
    rig._take(rig.front.media_event(RtpStopped("1b", 60.0), rig.now))
    assert rig.requests(ALICE, "BYE") and rig.requests(BOB1, "BYE")
    assert rig.finished[0].record.cause is Cause.RECOVERY_ON_TIMER_EXPIRY


def test_session_timer_expiry_when_the_caller_does_not_refresh() -> None:
    rig = Rig()
    rig.invite(extra="Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n")
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host))
    ok = [r for r in rig.responses(ALICE) if r.status == 200][0]
    assert (ok.get("Session-Expires") or "").startswith("120;refresher=uac")
    rig.take(ALICE)
    rig.ack(ok)
    rig.advance(79.0)
    assert not rig.requests(BOB1, "BYE")
    rig.advance(2.0)  # 120 - min(32, 40) = 88 s after the 200... minus what passed
    rig.advance(10.0)
    assert rig.requests(BOB1, "BYE") and rig.requests(ALICE, "BYE")


def test_session_timer_refresh_by_us_towards_the_callee() -> None:
    rig = Rig()
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    assert b_invite.get("Session-Expires") == "1800"
    rig.take(BOB1)
    rig.answer(
        BOB1,
        b_invite,
        200,
        "b1",
        sdp_answer(BOB1.host),
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n",
    )
    ok = [r for r in rig.responses(ALICE) if r.status == 200][0]
    rig.ack(ok)
    rig.take(BOB1)
    rig.advance(46.0)
    refresh = rig.requests(BOB1, "INVITE")[0]  # and Timer A repeats it
    assert refresh.body == b_invite.body  # the same SDP: a refresh, not a change
    rig.take(BOB1)
    rig.advance(40.0)  # no answer to the refresh: Timer B ends the call
    assert rig.requests(ALICE, "BYE")


def test_session_interval_below_min_se_is_422() -> None:
    rig = Rig()
    rig.invite(extra="Supported: timer\r\nSession-Expires: 30\r\n")
    (final,) = [r for r in rig.responses(ALICE) if r.status >= 200]
    assert final.status == 422 and final.get("Min-SE") == "90"


def test_ports_exhausted_is_503_class() -> None:
    rig = Rig()
    rig.media.free = []
    rig.invite()
    (final,) = [r for r in rig.responses(ALICE) if r.status >= 200]
    assert final.status == 503


def test_in_dialog_request_for_no_dialog_is_481() -> None:
    rig = Rig()
    rig.deliver(
        f"BYE sip:yakyak@{PBX[0]} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE.host}:5060;branch=z9hG4bKx\r\n"
        f"From: <sip:101@{REALM}>;tag=zz\r\nTo: <sip:102@{REALM}>;tag=yy\r\n"
        "Call-ID: nope\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        ALICE,
    )
    assert [r.status for r in rig.responses(ALICE)] == [481]


def test_reliable_provisional_is_pracked() -> None:
    rig = Rig()
    rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 183, "b1", sdp_answer(BOB1.host), "Require: 100rel\r\nRSeq: 7\r\n")
    (prack,) = rig.requests(BOB1, "PRACK")
    assert prack.get("RAck") == f"7 {b_invite.cseq().number} INVITE"
    assert rig.media.bridges == [("1a", "1b")]  # early media flows before answer
    (progress,) = rig.responses(ALICE)
    assert progress.status == 183


def test_delayed_offer_gets_our_offer_in_200_and_bridges_on_the_ack_answer() -> None:
    rig = Rig()
    rig.invite(body="")
    (b_invite,) = rig.requests(BOB1, "INVITE")
    assert b"m=audio" in b_invite.body  # the callee gets our offer all the same
    rig.answer(BOB1, b_invite, 180, "b1")
    (ringing,) = rig.responses(ALICE)
    assert not ringing.body and "1a" not in rig.media.tones  # the phone rings locally
    rig.take(ALICE)
    rig.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host, codec_pt=8))
    ok = [r for r in rig.responses(ALICE) if r.status == 200][0]
    assert b"m=audio 10000 RTP/AVP 8 0 101" in ok.body  # ours, the callee's codec first
    assert rig.media.bridges == []
    rig.take(ALICE)
    rig.in_dialog(ALICE, ok, "ACK", ok.cseq().number, sdp_answer(ALICE.host, codec_pt=8))
    assert rig.media.bridges == [("1a", "1b")]
    assert rig.media.params["1a"].codec == "PCMA"


def test_dialplan_routes_alias_and_reject() -> None:
    plan = Dialplan.from_dicts(
        [
            {
                "name": "reception",
                "pattern": "100",
                "target": {"type": "extension", "number": "102"},
            },
            {"name": "no-outside", "pattern": "_9.", "target": {"type": "reject", "cause": 21}},
            {"name": "mail", "pattern": "*97", "target": {"type": "voicemail", "mailbox": "101"}},
        ]
    )
    rig = Rig(dialplan=plan)
    rig.invite("100")
    assert rig.requests(BOB1, "INVITE")  # 100 rings extension 102
    rig = Rig(dialplan=plan)
    rig.invite("9123")
    assert [r.status for r in rig.responses(ALICE) if r.status >= 200] == [403]
    rig = Rig(dialplan=plan)
    rig.invite("*97")  # voicemail comes with its own issue: refused clearly until then
    assert [r.status for r in rig.responses(ALICE) if r.status >= 200] == [501]


def test_shutdown_hangs_up_every_call_with_a_cdr() -> None:
    rig = Rig()
    rig.connect()
    rig._take(rig.front.hang_up_all(rig.now))
    assert rig.requests(ALICE, "BYE") and rig.requests(BOB1, "BYE")
    (done,) = rig.finished
    assert done.record.cause is Cause.TEMPORARY_FAILURE
    assert done.record.ended_by is Side.SYSTEM and len(rig.calls) == 0


def test_a_fork_answering_after_the_call_ended_gets_ack_and_bye() -> None:
    rig = Rig()
    invite = rig.invite()
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 180, "b1")
    rig.deliver(
        f"CANCEL sip:102@{REALM} SIP/2.0\r\nVia: {invite.get('Via')}\r\n"
        f"From: {invite.get('From')}\r\nTo: {invite.get('To')}\r\nCall-ID: call-a\r\n"
        "CSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n",
        ALICE,
    )
    assert len(rig.calls) == 0 and rig.finished  # the call is over and forgotten
    rig.take(BOB1)
    rig.answer(BOB1, b_invite, 200, "b1", sdp_answer(BOB1.host))  # crossed our CANCEL
    (ack,) = rig.requests(BOB1, "ACK")
    (bye,) = rig.requests(BOB1, "BYE")
    assert ack.call_id == bye.call_id == b_invite.call_id
    assert bye.to_addr().tag == "b1"


def test_hold_by_update_is_answered_and_passed_on() -> None:
    rig = Rig()
    _, ok, _ = rig.connect()
    hold = OFFER.replace("o=alice 1 1", "o=alice 1 2").replace("a=sendrecv", "a=inactive")
    rig.in_dialog(ALICE, ok, "UPDATE", 3, hold)
    (answer,) = rig.responses(ALICE)
    assert answer.status == 200 and b"a=inactive" in answer.body
    assert rig.media.params["1a"].direction is StreamDirection.INACTIVE
    (reinvite,) = rig.requests(BOB1, "INVITE")
    assert b"a=sendonly" in reinvite.body
    rig.take(ALICE)
    rig.in_dialog(ALICE, ok, "UPDATE", 4)  # no SDP: a session refresh
    (refreshed,) = rig.responses(ALICE)
    assert refreshed.status == 200 and not refreshed.body


def test_reliable_ringing_to_a_caller_that_allows_100rel_until_its_prack() -> None:
    rig = Rig()
    invite = rig.invite(extra="Supported: 100rel\r\n")
    (b_invite,) = rig.requests(BOB1, "INVITE")
    rig.answer(BOB1, b_invite, 180, "b1")
    (ringing,) = rig.responses(ALICE)
    assert ringing.get("Require") == "100rel" and ringing.get("RSeq") is not None
    rig.take(ALICE)
    rig.answer(BOB1, b_invite, 180, "b1")
    assert not rig.responses(ALICE)  # no second reliable 18x before the PRACK
    rig.advance(0.6)
    assert [r.status for r in rig.responses(ALICE)] == [180]  # resent at T1
    rig.take(ALICE)
    rack = f"RAck: {ringing.get('RSeq')} {invite.cseq().number} INVITE\r\n"
    rig.deliver(
        f"PRACK sip:yakyak@{PBX[0]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ALICE.host}:{ALICE.port};branch=z9hG4bKpr1\r\n"
        f"From: {ringing.get('From')}\r\nTo: {ringing.get('To')}\r\nCall-ID: call-a\r\n"
        f"CSeq: 3 PRACK\r\n{rack}Content-Length: 0\r\n\r\n",
        ALICE,
    )
    assert [r.status for r in rig.responses(ALICE)] == [200]
    rig.take(ALICE)
    rig.advance(3.0)
    assert not rig.responses(ALICE)  # PRACKed: no more resends
