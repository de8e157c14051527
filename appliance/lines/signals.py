"""What the line controller reports about a port, and what the host asks of it.

The microcontroller on the line-interface board owns the real-time work (hook
debounce, pulse and flash timing, ring generation, line feed and polarity); the host
sends intent, never waveforms, and hears back debounced facts. These values are the
vocabulary between the controller protocol (``controller_protocol``), the port logic
(``fxs``, ``fxo``) and the simulated board; nothing here knows the wire format.
Ports are numbered from 1 as on the board's front panel; port 0 means the controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class PortType(Enum):
    FXS = "fxs"  # an analog phone plugs in here: we feed and ring it
    FXO = "fxo"  # a PSTN line plugs in here: we are the phone towards the exchange


# -- signals: controller -> host -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class OffHook:
    """FXS: the phone was lifted (debounced), or answered while ringing (ring-trip)."""

    port: int


@dataclass(frozen=True, slots=True)
class OnHook:
    """FXS: the phone was hung up (on hook longer than the flash window)."""

    port: int


@dataclass(frozen=True, slots=True)
class Flash:
    """FXS: hook flash (on hook within the board's flash window)."""

    port: int


@dataclass(frozen=True, slots=True)
class PulseDigit:
    """FXS: a rotary/pulse digit the controller counted ("0" for ten breaks)."""

    port: int
    digit: str


@dataclass(frozen=True, slots=True)
class RingStart:
    """FXO: ringing voltage detected on the line (one burst)."""

    port: int


@dataclass(frozen=True, slots=True)
class RingStop:
    """FXO: the ring burst ended."""

    port: int


@dataclass(frozen=True, slots=True)
class PolarityReversal:
    """FXO: the exchange reversed the line's polarity (answer or disconnect signal)."""

    port: int


@dataclass(frozen=True, slots=True)
class LoopCurrentDrop:
    """FXO: loop current went away for the board's disconnect window (far end hung up)."""

    port: int


@dataclass(frozen=True, slots=True)
class ControllerReset:
    """The controller restarted: every port is idle and its configuration is gone."""


# the signals about one port (all but ControllerReset), for a port to check it is its own
PORT_SIGNALS: Final = (
    OffHook,
    OnHook,
    Flash,
    PulseDigit,
    RingStart,
    RingStop,
    PolarityReversal,
    LoopCurrentDrop,
)

LineSignal = (
    OffHook
    | OnHook
    | Flash
    | PulseDigit
    | RingStart
    | RingStop
    | PolarityReversal
    | LoopCurrentDrop
    | ControllerReset
)

# -- intents: host -> controller -----------------------------------------------------


class FeedMode(Enum):
    NORMAL = "normal"  # FXS: line powered, forward polarity
    REVERSED = "reversed"  # FXS: polarity reversed (answer supervision to some phones)
    OPEN = "open"  # FXS: loop current removed: the disconnect signal to the phone


@dataclass(frozen=True, slots=True)
class Ring:
    """FXS: ring with this cadence (on, off, on, off... in ms, repeating), or stop."""

    port: int
    on: bool
    cadence_ms: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Feed:
    port: int
    mode: FeedMode


@dataclass(frozen=True, slots=True)
class Hook:
    """FXO: seize the line (off hook) or release it."""

    port: int
    off: bool


@dataclass(frozen=True, slots=True)
class DialPulses:
    """FXO: dial these digits by loop disconnect (for exchanges without DTMF)."""

    port: int
    digits: str


LineIntent = Ring | Feed | Hook | DialPulses
