"""The registrar: REGISTER processing and the location service (RFC 3261 §10.3).

Sans-IO: fed a parsed, authenticated REGISTER plus the wall-clock time, it returns
the answer and the binding changes for the store to persist. Times are wall-clock
(Unix) because bindings outlive the process.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate

from appliance.pbx.location import Binding
from appliance.sip.errors import ParseError
from appliance.sip.headers import NameAddr, parse_uint
from appliance.sip.message import Header, Request
from appliance.sip.transport import Peer
from appliance.sip.uri import Uri


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_contacts: int = 10  # per AOR: a phone, a softphone, a few spares


@dataclass(frozen=True, slots=True)
class Upsert:
    binding: Binding


@dataclass(frozen=True, slots=True)
class Remove:
    aor: str
    contact: str


Change = Upsert | Remove


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str | None = None
    headers: tuple[Header, ...] = ()


@functools.lru_cache(maxsize=4096)
def contact_key(uri: Uri) -> str:
    """Identity of a contact for binding updates (RFC 3261 §10.3 step 7, §19.1.4).

    Scheme and host compare case-insensitively; user, port and transport count.
    """
    transport = (uri.param("transport") or "udp").lower()
    return f"{uri.scheme.lower()}:{uri.user or ''}@{uri.host.lower()}:{uri.port or ''};{transport}"


class Registrar:
    def __init__(self, config: RegistrarConfig, bindings: Iterable[Binding] = ()) -> None:
        self.config = config
        self._aors: dict[str, dict[str, Binding]] = {}
        # (expires_at, aor, key) per stored binding; entries go stale when a binding is
        # refreshed or removed and are skipped when popped, so expiry is O(log n).
        self._expiries: list[tuple[float, str, str]] = []
        # (aor, key) -> expires_at last handed to the store; see _worth_storing.
        self._stored: dict[tuple[str, str], float] = {}
        for binding in bindings:
            key = contact_key(Uri.parse(binding.contact))
            self._aors.setdefault(binding.aor, {})[key] = binding
            self._expiries.append((binding.expires_at, binding.aor, key))
            self._stored[(binding.aor, key)] = binding.expires_at
        heapq.heapify(self._expiries)

    def _worth_storing(
        self, aor: str, key: str, old: Binding | None, new: Binding, now: float
    ) -> bool:
        """Whether a binding change must reach the store now.

        A plain refresh (same phone, same path, only a later expiry and CSeq) is
        written only once the stored expiry has used up half of the new interval:
        phones refresh long before that, and an SD card should not take one write per
        REGISTER. After a power cut such a binding may come back up to half an
        interval short, which the phone's next refresh repairs.
        """
        if old is None or not _same_except_time(old, new):
            return True
        stored = self._stored.get((aor, key))
        if stored is None:
            return True
        return stored - now < (new.expires_at - now) / 2

    def __len__(self) -> int:
        return sum(len(contacts) for contacts in self._aors.values())

    def all_live(self, now: float) -> list[Binding]:
        """Every live binding, by AOR."""
        return [
            b for aor in sorted(self._aors) for b in self._aors[aor].values() if b.expires_at > now
        ]

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Live contacts of an AOR, highest q first (RFC 3261 §16.6)."""
        contacts = self._aors.get(aor)
        if not contacts:
            return []
        live = [b for b in contacts.values() if b.expires_at > now]
        return sorted(live, key=lambda b: -(b.q if b.q is not None else 1.0))

    def expire(self, now: float) -> list[Change]:
        """Drop bindings whose time is up."""
        changes: list[Change] = []
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires_at, aor, key = heapq.heappop(heap)
            contacts = self._aors.get(aor)
            binding = contacts.get(key) if contacts else None
            if contacts is None or binding is None or binding.expires_at != expires_at:
                continue  # refreshed or removed since this entry was pushed
            del contacts[key]
            self._stored.pop((aor, key), None)
            changes.append(Remove(aor, binding.contact))
            if not contacts:
                del self._aors[aor]
        if len(heap) > 4 * len(self) + 64:
            self._compact()
        return changes

    def drop_aors(self, keep: Iterable[str]) -> list[Change]:
        """Forget bindings of AORs not in ``keep`` (extensions deleted meanwhile)."""
        kept = set(keep)
        changes: list[Change] = []
        for aor in [a for a in self._aors if a not in kept]:
            for key, b in self._aors.pop(aor).items():
                self._stored.pop((aor, key), None)
                changes.append(Remove(aor, b.contact))
        return changes

    def _compact(self) -> None:
        self._expiries = [
            (b.expires_at, aor, key)
            for aor, contacts in self._aors.items()
            for key, b in contacts.items()
        ]
        heapq.heapify(self._expiries)
        self._stored = {
            (aor, key): stored
            for (aor, key), stored in self._stored.items()
            if key in self._aors.get(aor, {})
        }

    def register(
        self, request: Request, aor: str, peer: Peer, now: float
    ) -> tuple[Answer, list[Change]]:
        """Process an authenticated REGISTER for ``aor`` (steps 5-8 of §10.3)."""
        cfg = self.config
        call_id = request.call_id
        cseq = request.cseq().number
        header_expires: int | None = None
        if (text := request.get("Expires")) is not None:
            header_expires = parse_uint(text, "Expires")
        contact_values = request.get_all("Contact")
        current = self._aors.get(aor, {})

        if contact_values == ["*"]:
            # §10.3 step 6: wildcard only with Expires: 0.
            if header_expires != 0:
                return Answer(400, "Wildcard Contact needs Expires: 0"), []
            for binding in current.values():
                if binding.call_id == call_id and cseq <= binding.cseq:
                    return Answer(400, "CSeq out of order"), []
            changes: list[Change] = [Remove(aor, b.contact) for b in current.values()]
            for key in current:
                self._stored.pop((aor, key), None)
            self._aors.pop(aor, None)
            return Answer(200, headers=_date(now)), changes
        if "*" in contact_values:
            return Answer(400, "Wildcard Contact must stand alone"), []

        updates: list[tuple[str, NameAddr, int]] = []
        for value in contact_values:
            addr = NameAddr.parse(value)
            if not addr.uri.is_sip:
                return Answer(400, f"Unsupported contact scheme {addr.uri.scheme}"), []
            expires = header_expires
            if (param := addr.param("expires")) is not None:
                expires = parse_uint(param, "expires parameter")
            if expires is None:
                expires = cfg.default_expires
            if 0 < expires < cfg.min_expires:
                return Answer(423, headers=(("Min-Expires", str(cfg.min_expires)),)), []
            updates.append((contact_key(addr.uri), addr, min(expires, cfg.max_expires)))

        new = dict(current)
        changes = []
        for key, addr, expires in updates:
            old = new.get(key)
            if old is not None and old.call_id == call_id and cseq <= old.cseq:
                return Answer(400, "CSeq out of order"), []
            contact = _uri_text(addr.uri)
            if expires == 0:
                if old is not None:
                    del new[key]
                    self._stored.pop((aor, key), None)
                    changes.append(Remove(aor, old.contact))
                continue
            binding = Binding(
                aor=aor,
                contact=contact,
                expires_at=now + expires,
                call_id=call_id,
                cseq=cseq,
                q=_q(addr),
                transport=peer.transport,
                source_host=peer.host,
                source_port=peer.port,
                user_agent=(request.get("User-Agent") or "")[:200],
                instance=(addr.param("+sip.instance") or "")[:200],
                path=",".join(request.get_all("Path"))[:1000],
            )
            if old is not None and old.contact != contact:
                changes.append(Remove(aor, old.contact))
            new[key] = binding
            if self._worth_storing(aor, key, old, binding, now):
                changes.append(Upsert(binding))
                self._stored[(aor, key)] = binding.expires_at
            heapq.heappush(self._expiries, (binding.expires_at, aor, key))
        live = {k: b for k, b in new.items() if b.expires_at > now}
        if len(live) > cfg.max_contacts:
            return Answer(403, "Too many contacts for this extension"), []
        if live:
            self._aors[aor] = live
        else:
            self._aors.pop(aor, None)
        return Answer(
            200, headers=tuple(_contact_headers(live.values(), now)) + _date(now)
        ), changes


@functools.lru_cache(maxsize=4096)
def _uri_text(uri: Uri) -> str:
    return str(uri)  # memoized: the same phones refresh the same contacts all day


def _same_except_time(a: Binding, b: Binding) -> bool:
    return (
        a.contact == b.contact
        and a.call_id == b.call_id
        and a.q == b.q
        and a.transport == b.transport
        and a.source_host == b.source_host
        and a.source_port == b.source_port
        and a.user_agent == b.user_agent
        and a.instance == b.instance
        and a.path == b.path
    )


def _q(addr: NameAddr) -> float | None:
    text = addr.param("q")
    if text is None:
        return None
    try:
        q = float(text)
    except ValueError:
        raise ParseError(f"bad q value {text[:10]!r}") from None
    if not 0.0 <= q <= 1.0:
        raise ParseError(f"q value out of range {text[:10]!r}")
    return q


def _contact_headers(bindings: Iterable[Binding], now: float) -> list[Header]:
    # §10.3 step 8: the 200 lists every current binding with its remaining time.
    return [
        ("Contact", f"<{b.contact}>;expires={max(0, int(b.expires_at - now + 0.5))}")
        for b in bindings
    ]


@functools.lru_cache(maxsize=4)
def _date_at(second: int) -> tuple[Header, ...]:
    return (("Date", formatdate(second, usegmt=True)),)


def _date(now: float) -> tuple[Header, ...]:
    # formatdate is slow next to the rest of a REGISTER; a second's worth share one.
    return _date_at(int(now))
