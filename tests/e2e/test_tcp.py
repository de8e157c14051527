"""SIP over TCP (RFC 3261 §18.3): sipp and sipsak as peers, and framing by Content-Length.

A framing error closes only that connection; a request split across segments, or two
requests in one segment, is framed correctly.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import RawSip, SippRunner, SipsakRunner, YakyakServer

    RawSipFactory = Callable[[YakyakServer], RawSip]

pytestmark = pytest.mark.e2e

FAST = 200.0  # calls/s: sipp paces calls over calls/rate s and exits after the last
ANSWER_TIMEOUT = 2.0  # s, for an answer on loopback
CLOSE_TIMEOUT = 5.0  # s, for the server to close a TCP connection it gave up on
ALL_ONE = {"101": 1, "102": 1, "103": 1}


def edit(data: bytes, old: bytes, new: bytes) -> bytes:
    if old not in data:
        raise ValueError(f"{old!r} not in the request")
    return data.replace(old, new, 1)


def test_three_extensions_register_over_tcp(yakyak_server: YakyakServer, sipp: SippRunner) -> None:
    result = sipp("register_auth.xml", yakyak_server, calls=3, rate=FAST, transport="t1")

    assert result.returncode == 0, result.describe()
    assert (result.successful, result.failed) == (3, 0), result.describe()
    assert result.messages.count("SIP/2.0 401 Unauthorized") == 3, result.describe()
    assert yakyak_server.wait_for_contacts(ALL_ONE) == ALL_ONE


def test_sipsak_options_over_tcp(yakyak_server: YakyakServer, sipsak: SipsakRunner) -> None:
    result = sipsak(yakyak_server, transport="tcp")

    assert result.returncode == 0, result.describe()
    assert "SIP/2.0 200 OK" in result.output, result.describe()
    assert "Via: SIP/2.0/TCP " in result.output, result.describe()


class TcpPeer:
    """One TCP connection to the server, reading whole responses off a byte buffer."""

    def __init__(self, server: YakyakServer, sip: RawSip) -> None:
        self.sock = socket.create_connection((server.host, server.port), ANSWER_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = int(self.sock.getsockname()[1])
        self._sip = sip
        self._buffer = b""

    def __enter__(self) -> TcpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def options(self) -> bytes:
        """An OPTIONS whose Via names this connection's TCP port."""
        request = self._sip.request("OPTIONS", "e2e", transport="TCP")
        return edit(request, f":{self._sip.port};".encode(), f":{self.port};".encode())

    def read_response(self, timeout: float = ANSWER_TIMEOUT) -> bytes:
        """The next whole response: its headers, then Content-Length bytes of body."""
        deadline = time.monotonic() + timeout
        while (length := frame_length(self._buffer)) is None or len(self._buffer) < length:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no whole response in {timeout} s: {self._buffer!r}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError(f"closed by the server after {self._buffer!r}")
            self._buffer += chunk
        frame, self._buffer = self._buffer[:length], self._buffer[length:]
        return frame

    def closed_by_server(self, timeout: float) -> bool:
        """True once the server closes the connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                if not self.sock.recv(65535):
                    return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False
        return False


def frame_length(data: bytes) -> int | None:
    """Length of the first message in `data`, once its header section is complete."""
    head, blank, _ = data.partition(b"\r\n\r\n")
    if not blank:
        return None
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(head) + 4


def call_id(message: bytes) -> bytes:
    return message.split(b"\r\nCall-ID: ", 1)[1].split(b"\r\n", 1)[0]


def assert_ok_to(request: bytes, answer: bytes) -> None:
    assert answer.startswith(b"SIP/2.0 200 OK\r\n"), answer
    assert call_id(answer) == call_id(request), answer


def test_tcp_framing_error_closes_only_that_connection(
    yakyak_server: YakyakServer, raw_sip: RawSipFactory
) -> None:
    sip = raw_sip(yakyak_server)
    with TcpPeer(yakyak_server, sip) as good, TcpPeer(yakyak_server, sip) as bad:
        request = good.options()
        good.sock.sendall(request)
        assert_ok_to(request, good.read_response())

        # No Content-Length: on a stream the end of this message cannot be found.
        bad.sock.sendall(b"GARBAGE / SIP/2.0\r\nX: y\r\n\r\nmore garbage\r\n\r\n")

        assert bad.closed_by_server(CLOSE_TIMEOUT)
        request = good.options()
        good.sock.sendall(request)
        assert_ok_to(request, good.read_response())
    with TcpPeer(yakyak_server, sip) as fresh:
        request = fresh.options()
        fresh.sock.sendall(request)
        assert_ok_to(request, fresh.read_response())


def test_tcp_request_split_across_segments(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory
) -> None:
    with TcpPeer(shared_yakyak_server, raw_sip(shared_yakyak_server)) as peer:
        request = peer.options()
        cuts = [0, 1, 8, 30, request.index(b"\r\n\r\n") + 1, len(request) - 1, len(request)]
        for start, end in zip(cuts, cuts[1:], strict=False):
            peer.sock.sendall(request[start:end])
            time.sleep(0.02)  # pacing, not polling: each piece leaves as its own segment

        assert_ok_to(request, peer.read_response())


def test_tcp_two_requests_in_one_segment(
    shared_yakyak_server: YakyakServer, raw_sip: RawSipFactory
) -> None:
    with TcpPeer(shared_yakyak_server, raw_sip(shared_yakyak_server)) as peer:
        first, second = peer.options(), peer.options()

        peer.sock.sendall(first + second)

        assert_ok_to(first, peer.read_response())
        assert_ok_to(second, peer.read_response())
