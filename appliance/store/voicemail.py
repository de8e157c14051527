"""Voicemail storage: mailboxes and messages in SQLite, their audio in WAV files.

Layout under the voicemail root (``data/voicemail``)::

    .spool/rec-<token>.wav        recordings in flight, written by the media engine
    <box>/msg-<ms>-<token>.wav    one file per message; <ms> is received_at in ms
    <box>/greet-<kind>.wav        the box's greetings, <kind> a GreetingKind value

Crash safety (STYLE 2.12): a message's file is fsync'd, renamed into its box and the
folder fsync'd before its row is committed, so a power cut may leave a file without a
row but never a row without its file. Deleting goes the other way round: the file
goes, then the row is marked. `VoicemailStore.reconcile` settles whatever a crash
left behind, once, at start-up.

Every method blocks on SQLite and the disk: call them from one worker thread, never
from the event loop.
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import peewee

from appliance.pbx.app_events import (
    GreetingKind,
    MailboxView,
    MessageInfo,
    MessageStatus,
    Recording,
)
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.extensions import check_email, check_number
from appliance.store.models import Extension, Mailbox, VoicemailMessage
from appliance.store.passwords import hash_password, spend_verify_time, verify_password
from appliance.system.files import fsync_file, fsync_folder

logger = logging.getLogger(__name__)

SPOOL: Final = ".spool"
UNKNOWN_CALLER: Final = "unknown"  # caller of a message recovered from its file alone
MAX_CALLER: Final = 256  # characters kept of a caller number or name
MAX_MESSAGE_SECONDS: Final = 3600.0
MAX_MESSAGES: Final = 10_000
_BOX_NAME: Final = re.compile(r"[0-9]{1,15}")  # an extension number
_PIN: Final = re.compile(r"[0-9]{4,10}")
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")  # RFC 5646, loosely
_MESSAGE_NAME: Final = re.compile(r"msg-([0-9]{1,17})-([0-9a-f]{8,32})\.wav")
_GREETING_NAMES: Final = frozenset(f"greet-{kind.value}.wav" for kind in GreetingKind)
_TEMP_SUFFIXES: Final = (".tmp", ".part")
_DELETED: Final = MessageStatus.DELETED.value
_SQL_CHUNK: Final = 500  # ids per IN (...): SQLite caps bound parameters


def check_pin(pin: str) -> str:
    """A voicemail PIN: 4 to 10 digits, what a phone keypad can send."""
    if not _PIN.fullmatch(pin):
        raise StoreError("voicemail PIN must be 4 to 10 digits (0-9), nothing else")
    return pin


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise StoreError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Berlin"
        ) from None
    return name


def check_language(tag: str) -> str:
    if not _LANGUAGE.fullmatch(tag):
        raise StoreError(f"bad language {tag!r}: use a tag like en or pt-BR")
    return tag


@dataclass(frozen=True, slots=True)
class EmailTarget:
    """Where and how a mailbox is told about new messages."""

    address: str
    attach: bool
    timezone: str


@dataclass(slots=True)
class ReconcileReport:
    """What `VoicemailStore.reconcile` did, for the log and for tests."""

    spool_removed: int = 0  # leftovers in .spool (recordings never stored)
    temp_removed: int = 0  # *.tmp, *.part and hidden files left by atomic writers
    adopted: int = 0  # message files without a row that got one
    invalid_removed: int = 0  # message files without a row that were not a usable WAV
    stale_removed: int = 0  # files of rows already marked deleted
    rows_marked_deleted: int = 0  # rows whose file was gone
    orphan_boxes_removed: int = 0  # folders of mailboxes that no longer exist

    @property
    def changed(self) -> bool:
        return any(
            (
                self.spool_removed,
                self.temp_removed,
                self.adopted,
                self.invalid_removed,
                self.stale_removed,
                self.rows_marked_deleted,
                self.orphan_boxes_removed,
            )
        )


def _is_temp(name: str) -> bool:
    # Atomic writers (ours, tempfile.mkstemp with a dot prefix) write beside the
    # target under one of these names, then rename; a leftover is a write that died.
    return name.startswith(".") or name.endswith(_TEMP_SUFFIXES)


def wav_seconds(path: Path) -> float | None:
    """Length of the audio in the RIFF/WAVE file at `path`, or None if it is no usable WAV.

    Reads the chunk headers only, so any format tag passes (PCM, G.711 A-law and
    u-law...), which the stdlib `wave` module would refuse. Usable means: a "fmt "
    chunk with a non-zero byte rate, then a "data" chunk that is non-empty and
    entirely present in the file.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            riff = f.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            byte_rate = 0
            offset = 12
            for _ in range(64):  # real files have 2 to 5 chunks; bounds a hostile file
                header = f.read(8)
                if len(header) < 8:
                    return None
                chunk_id, chunk_size = header[:4], struct.unpack("<I", header[4:])[0]
                body = offset + 8
                if chunk_id == b"fmt ":
                    fmt = f.read(16)
                    if chunk_size < 16 or len(fmt) < 16:
                        return None
                    byte_rate = struct.unpack("<HHII", fmt[:12])[3]
                elif chunk_id == b"data":
                    if byte_rate == 0 or chunk_size == 0 or body + chunk_size > size:
                        return None
                    return float(chunk_size / byte_rate)
                offset = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
                f.seek(offset)
    except OSError:
        return None
    return None


@dataclass(frozen=True, slots=True)
class MailboxSummary:
    """One mailbox in a list: whose it is and how many messages it holds."""

    number: str
    name: str | None
    enabled: bool
    new: int
    old: int  # read and saved


class VoicemailStore:
    """Mailboxes of one database and their files under one root folder.

    `on_change` is called with a mailbox number after every commit that changes its
    messages (stored, status changed, reconciled), on the calling thread: it should
    only hand the news on (to the event loop, for message-waiting) and not raise.
    """

    def __init__(
        self,
        db: peewee.SqliteDatabase,
        root: Path,
        on_change: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._root = Path(root).resolve()
        self._spool = self._root / SPOOL
        self._on_change = on_change
        self._clock = clock  # wall clock for created_at

    @property
    def root(self) -> Path:
        return self._root

    # -- mailboxes -----------------------------------------------------------------

    def create_mailbox(
        self,
        extension_number: str,
        pin: str | None,
        email: str | None = None,
        *,
        email_attach: bool = True,
        max_message_seconds: float = 180.0,
        max_messages: int = 100,
        language: str = "en",
        timezone: str = "UTC",
    ) -> None:
        """Give an existing extension a mailbox; `StoreError` if it is refused."""
        check_number(extension_number)
        pin_hash = None if pin is None else hash_password(check_pin(pin))
        email = check_email(email)
        if not (
            math.isfinite(max_message_seconds) and 0 < max_message_seconds <= MAX_MESSAGE_SECONDS
        ):
            raise StoreError(f"max_message_seconds must be in (0, {MAX_MESSAGE_SECONDS:g}]")
        if not 1 <= max_messages <= MAX_MESSAGES:
            raise StoreError(f"max_messages must be between 1 and {MAX_MESSAGES}")
        check_language(language)
        check_timezone(timezone)
        extension = (
            Extension.select(Extension.id)
            .where(Extension.number == extension_number)
            .first(self._db)
        )
        if extension is None:
            raise NotFoundError(f"no extension {extension_number}")
        if self._mailbox(extension_number) is not None:
            raise StoreError(f"extension {extension_number} already has a mailbox")
        folder = self._box_dir(extension_number)
        if folder.exists():
            # Left by a mailbox deleted with its extension (the rows cascade, the files
            # stay): its messages and greetings must not reach the number's new owner.
            logger.warning("removing %s, left by a deleted mailbox", folder)
            shutil.rmtree(folder)
            fsync_folder(self._root)
        try:
            with self._db.atomic():
                Mailbox.insert(
                    extension=extension.id,
                    pin_hash=pin_hash,
                    email=email,
                    email_attach=email_attach,
                    max_message_seconds=float(max_message_seconds),
                    max_messages=max_messages,
                    language=language,
                    timezone=timezone,
                    created_at=self._clock(),
                ).execute(self._db)
        except peewee.IntegrityError as exc:  # another process created it meanwhile
            raise StoreError(f"extension {extension_number} already has a mailbox") from exc
        self._ensure_box_dir(extension_number)

    def mailbox_exists(self, number: str) -> bool:
        """True when `number` has an enabled mailbox (a disabled one takes no messages)."""
        box = self._mailbox(number)
        return box is not None and bool(box.enabled)

    def view(self, number: str) -> MailboxView | None:
        """The mailbox with its live messages, oldest first; None if absent or disabled."""
        box = self._mailbox(number)
        if box is None or not box.enabled:
            return None
        rows = (
            VoicemailMessage.select()
            .where((VoicemailMessage.mailbox == box.id) & (VoicemailMessage.status != _DELETED))
            .order_by(VoicemailMessage.received_at, VoicemailMessage.id)
        )
        greetings = {
            kind: Recording(str(path))
            for kind in GreetingKind
            if (path := self._greeting_path(number, kind)).is_file()
        }
        return MailboxView(
            number=number,
            name=box.extension.name,
            language=box.language,
            max_message_seconds=box.max_message_seconds,
            max_messages=box.max_messages,
            greetings=greetings,
            messages=tuple(self._info(row) for row in rows.execute(self._db)),
            has_pin=box.pin_hash is not None,
            timezone=box.timezone,
        )

    def message(self, number: str, message_id: int) -> MessageInfo | None:
        """One message of `number`'s mailbox, deleted ones included (their file is gone)."""
        row = self._message_row(number, message_id)
        return None if row is None else self._info(row)

    def counts(self, number: str) -> tuple[int, int]:
        """(new, old) live messages, for message-waiting (RFC 3842 "Voice-Message: n/o")."""
        query = (
            VoicemailMessage.select(VoicemailMessage.status, peewee.fn.COUNT(VoicemailMessage.id))
            .join(Mailbox)
            .join(Extension)
            .where((Extension.number == number) & (VoicemailMessage.status != _DELETED))
            .group_by(VoicemailMessage.status)
            .tuples()
        )
        by_status = {status: count for status, count in query.execute(self._db)}
        new = by_status.pop(MessageStatus.NEW.value, 0)
        return new, sum(by_status.values())

    def email_for(self, number: str) -> str | None:
        target = self.email_target(number)
        return None if target is None else target.address

    def email_target(self, number: str) -> EmailTarget | None:
        """Where new-message notices go; None when the box has no address or is absent."""
        box = self._mailbox(number)
        if box is None or not box.enabled or box.email is None:
            return None
        return EmailTarget(box.email, bool(box.email_attach), box.timezone)

    def mailboxes(self) -> list[MailboxSummary]:
        """Every mailbox, disabled ones included, with its live message counts; by number."""
        counts: dict[int, dict[str, int]] = {}
        query = (
            VoicemailMessage.select(
                VoicemailMessage.mailbox,
                VoicemailMessage.status,
                peewee.fn.COUNT(VoicemailMessage.id),
            )
            .where(VoicemailMessage.status != _DELETED)
            .group_by(VoicemailMessage.mailbox, VoicemailMessage.status)
            .tuples()
        )
        for box_id, status, count in query.execute(self._db):
            counts.setdefault(box_id, {})[status] = count
        boxes = (
            Mailbox.select(Mailbox.id, Mailbox.enabled, Extension.number, Extension.name)
            .join(Extension)
            .tuples()
        )
        found = []
        for box_id, enabled, number, name in boxes.execute(self._db):
            by_status = counts.get(box_id, {})
            new = by_status.get(MessageStatus.NEW.value, 0)
            found.append(
                MailboxSummary(number, name, bool(enabled), new, sum(by_status.values()) - new)
            )
        return sorted(found, key=lambda b: (len(b.number), b.number))

    def live_messages(self, number: str) -> list[MessageInfo] | None:
        """The live messages of `number`'s mailbox, enabled or not, newest first;
        None when `number` has no mailbox."""
        box = self._mailbox(number)
        if box is None:
            return None
        rows = (
            VoicemailMessage.select()
            .where((VoicemailMessage.mailbox == box.id) & (VoicemailMessage.status != _DELETED))
            .order_by(VoicemailMessage.received_at.desc(), VoicemailMessage.id.desc())
        )
        return [self._info(row) for row in rows.execute(self._db)]

    def message_in_file(self, number: str, name: str) -> MessageInfo | None:
        """The live message of `number`'s mailbox whose audio is the file `name` in the
        box's folder; None for anything else, a name that is no message file included."""
        if not _BOX_NAME.fullmatch(number) or not _MESSAGE_NAME.fullmatch(name):
            return None
        row: VoicemailMessage | None = (
            VoicemailMessage.select(VoicemailMessage)
            .join(Mailbox)
            .join(Extension)
            .where(
                (VoicemailMessage.filename == f"{number}/{name}")
                & (Extension.number == number)
                & (VoicemailMessage.status != _DELETED)
            )
            .first(self._db)
        )
        return None if row is None else self._info(row)

    # -- PIN -----------------------------------------------------------------------

    def set_pin(self, number: str, pin: str | None) -> None:
        """Set (or with None clear) the PIN; `StoreError` if it is not 4 to 10 digits."""
        pin_hash = None if pin is None else hash_password(check_pin(pin))
        box = self._mailbox(number)
        if box is None:
            raise NotFoundError(f"no mailbox {number}")
        with self._db.atomic():
            Mailbox.update(pin_hash=pin_hash).where(Mailbox.id == box.id).execute(self._db)

    def check_pin(self, number: str, pin: str) -> bool:
        """True when `pin` is the mailbox's PIN. A box without a PIN matches none: the
        mailbox application reads `MailboxView.has_pin` to decide whether to ask."""
        if not _PIN.fullmatch(pin):
            return False
        box = self._mailbox(number)
        if box is None or box.pin_hash is None:
            # As slow as a wrong PIN, so timing does not tell which mailboxes exist.
            return spend_verify_time(pin)
        return verify_password(pin, box.pin_hash)

    # -- recordings and messages ---------------------------------------------------

    def new_recording_path(self) -> Path:
        """A fresh path in the spool for the media engine to write one WAV to."""
        self._spool.mkdir(parents=True, exist_ok=True)
        # OS randomness, not an injected generator: a seeded one would repeat names
        # after a restart, and a repeated name overwrites.
        return self._spool / f"rec-{secrets.token_hex(8)}.wav"

    def discard_recording(self, recording_path: Path | str) -> None:
        """Drop a spooled recording nobody will store."""
        self._spooled(recording_path).unlink(missing_ok=True)

    def store_message(
        self,
        number: str,
        recording_path: Path | str,
        duration: float,
        caller: str,
        caller_name: str | None,
        urgent: bool,
        received_at: float,
    ) -> int | None:
        """Move a spooled recording into the mailbox as a new message; its id.

        None (and the recording dropped) when the mailbox is absent, disabled or full.
        """
        source = self._spooled(recording_path)
        if not (math.isfinite(received_at) and received_at >= 0):
            raise StoreError(f"received_at must be a Unix time, not {received_at!r}")
        box = self._mailbox(number)
        if box is None or not box.enabled or self._live_count(box.id) >= box.max_messages:
            logger.info("mailbox %s absent, disabled or full: message dropped", number)
            source.unlink(missing_ok=True)
            return None
        folder = self._ensure_box_dir(number)
        target = folder / f"msg-{round(received_at * 1000)}-{secrets.token_hex(6)}.wav"
        try:
            fsync_file(source)
        except FileNotFoundError:
            raise StoreError(f"recording {source} does not exist") from None
        os.replace(source, target)
        fsync_folder(folder)
        with self._db.atomic():
            message_id = VoicemailMessage.insert(
                mailbox=box.id,
                caller=caller[:MAX_CALLER],
                caller_name=None if caller_name is None else caller_name[:MAX_CALLER],
                received_at=received_at,
                duration=duration if math.isfinite(duration) and duration > 0 else 0.0,
                status=MessageStatus.NEW.value,
                urgent=urgent,
                filename=target.relative_to(self._root).as_posix(),
            ).execute(self._db)
        self._changed(number)
        return int(message_id)

    def set_status(self, number: str, message_id: int, status: MessageStatus) -> bool:
        """Change a message's status; DELETED removes its file and keeps the row.

        False when `number` has no such message or it is deleted already.
        """
        row = self._message_row(number, message_id)
        if row is None or row.status == _DELETED:
            return False
        if row.status == status.value:
            return True
        if status is MessageStatus.DELETED:
            path = self._root / row.filename
            path.unlink(missing_ok=True)
            fsync_folder(path.parent)
        with self._db.atomic():
            VoicemailMessage.update(status=status.value).where(
                VoicemailMessage.id == row.id
            ).execute(self._db)
        self._changed(number)
        return True

    # -- greetings -----------------------------------------------------------------

    def save_greeting(self, number: str, kind: GreetingKind, recording_path: Path | str) -> bool:
        """Make a spooled recording the mailbox's `kind` greeting, replacing any earlier
        one; False (and the recording dropped) when there is no such mailbox."""
        source = self._spooled(recording_path)
        if self._mailbox(number) is None:
            source.unlink(missing_ok=True)
            return False
        folder = self._ensure_box_dir(number)
        try:
            fsync_file(source)
        except FileNotFoundError:
            raise StoreError(f"recording {source} does not exist") from None
        os.replace(source, self._greeting_path(number, kind))
        fsync_folder(folder)
        return True

    def remove_greeting(self, number: str, kind: GreetingKind) -> bool:
        """Remove the `kind` greeting; False if there was none."""
        if self._mailbox(number) is None:
            return False
        path = self._greeting_path(number, kind)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_folder(path.parent)
        return True

    # -- start-up ------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """Make files and rows agree again after a crash or power cut.

        Empties the spool; removes temporary files; gives a message file without a
        row a row (caller "unknown", received_at from its name) if it is a usable WAV,
        else removes it; removes the file of a row marked deleted; marks deleted a
        live row whose file is gone; removes the folder of a mailbox that no longer
        exists. Run it before the first call is taken.
        """
        report = ReconcileReport()
        self._root.mkdir(parents=True, exist_ok=True)
        self._spool.mkdir(exist_ok=True)
        for entry in self._spool.iterdir():
            _remove(entry)
            report.spool_removed += 1
        if report.spool_removed:
            fsync_folder(self._spool)
        boxes = {
            number: box_id
            for box_id, number in Mailbox.select(Mailbox.id, Extension.number)
            .join(Extension)
            .tuples()
            .execute(self._db)
        }
        rows = {
            filename: (message_id, box_id, status)
            for message_id, box_id, status, filename in VoicemailMessage.select(
                VoicemailMessage.id,
                VoicemailMessage.mailbox,
                VoicemailMessage.status,
                VoicemailMessage.filename,
            )
            .tuples()
            .execute(self._db)
        }
        present: set[str] = set()
        adopt: list[dict[str, object]] = []
        root_changed = False
        for entry in sorted(self._root.iterdir()):
            if entry.name == SPOOL or entry.is_symlink():
                continue
            if entry.is_file() and _is_temp(entry.name):
                logger.warning("removing temporary file %s", entry)
                entry.unlink()
                report.temp_removed += 1
                root_changed = True
            elif entry.is_dir() and entry.name in boxes:
                present |= self._scan_box(entry, boxes[entry.name], rows, adopt, report)
            elif entry.is_dir() and _BOX_NAME.fullmatch(entry.name):
                logger.warning("removing %s: its mailbox no longer exists", entry)
                shutil.rmtree(entry)
                report.orphan_boxes_removed += 1
                root_changed = True
        if root_changed:
            fsync_folder(self._root)
        missing = [
            (message_id, box_id, filename)
            for filename, (message_id, box_id, status) in rows.items()
            if status != _DELETED and filename not in present
        ]
        for _, _, filename in missing:
            logger.warning("message file %s is gone: marking its row deleted", filename)
        with self._db.atomic():
            if adopt:
                VoicemailMessage.insert_many(adopt).execute(self._db)
            ids = [message_id for message_id, _, _ in missing]
            for start in range(0, len(ids), _SQL_CHUNK):
                VoicemailMessage.update(status=_DELETED).where(
                    VoicemailMessage.id.in_(ids[start : start + _SQL_CHUNK])
                ).execute(self._db)
        report.adopted = len(adopt)
        report.rows_marked_deleted = len(missing)
        changed_ids = {box_id for _, box_id, _ in missing} | {row["mailbox"] for row in adopt}
        for number, box_id in sorted(boxes.items()):
            if box_id in changed_ids:
                self._changed(number)
        logger.log(logging.WARNING if report.changed else logging.DEBUG, "reconciled: %s", report)
        return report

    def _scan_box(
        self,
        folder: Path,
        box_id: int,
        rows: dict[str, tuple[int, int, str]],
        adopt: list[dict[str, object]],
        report: ReconcileReport,
    ) -> set[str]:
        """Settle the files of one mailbox folder; the message files that have a live row."""
        present: set[str] = set()
        removed = False
        for entry in sorted(folder.iterdir()):
            name = entry.name
            filename = f"{folder.name}/{name}"
            if entry.is_symlink() or not entry.is_file() or name in _GREETING_NAMES:
                continue
            if _is_temp(name):
                logger.warning("removing temporary file %s", entry)
                entry.unlink()
                report.temp_removed += 1
                removed = True
                continue
            match = _MESSAGE_NAME.fullmatch(name)
            if match is None:
                logger.warning("leaving unknown file %s alone", entry)
                continue
            row = rows.get(filename)
            if row is not None and row[2] != _DELETED:
                present.add(filename)
                continue
            if row is not None:
                logger.warning("removing %s: its message was deleted", entry)
                entry.unlink()
                report.stale_removed += 1
                removed = True
                continue
            seconds = wav_seconds(entry)
            if seconds is None:
                logger.warning("removing %s: no row and not a usable WAV file", entry)
                entry.unlink()
                report.invalid_removed += 1
                removed = True
                continue
            logger.warning("adopting %s: a message file without a row", entry)
            adopt.append(
                {
                    "mailbox": box_id,
                    "caller": UNKNOWN_CALLER,
                    "caller_name": None,
                    "received_at": int(match[1]) / 1000,
                    "duration": seconds,
                    "status": MessageStatus.NEW.value,
                    "urgent": False,
                    "filename": filename,
                }
            )
        if removed:
            fsync_folder(folder)
        return present

    # -- helpers -------------------------------------------------------------------

    def _changed(self, number: str) -> None:
        if self._on_change is not None:
            self._on_change(number)

    def _mailbox(self, number: str) -> Mailbox | None:
        box: Mailbox | None = (
            Mailbox.select(Mailbox, Extension)
            .join(Extension)
            .where(Extension.number == number)
            .first(self._db)
        )
        return box

    def _message_row(self, number: str, message_id: int) -> VoicemailMessage | None:
        row: VoicemailMessage | None = (
            VoicemailMessage.select(VoicemailMessage)
            .join(Mailbox)
            .join(Extension)
            .where((VoicemailMessage.id == message_id) & (Extension.number == number))
            .first(self._db)
        )
        return row

    def _live_count(self, box_id: int) -> int:
        count: int = (
            VoicemailMessage.select()
            .where((VoicemailMessage.mailbox == box_id) & (VoicemailMessage.status != _DELETED))
            .count(self._db)
        )
        return count

    def _info(self, row: VoicemailMessage) -> MessageInfo:
        return MessageInfo(
            id=row.id,
            caller=row.caller,
            caller_name=row.caller_name,
            received_at=row.received_at,
            duration=row.duration,
            status=MessageStatus(row.status),
            urgent=bool(row.urgent),
            recording=Recording(str(self._root / row.filename)),
        )

    def _box_dir(self, number: str) -> Path:
        return self._root / check_number(number)  # digits only: safe as a folder name

    def _ensure_box_dir(self, number: str) -> Path:
        folder = self._box_dir(number)
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            fsync_folder(self._root)
        return folder

    def _greeting_path(self, number: str, kind: GreetingKind) -> Path:
        return self._box_dir(number) / f"greet-{kind.value}.wav"

    def _spooled(self, recording_path: Path | str) -> Path:
        """`recording_path` if it names a file in the spool, else `StoreError`.

        Only spooled recordings are moved or removed, so a bad Recording (say, one
        naming another mailbox's message) can never move or delete a stored file.
        """
        path = Path(recording_path)
        if not path.name or path.name in (".", "..") or path.parent.resolve() != self._spool:
            raise StoreError(f"{recording_path} is not a recording in {self._spool}")
        return self._spool / path.name


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
