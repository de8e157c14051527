"""SIP message pieces the analog gateway (``gateway``) builds and reads: SDP bodies,
CANCEL siblings, registrar answers, message-summary bodies. Pure functions."""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from appliance.sdp.negotiate import NegotiationError
from appliance.sdp.session import SessionDescription, bump_version, parse
from appliance.sip.errors import ParseError
from appliance.sip.grammar import split_list
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response
from appliance.sip.transport import Peer

SDP_TYPE: Final = "application/sdp"
LINE_PARAM: Final = "line"  # ;line=N in a Request-URI or Contact names the port


def sdp_of(message: Request | Response) -> SessionDescription | None:
    """The SDP body, None without one; ParseError (415/400) when it is not usable."""
    if not message.body.strip():
        return None
    kind = (message.get("Content-Type") or SDP_TYPE).split(";")[0].strip().lower()
    if kind != SDP_TYPE:
        raise NegotiationError(f"body of type {kind[:40]} is not SDP", 415)
    return parse(message.body)


def new_version(previous: SessionDescription, answer: SessionDescription) -> SessionDescription:
    """``answer`` under ``previous``'s origin with the version moved on (RFC 3264 §8)."""
    return replace(answer, origin=bump_version(previous).origin)


def cancel_for(invite: Request) -> Request:
    """The CANCEL of ``invite`` (RFC 3261 §9.1): same Request-URI, top Via, Call-ID, From,
    To and CSeq number; the transaction layer matches it to the INVITE by its branch."""
    keep = ("Via", "From", "To", "Call-ID", "Max-Forwards", "Route")
    headers = [(name, value) for name, value in invite.headers if name in keep]
    headers.append(("CSeq", f"{invite.cseq().number} CANCEL"))
    return Request("CANCEL", invite.uri, tuple(headers), b"")


def contacts_of(response: Response) -> list[NameAddr]:
    found: list[NameAddr] = []
    for value in response.get_all("Contact"):
        for part in split_list(value):
            try:
                found.append(NameAddr.parse(part))
            except ParseError:
                continue
    return found


def granted_expiry(response: Response, ours: str, asked: int) -> int:
    """The time the registrar granted our contact: its ``expires``, else Expires."""
    for addr in contacts_of(response):
        number = addr.param("expires")
        if str(addr.uri) == ours and number is not None and number.isdigit():
            return int(number)
    expires = response.get("Expires")
    if expires is not None and expires.strip().isdigit():
        return int(expires)
    return asked


def stale_contacts(response: Response, user: str, port: int, ours: str) -> list[str]:
    """Contacts of this port (its user and ;line=) at another address than ours: left
    by an earlier run of the gateway."""
    stale: list[str] = []
    for addr in contacts_of(response):
        uri = addr.uri
        text = str(uri)
        if text != ours and uri.user == user and uri.param(LINE_PARAM) == str(port):
            stale.append(text)
    return stale


def messages_waiting(body: bytes) -> bool | None:
    """``Messages-Waiting: yes|no`` of an RFC 3842 message-summary body."""
    for raw in body.decode("utf-8", "replace").splitlines():
        name, _, value = raw.partition(":")
        if name.strip().lower() == "messages-waiting":
            answer = value.strip().lower()
            if answer in ("yes", "no"):
                return answer == "yes"
    return None


def hostport(peer: Peer) -> str:
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    return f"{host}:{peer.port}"


def display_name(text: str | None) -> str:
    """A From display-name part, quoted, with a trailing space; "" without one."""
    if not text:
        return ""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '" '


def escape_user(number: str) -> str:
    """A dialled number as a SIP URI user part: '#' is not allowed bare (RFC 3261 §25.1)."""
    return number.replace("%", "%25").replace("#", "%23")
