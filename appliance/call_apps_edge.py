"""Voicemail, auto-attendant and music on hold, wired to the store, the files and mail.

``CallAppsEdge`` is the B2BUA's ``CallApps`` (which extensions have a mailbox, the
application for a target, an extension's music class: answered from caches on the
loop, never from the database), the media engine's clip loader (prompts, messages,
greetings, music), and the worker that carries out what applications ask of the
store (``AppRequest``) and writes recordings (``SaveRecording``).

Store work runs in one worker thread, in order; its answers reach the loop through
``call_soon_threadsafe``. Email goes through a second thread so a slow relay never
holds up a caller waiting for its mailbox. Mailbox changes (from the worker, or
from the store reconciling at start-up) are posted to the loop as new counts for
message waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import peewee

from appliance.media.prompts import MusicOnHold, PromptLibrary
from appliance.media.wav import write_wav_atomic
from appliance.net.email_notify import EmailError, SmtpConfig, build_message, send
from appliance.pbx.app_events import (
    AppEvent,
    CallApp,
    CheckPin,
    DiscardRecording,
    LoadMailbox,
    MailboxLoaded,
    MessageStored,
    PinChecked,
    PlayItem,
    Recording,
    RecordingDone,
    SaveGreeting,
    SetMessageStatus,
    SetPin,
    StartMailboxAccess,
    StartMenu,
    StartVoicemail,
    StoreMessage,
)
from appliance.pbx.call_apps import AppRequest, AppTarget, SaveRecording
from appliance.pbx.ivr.menu import IvrConfig, IvrError, parse_ivr
from appliance.pbx.ivr.menu_app import MenuApp
from appliance.pbx.voicemail.access import MailboxAccessApp
from appliance.pbx.voicemail.deposit import DepositApp
from appliance.store.errors import StoreError
from appliance.store.ivr import load_ivr
from appliance.store.models import Extension, Mailbox
from appliance.store.voicemail import VoicemailStore

log = logging.getLogger(__name__)

Clip = npt.NDArray[np.int16]
PostEvent = Callable[[int, AppEvent], None]
PostCounts = Callable[[str, int, int], None]
CUSTOM_PREFIX = "custom:"
PIN_MAX_FAILURES = 6  # wrong PINs for one mailbox within PIN_WINDOW lock it for the rest
PIN_WINDOW = 900.0  # s
MUSIC_PREFIX = "moh:"


class CallAppsEdge:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        db: peewee.SqliteDatabase,
        data_dir: Path,
        prompts: PromptLibrary,
        music: MusicOnHold,
        extensions: Callable[[], Collection[str]],
        *,
        language: str = "en",
        smtp: SmtpConfig | None = None,
        music_on_hold: bool = True,
    ) -> None:
        self._loop = loop
        self._db = db
        self.prompts = prompts
        self.music = music
        self._custom = data_dir / "prompts"
        self._extensions = extensions
        self.language = language
        self._smtp = smtp
        self._music_on_hold = music_on_hold
        self.store = VoicemailStore(db, data_dir / "voicemail", on_change=self._changed)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="voicemail")
        self._mailer = ThreadPoolExecutor(1, thread_name_prefix="mail")
        self._mailboxes: frozenset[str] = frozenset()
        self._music_classes: dict[str, str] = {}
        self._ivr: IvrConfig | None = None
        self._futures: set[Future[None]] = set()
        self._music_turn: dict[str, int] = {}
        self._pin_failures: dict[str, list[float]] = {}  # mailbox -> times (worker thread)
        self.post_event: PostEvent = lambda call, event: None
        self.post_counts: PostCounts = lambda mailbox, new, old: None

    # -- life cycle (blocking: called before the loop serves, or from the worker) -----

    def load(self) -> None:
        """Read mailboxes, music classes and menus; reconcile the voicemail folder."""
        self.store.reconcile()  # logs a warning itself when it had to repair anything
        self.reload()

    def reload(self) -> None:
        query = Mailbox.select(Extension.number).join(Extension).where(Mailbox.enabled == True)  # noqa: E712
        self._mailboxes = frozenset(row.extension.number for row in query.execute(self._db))
        self._music_classes = {
            row.number: row.moh_class
            for row in Extension.select(Extension.number, Extension.moh_class).execute(self._db)
        }
        try:
            document = load_ivr(self._db)
            self._ivr = (
                None
                if document is None
                else parse_ivr(document, set(self._extensions()), self._mailboxes)
            )
        except (StoreError, IvrError) as exc:
            log.error("auto-attendant not loaded: %s", exc)

    def counts(self) -> dict[str, tuple[int, int]]:
        return {number: self.store.counts(number) for number in self._mailboxes}

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self._mailer.shutdown(wait=True)

    # -- CallApps (on the loop) ------------------------------------------------------

    def has_mailbox(self, extension: str) -> bool:
        return extension in self._mailboxes

    def create(
        self,
        target: AppTarget,
        caller: str,
        caller_name: str | None,
        wall: float,
        *,
        trusted: bool = True,
    ) -> CallApp | None:
        if isinstance(target, StartVoicemail):
            if target.mailbox not in self._mailboxes:
                return None
            return DepositApp(target.mailbox, target.reason, caller, caller_name, wall)
        if isinstance(target, StartMailboxAccess):
            # a number the PSTN delivered proves nothing: an outside caller showing
            # "102" must still give 102's PIN
            own = trusted and target.mailbox is not None and target.mailbox == caller
            if target.mailbox is not None and target.mailbox not in self._mailboxes:
                return None
            return MailboxAccessApp(target.mailbox, own_phone=own, wall_time=wall)
        if isinstance(target, StartMenu):
            ivr = self._ivr
            if ivr is None or target.menu not in set(ivr.names()):
                return None
            extensions = self._extensions
            return MenuApp(
                ivr,
                target.menu,
                wall,
                lambda number: number in extensions(),
                is_prefix=lambda digits: any(
                    n.startswith(digits) and n != digits for n in extensions()
                ),
            )
        return None

    def music_class(self, extension: str) -> str | None:
        if not self._music_on_hold:
            return None
        return self._music_classes.get(extension, "default")

    # -- the media engine's clip loader (on the loop; files are cached) --------------

    def clips(self, item: PlayItem, language: str) -> Sequence[Clip]:
        if isinstance(item, Recording):  # a message or greeting: read when it plays
            return [self.prompts.load(Path(item.path), cache=False)]
        if item.startswith(MUSIC_PREFIX):
            klass = item[len(MUSIC_PREFIX) :]
            files = self.music.files(klass)
            if not files:
                raise LookupError(f"no music for class {klass!r}")
            # a looping queue asks again at each round: the next file each time, and
            # only the one playing is loaded
            turn = self._music_turn.get(klass, 0)
            self._music_turn[klass] = turn + 1
            return [self.prompts.load(files[turn % len(files)])]
        if item.startswith(CUSTOM_PREFIX):
            name = item[len(CUSTOM_PREFIX) :]
            if not name.replace("-", "").replace("_", "").isalnum():
                raise LookupError(f"bad custom prompt name {name!r}")
            for lang in (language, self.language, "en"):
                path = self._custom / lang / f"{name}.wav"
                if path.is_file():
                    return [self.prompts.load(path)]
            raise LookupError(f"no custom prompt {name!r}")
        return [self.prompts.load(item, language)]

    # -- application requests (from the loop, done in the worker) --------------------

    def submit(self, action: AppRequest | SaveRecording) -> None:
        future = self._worker.submit(self._work, action)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    @property
    def busy(self) -> bool:
        """Work submitted and not yet done (shutdown waits for it)."""
        return any(not future.done() for future in list(self._futures))

    def _work(self, action: AppRequest | SaveRecording) -> None:
        try:
            event = self._do(action)
        except Exception as exc:  # whatever failed, the application must get an answer
            log.error("call %d: %s failed: %r", action.call, type(action).__name__, exc)
            event = _failed(action)  # the application must not wait for ever
        if event is not None:
            self._loop.call_soon_threadsafe(self.post_event, action.call, event)

    def _do(self, request: AppRequest | SaveRecording) -> AppEvent | None:
        if isinstance(request, SaveRecording):
            path = self.store.new_recording_path()
            samples = np.frombuffer(request.audio.pcm, dtype="<i2").astype(np.int16)
            write_wav_atomic(path, samples)
            return RecordingDone(Recording(str(path)), request.audio.seconds, request.audio.end)
        action = request.action
        if isinstance(action, LoadMailbox):
            return MailboxLoaded(action.mailbox, self.store.view(action.mailbox))
        if isinstance(action, CheckPin):
            return PinChecked(action.mailbox, self._check_pin(action.mailbox, action.pin))
        if isinstance(action, StoreMessage):
            received = time.time()
            message_id = self.store.store_message(
                action.mailbox,
                action.recording.path,
                action.duration,
                action.caller,
                action.caller_name,
                action.urgent,
                received,
            )
            if message_id is not None:
                self._mail(action, message_id, received)
            return MessageStored(action.mailbox, message_id)
        if isinstance(action, DiscardRecording):
            self.store.discard_recording(action.recording.path)
        elif isinstance(action, SetMessageStatus):
            self.store.set_status(action.mailbox, action.message_id, action.status)
        elif isinstance(action, SaveGreeting):
            self.store.save_greeting(action.mailbox, action.kind, action.recording.path)
            return MailboxLoaded(action.mailbox, self.store.view(action.mailbox))
        elif isinstance(action, SetPin):
            self.store.set_pin(action.mailbox, action.pin)
        return None

    def _check_pin(self, mailbox: str, pin: str) -> bool:
        """A PIN check, refused without looking while the mailbox is locked: a 4-digit
        PIN must not be guessable at three tries per call, call after call."""
        now = time.monotonic()
        recent = [t for t in self._pin_failures.get(mailbox, []) if now - t < PIN_WINDOW]
        if len(recent) >= PIN_MAX_FAILURES:
            self._pin_failures[mailbox] = recent
            log.warning("mailbox %s: PIN locked after %d wrong PINs", mailbox, len(recent))
            return False
        if self.store.check_pin(mailbox, pin):
            self._pin_failures.pop(mailbox, None)
            return True
        recent.append(now)
        self._pin_failures[mailbox] = recent
        return False

    def _mail(self, action: StoreMessage, message_id: int, received: float) -> None:
        smtp = self._smtp
        if smtp is None:
            return
        target = self.store.email_target(action.mailbox)
        info = self.store.message(action.mailbox, message_id)
        if target is None or info is None:
            return
        message = build_message(
            smtp,
            target.address,
            action.mailbox,
            action.caller,
            action.caller_name,
            received,
            action.duration,
            info.recording.path,
            target.attach,
            target.timezone,
        )

        def deliver() -> None:
            try:
                send(smtp, message)
                log.info(
                    "voicemail %d of %s mailed to %s", message_id, action.mailbox, target.address
                )
            except EmailError as exc:
                log.error("voicemail %d of %s not mailed: %s", message_id, action.mailbox, exc)

        self._mailer.submit(deliver)

    def _changed(self, mailbox: str) -> None:
        """From the worker thread: the mailbox's messages changed."""
        new, old = self.store.counts(mailbox)
        self._loop.call_soon_threadsafe(self.post_counts, mailbox, new, old)


def _failed(request: AppRequest | SaveRecording) -> AppEvent | None:
    if isinstance(request, SaveRecording):
        # no file: as if nothing was said (the application discards it, says sorry)
        return RecordingDone(Recording(""), 0.0, request.audio.end)
    action = request.action
    if isinstance(action, LoadMailbox | SaveGreeting):
        return MailboxLoaded(action.mailbox, None)
    if isinstance(action, CheckPin):
        return PinChecked(action.mailbox, False)
    if isinstance(action, StoreMessage):
        return MessageStored(action.mailbox, None)
    return None
