"""Transaction keys: matching responses (RFC 3261 §17.1.3) and requests (§17.2.3).

A client transaction is found by the top Via branch and the CSeq method. A server
transaction is found by branch, sent-by and method when the branch starts with the
magic cookie, with ACK matching its INVITE; older RFC 2543 peers get the §17.2.3
fallback, kept simple (the To tag is not compared). Keys are computed on every
message, so the top Via is read with plain string operations and handed to the
full ``Via.parse`` only when it looks unusual (quotes, spaces around ':').
"""

from __future__ import annotations

import random
import sys
from typing import Final, NamedTuple

from appliance.sip.errors import ParseError
from appliance.sip.grammar import split_list
from appliance.sip.headers import CSeq, NameAddr, Via
from appliance.sip.message import Header, Request, Response

MAGIC_COOKIE: Final = "z9hG4bK"  # RFC 3261 §8.1.1.7

# Shared method strings, so a key does not carry its own copy of "REGISTER".
_METHODS: Final[dict[str, str]] = {
    m: m
    for m in (
        "INVITE ACK CANCEL BYE REGISTER OPTIONS INFO UPDATE PRACK SUBSCRIBE NOTIFY "
        "REFER MESSAGE PUBLISH"
    ).split()
}


class TransactionKey(NamedTuple):
    """Identifies one transaction. Client keys have ``host`` "" and ``port`` 0.

    ``method`` is the transaction's method: INVITE for an ACK to a non-2xx final
    response (§17.2.3). ``port`` is 0 when the Via sent-by has none. For an RFC 2543
    request (no magic cookie) ``branch`` holds a synthetic id starting "2543 ".
    """

    server: bool
    branch: str
    host: str
    port: int
    method: str


def new_branch(rng: random.Random) -> str:
    """A fresh Via branch: magic cookie plus 64 random bits (RFC 3261 §8.1.1.7)."""
    return MAGIC_COOKIE + format(rng.getrandbits(64), "016x")


def client_key(message: Request | Response) -> TransactionKey:
    """The client transaction a response belongs to, or a request we send (§17.1.3).

    A response whose top Via has no branch gets branch "", which matches nothing.
    """
    _, _, branch = via_fields(top_via_text(message.headers))
    method = message.method if isinstance(message, Request) else cseq_method(message.headers)
    return TransactionKey(False, branch or "", "", 0, _METHODS.get(method, method))


def server_key(request: Request, method: str | None = None) -> TransactionKey:
    """The server transaction ``request`` belongs to (§17.2.3).

    ``method`` overrides the request's own: a CANCEL looks for its INVITE (§9.2).
    """
    via = top_via_text(request.headers)
    host, port, branch = via_fields(via)
    if method is None:
        method = request.method
    if method == "ACK":
        method = "INVITE"
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        branch = _rfc2543_id(request, via)
    return TransactionKey(True, branch, host, port, _METHODS.get(method, method))


def top_via_text(headers: tuple[Header, ...]) -> str:
    """The first Via value (the first item of the first Via line)."""
    for name, value in headers:
        if name == "Via":
            if "," in value:
                items = split_list(value)
                if not items:
                    break
                return items[0]
            return value
    raise ParseError("missing Via header")


def via_fields(text: str) -> tuple[str, int, str | None]:
    """(host lower-cased, port or 0, branch or None) of one Via value (§20.42)."""
    if '"' not in text:
        head, _, params = text.partition(";")
        proto, slash, sent_by = head.rpartition("/")
        parts = sent_by.split()
        if (
            slash
            and len(parts) == 2
            and (proto == "SIP/2.0" or proto.replace(" ", "").upper() == "SIP/2.0")
        ):
            hostport = parts[1]
            if hostport[0] == "[":
                end = hostport.find("]") + 1
                host, colon, port_text = (
                    hostport[:end],
                    hostport[end : end + 1],
                    hostport[end + 1 :],
                )
                ok = end > 0 and colon in ("", ":")
            else:
                host, colon, port_text = hostport.partition(":")
                ok = True
            if ok and host and (not colon or _is_port(port_text)):
                # Interned: completed transactions from one phone share the string.
                host = sys.intern(host.lower())
                return host, int(port_text) if colon else 0, _branch(params)
    via = Via.parse(text)  # the unusual spellings; raises ParseError on garbage
    branch = via.branch
    return via.host.lower(), via.port or 0, branch or None


def _branch(params: str) -> str | None:
    """The branch of Via params text (after the first ';'), quotes excluded."""
    at = params.find("branch=")
    if at == 0 or (at > 0 and params[at - 1] == ";"):
        end = params.find(";", at)
        value = params[at + 7 :] if end < 0 else params[at + 7 : end]
        return value.strip() or None
    for item in params.split(";"):  # Branch=, spaces around '='
        name, _, value = item.partition("=")
        if name.strip().lower() == "branch":
            return value.strip() or None
    return None


def cseq_method(headers: tuple[Header, ...]) -> str:
    for name, value in headers:
        if name == "CSeq":
            parts = value.split()
            if len(parts) == 2 and parts[0].isdigit():
                return parts[1]
            return CSeq.parse(value).method
    raise ParseError("missing CSeq header")


def _is_port(text: str) -> bool:
    return text.isdigit() and text.isascii() and len(text) <= 5 and int(text) <= 65535


def _rfc2543_id(request: Request, via: str) -> str:
    """§17.2.3's fallback: Request-URI, From tag, Call-ID, CSeq number and top Via.

    The To tag is left out: an INVITE has none and its ACK carries ours, so
    comparing it would need the response; the other fields already tell apart
    everything but a broken peer.
    """
    from_tag = NameAddr.parse(request.require("From")).tag or ""
    cseq = CSeq.parse(request.require("CSeq"))
    return f"2543 {request.uri} {from_tag} {request.call_id} {cseq.number} {via}"
