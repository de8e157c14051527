"""A baresip 1.0.0 desk phone for end-to-end call tests, driven over its ctrl_tcp module.

`BaresipPhone` writes a private config dir, runs `baresip -f DIR` on 127.0.0.1 (SIP on a
free port, UDP and TCP), sends commands and reads events over ctrl_tcp, and leaves what
it sent and heard in WAV files. `Phones` starts several under one directory, lets a test
wait on all of them at once, and stops them all by PID. Test modules import this file
(not conftest) and wrap `Phones` in their own fixture.

What baresip 1.0.0 (Debian bookworm's package) does, found by experiment and its source:

ctrl_tcp protocol
  * One TCP client at a time on `ctrl_tcp_listen`. Every message either way is a netstring,
    `LEN:JSON,` (LEN in decimal bytes, no leading zeros).
  * Command: `{"command": "dial", "params": "sip:b@127.0.0.1:5062", "token": "t1"}`.
    ctrl_tcp joins command and params with a space and runs the result as a long menu
    command (the `/name` that `/help` lists, without the slash). That line goes through
    a 256-byte buffer: anything past 255 characters is cut off silently, so `command()`
    refuses longer ones.
  * Response: `{"response": true, "ok": bool, "data": "text menu printed", "token": "t1"}`;
    a failed command has ok false and data like "Invalid argument" or
    "command not found (x)".
  * Event: `{"event": true, "class": "call", "type": "CALL_ESTABLISHED", "accountaor":
    ..., "direction": "incoming"|"outgoing", "peeruri": ..., "id": CALL-ID, "param": ...}`
    (CALL_RTCP adds "rtcp_stats"). Types seen: REGISTERING, REGISTER_OK, REGISTER_FAIL,
    CALL_INCOMING, CALL_RINGING, CALL_LOCAL_SDP / CALL_REMOTE_SDP (param offer|answer,
    class "other"), CALL_ESTABLISHED, CALL_RTPESTAB, CALL_RTCP, CALL_DTMF_START (param:
    the digit), CALL_DTMF_END, AUDIO_ERROR, CALL_CLOSED (param: reason, e.g. "Connection
    reset by peer" or the final SIP status "486 Busy Here"), SHUTDOWN, EXIT.
  * Events go only to a connected client and are not queued, so a REGISTER_OK can be sent
    before anyone listens. Accounts are therefore not put in an `accounts` file (that
    needs `module_tmp account.so` anyway); the phone connects first, then creates its
    account with `uanew <sip:...>;...`, and only then does baresip register.

Commands used (menu.so must be loaded: it owns them)
  dial URI, accept (answer the incoming call), hangup, uanew ACCOUNT-LINE, reginfo, and,
  only while a call exists (menu registers them per call; before that they are "command
  not found"): hold, resume, sndcode DIGITS (RFC 4733 telephone-event, several digits in
  one command), audio_debug. One-key commands ('a', '0'-'9') cannot be sent over ctrl_tcp.

Registration
  * libre's digest client in 1.0.0 gives up on a 401 ("Register: Function not
    implemented", REGISTER_FAIL) as soon as any WWW-Authenticate header names an
    algorithm other than MD5, even when an MD5 one is also offered. Against a server
    offering MD5, SHA-256 and SHA-512-256 the phone's extension must be challenged with
    MD5 only (`yakyak ext auth NUMBER --algorithms MD5`).

Audio
  * 1.0.0 has no file player: `aufile` is a source only (its player came later). What a
    phone hears is recorded by the `sndfile` audio filter, which dumps both directions of
    every call to `snd_path/dump-YYYY-MM-DD-HH-MM-SS-dec.wav` (heard, after the decoder)
    and `...-enc.wav` (sent, before the encoder): mono 16-bit at the codec's 8 kHz. The
    dec file is written from the RTP receive path, so no player clock is needed.
  * The player and the alert player are `aubridge` devices with no source on them, so no
    sound device is opened and aubridge never starts its thread (no ALSA, no pulse).
  * `aufile` wants a mono S16LE WAV at 8 kHz, loads it whole, and when it runs out the
    source reports "end of file" and menu hangs the call up: the WAV must outlast the call.
  * Codecs: only g711.so is loaded, so the SDP offers PCMU, PCMA and telephone-event/8000.
  * net_interface must be an address (127.0.0.1; "lo" fails): it makes SDP and Contact
    say 127.0.0.1. RTP sockets still bind 0.0.0.0, but only ever send to the SDP address.

Quirks that shape the tests
  * After any re-INVITE (hold or resume) 1.0.0 resets the receive side, and the decode
    filter chain is not rebuilt while the encode chain still exists (audio_debug then
    shows "rx pipeline: aubridge <--- PCMU"): the dec recording stops at the first
    re-INVITE for the rest of that call. After hold/resume, media is checked with RTP
    counters (`rtp_received()`, from audio_debug's RTCP "rcvd=") and DTMF instead.
  * Hold: the holder offers sendonly and then sends no RTP at all; the peer answers
    recvonly and sends none either. Resume offers sendrecv and both send again.
  * Dump names have one-second resolution: a second call within the same second as the
    last would overwrite its files, so tests use fresh phones per call.
  * SIGTERM stops baresip cleanly (it un-registers first).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

BARESIP: Final = "/usr/bin/baresip"
MODULE_PATH: Final = Path("/usr/lib/baresip/modules")
LOCALHOST: Final = "127.0.0.1"
START_TIMEOUT: Final = 10.0  # s, from spawn until ctrl_tcp accepts a connection
START_ATTEMPTS: Final = 3  # a probed free port may be taken before baresip binds it
STOP_TIMEOUT: Final = 5.0  # s, from SIGTERM to exit (it un-registers first), then SIGKILL
COMMAND_TIMEOUT: Final = 5.0  # s, for a ctrl_tcp response
EVENT_TIMEOUT: Final = 5.0  # s, default wait for an event
POLL_INTERVAL: Final = 0.05  # s, between looks at a file or a socket that cannot notify us
MAX_NETSTRING: Final = 1 << 20  # bytes: audio_debug answers are ~1 kB
MAX_COMMAND: Final = 255  # characters of "command params" ctrl_tcp 1.0.0 keeps
REGINT: Final = 600  # s, registration interval asked for (our Min-Expires is 60)
LOG_TAIL: Final = 6000  # characters of the log shown in a failure
CALL_EVENTS_SHOWN: Final = 30  # most recent events shown in a failure
SAMPLE_RATE: Final = 8000  # Hz, of the sndfile dumps (the G.711 rate)
RCVD = re.compile(r"\brcvd=(\d+)")
DIGITS = re.compile(r"\d+")


class PhoneError(AssertionError):
    """The phone did not do what the test waited for; the message has its events and log."""


class NetstringError(ValueError):
    pass


def encode_netstring(payload: bytes) -> bytes:
    return b"%d:%s," % (len(payload), payload)


class NetstringDecoder:
    """Splits a byte stream into netstring payloads; fed any chunking, returns whole ones."""

    def __init__(self, limit: int = MAX_NETSTRING) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        payloads: list[bytes] = []
        while True:
            colon = self._buffer.find(b":")
            if colon < 0:
                if len(self._buffer) > len(str(self._limit)):
                    raise NetstringError(f"no length prefix in {bytes(self._buffer[:20])!r}")
                return payloads
            head = bytes(self._buffer[:colon])
            if not head.isdigit() or (len(head) > 1 and head.startswith(b"0")):
                raise NetstringError(f"bad length prefix {head[:20]!r}")
            length = int(head)
            if length > self._limit:
                raise NetstringError(f"netstring of {length} bytes exceeds {self._limit}")
            end = colon + 1 + length
            if len(self._buffer) <= end:
                return payloads
            if self._buffer[end] != ord(","):
                raise NetstringError(f"netstring of {length} bytes not closed by ','")
            payloads.append(bytes(self._buffer[colon + 1 : end]))
            del self._buffer[: end + 1]


def _text(message: dict[str, object], key: str) -> str:
    value = message.get(key)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class Event:
    """One ctrl_tcp event (see the module docstring for the keys)."""

    type: str
    category: str  # the JSON "class": call, register, other, application
    param: str
    call_id: str
    peer: str
    direction: str
    account: str
    raw: dict[str, object] = field(compare=False, repr=False)

    @classmethod
    def from_message(cls, message: dict[str, object]) -> Event:
        return cls(
            type=_text(message, "type"),
            category=_text(message, "class"),
            param=_text(message, "param"),
            call_id=_text(message, "id"),
            peer=_text(message, "peeruri"),
            direction=_text(message, "direction"),
            account=_text(message, "accountaor"),
            raw=message,
        )

    def __str__(self) -> str:
        return f"{self.type}({self.param!r})" if self.param else self.type


@dataclass(frozen=True, slots=True)
class Response:
    ok: bool
    data: str
    token: str


@dataclass(frozen=True, slots=True)
class Registrar:
    """Where and how a phone registers: the PBX's SIP address and the extension's password."""

    host: str
    port: int
    password: str
    regint: int = REGINT


def free_port(host: str = LOCALHOST, attempts: int = 50) -> int:
    """A port free for both UDP and TCP on `host`: baresip's SIP listens on both."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host} after {attempts} tries")


def pcm_seconds(path: Path, rate: int = SAMPLE_RATE) -> float:
    """Seconds of 16-bit mono audio in a WAV file, also one still being written (its
    header sizes are filled in at close, so the data chunk's start is searched for)."""
    with path.open("rb") as f:
        head = f.read(256)
        size = f.seek(0, 2)
    data = head.find(b"data")
    if data < 0:
        return 0.0
    return max(0, size - (data + 8)) / 2 / rate


class BaresipPhone:
    """One baresip process acting as a desk phone, controlled over ctrl_tcp.

    `user` is the SIP user part; with a `registrar` the phone registers
    `sip:USER@HOST:PORT` there with digest password, otherwise it only takes direct
    calls at `uri`. `source` is the WAV it sends in every call. Use `start()` / `stop()`
    or a `with` block; `changed` lets several phones share one Condition (see `Phones`).
    """

    def __init__(
        self,
        name: str,
        home: Path,
        source: Path,
        *,
        user: str | None = None,
        registrar: Registrar | None = None,
        changed: threading.Condition | None = None,
        sip_trace: bool = True,
        apps: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.apps = tuple(apps)  # extra module_app lines, e.g. "mwi.so" (message waiting)
        self.home = home
        self.source = source
        self.user = user or name
        self.registrar = registrar
        self.sip_trace = sip_trace
        self.config_dir = home / "config"
        self.recordings_dir = home / "recordings"
        self.log_path = home / "baresip.log"
        self.sip_port = 0
        self.ctrl_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._changed = changed or threading.Condition()
        self._events: list[Event] = []
        self._taken: set[int] = set()
        self._responses: list[Response] = []
        self._closed_reason: str | None = None
        self._command_lock = threading.Lock()
        self._tokens = itertools.count(1)

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def uri(self) -> str:
        """Where this phone takes direct calls."""
        return f"sip:{self.user}@{LOCALHOST}:{self.sip_port}"

    @property
    def aor(self) -> str:
        if self.registrar:
            return f"sip:{self.user}@{self.registrar.host}:{self.registrar.port}"
        return self.uri

    def account_line(self) -> str:
        """The `uanew` argument, in the syntax of baresip's accounts file."""
        if self.registrar:
            r = self.registrar
            return (
                f"<sip:{self.user}@{r.host}:{r.port};transport=udp>"
                f";auth_pass={r.password};regint={r.regint}"
            )
        return f"<sip:{self.user}@{LOCALHOST}:{self.sip_port}>;regint=0"

    def config_text(self) -> str:
        play = f"aubridge,{self.name}-play"  # a device nobody reads: no sound card
        return "\n".join(
            [
                f"# written by tests/e2e/baresip_phone.py for phone {self.name}",
                "poll_method\tepoll",
                f"sip_listen\t{LOCALHOST}:{self.sip_port}",
                f"net_interface\t{LOCALHOST}",
                "call_local_timeout\t30",
                "call_max_calls\t4",
                f"audio_player\t{play}",
                f"audio_alert\taubridge,{self.name}-alert",
                f"audio_source\taufile,{self.source}",
                "audio_level\tno",
                "rtcp_mux\tno",
                "jitter_buffer_delay\t5-10",
                "rtp_stats\tno",
                f"module_path\t{MODULE_PATH}",
                "module\tg711.so",
                "module\taufile.so",
                "module\tsndfile.so",
                "module\taubridge.so",
                "module_app\tmenu.so",
                "module_app\tctrl_tcp.so",
                *(f"module_app\t{app}" for app in self.apps),
                f"ctrl_tcp_listen\t{LOCALHOST}:{self.ctrl_port}",
                f"snd_path\t{self.recordings_dir}",
                "statmode_default\toff",
                "",
            ]
        )

    def start(self) -> BaresipPhone:
        """Spawns baresip, connects to ctrl_tcp and creates the account (registering, if
        it has a registrar: wait for that with `wait_registered()`)."""
        if not shutil.which(BARESIP):
            raise PhoneError(f"{BARESIP} is missing: run `make test`, which installs baresip")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        sock = None
        for attempt in range(1, START_ATTEMPTS + 1):
            self.sip_port = free_port()
            self.ctrl_port = free_port()
            (self.config_dir / "config").write_text(self.config_text(), encoding="utf-8")
            self._spawn()
            sock = self._connect()
            if sock is not None:
                break
            self._reap()
            log = self.log()
            if "Address already in use" not in log or attempt == START_ATTEMPTS:
                raise PhoneError(
                    f"{self.name}: baresip did not accept ctrl_tcp on {self.ctrl_port} "
                    f"within {START_TIMEOUT} s (attempt {attempt}); log:\n{log[-LOG_TAIL:]}"
                )
        if sock is None:  # START_ATTEMPTS < 1
            raise PhoneError(f"{self.name}: not started")
        self._sock = sock
        self._reader = threading.Thread(
            target=self._read, args=(sock,), name=f"baresip-{self.name}", daemon=True
        )
        self._reader.start()
        self.command("uanew", self.account_line())
        return self

    def _spawn(self) -> None:
        command = [BARESIP, "-f", str(self.config_dir)]
        if self.sip_trace:
            command.append("-s")
        # stdbuf: baresip logs through stdio, fully buffered into a file otherwise, and a
        # failing test should see the log up to the moment it failed.
        stdbuf = shutil.which("stdbuf")
        if stdbuf:
            command = [stdbuf, "-oL", "-eL", *command]
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def _connect(self) -> socket.socket | None:
        """Connects to ctrl_tcp once it listens; None if baresip exits or time runs out.
        (Nothing announces the listening socket without -v, so this polls, bounded.)"""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return None
            try:
                return socket.create_connection((LOCALHOST, self.ctrl_port), timeout=1.0)
            except OSError:
                time.sleep(POLL_INTERVAL)
        return None

    def _reap(self) -> None:
        if self.process is not None:
            stop_process(self.process, STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by PID, SIGKILL after `timeout`; the exit code (None if never started)."""
        code = None
        if self.process is not None:
            code = stop_process(self.process, timeout)
        if self._sock is not None:
            self._sock.close()
        if self._reader is not None:
            self._reader.join(2.0)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def __enter__(self) -> BaresipPhone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # --- ctrl_tcp ------------------------------------------------------------------------

    def _read(self, sock: socket.socket) -> None:
        decoder = NetstringDecoder()
        reason = "ctrl_tcp closed by baresip"
        sock.settimeout(None)
        try:
            while data := sock.recv(65536):
                for payload in decoder.feed(data):
                    self._deliver(json.loads(payload.decode("utf-8", errors="replace")))
        except (OSError, ValueError) as exc:  # the one except where ctrl_tcp bytes enter
            reason = f"ctrl_tcp read failed: {exc!r}"
        with self._changed:
            self._closed_reason = reason
            self._changed.notify_all()

    def _deliver(self, message: object) -> None:
        if not isinstance(message, dict):
            raise ValueError(f"ctrl_tcp sent a non-object: {message!r}")
        with self._changed:
            if message.get("event") is True:
                self._events.append(Event.from_message(message))
            elif message.get("response") is True:
                self._responses.append(
                    Response(
                        ok=message.get("ok") is True,
                        data=_text(message, "data"),
                        token=_text(message, "token"),
                    )
                )
            self._changed.notify_all()

    def command(
        self, name: str, params: str | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> str:
        """Runs a menu command; returns what it printed, or raises PhoneError if it failed."""
        if self._sock is None:
            raise PhoneError(f"{self.name}: not started")
        line = f"{name} {params}" if params is not None else name
        if len(line) > MAX_COMMAND:
            raise ValueError(f"ctrl_tcp would cut this {len(line)}-character command: {line}")
        with self._command_lock:
            token = f"{self.name}-{next(self._tokens)}"
            message: dict[str, str] = {"command": name, "token": token}
            if params is not None:
                message["params"] = params
            self._sock.sendall(encode_netstring(json.dumps(message).encode()))
            with self._changed:
                self._changed.wait_for(
                    lambda: self._response(token) is not None or self._closed_reason is not None,
                    timeout,
                )
                response = self._response(token)
        if response is None:
            raise self._failure(f"no response to `{line}` within {timeout} s")
        if not response.ok:
            raise self._failure(f"`{line}` failed: {response.data.strip()}")
        return response.data

    def _response(self, token: str) -> Response | None:
        for response in self._responses:
            if response.token == token:
                return response
        return None

    # --- events --------------------------------------------------------------------------

    def events(self, kind: str | None = None) -> list[Event]:
        """Every event so far (or those of one type), taken by `wait_event` or not."""
        with self._changed:
            return [e for e in self._events if kind is None or e.type == kind]

    def has_event(self, kind: str) -> bool:
        with self._changed:
            return any(e.type == kind for e in self._events)

    def _untaken(self, kind: str) -> int | None:
        for i, event in enumerate(self._events):
            if i not in self._taken and event.type == kind:
                return i
        return None

    def wait_event(
        self,
        kind: str,
        timeout: float = EVENT_TIMEOUT,
        *,
        unless: Callable[[], str | None] | None = None,
    ) -> Event:
        """The oldest event of type `kind` not yet returned by this method, waiting up to
        `timeout` s. `unless` (checked whenever any phone sharing `changed` hears
        something) may name a reason to give up early, e.g. the caller's CALL_CLOSED."""
        abort: str | None = None

        def ready() -> bool:
            nonlocal abort
            abort = unless() if unless else None
            if abort is None and self._closed_reason is not None:
                abort = self._closed_reason
            return self._untaken(kind) is not None or abort is not None

        with self._changed:
            self._changed.wait_for(ready, timeout)
            index = self._untaken(kind)
            if index is not None:
                self._taken.add(index)
                return self._events[index]
        why = f"gave up: {abort}" if abort else f"none within {timeout} s"
        raise self._failure(f"waiting for {kind}: {why}")

    def wait_registered(self, timeout: float = EVENT_TIMEOUT) -> Event:
        """REGISTER_OK, or a PhoneError at REGISTER_FAIL (its param says why)."""

        def failed() -> str | None:
            fails = [e for e in self._events if e.type == "REGISTER_FAIL"]
            return f"REGISTER_FAIL {fails[0].param!r}" if fails else None

        return self.wait_event("REGISTER_OK", timeout, unless=failed)

    def closed_reason(self) -> str | None:
        """The param of this phone's first CALL_CLOSED, e.g. "501 Not Implemented"."""
        with self._changed:
            closed = [e for e in self._events if e.type == "CALL_CLOSED"]
        return f"{self.name} CALL_CLOSED {closed[0].param!r}" if closed else None

    def received_dtmf(self) -> str:
        """Digits received so far, in order, from CALL_DTMF_START events."""
        return "".join(e.param for e in self.events("CALL_DTMF_START"))

    def wait_dtmf(self, digits: str, timeout: float = EVENT_TIMEOUT) -> str:
        """Waits until `digits` were received in a row; returns all digits received (the
        caller asserts, so a failure shows what did arrive)."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    digits in "".join(e.param for e in self._events if e.type == "CALL_DTMF_START")
                ),
                timeout,
            )
        return self.received_dtmf()

    def _failure(self, what: str) -> PhoneError:
        with self._changed:
            recent = self._events[-CALL_EVENTS_SHOWN:]
            closed = self._closed_reason
        running = self.process is not None and self.process.poll() is None
        state = (
            "running" if running else f"exited {self.process.returncode if self.process else '-'}"
        )
        return PhoneError(
            f"phone {self.name} ({self.aor}, pid {self.pid}, {state}): {what}\n"
            f"events: {', '.join(map(str, recent)) or '(none)'}"
            + (f"\nctrl_tcp: {closed}" if closed else "")
            + f"\n--- {self.log_path} (last {LOG_TAIL} chars, repeats squeezed)\n"
            + squeeze_repeats(self.log())[-LOG_TAIL:]
        )

    # --- call control --------------------------------------------------------------------

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def answer(self) -> None:
        self.command("accept")

    def hangup(self) -> None:
        self.command("hangup")

    def hold(self) -> None:
        self.command("hold")

    def resume(self) -> None:
        self.command("resume")

    def send_dtmf(self, digits: str) -> None:
        """Sends `digits` as RFC 4733 telephone-events in the current call."""
        self.command("sndcode", digits)

    # --- media ---------------------------------------------------------------------------

    def recordings(self, direction: str = "dec") -> list[Path]:
        """sndfile dumps, oldest first: "dec" is what the phone heard, "enc" what it sent."""
        return sorted(self.recordings_dir.glob(f"dump-*-{direction}.wav"))

    def heard(self) -> Path:
        """The newest recording of what the phone heard (see the re-INVITE quirk above)."""
        found = self.recordings("dec")
        if not found:
            raise self._failure(f"no dump-*-dec.wav in {self.recordings_dir}")
        return found[-1]

    def sent(self) -> Path:
        found = self.recordings("enc")
        if not found:
            raise self._failure(f"no dump-*-enc.wav in {self.recordings_dir}")
        return found[-1]

    def wait_heard(self, seconds: float, timeout: float) -> float:
        """Waits until the newest heard recording holds `seconds` of audio; returns how
        much it holds. Polls the file (sndfile has no event for it), bounded by `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.recordings("dec")
            have = pcm_seconds(found[-1]) if found else 0.0
            if have >= seconds:
                return have
            if time.monotonic() >= deadline:
                raise self._failure(f"heard {have:.2f} s of audio, wanted {seconds} s")
            time.sleep(POLL_INTERVAL)

    def rtp_received(self) -> int:
        """RTP packets received in the current call, from audio_debug's RTCP members."""
        return sum(int(n) for n in RCVD.findall(self.command("audio_debug")))

    def wait_rtp(self, at_least: int, timeout: float) -> int:
        """Waits until `rtp_received()` reaches `at_least`; returns the last count.
        audio_debug is asked every 0.1 s: baresip has no event for packets."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.rtp_received()
            if count >= at_least or time.monotonic() >= deadline:
                return count
            time.sleep(2 * POLL_INTERVAL)


def squeeze_repeats(text: str, keep: int = 2) -> str:
    """Runs of more than 2 * `keep` lines that differ only in their numbers (baresip logs
    one line per dropped RTP packet) shortened to their first and last `keep` lines."""
    lines = text.splitlines()
    shape = [DIGITS.sub("#", line) for line in lines]
    out: list[str] = []
    start = 0
    while start < len(lines):
        end = start
        while end + 1 < len(lines) and shape[end + 1] == shape[start]:
            end += 1
        run = lines[start : end + 1]
        if len(run) > 2 * keep:
            out += [*run[:keep], f"[... {len(run) - 2 * keep} more like these ...]", *run[-keep:]]
        else:
            out += run
        start = end + 1
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM to this process's PID, wait, then SIGKILL; returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
            return -signal.SIGKILL
    return process.returncode


class Phones:
    """Phones under one directory sharing one Condition, all stopped at `close()`.

    In a fixture: `with Phones(tmp_path / "phones") as phones: yield phones`; then
    `phones.direct("a", wav)` or `phones.registered("101", wav, Registrar(...))`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.changed = threading.Condition()
        self._phones: list[BaresipPhone] = []

    def direct(self, user: str, source: Path) -> BaresipPhone:
        """A phone with no registration, reachable at its `uri`."""
        return self._start(BaresipPhone(user, self.root / user, source, changed=self.changed))

    def registered(
        self, user: str, source: Path, registrar: Registrar, apps: Sequence[str] = ()
    ) -> BaresipPhone:
        """A phone registering `user` at `registrar`; call `wait_registered()` on it."""
        phone = BaresipPhone(
            user, self.root / user, source, registrar=registrar, changed=self.changed, apps=apps
        )
        return self._start(phone)

    def _start(self, phone: BaresipPhone) -> BaresipPhone:
        self._phones.append(phone)
        return phone.start()

    def __iter__(self) -> Iterator[BaresipPhone]:
        return iter(self._phones)

    def close(self) -> dict[str, int | None]:
        """Stops every phone by PID, last started first; their exit codes by name."""
        return {phone.name: phone.stop() for phone in reversed(self._phones)}

    def __enter__(self) -> Phones:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Stops every phone; if nothing else failed, a phone that did not exit 0 on
        SIGTERM (baresip 1.0.0 does, even mid-call) is an error, with its log."""
        codes = self.close()
        bad = {name: code for name, code in codes.items() if code not in (0, None)}
        if bad and exc_type is None:
            phones = {phone.name: phone for phone in self._phones}
            raise PhoneError(
                "baresip exited non-zero on SIGTERM: "
                + "; ".join(
                    f"{name} ({code}):\n{squeeze_repeats(phones[name].log())[-LOG_TAIL:]}"
                    for name, code in bad.items()
                )
            )
