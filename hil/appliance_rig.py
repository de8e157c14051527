"""The whole appliance on the sim board, in this process, with a SIP desk phone.

``ApplianceRig`` is ``SimRig``'s phone side (the sim controller's phones and line, the
ALSA file PCMs) around a real ``Appliance``, the one ``yakyak serve`` runs: SIP service,
B2BUA, voicemail and menus, and the analog ports joined to them through their SIP user
agent. The far end is baresip (Debian's package), registered as extension 101 over
loopback. A scenario lifts the analog phone, and baresip rings; baresip dials 201, and
the analog phone rings.

Port roles are the demo's: FXS 1 is extension 201, FXS 2 is 202, the FXO line on port
3 calls 500, the demo auto-attendant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Final

import numpy as np

from appliance.app import Appliance
from appliance.cli import DEMO_IVR
from appliance.config import Config, DialplanConfig, write_default
from appliance.hw.board_loader import load_board
from appliance.pbx.dialplan import AnalogTarget, Route
from appliance.store.db import open_database
from appliance.store.extensions import Directory
from appliance.store.ivr import save_ivr
from appliance.store.voicemail import VoicemailStore
from appliance.web.live import CallView
from hil.desk_phone import FAR_TONE_HZ, BaresipPhone, Phones, Registrar, free_port, write_tone
from hil.rig import CAPTURE_SECONDS, RATE, SimRig

__all__ = ["FAR_TONE_HZ", "NO_ANSWER_S", "ApplianceRig"]

DOMAIN: Final = "yakyak.local"
FAR_EXTENSION: Final = "101"
ROLES: Final = ({1: "201", 2: "202"}, {3: "500"})
NO_ANSWER_S: Final = 6  # s of ringing before voicemail answers
FXO_PORT: Final = 3


class ApplianceRig(SimRig):
    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.data = run_dir / "data"
        # the appliance keeps the sim board's files here; say()/played() use them
        self.run_dir = self.data / "run" / "board"
        self.appliance: Appliance | None = None
        self.phones: Phones | None = None
        self.sip_port = 0
        self.audio_started = 0.0
        self._phones_dir: Path | None = None
        self._password = "far-" + format(random.getrandbits(64), "x")

    async def start(self, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        self.data.mkdir(parents=True, exist_ok=True)
        write_default(self.data, DOMAIN, attendant=("500", "main"), analog=ROLES)
        self.sip_port = free_port()
        low = random.randrange(20_000, 60_000, 200)
        config = Config.load(self.data).with_overrides(
            sip=f"127.0.0.1:{self.sip_port}", rtp_ports=f"{low}-{low + 199}"
        )
        # unanswered calls go to voicemail sooner than an office would want
        calls = dataclasses.replace(config.calls, no_answer_timeout=NO_ANSWER_S)
        # 9 for an outside line: the FXO port, the 9 stripped
        outside = Route("_9.", AnalogTarget(FXO_PORT, strip=1), "outside")
        dialplan = DialplanConfig((*config.dialplan.routes, outside))
        config = dataclasses.replace(config, calls=calls, dialplan=dialplan)
        db = open_database(config.database_path)
        try:
            directory = Directory(db, DOMAIN)
            directory.add(FAR_EXTENSION, self._password, "Desk")
            directory.set_algorithms(FAR_EXTENSION, ["MD5"])  # baresip 1.0.0 knows MD5 only
            # the analog ports' extensions, and the others the demo menu transfers to
            for number in (*ROLES[0].values(), "102", "103"):
                directory.add(number, "pw-" + format(random.getrandbits(64), "x"))
            # 201, the analog phone on port 1, has a mailbox (its caller ID for MWI)
            # the demo menu's transfers fall back to these mailboxes
            voicemail = VoicemailStore(db, self.data / "voicemail")
            for number in (FAR_EXTENSION, "102", "103", "201"):
                voicemail.create_mailbox(number, "4321")
            save_ivr(db, DEMO_IVR)
        finally:
            db.close()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for port in self.spec.ports:  # what the phones will say, laid out before the start
            path, channels, _ = self._files(port.number, "in")
            samples = self._capture.get(
                path, np.zeros(int(CAPTURE_SECONDS * RATE) * channels, dtype=np.int16)
            )
            Path(path).write_bytes(samples.astype("<i2").tobytes())
            out_path, _, _ = self._files(port.number, "out")
            Path(out_path).touch()  # a file of ours: the appliance keeps it (not /dev/null)
        self._alsa_before = os.environ.get("ALSA_CONFIG_PATH")
        self.appliance = Appliance(config, loop, load_board("sim"))
        await self.appliance.start()
        self.audio_started = time.monotonic()  # the ports' media clock starts here
        analog = self.appliance.analog
        assert analog is not None, "the appliance did not start its analog ports"
        self.sim, self.ports = analog.sim, analog.ports
        gateway = analog.gateway
        assert gateway is not None
        ready = await self.until(
            lambda: bool(self.ports and self.ports.link_up and gateway.registered(1)), timeout
        )
        assert ready, "the analog ports did not come up and register"
        tone = self.run_dir.parent / "far-tone.wav"
        write_tone(tone, FAR_TONE_HZ, CAPTURE_SECONDS)
        # baresip 1.0.0's sndfile cuts its recording paths at about 128 characters: the
        # phones live under a short folder of their own
        self._phones_dir = Path(tempfile.mkdtemp(prefix="yakyak-phones-"))
        self.phones = Phones(self._phones_dir)
        far = self.phones.registered(
            FAR_EXTENSION, tone, Registrar("127.0.0.1", self.sip_port, self._password)
        )
        await asyncio.to_thread(far.wait_registered)

    @property
    def far(self) -> BaresipPhone:
        """The desk phone, extension 101."""
        assert self.phones is not None
        return next(iter(self.phones))

    @property
    def far_extension(self) -> str:
        return FAR_EXTENSION

    def sip_uri(self, user: str) -> str:
        """Where the desk phone calls ``user`` (an extension, or 9 and a number)."""
        return f"sip:{user}@127.0.0.1:{self.sip_port}"

    def active_calls(self) -> list[CallView]:
        """The calls in progress, as /api/live shows them."""
        assert self.appliance is not None
        return list(self.appliance.live_snapshot().calls)

    def port_held(self, port: int) -> bool:
        """The call on ``port`` is on hold by the port's phone, agreed with the far end
        (the re-INVITE answered)."""
        assert self.appliance is not None and self.appliance.analog is not None
        gateway = self.appliance.analog.gateway
        assert gateway is not None
        return any(call.held_by_us for call in gateway.calls(port))

    async def aclose(self) -> None:
        if self.phones is not None:
            await asyncio.to_thread(self.phones.close)
        if self._phones_dir is not None:
            shutil.rmtree(self._phones_dir, ignore_errors=True)
        if self.appliance is not None:
            await self.appliance.stop()  # closes the ports, the pty and the PCMs
        self.ports = None
        super().close()  # puts ALSA_CONFIG_PATH back
