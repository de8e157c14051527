"""SIP over IPv6 loopback (RFC 5118): UDP and TCP listeners on [::1], answers routed back."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import YakyakServer

pytestmark = pytest.mark.e2e


def free_port6() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
        udp.bind(("::1", 0))
        port = int(udp.getsockname()[1])
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
        tcp.bind(("::1", port))  # raises if TCP is taken: the test then fails loudly
    return port


def options(local_port: int, transport: str) -> bytes:
    return (
        f"OPTIONS sip:[::1] SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} [::1]:{local_port};branch=z9hG4bK6v6{transport};rport\r\n"
        f"From: <sip:e2e@[::1]>;tag=6\r\nTo: <sip:[::1]>\r\nCall-ID: v6-{transport}\r\n"
        f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_options_over_ipv6_udp_and_tcp(yakyak_servers: Callable[..., YakyakServer]) -> None:
    port = free_port6()
    server = yakyak_servers(extra=["--sip", f"[::1]:{port}"])  # SIP on [::1] only
    assert f"udp:[::1]:{port}" in server.log()
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
        udp.bind(("::1", 0))
        udp.settimeout(3)
        udp.sendto(options(udp.getsockname()[1], "UDP"), ("::1", port))
        answer = udp.recv(4096).decode()
    assert answer.startswith("SIP/2.0 200 OK\r\n"), answer
    assert ";rport;" not in answer and ";rport\r" not in answer  # rport got its value
    with socket.create_connection(("::1", port), timeout=3) as tcp:
        tcp.sendall(options(tcp.getsockname()[1], "TCP"))
        answer = tcp.recv(4096).decode()
    assert answer.startswith("SIP/2.0 200 OK\r\n"), answer
    assert "Call-ID: v6-TCP" in answer
