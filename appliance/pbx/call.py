"""The state of one call in the B2BUA: its two SIP legs, the forks of the callee leg,
and the timers that belong to it. Plain data; ``b2bua`` moves it along."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from appliance.pbx.app_events import CallApp
from appliance.pbx.call_events import CallLog, Dtmf, Side
from appliance.pbx.media_port import LegQualityReport, MediaLeg, StreamParams
from appliance.pbx.session_timer import SessionTimer
from appliance.sdp.session import SessionDescription
from appliance.sip.dialog import Dialog
from appliance.sip.dialog_retransmit import TwoXxRetransmitter
from appliance.sip.message import Request, Response
from appliance.sip.transaction import TransactionKey
from appliance.sip.transport import Peer


class Purpose(Enum):
    """Why we sent a client transaction, so its answer goes to the right handler."""

    FORK = "fork"  # the INVITE to one registered contact of the callee
    CANCEL = "cancel"
    BYE = "bye"
    REINVITE = "reinvite"  # hold/resume towards the other leg, or a session refresh
    PRACK = "prack"
    INFO = "info"


class Offer(Enum):
    """What our re-INVITE on a leg asks for."""

    HOLD = "hold"
    RESUME = "resume"
    REFRESH = "refresh"


@dataclass(eq=False, slots=True)
class SipLeg:
    """One side of the call as SIP and media see it."""

    side: Side
    leg_id: str
    peer: Peer
    media: MediaLeg
    contact: str  # our Contact towards this leg's phone
    dialog: Dialog | None = None
    params: StreamParams | None = None  # negotiated stream, None until SDP agreed
    local_sdp: SessionDescription | None = None  # our last offer or answer on this leg
    offer_sent: SessionDescription | None = None  # our re-offer awaiting an answer
    held: bool = False  # the phone on this leg put the call on hold
    reinvite: TransactionKey | None = None  # our INVITE in progress on this leg
    queued: Offer | None = None  # a re-offer waiting for ``reinvite`` to finish
    retransmit: TwoXxRetransmitter | None = None  # our 2xx to this leg's INVITE (UDP)
    last_ack: Request | None = None  # our ACK for this leg's 2xx, resent on a repeat
    timer: SessionTimer | None = None
    dtmf: list[Dtmf] = field(default_factory=list)  # one stream per leg, all sources
    quality: LegQualityReport | None = None


@dataclass(eq=False, slots=True)
class Fork:
    """Our INVITE to one contact of the callee."""

    key: TransactionKey
    invite: Request
    peer: Peer
    provisional: bool = False  # a 1xx came: a CANCEL may now be sent (RFC 3261 §9.1)
    cancel_wanted: bool = False
    done: bool = False  # a final response came, or we gave up on it


@dataclass(eq=False, slots=True)
class Call:
    """One call through the B2BUA: caller leg ``a`` (we are UAS), callee leg ``b``."""

    number: int
    a: SipLeg
    a_invite: Request
    a_key: TransactionKey  # the caller's INVITE server transaction
    a_tag: str  # our To tag towards the caller, the same in every response
    # The caller's offer and our answer, made when the call arrived and sent with 18x
    # and 200. All None for a delayed offer (an INVITE without SDP): then our 200
    # carries an offer and the caller's ACK the answer (RFC 3261 §13.2.1).
    a_offer: SessionDescription | None
    a_answer: SessionDescription | None
    a_params: StreamParams | None
    caller: str
    callee: str
    b_call_id: str
    b_tag: str
    b_offer: SessionDescription
    b_media: MediaLeg
    log: CallLog
    b: SipLeg | None = None  # the answering (or early-media) fork's leg
    forks: list[Fork] = field(default_factory=list)
    answered: bool = False
    ringback: bool = False
    early_media: bool = False  # the callee's media is bridged before answer
    answer_sent_early: bool = False  # the caller has our SDP answer in a 18x
    no_answer_at: float | None = None
    ended: bool = False
    # RFC 3262 towards the caller: its INVITE allows 100rel, so our 18x are reliable;
    # one at a time, resent (UDP) until the caller's PRACK.
    reliable: bool = False
    rseq: int = 0
    unacked: Response | None = None  # our reliable 18x awaiting PRACK
    unacked_next: float | None = None
    unacked_interval: float = 0.0
    best_failure: int | None = None  # the final status to give the caller if all forks fail
    reason: str | None = None  # Reason header from the failing fork, passed on
    caller_name: str | None = None
    extension: str | None = None  # the extension the dialled number routed to
    external: bool = False  # from a trunk: ``caller`` is an asserted number, not an account
    ringing: str | None = None  # the number the forks ring, when not ``callee`` (a transfer)
    app: AppSession | None = None  # the appliance itself answered: voicemail, a menu


@dataclass(slots=True)
class AppSession:
    """A call application talking to the caller, and what it has asked of the media."""

    app: CallApp
    timer_at: float | None = None
    playing: bool = False
    queue: int | None = None  # the engine's playback queue the application is waiting on
    barge_in: bool = False
    recording: bool = False
    stop_digits: str = ""
    transferring: str | None = None  # the extension being rung for the caller
    language: str = "en"
