"""Requests built from an INVITE: the ACK for a non-2xx (RFC 3261 §17.1.1.3), CANCEL (§9.1).

Both copy the Request-URI, Call-ID, From and CSeq number of the INVITE, carry only
its top Via (so they share its branch and reach the same server transaction) and
repeat its Route header fields.
"""

from __future__ import annotations

from appliance.sip.message import Header, Request, Response
from appliance.sip.transaction.keys import top_via_text


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK the INVITE client transaction sends for a 300-699 (§17.1.1.3).

    Its To is the response's (with the tag the UAS added).
    """
    return _sibling(invite, "ACK", response.require("To"))


def make_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (§9.1); send it once a provisional response arrived."""
    return _sibling(invite, "CANCEL", invite.require("To"))


def _sibling(invite: Request, method: str, to: str) -> Request:
    number = invite.cseq().number
    headers: list[Header] = [("Via", top_via_text(invite.headers))]
    headers.append(("Max-Forwards", invite.get("Max-Forwards") or "70"))
    headers.extend((k, v) for k, v in invite.headers if k == "Route")
    headers.append(("From", invite.require("From")))
    headers.append(("To", to))
    headers.append(("Call-ID", invite.call_id))
    headers.append(("CSeq", f"{number} {method}"))
    return Request(method, invite.uri, tuple(headers))
