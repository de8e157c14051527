"""The asyncio SIP service over real loopback sockets, driven in-process."""

from __future__ import annotations

import asyncio
import random
import socket

from appliance.net.sip_service import IDLE_TIMEOUT, SipService
from appliance.pbx.auth import Authenticator
from appliance.pbx.guard import AuthGuard, GuardConfig
from appliance.pbx.registrar import Registrar, RegistrarConfig
from appliance.pbx.sip_front import SipFront
from appliance.sip.digest import NonceBook
from appliance.sip.transaction import TimerConfig, TransactionLayer

OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKsvc\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: svc\r\nCSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def service(loop: asyncio.AbstractEventLoop) -> SipService:
    secret = b"s" * 32
    auth = Authenticator("yakyak.local", {}, NonceBook(secret, 1, 300), secret)
    front = SipFront(
        TransactionLayer(TimerConfig(), random.Random(1)),
        auth,
        AuthGuard(GuardConfig()),
        Registrar(RegistrarConfig()),
        random.Random(2),
    )
    return SipService(loop, front, lambda _: None, lambda _: None)


def test_tcp_answer_then_idle_connection_closed() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        svc = service(loop)
        listener = await svc.listen("tcp", "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(OPTIONS)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert answer.startswith(b"SIP/2.0 200 OK\r\n")
        assert svc.close_idle(loop.time()) == 0
        assert svc.close_idle(loop.time() + IDLE_TIMEOUT + 1) == 1
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        writer.close()
        await svc.close()

    asyncio.run(scenario())


def test_udp_answer_and_garbage_survived() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        svc = service(loop)
        listener = await svc.listen("udp", "127.0.0.1", 0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.sendto(b"\x00garbage\r\n\r\n", ("127.0.0.1", listener.port))
        # rport: without it the answer would go to the Via port (9), as RFC 3261 says.
        udp_options = OPTIONS.replace(b"TCP 127.0.0.1:9;", b"UDP 127.0.0.1:9;rport;")
        sock.sendto(udp_options, ("127.0.0.1", listener.port))
        answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert answer.startswith(b"SIP/2.0 200 OK\r\n")
        sock.close()
        await svc.close()

    asyncio.run(scenario())
