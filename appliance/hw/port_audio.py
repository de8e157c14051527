"""One analog port's audio, a 20 ms frame at a time: what goes to the line (tones,
caller ID, DTMF we dial) and what is heard from it (DTMF keyed on a phone, dial and
busy tone on an exchange line, caller ID between rings).

Pure: ``tick(captured, now)`` takes the frame the sound card captured and returns the
frame to play and what was detected. The analog runtime calls it once per tick for
every port and moves frames to and from the port's PCM.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from appliance.dsp.callerid import (
    Absence,
    CallerId,
    CallTime,
    FskReceiver,
    FskStandard,
    MessageFormat,
    dtmf_cid_encode,
    encode_message,
    fsk_modulate,
)
from appliance.dsp.dtmf import DigitEnded, DtmfDetector, dtmf_symbol
from appliance.dsp.tones import FRAME_SAMPLES, ToneGenerator, ToneKind, tone_for
from appliance.lines.port_actions import (
    TONE_STUTTER_DIAL,
    AudioInput,
    BusyToneDetected,
    CallerIdReceived,
    DialToneDetected,
    DtmfDigit,
)

Frame = npt.NDArray[np.int16]
SILENCE: Final = np.zeros(FRAME_SAMPLES, dtype=np.int16)
STUTTER_FRAMES: Final = 50  # 1 s of 100 ms on / 100 ms off, then steady dial tone
_TONES: Final = {
    "dial": ToneKind.DIAL,
    TONE_STUTTER_DIAL: ToneKind.DIAL,
    "ringback": ToneKind.RINGBACK,
    "busy": ToneKind.BUSY,
    "congestion": ToneKind.CONGESTION,
    "call-waiting": ToneKind.CALL_WAITING,
}


class CidMode:
    FSK_BELL = "bell202"
    FSK_V23 = "v23"
    DTMF = "dtmf"


@dataclass(frozen=True, slots=True)
class Heard:
    """What one tick detected on the port's audio (inputs for the port machine)."""

    inputs: tuple[AudioInput, ...]


class ProgressToneDetector:
    """Dial tone and busy tone on an exchange line, by the energy at the country's
    tone frequencies (a DFT bin per frequency, each frame) and by cadence: dial tone is
    steady for ``dial_ms``; busy is two whole on/off cycles whose lengths match the
    busy cadence (within 25 % or 40 ms). Many countries use one frequency for dial
    tone, ringback and busy, so the cadence is what tells busy from ringback."""

    def __init__(self, country: str, dial_ms: int = 400) -> None:
        self._dial = tone_for(country, ToneKind.DIAL)
        self._busy = tone_for(country, ToneKind.BUSY)
        self._dial_frames = dial_ms // 20
        self._on_run = 0
        self._was_on = False
        self._run = 0  # frames in the current on or off segment
        self._matched = 0  # busy-shaped segments in a row
        self.reported_dial = False

    def feed(self, frame: Frame) -> list[AudioInput]:
        out: list[AudioInput] = []
        dial_on = tone_present(frame, self._dial.frequencies_hz)
        busy_on = tone_present(frame, self._busy.frequencies_hz)
        if dial_on and self._dial.continuous:
            self._on_run += 1
            if self._on_run >= self._dial_frames and not self.reported_dial:
                self.reported_dial = True
                out.append(DialToneDetected())
        else:
            self._on_run = 0
        if self._busy.continuous or not self._busy.cadence_ms:
            return out
        if busy_on == self._was_on:
            self._run += 1
            return out
        # a segment ended: was it as long as the busy cadence's on (or off) part?
        on_ms, off_ms = self._busy.cadence_ms[0]
        expected = on_ms if self._was_on else off_ms
        length = self._run * 20
        if abs(length - expected) <= max(40, expected // 4):
            self._matched += 1
            if self._matched >= 4:  # on, off, on, off
                self._matched = 0
                out.append(BusyToneDetected())
        else:
            self._matched = 0
        self._was_on = busy_on
        self._run = 1
        return out


def tone_present(frame: Frame, freqs: tuple[int, ...]) -> bool:
    """Every frequency of the tone clearly above the frame's other energy."""
    x = frame.astype(np.float64)
    total = float(np.dot(x, x)) + 1e-9
    if total < FRAME_SAMPLES * 30.0**2:  # quieter than about -60 dBm0: nothing
        return False
    n = np.arange(FRAME_SAMPLES)
    share = 0.0
    for f in freqs:
        w = 2 * np.pi * f / 8000
        c = float(np.dot(x, np.cos(w * n)))
        s = float(np.dot(x, np.sin(w * n)))
        power = 2 * (c * c + s * s) / FRAME_SAMPLES
        if power < 0.1 * total / len(freqs):
            return False
        share += power
    return share > 0.6 * total


class PortAudio:
    """The audio side of one port; ``country`` picks the tones, ``cid`` the caller-ID
    modulation this port sends (FXS) and listens for (FXO)."""

    def __init__(self, country: str, cid: str | None = CidMode.FSK_BELL) -> None:
        self.country = country
        self.cid = cid
        self._tone: ToneGenerator | None = None
        self._stutter = 0
        self._queued: deque[Frame] = deque()  # caller ID or DTMF we dial: before tones
        self._dtmf: DtmfDetector | None = None
        self._progress: ProgressToneDetector | None = None
        self._cid_rx: FskReceiver | None = None
        self.connected = False  # bridged to a call's media (the runtime moves frames)

    # -- what the port machine asks ------------------------------------------------

    def play_tone(self, name: str) -> None:
        kind = _TONES.get(name)
        if kind is None:
            raise ValueError(f"unknown tone {name!r}")
        self._queued.clear()  # a tone now means caller ID or digits would be out of place
        self._tone = ToneGenerator(tone_for(self.country, kind))
        self._stutter = STUTTER_FRAMES if name == TONE_STUTTER_DIAL else 0

    def stop_tone(self) -> None:
        self._tone = None
        self._stutter = 0

    def send_caller_id(self, number: str | None, name: str | None, when: datetime) -> None:
        """Queue caller ID for what a phone display can show: digits only (a SIP user
        name or an empty number is sent as "unavailable"), a name cut to 15 printable
        ASCII characters. Does nothing on a port without caller ID."""
        if self.cid is None:
            return
        digits = "".join(c for c in number or "" if c.isdigit())[:20]
        shown = "".join(c for c in (name or "") if c.isascii() and c.isprintable())[:15]
        if self.cid == CidMode.DTMF:
            samples = dtmf_cid_encode(digits if digits else Absence.UNAVAILABLE)
        else:
            caller = CallerId(
                number=digits or None,
                name=shown or None,
                when=CallTime.of(when),
                number_absence=None if digits else Absence.UNAVAILABLE,
            )
            standard = FskStandard.V23 if self.cid == CidMode.FSK_V23 else FskStandard.BELL202
            fmt = MessageFormat.ETSI if standard is FskStandard.V23 else MessageFormat.MDMF
            samples = fsk_modulate(encode_message(caller, fmt), standard)
        self._queue(samples)

    def cancel_queued(self) -> None:
        """Drop caller ID or digits not yet played (the phone was answered, the line
        released): they must not reach a call or the next seizure."""
        self._queued.clear()

    def send_dtmf(self, digits: str, on_ms: int, off_ms: int) -> None:
        for digit in digits:
            self._queue(dtmf_symbol(digit, 8 * on_ms, 8 * off_ms))

    def detect_dtmf(self, on: bool) -> None:
        self._dtmf = DtmfDetector() if on else None

    def detect_progress(self, on: bool) -> None:
        self._progress = ProgressToneDetector(self.country) if on else None

    def listen_caller_id(self, on: bool) -> None:
        standard = FskStandard.V23 if self.cid == CidMode.FSK_V23 else FskStandard.BELL202
        self._cid_rx = FskReceiver(standard) if on else None

    # -- every 20 ms ---------------------------------------------------------------

    def tick(self, captured: Frame | None, now: float) -> tuple[Frame | None, Heard]:
        """The frame to play (None: nothing of ours; the call's media may fill it) and
        what was detected in ``captured``."""
        heard: list[AudioInput] = []
        if captured is not None:
            if self._dtmf is not None:
                for event in self._dtmf.feed(captured, now):
                    if isinstance(event, DigitEnded):
                        heard.append(DtmfDigit(event.digit))
            if self._progress is not None:
                heard.extend(self._progress.feed(captured))
            if self._cid_rx is not None:
                caller = self._cid_rx.feed(captured)
                if caller is not None:
                    heard.append(CallerIdReceived(caller.number, caller.name))
        return self._next_out(), Heard(tuple(heard))

    def _next_out(self) -> Frame | None:
        if self._queued:
            return self._queued.popleft()
        if self._tone is not None:
            frame = self._tone.next_frame()
            if self._stutter:
                self._stutter -= 1
                if (self._stutter // 5) % 2:  # 100 ms off in every 200
                    return SILENCE
            return frame
        return None

    def _queue(self, samples: npt.NDArray[np.int16]) -> None:
        short = -len(samples) % FRAME_SAMPLES
        padded = np.concatenate((samples, np.zeros(short, dtype=np.int16)))
        for start in range(0, len(padded), FRAME_SAMPLES):
            self._queued.append(padded[start : start + FRAME_SAMPLES].astype(np.int16))
