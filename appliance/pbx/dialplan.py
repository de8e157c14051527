"""The dialplan: an explicit routing table from dialled numbers to call targets.

Pattern syntax (Asterisk-style, as installers know it):

- ``101``, ``*97``, ``+4930123`` -- an exact number: digits, ``*``, ``#``, ``+``.
- A leading ``_`` makes a pattern; after it each character matches one dialled character:
  ``X`` any digit 0-9, ``Z`` 1-9, ``N`` 2-9 (letters in either case), ``[15-7]`` one
  digit from a class (single digits and ``a-b`` ranges), any of ``0-9 * # +`` itself,
  and ``.`` as the last character: one or more further characters of any kind.
  ``_1XX`` matches 100-199; ``_0.`` matches any number of two or more characters
  starting with 0. Asterisk's ``!`` is not supported.

Choosing a route for a number:

1. a route whose exact number equals it;
2. else, if it is an existing extension, that extension (built-in rule);
3. else the matching pattern with the fewest wildcard positions, where any pattern
   ending in ``.`` ranks after every fixed-length one (``_1XX`` beats ``_1.`` for 123);
   a tie goes to the route defined first;
4. else reject with Q.850 cause 1, unallocated number (SIP 404, RFC 3398 §7.2.4.1).

A number that is not dialable (empty, other characters, too long) is rejected with cause
28, invalid number format (SIP 484). ``route()`` never raises.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from appliance.pbx.causes import Cause

DIAL_CHARS: Final = frozenset("0123456789*#+")
MAX_NUMBER_LENGTH: Final = 32  # E.164 is 15 digits; leave room for prefixes and codes
MAX_ROUTES: Final = 10_000
_DIGITS: Final = "0123456789"
T = TypeVar("T")
_LETTER_CLASSES: Final[dict[str, frozenset[str]]] = {
    "X": frozenset("0123456789"),
    "Z": frozenset("123456789"),
    "N": frozenset("23456789"),
}


class DialplanError(ValueError):
    """A dialplan that cannot be used; the message names the route (and index/field)."""


class PatternError(ValueError):
    """A malformed pattern; DialplanError wraps it with the route's name."""


@dataclass(frozen=True, slots=True)
class ExtensionTarget:
    number: str


@dataclass(frozen=True, slots=True)
class VoicemailTarget:
    mailbox: str


@dataclass(frozen=True, slots=True)
class IvrTarget:
    menu: str


@dataclass(frozen=True, slots=True)
class TrunkTarget:
    """Send out through a trunk: drop ``strip`` leading characters, then add ``prepend``."""

    name: str
    strip: int = 0
    prepend: str = ""

    def dial_string(self, number: str) -> str:
        return self.prepend + number[self.strip :]


@dataclass(frozen=True, slots=True)
class AnalogTarget:
    """An analog port: an FXO line dials ``dial_string`` (the outside-line prefix
    stripped, say), an FXS port rings."""

    port: int  # an FXS or FXO port of the board
    strip: int = 0
    prepend: str = ""

    def dial_string(self, number: str) -> str:
        return self.prepend + number[self.strip :]


@dataclass(frozen=True, slots=True)
class RejectTarget:
    cause: Cause


Target = ExtensionTarget | VoicemailTarget | IvrTarget | TrunkTarget | AnalogTarget | RejectTarget


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    target: Target
    name: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    number: str  # as dialled
    target: Target
    route: str | None  # name of the route used; None for the built-in rules
    destination: str  # what to ring or send: the extension, the trunk dial string, ...


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: one set of allowed characters per position, maybe a tail."""

    text: str
    positions: tuple[frozenset[str], ...]
    open_ended: bool  # ends in "." (one or more further characters)

    @classmethod
    def parse(cls, text: str) -> Pattern:
        if not text:
            raise PatternError("empty pattern")
        if not text.startswith("_"):
            bad = sorted(set(text) - DIAL_CHARS)
            if bad:
                raise PatternError(
                    f"exact number {text!r} has {bad[0]!r}; use digits, *, #, + "
                    "or start a pattern with '_'"
                )
            return cls(text, tuple(frozenset(c) for c in text), open_ended=False)
        positions: list[frozenset[str]] = []
        body = text[1:]
        i = 0
        open_ended = False
        while i < len(body):
            ch = body[i]
            if ch == ".":
                if i != len(body) - 1:
                    raise PatternError(f"'.' must be last in {text!r}")
                open_ended = True
            elif ch.upper() in _LETTER_CLASSES:
                positions.append(_LETTER_CLASSES[ch.upper()])
            elif ch in DIAL_CHARS:
                positions.append(frozenset(ch))
            elif ch == "[":
                close = body.find("]", i)
                if close < 0:
                    raise PatternError(f"unclosed '[' in {text!r}")
                positions.append(_parse_class(body[i + 1 : close], text))
                i = close
            else:
                raise PatternError(f"unexpected {ch!r} in {text!r}")
            i += 1
        if not positions:
            raise PatternError(f"pattern {text!r} matches nothing fixed; put digits first")
        return cls(text, tuple(positions), open_ended)

    @property
    def is_exact(self) -> bool:
        return not self.text.startswith("_")

    @property
    def wildcards(self) -> int:
        return sum(1 for p in self.positions if len(p) > 1)

    def rank(self) -> tuple[bool, int]:
        """Lower ranks are more specific (see the module docstring)."""
        return (self.open_ended, self.wildcards)

    def matches(self, number: str) -> bool:
        n = len(self.positions)
        if len(number) < n or (len(number) > n and not self.open_ended):
            return False
        if self.open_ended and len(number) == n:
            return False  # "." needs at least one character
        return all(c in allowed for c, allowed in zip(number, self.positions, strict=False))


def _parse_class(inner: str, text: str) -> frozenset[str]:
    if not inner:
        raise PatternError(f"empty '[]' in {text!r}")
    chars: set[str] = set()
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch not in _DIGITS:
            raise PatternError(f"{ch!r} in a '[...]' class in {text!r}; only digits and ranges")
        if i + 2 < len(inner) and inner[i + 1] == "-":
            end = inner[i + 2]
            if end not in _DIGITS or end < ch:
                raise PatternError(f"bad range '{ch}-{end}' in {text!r}")
            chars.update(_DIGITS[int(ch) : int(end) + 1])
            i += 3
        elif i + 1 < len(inner) and inner[i + 1] == "-":
            raise PatternError(f"unfinished range in {text!r}")
        else:
            chars.add(ch)
            i += 1
    return frozenset(chars)


def _validate_target(target: Target) -> str | None:
    """Why the target is unusable, or None."""
    match target:
        case ExtensionTarget(number=n):
            if not n or set(n) - DIAL_CHARS:
                return f"extension number {n!r} is not dialable"
        case VoicemailTarget(mailbox=m):
            if not m:
                return "empty mailbox"
        case IvrTarget(menu=m):
            if not m:
                return "empty IVR menu"
        case TrunkTarget(name=name, strip=strip, prepend=prepend):
            if not name:
                return "empty trunk name"
            if strip < 0:
                return f"strip {strip} is negative"
            if set(prepend) - DIAL_CHARS:
                return f"prepend {prepend!r} is not dialable"
        case AnalogTarget(port=port, strip=strip, prepend=prepend):
            if port < 0:
                return f"analog port {port} is negative"
            if strip < 0:
                return f"strip {strip} is negative"
            if set(prepend) - DIAL_CHARS:
                return f"prepend {prepend!r} is not dialable"
        case RejectTarget(cause=cause):
            if not isinstance(cause, Cause):
                return f"reject cause {cause!r} is not a Q.850 Cause"
    return None


class Dialplan:
    """A validated routing table. Build one with ``Dialplan(routes)`` or ``from_dicts``."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        if len(self.routes) > MAX_ROUTES:
            raise DialplanError(f"{len(self.routes)} routes; at most {MAX_ROUTES}")
        self._exact: dict[str, Route] = {}
        self._patterns: list[tuple[Route, Pattern]] = []
        seen_names: set[str] = set()
        seen_patterns: dict[str, str] = {}
        for route in self.routes:
            if not route.name:
                raise DialplanError(f"route with pattern {route.pattern!r} has no name")
            if route.name in seen_names:
                raise DialplanError(f"route {route.name!r}: duplicate name")
            seen_names.add(route.name)
            try:
                pattern = Pattern.parse(route.pattern)
            except PatternError as exc:
                raise DialplanError(f"route {route.name!r}: {exc}") from None
            key = route.pattern if pattern.is_exact else "_" + route.pattern[1:].upper()
            if key in seen_patterns:
                raise DialplanError(
                    f"route {route.name!r}: pattern {route.pattern!r} already used by "
                    f"route {seen_patterns[key]!r}, so it could never match"
                )
            seen_patterns[key] = route.name
            if (problem := _validate_target(route.target)) is not None:
                raise DialplanError(f"route {route.name!r}: {problem}")
            if pattern.is_exact:
                self._exact[route.pattern] = route
            else:
                self._patterns.append((route, pattern))
        # Stable sort: among equal ranks the route defined first stays first.
        self._patterns.sort(key=lambda rp: rp[1].rank())

    @classmethod
    def from_dicts(cls, items: object) -> Dialplan:
        """Build from parsed TOML/JSON: a list of route tables (see ``parse_route``)."""
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise DialplanError("dialplan: expected a list of routes")
        return cls(parse_route(item, index) for index, item in enumerate(items))

    def route(self, number: str, extensions: Collection[str] = ()) -> RouteDecision:
        if not number or len(number) > MAX_NUMBER_LENGTH or not set(number) <= DIAL_CHARS:
            reject = RejectTarget(Cause.INVALID_NUMBER_FORMAT)
            return RouteDecision(number, reject, None, number)
        if (exact := self._exact.get(number)) is not None:
            return _decide(number, exact.target, exact.name)
        if number in extensions:
            return _decide(number, ExtensionTarget(number), None)
        for route, pattern in self._patterns:
            if pattern.matches(number):
                return _decide(number, route.target, route.name)
        return _decide(number, RejectTarget(Cause.UNALLOCATED_NUMBER), None)


def _decide(number: str, target: Target, name: str | None) -> RouteDecision:
    match target:
        case ExtensionTarget(number=ext):
            destination = ext
        case TrunkTarget() | AnalogTarget():
            destination = target.dial_string(number)
        case _:
            destination = number
    return RouteDecision(number, target, name, destination)


# --- parsing from TOML/JSON data -----------------------------------------------------

_TARGET_FIELDS: Final[dict[str, dict[str, type]]] = {
    "extension": {"number": str},
    "voicemail": {"mailbox": str},
    "ivr": {"menu": str},
    "trunk": {"name": str, "strip": int, "prepend": str},
    "analog": {"port": int, "strip": int, "prepend": str},
    "reject": {"cause": object},  # a Q.850 number or a Cause name
}
_REQUIRED: Final[dict[str, frozenset[str]]] = {
    "extension": frozenset({"number"}),
    "voicemail": frozenset({"mailbox"}),
    "ivr": frozenset({"menu"}),
    "trunk": frozenset({"name"}),
    "analog": frozenset({"port"}),
    "reject": frozenset({"cause"}),
}
_ROUTE_FIELDS: Final = frozenset({"name", "pattern", "target"})


def parse_route(item: object, index: int) -> Route:
    """One route from ``{"name": "local", "pattern": "_1XX", "target": {"type":
    "extension", "number": "100"}}``. Errors read ``routes[2].target.port: ...``."""
    where = f"routes[{index}]"
    if not isinstance(item, Mapping):
        raise DialplanError(f"{where}: expected a table, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in _ROUTE_FIELDS)
    if unknown:
        raise DialplanError(f"{where}.{unknown[0]}: unknown field")
    name = _field(item, "name", str, where)
    pattern = _field(item, "pattern", str, where)
    raw_target = item.get("target")
    if not isinstance(raw_target, Mapping):
        raise DialplanError(f"{where}.target: expected a table with a 'type'")
    return Route(pattern, _parse_target(raw_target, f"{where}.target"), name)


def _parse_target(raw: Mapping[object, object], where: str) -> Target:
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TARGET_FIELDS:
        expected = ", ".join(_TARGET_FIELDS)
        raise DialplanError(f"{where}.type: {kind!r} is not one of {expected}")
    fields = _TARGET_FIELDS[kind]
    for key in raw:
        if key != "type" and key not in fields:
            raise DialplanError(f"{where}.{key}: unknown field for a {kind} target")
    for key in _REQUIRED[kind]:
        if key not in raw:
            raise DialplanError(f"{where}.{key}: missing")
    if kind == "extension":
        return ExtensionTarget(_field(raw, "number", str, where))
    if kind == "voicemail":
        return VoicemailTarget(_field(raw, "mailbox", str, where))
    if kind == "ivr":
        return IvrTarget(_field(raw, "menu", str, where))
    if kind == "trunk":
        strip = _field(raw, "strip", int, where) if "strip" in raw else 0
        prepend = _field(raw, "prepend", str, where) if "prepend" in raw else ""
        return TrunkTarget(_field(raw, "name", str, where), strip, prepend)
    if kind == "analog":
        strip = _field(raw, "strip", int, where) if "strip" in raw else 0
        prepend = _field(raw, "prepend", str, where) if "prepend" in raw else ""
        return AnalogTarget(_field(raw, "port", int, where), strip, prepend)
    return RejectTarget(_parse_cause(raw["cause"], f"{where}.cause"))


def _parse_cause(value: object, where: str) -> Cause:
    if isinstance(value, bool):
        raise DialplanError(f"{where}: expected a Q.850 cause number or name")
    if isinstance(value, int):
        try:
            return Cause(value)
        except ValueError:
            raise DialplanError(f"{where}: {value} is not a cause the PBX knows") from None
    if isinstance(value, str):
        try:
            return Cause[value.upper()]
        except KeyError:
            raise DialplanError(f"{where}: {value!r} is not a Cause name") from None
    raise DialplanError(f"{where}: expected a Q.850 cause number or name")


def _field(raw: Mapping[object, object], key: str, kind: type[T], where: str) -> T:
    value = raw.get(key)
    # bool is an int in Python; a TOML `true` is never a port or a strip count.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DialplanError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value
