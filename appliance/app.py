"""Composition root: builds the appliance from its configuration and runs it.

Start-up order: store, credentials and lockouts, registrar with the bindings that
survived the last run, SIP listeners, then `ready`. Shutdown runs in reverse and
commits every pending registration change before the database is closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import random
import resource
import secrets
import signal
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Final

import peewee
import uvloop

from appliance.analog_service import AnalogService, PortRole
from appliance.call_apps_edge import CallAppsEdge
from appliance.config import LAN_HOST, Config
from appliance.dsp.tones import TONE_PLANS
from appliance.hw.board_loader import load_board
from appliance.hw.board_spec import BoardError, BoardSpec, check_devices
from appliance.hw.front_panel import FrontPanel, PanelInputs
from appliance.hw.gpio import GpioError, open_lines
from appliance.lines.digit_collector import Completion, CompletionRule, dialplan_completion
from appliance.lines.signals import PortType
from appliance.media.engine import UdpMediaEngine
from appliance.media.ports import PortPool
from appliance.media.prompts import MusicOnHold, PromptLibrary
from appliance.net.email_notify import SmtpConfig
from appliance.net.routes import SourceAddresses
from appliance.net.sip_service import SipService
from appliance.pbx.auth import Account, Authenticator
from appliance.pbx.b2bua import B2bua, CallConfig, CallFinished
from appliance.pbx.dialplan import Dialplan
from appliance.pbx.guard import AuthGuard, GuardConfig, LockKind, Lockout
from appliance.pbx.media_port import LegQualityReport, MediaEvent
from appliance.pbx.mwi_notifier import MwiNotifier
from appliance.pbx.registrar import Registrar, RegistrarConfig, Remove, Upsert
from appliance.pbx.sip_front import Locked, Persist, SipFront
from appliance.sip.digest import NonceBook
from appliance.sip.digest_hash import ALGORITHMS, ha1
from appliance.sip.transaction import TimerConfig, TransactionLayer
from appliance.sip.transport import Peer
from appliance.store import lockouts as lockout_store
from appliance.store import registrations as registration_ops
from appliance.store.cdr import CdrRecord, CdrWriter, LegQuality
from appliance.store.db import open_database
from appliance.store.errors import StoreError
from appliance.store.extensions import Directory
from appliance.store.registrations import RegistrationWriter, load_active
from appliance.store.routes import build_dialplan
from appliance.store.settings import ANALOG_ROLES_KEY, COUNTRY_KEY, get_setting, set_setting
from appliance.system.admin_reset import reset_admin_password
from appliance.system.logs import setup_logging
from appliance.system.notify import Notifier, running_status
from appliance.system.restore import discard_previous_state
from appliance.web.live import CallView, LiveSnapshot, RegistrationView
from appliance.web.server import WebServer, start_web

log = logging.getLogger(__name__)

HOUSEKEEPING_PERIOD: Final = 1.0  # s: reload check, binding expiry, watchdog ping
STATUS_EVERY: Final = 5  # housekeeping rounds between systemd STATUS= summaries
# s: binding changes gather on the loop this long before the writer thread gets them;
# a power cut can lose at most this much (phones re-register), and the thread wakes
# a few times a second instead of once per REGISTER.
STORE_HANDOVER: Final = 0.2
GC_THRESHOLDS: Final = (10_000, 10, 20)
APP_DRAIN: Final = 10.0  # s: at stop, for messages being recorded to reach the store
NONCE_SECRET_KEY: Final = "auth.nonce_secret"
# The analog gateway's FXO lines call in as this account; its password is made afresh
# at every start and never leaves the process. Not a dialable number, so no extension
# can clash with it.
TRUNK_ACCOUNT: Final = "analog-trunk"
REVISION_KEY: Final = "revision.directory"


class Appliance:
    """Everything `yakyak serve` runs, built from one Config (no globals)."""

    def __init__(
        self, config: Config, loop: asyncio.AbstractEventLoop, board: BoardSpec | None = None
    ) -> None:
        self.config = config
        self.loop = loop
        self.board = board
        self.analog: AnalogService | None = None
        self.panel: FrontPanel | None = None
        self._trunk: Account | None = None
        if board is not None and board.ports and config.board.analog:
            trunk_password = secrets.token_hex(16)
            self._trunk = Account(
                TRUNK_ACCOUNT,
                {
                    alg: ha1(alg, TRUNK_ACCOUNT, config.general.domain, trunk_password)
                    for alg in ALGORITHMS
                },
                asserts_caller=True,
            )
        self.notifier = Notifier()
        self.web_url: str | None = None  # set once the web UI listens: STATUS= updates begin
        self.db: peewee.SqliteDatabase = open_database(config.database_path)
        self.directory = Directory(self.db, config.general.domain)
        self.writer = RegistrationWriter(self.db)
        self.cdrs = CdrWriter(self.db)
        self._revision = self._read_revision()
        self._wall_offset = time.time() - loop.time()

        secret = self._nonce_secret()
        rng = random.Random(secrets.randbits(64))
        auth_cfg = config.auth
        self.guard = AuthGuard(
            GuardConfig(
                max_failures=auth_cfg.max_failures,
                window=auth_cfg.failure_window,
                lockout=auth_cfg.lockout_time,
                extension_max_failures=auth_cfg.extension_max_failures,
                unauth_rate=auth_cfg.unauth_rate,
                unauth_burst=auth_cfg.unauth_burst,
            )
        )
        self.guard.restore(self._load_lockouts())
        self.auth = Authenticator(
            realm=config.general.domain,
            accounts=self._load_accounts(),
            nonces=NonceBook(secret, secrets.randbits(32), auth_cfg.nonce_lifetime),
            secret=secret,
            algorithms=auth_cfg.algorithms,
        )
        sip = config.sip
        self.registrar = Registrar(
            RegistrarConfig(sip.min_expires, sip.max_expires, sip.default_expires),
            load_active(self.db, time.time()),
        )
        layer = TransactionLayer(TimerConfig(), rng)
        calls = config.calls
        ports = config.media.rtp_ports
        vm = config.voicemail
        self.apps = CallAppsEdge(
            loop,
            self.db,
            config.data_dir,
            PromptLibrary((Path(vm.sounds),), custom=config.data_dir / "prompts"),
            MusicOnHold(Path(vm.music), custom=config.data_dir / "moh"),
            lambda: self.auth.accounts.keys(),
            language=vm.language,
            smtp=_smtp(config),
            music_on_hold=vm.music_on_hold,
        )
        self.media = UdpMediaEngine(
            loop,
            PortPool(ports.low, ports.high),
            _media_host(config),
            self._media_event,
            # the country the setup wizard chose wins over the file's default
            country=_tone_country(get_setting(self.db, COUNTRY_KEY), calls.tone_country),
            rtp_timeout=float(calls.rtp_timeout) if calls.rtp_timeout else float("inf"),
            clips=self.apps.clips,
        )
        self.calls = B2bua(
            layer,
            self.registrar,
            self.media,
            lambda: self.auth.accounts.keys(),
            self._local_address,
            rng,
            domain=config.general.domain,
            config=CallConfig(
                no_answer_timeout=float(calls.no_answer_timeout),
                session_expires=calls.session_expires,
                min_se=calls.min_se,
                max_calls=calls.max_calls,
                user_agent=sip.user_agent,
                voicemail_own=vm.own_code,
                voicemail_any=vm.any_code,
                music_on_hold=vm.music_on_hold,
            ),
            dialplan=build_dialplan(config.dialplan.routes, self.db),
            wall_clock=self.wall,
            apps=self.apps,
        )
        self.mwi = MwiNotifier(
            layer, self._local_address, rng, config.general.domain, server=sip.user_agent
        )
        self.front = SipFront(
            layer,
            self.auth,
            self.guard,
            self.registrar,
            rng,
            server=sip.user_agent,
            wall_clock=self.wall,
            calls=self.calls,
            mwi=self.mwi,
        )
        self.sip = SipService(
            loop,
            self.front,
            self._persist,
            self._locked,
            self._call_finished,
            on_app=self.apps.submit,
        )
        self.apps.post_event = self.sip.app_event
        self.apps.post_counts = self.sip.mailbox_changed
        self.apps.load()
        for mailbox, (new, old) in self.apps.counts().items():
            self.mwi.set_counts(mailbox, new, old)
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: list[registration_ops.Operation] = []
        self._pending_cdrs: list[CdrRecord] = []
        self._handover: asyncio.TimerHandle | None = None

    def live_snapshot(self) -> LiveSnapshot:
        """The running state for the web UI; only ever called on the loop's thread."""
        now = self.loop.time()
        wall = self.wall(now)
        registrations = tuple(
            RegistrationView(
                aor=b.aor,
                contact=b.contact,
                source=f"{b.transport}:{b.source_host}:{b.source_port}",
                user_agent=b.user_agent,
                expires_in=max(0.0, b.expires_at - wall),
            )
            for b in self.registrar.all_live(wall)
        )
        calls = tuple(
            CallView(
                number=c.number,
                caller=c.caller,
                caller_name=c.caller_name,
                callee=c.callee,
                state=c.state,
                duration_s=now - c.started,
                talking_s=None if c.answered is None else now - c.answered,
                codec=c.codec,
                external=c.external,
            )
            for c in self.calls.summaries()
        )
        analog = self.analog
        return LiveSnapshot(
            taken_at=wall,
            registrations=registrations,
            calls=calls,
            ports=tuple(analog.views()) if analog is not None else (),
            line_controller_up=(
                analog.ports.link_up if analog is not None and analog.ports is not None else None
            ),
        )

    def wall(self, now: float) -> float:
        """Unix time for a loop time (bindings and lockouts are stored in Unix time)."""
        return now + self._wall_offset

    async def start(self) -> list[str]:
        for address in self.config.sip.listen:
            await self.sip.listen(address.transport, address.host, address.port)
        self._tasks.append(self.loop.create_task(self._housekeeping()))
        if self._trunk is not None:
            await self._start_analog()
        self._start_panel()
        return [str(listener) for listener in self.sip.listeners]

    def _start_panel(self) -> None:
        board = self.board
        if board is None or not (board.leds or board.reset_button):
            return
        button = [board.reset_button.gpio] if board.reset_button is not None else []
        try:
            lines = open_lines([led.gpio for led in board.leds], button)
        except GpioError as exc:
            log.error("front panel not started: %s", exc)
            return
        self.panel = FrontPanel(self.loop, board, lines, self._panel_inputs, self._reset_admin)
        self.panel.start()

    def _panel_inputs(self) -> PanelInputs:
        analog = self.analog
        ports = analog.ports if analog is not None else None
        in_use = ports is not None and any(
            port.state.value != "idle" for port in ports.ports.values()
        )
        return PanelInputs(
            running=True,
            controller_up=ports.link_up if ports is not None else None,
            lines_in_use=in_use,
        )

    def _reset_admin(self) -> None:
        try:
            path = reset_admin_password(self.db, self.config.data_dir)
        except (OSError, StoreError, peewee.PeeweeException) as exc:
            log.error("reset button: the admin password could not be reset: %s", exc)
            return
        log.warning("reset button: new web UI password for admin written to %s", path)

    async def _start_analog(self) -> None:
        """The board's ports as user agents of our own SIP service, over loopback."""
        board = self.board
        assert board is not None and self._trunk is not None
        udp = next((lis for lis in self.sip.listeners if lis.transport == "udp"), None)
        if udp is None:
            log.error("analog ports not started: they need a UDP SIP listener")
            return
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(udp.host, udp.host)
        roles: dict[int, PortRole] = {}
        fxs, fxo = port_roles(
            self.config.board.fxs_extensions,
            self.config.board.fxo_inbound,
            get_setting(self.db, ANALOG_ROLES_KEY),
        )
        for spec in board.ports:
            if spec.type is PortType.FXS and spec.number in fxs:
                number = fxs[spec.number]
                roles[spec.number] = PortRole(spec.number, number, _LiveHa1(self.auth, number))
            elif spec.type is PortType.FXO and spec.number in fxo:
                roles[spec.number] = PortRole(
                    spec.number, TRUNK_ACCOUNT, self._trunk.ha1, inbound=fxo[spec.number]
                )
        vm = self.config.voicemail
        dialable = _Dialable(self.auth, (vm.own_code, vm.any_code))
        completion = _FollowDialplan(self.calls, dialable)
        rng = random.Random(secrets.randbits(64))
        run_dir = self.config.data_dir / "run" / "board"
        self.analog = AnalogService(self.loop, board, run_dir, completion, rng)
        await self.analog.start(Peer("udp", host, udp.port), roles)
        self.calls.analog_gateway = self.analog.address
        log.info(
            "analog ports: %s",
            ", ".join(f"{n} {state}" for n, state in self.analog.status().items()),
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Calls in progress are hung up (BYE/CANCEL to both phones, a CDR each) while
        # the sockets are still open; one loop turn lets the datagrams leave.
        if self.panel is not None:
            self.panel.close()
        if self.analog is not None:
            self.analog.close()
        self.sip.hang_up_all()
        await asyncio.sleep(0)
        # Messages being recorded when the calls were hung up are written and kept
        # before the store closes (bounded: a stuck disk must not hold up the stop).
        deadline = self.loop.time() + APP_DRAIN
        while (self.calls.apps_pending or self.apps.busy) and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.calls.apps_pending:
            log.error("%d voicemail message(s) not kept before the stop", self.calls.apps_pending)
        await self.sip.close()
        self.media.close_all()
        await self.media.wait_closed()
        if self._handover is not None:
            self._handover.cancel()
        self._hand_over()
        if not self.writer.close(timeout=10.0):
            log.error("registration writer did not finish in time")
        if not self.cdrs.close(timeout=10.0):
            log.error("CDR writer did not finish in time")
        self.apps.close()  # e-mails still being sent go out first
        self.db.close()

    # -- outputs of the SIP front --------------------------------------------------

    def _persist(self, action: Persist) -> None:
        change = action.change
        if isinstance(change, Upsert):
            self._pending.append(registration_ops.Upsert(change.binding))
        elif isinstance(change, Remove):
            self._pending.append(registration_ops.Delete(change.aor, change.contact))
        self._schedule_handover()

    def _schedule_handover(self) -> None:
        if self._handover is None:
            self._handover = self.loop.call_later(STORE_HANDOVER, self._hand_over)

    def _hand_over(self) -> None:
        """Give the writer threads what gathered on the loop since the last hand-over:
        one wake-up and one transaction (one fsync) for many changes, not one each."""
        self._handover = None
        pending, self._pending = self._pending, []
        if pending:
            self.writer.submit_many(tuple(pending))
        cdrs, self._pending_cdrs = self._pending_cdrs, []
        if cdrs:
            self.cdrs.submit_many(cdrs)

    def _local_address(self, peer: Peer) -> tuple[str, int]:
        return self.sip.local_address(peer)

    def _media_event(self, event: MediaEvent) -> None:
        self.sip.media_event(event)

    def _call_finished(self, finished: CallFinished) -> None:
        """Queue the CDR for the writer thread (at the next hand-over), never a write here."""
        record = finished.record
        try:
            cdr = CdrRecord(
                call_id=record.call_id[:255],
                caller=record.caller.number,
                caller_name=record.caller.display_name or "",
                callee=record.callee,
                start_at=self.wall(record.start),
                answer_at=None if record.answer is None else self.wall(record.answer),
                end_at=self.wall(record.end),
                disposition=record.disposition,
                hangup_cause=int(record.cause),
                hangup_by=record.ended_by,
                codec=finished.codec,
                a=_quality(finished.a),
                b=_quality(finished.b),
            )
        except StoreError as exc:
            log.error("call %s: CDR not written: %s", record.call_id, exc)
            return
        self._pending_cdrs.append(cdr)
        self._schedule_handover()

    def _locked(self, action: Locked) -> None:
        lock = action.lockout
        row = lockout_store.Lockout(
            kind=lockout_store.LockoutKind(lock.kind.value),
            key=lock.key,
            until=self.wall(lock.until),
            failures=lock.failures,
            reason=f"{lock.failures} failed authentications",
            created_at=time.time(),
        )
        # Rare (once per locked key per lockout period): a short write is acceptable.
        try:
            lockout_store.upsert_lockout(self.db, row)
        except peewee.PeeweeException as exc:
            log.error("could not record lockout of %s: %s", lock.key, exc)

    # -- periodic work -------------------------------------------------------------

    async def _housekeeping(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(HOUSEKEEPING_PERIOD)
            self.notifier.watchdog()  # from the loop: a stalled loop stops the pings
            rounds += 1
            if self.web_url is not None and rounds % STATUS_EVERY == 0:
                summary = running_status(len(self.calls), len(self.registrar), self.web_url)
                self.notifier.status(summary)  # sent only when it changed
            self._wall_offset = time.time() - self.loop.time()  # follow NTP steps
            try:
                revision = self._read_revision()
                if revision != self._revision:
                    self._revision = revision
                    self.auth.accounts = self._load_accounts()
                    self.guard.restore(self._load_lockouts())
                    self.apps.reload()
                    self.calls.dialplan = build_dialplan(self.config.dialplan.routes, self.db)
                    for change in self.registrar.drop_aors(self.auth.accounts):
                        self._persist(Persist(change))
                    log.info("directory or lockouts changed: reloaded")
            except peewee.PeeweeException as exc:
                log.error("could not reload the directory: %s", exc)
            for change in self.registrar.expire(time.time()):
                self._persist(Persist(change))
            self.sip.close_idle(self.loop.time())

    # -- store access --------------------------------------------------------------

    def _read_revision(self) -> object:
        return get_setting(self.db, REVISION_KEY, 0)

    def _load_accounts(self) -> dict[str, Account]:
        accounts = {
            number: Account(c.number, c.ha1, c.algorithms, c.enabled)
            for number, c in self.directory.load_credentials().items()
        }
        if self._trunk is not None:
            accounts[TRUNK_ACCOUNT] = self._trunk
        return accounts

    def _load_lockouts(self) -> list[Lockout]:
        now_wall = time.time()
        now = self.loop.time()
        return [
            Lockout(LockKind(row.kind.value), row.key, now + (row.until - now_wall), row.failures)
            for row in lockout_store.list_lockouts(self.db, now_wall)
        ]

    def _nonce_secret(self) -> bytes:
        stored = get_setting(self.db, NONCE_SECRET_KEY)
        if isinstance(stored, str) and len(stored) >= 64:
            return bytes.fromhex(stored)
        secret = secrets.token_bytes(32)
        set_setting(self.db, NONCE_SECRET_KEY, secret.hex())
        return secret


class LoopSnapshot:
    """The web threads' way to the core's state: the snapshot is built on the event
    loop's thread (the core is not thread-safe) and the asking thread waits for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, build: Callable[[], LiveSnapshot]) -> None:
        self._loop = loop
        self._build = build

    def snapshot(self, timeout: float = 2.0) -> LiveSnapshot:
        future: concurrent.futures.Future[LiveSnapshot] = concurrent.futures.Future()

        def build() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self._build())
            except Exception as exc:  # handed to the waiting thread, which reports it
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(build)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("the PBX did not answer within the time allowed") from None


class _FollowDialplan:
    """The analog ports' digit completion for the dialplan the B2BUA routes with now: a
    route added in the web UI completes at once, not only after a restart."""

    def __init__(self, calls: B2bua, dialable: Collection[str]) -> None:
        self._calls = calls
        self._dialable = dialable
        self._plan: Dialplan | None = None
        self._rule: CompletionRule | None = None

    def __call__(self, number: str) -> Completion:
        plan = self._calls.dialplan
        if plan is not self._plan or self._rule is None:
            self._plan, self._rule = plan, dialplan_completion(plan, self._dialable)
        return self._rule(number)


class _LiveHa1(Mapping[str, str]):
    """An extension's HA1s as the authenticator holds them now: a password changed in
    the store reaches the analog port that registers as that extension."""

    def __init__(self, auth: Authenticator, number: str) -> None:
        self._auth = auth
        self._number = number

    def _current(self) -> Mapping[str, str]:
        account = self._auth.accounts.get(self._number)
        return account.ha1 if account is not None else {}

    def __getitem__(self, algorithm: str) -> str:
        return self._current()[algorithm]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


class _Dialable(Collection[str]):
    """What an analog phone may dial besides the dialplan's patterns: the extensions
    as they are now, and the feature codes."""

    def __init__(self, auth: Authenticator, codes: tuple[str, ...]) -> None:
        self._auth = auth
        self._codes = codes

    def _numbers(self) -> list[str]:
        return [n for n in self._auth.accounts if n != TRUNK_ACCOUNT] + list(self._codes)

    def __contains__(self, number: object) -> bool:
        return number in self._codes or (number != TRUNK_ACCOUNT and number in self._auth.accounts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._numbers())

    def __len__(self) -> int:
        return len(self._numbers())


def port_roles(
    fxs: Mapping[int, str], fxo: Mapping[int, str], saved: object
) -> tuple[dict[int, str], dict[int, str]]:
    """The ports' roles: yakyak.toml's, with what the web UI saved over them (a port
    saved empty has no role). A saved value that is not a dialable number is ignored."""
    merged = (dict(fxs), dict(fxo))
    if not isinstance(saved, dict):
        return merged
    for kind, roles in zip(("fxs", "fxo"), merged, strict=True):
        table = saved.get(kind)
        if not isinstance(table, dict):
            continue
        for port, number in table.items():
            if not (isinstance(port, str) and port.isdigit() and isinstance(number, str)):
                continue
            if number == "":
                roles.pop(int(port), None)
            elif not set(number) - set("0123456789*#+"):
                roles[int(port)] = number
    return merged


def _tone_country(chosen: object, configured: str) -> str:
    """The wizard's country when it has a tone plan, else the configuration's."""
    return chosen if isinstance(chosen, str) and chosen in TONE_PLANS else configured


def _smtp(config: Config) -> SmtpConfig | None:
    vm = config.voicemail
    if not vm.smtp_host:
        return None
    return SmtpConfig(
        vm.smtp_host,
        vm.smtp_port,
        starttls=vm.smtp_starttls,
        username=vm.smtp_username or None,
        password=vm.smtp_password or None,
        sender=vm.smtp_sender,
    )


def _quality(report: LegQualityReport | None) -> LegQuality:
    if report is None:
        return LegQuality()
    return LegQuality(
        packets_in=report.packets_received,
        packets_out=report.packets_sent,
        lost=max(0, report.packets_lost),
        jitter_ms=max(0.0, report.jitter_ms),
    )


def _media_host(config: Config) -> str:
    """Where RTP sockets bind: the SIP listening address (a wildcard picks, per phone,
    the address the kernel routes from)."""
    hosts = {listener.host for listener in config.sip.listen}
    return hosts.pop() if len(hosts) == 1 else "0.0.0.0"


def _raise_open_files() -> None:
    """Every call holds four UDP sockets (RTP and RTCP per leg): lift the soft limit on
    open files to the hard one, which a distribution's 1024 default would cap at ~250
    calls."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("open files stay limited to %d: %s", soft, exc)


def serve(config: Config, restored: str | None = None) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean shutdown. ``restored``: what the
    restore applied just before said (cli.cmd_serve applies it before the config is read)."""
    setup_logging(config.general.log_level)
    if restored is not None:
        log.warning("%s", restored)
    _raise_open_files()
    started = time.monotonic()
    # uvloop: libuv's event loop moves datagrams several times faster than asyncio's
    # own selector loop, and the SIP front is per-datagram work. Through asyncio.Runner,
    # not uvloop.run (what that does on 3.11): uvloop.run came in uvloop 0.18, and the
    # armhf image takes Debian bookworm's python3-uvloop 0.17.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run(config, started, restored is not None))


async def _run(config: Config, started: float, restored: bool = False) -> int:
    try:
        board = load_board(config.board.name)
    except BoardError as exc:
        log.error("%s", exc)
        return 1
    if board.controller.device != "pty":  # a real board: its devices must be there
        missing = check_devices(board)
        if missing:
            log.error("board %r: missing %s", board.name, "; ".join(missing))
            return 1
    log.info(
        "board %s: %s",
        board.name,
        ", ".join(f"port {p.number} {p.type.value}" for p in board.ports),
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    wanted = config.board
    for number in (*wanted.fxs_extensions, *wanted.fxo_inbound):
        kind = PortType.FXS if number in wanted.fxs_extensions else PortType.FXO
        port = next((p for p in board.ports if p.number == number), None)
        if port is None or port.type is not kind:
            key = "fxs_extensions" if kind is PortType.FXS else "fxo_inbound"
            log.error(
                "%s: board.%s: board %r has no %s port %d",
                config.path,
                key,
                board.name,
                kind.value.upper(),
                number,
            )
            return 1
    appliance = Appliance(config, loop, board)
    try:
        listeners = await appliance.start()
    except OSError as exc:
        log.error("cannot listen for SIP: %s", exc)
        await appliance.stop()
        return 1
    http = config.http.listen
    lan = SourceAddresses().towards("lan")  # the default route's source: the LAN side
    https = (lan if http.host == LAN_HOST else http.host, http.port)
    redirect = config.http.redirect
    plain = None
    if redirect is not None:
        plain = (lan if redirect.host == LAN_HOST else redirect.host, redirect.port)
    try:
        web: WebServer = await asyncio.to_thread(
            start_web,
            data_dir=config.data_dir,
            db_path=config.database_path,
            listen=https,
            realm=config.general.domain,
            redirect_listen=plain,
            live=LoopSnapshot(loop, appliance.live_snapshot),
            sip_port=next((lis.port for lis in config.sip.listen), 5060),
        )
    except OSError as exc:
        log.error("cannot listen for the web UI on %s: %s", http, exc)
        await appliance.stop()
        return 1
    # Everything built so far lives as long as the process: move it out of the
    # collector's sight, so collections only walk what requests allocate.
    gc.freeze()
    # Sockets, transports and the media engine's per-leg closures make reference
    # cycles, so every call leaves some garbage only the collector frees. With the
    # default thresholds (700, 10, 10) collections ran so often under load that the
    # call-setup bench failed at 500 calls/s on retransmissions; at these it ran
    # 600 calls/s clean at less CPU (tests/bench/README.md).
    gc.set_threshold(*GC_THRESHOLDS)
    summary = (
        f"SIP on {', '.join(listeners)}; "
        f"{len(set(appliance.auth.accounts) - {TRUNK_ACCOUNT})} extensions, "
        f"{len(appliance.registrar)} registrations restored; web UI on {web.url}"
    )
    log.info("ready in %.2f s (pid %d): %s", time.monotonic() - started, os.getpid(), summary)
    appliance.notifier.ready(summary)  # SIP and the web UI both listen by now
    appliance.web_url = web.url
    if restored:
        discard_previous_state(config.data_dir)  # the restored state runs: the old can go
    await stop.wait()
    log.info("stopping")
    appliance.notifier.stopping()
    await asyncio.to_thread(web.stop)
    await appliance.stop()
    log.info("stopped cleanly")
    return 0
