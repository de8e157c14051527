"""What a bench scenario learns from the board under test: its web API's ``/api/live``.

``GET /api/live`` (appliance/web/dashboard.py) answers with the registrations, the
calls in progress and each analog port's machine state, for an API token sent as
``Authorization: Bearer ...`` (tokens are made on the web UI's API tokens page; the
token's account needs system:read to see ports and call:read to see every call).
``parse_live`` checks the document and turns it into the web UI's own view classes;
``LivePoller`` asks every ``interval`` on a thread of its own (HTTP blocks: STYLE
§2.10) and hands each answer to the event loop through ``deliver``.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from appliance.web.live import CallView, PortView
from hil.bench_config import BoardTarget

log = logging.getLogger(__name__)

LIVE_PATH: Final = "/api/live"
MAX_BODY: Final = 1 << 20  # bytes: a bench board's live state is a few kB
REQUEST_TIMEOUT_S: Final = 2.0


class LiveApiError(Exception):
    """The board's live state could not be had; the message says why."""


@dataclass(frozen=True, slots=True)
class LiveState:
    taken_at: float
    calls: tuple[CallView, ...]
    ports: dict[int, PortView]


def _int(item: dict[str, object], key: str, where: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LiveApiError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def _str(item: dict[str, object], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise LiveApiError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _opt_str(item: dict[str, object], key: str, where: str) -> str | None:
    return None if item.get(key) is None else _str(item, key, where)


def _opt_number(item: dict[str, object], key: str, where: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LiveApiError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _bool(item: dict[str, object], key: str, where: str, nullable: bool) -> bool | None:
    value = item.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise LiveApiError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _objects(document: dict[str, object], key: str, needs: str) -> list[dict[str, object]]:
    value = document.get(key)
    if value is None:
        raise LiveApiError(f"{key}: null (the token's account lacks {needs})")
    if not isinstance(value, list):
        raise LiveApiError(f"{key}: expected an array, got {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise LiveApiError(f"{key}[{i}]: expected an object, got {item!r}")
    return value


def parse_live(document: object) -> LiveState:
    """The checked state; ``LiveApiError`` naming the first thing wrong."""
    if not isinstance(document, dict):
        raise LiveApiError("the answer is not a JSON object")
    if document.get("available") is not True:
        raise LiveApiError(f"the PBX state is not available: {document.get('reason')}")
    ports: dict[int, PortView] = {}
    for i, p in enumerate(_objects(document, "ports", "system:read")):
        where = f"ports[{i}]"
        view = PortView(
            port=_int(p, "port", where),
            type=_str(p, "type", where),
            label=_str(p, "label", where),
            role=_str(p, "role", where),
            state=_str(p, "state", where),
            registered=_bool(p, "registered", where, nullable=True),
        )
        ports[view.port] = view
    calls: list[CallView] = []
    for i, c in enumerate(_objects(document, "calls", "call:read")):
        where = f"calls[{i}]"
        duration = _opt_number(c, "duration_s", where)
        external = _bool(c, "external", where, nullable=False)
        calls.append(
            CallView(
                number=_int(c, "number", where),
                caller=_str(c, "caller", where),
                caller_name=_opt_str(c, "caller_name", where),
                callee=_str(c, "callee", where),
                state=_str(c, "state", where),
                duration_s=0.0 if duration is None else duration,
                talking_s=_opt_number(c, "talking_s", where),
                codec=_opt_str(c, "codec", where),
                external=bool(external),
            )
        )
    taken = _opt_number(document, "taken_at", "")
    return LiveState(0.0 if taken is None else taken, tuple(calls), ports)


class LiveClient:
    """One ``GET /api/live`` per ``fetch()``, blocking (call it off the event loop)."""

    def __init__(self, board: BoardTarget) -> None:
        self._url = board.web_url + LIVE_PATH
        self._token = board.api_token
        self._context: ssl.SSLContext | None = None
        if board.web_url.startswith("https://"):
            self._context = ssl.create_default_context(cafile=board.ca_file)
            if not board.tls_verify:
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE

    def fetch(self) -> LiveState:
        request = urllib.request.Request(
            self._url,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=REQUEST_TIMEOUT_S, context=self._context
            ) as answer:
                body = answer.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            hint = " (is bench.toml's board.api_token valid?)" if exc.code == 401 else ""
            raise LiveApiError(f"{self._url}: HTTP {exc.code} {exc.reason}{hint}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise LiveApiError(f"{self._url}: {exc}") from exc
        if len(body) > MAX_BODY:
            raise LiveApiError(f"{self._url}: answer larger than {MAX_BODY} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise LiveApiError(f"{self._url}: not JSON: {exc}") from exc
        return parse_live(document)


class LivePoller:
    """Fetches on its own thread every ``interval`` s until stopped; each result (a
    ``LiveState`` or the ``LiveApiError``) goes to ``deliver``, which must be
    thread-safe (the rig passes ``loop.call_soon_threadsafe`` bound to its handler)."""

    def __init__(
        self,
        fetch: Callable[[], LiveState],
        deliver: Callable[[LiveState | LiveApiError], None],
        interval: float,
    ) -> None:
        self._fetch = fetch
        self._deliver = deliver
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(REQUEST_TIMEOUT_S + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result: LiveState | LiveApiError = self._fetch()
            except LiveApiError as exc:  # reported to the rig, which shows it on failure
                result = exc
            self._deliver(result)
            self._stop.wait(self._interval)  # the stop signal, not a sleep
