"""SIP transactions, sans-IO: RFC 3261 §17 with RFC 6026's Accepted states.

``TransactionLayer`` is the entry point; the four machines can also be driven
alone. Every entry point takes ``now``; nothing here reads a clock or sleeps.
"""

from appliance.sip.transaction.actions import (
    Action,
    RequestReceived,
    ResponseReceived,
    Send,
    Terminated,
    TimedOut,
    TransportFailed,
)
from appliance.sip.transaction.build import make_ack, make_cancel
from appliance.sip.transaction.invite_client import InviteClient, InviteClientState
from appliance.sip.transaction.invite_server import InviteServer, InviteServerState
from appliance.sip.transaction.keys import (
    MAGIC_COOKIE,
    TransactionKey,
    client_key,
    new_branch,
    server_key,
)
from appliance.sip.transaction.layer import Transaction, TransactionLayer
from appliance.sip.transaction.machine import Event, TransactionError
from appliance.sip.transaction.non_invite_client import NonInviteClient, NonInviteClientState
from appliance.sip.transaction.non_invite_server import NonInviteServer, NonInviteServerState
from appliance.sip.transaction.timers import TimerConfig

__all__ = [
    "MAGIC_COOKIE",
    "Action",
    "Event",
    "InviteClient",
    "InviteClientState",
    "InviteServer",
    "InviteServerState",
    "NonInviteClient",
    "NonInviteClientState",
    "NonInviteServer",
    "NonInviteServerState",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "Terminated",
    "TimedOut",
    "TimerConfig",
    "Transaction",
    "TransactionError",
    "TransactionKey",
    "TransactionLayer",
    "TransportFailed",
    "client_key",
    "make_ack",
    "make_cancel",
    "new_branch",
    "server_key",
]
