"""The SIP desk phone of the call scenarios: baresip (Debian's 1.0.0 package), driven
by the end-to-end tests' driver, and the tone it sends in every call.

On the sim rig it runs on loopback beside the in-process appliance; on a bench it
registers across the network with the board, so ``LanDeskPhone`` listens and puts
into its SDP an address of this machine that the board can reach.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path
from typing import Final

import numpy as np

# baresip's driver lives with the end-to-end tests that use it too (tests/ is not a
# package: its folder goes on the path, as pytest puts it there for those tests)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from baresip_phone import BaresipPhone, Phones, Registrar, free_port  # noqa: E402

__all__ = [
    "FAR_TONE_HZ",
    "BaresipPhone",
    "LanDeskPhone",
    "Phones",
    "Registrar",
    "free_port",
    "write_tone",
]

RATE: Final = 8000
FAR_TONE_HZ: Final = 440.0  # what the desk phone sends in every call


def write_tone(path: Path, hz: float, seconds: float) -> None:
    """A mono 8 kHz WAV of one sine tone: baresip's ``aufile`` source."""
    t = np.arange(int(seconds * RATE)) / RATE
    samples = (8000 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())


def lan_config(text: str, address: str) -> str:
    """baresip's config with SIP listening, and SDP and Contact naming, ``address``
    instead of loopback (the driver writes 127.0.0.1 into both lines)."""
    lines = []
    for line in text.split("\n"):
        key, _, value = line.partition("\t")
        if key == "sip_listen":
            line = f"sip_listen\t{address}:{value.rsplit(':', 1)[1]}"
        elif key == "net_interface":
            line = f"net_interface\t{address}"
        lines.append(line)
    return "\n".join(lines)


class LanDeskPhone(BaresipPhone):
    """A desk phone on this machine's ``address``, for a board across the network.
    (ctrl_tcp, its control socket, stays on loopback.)"""

    def __init__(
        self, user: str, home: Path, source: Path, registrar: Registrar, address: str
    ) -> None:
        super().__init__(user, home, source, registrar=registrar)
        self.address = address

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{self.address}:{self.sip_port}"

    def config_text(self) -> str:
        return lan_config(super().config_text(), self.address)
