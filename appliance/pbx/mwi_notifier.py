"""Message waiting for phones (RFC 3842 over RFC 6665), sans-IO.

A phone SUBSCRIBEs to ``message-summary`` for its own extension (authenticated by
the front, like REGISTER); we answer 200, send the current summary in a NOTIFY at
once, and again whenever the mailbox changes, until the subscription expires or
the phone ends it (Expires: 0). Phones that never subscribe (many desk phones
are set up only to REGISTER) get the same NOTIFY unsolicited, out of any dialog,
at each of their registered contacts whenever their mailbox changes and when they
register anew.

Input: authenticated SUBSCRIBE requests, responses to our NOTIFYs, mailbox counts,
``now``. Output: a response to send and transaction-layer actions.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from appliance.pbx.addressing import binding_target, our_contact
from appliance.pbx.location import Binding
from appliance.pbx.voicemail.mwi import MessageSummary, format_summary
from appliance.sip.dialog import Dialog, DialogError, Reject
from appliance.sip.errors import ParseError
from appliance.sip.headers import Via
from appliance.sip.message import Header, Request, Response, make_response
from appliance.sip.transaction import Action, TransactionError, TransactionKey, TransactionLayer
from appliance.sip.transport import Peer

log = logging.getLogger(__name__)

EVENT: Final = "message-summary"
BODY_TYPE: Final = "application/simple-message-summary"
DEFAULT_EXPIRES: Final = 3600
MIN_EXPIRES: Final = 60  # RFC 6665 §4.2.1.1: shorter gets 423 with Min-Expires
MAX_EXPIRES: Final = 86400
MAX_SUBSCRIPTIONS: Final = 4096
LocalAddress = Callable[[Peer], tuple[str, int]]


@dataclass(slots=True)
class Subscription:
    mailbox: str
    dialog: Dialog
    peer: Peer
    expires_at: float


@dataclass(frozen=True, slots=True)
class SubscribeAnswer:
    response: Response
    actions: list[Action]


class MwiNotifier:
    def __init__(
        self,
        layer: TransactionLayer,
        local_address: LocalAddress,
        rng: random.Random,
        domain: str,
        server: str = "YakYak",
    ) -> None:
        self.layer = layer
        self._local = local_address
        self._rng = rng
        self.domain = domain
        self._server: Header = ("Server", server)
        self._subs: dict[tuple[str, str, str], Subscription] = {}  # Call-ID, our tag, theirs
        self._counts: dict[str, tuple[int, int]] = {}  # mailbox -> (new, old)
        self._notifies: dict[TransactionKey, tuple[str, str, str] | None] = {}

    def __len__(self) -> int:
        return len(self._subs)

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(
        self, request: Request, peer: Peer, subscriber: str, now: float
    ) -> SubscribeAnswer:
        """An authenticated SUBSCRIBE from extension ``subscriber``: new, refresh or end."""
        event = (request.get("Event") or "").split(";")[0].strip().lower()
        if event != EVENT:
            return SubscribeAnswer(self._response(request, 489, [("Allow-Events", EVENT)]), [])
        expires = _expires(request)
        if 0 < expires < MIN_EXPIRES:
            return SubscribeAnswer(
                self._response(request, 423, [("Min-Expires", str(MIN_EXPIRES))]), []
            )
        expires = min(expires, MAX_EXPIRES)
        to_tag = request.to_addr().tag
        if to_tag:  # a refresh goes to our Contact: the dialog says whose mailbox it is
            return self._refresh(request, peer, subscriber, to_tag, expires, now)
        mailbox = request.uri.user or ""
        if mailbox != subscriber:
            return SubscribeAnswer(self._response(request, 403, reason="Not your mailbox"), [])
        if expires and len(self._subs) >= MAX_SUBSCRIPTIONS:
            return SubscribeAnswer(self._response(request, 503, [("Retry-After", "60")]), [])
        tag = format(self._rng.getrandbits(48), "x")
        host, port = self._local(peer)
        contact = our_contact(host, port, peer.transport)
        response = self._response(
            request, 200, [("Expires", str(expires)), ("Contact", contact)], to_tag=tag
        )
        try:
            dialog = Dialog.from_uas(request, response, contact, now=now)
        except DialogError as exc:
            return SubscribeAnswer(self._response(request, 400, reason=str(exc)[:100]), [])
        sub = Subscription(mailbox, dialog, peer, now + expires)
        key = (request.call_id, tag, dialog.id.remote_tag)
        if expires:
            self._subs[key] = sub
            log.info("MWI: %s subscribed for %d s", mailbox, expires)
        # RFC 6665 §4.2.1.2: a NOTIFY follows at once, also for a fetch (Expires: 0)
        ended = None if expires else "fetched"
        actions = self._notify(key if expires else None, sub, now, ended=ended)
        return SubscribeAnswer(response, actions)

    def _refresh(
        self,
        request: Request,
        peer: Peer,
        subscriber: str,
        to_tag: str,
        expires: int,
        now: float,
    ) -> SubscribeAnswer:
        key = (request.call_id, to_tag, request.from_addr().tag or "")
        sub = self._subs.get(key)
        if sub is None:
            return SubscribeAnswer(self._response(request, 481), [])
        if sub.mailbox != subscriber:
            return SubscribeAnswer(self._response(request, 403, reason="Not your mailbox"), [])
        decision = sub.dialog.receive_request(request, now)
        if isinstance(decision, Reject):  # e.g. a CSeq that went backwards (§12.2.2)
            return SubscribeAnswer(decision.response(request), [])
        sub.peer = peer  # the phone may have moved (a new NAT mapping)
        response = self._response(request, 200, [("Expires", str(expires))])
        if expires:
            sub.expires_at = now + expires
            return SubscribeAnswer(response, self._notify(key, sub, now))
        del self._subs[key]
        log.info("MWI: %s unsubscribed", sub.mailbox)
        return SubscribeAnswer(response, self._notify(None, sub, now, ended="unsubscribed"))

    def subscribed(self, mailbox: str) -> bool:
        return any(sub.mailbox == mailbox for sub in self._subs.values())

    # -- mailbox changes -------------------------------------------------------------

    def set_counts(self, mailbox: str, new: int, old: int) -> None:
        """The mailbox's counts, without telling anyone (start-up)."""
        self._counts[mailbox] = (new, old)

    def mailbox_changed(
        self, mailbox: str, new: int, old: int, contacts: list[Binding], now: float
    ) -> list[Action]:
        """Tell every subscription of ``mailbox``; phones of the extension that do not
        subscribe (``contacts``: its registered bindings) get an unsolicited NOTIFY."""
        self._counts[mailbox] = (new, old)
        actions: list[Action] = []
        subscribed = False
        for key, sub in list(self._subs.items()):
            if sub.mailbox == mailbox:
                subscribed = True
                actions.extend(self._notify(key, sub, now))
        if not subscribed:
            for binding in contacts:
                actions.extend(self.unsolicited(mailbox, binding, now))
        return actions

    def unsolicited(
        self, mailbox: str, binding: Binding, now: float, only_waiting: bool = False
    ) -> list[Action]:
        """An out-of-dialog NOTIFY of ``mailbox``'s counts to one registered contact
        (``only_waiting``: only if there are new messages)."""
        counts = self._counts.get(mailbox)
        if counts is None or (only_waiting and counts[0] == 0):
            return []
        uri, peer = binding_target(binding)
        transport = peer.transport
        local_host, local_port = self._local(peer)
        via = Via(transport.upper(), local_host, local_port, (("rport", None),))
        via = via.with_param("branch", self.layer.new_branch())
        token = format(self._rng.getrandbits(64), "x")
        headers: list[Header] = [
            ("Via", str(via)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{mailbox}@{self.domain}>;tag={token[:12]}"),
            ("To", f"<sip:{mailbox}@{self.domain}>"),
            ("Call-ID", f"{token}@yakyak"),
            ("CSeq", "1 NOTIFY"),
            ("Contact", our_contact(local_host, local_port, transport)),
            ("Event", EVENT),
            ("Subscription-State", "active"),
            self._server,
            ("Content-Type", BODY_TYPE),
        ]
        body = self._body(mailbox)
        request = Request("NOTIFY", uri, tuple(headers), body)
        return self._send(None, request, peer, now)

    # -- timers and answers ----------------------------------------------------------

    def next_deadline(self) -> float | None:
        return min((sub.expires_at for sub in self._subs.values()), default=None)

    def handle_timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for key, sub in list(self._subs.items()):
            if sub.expires_at <= now:
                del self._subs[key]
                log.info("MWI: subscription of %s expired", sub.mailbox)
                actions.extend(self._notify(None, sub, now, ended="timeout"))
        return actions

    def owns(self, key: TransactionKey) -> bool:
        return key in self._notifies

    def response(self, key: TransactionKey, response: Response) -> None:
        """A final answer to one of our NOTIFYs: 481 (or a failure) ends the subscription."""
        if response.status < 200:
            return
        sub_key = self._notifies.pop(key, None)
        if sub_key is not None and response.status in (404, 405, 408, 410, 481, 489, 501):
            sub = self._subs.pop(sub_key, None)
            if sub is not None:
                log.info("MWI: %s ended the subscription (%d)", sub.mailbox, response.status)

    def failed(self, key: TransactionKey) -> None:
        """Our NOTIFY timed out or could not be sent: the phone is gone."""
        sub_key = self._notifies.pop(key, None)
        if sub_key is not None:
            self._subs.pop(sub_key, None)

    def ended(self, key: TransactionKey) -> None:
        self._notifies.pop(key, None)

    # -- sending ---------------------------------------------------------------------

    def _notify(
        self,
        key: tuple[str, str, str] | None,
        sub: Subscription,
        now: float,
        ended: str | None = None,
    ) -> list[Action]:
        """``ended``: why this is the last NOTIFY: "timeout" (expired, RFC 6665 §4.1.3),
        "unsubscribed" or "fetched" (Expires: 0; no reason, the phone asked)."""
        if ended == "timeout":
            state = "terminated;reason=timeout"
        elif ended is not None:
            state = "terminated"
        else:
            state = f"active;expires={max(int(sub.expires_at - now), 0)}"
        try:
            request = sub.dialog.request(
                "NOTIFY",
                now,
                body=self._body(sub.mailbox),
                extra_headers=[
                    ("Event", EVENT),
                    ("Subscription-State", state),
                    self._server,
                    ("Content-Type", BODY_TYPE),
                ],
                rng=self._rng,
            )
        except (DialogError, ParseError) as exc:
            log.info("MWI: cannot notify %s: %s", sub.mailbox, exc)
            return []
        return self._send(key, request, sub.peer, now)

    def _send(
        self, key: tuple[str, str, str] | None, request: Request, peer: Peer, now: float
    ) -> list[Action]:
        try:
            txn, actions = self.layer.request(request, peer, now)
        except TransactionError as exc:
            log.info("MWI: NOTIFY not sent: %s", exc)
            return []
        self._notifies[txn] = key
        return actions

    def _body(self, mailbox: str) -> bytes:
        new, old = self._counts.get(mailbox, (0, 0))
        summary = MessageSummary(
            waiting=new > 0, new=new, old=old, account=f"sip:{mailbox}@{self.domain}"
        )
        return format_summary(summary).encode("ascii")

    def _response(
        self,
        request: Request,
        status: int,
        extra: list[Header] | None = None,
        reason: str | None = None,
        to_tag: str | None = None,
    ) -> Response:
        headers = list(extra or ())
        headers.append(self._server)
        if to_tag is None and not request.to_addr().tag:
            to_tag = format(self._rng.getrandbits(48), "x")
        return make_response(request, status, reason, headers, to_tag=to_tag)


def _expires(request: Request) -> int:
    value = request.get("Expires")
    if value is None:
        return DEFAULT_EXPIRES
    try:
        return max(int(value.strip()), 0)
    except ValueError:
        return DEFAULT_EXPIRES
