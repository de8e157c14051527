"""The live state as Server-Sent Events (`/events`), and the small script that shows it.

A stream sends a `snapshot` event at once, then looks at the PBX every `interval`
and sends another when what the principal sees has changed, with a comment line as
keep-alive in between (WHATWG HTML §9.2, "Server-sent events"). Each stream holds one
of cheroot's threads for its whole life, so streams are bounded three ways: at most
`max_streams` at once (503 beyond), at most `lifetime` seconds each (EventSource
reconnects by itself after `retry` ms), and they end when the client goes (cheroot
raises when writing to a closed socket) or the server stops.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import bottle

from appliance.web.auth import Principal, current
from appliance.web.registry import PUBLIC, SIGNED_IN, Registry
from appliance.web.services import WebServices

EVENTS_PATH: Final = "/events"
SCRIPT_PATH: Final = "/static/live.js"
EVENT_STREAM: Final = "text/event-stream"
KEEPALIVE: Final = b": keep-alive\n\n"

Look = Callable[[Principal], dict[str, object]]


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    interval: float = 2.0  # s between two looks at the PBX
    keepalive: float = 10.0  # s of silence before a comment line; also how soon a gone
    # client is noticed, since only a write finds out
    lifetime: float = 300.0  # s, then the stream ends and the browser reconnects
    max_streams: int = 4  # cheroot serves 8 requests at once: leave it room for pages
    retry_ms: int = 2000  # EventSource's reconnection delay after a stream ends
    idle_retry_ms: int = 60_000  # the same with no PBX to watch (nothing will change)


class StreamSlots:
    """How many streams are open; shared by cheroot's threads."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        with self._lock:
            return self._open

    def take(self) -> bool:
        with self._lock:
            if self._open >= self._limit:
                return False
            self._open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._open -= 1


def event(name: str, data: dict[str, object]) -> bytes:
    # json.dumps writes no raw newline, so the data fits on one `data:` line.
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def change_key(data: dict[str, object]) -> str:
    """What must differ for a new event: everything but the snapshot's own time, with
    each registration's countdown taken as the instant it expires (else the countdown
    alone would send an event every look for as long as a phone stays registered)."""
    taken = data.get("taken_at")
    stable = {k: v for k, v in data.items() if k != "taken_at"}
    registrations = data.get("registrations")
    if isinstance(taken, int | float) and isinstance(registrations, list):
        stable["registrations"] = [
            {**r, "expires_in": round(taken + r["expires_in"])} for r in registrations
        ]
    return json.dumps(stable, sort_keys=True)


def _events(
    look: Callable[[], dict[str, object]],
    policy: StreamPolicy,
    clock: Callable[[], float],
    wait: Callable[[float], None],
    stopping: Callable[[], bool],
    once: bool,
) -> Iterator[bytes]:
    first = look()
    retry = policy.idle_retry_ms if once else policy.retry_ms
    yield f"retry: {retry}\n".encode() + event("snapshot", first)
    if once:
        return
    started = last_write = clock()
    last_key = change_key(first)
    while True:
        wait(policy.interval)
        now = clock()
        if stopping() or now - started >= policy.lifetime:
            return
        data = look()
        key = change_key(data)
        if key != last_key:
            last_key, last_write = key, now
            yield event("snapshot", data)
        elif now - last_write >= policy.keepalive:
            last_write = now
            yield KEEPALIVE


class EventStream:
    """The response body: the events, and the stream's slot given back exactly once,
    whether the body runs out, fails, or is closed by the server when the client goes."""

    def __init__(self, events: Iterator[bytes], slots: StreamSlots) -> None:
        self._events = events
        self._slots: StreamSlots | None = slots

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._events)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._events.close()  # type: ignore[attr-defined]  # a generator
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.give_back()


def register_events(
    reg: Registry,
    services: WebServices,
    look: Look,
    *,
    policy: StreamPolicy | None = None,
    wait: Callable[[float], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> None:
    """`look` gives a principal's view of the live state; `wait` sleeps between looks
    (time.sleep: the LiveSource has no change notice to wait on)."""
    rules = policy or StreamPolicy()
    pause = wait or time.sleep
    slots = StreamSlots(rules.max_streams)
    ended = stopping or services.stopping.is_set

    @reg.add(
        "GET",
        EVENTS_PATH,
        SIGNED_IN,
        "Registrations, calls and analog ports as Server-Sent Events (snapshot events)",
    )
    def events() -> EventStream:
        principal = current()
        if not slots.take():
            raise bottle.HTTPError(
                503,
                f"at most {rules.max_streams} live views at once: try again shortly",
                headers={"Retry-After": "30"},
            )
        bottle.response.content_type = EVENT_STREAM
        once = services.live is None
        stream = _events(lambda: look(principal), rules, services.clock, pause, ended, once)
        return EventStream(stream, slots)

    @reg.add("GET", SCRIPT_PATH, PUBLIC, "Live updates of the dashboard (script)")
    def script() -> str:
        bottle.response.content_type = "text/javascript; charset=utf-8"
        bottle.response.set_header("Cache-Control", "max-age=3600")
        return LIVE_SCRIPT


# Kept here, not in a .js file, so it ships in the wheel without package-data rules
# (as templates.py does). It builds rows with textContent only: no markup from data.
LIVE_SCRIPT: Final = """\
// Keeps the live tables of the page current from /events (Server-Sent Events).
// The page is complete without this script; it only replaces rows as events come.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (!live || typeof EventSource === "undefined") { return; }
  var url = live.getAttribute("data-events");

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function duration(seconds) {
    var whole = Math.max(0, Math.floor(seconds));
    var h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60);
    return h ? h + ":" + pad(m) + ":" + pad(whole % 60) : m + ":" + pad(whole % 60);
  }
  function when(unix) {
    return new Date(unix * 1000).toISOString().slice(0, 19).replace("T", " ");
  }
  function fill(id, rows, columns, empty) {
    var old = document.getElementById(id);
    if (!old) { return; }
    var body = document.createElement("tbody");
    body.id = id;
    if (!rows || rows.length === 0) {
      var cell = body.insertRow().insertCell();
      cell.colSpan = columns;
      cell.textContent = rows ? empty : "Not available.";
    } else {
      rows.forEach(function (cells) {
        var row = body.insertRow();
        cells.forEach(function (value) {
          row.insertCell().textContent = value === null ? "" : String(value);
        });
      });
    }
    old.parentNode.replaceChild(body, old);
  }
  function list(items, available, cells) {
    return available && items ? items.map(cells) : null;
  }
  function render(d) {
    var status = document.getElementById("live-status");
    if (status) {
      status.textContent = d.available ? "As of " + when(d.taken_at) + " UTC."
        : "Live state not available: " + d.reason + ".";
    }
    fill("live-registrations", list(d.registrations, d.available, function (r) {
      return [r.aor, r.contact, r.source, r.user_agent, duration(r.expires_in)];
    }), 5, "No phone is registered.");
    fill("live-calls", list(d.calls, d.available, function (c) {
      var caller = c.caller_name ? c.caller_name + " <" + c.caller + ">" : c.caller;
      return [c.number, caller + (c.external ? " (outside)" : ""), c.callee, c.state,
        duration(c.duration_s), c.talking_s === null ? "" : duration(c.talking_s), c.codec];
    }), 7, "No call in progress.");
    fill("live-ports", list(d.ports, d.available, function (p) {
      return [p.port, p.type.toUpperCase(), p.label, p.role, p.state,
        p.registered === null ? "" : (p.registered ? "yes" : "no")];
    }), 6, "No analog ports are running.");
    var controller = document.getElementById("live-controller");
    if (controller) {
      controller.textContent = !d.available ? "Line controller: not known."
        : d.line_controller_up === null ? "Line controller: not running (no analog ports)."
        : d.line_controller_up ? "Line controller: up."
        : "Line controller: DOWN (no answer from the board).";
    }
  }
  function connect() {
    var source = new EventSource(url);
    source.addEventListener("snapshot", function (e) { render(JSON.parse(e.data)); });
    source.onerror = function () {
      // Refused (503: too many live views, or signed out): EventSource gives up for
      // good, so try again later; a stream that just ended reconnects by itself.
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 30000); }
    };
  }
  connect();
})();
"""
