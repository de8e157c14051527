"""The auto-attendant call application: one caller finding their way through the menus.

A sans-IO ``CallApp`` (see ``app_events``): the greeting plays and a digit barges in at
once; then the menu waits ``timeout`` seconds for a digit. A wrong digit plays the
menu's ``invalid`` prompts and the greeting again, a timeout runs ``on_timeout``; both
count as failures, and the ``retries``-th failure runs ``on_exhausted`` instead.

Dial by extension collects a number until ``#``, a 3-second pause, or (when the
application is told which numbers have longer extensions after them) as soon as the
number is complete. Transfers say "please hold" and then ring; a failed transfer says
why and returns to the menu, or goes to the extension's voicemail when the option asks.

Playback: every ``Play`` is answered by exactly one ``PlaybackDone``, also when a digit
stopped it, and that answer may come before or after the digit. The application counts
the answers it still owes for stopped prompts so that a late one is never taken for the
end of the prompt that followed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Final

from appliance.pbx.app_events import (
    AppAction,
    AppEvent,
    CallerHungUp,
    CancelTimer,
    DepositReason,
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
from appliance.pbx.ivr.menu import Action, IvrConfig, Menu, MenuOption
from appliance.pbx.prompt_names import Prompt

INTER_DIGIT_SECONDS: Final = 3.0
MAX_EXTENSION_DIGITS: Final = 16
MAX_FAILURES_PER_CALL: Final = 20  # menus that send each other callers who never press
MAX_DEPTH: Final = 16  # menus remembered for "back"
MENU_KEYS: Final = frozenset("0123456789*#")
EXTENSION_KEYS: Final = frozenset("0123456789*")
_NOWHERE: Final = Menu(name="", greeting=(Prompt.SORRY.value,))  # before start()


class State(Enum):
    GREETING = "greeting"  # the menu's prompts play; a digit acts at once
    WAITING = "waiting"  # the digit timer runs
    COLLECTING = "collecting"  # dial by extension: gathering a number
    TRANSFERRING = "transferring"  # "please hold" plays, then the extension rings
    ENDING = "ending"  # "goodbye" plays, then hang up
    DONE = "done"


class MenuApp:
    """One caller in the auto-attendant, entering at menu or schedule ``entry``.

    ``unix_time`` is the wall clock at ``start`` (schedules need the time of day, which
    the loop's ``now`` is not); later schedule look-ups add the ``now`` elapsed since.
    ``is_prefix(digits)``, if given, tells whether a longer extension starts with
    ``digits``; it lets dial by extension finish without waiting for ``#``.
    """

    def __init__(
        self,
        config: IvrConfig,
        entry: str,
        unix_time: float,
        is_extension: Callable[[str], bool],
        *,
        is_prefix: Callable[[str], bool] | None = None,
        inter_digit: float = INTER_DIGIT_SECONDS,
    ) -> None:
        self._config = config
        self._entry = entry
        self._unix_at_start = unix_time
        self._now_at_start = 0.0
        self._is_extension = is_extension
        self._is_prefix = is_prefix
        self._inter_digit = inter_digit
        self._state = State.GREETING
        self._started = False
        self._menu = _NOWHERE
        self._language: str | None = None
        self._stack: list[Menu] = []
        self._failures = 0  # in this menu
        self._call_failures = 0
        self._digits = ""
        self._transfer_to = ""
        self._voicemail_on_fail = False
        self._ringing = False
        self._playing = False
        self._barge_in = False
        self._owed_done = 0  # PlaybackDone still to come for prompts a digit stopped
        self._timer = False

    @property
    def state(self) -> State:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state is State.DONE

    @property
    def menu(self) -> str | None:
        """The name of the menu the caller is in."""
        return self._menu.name if self._menu is not _NOWHERE else None

    def start(self, now: float) -> list[AppAction]:
        if self._started:
            return []
        self._started = True
        self._now_at_start = now
        menu = self._lookup(self._entry, now)
        if menu is None:  # an IvrTarget naming nothing: say so rather than play silence
            self._state = State.ENDING
            return [self._play((Prompt.SORRY, Prompt.GOODBYE), barge_in=False)]
        return self._enter(menu)

    def handle(self, event: AppEvent, now: float) -> list[AppAction]:
        if not self._started or self._state is State.DONE:
            return []
        if isinstance(event, CallerHungUp):
            self._state = State.DONE
            return []
        if isinstance(event, PlaybackDone):
            if self._owed_done:
                self._owed_done -= 1
                return []
            if not self._playing:
                return []
            self._playing = False
        elif isinstance(event, TimerFired):
            if not self._timer:
                return []  # cancelled or replaced while the event was on its way
            self._timer = False
        elif isinstance(event, DigitPressed) and self._playing and self._barge_in:
            self._playing = False  # the engine stopped the queue
            self._owed_done += 1
        handler = _HANDLERS.get((self._state, type(event)))
        if handler is None:
            return []  # e.g. digits while "please hold" or "goodbye" plays
        return handler(self, event, now)

    # -- handlers, by (state, event) in _HANDLERS ---------------------------------------

    def _greeting_done(self, event: PlaybackDone, now: float) -> list[AppAction]:
        self._state = State.WAITING
        return [self._arm(self._menu.timeout)]

    def _menu_digit(self, event: DigitPressed, now: float) -> list[AppAction]:
        key = event.digit
        option = self._menu.option(key) if key in MENU_KEYS else None
        if option is not None:
            return self._disarm() + self._do(option, now)
        if self._menu.dial_by_extension and key in EXTENSION_KEYS and self._may_start(key):
            self._state = State.COLLECTING
            self._digits = ""
            return self._collect(key, now)
        return self._disarm() + self._fail(now, invalid=True)

    def _menu_timeout(self, event: TimerFired, now: float) -> list[AppAction]:
        return self._fail(now, invalid=False)

    def _collect_digit(self, event: DigitPressed, now: float) -> list[AppAction]:
        return self._collect(event.digit, now)

    def _collect_prompt_done(self, event: PlaybackDone, now: float) -> list[AppAction]:
        return [] if self._digits else [self._arm(self._menu.timeout)]

    def _collect_timeout(self, event: TimerFired, now: float) -> list[AppAction]:
        return self._finish_collecting(now)

    def _hold_done(self, event: PlaybackDone, now: float) -> list[AppAction]:
        self._ringing = True
        return [Transfer(self._transfer_to)]

    def _transfer_failed(self, event: TransferFailed, now: float) -> list[AppAction]:
        if not self._ringing or event.extension != self._transfer_to:
            return []
        self._ringing = False
        if self._voicemail_on_fail:
            self._state = State.DONE
            reason = DepositReason.BUSY if event.busy else DepositReason.NO_ANSWER
            return [StartVoicemail(self._transfer_to, reason)]
        why = Prompt.IS_IN_USE if event.busy else Prompt.NOT_ANSWERING
        return self._greet(prefix=(why,))

    def _goodbye_done(self, event: PlaybackDone, now: float) -> list[AppAction]:
        self._state = State.DONE
        return [HangUp()]

    # -- steps -------------------------------------------------------------------------

    def _do(self, option: MenuOption, now: float) -> list[AppAction]:
        match option.action:
            case Action.TRANSFER:
                return self._hold(option.target, option.voicemail_on_fail)
            case Action.MENU:
                menu = self._lookup(option.target, now)
                if menu is None:
                    return self._goodbye()
                self._stack.append(self._menu)
                del self._stack[:-MAX_DEPTH]
                return self._enter(menu)
            case Action.BACK:
                return self._enter(self._stack.pop()) if self._stack else self._greet()
            case Action.REPEAT:
                return self._greet()
            case Action.VOICEMAIL:
                self._state = State.DONE
                return [StartVoicemail(option.target, DepositReason.DIRECT)]
            case Action.DIAL_BY_EXTENSION:
                self._state = State.COLLECTING
                self._digits = ""
                return [self._play((Prompt.ENTER_EXTENSION,), barge_in=True)]
            case Action.HANGUP:
                return self._goodbye()

    def _fail(self, now: float, *, invalid: bool) -> list[AppAction]:
        self._failures += 1
        self._call_failures += 1
        if self._call_failures >= MAX_FAILURES_PER_CALL:
            return self._goodbye()
        if self._failures >= self._menu.retries:
            return self._do(self._menu.on_exhausted, now)
        if invalid:
            return self._greet(prefix=self._menu.invalid)
        return self._do(self._menu.on_timeout, now)

    def _collect(self, key: str, now: float) -> list[AppAction]:
        if key == "#":
            return self._disarm() + self._finish_collecting(now)
        if key not in EXTENSION_KEYS:
            # ignored (A-D), but it may have stopped the prompt: keep a timer running
            return [self._arm(self._inter_digit if self._digits else self._menu.timeout)]
        self._digits += key
        if len(self._digits) >= MAX_EXTENSION_DIGITS:
            return self._disarm() + self._finish_collecting(now)
        if self._is_prefix is not None and not self._is_prefix(self._digits):
            return self._disarm() + self._finish_collecting(now)  # nothing longer to wait for
        return [self._arm(self._inter_digit)]

    def _finish_collecting(self, now: float) -> list[AppAction]:
        digits, self._digits = self._digits, ""
        if not digits:
            return self._fail(now, invalid=False)  # nothing entered: as a menu timeout
        if self._is_extension(digits):
            return self._hold(digits, voicemail_on_fail=False)
        return self._fail(now, invalid=True)

    def _may_start(self, key: str) -> bool:
        """Whether ``key`` can begin an extension (unknown without ``is_prefix``)."""
        if self._is_prefix is None:
            return True
        return self._is_extension(key) or self._is_prefix(key)

    def _enter(self, menu: Menu) -> list[AppAction]:
        self._menu = menu
        self._language = menu.language
        self._failures = 0
        return self._greet()

    def _greet(self, prefix: Iterable[str] = ()) -> list[AppAction]:
        self._state = State.GREETING
        return [self._play((*prefix, *self._menu.greeting), barge_in=True)]

    def _hold(self, extension: str, voicemail_on_fail: bool) -> list[AppAction]:
        self._state = State.TRANSFERRING
        self._transfer_to = extension
        self._voicemail_on_fail = voicemail_on_fail
        self._ringing = False
        return [self._play((Prompt.PLEASE_HOLD,), barge_in=False)]

    def _goodbye(self) -> list[AppAction]:
        self._state = State.ENDING
        return [self._play((Prompt.GOODBYE,), barge_in=False)]

    def _play(self, items: tuple[str, ...], *, barge_in: bool) -> Play:
        self._playing = True
        self._barge_in = barge_in
        return Play(items, barge_in=barge_in, language=self._language)

    def _arm(self, seconds: float) -> SetTimer:
        self._timer = True
        return SetTimer(seconds)

    def _disarm(self) -> list[AppAction]:
        if not self._timer:
            return []
        self._timer = False
        return [CancelTimer()]

    def _lookup(self, name: str, now: float) -> Menu | None:
        wall = self._unix_at_start + (now - self._now_at_start)
        try:
            return self._config.resolve(name, wall)
        except (KeyError, ValueError, OverflowError, OSError):
            return None  # unknown name, or a time the platform cannot convert


_Handler = Callable[[MenuApp, Any, float], list[AppAction]]
# Pairs missing here are events with nothing to do in that state; the engine may still
# send them (a digit during "goodbye", a transfer answer after the caller moved on).
_HANDLERS: Final[dict[tuple[State, type[object]], _Handler]] = {
    (State.GREETING, PlaybackDone): MenuApp._greeting_done,
    (State.GREETING, DigitPressed): MenuApp._menu_digit,
    (State.WAITING, DigitPressed): MenuApp._menu_digit,
    (State.WAITING, TimerFired): MenuApp._menu_timeout,
    (State.COLLECTING, DigitPressed): MenuApp._collect_digit,
    (State.COLLECTING, PlaybackDone): MenuApp._collect_prompt_done,
    (State.COLLECTING, TimerFired): MenuApp._collect_timeout,
    (State.TRANSFERRING, PlaybackDone): MenuApp._hold_done,
    (State.TRANSFERRING, TransferFailed): MenuApp._transfer_failed,
    (State.ENDING, PlaybackDone): MenuApp._goodbye_done,
}
