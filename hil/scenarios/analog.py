"""Scenarios for the analog ports, each ``async def (rig, result)``: it raises
AssertionError (or times out) to fail and records what it measured on ``result``.

They run the ports alone (``SimRig``) and play call control themselves
(``rig.ports.offer``, the ``PlaceCall`` actions the ports raise, the sim controller's
reset), which only an in-process rig has: all but ``fxs_dial_tone`` are sim-only.
``BENCH`` lists those a bench runs too, with the ports each needs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.callerid import FskReceiver, FskStandard
from appliance.dsp.dtmf import dtmf_symbol
from appliance.dsp.tones import ToneKind, tone_for
from appliance.hw.port_audio import tone_present
from appliance.lines.fxs import FxsState
from appliance.lines.port_actions import (
    AnswerIncoming,
    IncomingCall,
    IncomingCallOffer,
    PlaceCall,
    RemoteAnswered,
    RemoteHungUp,
)
from appliance.lines.signals import FeedMode
from hil.report import ScenarioResult
from hil.rig import Rig, SimRig

FXS, FXS2, FXO = 1, 2, 3
DIAL_TONE_LIMIT_MS: Final = 300.0

Scenario = Callable[[SimRig, ScenarioResult], Awaitable[None]]


def tone_onset(samples: npt.NDArray[np.int16], freqs: tuple[int, ...]) -> int | None:
    """Index of the first 20 ms frame in which the tone is present (the port audio's
    own detector, the one an FXO port listens with)."""
    for start in range(0, len(samples) - 159, 160):
        if tone_present(samples[start : start + 160], freqs):
            return start
    return None


async def heard_tone(rig: Rig, port: int, kind: ToneKind, since: int, timeout: float) -> int:
    """Samples after ``since`` until the tone is heard on the port (fails after timeout)."""
    freqs = tone_for(rig.country, kind).frequencies_hz
    found: list[int] = []

    def seen() -> bool:
        onset = tone_onset(rig.played(port)[since:], freqs)
        if onset is not None:
            found.append(onset)
        return bool(found)

    assert await rig.until(seen, timeout), f"no {kind.value} tone on port {port}"
    return found[0]


def same_cadence(measured: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    """Segment by segment within ``tolerance`` ms (0 on the sim: exactly)."""
    return len(measured) == len(expected) and all(
        abs(m - e) <= tolerance for m, e in zip(measured, expected, strict=True)
    )


def calls_of(rig: SimRig, kind: type) -> list[object]:
    return [action for _, _, action in rig.calls if isinstance(action, kind)]


async def caller_id_heard(rig: Rig, port: int, since: int, timeout: float) -> object:
    """The caller ID in what the port played after ``since``, by our own Bell 202
    decoder (fails after ``timeout``)."""
    got: list[object] = []

    def decoded() -> bool:
        samples = rig.played(port)[since:]
        receiver = FskReceiver(FskStandard.BELL202)
        for start in range(0, len(samples) - 159, 160):
            caller = receiver.feed(samples[start : start + 160])
            if caller is not None:
                got.append(caller)
                return True
        return False

    assert await rig.until(decoded, timeout), "no caller ID between the rings"
    return got[0]


async def fxs_dial_tone(rig: Rig, result: ScenarioResult) -> None:
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    onset = await heard_tone(rig, FXS, ToneKind.DIAL, mark, 2.0)
    latency = onset / 8000 * 1000
    result.timing("dial_tone", latency)
    assert latency <= DIAL_TONE_LIMIT_MS, f"dial tone after {latency:.0f} ms"
    rig.phone(FXS).hang_up()


async def fxs_pulse_dialing(rig: SimRig, result: ScenarioResult) -> None:
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    await heard_tone(rig, FXS, ToneKind.DIAL, mark, 2.0)
    started = time.monotonic()
    rig.phone(FXS).dial_pulses("101")
    assert await rig.until(lambda: bool(calls_of(rig, PlaceCall)), 10.0), rig.calls
    (placed,) = calls_of(rig, PlaceCall)
    assert placed == PlaceCall("101"), placed
    # 1 + 10 + 1 pulses at 100 ms and three 700 ms pauses: 3.3 s of dialling
    result.timing("dial_to_call", (time.monotonic() - started) * 1000)
    result.timing("post_dial_delay", (time.monotonic() - started - 3.3) * 1000)
    rig.phone(FXS).hang_up()


async def fxs_dtmf_dialing(rig: SimRig, result: ScenarioResult) -> None:
    mark = len(rig.played(FXS2))
    rig.phone(FXS2).lift()
    await heard_tone(rig, FXS2, ToneKind.DIAL, mark, 2.0)
    started = time.monotonic()
    assert await rig.until(lambda: bool(calls_of(rig, PlaceCall)), 10.0), rig.calls
    (placed,) = calls_of(rig, PlaceCall)
    assert placed == PlaceCall("102"), placed
    result.timing("digits_to_call", (time.monotonic() - started) * 1000)
    rig.phone(FXS2).hang_up()


def prepare_dtmf_dialing(rig: SimRig) -> None:
    """102 keyed on phone 2, 1.5 s into the run (after its dial tone)."""
    keys = np.concatenate([dtmf_symbol(d, 8 * 80, 8 * 80) for d in "102"])
    rig.say(FXS2, 1.5, keys)


async def fxs_ring_caller_id_answer(rig: SimRig, result: ScenarioResult) -> None:
    assert rig.ports is not None
    mark = len(rig.played(FXS))
    offered = time.monotonic()
    rig.ports.offer(FXS, IncomingCallOffer("2001", "ALICE"))
    assert await rig.until(lambda: rig.phone(FXS).ringing, 2.0), "the phone does not ring"
    result.timing("offer_to_ring", (time.monotonic() - offered) * 1000)
    cadence = rig.phone(FXS).cadence
    assert cadence == (2000, 4000), cadence
    caller = await caller_id_heard(rig, FXS, mark, 6.0)
    assert (getattr(caller, "number", None), getattr(caller, "name", None)) == ("2001", "ALICE")
    result.timing("caller_id_after_offer", (time.monotonic() - offered) * 1000)
    rig.phone(FXS).lift()
    assert await rig.until(lambda: bool(calls_of(rig, AnswerIncoming)), 2.0), rig.calls
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.TALKING.value, 1.0)
    rig.ports.offer(FXS, RemoteAnswered())


async def fxs_far_end_hangup(rig: SimRig, result: ScenarioResult) -> None:
    assert rig.ports is not None
    await fxs_ring_caller_id_answer(rig, ScenarioResult("setup"))
    mark = len(rig.played(FXS))
    released = time.monotonic()
    rig.ports.offer(FXS, RemoteHungUp())
    assert await rig.until(lambda: rig.phone(FXS).feed is FeedMode.OPEN, 2.0), "no loop drop"
    result.timing("loop_drop", (time.monotonic() - released) * 1000)
    await heard_tone(rig, FXS, ToneKind.BUSY, mark, 3.0)
    assert rig.port_state(FXS) == FxsState.LOCKOUT.value
    rig.phone(FXS).hang_up()
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.IDLE.value, 3.0), "port held"


async def fxo_inbound_ring(rig: SimRig, result: ScenarioResult) -> None:
    started = time.monotonic()
    rig.line(FXO).ring_burst(2000)
    await rig.until(lambda: False, 4.0)  # the ring and the silence after it
    rig.line(FXO).ring_burst(2000)
    assert await rig.until(lambda: bool(calls_of(rig, IncomingCall)), 4.0), rig.calls
    result.timing("ring_to_offer", (time.monotonic() - started) * 1000)


async def controller_reset_recovered(rig: SimRig, result: ScenarioResult) -> None:
    assert rig.sim is not None and rig.ports is not None
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    await heard_tone(rig, FXS, ToneKind.DIAL, mark, 2.0)
    configs_before = sum(1 for c in rig.sim.commands if c.verb == "CONFIG")
    reset_at = time.monotonic()
    rig.sim.reset("watchdog")
    recovered = await rig.until(
        lambda: (
            sum(1 for c in rig.sim.commands if c.verb == "CONFIG") > configs_before
            if rig.sim is not None
            else False
        ),
        3.0,
    )
    assert recovered, "the controller was not configured again after its reset"
    result.timing("reconfigured", (time.monotonic() - reset_at) * 1000)
    # the port works again: a real hang-up (longer than a flash), then a fresh lift
    rig.phone(FXS).hang_up()
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.IDLE.value, 3.0), "not idle"
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    await heard_tone(rig, FXS, ToneKind.DIAL, mark, 2.0)
    rig.phone(FXS).hang_up()


SCENARIOS: Final[dict[str, Scenario]] = {
    "fxs_dial_tone": fxs_dial_tone,
    "fxs_pulse_dialing": fxs_pulse_dialing,
    "fxs_dtmf_dialing": fxs_dtmf_dialing,
    "fxs_ring_caller_id_answer": fxs_ring_caller_id_answer,
    "fxs_far_end_hangup": fxs_far_end_hangup,
    "fxo_inbound_ring": fxo_inbound_ring,
    "controller_reset_recovered": controller_reset_recovered,
}
PREPARE: Final[dict[str, Callable[[SimRig], None]]] = {
    "fxs_dtmf_dialing": prepare_dtmf_dialing,
}
BENCH: Final[dict[str, tuple[int, ...]]] = {  # bench-capable: the ports each needs
    "fxs_dial_tone": (FXS,),
}
