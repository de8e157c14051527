"""What the bench reads from /api/live: the web UI's own documents parse back into its
view classes; the client sends the token; mistakes are named."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from appliance.web.dashboard import Scope, live_dict
from appliance.web.live import CallView, LiveSnapshot, PortView, RegistrationView
from hil.bench_config import BoardTarget
from hil.live_api import LiveApiError, LiveClient, LivePoller, LiveState, parse_live

pytestmark = pytest.mark.timeout(20)

PORTS = (
    PortView(1, "fxs", "FXS 1", "extension 201", "talking", True),
    PortView(3, "fxo", "FXO 3", "line to 500", "idle", None),
)
CALLS = (
    CallView(7, "201", None, "101", "talking", 12.5, 10.0, "PCMU", False),
    CallView(8, "5551234", "ALICE", "500", "application", 3.0, None, None, True),
)
SNAPSHOT = LiveSnapshot(
    1_700_000_000.0,
    (RegistrationView("101", "sip:101@192.0.2.50", "udp:192.0.2.50:5062", "baresip", 500.0),),
    CALLS,
    PORTS,
    True,
)
EVERYTHING = Scope("all", "all", "all", None)


def document(scope: Scope = EVERYTHING) -> dict[str, Any]:
    """What the board's /api/live answers, made by the board's own code."""
    answer: dict[str, Any] = json.loads(json.dumps(live_dict(SNAPSHOT, None, scope)))
    return answer


def test_the_boards_own_document_parses_back() -> None:
    state = parse_live(document())
    assert state.ports == {1: PORTS[0], 3: PORTS[1]}
    assert state.calls == CALLS
    assert state.taken_at == 1_700_000_000.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(available=False, reason="the PBX did not answer in time"),
         "the PBX state is not available: the PBX did not answer in time"),
        (lambda d: d.update(ports=None), "ports: null (the token's account lacks system:read)"),
        (lambda d: d.update(calls=None), "calls: null (the token's account lacks call:read)"),
        (lambda d: d["ports"][0].update(state=3), "ports[0].state: expected a string, got 3"),
        (lambda d: d["ports"][1].update(port="3"), "ports[1].port: expected an integer, got '3'"),
        (lambda d: d["calls"][1].update(external="yes"),
         "calls[1].external: expected true or false, got 'yes'"),
        (lambda d: d["calls"][0].update(talking_s=True),
         "calls[0].talking_s: expected a number, got True"),
        (lambda d: d.update(calls=[1]), "calls[0]: expected an object, got 1"),
    ],
)  # fmt: skip
def test_a_wrong_document_is_named(change: Any, message: str) -> None:
    raw = document()
    change(raw)
    with pytest.raises(LiveApiError) as caught:
        parse_live(raw)
    assert str(caught.value) == message


def test_a_token_without_system_read_is_told_apart() -> None:
    own = Scope("own", "own", "none", "101")
    with pytest.raises(LiveApiError, match="lacks system:read"):
        parse_live(document(own))


class _Board(BaseHTTPRequestHandler):
    token = "secret-token"
    body = b""

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        if self.path != "/api/live":
            self.send_error(404)
        elif self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401, "invalid or revoked API token")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test says what went wrong


@pytest.fixture
def board() -> Iterator[str]:
    _Board.body = json.dumps(document()).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Board)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def target(url: str, token: str) -> BoardTarget:
    return BoardTarget("rpi4", "127.0.0.1", 5060, url, token, True, None, "US")


def test_the_client_sends_the_token_and_parses_the_answer(board: str) -> None:
    state = LiveClient(target(board, "secret-token")).fetch()
    assert state.ports[1].state == "talking"


def test_a_wrong_token_says_so(board: str) -> None:
    with pytest.raises(LiveApiError, match=r"HTTP 401 .*board\.api_token"):
        LiveClient(target(board, "stale")).fetch()


def test_no_board_there(board: str) -> None:
    url = board.rsplit(":", 1)[0] + ":9"  # the discard port: nothing listens
    with pytest.raises(LiveApiError, match="127.0.0.1:9/api/live"):
        LiveClient(target(url, "t")).fetch()


def test_not_json(board: str) -> None:
    _Board.body = b"<html>"
    with pytest.raises(LiveApiError, match="not JSON"):
        LiveClient(target(board, "secret-token")).fetch()


def test_the_poller_delivers_states_and_errors_until_stopped() -> None:
    answers: list[LiveState | LiveApiError] = [
        LiveApiError("board rebooting"),
        parse_live(document()),
    ]
    got: list[LiveState | LiveApiError] = []
    enough = threading.Event()

    def fetch() -> LiveState:
        answer = answers[min(len(got), 1)]
        if isinstance(answer, LiveApiError):
            raise answer
        return answer

    def deliver(result: LiveState | LiveApiError) -> None:
        got.append(result)
        if len(got) >= 3:
            enough.set()

    poller = LivePoller(fetch, deliver, interval=0.001)
    poller.start()
    assert enough.wait(5)
    poller.stop()
    count = len(got)
    assert isinstance(got[0], LiveApiError) and isinstance(got[1], LiveState)
    assert len(got) == count  # nothing after stop()
