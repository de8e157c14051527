"""The board's front panel: what the LEDs show, and the reset button.

``panel_leds`` is pure: the appliance's state and the time in, each LED's state out.
``ResetButton`` is a small sans-IO machine fed the button's level. ``FrontPanel`` runs
both on the event loop every 100 ms against the board's GPIO lines.

What the LEDs say (board files name them; unknown names stay dark):

- ``status``: steady while everything runs; slow blink (1 Hz) while the line controller
  cannot be reached; fast blink (4 Hz) while the reset button is held; dark when stopped.
- ``line``: lit while any analog port is in use (off hook, ringing, in a call).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from appliance.hw.board_spec import BoardSpec
from appliance.hw.gpio import Lines

log = logging.getLogger(__name__)

TICK: Final = 0.1  # s between looks at the button and updates of the LEDs
STATUS: Final = "status"
LINE: Final = "line"


@dataclass(frozen=True, slots=True)
class PanelInputs:
    running: bool
    controller_up: bool | None  # None: the board runs no analog ports
    lines_in_use: bool


def panel_leds(state: PanelInputs, holding: bool, now: float) -> dict[str, bool]:
    """Each LED's state at ``now`` (blinking is derived from the time)."""
    if not state.running:
        return {STATUS: False, LINE: False}
    if holding:
        status = int(now * 8) % 2 == 0  # 4 Hz
    elif state.controller_up is False:
        status = int(now * 2) % 2 == 0  # 1 Hz
    else:
        status = True
    return {STATUS: status, LINE: state.lines_in_use}


class ResetButton:
    """Held for ``hold_s``: a reset request, once per press (released, it re-arms)."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._down_since: float | None = None
        self._fired = False

    @property
    def holding(self) -> bool:
        return self._down_since is not None and not self._fired

    def sample(self, pressed: bool, now: float) -> bool:
        """Feed the button's level; True once when the hold has lasted long enough."""
        if not pressed:
            self._down_since = None
            self._fired = False
            return False
        if self._down_since is None:
            self._down_since = now
        if not self._fired and now - self._down_since >= self.hold_s:
            self._fired = True
            return True
        return False


class FrontPanel:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        board: BoardSpec,
        lines: Lines,
        inputs: Callable[[], PanelInputs],
        on_reset: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._board = board
        self._lines = lines
        self._inputs = inputs
        self._on_reset = on_reset
        spec = board.reset_button
        self.button = ResetButton(spec.hold_s) if spec is not None else None
        self._timer: asyncio.TimerHandle | None = None
        self.shown: dict[str, bool] = {}

    def start(self) -> None:
        self._tick()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._show(PanelInputs(running=False, controller_up=None, lines_in_use=False), False)
        self._lines.close()

    def _tick(self) -> None:
        now = self._loop.time()
        try:
            spec = self._board.reset_button
            if self.button is not None and spec is not None:
                if self.button.sample(self._lines.get(spec.gpio), now):
                    log.warning("reset button held %.0f s: resetting", self.button.hold_s)
                    self._on_reset()
            holding = self.button is not None and self.button.holding
            self._show(self._inputs(), holding, now)
        except Exception:  # a GPIO fault must not stop the panel for good
            log.exception("front panel update failed")
        self._timer = self._loop.call_later(TICK, self._tick)

    def _show(self, state: PanelInputs, holding: bool, now: float = 0.0) -> None:
        wanted = panel_leds(state, holding, now)
        for led in self._board.leds:
            on = wanted.get(led.name, False)
            if self.shown.get(led.name) != on:
                self._lines.set(led.gpio, on)
                self.shown[led.name] = on
