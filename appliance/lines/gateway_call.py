"""One call of an analog port as the gateway (``gateway``) keeps it: its SIP side
(transaction, dialog, offer/answer, hold) and where it stands for the port."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from appliance.sdp.negotiate import NegotiatedMedia
from appliance.sdp.session import SessionDescription
from appliance.sip.dialog import Dialog
from appliance.sip.dialog_retransmit import TwoXxRetransmitter
from appliance.sip.message import Request
from appliance.sip.transaction import TransactionKey


class GwCallState(Enum):
    CALLING = "calling"  # our INVITE is out, no final answer yet
    OFFERED = "offered"  # the server's INVITE is in, we have not answered it finally
    CONFIRMED = "confirmed"  # 2xx sent or received: the call is up
    CANCELLING = "cancelling"  # the port gave up on our INVITE: CANCEL sent (or due)
    ENDING = "ending"  # the port is done with it; the SIP side still finishes (ACK, BYE)
    ENDED = "ended"


class Role(Enum):
    """What the call is to its FXS port (an FXO line has one call, always ACTIVE)."""

    ACTIVE = "active"  # the one the user hears
    HELD = "held"  # held by the user (flash)
    WAITING = "waiting"  # offered: ringing, or signalled as call waiting


@dataclass(eq=False, slots=True)
class Reinvite:
    """Our re-INVITE in flight: the offer it carries and the hold it asks for."""

    key: TransactionKey
    offer: SessionDescription
    hold: bool


@dataclass(eq=False, slots=True)
class GwCall:
    port: int
    outgoing: bool  # we sent the INVITE
    call_id: str
    local_tag: str
    invite: Request  # ours (outgoing) or the server's (incoming)
    key: TransactionKey  # its transaction: client (outgoing) or server (incoming)
    role: Role
    state: GwCallState
    local_sdp: SessionDescription | None = None  # our offer (outgoing) or answer
    remote_sdp: SessionDescription | None = None
    media: NegotiatedMedia | None = None
    dialog: Dialog | None = None
    auth_tries: int = 0
    heard: bool = False  # a provisional response came: a CANCEL may be sent (§9.1)
    early_media: bool = False
    # Hold, from our side: what the user wants now, and what the far end has agreed to.
    # They differ while a re-INVITE is in flight or waiting to be retried (§14.1).
    hold_wanted: bool = False
    held_by_us: bool = False
    reinvite: Reinvite | None = None
    retry_at: float | None = None  # a re-INVITE refused with 491, to send again then
    # Our 2xx to the server's INVITE or re-INVITE, resent until its ACK (§13.3.1.4).
    retransmit: TwoXxRetransmitter | None = None
    retransmit_key: TransactionKey | None = None
    offer_in_ack: bool = False  # our 2xx carried an offer: the ACK brings the answer
    bye_after_ack: bool = False  # hung up before the ACK came: BYE once it does (§15)

    @property
    def up(self) -> bool:
        return self.state is GwCallState.CONFIRMED
