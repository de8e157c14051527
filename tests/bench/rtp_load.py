"""One media load run: 2N phone sockets, G.711 streams through a server, loss and latency.

The generator for rtp_relay_bench.py. Phones come in pairs (A even, B odd): each sends one
172-byte RTP packet (12-byte header, 160 bytes of payload) every 20 ms to the port the
server gave it and counts what comes back. Frame n of every stream leaves at
t0 + n * 20 ms on the loop clock (STYLE §2.8), the streams spread over SLOTS phases of the
frame as independent calls would be, not sent in one burst.

Each payload starts with the send time (CLOCK_MONOTONIC ns) as 16 hex digits written in 16
G.711 codes that survive PCMU <-> PCMA translation unchanged in both directions, by our
tables and by rtpengine's (ffmpeg's): the receiver decodes it, so latency is measured
through a transcoding relay too. Payload types are checked on arrival (B must get PCMA
when transcoding). A packet that arrives TOO_LATE counts as lost: a jitter buffer would
drop it, and a saturated relay otherwise hides in its socket buffers for seconds.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import struct
import time
from array import array
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from procs import LOCALHOST, cpu_seconds, system_busy_seconds

from appliance.dsp.g711 import ULAW_TO_ALAW, Codec

LOSS_LIMIT = 0.1  # % of packets lost or late; a run at or above it is not clean
TOO_LATE = 0.1  # s; a packet this much later than its send time counts as lost
NOISY = 0.15  # other processes busier than this share of one core make a run "noisy"
PTIME = 0.020  # s per packet (RFC 3551 §4.5.14 G.711 at 20 ms)
SAMPLES = 160  # RTP timestamp units per packet
SLOTS = 10  # phases per 20 ms frame: stream i sends at i % SLOTS * 2 ms into the frame
PAYLOAD = 160
STAMP = 16  # payload bytes that carry the send time
LATCH_WAIT = 0.5  # s after the latching packets before counting starts
DRAIN = 0.3  # s after the last send for packets still in flight
LATE_SLACK = 0.05  # s; a run whose sending ends later than planned by this + 2 % is "late"
LATE_FACTOR = 0.02
RTP_HEADER = struct.Struct("!BBHII")  # V=2, PT, sequence, timestamp, SSRC (RFC 3550 §5.1)
SOCKET_BUFFER = 1 << 18

# 16 PCMU codes whose PCMU -> PCMA -> PCMU translation is the identity with our tables and
# with rtpengine's (checked against rtpengine 10.5 on all 256 codes: the two differ only on
# PCMU 0x71-0x7D odd and PCMA 0x0A/0x8A). Their PCMA images are PCMA's 16 symbols.
ULAW_SYMBOLS = bytes(range(0xA0, 0xB0))
SYMBOLS = {Codec.PCMU: ULAW_SYMBOLS, Codec.PCMA: ULAW_SYMBOLS.translate(ULAW_TO_ALAW)}
SILENCE = {Codec.PCMU: b"\xff", Codec.PCMA: b"\xd5"}
HEX = b"0123456789abcdef"


def encode_table(codec: Codec) -> bytes:
    return bytes.maketrans(HEX, SYMBOLS[codec])


def decode_table(codec: Codec) -> bytes:
    """Received codes -> hex digits; any other code becomes 'z', which int() rejects."""
    table = bytearray(b"z" * 256)
    for digit, code in zip(HEX, SYMBOLS[codec], strict=True):
        table[code] = digit
    return bytes(table)


if len(set(SYMBOLS[Codec.PCMA])) != len(HEX):  # our tables changed: pick other symbols
    raise RuntimeError("the PCMA images of ULAW_SYMBOLS are not distinct")


class Phone(asyncio.DatagramProtocol):
    """One stream's receiving end: counts packets, checks the payload type, decodes stamps."""

    def __init__(self, codec: Codec, latencies: array[int]) -> None:
        self.expect_pt = codec.payload_type
        self.decode = decode_table(codec)
        self.latencies = latencies
        self.received = 0
        self.wrong_pt = 0
        self.undecodable = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic_ns()
        self.received += 1
        if data[1] & 0x7F != self.expect_pt:
            self.wrong_pt += 1
        try:
            sent = int(data[12 : 12 + STAMP].translate(self.decode), 16)
        except ValueError:
            self.undecodable += 1
            return
        self.latencies.append(now - sent)

    def reset(self) -> None:
        self.received = self.wrong_pt = self.undecodable = 0


@dataclass
class Stream:
    sock: socket.socket
    codec: Codec  # what this phone sends and expects to receive
    ssrc: int
    transport: asyncio.DatagramTransport | None = None
    phone: Phone | None = None


@dataclass
class Run:
    server: str
    mode: str
    calls: int
    run: int
    seconds: float
    sent: int = 0
    received: int = 0
    too_late: int = 0  # received, but TOO_LATE after sending: a jitter buffer drops them
    wrong_pt: int = 0
    undecodable: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu: float = 0.0  # % of one core over the sending window
    generator_cpu: float = 0.0
    other_cpu: float = 0.0
    late_s: float = 0.0  # how much later than planned the last packet left
    error: str | None = None

    @property
    def streams(self) -> int:
        return 2 * self.calls

    @property
    def loss(self) -> float:
        """% of packets that did not arrive, or arrived TOO_LATE."""
        if not self.sent:
            return 100.0
        return 100.0 * (self.sent - self.received + self.too_late) / self.sent

    @property
    def late(self) -> bool:
        return self.late_s > LATE_SLACK + LATE_FACTOR * self.seconds

    @property
    def noisy(self) -> bool:
        return self.other_cpu > 100 * NOISY

    @property
    def reason(self) -> str:
        if self.error:
            return self.error
        problems = []
        if self.loss >= LOSS_LIMIT:
            problems.append(f"loss {self.loss:.2f} %")
        if self.wrong_pt:
            problems.append(f"{self.wrong_pt} wrong payload type")
        if self.undecodable:
            problems.append(f"{self.undecodable} stamps undecodable")
        if self.received > self.sent:  # someone else's RTP reached the server's ports
            problems.append(f"{self.received - self.sent} packets more than sent")
        if self.late:
            problems.append(f"generator {self.late_s:.2f} s behind")
        return ", ".join(problems)

    @property
    def clean(self) -> bool:
        return not self.reason

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            streams=self.streams,
            loss_pct=round(self.loss, 4),
            clean=self.clean,
            reason=self.reason,
            noisy=self.noisy,
        )
        return data


def bind_phones(calls: int, transcode: bool) -> list[Stream]:
    streams = []
    for i in range(2 * calls):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.bind((LOCALHOST, 0))
        sock.setblocking(False)
        codec = Codec.PCMA if transcode and i % 2 else Codec.PCMU  # A even, B odd
        streams.append(Stream(sock, codec, ssrc=0x10000 + i))
    return streams


async def drive(streams: list[Stream], seconds: float, pids: list[int], result: Run) -> None:
    loop = asyncio.get_running_loop()
    latencies: array[int] = array("q")
    for stream in streams:
        stream.phone = Phone(stream.codec, latencies)
        stream.transport, _ = await loop.create_datagram_endpoint(
            lambda p=stream.phone: p, sock=stream.sock
        )
    encoders = {codec: encode_table(codec) for codec in Codec}
    fillers = {codec: SILENCE[codec] * (PAYLOAD - STAMP) for codec in Codec}
    plan = [
        [
            (s.transport, s.codec.payload_type, s.ssrc, encoders[s.codec], fillers[s.codec])
            for s in streams[slot::SLOTS]
            if s.transport is not None
        ]
        for slot in range(SLOTS)
    ]

    def send(group: list[Any], n: int) -> None:
        seq, ts = n & 0xFFFF, (n * SAMPLES) & 0xFFFFFFFF
        for transport, pt, ssrc, encoder, filler in group:
            stamp = b"%016x" % time.monotonic_ns()
            transport.sendto(
                RTP_HEADER.pack(0x80, pt, seq, ts, ssrc) + stamp.translate(encoder) + filler
            )

    for group in plan:  # one packet per leg: our relay latches onto it
        send(group, 0)
    await asyncio.sleep(LATCH_WAIT)
    latencies = array("q")
    for stream in streams:
        if stream.phone is not None:
            stream.phone.reset()
            stream.phone.latencies = latencies

    ticks = max(1, round(seconds / PTIME))
    server_before, busy_before, own_before = cpu_seconds(pids), system_busy_seconds(), own_cpu()
    t0 = loop.time() + 0.01
    for n in range(1, ticks + 1):
        for slot, group in enumerate(plan):
            due = t0 + (n - 1) * PTIME + slot * PTIME / SLOTS
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)  # frame n leaves at t0 + n * 20 ms (STYLE §2.8)
            send(group, n)
    window = loop.time() - t0
    planned = (ticks - 1) * PTIME + (SLOTS - 1) * PTIME / SLOTS
    server_used, own_used = cpu_seconds(pids) - server_before, own_cpu() - own_before
    busy = system_busy_seconds() - busy_before
    await asyncio.sleep(DRAIN)

    phones = [s.phone for s in streams if s.phone is not None]
    result.sent = ticks * len(streams)
    result.received = sum(p.received for p in phones)
    result.wrong_pt = sum(p.wrong_pt for p in phones)
    result.undecodable = sum(p.undecodable for p in phones)
    result.late_s = round(max(0.0, window - planned), 3)
    result.server_cpu = round(100 * server_used / window, 1)
    result.generator_cpu = round(100 * own_used / window, 1)
    result.other_cpu = round(100 * max(0.0, busy - server_used - own_used) / window, 1)
    if len(latencies):
        values = np.frombuffer(latencies, dtype=np.int64)
        result.too_late = int(np.count_nonzero(values > TOO_LATE * 1e9))
        p50, p99 = np.percentile(values, [50, 99]) / 1e6
        result.p50_ms, result.p99_ms = round(float(p50), 3), round(float(p99), 3)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
