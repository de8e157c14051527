"""Scenarios with calls through the whole appliance: analog phones and line against a
real SIP desk phone (baresip, extension 101) and the auto-attendant.

Written against ``CallRig``: ``ApplianceRig`` (the appliance in this process on the sim
board) and ``hil.bench.BenchRig`` (a real board across the network) both are one.
``BENCH`` lists the scenarios a bench runs, with the ports each needs; the others
reach into the in-process appliance (the sim controller's reset, a port's
message-waiting flag) and run on the sim only."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from appliance.dsp.callerid import FskStandard
from appliance.dsp.callerid_fsk import fsk_modulate
from appliance.dsp.callerid_message import CallerId, CallTime, MessageFormat, encode_message
from appliance.dsp.dtmf import DigitEnded, DtmfDetector, dtmf_symbol
from appliance.dsp.tones import ToneKind, tone_for
from appliance.hw.port_audio import tone_present
from appliance.lines.fxo import FxoState
from appliance.lines.fxs import FxsPort, FxsState
from appliance.lines.signals import FeedMode
from appliance.web.live import CallView
from hil.appliance_rig import NO_ANSWER_S, ApplianceRig
from hil.desk_phone import FAR_TONE_HZ, BaresipPhone
from hil.report import ScenarioResult
from hil.rig import RATE, Rig
from hil.scenarios.analog import caller_id_heard, heard_tone, same_cadence

FXS, FXO = 1, 3
NEAR_TONE_HZ: Final = 1000.0  # what the analog phone "says" once its call is up
KEYS_AT: Final = 1.0  # s into the run: the analog phone keys 101
RING_AT: Final = 4.0  # s into the run: the exchange rings the FXO line
TALK_FROM: Final = 3.0  # s into the run: the analog phone talks from here to the end

STATE_LAG_S: Final = 1.0  # a bench reads port states by polling /api/live


class CallRig(Rig, Protocol):
    """What the call scenarios ask of a rig beyond the phone side."""

    @property
    def far(self) -> BaresipPhone:
        """The SIP desk phone, registered with the board."""
        ...

    @property
    def far_extension(self) -> str: ...

    @property
    def audio_started(self) -> float:
        """``time.monotonic()`` when the phone side's media clock started: ``say()``
        times count from here."""
        ...

    def sip_uri(self, user: str) -> str:
        """The URI the desk phone dials to reach ``user`` on the board."""
        ...

    def active_calls(self) -> list[CallView]: ...

    def port_held(self, port: int) -> bool: ...


CallScenario = Callable[[ApplianceRig, ScenarioResult], Awaitable[None]]


def tone_share(samples: npt.NDArray[np.int16], hz: float) -> float:
    """The share of the signal's energy within 30 Hz of ``hz`` (0 for silence)."""
    if len(samples) < 800:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    total = float(spectrum.sum())
    if total < 1e3 * len(samples):  # below about -60 dBFS: nothing there
        return 0.0
    return float(spectrum[np.abs(freqs - hz) < 30].sum()) / total


def prepare_fxs_talker(rig: Rig) -> None:
    """Phone 1 keys 101 at 1 s (after its dial tone), then talks (a 1 kHz tone)."""
    keys = np.concatenate([dtmf_symbol(d, 8 * 80, 8 * 80) for d in "101"])
    rig.say(FXS, KEYS_AT, keys)
    t = np.arange(int(50 * RATE)) / RATE
    rig.say(FXS, TALK_FROM, (6000 * np.sin(2 * np.pi * NEAR_TONE_HZ * t)).astype(np.int16))


async def _fxs_call_up(rig: CallRig, result: ScenarioResult) -> int:
    """Phone 1 dials 101 and the desk phone answers; where phone 1's audio stood then."""
    far = rig.far
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    await heard_tone(rig, FXS, ToneKind.DIAL, mark, 2.0)
    await asyncio.to_thread(far.wait_event, "CALL_INCOMING", 8.0)
    # the last of the three 80 ms keys (80 ms apart) ends 0.4 s after KEYS_AT, on the
    # port audio's clock, which started with the appliance; "101" is complete then
    last_key = rig.audio_started + KEYS_AT + 0.4
    result.timing("post_dial_delay", (time.monotonic() - last_key) * 1000)
    await heard_tone(rig, FXS, ToneKind.RINGBACK, mark, 3.0)
    await asyncio.to_thread(far.answer)
    answered = time.monotonic()
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.TALKING.value, 3.0), (
        f"port 1 is {rig.port_state(FXS)} after the answer"
    )
    result.timing("answer_to_talking", (time.monotonic() - answered) * 1000)
    return len(rig.played(FXS))


async def fxs_calls_sip_phone(rig: CallRig, result: ScenarioResult) -> None:
    far = rig.far
    connected = await _fxs_call_up(rig, result)
    await rig.until(lambda: False, 2.5)  # both sides talk for a while
    heard_far = rig.played(FXS)[connected:]
    share = tone_share(heard_far[-8000:], FAR_TONE_HZ)
    result.note(f"analog phone hears the desk phone's tone: {share:.0%} of its audio")
    assert share > 0.5, f"the analog phone does not hear the desk phone ({share:.2f})"
    await asyncio.to_thread(far.wait_heard, 2.0, 5.0)
    rig.phone(FXS).hang_up()
    await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5.0)
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.IDLE.value, 2.0)
    near: list[npt.NDArray[np.int16]] = []

    def recorded() -> bool:  # baresip writes the WAV header when the call closes
        try:
            with wave.open(str(far.heard()), "rb") as wav:
                near.append(np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2"))
        except (EOFError, wave.Error):
            return False
        return True

    assert await rig.until(recorded, 3.0), "baresip kept no recording of the call"
    share = tone_share(near[0][-8000:], NEAR_TONE_HZ)
    result.note(f"desk phone hears the analog phone's tone: {share:.0%} of its audio")
    assert share > 0.5, f"the desk phone does not hear the analog phone ({share:.2f})"


async def far_end_hangup_releases_fxs(rig: CallRig, result: ScenarioResult) -> None:
    far = rig.far
    await _fxs_call_up(rig, ScenarioResult("setup"))
    released = time.monotonic()
    await asyncio.to_thread(far.hangup)
    assert await rig.until(lambda: rig.phone(FXS).feed is FeedMode.OPEN, 3.0), "no loop drop"
    result.timing("bye_to_loop_drop", (time.monotonic() - released) * 1000)
    mark = len(rig.played(FXS))
    await heard_tone(rig, FXS, ToneKind.BUSY, mark, 3.0)
    rig.phone(FXS).hang_up()
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.IDLE.value, 3.0), "port held"


async def sip_phone_rings_fxs(rig: CallRig, result: ScenarioResult) -> None:
    far = rig.far
    mark = len(rig.played(FXS))
    dialled = time.monotonic()
    await asyncio.to_thread(far.dial, rig.sip_uri("201"))
    assert await rig.until(lambda: rig.phone(FXS).ringing, 3.0), "the analog phone does not ring"
    result.timing("invite_to_ring", (time.monotonic() - dialled) * 1000)
    cadence = await rig.ring_cadence(FXS, 2, 8.0)
    assert same_cadence(cadence, (2000, 4000), rig.cadence_tolerance_ms), cadence
    caller = await caller_id_heard(rig, FXS, mark, 6.0)
    number = getattr(caller, "number", None)
    assert number == rig.far_extension, f"caller ID number {number!r}"
    result.timing("caller_id_after_invite", (time.monotonic() - dialled) * 1000)
    rig.phone(FXS).lift()
    await asyncio.to_thread(far.wait_event, "CALL_ESTABLISHED", 4.0)
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.TALKING.value, 2.0)
    await asyncio.to_thread(far.hangup)
    assert await rig.until(lambda: rig.phone(FXS).feed is FeedMode.OPEN, 3.0), "no loop drop"
    rig.phone(FXS).hang_up()
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.IDLE.value, 3.0)


def prepare_line_caller_id(rig: Rig) -> None:
    """The exchange sends caller ID (Bell 202, MDMF) in the silence after the first
    ring, which the scenario rings from RING_AT on the port audio's clock."""
    caller = CallerId(
        number="5551234", name="ALICE", when=CallTime.of(datetime.now()), number_absence=None
    )
    fsk = fsk_modulate(encode_message(caller, MessageFormat.MDMF), FskStandard.BELL202)
    rig.say(FXO, RING_AT + 2.5, fsk)


async def fxo_inbound_reaches_attendant(rig: CallRig, result: ScenarioResult) -> None:
    line = rig.line(FXO)
    await rig.until(lambda: time.monotonic() >= rig.audio_started + RING_AT, RING_AT + 1)
    started = time.monotonic()
    mark = len(rig.played(FXO))
    line.ring_burst(2000)
    await rig.until(lambda: False, 4.0)  # the ring, then caller ID in the silence
    line.ring_burst(2000)
    assert await rig.until(lambda: line.seized, 8.0), (
        f"the line is not answered ({rig.port_state(FXO)})"
    )
    result.timing("first_ring_to_answer", (time.monotonic() - started) * 1000)
    connected = FxoState.CONNECTED.value
    assert await rig.until(lambda: rig.port_state(FXO) == connected, STATE_LAG_S), rig.port_state(
        FXO
    )

    def greeting() -> bool:
        heard = rig.played(FXO)[mark:]
        return len(heard) > 4000 and float(np.abs(heard[-4000:].astype(np.int32)).mean()) > 200

    assert await rig.until(greeting, 4.0), "the caller on the line hears no greeting"
    result.timing("ring_to_greeting", (time.monotonic() - started) * 1000)
    # the call carries the caller ID the line delivered, as an outside caller
    (call,) = rig.active_calls()
    assert (call.caller, call.callee, call.external) == ("5551234", "500", True), call
    assert call.caller_name == "ALICE", call
    line.drop_loop()  # the caller hangs up: the exchange drops loop current
    assert await rig.until(lambda: not line.seized, 4.0), "the line is not released"


async def controller_reset_mid_call(rig: ApplianceRig, result: ScenarioResult) -> None:
    assert rig.sim is not None
    far = rig.far
    await _fxs_call_up(rig, ScenarioResult("setup"))
    reset_at = time.monotonic()
    rig.sim.reset("watchdog")
    # the controller forgot the call's line state: the call is released, not left hanging
    await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5.0)
    result.timing("reset_to_call_released", (time.monotonic() - reset_at) * 1000)
    rig.phone(FXS).hang_up()
    assert await rig.until(lambda: rig.port_state(FXS) == FxsState.IDLE.value, 3.0), "not idle"
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    await heard_tone(rig, FXS, ToneKind.DIAL, mark, 3.0)
    result.timing("reset_to_dial_tone_again", (time.monotonic() - reset_at) * 1000)
    rig.phone(FXS).hang_up()


async def fxs_voicemail_lights_stutter_dial(rig: ApplianceRig, result: ScenarioResult) -> None:
    """101 calls 201, nobody answers, 101 leaves a message: 201's analog phone then
    hears stutter dial tone (the analog message-waiting indication)."""
    assert rig.ports is not None
    far = rig.far
    port = rig.ports.ports[FXS]
    assert isinstance(port, FxsPort)
    assert not port.messages_waiting
    await asyncio.to_thread(far.dial, rig.sip_uri("201"))
    assert await rig.until(lambda: rig.phone(FXS).ringing, 3.0), "the analog phone does not ring"
    # no answer: voicemail takes the call after NO_ANSWER_S
    await asyncio.to_thread(far.wait_event, "CALL_ESTABLISHED", NO_ANSWER_S + 4.0)
    assert await rig.until(lambda: not rig.phone(FXS).ringing, 2.0), "still ringing"
    await rig.until(lambda: False, 14.0)  # the greeting, the beep, then 440 Hz as a message
    hung_up = time.monotonic()
    await asyncio.to_thread(far.hangup)
    assert await rig.until(lambda: port.messages_waiting, 5.0), "no message-waiting on port 1"
    result.timing("hang_up_to_mwi", (time.monotonic() - hung_up) * 1000)
    mark = len(rig.played(FXS))
    rig.phone(FXS).lift()
    await heard_tone(rig, FXS, ToneKind.DIAL, mark, 2.0)
    await rig.until(lambda: False, 1.0)
    heard = rig.played(FXS)[mark:]
    freqs = tone_for(rig.spec.country, ToneKind.DIAL).frequencies_hz
    on = [tone_present(heard[i : i + 160], freqs) for i in range(0, len(heard) - 159, 160)]
    first = on.index(True)
    edges = sum(1 for a, b in zip(on[first:], on[first + 1 :], strict=False) if a != b)
    assert edges >= 4, f"steady dial tone, not stutter ({edges} breaks in {len(on)} frames)"
    result.note(f"stutter dial tone: {edges} on/off edges in the first second")
    rig.phone(FXS).hang_up()


async def fxs_flash_holds_and_resumes(rig: CallRig, result: ScenarioResult) -> None:
    """In a call with the desk phone, a hook flash holds it (re-INVITE sendonly, the
    desk phone then hears music on hold instead of the analog phone) and a second flash
    takes it back."""
    await _fxs_call_up(rig, ScenarioResult("setup"))
    flashed = time.monotonic()
    rig.phone(FXS).flash()
    assert await rig.until(lambda: rig.port_held(FXS), 3.0), "the hold was not agreed"
    result.timing("flash_to_held", (time.monotonic() - flashed) * 1000)
    held = FxsState.HELD.value
    assert await rig.until(lambda: rig.port_state(FXS) == held, STATE_LAG_S), rig.port_state(FXS)
    flashed = time.monotonic()
    rig.phone(FXS).flash()
    assert await rig.until(lambda: not rig.port_held(FXS), 3.0), "the call was not taken back"
    result.timing("flash_to_resumed", (time.monotonic() - flashed) * 1000)
    talking = FxsState.TALKING.value
    assert await rig.until(lambda: rig.port_state(FXS) == talking, STATE_LAG_S), rig.port_state(FXS)
    rig.phone(FXS).hang_up()
    await asyncio.to_thread(rig.far.wait_event, "CALL_CLOSED", 5.0)


def prepare_exchange_dial_tone(rig: Rig) -> None:
    """The exchange on the FXO line gives dial tone (350+440 Hz) whenever listened to."""
    t = np.arange(int(50 * RATE)) / RATE
    tone = 3000 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t))
    rig.say(FXO, 0.0, tone.astype(np.int16))


def dtmf_digits(samples: npt.NDArray[np.int16]) -> str:
    """The DTMF digits in ``samples``, by our own detector."""
    detector = DtmfDetector()
    digits = ""
    for i, start in enumerate(range(0, len(samples) - 159, 160)):
        for event in detector.feed(samples[start : start + 160], i * 0.02):
            if isinstance(event, DigitEnded):
                digits += event.digit
    return digits


async def sip_phone_dials_out_on_the_line(rig: CallRig, result: ScenarioResult) -> None:
    """101 dials 9 5551234: the FXO port seizes the line, hears dial tone, keys the
    number (without the 9) and cuts through; 101 hangs up and the line is released."""
    far = rig.far
    line = rig.line(FXO)
    mark = len(rig.played(FXO))
    dialled_at = time.monotonic()
    await asyncio.to_thread(far.dial, rig.sip_uri("95551234"))
    assert await rig.until(lambda: line.seized, 3.0), "the line is not seized"
    result.timing("invite_to_seize", (time.monotonic() - dialled_at) * 1000)
    heard: list[str] = []

    def keyed() -> bool:
        heard[:] = [dtmf_digits(rig.played(FXO)[mark:])]
        return heard[0] == "5551234"

    assert await rig.until(keyed, 6.0), f"the line heard {heard} dialled"
    result.timing("invite_to_number_dialled", (time.monotonic() - dialled_at) * 1000)
    await asyncio.to_thread(far.wait_event, "CALL_ESTABLISHED", 4.0)
    await asyncio.to_thread(far.hangup)
    assert await rig.until(lambda: not line.seized, 3.0), "the line is not released"


CALL_SCENARIOS: Final[dict[str, CallScenario]] = {
    "fxs_calls_sip_phone": fxs_calls_sip_phone,
    "sip_phone_rings_fxs": sip_phone_rings_fxs,
    "far_end_hangup_releases_fxs": far_end_hangup_releases_fxs,
    "fxo_inbound_reaches_attendant": fxo_inbound_reaches_attendant,
    "controller_reset_mid_call": controller_reset_mid_call,
    "fxs_voicemail_lights_stutter_dial": fxs_voicemail_lights_stutter_dial,
    "sip_phone_dials_out_on_the_line": sip_phone_dials_out_on_the_line,
    "fxs_flash_holds_and_resumes": fxs_flash_holds_and_resumes,
}
BENCH: Final[dict[str, tuple[int, ...]]] = {  # bench-capable: the ports each needs
    "fxs_calls_sip_phone": (FXS,),
    "sip_phone_rings_fxs": (FXS,),
    "far_end_hangup_releases_fxs": (FXS,),
    "fxo_inbound_reaches_attendant": (FXO,),
    "sip_phone_dials_out_on_the_line": (FXO,),
    "fxs_flash_holds_and_resumes": (FXS,),
}
CALL_PREPARE: Final[dict[str, Callable[[ApplianceRig], None]]] = {
    "fxs_calls_sip_phone": prepare_fxs_talker,
    "far_end_hangup_releases_fxs": prepare_fxs_talker,
    "controller_reset_mid_call": prepare_fxs_talker,
    "sip_phone_dials_out_on_the_line": prepare_exchange_dial_tone,
    "fxo_inbound_reaches_attendant": prepare_line_caller_id,
    "fxs_flash_holds_and_resumes": prepare_fxs_talker,
}
