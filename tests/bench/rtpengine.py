"""rtpengine as a bench reference: bencode, an ng-protocol client, the daemon as a child.

The ng control protocol (rtpengine's docs, "ng Control Protocol") is one UDP datagram per
request: a cookie, a space, a bencoded dictionary; the reply repeats the cookie. rtpengine
caches replies by cookie, so a request resent with the same cookie is answered again, not
executed twice. Bencoding (BitTorrent BEP 3): integers `i42e`, byte strings `4:spam`, lists
`l...e`, dictionaries `d...e` with keys as byte strings in sorted order.

The daemon runs in userspace (`--table=-1`: no kernel forwarding), in the foreground, on
127.0.0.1, with its own port range and no config file; it is stopped by its PID.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import LOCALHOST, Child, free_port

RTPENGINE = "/usr/bin/rtpengine"
READY_TIMEOUT = 10.0  # s from spawn until the daemon answers an ng ping
REQUEST_TIMEOUT = 0.5  # s before an ng request is resent (same cookie)
REQUEST_ATTEMPTS = 6
MEDIA_PORT = re.compile(rb"^m=audio (\d+) ", re.MULTILINE)

Bencodable = int | bytes | str | list[Any] | dict[str, Any]


class NgError(RuntimeError):
    """rtpengine refused a request, answered nonsense or did not answer."""


def bencode(value: Bencodable) -> bytes:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode(), v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """The value bencoded in `data`; byte strings come back as bytes, dict keys as str."""
    value, end = _bdecode(data, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the bencoded value")
    return value


def _bdecode(data: bytes, i: int) -> tuple[Any, int]:
    head = data[i : i + 1]
    if head == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if head == b"l":
        items, i = [], i + 1
        while data[i : i + 1] != b"e":
            item, i = _bdecode(data, i)
            items.append(item)
        return items, i + 1
    if head == b"d":
        entries, i = {}, i + 1
        while data[i : i + 1] != b"e":
            key, i = _bdecode(data, i)
            entries[key.decode()], i = _bdecode(data, i)
        return entries, i + 1
    if head.isdigit():
        colon = data.index(b":", i)
        start = colon + 1
        end = start + int(data[i:colon])
        if end > len(data):
            raise ValueError("byte string runs past the end")
        return data[start:end], end
    raise ValueError(f"not bencode at offset {i}: {head!r}")


class NgClient:
    """Blocking ng requests over UDP; one outstanding request at a time (bench set-up only)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.sock.settimeout(REQUEST_TIMEOUT)
        self._cookies = itertools.count(1)
        self._prefix = f"bench{os.getpid()}_"

    def close(self) -> None:
        self.sock.close()

    def request(self, command: dict[str, Any], attempts: int = REQUEST_ATTEMPTS) -> dict[str, Any]:
        cookie = f"{self._prefix}{next(self._cookies)}".encode()
        datagram = cookie + b" " + bencode(command)
        for _ in range(attempts):
            self.sock.sendto(datagram, self.address)
            deadline = time.monotonic() + REQUEST_TIMEOUT
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                try:
                    reply = self.sock.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    break  # not up yet (ICMP port unreachable) or no answer: resend
                got, _, body = reply.partition(b" ")
                if got != cookie:
                    continue  # the late answer to an earlier attempt of an earlier request
                try:
                    answer = bdecode(body)
                except (ValueError, IndexError) as exc:
                    raise NgError(f"ng answer is not bencode ({exc}): {body[:200]!r}") from exc
                if not isinstance(answer, dict):
                    raise NgError(f"ng answer is not a dictionary: {body[:200]!r}")
                result = answer.get("result", b"")
                if result not in (b"ok", b"pong"):
                    reason = answer.get("error-reason", b"").decode(errors="replace")
                    raise NgError(f"{command.get('command')}: {result!r} {reason}")
                return answer
        raise NgError(f"no ng answer from {self.address} to {command.get('command')!r}")

    def ping(self, attempts: int = 1) -> bool:
        try:
            return self.request({"command": "ping"}, attempts).get("result") == b"pong"
        except NgError:
            return False


def media_port(sdp: bytes) -> int:
    """The port of the first m=audio line of an SDP body rtpengine wrote."""
    match = MEDIA_PORT.search(sdp)
    if match is None:
        raise NgError(f"no m=audio line in rtpengine's SDP: {sdp[:300]!r}")
    return int(match.group(1))


def g711_sdp(session: int, port: int, payload_type: int) -> str:
    """A minimal RFC 8866 audio offer/answer: one G.711 payload type, 20 ms, on 127.0.0.1."""
    name = {0: "PCMU", 8: "PCMA"}[payload_type]
    return (
        "v=0\r\n"
        f"o=- {session} 1 IN IP4 {LOCALHOST}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {LOCALHOST}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP {payload_type}\r\n"
        f"a=rtpmap:{payload_type} {name}/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


@dataclass(frozen=True, slots=True)
class NgCall:
    call_id: str
    from_tag: str
    to_tag: str
    a_sends_to: int  # rtpengine's port for the caller's media (from the answer's SDP)
    b_sends_to: int  # rtpengine's port for the callee's media (from the offer's SDP)


def set_up_call(
    ng: NgClient, index: int, a_port: int, b_port: int, transcode: bool, tag: str
) -> NgCall:
    """offer (caller A, PCMU) then answer (callee B, PCMU or PCMA): rtpengine anchors both.

    For transcoding, the offer asks rtpengine to add PCMA towards B (`codec` `transcode`)
    and to strip PCMU from what B sees (`mask`), so B can only answer PCMA while A keeps
    PCMU: rtpengine then decodes and re-encodes every packet (its "codec-transcode" and
    "codec-mask" flags, in their dictionary form).
    """
    call_id = f"{tag}-{index}"
    from_tag, to_tag = f"a{index}", f"b{index}"
    offer: dict[str, Any] = {
        "command": "offer",
        "call-id": call_id,
        "from-tag": from_tag,
        "sdp": g711_sdp(2 * index + 1, a_port, 0),
        "replace": ["origin", "session-connection"],
        "ICE": "remove",
    }
    if transcode:
        offer["codec"] = {"transcode": ["PCMA"], "mask": ["PCMU"]}
    to_b = ng.request(offer)
    b_sends_to = media_port(to_b["sdp"])
    if transcode and b"RTP/AVP 8" not in to_b["sdp"]:
        raise NgError(f"rtpengine did not offer PCMA alone to B: {to_b['sdp']!r}")
    answer = {
        "command": "answer",
        "call-id": call_id,
        "from-tag": from_tag,
        "to-tag": to_tag,
        "sdp": g711_sdp(2 * index + 2, b_port, 8 if transcode else 0),
        "replace": ["origin", "session-connection"],
        "ICE": "remove",
    }
    to_a = ng.request(answer)
    if b"RTP/AVP 0" not in to_a["sdp"]:
        raise NgError(f"rtpengine did not answer PCMU to A: {to_a['sdp']!r}")
    return NgCall(call_id, from_tag, to_tag, media_port(to_a["sdp"]), b_sends_to)


def delete_call(ng: NgClient, call: NgCall) -> None:
    ng.request({"command": "delete", "call-id": call.call_id, "from-tag": call.from_tag})


class Rtpengine:
    """`rtpengine` in the foreground, userspace only, logging to `rundir/rtpengine.log`."""

    def __init__(
        self, rundir: Path, port_min: int, port_max: int, threads: int | None = None
    ) -> None:
        if not os.access(RTPENGINE, os.X_OK):
            raise NgError(f"{RTPENGINE} is missing: tests/tools/ensure-debs.sh rtpengine-daemon")
        rundir.mkdir(parents=True, exist_ok=True)
        self.ng_port = free_port()
        self.port_min = port_min
        self.port_max = port_max
        argv = [
            RTPENGINE,
            "--config-file=none",  # not /etc/rtpengine/rtpengine.conf (kernel table 0)
            "--foreground",
            "--log-stderr",
            "--log-level=5",  # notices: one line per call, not per packet
            "--table=-1",  # no kernel forwarding: every packet goes through userspace
            f"--interface={LOCALHOST}",
            f"--listen-ng={LOCALHOST}:{self.ng_port}",
            f"--port-min={port_min}",
            f"--port-max={port_max}",
            "--delete-delay=0",  # free a call's ports at "delete", not 30 s later
            f"--pidfile={rundir / 'rtpengine.pid'}",
        ]
        if threads is not None:  # default: one worker thread per CPU of the machine
            argv.append(f"--num-threads={threads}")
        self.child = Child("rtpengine", argv, rundir / "rtpengine.log", cwd=rundir)
        self.ng = NgClient((LOCALHOST, self.ng_port))
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ng.ping():
            if self.child.process.poll() is not None or time.monotonic() > deadline:
                code = self.stop()
                raise NgError(
                    f"rtpengine did not answer ng ping (exit {code}):\n{self.child.tail()}"
                )

    @property
    def pid(self) -> int:
        return self.child.pid

    @staticmethod
    def version() -> str:
        """The package version `rtpengine --version` prints ("Version: 10.5.3.5-1+deb12u1")."""
        done = subprocess.run(
            [RTPENGINE, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        match = re.search(r"Version:\s*(\S+)", done.stdout + done.stderr)
        return match.group(1) if match else "?"

    def stop(self) -> int:
        self.ng.close()
        return self.child.stop()
