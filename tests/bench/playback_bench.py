"""Prompt playback bench: our UdpMediaEngine.play next to rtpengine's "play media", one run.

N legs, each playing a prompt (default vm-intro.wav from Debian's asterisk-core-sounds-en-wav,
8 kHz mono, 5.65 s, looped) as PCMU in 20 ms packets (172 bytes) to its own "phone" socket on
127.0.0.1. This process only receives: it binds the N phone sockets, has the server start N
playbacks towards them, and measures what arrives. Servers:

  ours       appliance.media.engine.UdpMediaEngine on uvloop in a child process started per
             step, default EngineConfig: N legs opened and configured (SDP: sendonly PCMU to
             the phone's port), each given play([prompt], "en", loop=True) with a
             PromptLibrary clip loader. Every leg is paced by the engine's one MediaClock (a
             20 ms grid, max_burst 3): a tick sends one packet per leg, back to back. The
             legs start spread over 1 s, as calls arriving would (--together: all in one
             tick, the worst case, where every leg reaches the end of the clip, and encodes
             the next one, in the same tick).
  rtpengine  Debian's rtpengine-daemon 10.5 in userspace (--table=-1), started once
             (tests/bench/rtpengine.py). Per leg, one call over the ng protocol: offer with
             the phone as caller A, answer with a shared sink socket as callee B, then
             "play media" with A's from-tag (plays to A), `file` = the prompt and
             `repeat-times` enough to cover the step. Each of its players has its own timer.
  tone       internal reference, used only when rtpengine cannot play media (a probe call
             at start checks that a played packet reaches a phone) or when asked for:
             our engine's play_tone("dial"). It shares the media clock and the outbound
             stream code with playback but sends pre-encoded tone frames instead of the
             prompt queue's, so it shows what the queue itself costs, not how we compare
             with another implementation.

Measured at the receivers over a window of --seconds after a warm-up:

  loss       packets received vs expected, where a leg expects every 20 ms frame of its RTP
             timeline from its first packet in the window to its last (timestamp span / 160
             + 1): network loss (sequence gaps) and frames the sender skipped (timestamp
             jumps) both count. A leg that sends nothing expects the whole window.
  behind     how much slower than real time the timelines ran (their RTP span against the
             wall-clock span of the same packets, summed over legs): a sender that falls
             behind without skipping frames shows here, not as loss.
  jitter     per consecutive packets of a leg, |arrival gap - 20 ms x sequence gap|: mean
             and p99 over all legs, in ms. A late tick or a bursty sender shows here.
  CPU        the server's process time from /proc over the window (1 core = 100 %): our
             child alone, or rtpengine's whole process.
  ticks      ours and tone only: the media clock's late ticks (run > 10 ms after their due
             time) and skipped ticks (never run: the loop was > 3 frames behind) in the
             window (appliance/media/clock.py).

A run is clean when loss < 0.1 %, behind < 0.5 %, every packet is 172 bytes of PCMU, no leg
is silent or stops (> 0.5 s without a packet at the end), and the receiver stayed below
90 % of its core (else it, not the server, is measured). It is also paced when its jitter
p99 is < 10 ms (half a frame: a phone's 20-40 ms jitter buffer absorbs it). A step is clean
(paced) when all its runs are; "max clean legs" is the highest step with it and every step
below clean. Stepping stops for a server when a run loses over 5 % or fails. On 2+ CPUs the
receiver is pinned to the first CPU and the servers to the others (as in rtp_relay_bench.py;
--no-pin turns it off). Prints one table with the servers side by side and writes
OUT/playback-*.json. Nothing is asserted; the exit code is 0 whatever the servers did.

    .venv/bin/python tests/bench/playback_bench.py --quick
    .venv/bin/python tests/bench/playback_bench.py
    .venv/bin/python tests/bench/playback_bench.py --steps 800,1200,1600  # the ceiling, ~100 s
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import math
import os
import platform
import shutil
import socket
import struct
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import uvloop
from child import ChildServer, affinity
from procs import LOCALHOST, cpu_seconds, free_port_range, system_busy_seconds
from rtp_load import LOSS_LIMIT, NOISY, SOCKET_BUFFER, own_cpu
from rtp_relay_bench import placement, raise_fd_limit
from rtpengine import NgCall, NgError, Rtpengine, delete_call, set_up_call

from appliance.dsp.g711 import Codec
from appliance.media.engine import UdpMediaEngine
from appliance.media.ports import PortPool
from appliance.media.prompts import SOUNDS_ROOT, PromptLibrary
from appliance.pbx.app_events import PlayItem
from appliance.pbx.media_port import MediaEvent, StreamDirection, StreamParams

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

SERVERS = ("ours", "rtpengine", "tone")
DEFAULT_SERVERS = ("ours", "rtpengine")  # tone joins by itself when rtpengine cannot play
STEPS = (50, 100, 200, 400, 800)  # legs
QUICK_STEPS = (50, 200)
SECONDS, QUICK_SECONDS = 8.0, 3.0
RUNS = 1
PROMPT = SOUNDS_ROOT / "en" / "vm-intro.wav"
MEDIA_PORT_LOW = 20000  # above yakyak's default RTP range, as in rtp_relay_bench.py

WARMUP = 1.0  # s between the last playback started and the window
# s over which our legs start, as calls arriving would (rtpengine's start over the time
# its N "play media" requests take: about 2 s for 800). Started in one tick, every leg
# reaches the end of the clip in the same tick too (see the README).
SPREAD = 1.0
# s of prompt beyond warm-up + window that rtpengine is asked to play: the N "play media"
# requests themselves take a while (about 10 s for 1,200 at 66 % CPU; its first players
# then ran out before the window ended). Deleting the call stops a player anyway.
REPEAT_SLACK = 120.0
START_TIMEOUT = 60.0  # s for our child to open, configure and start N legs
PROBE_TIMEOUT = 2.0  # s for the probe call's first played packet

BEHIND_LIMIT = 0.5  # % the timelines may run slower than real time (edge effects)
JITTER_LIMIT_MS = 10.0  # p99 below it: "paced" (half a frame)
STALL_NS = 500_000_000  # a leg whose last packet is older than this at the end stopped
RECEIVER_LIMIT = 90.0  # % of a core; a receiver this busy may itself delay the packets
STOP_LOSS = 5.0  # % lost in a run: no higher step for that server

PTIME_NS = 20_000_000  # RFC 3551 §4.5.14: G.711 at 20 ms
SAMPLES = 160  # RTP timestamp units per packet
PACKET = 12 + SAMPLES  # RTP header (RFC 3550 §5.1) + 160 bytes of G.711
PCMU = Codec.PCMU.payload_type
SEQ_TS = struct.Struct("!HI")  # sequence number and timestamp, at offset 2
MAX_TS_JUMP = 60 * 8000  # a larger forward jump is a new timeline, not skipped frames
RTCP_TYPES = range(200, 205)  # SR, RR, SDES, BYE, APP: told apart from RTP as RFC 5761 §4 does

log = logging.getLogger("playback-bench")


# --- our engine, in a child process ----------------------------------------------------------


def engine_main(
    source: str,
    phones: list[int],
    ports: tuple[int, int],
    prompt: str,
    spread: float,
    conn: Connection,
) -> None:
    """The child: one UdpMediaEngine playing to every phone until the parent says stop.

    `source` is "prompt" (play, looped) or "tone" (play_tone("dial")). Leg i starts
    i * spread / N seconds after the first, as calls arriving would; "ready" is sent when
    all have started. Requests on `conn`: "clock" is answered with the media clock's
    (ticks, late, skipped); "stop" ends it.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        library = PromptLibrary()

        def clips(item: PlayItem, language: str) -> list[npt.NDArray[np.int16]]:
            if not isinstance(item, str):
                raise LookupError(f"{item!r} is not a file name")
            return [library.load(Path(item))]

        def on_event(event: MediaEvent) -> None:
            return None  # a looped prompt never finishes; nothing else is expected

        engine = UdpMediaEngine(loop, PortPool(*ports), LOCALHOST, on_event, clips=clips)
        first = loop.time()
        for index, port in enumerate(phones):
            if (wait := first + index * spread / len(phones) - loop.time()) > 0:
                await asyncio.sleep(wait)
            leg = engine.open_leg(f"leg{index}", LOCALHOST)
            params = StreamParams(
                LOCALHOST, port, None, "PCMU", PCMU, None, StreamDirection.SENDONLY
            )
            engine.configure(leg, params)
            if source == "tone":
                engine.play_tone(leg, "dial")
            else:
                engine.play(leg, [prompt], "en", loop=True)
        conn.send(("ready", engine.legs))
        while (request := await loop.run_in_executor(None, conn.recv)) != "stop":
            if request == "clock":
                clock = engine.clock
                conn.send((clock.ticks, clock.late_ticks, clock.skipped_ticks))
        engine.close_all()
        await engine.wait_closed()

    uvloop.run(main())


# --- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockCounts:
    ticks: int
    late: int
    skipped: int


class Server(Protocol):
    name: str
    label: str

    def begin(self, phones: list[int], seconds: float) -> None:
        """Start one playback towards each phone port."""
        ...

    def clock(self) -> ClockCounts | None: ...
    def pids(self) -> list[int]: ...
    def end(self) -> None: ...
    def close(self) -> None: ...


class EngineServer(ChildServer):
    """Our engine in a child process, started per step; `source` "prompt" or "tone"."""

    def __init__(
        self,
        name: str,
        source: str,
        prompt: Path,
        ports: tuple[int, int],
        cpus: set[int] | None,
        spread: float,
    ) -> None:
        super().__init__(cpus)
        self.name = name
        self.source = source
        self.spread = spread
        self.label = (
            "UdpMediaEngine.play (looped prompt)"
            if source == "prompt"
            else "INTERNAL reference: play_tone(dial)"
        )
        self.prompt = prompt
        self.ports = ports

    def begin(self, phones: list[int], seconds: float) -> None:
        args = (self.source, phones, self.ports, str(self.prompt), self.spread)
        ready = self.spawn(engine_main, args, "our engine", START_TIMEOUT)
        if not isinstance(ready, tuple) or len(ready) != 2:  # engine_main: ("ready", legs)
            raise RuntimeError(f"our engine said {ready!r} at start")
        legs = ready[1]
        if legs != len(phones):
            raise RuntimeError(f"our engine opened {legs} legs of {len(phones)}")

    def clock(self) -> ClockCounts | None:
        if self.conn is None:
            return None
        self.conn.send("clock")
        return ClockCounts(*self.conn.recv())


class RtpengineServer:
    """rtpengine, started once; per step one call per leg and a "play media" on each."""

    name = "rtpengine"

    def __init__(
        self,
        rundir: Path,
        ports: tuple[int, int],
        cpus: set[int] | None,
        prompt: Path,
        prompt_seconds: float,
    ) -> None:
        with affinity(cpus):  # its worker threads share the server's CPUs
            self.daemon = Rtpengine(rundir, *ports, len(cpus) if cpus else None)
        self.version = self.daemon.version()
        self.label = f"rtpengine {self.version}: play media"
        self.prompt = prompt
        self.prompt_seconds = prompt_seconds
        self.prompt_ms: int | None = None  # the duration rtpengine reports for the file
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # every call's callee B
        self.sink.bind((LOCALHOST, 0))
        self.calls: list[NgCall] = []
        self.steps = 0

    @property
    def sink_port(self) -> int:
        return int(self.sink.getsockname()[1])

    def play(self, call: NgCall, repeats: int) -> dict[str, Any]:
        return self.daemon.ng.request(
            {
                "command": "play media",
                "call-id": call.call_id,
                "from-tag": call.from_tag,  # the participant that hears it: A, the phone
                "file": str(self.prompt),
                "repeat-times": repeats,
            }
        )

    def probe(self) -> str | None:
        """None when a played packet reaches a phone; else why not."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
            phone.bind((LOCALHOST, 0))
            try:
                call = set_up_call(
                    self.daemon.ng, 0, phone.getsockname()[1], self.sink_port, False, "probe"
                )
            except NgError as exc:
                return f"call set-up failed: {exc}"
            try:
                answer = self.play(call, 1)
                duration = answer.get("duration")
                self.prompt_ms = duration if isinstance(duration, int) else None
                deadline = time.monotonic() + PROBE_TIMEOUT
                while (left := deadline - time.monotonic()) > 0:
                    phone.settimeout(left)
                    data = phone.recv(2048)
                    if len(data) > 1 and data[1] not in RTCP_TYPES:
                        if len(data) != PACKET or data[1] & 0x7F != PCMU:
                            return f"played packet is not 20 ms of PCMU: {data[:12].hex()}"
                        return None
                return f"no played RTP reached the phone within {PROBE_TIMEOUT:g} s"
            except NgError as exc:
                return f"play media failed: {exc}"
            except TimeoutError:
                return f"no played RTP reached the phone within {PROBE_TIMEOUT:g} s"
            finally:
                delete_call(self.daemon.ng, call)

    def begin(self, phones: list[int], seconds: float) -> None:
        self.steps += 1
        tag = f"play-{os.getpid()}-{self.steps}"
        repeats = math.ceil((WARMUP + seconds + REPEAT_SLACK) / self.prompt_seconds)
        for index, port in enumerate(phones):
            self.calls.append(set_up_call(self.daemon.ng, index, port, self.sink_port, False, tag))
        for call in self.calls:
            self.play(call, repeats)

    def clock(self) -> ClockCounts | None:
        return None  # rtpengine exposes no per-tick counters for its players

    def pids(self) -> list[int]:
        return [self.daemon.pid]

    def end(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            delete_call(self.daemon.ng, call)
        if (code := self.daemon.child.process.poll()) is not None:
            raise RuntimeError(f"rtpengine exited ({code}):\n{self.daemon.child.tail()}")

    def close(self) -> None:
        self.sink.close()
        self.daemon.stop()


# --- receiving -------------------------------------------------------------------------------


class Receiver(asyncio.DatagramProtocol):
    """One phone: its leg's packets in the window, the RTP timeline they cover, jitter."""

    def __init__(self, deviations: array[int]) -> None:
        self.deviations = deviations  # shared by all receivers: ns
        self.recording = False
        self.received = 0
        self.first_ns = 0  # arrival of the first packet in the window; 0 before it
        self.last_ns = 0
        self.last_seq = -1
        self.last_ts = 0
        self.frames = 0  # RTP timeline from the first packet to the last, in 20 ms frames
        self.seq_missing = 0  # sequence gaps: lost between sender and receiver
        self.ts_skipped = 0  # frames missing from the sender's timeline (skipped ticks)
        self.ts_resets = 0  # a timestamp jump that is no timeline (back, or over a minute)
        self.out_of_order = 0
        self.wrong = 0  # not 172 bytes of PCMU
        self.rtcp = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic_ns()
        if len(data) > 1 and data[1] in RTCP_TYPES:
            self.rtcp += 1  # a sender report sent to the next port, which is another phone's
            return
        if not self.recording:
            return
        if len(data) != PACKET or data[1] & 0x7F != PCMU:
            self.wrong += 1
            return
        self.received += 1
        seq, ts = SEQ_TS.unpack_from(data, 2)
        if self.last_seq < 0:
            self.first_ns = now
        else:
            step = (seq - self.last_seq) & 0xFFFF  # RFC 3550 §A.1: modulo 2**16
            if not 0 < step < 0x8000:
                self.out_of_order += 1
                return
            self.seq_missing += step - 1
            self.deviations.append(abs(now - self.last_ns - step * PTIME_NS))
            jump = (ts - self.last_ts) & 0xFFFFFFFF
            if 0 < jump < MAX_TS_JUMP:
                frames = -(-jump // SAMPLES)
                self.ts_skipped += max(0, frames - step)
            else:
                frames = step
                self.ts_resets += 1
            self.frames += frames
        self.last_seq, self.last_ts, self.last_ns = seq, ts, now


@dataclass
class Run:
    server: str
    legs: int
    run: int
    seconds: float
    setup_s: float = 0.0  # starting the N playbacks (our child; rtpengine's calls and plays)
    window_s: float = 0.0
    expected: int = 0  # frames of the legs' RTP timelines in the window
    received: int = 0
    wall_expected: float = 0.0  # one per 20 ms of wall clock from each leg's first packet
    behind: float = 0.0  # % by which the timelines ran slower than the wall clock
    seq_missing: int = 0
    ts_skipped: int = 0
    ts_resets: int = 0
    out_of_order: int = 0
    wrong: int = 0
    silent_legs: int = 0
    stalled_legs: int = 0
    jitter_mean_ms: float | None = None
    jitter_p99_ms: float | None = None
    jitter_max_ms: float | None = None
    server_cpu: float = 0.0  # % of one core over the window
    receiver_cpu: float = 0.0
    other_cpu: float = 0.0
    ticks: int | None = None  # ours: media clock ticks run in the window
    late_ticks: int | None = None
    skipped_ticks: int | None = None
    error: str | None = None

    @property
    def loss(self) -> float:
        """% of the timelines' frames that did not arrive."""
        if self.expected <= 0:
            return 100.0
        return max(0.0, 100.0 * (self.expected - self.received) / self.expected)

    @property
    def noisy(self) -> bool:
        return self.other_cpu > 100 * NOISY

    @property
    def reason(self) -> str:
        """Why the run is not clean; empty when it is (jitter aside: see `paced`)."""
        if self.error:
            return self.error
        problems = []
        if self.loss >= LOSS_LIMIT:
            problems.append(f"loss {self.loss:.2f} %")
        if self.behind >= BEHIND_LIMIT:
            problems.append(f"{self.behind:.2f} % behind real time")
        if self.wrong:
            problems.append(f"{self.wrong} packets not 20 ms of PCMU")
        if self.silent_legs or self.stalled_legs:
            problems.append(f"{self.silent_legs} legs silent, {self.stalled_legs} stopped")
        if self.receiver_cpu >= RECEIVER_LIMIT:
            problems.append(f"receiver at {self.receiver_cpu:.0f} % CPU")
        return ", ".join(problems)

    @property
    def clean(self) -> bool:
        return not self.reason

    @property
    def paced(self) -> bool:
        return (
            self.clean and self.jitter_p99_ms is not None and self.jitter_p99_ms < JITTER_LIMIT_MS
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(
            asdict(self),
            loss_pct=round(self.loss, 4),
            clean=self.clean,
            paced=self.paced,
            reason=self.reason,
            noisy=self.noisy,
        )


def bind_receivers(legs: int) -> list[socket.socket]:
    socks = []
    for _ in range(legs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.bind((LOCALHOST, 0))
        sock.setblocking(False)
        socks.append(sock)
    return socks


async def measure(socks: list[socket.socket], server: Server, seconds: float, result: Run) -> None:
    loop = asyncio.get_running_loop()
    deviations: array[int] = array("q")
    receivers = [Receiver(deviations) for _ in socks]
    transports = []
    for sock, receiver in zip(socks, receivers, strict=True):
        transport, _ = await loop.create_datagram_endpoint(
            functools.partial(_same, receiver), sock=sock
        )
        transports.append(transport)
    try:
        await asyncio.sleep(WARMUP)  # buffered packets from the start are read meanwhile
        pids = server.pids()
        clock_before = await loop.run_in_executor(None, server.clock)
        server_before, busy_before, own_before = (
            cpu_seconds(pids),
            system_busy_seconds(),
            own_cpu(),
        )
        start = time.monotonic_ns()
        for receiver in receivers:
            receiver.recording = True
        await asyncio.sleep(seconds)
        for receiver in receivers:
            receiver.recording = False
        end = time.monotonic_ns()
        server_used, own_used = cpu_seconds(pids) - server_before, own_cpu() - own_before
        busy = system_busy_seconds() - busy_before
        clock_after = await loop.run_in_executor(None, server.clock)
    finally:
        for transport in transports:
            transport.close()
    window = (end - start) / 1e9
    result.window_s = round(window, 3)
    heard = [r for r in receivers if r.first_ns]
    result.silent_legs = len(receivers) - len(heard)
    result.stalled_legs = sum(1 for r in heard if end - r.last_ns > STALL_NS)
    result.expected = sum(1 + r.frames for r in heard) + round(
        result.silent_legs * (end - start) / PTIME_NS
    )
    result.received = sum(r.received for r in receivers)
    result.wall_expected = round(sum((end - r.first_ns) / PTIME_NS + 0.5 for r in heard), 1)
    wall = sum(r.last_ns - r.first_ns for r in heard)
    media = sum(r.frames for r in heard) * PTIME_NS
    result.behind = round(max(0.0, 100.0 * (wall - media) / wall), 3) if wall else 0.0
    result.seq_missing = sum(r.seq_missing for r in receivers)
    result.ts_skipped = sum(r.ts_skipped for r in receivers)
    result.ts_resets = sum(r.ts_resets for r in receivers)
    result.out_of_order = sum(r.out_of_order for r in receivers)
    result.wrong = sum(r.wrong for r in receivers)
    result.server_cpu = round(100 * server_used / window, 1)
    result.receiver_cpu = round(100 * own_used / window, 1)
    result.other_cpu = round(100 * max(0.0, busy - server_used - own_used) / window, 1)
    if len(deviations):
        values = np.frombuffer(deviations, dtype=np.int64) / 1e6
        result.jitter_mean_ms = round(float(values.mean()), 3)
        result.jitter_p99_ms = round(float(np.percentile(values, 99)), 3)
        result.jitter_max_ms = round(float(values.max()), 3)
    if clock_before is not None and clock_after is not None:
        result.ticks = clock_after.ticks - clock_before.ticks
        result.late_ticks = clock_after.late - clock_before.late
        result.skipped_ticks = clock_after.skipped - clock_before.skipped


def _same(receiver: Receiver) -> Receiver:
    """The protocol factory of one phone's socket: its own receiver."""
    return receiver


def one_run(server: Server, legs: int, run: int, seconds: float) -> Run:
    result = Run(server.name, legs, run, seconds)
    socks = bind_receivers(legs)
    try:
        began = time.monotonic()
        server.begin([int(s.getsockname()[1]) for s in socks], seconds)
        result.setup_s = round(time.monotonic() - began, 2)
        try:
            uvloop.run(measure(socks, server, seconds, result))
        finally:
            server.end()
    except (NgError, OSError, RuntimeError, EOFError) as exc:
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        log.error("%s %d legs run %d: %s", server.name, legs, run, exc)
    finally:
        for sock in socks:
            sock.close()
    return result


# --- stepping --------------------------------------------------------------------------------


@dataclass
class Series:
    server: str
    label: str
    runs: list[Run] = field(default_factory=list)
    max_clean_legs: int = 0  # every step up to it clean
    max_paced_legs: int = 0  # every step up to it clean and paced
    topped_out: bool = False  # every step was clean: the figure is a floor
    error: str | None = None

    def at(self, legs: int) -> list[Run]:
        return [r for r in self.runs if r.legs == legs]

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "label": self.label,
            "max_clean_legs": self.max_clean_legs,
            "max_paced_legs": self.max_paced_legs,
            "topped_out": self.topped_out,
            "error": self.error,
            "runs": [r.as_dict() for r in self.runs],
        }


def step_through(server: Server, steps: Sequence[int], seconds: float, runs: int) -> Series:
    series = Series(server.name, server.label)
    clean_so_far = paced_so_far = True
    for legs in steps:
        stop = False
        for run in range(1, runs + 1):
            result = one_run(server, legs, run, seconds)
            series.runs.append(result)
            log.info("%s", describe(result))
            stop = stop or result.error is not None or result.loss > STOP_LOSS
        clean_so_far = clean_so_far and all(r.clean for r in series.at(legs))
        paced_so_far = paced_so_far and all(r.paced for r in series.at(legs))
        if clean_so_far:
            series.max_clean_legs = legs
        if paced_so_far:
            series.max_paced_legs = legs
        if stop:
            return series
    series.topped_out = clean_so_far
    return series


def describe(r: Run) -> str:
    verdict = (
        ("clean, paced" if r.paced else "clean, NOT paced") if r.clean else f"NOT CLEAN: {r.reason}"
    )
    ticks = (
        f", ticks {r.ticks} late {r.late_ticks} skipped {r.skipped_ticks}"
        if r.ticks is not None
        else ""
    )
    return (
        f"{r.server:>9} {r.legs:>5} legs run {r.run}: {verdict}; loss {r.loss:.3f} % "
        f"({r.received}/{r.expected}, seq gaps {r.seq_missing}, ts skips {r.ts_skipped}), "
        f"behind {r.behind:.2f} %, jitter mean {ms(r.jitter_mean_ms)} "
        f"p99 {ms(r.jitter_p99_ms)} max {ms(r.jitter_max_ms)} ms, "
        f"server CPU {r.server_cpu:.0f} %, receiver {r.receiver_cpu:.0f} %, "
        f"other {r.other_cpu:.0f} %{ticks}" + (" -- NOISY" if r.noisy else "")
    )


# --- report ----------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def cell(runs: list[Run]) -> str:
    """The worst of a step's runs: verdict, loss, jitter mean/p99, CPU, late/skipped ticks."""
    if not runs:
        return "-"
    if any(r.error for r in runs):
        return "error"
    verdict = (
        "ok" if all(r.paced for r in runs) else "ok~" if all(r.clean for r in runs) else "FAIL"
    ) + ("*" if any(r.noisy for r in runs) else "")
    loss = max(r.loss for r in runs)
    means = [r.jitter_mean_ms for r in runs if r.jitter_mean_ms is not None]
    p99s = [r.jitter_p99_ms for r in runs if r.jitter_p99_ms is not None]
    jitter = f"{ms(max(means) if means else None)}/{ms(max(p99s) if p99s else None)}"
    cpu = sum(r.server_cpu for r in runs) / len(runs)
    if runs[0].late_ticks is None:
        ticks = "-"
    else:
        ticks = f"{sum(r.late_ticks or 0 for r in runs)}/{sum(r.skipped_ticks or 0 for r in runs)}"
    return f"{verdict:<5}{loss:>7.3f}{jitter:>16}{cpu:>6.0f}{ticks:>9}"


def cpu_at(series: Series, legs: int) -> float | None:
    runs = [r for r in series.at(legs) if not r.error]
    return sum(r.server_cpu for r in runs) / len(runs) if runs else None


def report(results: dict[str, Any], all_series: list[Series]) -> str:
    width = 44
    lines = [
        "",
        f"Prompt playback: N legs, each looping {results['prompt']} "
        f"({results['prompt_seconds']:.2f} s) as PCMU in 20 ms packets to its own phone "
        "socket on 127.0.0.1",
        f"{results['seconds']:g} s window after {WARMUP:g} s warm-up, {results['runs']} "
        f"run(s) per step; receiver on CPU {results['receiver_cpus'] or 'any'}, servers on "
        f"CPU {results['server_cpus'] or 'any'}; our legs start "
        + (
            f"spread over {results['ours_start_spread_s']:g} s"
            if results["ours_start_spread_s"]
            else "all in one tick (--together)"
        ),
        f"ok = clean and paced; ok~ = clean, jitter p99 >= {JITTER_LIMIT_MS:g} ms; clean = loss "
        f"< {LOSS_LIMIT} %, < {BEHIND_LIMIT} % behind real time, only 20 ms PCMU, no leg "
        f"silent or stopped, receiver < {RECEIVER_LIMIT:.0f} % CPU",
        "jitter (ms) = |arrival gap - 20 ms x sequence gap| per packet; CPU = the server's "
        "process, 1 core = 100 %; late/skp = media clock ticks (ours)",
    ]
    if results.get("reference_note"):
        lines.append(results["reference_note"])
    lines.append("")
    lines.append(f"{'':>6}  " + "".join(f"{s.label[: width - 2]:<{width}}" for s in all_series))
    sub = f"{'':<5}{'loss %':>7}{'jitter mean/p99':>16}{'CPU %':>6}{'late/skp':>9}"
    lines.append(f"{'legs':>6}  " + "".join(f"{sub:<{width}}" for _ in all_series))
    for legs in results["steps"]:
        cells = [cell(s.at(legs)) for s in all_series]
        if any(c != "-" for c in cells):
            lines.append(f"{legs:>6}  " + "".join(f"{c:<{width}}" for c in cells))
    lines.append("")
    clean_cells, paced_cells = [], []
    for s in all_series:
        if s.error and not s.runs:
            clean_cells.append("error")
            paced_cells.append("error")
        else:
            floor = ">= " if s.topped_out else ""
            clean_cells.append(f"{floor}{s.max_clean_legs}")
            paced_top = s.topped_out and s.max_paced_legs == s.max_clean_legs
            paced_cells.append(f"{'>= ' if paced_top else ''}{s.max_paced_legs}")
    lines.append(f"{'max clean legs':<24}" + "".join(f"{c:<{width}}" for c in clean_cells))
    lines.append(f"{'max clean + paced legs':<24}" + "".join(f"{c:<{width}}" for c in paced_cells))
    common = [
        legs
        for legs in results["steps"]
        if all(s.at(legs) and all(r.clean for r in s.at(legs)) for s in all_series)
    ]
    if common:
        top = max(common)
        per = []
        for s in all_series:
            cpu = cpu_at(s, top)
            per.append("-" if cpu is None else f"{100 * cpu / top:.1f} % ({cpu:.0f} % at {top})")
        lines.append(f"{'CPU per 100 legs':<24}" + "".join(f"{c:<{width}}" for c in per))
    lines.append("")
    for s in all_series:
        if s.error and not s.runs:
            lines.append(f"{s.server}: {s.error}")
        for r in s.runs:
            if not r.clean:
                lines.append(f"{s.server} {r.legs} legs run {r.run}: {r.reason}")
    if any(r.noisy for s in all_series for r in s.runs):
        lines.append(
            f"* other processes used > {100 * NOISY:.0f} % of a core during the run: "
            "the machine was not quiet"
        )
    by_name = {s.server: s for s in all_series}
    ours, ref = by_name.get("ours"), by_name.get("rtpengine") or by_name.get("tone")
    if ours is not None and ref is not None and ours.max_clean_legs and ref.max_clean_legs:
        floors = (
            " (a clean top step: more steps needed)" if ours.topped_out or ref.topped_out else ""
        )
        lines.append(
            f"max clean legs, ours / {ref.server}: "
            f"{ours.max_clean_legs / ref.max_clean_legs:.2f}{floors}"
        )
        if common:
            top = max(common)
            a, b = cpu_at(ours, top), cpu_at(ref, top)
            if a is not None and b:
                lines.append(f"server CPU at {top} legs, ours / {ref.server}: {a / b:.2f}")
    lines.append(f"bench took {results['elapsed_s']:.0f} s")
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", help="comma-separated leg counts")
    parser.add_argument("--seconds", type=float, help=f"window per run (default {SECONDS:g})")
    parser.add_argument("--runs", type=int, help=f"runs per step, all clean (default {RUNS})")
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma-separated subset of {SERVERS}; tone is added when rtpengine cannot play",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"steps {QUICK_STEPS}, {QUICK_SECONDS:g} s"
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help=f"start all our legs in one tick (default: spread over {SPREAD:g} s)",
    )
    parser.add_argument("--prompt", type=Path, default=PROMPT, help="the WAV every leg plays")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not give the receiver the first CPU and the servers the others",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run dir (rtpengine log)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="results dir")
    args = parser.parse_args(argv)
    chosen = [v for v in args.servers.split(",") if v]
    if bad := [v for v in chosen if v not in SERVERS]:
        parser.error(f"--servers: unknown {bad}; choose from {SERVERS}")
    args.servers = [v for v in SERVERS if v in chosen]
    return args


def open_server(
    name: str,
    run_dir: Path,
    ports: tuple[int, int],
    cpus: set[int] | None,
    prompt: Path,
    prompt_seconds: float,
    spread: float,
) -> Server:
    if name == "ours":
        return EngineServer("ours", "prompt", prompt, ports, cpus, spread)
    if name == "tone":
        return EngineServer("tone", "tone", prompt, ports, cpus, spread)
    return RtpengineServer(run_dir / "rtpengine", ports, cpus, prompt, prompt_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    steps = (
        tuple(int(c) for c in args.steps.split(","))
        if args.steps
        else QUICK_STEPS
        if args.quick
        else STEPS
    )
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    runs = args.runs or RUNS
    spread = 0.0 if args.together else SPREAD
    prompt = args.prompt.resolve()
    prompt_seconds = PromptLibrary().load(prompt).size / 8000  # WavError if unusable
    raise_fd_limit()
    receiver_cpus, server_cpus = placement(args.pin)
    if receiver_cpus is not None:
        os.sched_setaffinity(0, receiver_cpus)
    size = 4 * max(steps) + 400  # rtpengine: RTP and RTCP on both sides of each call
    low = free_port_range(size, low=MEDIA_PORT_LOW)
    ports = (low, low + size - 1)
    run_dir = Path(tempfile.mkdtemp(prefix="yakyak-playback-", dir="/tmp"))
    started = time.monotonic()
    log.info("run dir %s; steps %s legs, %g s x %d runs", run_dir, list(steps), seconds, runs)
    results: dict[str, Any] = {
        "benchmark": "playback",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "host": platform.node(),
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "prompt": prompt.name,
        "prompt_path": str(prompt),
        "prompt_seconds": round(prompt_seconds, 3),
        "steps": list(steps),
        "seconds": seconds,
        "warmup_s": WARMUP,
        "ours_start_spread_s": spread,
        "runs": runs,
        "loss_limit_pct": LOSS_LIMIT,
        "jitter_p99_limit_ms": JITTER_LIMIT_MS,
        "media_ports": list(ports),
        "receiver_cpus": sorted(receiver_cpus or []),
        "server_cpus": sorted(server_cpus or []),
    }
    todo = list(args.servers)
    all_series: list[Series] = []
    failed = False
    while todo:
        name = todo.pop(0)
        try:
            server = open_server(name, run_dir, ports, server_cpus, prompt, prompt_seconds, spread)
        except (NgError, OSError) as exc:
            log.error("%s did not start: %s", name, exc)
            all_series.append(Series(name, name, error=str(exc)))
            failed = True
            if name == "rtpengine":
                results["rtpengine_play_media"] = f"rtpengine did not start: {exc}"
                if "tone" not in todo and "tone" not in args.servers:
                    todo.append("tone")
            continue
        try:
            if isinstance(server, RtpengineServer):
                results["rtpengine"] = server.version
                why = server.probe()
                results["rtpengine_play_media"] = why or "works"
                results["rtpengine_prompt_ms"] = server.prompt_ms
                if why is not None:
                    log.error("rtpengine cannot play media: %s", why)
                    all_series.append(Series(name, server.label, error=why))
                    failed = True
                    if "tone" not in todo and "tone" not in args.servers:
                        todo.append("tone")
                    continue
            all_series.append(step_through(server, steps, seconds, runs))
        finally:
            server.close()
    if any(s.server == "tone" for s in all_series) and "tone" not in args.servers:
        results["reference_note"] = (
            "NOTE: rtpengine could not play media here "
            f"({results.get('rtpengine_play_media')}); the reference column is INTERNAL: "
            "our own engine's play_tone, not another implementation"
        )
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / f"playback-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out = dict(results, series=[s.as_dict() for s in all_series])
    out_file.write_text(json.dumps(out, indent=2) + "\n")
    sys.stdout.write(report(results, all_series))
    sys.stdout.write(f"results: {out_file}\n")
    failed = failed or any(r.error for s in all_series for r in s.runs)
    if args.keep or failed:  # rtpengine's log is there
        log.info("run dir kept: %s", run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
