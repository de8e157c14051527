"""Stand-alone media relay bench: N relayed calls, 2N G.711 streams of 50 pps, 172 bytes.

The relay runs in a child process on uvloop; this process generates and receives the
streams (uvloop too), stamping CLOCK_MONOTONIC nanoseconds in each payload to measure
the latency the relay adds. Not wired into ``make bench``; nothing is asserted.

    .venv/bin/python tests/bench/rtp_relay_bench.py --calls 100 200 400 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import socket
import struct
import sys
import time
from multiprocessing.connection import Connection

import uvloop

from appliance.dsp.g711 import Codec
from appliance.media.ports import PortPool
from appliance.media.relay import MediaRelay, RelayLeg, RtpEndpoint

HOST = "127.0.0.1"
HEADER = struct.Struct("!BBHIIQ")  # RTP header + send time in ns at the payload start


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def relay_main(calls: int, transcode: bool, conn: Connection) -> None:
    async def main() -> None:
        pool = PortPool(30000, 30000 + 4 * calls + 200)
        relays = []
        for _ in range(calls):
            a = RelayLeg(await RtpEndpoint.open(pool, HOST), Codec.PCMU, None)
            codec_b = Codec.PCMA if transcode else Codec.PCMU
            b = RelayLeg(await RtpEndpoint.open(pool, HOST), codec_b, None)
            relays.append(MediaRelay(a, b))
        conn.send([(r.a.endpoint.port, r.b.endpoint.port) for r in relays])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "start" from the generator
        started, wall = cpu(), time.monotonic()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        conn.send((cpu() - started) / (time.monotonic() - wall))
        for r in relays:
            r.close()

    uvloop.run(main())


class Phone(asyncio.DatagramProtocol):
    def __init__(self, sink: list[int]) -> None:
        self.sink = sink
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        self.sink.append(time.monotonic_ns() - HEADER.unpack_from(data)[5])


async def generate(ports: list[tuple[int, int]], seconds: float, conn: Connection) -> str:
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    streams = []
    for port_a, port_b in ports:
        for port in (port_a, port_b):
            transport, proto = await loop.create_datagram_endpoint(
                lambda: Phone(latencies), local_addr=(HOST, 0), remote_addr=(HOST, port)
            )
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            streams.append((transport, proto))
    # latch every leg with one packet, then start counting
    for transport, _ in streams:
        transport.sendto(HEADER.pack(0x80, 0, 0, 0, 1, time.monotonic_ns()) + bytes(148))
    await asyncio.sleep(0.5)
    latencies.clear()
    for _, proto in streams:
        proto.received = 0
    conn.send("start")
    t0 = loop.time()
    ticks = int(seconds * 50)
    for n in range(1, ticks + 1):
        now_ns = time.monotonic_ns()
        for i, (transport, _) in enumerate(streams):
            transport.sendto(HEADER.pack(0x80, 0, n, n * 160, i, now_ns) + bytes(148))
        await asyncio.sleep(max(0.0, t0 + n * 0.020 - loop.time()))
    await asyncio.sleep(0.3)  # let the last packets drain
    conn.send("stop")
    relay_cpu = await loop.run_in_executor(None, conn.recv)
    sent = ticks * len(streams)
    received = sum(p.received for _, p in streams)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] / 1e6 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] / 1e6 if latencies else float("nan")
    for transport, _ in streams:
        transport.close()
    loss = 100 * (1 - received / sent)
    return (
        f"{len(ports):5d} calls {len(streams):5d} streams  loss {loss:6.3f} %  "
        f"relay CPU {100 * relay_cpu:5.1f} %  latency p50 {p50:.2f} ms p99 {p99:.2f} ms\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 200, 400, 600])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--transcode", action="store_true", help="PCMU on A, PCMA on B")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    for calls in args.calls:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=relay_main, args=(calls, args.transcode, child))
        proc.start()
        ports = parent.recv()
        sys.stdout.write(uvloop.run(generate(ports, args.seconds, parent)))
        sys.stdout.flush()
        proc.join(10)


if __name__ == "__main__":
    main()
