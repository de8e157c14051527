"""Dialplan: pattern syntax, specificity, the extension rule, rejects, validation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.pbx.causes import Cause, status_for
from appliance.pbx.dialplan import (
    AnalogTarget,
    Dialplan,
    DialplanError,
    ExtensionTarget,
    IvrTarget,
    Pattern,
    RejectTarget,
    Route,
    RouteDecision,
    Target,
    TrunkTarget,
    VoicemailTarget,
)

EXTENSIONS = frozenset({"101", "102", "201"})


def plan(*routes: tuple[str, Target]) -> Dialplan:
    return Dialplan(Route(p, t, f"r{i}") for i, (p, t) in enumerate(routes))


def matches(pattern: str) -> set[str]:
    """Which 1-4 digit numbers a pattern matches."""
    compiled = Pattern.parse(pattern)
    candidates = [str(n) for n in range(10)] + [f"{n:02d}" for n in range(100)]
    candidates += [f"{n:03d}" for n in range(1000)] + [f"{n:04d}" for n in range(0, 10000, 7)]
    return {c for c in candidates if compiled.matches(c)}


def test_exact_number() -> None:
    assert matches("101") == {"101"}
    assert Pattern.parse("*97").matches("*97")
    assert Pattern.parse("+4930").matches("+4930")


def test_x_z_n_wildcards() -> None:
    assert matches("_1X") == {f"1{d}" for d in range(10)}
    assert matches("_1Z") == {f"1{d}" for d in range(1, 10)}
    assert matches("_1N") == {f"1{d}" for d in range(2, 10)}
    assert matches("_1x") == matches("_1X")  # letters in either case


def test_bracket_classes() -> None:
    assert matches("_[1-5]") == {"1", "2", "3", "4", "5"}
    assert matches("_[157]0") == {"10", "50", "70"}
    assert matches("_[1-35]") == {"1", "2", "3", "5"}


def test_dot_is_one_or_more_of_anything() -> None:
    dot = Pattern.parse("_9.")
    assert not dot.matches("9")
    assert dot.matches("90")
    assert dot.matches("9*#+1234567")
    assert not dot.matches("80")
    assert Pattern.parse("_*.").matches("*72101")


def test_fixed_length_patterns_match_only_that_length() -> None:
    assert matches("_1XX") == {f"1{n:02d}" for n in range(100)}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty pattern"),
        ("10a", "exact number '10a' has 'a'"),
        ("_", "matches nothing fixed"),
        ("_.", "matches nothing fixed"),
        ("_1.X", "'.' must be last"),
        ("_1[2-", "unclosed '\\['"),
        ("_1[]", "empty '\\[\\]'"),
        ("_1[5-2]", "bad range '5-2'"),
        ("_1[2-]", "unfinished range"),
        ("_1[X]", "'X' in a '\\[...\\]' class"),
        ("_1!", "unexpected '!'"),
        ("_1Y", "unexpected 'Y'"),
    ],
)
def test_bad_patterns_are_named_with_the_route(pattern: str, message: str) -> None:
    with pytest.raises(DialplanError, match=f"^route 'bad': .*{message}"):
        Dialplan(
            [Route("100", ExtensionTarget("101"), "ok"), Route(pattern, IvrTarget("m"), "bad")]
        )


def test_exact_beats_pattern_and_fewest_wildcards_wins() -> None:
    dp = plan(
        ("_1XX", VoicemailTarget("general")),
        ("_12X", IvrTarget("sales")),
        ("123", AnalogTarget(1)),
        ("_1.", TrunkTarget("wide")),
    )
    assert dp.route("123").target == AnalogTarget(1)
    assert dp.route("124").target == IvrTarget("sales")
    assert dp.route("134").target == VoicemailTarget("general")
    assert dp.route("1345").target == TrunkTarget("wide")


def test_open_ended_pattern_ranks_after_fixed_length_ones() -> None:
    # "_1." has fewer wildcard positions than "_1XX" but must not swallow 1XX.
    dp = plan(("_1.", TrunkTarget("wide")), ("_1XX", IvrTarget("menu")))
    assert dp.route("199").target == IvrTarget("menu")
    assert dp.route("1999").target == TrunkTarget("wide")


def test_ties_go_to_the_first_defined_route() -> None:
    dp = plan(("_1[2-3]3", IvrTarget("first")), ("_1X3", IvrTarget("second")))
    assert dp.route("123") == RouteDecision("123", IvrTarget("first"), "r0", "123")
    dp = plan(("_1X3", IvrTarget("second")), ("_1[2-3]3", IvrTarget("first")))
    assert dp.route("123").target == IvrTarget("second")


def test_existing_extension_routes_to_itself_over_patterns() -> None:
    dp = plan(("_1XX", VoicemailTarget("main")))
    assert dp.route("101", EXTENSIONS) == RouteDecision("101", ExtensionTarget("101"), None, "101")
    assert dp.route("103", EXTENSIONS).target == VoicemailTarget("main")


def test_exact_route_overrides_an_extension() -> None:
    dp = plan(("101", IvrTarget("reception")), ("0", ExtensionTarget("201")))
    assert dp.route("101", EXTENSIONS).target == IvrTarget("reception")
    assert dp.route("0", EXTENSIONS) == RouteDecision("0", ExtensionTarget("201"), "r1", "201")


def test_unknown_number_is_unallocated_404() -> None:
    decision = plan().route("555", EXTENSIONS)
    assert decision == RouteDecision("555", RejectTarget(Cause.UNALLOCATED_NUMBER), None, "555")
    assert status_for(Cause.UNALLOCATED_NUMBER) == 404


@pytest.mark.parametrize("number", ["", "12a", "1" * 33, "sip:101@pbx", " 101"])
def test_undialable_number_is_invalid_format_484(number: str) -> None:
    decision = plan(("_X.", TrunkTarget("out"))).route(number, EXTENSIONS)
    assert decision.target == RejectTarget(Cause.INVALID_NUMBER_FORMAT)
    assert status_for(Cause.INVALID_NUMBER_FORMAT) == 484


def test_explicit_reject_route() -> None:
    dp = plan(("_900.", RejectTarget(Cause.CALL_REJECTED)))
    assert dp.route("9001234").target == RejectTarget(Cause.CALL_REJECTED)


def test_trunk_strip_and_prepend() -> None:
    dp = plan(("_0.", TrunkTarget("sipgate", strip=1, prepend="+49")))
    decision = dp.route("03012345")
    assert decision.destination == "+493012345"
    assert decision.route == "r0"
    assert TrunkTarget("t", strip=5).dial_string("123") == ""


def test_duplicate_names_and_patterns_are_rejected() -> None:
    with pytest.raises(DialplanError, match="^route 'a': duplicate name$"):
        Dialplan([Route("1", IvrTarget("m"), "a"), Route("2", IvrTarget("m"), "a")])
    with pytest.raises(DialplanError, match="route 'b': pattern '_1x' already used by route 'a'"):
        Dialplan([Route("_1X", IvrTarget("m"), "a"), Route("_1x", IvrTarget("n"), "b")])
    with pytest.raises(DialplanError, match="has no name"):
        Dialplan([Route("1", IvrTarget("m"), "")])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (ExtensionTarget("10x"), "extension number '10x' is not dialable"),
        (VoicemailTarget(""), "empty mailbox"),
        (IvrTarget(""), "empty IVR menu"),
        (TrunkTarget(""), "empty trunk name"),
        (TrunkTarget("t", strip=-1), "strip -1 is negative"),
        (TrunkTarget("t", prepend="0x"), "prepend '0x' is not dialable"),
        (AnalogTarget(-1), "analog port -1 is negative"),
    ],
)
def test_bad_targets_are_named_with_the_route(target: Target, message: str) -> None:
    with pytest.raises(DialplanError, match=f"^route 'r': {message}$"):
        Dialplan([Route("1", target, "r")])


def test_from_dicts_builds_every_target_type() -> None:
    dp = Dialplan.from_dicts(
        [
            {"name": "op", "pattern": "0", "target": {"type": "extension", "number": "101"}},
            {"name": "vm", "pattern": "*97", "target": {"type": "voicemail", "mailbox": "101"}},
            {"name": "menu", "pattern": "500", "target": {"type": "ivr", "menu": "main"}},
            {
                "name": "out",
                "pattern": "_0N.",
                "target": {"type": "trunk", "name": "sipgate", "strip": 1, "prepend": "+49"},
            },
            {"name": "door", "pattern": "600", "target": {"type": "analog", "port": 2}},
            {"name": "premium", "pattern": "_0900.", "target": {"type": "reject", "cause": 21}},
            {"name": "b", "pattern": "_09.", "target": {"type": "reject", "cause": "user_busy"}},
        ]
    )
    assert [r.target for r in dp.routes] == [
        ExtensionTarget("101"),
        VoicemailTarget("101"),
        IvrTarget("main"),
        TrunkTarget("sipgate", 1, "+49"),
        AnalogTarget(2),
        RejectTarget(Cause.CALL_REJECTED),
        RejectTarget(Cause.USER_BUSY),
    ]
    assert dp.route("09001").target == RejectTarget(Cause.CALL_REJECTED)
    assert dp.route("0301").destination == "+49301"


def good(**target: object) -> dict[str, object]:
    return {"name": "r", "pattern": "1", "target": target}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("route", "routes[1]: expected a table, got str"),
        ({"pattern": "1", "target": {"type": "ivr", "menu": "m"}}, "routes[1].name: expected str"),
        ({"name": "r", "pattern": 1, "target": {}}, "routes[1].pattern: expected str, got 1"),
        ({"name": "r", "pattern": "1"}, "routes[1].target: expected a table"),
        ({"name": "r", "pattern": "1", "target": {}, "x": 1}, "routes[1].x: unknown field"),
        (good(type="fax"), "routes[1].target.type: 'fax' is not one of extension, voicemail"),
        (good(type="ivr"), "routes[1].target.menu: missing"),
        (good(type="ivr", menu="m", port=1), "routes[1].target.port: unknown field for a ivr"),
        (good(type="analog", port="1"), "routes[1].target.port: expected int, got '1'"),
        (good(type="analog", port=True), "routes[1].target.port: expected int, got True"),
        (good(type="trunk", name="t", strip=1.5), "routes[1].target.strip: expected int"),
        (good(type="reject", cause=999), "routes[1].target.cause: 999 is not a cause"),
        (good(type="reject", cause="nope"), "routes[1].target.cause: 'nope' is not a Cause"),
        (good(type="reject", cause=None), "routes[1].target.cause: expected a Q.850 cause"),
        (good(type="reject", cause=False), "routes[1].target.cause: expected a Q.850 cause"),
    ],
)
def test_from_dicts_errors_name_index_and_field(item: object, message: str) -> None:
    first = {"name": "ok", "pattern": "9", "target": {"type": "ivr", "menu": "m"}}
    with pytest.raises(DialplanError, match=f"^{re.escape(message)}"):
        Dialplan.from_dicts([first, item])


def test_from_dicts_needs_a_list() -> None:
    with pytest.raises(DialplanError, match="expected a list of routes"):
        Dialplan.from_dicts({"name": "r"})
    with pytest.raises(DialplanError, match="expected a list of routes"):
        Dialplan.from_dicts("routes")


BIG_PLAN = plan(
    ("0", ExtensionTarget("101")),
    ("_1XX", VoicemailTarget("main")),
    ("_[2-4]ZN", IvrTarget("menu")),
    ("_0.", TrunkTarget("out", strip=3, prepend="00")),
    ("_*X.", RejectTarget(Cause.SERVICE_UNAVAILABLE)),
)


@given(st.text(alphabet="0123456789*#+", max_size=40))
def test_route_never_raises_for_digit_strings(number: str) -> None:
    decision = BIG_PLAN.route(number, EXTENSIONS)
    assert decision.number == number
    if decision.route is not None:
        used = next(r for r in BIG_PLAN.routes if r.name == decision.route)
        assert Pattern.parse(used.pattern).matches(number)
        assert decision.target == used.target


@given(st.text(max_size=40))
def test_route_never_raises_for_any_text(number: str) -> None:
    assert isinstance(BIG_PLAN.route(number, EXTENSIONS), RouteDecision)


@given(st.text(max_size=12))
def test_pattern_parse_raises_only_pattern_errors(text: str) -> None:
    try:
        Pattern.parse("_" + text)
    except ValueError as exc:
        assert type(exc).__name__ == "PatternError"


def test_an_analog_line_route_strips_the_outside_line_prefix() -> None:
    dp = Dialplan.from_dicts(
        [
            {
                "name": "outside",
                "pattern": "_9.",
                "target": {"type": "analog", "port": 3, "strip": 1},
            }
        ]
    )
    decision = dp.route("95551234")
    assert decision.target == AnalogTarget(3, strip=1)
    assert decision.destination == "5551234"
    with pytest.raises(DialplanError, match="route 'x': strip -1 is negative"):
        Dialplan.from_dicts(
            [{"name": "x", "pattern": "_9.", "target": {"type": "analog", "port": 3, "strip": -1}}]
        )
