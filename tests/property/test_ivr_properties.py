"""Hypothesis: any JSON-like IVR configuration parses or raises IvrError and what parses
round-trips; the menu application survives any event sequence, ends on hang-up, and
against a simulated media engine never leaves a caller waiting on nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallerHungUp,
    CancelTimer,
    DigitPressed,
    HangUp,
    Play,
    PlaybackDone,
    SetTimer,
    StartVoicemail,
    TimerFired,
    Transfer,
    TransferFailed,
)
from appliance.pbx.ivr import IvrConfig, IvrError, MenuApp, State, parse_ivr

EXTENSIONS = ("2000", "2001", "47", "4711")
MAILBOXES = ("2000", "2001")
MENU_NAMES = ("main", "sales", "closed")
KEYS = "0123456789*#"
UNIX_TIMES = st.integers(0, 4_000_000_000)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


def sometimes_wrong(plausible: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a plausible value, one time in ten anything at all."""
    return st.integers(0, 9).flatmap(lambda n: json_values if n == 0 else plausible)


names = st.sampled_from([*MENU_NAMES, "office", "2000", "2999", "", "x y"])
prompts = st.sampled_from(["welcome", "invalid", "digits/3", "custom:intro", "custom:../x", "hi"])
options = st.fixed_dictionaries(
    {
        "action": sometimes_wrong(
            st.sampled_from(
                ["transfer", "menu", "back", "repeat", "voicemail", "dial_by_extension", "hangup"]
            )
        )
    },
    optional={
        "extension": sometimes_wrong(names),
        "menu": sometimes_wrong(names),
        "mailbox": sometimes_wrong(names),
        "voicemail_on_fail": sometimes_wrong(st.booleans()),
    },
)
menus = st.fixed_dictionaries(
    {"greeting": sometimes_wrong(st.lists(sometimes_wrong(prompts), max_size=3))},
    optional={
        "language": sometimes_wrong(st.sampled_from(["en", "de", "pt-BR", "EN", ""])),
        "timeout": sometimes_wrong(st.integers(-1, 70) | st.floats()),
        "retries": sometimes_wrong(st.integers(-1, 12)),
        "invalid": sometimes_wrong(st.lists(prompts, max_size=2)),
        "on_timeout": sometimes_wrong(options),
        "on_exhausted": sometimes_wrong(options),
        "dial_by_extension": sometimes_wrong(st.booleans()),
        "options": sometimes_wrong(
            st.dictionaries(st.sampled_from([*KEYS, "A", "12", ""]), options, max_size=5)
        ),
    },
)
clock = st.sampled_from(["00:00", "09:00", "17:30", "24:00", "25:00", "9:00"])
hours = st.fixed_dictionaries(
    {
        "days": sometimes_wrong(st.sampled_from(["mon-fri", "sat", "fri-mon", "mon,wed", "xyz"])),
        "from": sometimes_wrong(clock),
        "to": sometimes_wrong(clock),
        "menu": sometimes_wrong(names),
    }
)
holidays = st.fixed_dictionaries(
    {
        "date": sometimes_wrong(st.sampled_from(["2026-12-25", "12-25", "02-29", "2026-02-29"])),
        "menu": sometimes_wrong(names),
    }
)
schedules = st.fixed_dictionaries(
    {
        "timezone": sometimes_wrong(st.sampled_from(["Europe/Berlin", "UTC", "Mars/X", "../x"])),
        "otherwise": sometimes_wrong(names),
    },
    optional={
        "hours": sometimes_wrong(st.lists(hours, max_size=3)),
        "holidays": sometimes_wrong(st.lists(holidays, max_size=2)),
    },
)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "menus": st.dictionaries(st.sampled_from(MENU_NAMES), menus, max_size=3),
        "schedules": st.dictionaries(st.sampled_from(["office", "main"]), schedules, max_size=2),
    },
)


def parse(data: object) -> IvrConfig | None:
    try:
        return parse_ivr(data, EXTENSIONS, MAILBOXES)
    except IvrError:
        return None


@given(data=json_values)
def test_any_json_parses_or_raises_ivr_error(data: object) -> None:
    parse(data)


@given(data=near_valid, unix_time=UNIX_TIMES)
def test_what_parses_round_trips_and_resolves(data: object, unix_time: int) -> None:
    config = parse(data)
    if config is None:
        return
    assert parse_ivr(config.as_dict(), EXTENSIONS, MAILBOXES) == config
    for name in config.names():
        assert config.resolve(name, unix_time).name in config.menus


@st.composite
def valid_data(draw: st.DrawFn) -> dict[str, object]:
    targets = [*MENU_NAMES, "office"]

    def option(exhausted: bool = False) -> dict[str, object]:
        kinds = ["transfer", "menu", "back", "voicemail", "dial_by_extension", "hangup"]
        action = draw(st.sampled_from(kinds if exhausted else [*kinds, "repeat"]))
        if action == "transfer":
            extension = draw(st.sampled_from(EXTENSIONS))
            on_fail = extension in MAILBOXES and draw(st.booleans())
            return {"action": action, "extension": extension, "voicemail_on_fail": on_fail}
        if action == "menu":
            return {"action": action, "menu": draw(st.sampled_from(targets))}
        if action == "voicemail":
            return {"action": action, "mailbox": draw(st.sampled_from(MAILBOXES))}
        return {"action": action}

    def menu() -> dict[str, object]:
        keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6))
        return {
            "language": draw(st.sampled_from(["en", "de"])),
            "greeting": ["welcome"],
            "timeout": draw(st.sampled_from([1, 5, 2.5])),
            "retries": draw(st.integers(1, 4)),
            "invalid": draw(st.sampled_from([[], ["invalid"]])),
            "on_timeout": option(),
            "on_exhausted": option(exhausted=True),
            "dial_by_extension": draw(st.booleans()),
            "options": {key: option() for key in keys},
        }

    data = {
        "menus": {name: menu() for name in MENU_NAMES},
        "schedules": {
            "office": {
                "timezone": "Europe/Berlin",
                "hours": [{"days": "mon-fri", "from": "09:00", "to": "17:30", "menu": "main"}],
                "holidays": [{"date": "12-25", "menu": "closed"}],
                "otherwise": "closed",
            }
        },
    }
    return data


def valid_configs() -> st.SearchStrategy[IvrConfig]:
    return valid_data().map(lambda data: parse_ivr(data, EXTENSIONS, MAILBOXES))


@given(data=valid_data(), unix_time=UNIX_TIMES)
def test_valid_configs_parse_round_trip_and_resolve(data: object, unix_time: int) -> None:
    config = parse_ivr(data, EXTENSIONS, MAILBOXES)
    assert parse_ivr(config.as_dict(), EXTENSIONS, MAILBOXES) == config
    for name in config.names():
        assert config.resolve(name, unix_time).name in config.menus


def is_prefix(digits: str) -> bool:
    return any(e.startswith(digits) and e != digits for e in EXTENSIONS)


events = st.one_of(
    st.builds(DigitPressed, st.sampled_from([*KEYS, "A", "D"])),
    st.builds(PlaybackDone, st.booleans()),
    st.just(TimerFired()),
    st.builds(TransferFailed, st.sampled_from([*EXTENSIONS, "9"]), st.booleans()),
    st.just(CallerHungUp()),
)
entries = st.sampled_from([*MENU_NAMES, "office", "nowhere"])


def app(config: IvrConfig, entry: str, unix_time: int, prefix: bool) -> MenuApp:
    return MenuApp(
        config, entry, unix_time, EXTENSIONS.__contains__, is_prefix=is_prefix if prefix else None
    )


@given(
    config=valid_configs(),
    entry=entries,
    unix_time=UNIX_TIMES,
    prefix=st.booleans(),
    sequence=st.lists(st.tuples(events, st.floats(0, 10)), max_size=40),
)
def test_any_event_sequence_is_survived_and_hang_up_ends_it(
    config: IvrConfig,
    entry: str,
    unix_time: int,
    prefix: bool,
    sequence: list[tuple[AppEvent, float]],
) -> None:
    menu_app = app(config, entry, unix_time, prefix)
    now = 0.0
    menu_app.start(now)
    for event, elapsed in sequence:
        now += elapsed
        was_finished = menu_app.finished
        actions = menu_app.handle(event, now)
        assert not (was_finished and actions)
    menu_app.handle(CallerHungUp(), now)
    assert menu_app.state is State.DONE and menu_app.finished


@dataclass
class Engine:
    """The media engine and B2BUA as the application sees them: one playback queue
    (a digit stops a barge-in queue, and its PlaybackDone may come before or after the
    digit), one timer, and transfers that never get answered."""

    playing: bool = False
    barge_in: bool = False
    timer: bool = False
    ringing: str | None = None
    ended: bool = False
    owed: list[AppEvent] = field(default_factory=list)

    def apply(self, actions: list[AppAction]) -> None:
        assert not self.ended, f"{actions} after the call was handed over or hung up"
        for action in actions:
            match action:
                case Play():
                    assert not self.playing, "a second queue while one plays"
                    self.playing, self.barge_in = True, action.barge_in
                case SetTimer():
                    self.timer = True
                case CancelTimer():
                    self.timer = False
                case Transfer():
                    assert not self.playing and self.ringing is None
                    self.ringing = action.extension
                case HangUp() | StartVoicemail():
                    self.ended = True
                case _:
                    raise AssertionError(f"unexpected {action}")

    def next_event(self, busy: bool) -> AppEvent:
        if self.owed:
            return self.owed.pop()
        if self.playing:
            self.playing = False
            return PlaybackDone(False)
        if self.ringing is not None:
            extension, self.ringing = self.ringing, None
            return TransferFailed(extension, busy)
        assert self.timer, "the caller is left waiting on nothing"
        self.timer = False
        return TimerFired()


@given(
    config=valid_configs(),
    entry=entries,
    unix_time=UNIX_TIMES,
    prefix=st.booleans(),
    script=st.lists(
        st.tuples(st.sampled_from([*KEYS, "A"]), st.booleans(), st.integers(0, 3)), max_size=30
    ),
    busy=st.booleans(),
)
def test_the_call_always_moves_on_and_a_silent_caller_is_let_go(
    config: IvrConfig,
    entry: str,
    unix_time: int,
    prefix: bool,
    script: list[tuple[str, bool, int]],
    busy: bool,
) -> None:
    menu_app = app(config, entry, unix_time, prefix)
    engine = Engine()
    now = 0.0
    engine.apply(menu_app.start(now))

    def step(event: AppEvent) -> None:
        engine.apply(menu_app.handle(event, now))

    for key, done_first, engine_steps in script:
        for _ in range(engine_steps):
            if engine.ended:
                return
            now += 1.0
            step(engine.next_event(busy))
        if engine.ended:
            return
        if engine.playing and engine.barge_in:
            engine.playing = False
            if done_first:
                step(PlaybackDone(True))
            else:
                engine.owed.append(PlaybackDone(True))
        step(DigitPressed(key))
    for _ in range(2000):  # from here on the caller presses nothing
        if engine.ended:
            break
        now += 1.0
        step(engine.next_event(busy))
    assert engine.ended and menu_app.finished
