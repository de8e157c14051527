"""Helpers shared by the transaction tests: messages, peers and a manual clock.

Not a test module (it holds no tests); named so it sits with the tests it serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance.sip.message import Header, Request, Response, make_response
from appliance.sip.transaction import Action, Send, TimerConfig
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri

CONFIG = TimerConfig()
UDP = Peer("udp", "192.0.2.7", 5060)
TCP = Peer("tcp", "192.0.2.7", 5060, connection=3)
PBX_UDP = Peer("udp", "192.0.2.1", 5060)


@dataclass
class ManualClock:
    """The only clock the tests have: it moves when told to, and never sleeps."""

    now: float = 0.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_request(
    method: str = "INVITE",
    branch: str | None = "z9hG4bK776asdhds",
    *,
    transport: str = "UDP",
    sent_by: str = "192.0.2.7:5060",
    cseq: int = 1,
    uri: str = "sip:201@yakyak.local",
    from_tag: str = "1928301774",
    to_tag: str | None = None,
    call_id: str = "a84b4c76e66710@pc33",
    routes: Sequence[str] = (),
    extra_vias: Sequence[str] = (),
) -> Request:
    via = f"SIP/2.0/{transport} {sent_by}" + ("" if branch is None else f";branch={branch}")
    to = "<sip:201@yakyak.local>" + ("" if to_tag is None else f";tag={to_tag}")
    headers: list[Header] = [("Via", via)]
    headers.extend(("Via", v) for v in extra_vias)
    headers.append(("Max-Forwards", "70"))
    headers.extend(("Route", r) for r in routes)
    headers += [
        ("From", f'"Alice" <sip:101@yakyak.local>;tag={from_tag}'),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    return Request(method, Uri.parse(uri), tuple(headers))


def reply(request: Request, status: int, to_tag: str | None = "as83kd9bs") -> Response:
    """A response to ``request``; 100 Trying carries no To tag (§8.2.6.1)."""
    return make_response(request, status, to_tag=None if status == 100 else to_tag)


def sends(actions: Iterable[Action]) -> list[Send]:
    """The Send actions, checking the contract that ``data`` is bytes(message)."""
    out = [a for a in actions if isinstance(a, Send)]
    for send in out:
        assert send.data == bytes(send.message)
    return out


def kinds(actions: Iterable[Action]) -> list[str]:
    """Action class names, with the status or method of what is sent."""
    out: list[str] = []
    for a in actions:
        if isinstance(a, Send):
            m = a.message
            out.append(f"Send {m.status}" if isinstance(m, Response) else f"Send {m.method}")
        else:
            out.append(type(a).__name__)
    return out
