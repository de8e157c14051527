"""Dialplan routes in SQLite: checked by the dialplan's own parser, combined after the
yakyak.toml routes, and every change bumps the revision the running PBX polls."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import peewee
import pytest

from appliance.pbx.causes import Cause
from appliance.pbx.dialplan import (
    AnalogTarget,
    Dialplan,
    ExtensionTarget,
    IvrTarget,
    RejectTarget,
    Route,
    TrunkTarget,
    VoicemailTarget,
    parse_route,
)
from appliance.store.errors import NotFoundError
from appliance.store.extensions import Directory
from appliance.store.ivr import save_ivr
from appliance.store.migrations import DIRECTORY_REVISION_KEY, MIGRATIONS, migrate_to_current
from appliance.store.models import DialplanRoute
from appliance.store.routes import (
    RouteError,
    add_route,
    build_dialplan,
    combine,
    delete_route,
    get_route,
    list_routes,
    load_routes,
    replace_route,
    route_dict,
    target_choices,
)
from appliance.store.settings import get_setting
from appliance.store.voicemail import VoicemailStore

if TYPE_CHECKING:  # conftest is imported by pytest, not at run time
    from conftest import ManualClock

TOML_ROUTES = (
    Route("0", ExtensionTarget("100"), "operator"),
    Route("_9.", RejectTarget(Cause.CALL_REJECTED), "no-outside"),
)


def revision(db: peewee.SqliteDatabase) -> int:
    value = get_setting(db, DIRECTORY_REVISION_KEY)
    assert isinstance(value, int)
    return value


def test_every_target_round_trips_through_parse_route() -> None:
    for target in (
        ExtensionTarget("101"),
        VoicemailTarget("101"),
        IvrTarget("main"),
        TrunkTarget("sip", 1, "00"),
        AnalogTarget(3),
        RejectTarget(Cause.USER_BUSY),
    ):
        route = Route("_1XX", target, "r")
        assert parse_route(route_dict(route), 0) == route


def test_add_list_load_keep_the_order_added(db: peewee.SqliteDatabase, clock: ManualClock) -> None:
    add_route(db, Route("_2XX", ExtensionTarget("200"), "b"), clock=clock)
    clock.now += 5
    add_route(db, Route("_1XX", VoicemailTarget("100"), "a"), clock=clock)
    assert load_routes(db) == (
        Route("_2XX", ExtensionTarget("200"), "b"),
        Route("_1XX", VoicemailTarget("100"), "a"),
    )
    stored = list_routes(db)
    assert [s.created_at for s in stored] == [clock.now - 5, clock.now]
    assert get_route(db, "a").route.target == VoicemailTarget("100")
    row = DialplanRoute.select().where(DialplanRoute.name == "a").first(db)
    assert json.loads(row.target) == {"type": "voicemail", "mailbox": "100"}


def test_bad_names_and_patterns_are_refused_naming_the_field(db: peewee.SqliteDatabase) -> None:
    cases = [
        (Route("_1XX", ExtensionTarget("1"), "has space"), "name"),
        (Route("_1XX", ExtensionTarget("1"), ""), "name"),
        (Route("_1[X", ExtensionTarget("1"), "ok"), "pattern"),
        (Route("12a", ExtensionTarget("1"), "ok"), "pattern"),
        (Route("_" + "X" * 70, ExtensionTarget("1"), "ok"), "pattern"),
        (Route("_1XX", ExtensionTarget("1a"), "ok"), "target"),
        (Route("_1XX", AnalogTarget(-1), "ok"), "target"),
    ]
    for route, field in cases:
        with pytest.raises(RouteError) as caught:
            add_route(db, route)
        assert caught.value.field == field, (route, str(caught.value))
    assert load_routes(db) == ()


def test_a_route_may_not_reuse_a_toml_name_or_pattern(db: peewee.SqliteDatabase) -> None:
    with pytest.raises(RouteError, match="route 'operator' of yakyak.toml") as by_name:
        add_route(db, Route("_5XX", ExtensionTarget("500"), "operator"), TOML_ROUTES)
    assert by_name.value.field == "name"
    # A pattern equal but for the letters' case is the same pattern to the Dialplan.
    with pytest.raises(RouteError, match="'_9.' is used by route 'no-outside'") as by_pattern:
        add_route(db, Route("_9.", ExtensionTarget("500"), "outside"), TOML_ROUTES)
    assert by_pattern.value.field == "pattern"
    add_route(db, Route("_1xx", ExtensionTarget("100"), "local"), TOML_ROUTES)
    with pytest.raises(RouteError, match="already used by route 'local'"):
        add_route(db, Route("_1XX", ExtensionTarget("100"), "other"), TOML_ROUTES)


def test_replace_keeps_the_place_and_may_rename(
    db: peewee.SqliteDatabase, clock: ManualClock
) -> None:
    add_route(db, Route("_1XX", ExtensionTarget("100"), "a"), clock=clock)
    add_route(db, Route("_2XX", ExtensionTarget("200"), "b"), clock=clock)
    clock.now += 60
    replace_route(db, "a", Route("_3XX", IvrTarget("main"), "c"), clock=clock)
    assert [r.name for r in load_routes(db)] == ["c", "b"]
    stored = get_route(db, "c")
    assert stored.updated_at == clock.now and stored.created_at == clock.now - 60
    # its own pattern is no clash with itself
    replace_route(db, "c", Route("_3XX", IvrTarget("night"), "c"))
    with pytest.raises(RouteError, match="already used by route 'b'"):
        replace_route(db, "c", Route("_2XX", IvrTarget("main"), "c"))
    with pytest.raises(NotFoundError):
        replace_route(db, "nope", Route("_4XX", IvrTarget("main"), "nope"))


def test_delete(db: peewee.SqliteDatabase) -> None:
    add_route(db, Route("_1XX", ExtensionTarget("100"), "a"))
    delete_route(db, "a")
    assert load_routes(db) == ()
    with pytest.raises(NotFoundError):
        delete_route(db, "a")
    with pytest.raises(NotFoundError):
        get_route(db, "a")


def test_every_change_bumps_the_directory_revision(db: peewee.SqliteDatabase) -> None:
    before = revision(db)
    add_route(db, Route("_1XX", ExtensionTarget("100"), "a"))
    after_add = revision(db)
    replace_route(db, "a", Route("_1XX", ExtensionTarget("101"), "a"))
    after_replace = revision(db)
    delete_route(db, "a")
    assert before < after_add < after_replace < revision(db)


def test_toml_routes_come_first_and_win_ties() -> None:
    stored = (Route("_9.", ExtensionTarget("900"), "clash"), Route("_X.", IvrTarget("m"), "any"))
    routes, left_out = combine(TOML_ROUTES, stored)
    assert routes == (*TOML_ROUTES, stored[1])
    assert left_out == [(stored[0], "pattern used by route 'no-outside'")]
    plan = Dialplan(routes)
    assert plan.route("0").target == ExtensionTarget("100")
    assert plan.route("912").target == RejectTarget(Cause.CALL_REJECTED)  # both tie: toml first
    assert plan.route("812").target == IvrTarget("m")


def test_build_dialplan_leaves_out_what_cannot_run(
    db: peewee.SqliteDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    add_route(db, Route("_X.", IvrTarget("main"), "any"))
    add_route(db, Route("_0X.", IvrTarget("main"), "zero"))
    add_route(db, Route("555", ExtensionTarget("100"), "operator"))  # no toml route yet
    # A row edited by hand so it no longer parses.
    DialplanRoute.update(target='{"type": "teleport"}').where(DialplanRoute.name == "zero").execute(
        db
    )
    with caplog.at_level(logging.WARNING):
        plan = build_dialplan(TOML_ROUTES, db)
    assert [r.name for r in plan.routes] == ["operator", "no-outside", "any"]
    assert "'zero' skipped" in caplog.text
    assert "'operator' left out: name used by route 'operator'" in caplog.text
    assert plan.route("555").target == IvrTarget("main")  # the left-out exact route is gone


def test_target_choices(db: peewee.SqliteDatabase, tmp_path: Path) -> None:
    directory = Directory(db, "pbx.example.com")
    for number in ("1000", "101", "102"):
        directory.add(number, f"password-{number}")
    VoicemailStore(db, tmp_path / "vm").create_mailbox("102", None)
    save_ivr(db, {"menus": {"main": {}, "closed": {}}, "schedules": {"office": {}}})
    choices = target_choices(db)
    assert choices.extensions == ("101", "102", "1000")
    assert choices.mailboxes == ("102",)
    assert choices.ivr_names == ("closed", "main", "office")


def test_v7_database_gains_the_route_table(tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    old = peewee.SqliteDatabase(str(path), pragmas={"foreign_keys": 1})
    migrate_to_current(old, MIGRATIONS[:7])
    assert "dialplan_route" not in old.get_tables()
    migrate_to_current(old)
    assert "dialplan_route" in old.get_tables()
    add_route(old, Route("_1XX", ExtensionTarget("100"), "a"))
    assert load_routes(old) == (Route("_1XX", ExtensionTarget("100"), "a"),)
    old.close()
