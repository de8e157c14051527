"""One call of an analog port as the gateway (``gateway``) keeps it: its SIP side
(transaction, dialog, offer/answer) and where it stands for the port."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from appliance.sdp.negotiate import NegotiatedMedia
from appliance.sdp.session import SessionDescription
from appliance.sip.dialog import Dialog
from appliance.sip.dialog_retransmit import TwoXxRetransmitter
from appliance.sip.message import Request, Response
from appliance.sip.transaction import TransactionKey


class GwCallState(Enum):
    CALLING = "calling"  # our INVITE is out, no final answer yet
    OFFERED = "offered"  # the server's INVITE is in, we have not answered it finally
    CONFIRMED = "confirmed"  # 2xx sent or received: the call is up
    CANCELLING = "cancelling"  # the port gave up on our INVITE: CANCEL sent
    ENDED = "ended"


class Role(Enum):
    """What the call is to its FXS port (an FXO line has one call, always ACTIVE)."""

    ACTIVE = "active"  # the one the user hears
    HELD = "held"  # held by the user (flash)
    WAITING = "waiting"  # offered: ringing, or signalled as call waiting


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
    held_by_us: bool = False
    retransmit: TwoXxRetransmitter | None = None
    final: Response | None = None  # our 2xx to the server's INVITE, once sent
    reinvite_key: TransactionKey | None = None
    reinvite: Request | None = None
    pending_hold: bool | None = None  # a hold/resume to send once the re-INVITE in flight ends
    early_media: bool = False
    heard: bool = False  # a provisional response came: a CANCEL may be sent (§9.1)

    @property
    def up(self) -> bool:
        return self.state is GwCallState.CONFIRMED
