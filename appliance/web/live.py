"""What the web UI shows live (registrations, calls, analog ports), and how it asks.

The SIP core runs on the event loop; the web runs on cheroot's threads. A page never
touches the core's objects: it asks a ``LiveSource`` for a ``LiveSnapshot``, plain
frozen values the composition root builds on the loop's own thread (see
``appliance.app.LoopSnapshot``) and hands across.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RegistrationView:
    aor: str  # the extension
    contact: str
    source: str  # where the REGISTER came from, "udp:192.0.2.7:5062"
    user_agent: str
    expires_in: float  # s


@dataclass(frozen=True, slots=True)
class CallView:
    number: int
    caller: str
    caller_name: str | None
    callee: str
    state: str  # "ringing", "talking", "application" (voicemail, a menu)
    duration_s: float  # since the call arrived
    talking_s: float | None  # since it was answered
    codec: str | None
    external: bool  # from a trunk (the FXO line): the caller is an outside number


@dataclass(frozen=True, slots=True)
class PortView:
    port: int
    type: str  # "fxs", "fxo"
    label: str
    role: str  # "extension 201", "line to 500", "not set"
    state: str  # the port machine's state: "idle", "ringing", "talking"...
    registered: bool | None  # FXS: its extension is registered; None for FXO


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    taken_at: float  # Unix time
    registrations: tuple[RegistrationView, ...]
    calls: tuple[CallView, ...]
    ports: tuple[PortView, ...]
    line_controller_up: bool | None  # None: the board has no analog ports running


class LiveSource(Protocol):
    def snapshot(self, timeout: float = 2.0) -> LiveSnapshot:
        """The state now; TimeoutError when the core does not answer in time."""
        ...
