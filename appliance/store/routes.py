"""Dialplan routes kept in SQLite (table `dialplan_route`), edited from the web UI.

How they combine with the routes of yakyak.toml ``[dialplan] routes``:

- yakyak.toml's routes come first, stored routes after them in the order they were
  added. Order only decides ties (two patterns of the same rank: the first wins), so a
  yakyak.toml route wins a tie against a stored one.
- A stored route may not reuse the name or the pattern of a yakyak.toml route (the
  Dialplan would refuse the pair, and the stored one could never match): ``check_route``
  refuses it with a message naming the yakyak.toml route.
- Should yakyak.toml be edited later so that it clashes with a stored route, the stored
  route is left out of the running dialplan with a warning in the log
  (``combine``), rather than the whole dialplan failing.

Each route's target is stored as the table ``parse_route`` reads from yakyak.toml, so
one parser checks both kinds. Changes bump `revision.directory` (triggers of migration
v8), which the running server polls to rebuild its dialplan with ``build_dialplan``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import peewee

from appliance.pbx.dialplan import (
    MAX_ROUTES,
    AnalogTarget,
    Dialplan,
    DialplanError,
    ExtensionTarget,
    IvrTarget,
    Pattern,
    PatternError,
    RejectTarget,
    Route,
    Target,
    TrunkTarget,
    VoicemailTarget,
    parse_route,
)
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.ivr import load_ivr
from appliance.store.models import DialplanRoute, Extension, Mailbox

log = logging.getLogger(__name__)

# Names appear in URLs (/routes/<name>) and in logs: no spaces, no slashes.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_PATTERN: Final = 64


class RouteError(StoreError):
    """A route refused; ``field`` names the part at fault: "name", "pattern",
    "target", or "" for the route as a whole."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class StoredRoute:
    route: Route
    created_at: float
    updated_at: float

    @property
    def name(self) -> str:
        return self.route.name


# -- the target table, as parse_route reads it ------------------------------------------


def target_dict(target: Target) -> dict[str, object]:
    """The inverse of ``parse_route``'s target parsing: ``{"type": "ivr", "menu": ...}``."""
    match target:
        case ExtensionTarget(number=number):
            return {"type": "extension", "number": number}
        case VoicemailTarget(mailbox=mailbox):
            return {"type": "voicemail", "mailbox": mailbox}
        case IvrTarget(menu=menu):
            return {"type": "ivr", "menu": menu}
        case TrunkTarget(name=name, strip=strip, prepend=prepend):
            return {"type": "trunk", "name": name, "strip": strip, "prepend": prepend}
        case AnalogTarget(port=port):
            return {"type": "analog", "port": port}
        case RejectTarget(cause=cause):
            return {"type": "reject", "cause": cause.name.lower()}
    raise TypeError(f"not a dialplan target: {target!r}")  # pragma: no cover - exhaustive


def route_dict(route: Route) -> dict[str, object]:
    return {"name": route.name, "pattern": route.pattern, "target": target_dict(route.target)}


def pattern_key(pattern: str) -> str:
    """The pattern as the Dialplan compares them for duplicates."""
    return "_" + pattern[1:].upper() if pattern.startswith("_") else pattern


# -- checks ------------------------------------------------------------------------------


def check_route_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RouteError(
            "a route name is 1-64 letters, digits, '.', '-' or '_', starting with a "
            "letter or digit",
            "name",
        )
    return name


def check_pattern(pattern: str) -> str:
    """The Dialplan's own pattern check, bounded in length."""
    if len(pattern) > MAX_PATTERN:
        raise RouteError(f"a pattern is at most {MAX_PATTERN} characters", "pattern")
    try:
        Pattern.parse(pattern)
    except PatternError as exc:
        raise RouteError(str(exc), "pattern") from None
    return pattern


def clash(route: Route, others: Iterable[Route]) -> tuple[str, Route] | None:
    """("name" or "pattern", the other route) when ``route`` cannot sit beside one of
    ``others``; None when it can."""
    key = pattern_key(route.pattern)
    for other in others:
        if other.name == route.name:
            return "name", other
        if pattern_key(other.pattern) == key:
            return "pattern", other
    return None


def check_route(route: Route, config_routes: Sequence[Route], stored: Sequence[Route]) -> None:
    """RouteError unless ``route`` may be stored beside the yakyak.toml routes and the
    ``stored`` ones (which must not include the route it replaces). The Dialplan itself
    has the last word, so anything it refuses is refused here with its message."""
    check_route_name(route.name)
    check_pattern(route.pattern)
    found = clash(route, config_routes)
    if found is not None:
        what, other = found
        raise RouteError(
            f"{what} {getattr(other, what)!r} is used by route {other.name!r} of "
            "yakyak.toml; choose another",
            what,
        )
    found = clash(route, stored)
    if found is not None:
        what, other = found
        raise RouteError(
            f"{what} {getattr(other, what)!r} is already used by route {other.name!r}", what
        )
    try:
        Dialplan((*config_routes, *stored, route))
    except DialplanError as exc:  # name and pattern passed above: the target is at fault
        raise RouteError(str(exc), "target") from None


# -- reading and writing -----------------------------------------------------------------


def _parse_row(row: DialplanRoute) -> Route:
    """The stored row as a Route; DialplanError (or ValueError for bad JSON) if unusable."""
    target: object = json.loads(row.target)
    return parse_route({"name": row.name, "pattern": row.pattern, "target": target}, row.id)


def list_routes(db: peewee.SqliteDatabase) -> list[StoredRoute]:
    """Every usable stored route, in the order added. A row that no longer parses
    (edited by hand) is logged and skipped: it must not take the dialplan down."""
    found = []
    for row in DialplanRoute.select().order_by(DialplanRoute.id).execute(db):
        try:
            route = _parse_row(row)
        except ValueError as exc:  # DialplanError, json.JSONDecodeError
            log.error("stored dialplan route %r skipped: %s", row.name, exc)
            continue
        found.append(StoredRoute(route, row.created_at, row.updated_at))
    return found


def load_routes(db: peewee.SqliteDatabase) -> tuple[Route, ...]:
    """The stored routes for the running dialplan, in the order added."""
    return tuple(s.route for s in list_routes(db))


def get_route(db: peewee.SqliteDatabase, name: str) -> StoredRoute:
    row = DialplanRoute.select().where(DialplanRoute.name == name).first(db)
    if row is None:
        raise NotFoundError(f"no route {name!r}")
    try:
        route = _parse_row(row)
    except ValueError as exc:
        raise StoreError(f"stored route {name!r} is unusable: {exc}") from None
    return StoredRoute(route, row.created_at, row.updated_at)


def add_route(
    db: peewee.SqliteDatabase,
    route: Route,
    config_routes: Sequence[Route] = (),
    clock: Callable[[], float] = time.time,
) -> StoredRoute:
    """Store a new route after checking it with ``check_route``."""
    with db.atomic():
        stored = load_routes(db)
        if len(stored) + len(config_routes) >= MAX_ROUTES:
            raise RouteError(f"at most {MAX_ROUTES} routes")
        check_route(route, config_routes, stored)
        now = clock()
        try:
            DialplanRoute.insert(
                name=route.name,
                pattern=route.pattern,
                pattern_key=pattern_key(route.pattern),
                target=json.dumps(target_dict(route.target), sort_keys=True),
                created_at=now,
                updated_at=now,
            ).execute(db)
        except peewee.IntegrityError:  # another writer added the same meanwhile
            raise RouteError(
                f"route {route.name!r} or pattern {route.pattern!r} was added meanwhile"
            ) from None
    return StoredRoute(route, now, now)


def replace_route(
    db: peewee.SqliteDatabase,
    name: str,
    route: Route,
    config_routes: Sequence[Route] = (),
    clock: Callable[[], float] = time.time,
) -> StoredRoute:
    """Change route ``name`` (its name too) in place: it keeps its place in the order."""
    with db.atomic():
        row = DialplanRoute.select().where(DialplanRoute.name == name).first(db)
        if row is None:
            raise NotFoundError(f"no route {name!r}")
        others = [r for r in load_routes(db) if r.name != name]
        check_route(route, config_routes, others)
        now = clock()
        try:
            DialplanRoute.update(
                name=route.name,
                pattern=route.pattern,
                pattern_key=pattern_key(route.pattern),
                target=json.dumps(target_dict(route.target), sort_keys=True),
                updated_at=now,
            ).where(DialplanRoute.id == row.id).execute(db)
        except peewee.IntegrityError:
            raise RouteError(
                f"route {route.name!r} or pattern {route.pattern!r} was added meanwhile"
            ) from None
    return StoredRoute(route, row.created_at, now)


def delete_route(db: peewee.SqliteDatabase, name: str) -> None:
    if not DialplanRoute.delete().where(DialplanRoute.name == name).execute(db):
        raise NotFoundError(f"no route {name!r}")


# -- the running dialplan ----------------------------------------------------------------


def combine(
    config_routes: Sequence[Route], stored: Sequence[Route]
) -> tuple[tuple[Route, ...], list[tuple[Route, str]]]:
    """(the routes of the dialplan, the stored routes left out and why): yakyak.toml's
    first, then each stored route that does not clash with one before it."""
    kept: list[Route] = list(config_routes)
    left_out: list[tuple[Route, str]] = []
    names = {r.name: r for r in kept}
    keys = {pattern_key(r.pattern): r for r in kept}
    for route in stored:
        key = pattern_key(route.pattern)
        if route.name in names:
            left_out.append((route, f"name used by route {names[route.name].name!r}"))
        elif key in keys:
            left_out.append((route, f"pattern used by route {keys[key].name!r}"))
        elif len(kept) >= MAX_ROUTES:
            left_out.append((route, f"more than {MAX_ROUTES} routes"))
        else:
            kept.append(route)
            names[route.name] = route
            keys[key] = route
    return tuple(kept), left_out


def build_dialplan(config_routes: Sequence[Route], db: peewee.SqliteDatabase) -> Dialplan:
    """The dialplan the PBX runs: yakyak.toml's routes, then the stored ones.

    Never fails for a stored route: one that cannot be used is left out with a
    warning, and if the whole still does not build, yakyak.toml's routes alone run.
    """
    routes, left_out = combine(config_routes, load_routes(db))
    for route, why in left_out:
        log.warning("stored dialplan route %r left out: %s", route.name, why)
    try:
        return Dialplan(routes)
    except DialplanError as exc:
        log.error("stored dialplan routes not used: %s", exc)
        return Dialplan(config_routes)


# -- what a target may name ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetChoices:
    """The numbers and names a route or a menu may point at, as the PBX knows them."""

    extensions: tuple[str, ...]
    mailboxes: tuple[str, ...]  # enabled mailboxes (a disabled one takes no messages)
    ivr_names: tuple[str, ...]  # menus and schedules of the auto-attendant document


def _by_number(numbers: Collection[str]) -> tuple[str, ...]:
    return tuple(sorted(numbers, key=lambda n: (len(n), n)))


def target_choices(db: peewee.SqliteDatabase) -> TargetChoices:
    extensions = [row.number for row in Extension.select(Extension.number).execute(db)]
    boxes = Mailbox.select(Extension.number).join(Extension).where(Mailbox.enabled == True)  # noqa: E712
    mailboxes = [row.extension.number for row in boxes.execute(db)]
    try:
        document = load_ivr(db)
    except StoreError as exc:
        log.error("auto-attendant names not read: %s", exc)
        document = None
    names: list[str] = []
    if isinstance(document, dict):
        for section in ("menus", "schedules"):
            table = document.get(section)
            if isinstance(table, dict):
                names.extend(str(name) for name in table)
    return TargetChoices(_by_number(extensions), _by_number(mailboxes), tuple(sorted(names)))
