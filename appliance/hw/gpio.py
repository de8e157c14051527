"""GPIO lines of the board (LEDs, the reset button) through the GPIO character device.

``GpiodLines`` uses libgpiod's Python binding (``gpiod`` 2.x from PyPI): the kernel's
character-device API, not the sysfs interface the kernel has deprecated. ``MemoryLines``
stands in for the sim board (chip ``sim``) and for tests: what was set can be read back,
and a test presses a button by setting its line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from appliance.hw.board_spec import GpioSpec

log = logging.getLogger(__name__)

SIM_CHIP = "sim"  # board files name this chip for lines that exist only in memory


class GpioError(OSError):
    pass


class Lines(Protocol):
    def set(self, spec: GpioSpec, on: bool) -> None: ...

    def get(self, spec: GpioSpec) -> bool:
        """The line's logical value (active_low applied)."""
        ...

    def close(self) -> None: ...


class MemoryLines:
    def __init__(self) -> None:
        self.values: dict[tuple[str, int], bool] = {}

    def set(self, spec: GpioSpec, on: bool) -> None:
        self.values[(spec.chip, spec.line)] = on

    def get(self, spec: GpioSpec) -> bool:
        return self.values.get((spec.chip, spec.line), False)

    def close(self) -> None:
        self.values.clear()


class GpiodLines:
    """Outputs and inputs requested once per chip; ``active_low`` handled by the kernel."""

    def __init__(self, outputs: Iterable[GpioSpec], inputs: Iterable[GpioSpec]) -> None:
        import gpiod  # only on boards with GPIO: the sim and tests never need it
        from gpiod.line import Bias, Direction, Value

        self._value = Value
        self._requests: dict[str, gpiod.LineRequest] = {}
        config: dict[str, dict[int, gpiod.LineSettings]] = {}
        for spec in outputs:
            config.setdefault(spec.chip, {})[spec.line] = gpiod.LineSettings(
                direction=Direction.OUTPUT, output_value=Value.INACTIVE, active_low=spec.active_low
            )
        for spec in inputs:
            config.setdefault(spec.chip, {})[spec.line] = gpiod.LineSettings(
                direction=Direction.INPUT, bias=Bias.PULL_UP, active_low=spec.active_low
            )
        try:
            for chip, lines in config.items():
                self._requests[chip] = gpiod.request_lines(
                    f"/dev/{chip}", consumer="yakyak", config=lines
                )
        except OSError as exc:
            self.close()
            raise GpioError(f"cannot request GPIO lines: {exc}") from exc

    def set(self, spec: GpioSpec, on: bool) -> None:
        value = self._value.ACTIVE if on else self._value.INACTIVE
        self._requests[spec.chip].set_value(spec.line, value)

    def get(self, spec: GpioSpec) -> bool:
        return bool(self._requests[spec.chip].get_value(spec.line) == self._value.ACTIVE)

    def close(self) -> None:
        for request in self._requests.values():
            try:
                request.release()
            except OSError as exc:  # a line already gone: nothing left to release
                log.debug("GPIO release: %s", exc)
        self._requests.clear()


def open_lines(outputs: list[GpioSpec], inputs: list[GpioSpec]) -> Lines:
    """Memory lines when every line is on the sim chip, else the real ones."""
    if all(spec.chip == SIM_CHIP for spec in (*outputs, *inputs)):
        return MemoryLines()
    return GpiodLines(outputs, inputs)
