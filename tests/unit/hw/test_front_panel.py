"""The front panel: what the LEDs show, the reset button's hold, the GPIO edge."""

from __future__ import annotations

import asyncio

import pytest

from appliance.hw.board_loader import load_board
from appliance.hw.front_panel import (
    LINE,
    STATUS,
    FrontPanel,
    PanelInputs,
    ResetButton,
    panel_leds,
)
from appliance.hw.gpio import MemoryLines, open_lines

RUNNING = PanelInputs(running=True, controller_up=True, lines_in_use=False)


def test_status_is_steady_while_all_runs_and_dark_when_stopped() -> None:
    for t in (0.0, 0.3, 0.6, 0.9):
        assert panel_leds(RUNNING, False, t) == {STATUS: True, LINE: False}
    stopped = PanelInputs(running=False, controller_up=True, lines_in_use=True)
    assert panel_leds(stopped, False, 0.0) == {STATUS: False, LINE: False}


def test_status_blinks_at_1_hz_without_the_controller_and_4_hz_while_holding() -> None:
    lost = PanelInputs(running=True, controller_up=False, lines_in_use=False)
    slow = [panel_leds(lost, False, t / 10)[STATUS] for t in range(20)]
    assert slow == [True] * 5 + [False] * 5 + [True] * 5 + [False] * 5
    fast = [panel_leds(RUNNING, True, t / 8)[STATUS] for t in range(8)]
    assert fast == [True, False] * 4


def test_the_line_led_shows_ports_in_use() -> None:
    busy = PanelInputs(running=True, controller_up=None, lines_in_use=True)
    assert panel_leds(busy, False, 0.0)[LINE] is True


def test_the_button_fires_once_per_long_press() -> None:
    button = ResetButton(hold_s=10.0)
    assert not button.sample(True, 0.0)
    assert button.holding
    assert not button.sample(True, 9.9)
    assert button.sample(True, 10.0)
    assert not button.holding
    assert not button.sample(True, 30.0)  # still held: once only
    assert not button.sample(False, 31.0)
    assert not button.sample(True, 32.0)  # a new press starts over
    assert button.sample(True, 42.0)


def test_a_short_press_does_nothing() -> None:
    button = ResetButton(hold_s=10.0)
    button.sample(True, 0.0)
    assert not button.sample(False, 5.0)
    assert not button.sample(True, 6.0)
    assert not button.sample(True, 15.9)


def test_the_sim_board_panel_lives_in_memory() -> None:
    board = load_board("sim")
    lines = open_lines([led.gpio for led in board.leds], [])
    assert isinstance(lines, MemoryLines)
    assert {led.name for led in board.leds} == {STATUS, LINE}
    assert board.reset_button is not None


def test_the_panel_drives_the_leds_and_a_held_button_resets_once() -> None:
    board = load_board("sim")
    assert board.reset_button is not None
    status = next(led.gpio for led in board.leds if led.name == STATUS)
    line = next(led.gpio for led in board.leds if led.name == LINE)
    button = board.reset_button.gpio
    state = {"in_use": False}
    resets: list[float] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        lines = MemoryLines()

        def inputs() -> PanelInputs:
            return PanelInputs(running=True, controller_up=True, lines_in_use=state["in_use"])

        panel = FrontPanel(loop, board, lines, inputs, lambda: resets.append(loop.time()))
        panel.button = ResetButton(hold_s=0.3)  # the board's 10 s, shortened for the test
        panel.start()
        await asyncio.sleep(0.25)
        assert lines.get(status) is True and lines.get(line) is False
        state["in_use"] = True
        await asyncio.sleep(0.25)
        assert lines.get(line) is True
        lines.set(button, True)  # pressed and held
        await asyncio.sleep(0.8)
        lines.set(button, False)
        await asyncio.sleep(0.25)
        assert len(resets) == 1
        panel.close()
        assert lines.values == {}  # released

    asyncio.run(scenario())


@pytest.mark.parametrize("chip", ["gpiochip0", "sim"])
def test_a_board_file_may_name_real_or_sim_chips(chip: str) -> None:
    from appliance.hw.board_spec import GpioSpec

    spec = GpioSpec(chip, 3)
    if chip == "sim":
        assert isinstance(open_lines([spec], []), MemoryLines)
