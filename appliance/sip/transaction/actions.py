"""What the transaction layer asks its edge and its TU to do (RFC 3261 §17).

Actions are values. ``Send`` goes to the transport edge; the others go to the
transaction user (TU): the dialog layer, registrar or B2BUA above us.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.sip.message import Request, Response
from appliance.sip.transaction.keys import TransactionKey
from appliance.sip.transport import Peer


@dataclass(frozen=True, slots=True)
class Send:
    """Pass ``message`` to the transport for ``peer`` (RFC 3261 §18).

    ``data``, when present, is exactly ``bytes(message)``, encoded once by the
    transaction and reused for every retransmission: the edge should send it as is
    and only call ``bytes(message)`` when ``data`` is None.
    """

    message: Request | Response
    peer: Peer
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU, or with ``key`` None an ACK for a 2xx (§17.1.1.3).

    A request with a key opened a server transaction: answer it with
    ``TransactionLayer.respond(key, ...)``.
    """

    key: TransactionKey | None
    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU; ``key`` None for one no client transaction matched
    (a 2xx retransmission after the transaction ended, or a stray): §17.1.3, §18.1.2.
    """

    key: TransactionKey | None
    response: Response


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The transaction gave up: Timer B, F or H, or §9.1 after a CANCEL."""

    key: TransactionKey


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The edge reported that a send failed (§17.1.4, §17.2.4)."""

    key: TransactionKey


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction is over and forgotten; its key will not be used again."""

    key: TransactionKey


Action = Send | RequestReceived | ResponseReceived | TimedOut | TransportFailed | Terminated
