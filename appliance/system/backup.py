"""Backup archives of the data folder: making one and checking one (``restore`` stages a
checked one and puts it in place at start-up).

An archive is one gzip-compressed POSIX (pax) tar file::

    yakyak.db        a copy made with SQLite's online backup API, in journal_mode=DELETE
    yakyak.toml      the configuration
    web-tls.pem      the web UI's certificate and private key, when there is one
    prompts/... moh/... voicemail/...    custom prompts, music on hold, mailboxes
    manifest.json    format version, YakYak version, time, and SHA-256 and size of
                     every other member; written last, from the bytes as they went out

Why tar.gz and not zip: it is written and read in one forward pass, so every hash is
taken from the bytes as they stream through, nothing is read twice or held in memory,
and an upload needs no seeking; tarfile names each member's type, so links and device
files are refused by looking; and `tar xzf` opens it on any Linux box for a recovery
by hand.

Why the private key is in it: the archive already holds secrets of the same weight
(each extension's digest HA1 is enough to register as it, plus the web password hashes
and the voicemail), so it must be kept like a password whatever we leave out. Leaving
the key out would protect little, and would make a restored box present another
certificate: every browser and phone that trusted the old one would balk, and an
uploaded, paid-for certificate would be lost.

Restoring never swaps files under a running PBX (the SIP core and the web threads hold
the database open). An upload is checked completely while it is unpacked into a
temporary folder beside the data, then fsync'd and renamed to ``restore-pending``; a
bad archive leaves nothing behind. `apply_pending_restore`, called by the composition
root before it opens the database, moves it into place:

1. `begin_restore`: an empty ``restore-previous`` is made, then ``restore-pending`` is
   renamed ``restore-applying``. That rename is the commit point: before it the old
   state stands and the restore is still pending; after it every start rolls forward.
2. `swap_item`, per item: the current one (the database with its -wal and -shm) is
   renamed into ``restore-previous``, then the new one out of ``restore-applying``.
   Each step is idempotent, so a crash anywhere is finished by the next start before
   anything reads the data.
3. `finish_restore`: ``restore-applying`` is removed.

``restore-previous`` keeps the old state until `discard_previous_state` is called once
the restored state has started. To roll back by hand, stop YakYak and move its items
back into the data folder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import ssl
import tarfile
import tempfile
import tomllib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, Final, TypeGuard, cast

from appliance.config import CONFIG_FILE, DATABASE_FILE, Config, ConfigError
from appliance.store.migrations import CURRENT_VERSION

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
TLS_FILE: Final = "web-tls.pem"  # appliance.web.tls.TLS_FILE; a test keeps the two equal
FOLDERS: Final = ("prompts", "moh", "voicemail")
TOP_FILES: Final = (DATABASE_FILE, CONFIG_FILE, TLS_FILE)
ITEMS: Final = (*TOP_FILES, *FOLDERS)  # what a restore replaces, in this order
SECRET_FILES: Final = frozenset(TOP_FILES)  # unpacked readable by the owner only
PENDING: Final = "restore-pending"
APPLYING: Final = "restore-applying"
PREVIOUS: Final = "restore-previous"
# SQLite's companions of the database: they belong to the old file and go with it.
DB_SIDECARS: Final = tuple(DATABASE_FILE + s for s in ("-wal", "-shm", "-journal"))
TEMP_PREFIXES: Final = (".backup-", ".restore-upload-", ".restore-discard-")
MEDIA_TYPE: Final = "application/gzip"
CHUNK: Final = 1 << 20
MAX_DEPTH: Final = 6  # parts below a folder; voicemail/101/msg-....wav has 2
MAX_NAME: Final = 512
MAX_MANIFEST: Final = 16 << 20
# Tar headers, pax records and padding on top of the member data a budget allows.
HEADER_ALLOWANCE: Final = 64 << 20
# A path part: no leading dot (hidden and temporary files, "." and ".."), no slash or
# backslash, nothing a shell or a browser's file name would mangle.
_PART: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
_TEMP_SUFFIXES: Final = (".tmp", ".part")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_SQLITE_HEADER: Final = b"SQLite format 3\x00"


class BackupError(Exception):
    """An archive refused, or a backup that could not be made; the message says why."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_expanded: int = 2 << 30  # bytes of member data, whatever the disk has free
    max_members: int = 100_000
    reserve: int = 64 << 20  # disk space that staging a restore must leave free


@dataclass(frozen=True, slots=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    format: int
    yakyak_version: str
    created_at: float  # Unix time
    schema_version: int  # PRAGMA user_version of the database copy
    files: dict[str, FileEntry]

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files.values())

    def to_json(self) -> bytes:
        document = {
            "format": self.format,
            "yakyak_version": self.yakyak_version,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
            "files": {
                name: {"sha256": e.sha256, "size": e.size} for name, e in sorted(self.files.items())
            },
        }
        return json.dumps(document, indent=1).encode() + b"\n"

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        """The manifest in `raw`; BackupError naming the first thing wrong."""
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BackupError("manifest.json is not valid JSON") from None
        if not isinstance(document, dict):
            raise BackupError("manifest.json is not a JSON object")
        version = document.get("format")
        if not _is_int(version):
            raise BackupError("manifest.json has no format version")
        if version != FORMAT_VERSION:
            raise BackupError(
                f"the archive has manifest format {version}; this YakYak reads format "
                f"{FORMAT_VERSION} only (a newer YakYak made it?)"
            )
        made_by = document.get("yakyak_version")
        created = document.get("created_at")
        schema = document.get("schema_version")
        files = document.get("files")
        if not isinstance(made_by, str) or len(made_by) > 64:
            raise BackupError("manifest.json: yakyak_version must be a short string")
        if isinstance(created, bool) or not isinstance(created, int | float) or created < 0:
            raise BackupError("manifest.json: created_at must be a Unix time")
        if not _is_int(schema):
            raise BackupError("manifest.json: schema_version must be an integer")
        if not isinstance(files, dict):
            raise BackupError("manifest.json: files must be an object")
        entries = {}
        for name, entry in files.items():
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            size = entry.get("size") if isinstance(entry, dict) else None
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise BackupError(f"manifest.json: {name}: sha256 must be 64 hex digits")
            if not _is_int(size) or size < 0:
                raise BackupError(f"manifest.json: {name}: size must be an integer >= 0")
            entries[str(name)] = FileEntry(digest, size)
        return cls(version, made_by, float(created), schema, entries)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def installed_version() -> str:
    try:
        return metadata.version("yakyak")
    except metadata.PackageNotFoundError:  # running from a tree that was never installed
        return "0"


def member_parts(name: str, *, folder_ok: bool = False) -> tuple[str, ...] | None:
    """The path parts of an archive member name we accept, or None.

    Top-level files by name; below prompts/, moh/ and voicemail/ plain names only, so
    no absolute path, "..", hidden or temporary file ever gets through. A bare folder
    name passes only as a directory entry (`folder_ok`).
    """
    if not name or len(name) > MAX_NAME or "\\" in name:
        return None
    parts = tuple(name.split("/"))
    if len(parts) == 1:
        if name in (MANIFEST, *TOP_FILES) or (folder_ok and name in FOLDERS):
            return parts
        return None
    if parts[0] not in FOLDERS or len(parts) - 1 > MAX_DEPTH:
        return None
    for part in parts[1:]:
        if not _PART.fullmatch(part) or part.endswith(_TEMP_SUFFIXES):
            return None
    return parts


# -- making a backup -----------------------------------------------------------------


def snapshot_database(source: Path, target: Path) -> int:
    """Copy the live database at `source` to `target`; its schema version.

    SQLite's online backup API in one step (pages=-1) copies one consistent snapshot
    while the SIP core and the writer threads keep committing (WAL readers do not
    block them). The copy is switched to journal_mode=DELETE so it is one
    self-contained file; open_database turns WAL back on after a restore.
    """
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    src = sqlite3.connect(source, timeout=5.0)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=-1)
            mode = dst.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise BackupError(f"the database copy stayed in journal mode {mode}")
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    return version


class _HashingReader:
    """A file read through once, hashing what tarfile copies out of it."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.digest.update(data)
        return data


def _tarinfo(name: str, size: int, mtime: float, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, name: str, path: Path, files: dict[str, FileEntry]) -> None:
    """Add the file at `path`; the size is taken from the open file, so a file replaced
    by rename meanwhile is read whole from its old inode."""
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        mode = 0o600 if name in SECRET_FILES else 0o644
        reader = _HashingReader(f)
        # cast: tarfile only ever calls read() on it.
        tar.addfile(_tarinfo(name, st.st_size, st.st_mtime, mode), cast(BinaryIO, reader))
    files[name] = FileEntry(reader.digest.hexdigest(), st.st_size)


def _walk(folder: Path, prefix: str, skipped: list[str]) -> Iterator[tuple[str, Path]]:
    """(member name, path) of the regular files under `folder`, sorted; files a
    restore would refuse (hidden, temporary, odd names, links) are skipped."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in sorted(folder.iterdir()):
        name = f"{prefix}/{entry.name}"
        if entry.name.startswith(".") or entry.name.endswith(_TEMP_SUFFIXES):
            continue  # the voicemail spool, atomic writers' temporary files
        if entry.is_symlink() or member_parts(name) is None:
            skipped.append(name)
        elif entry.is_dir():
            yield from _walk(entry, name, skipped)
        elif entry.is_file():
            yield name, entry
        else:
            skipped.append(name)


def create_backup(
    data_dir: Path, out: BinaryIO, *, now: float, version: str | None = None
) -> tuple[Manifest, list[str]]:
    """Write the archive of `data_dir` to `out`; its manifest and the names skipped.

    The database is copied first and the folders walked after: a message stored in
    between is a file without a row, which the voicemail store adopts at start-up,
    rather than a row without its audio.
    """
    work = Path(tempfile.mkdtemp(prefix=TEMP_PREFIXES[0], dir=data_dir))
    try:
        copy = work / DATABASE_FILE
        schema = snapshot_database(data_dir / DATABASE_FILE, copy)
        files: dict[str, FileEntry] = {}
        skipped: list[str] = []
        # Level 6: most of the ratio of 9 at half the CPU, which matters on a Pi.
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=int(now)) as zipped:
            with tarfile.open(fileobj=zipped, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_file(tar, DATABASE_FILE, copy, files)
                for name in (CONFIG_FILE, TLS_FILE):
                    path = data_dir / name
                    if path.is_file() and not path.is_symlink():
                        _add_file(tar, name, path, files)
                for folder in FOLDERS:
                    for name, path in _walk(data_dir / folder, folder, skipped):
                        try:
                            _add_file(tar, name, path, files)
                        except FileNotFoundError:
                            continue  # deleted while we walked (a voicemail, say)
                manifest = Manifest(
                    FORMAT_VERSION, version or installed_version(), now, schema, files
                )
                data = manifest.to_json()
                tar.addfile(_tarinfo(MANIFEST, len(data), now, 0o644), io.BytesIO(data))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in skipped:
        log.warning("backup: skipped %s (a link, or a name a restore would refuse)", name)
    return manifest, skipped


def open_backup(
    data_dir: Path, *, now: float, version: str | None = None
) -> tuple[BinaryIO, int, Manifest]:
    """A new archive in an open file at offset 0, its size and manifest.

    The file lives in the data folder (the same disk, not a RAM-backed /tmp) and is
    unlinked at once: it vanishes when closed, however the download ends.
    """
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIXES[0], suffix=".tar.gz", dir=data_dir)
    os.unlink(name)
    f = os.fdopen(fd, "w+b")
    try:
        manifest, _ = create_backup(data_dir, f, now=now, version=version)
        size = f.tell()
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f, size, manifest


# -- checking an archive -------------------------------------------------------------


class _BoundedReader:
    """The decompressed archive, read forward only and never past `budget` bytes.

    tarfile reads a pax or GNU long-name header whole, with one read of its declared
    size: refusing a read that would pass the budget stops a header claiming
    gigabytes before any of it is allocated.
    """

    def __init__(self, raw: BinaryIO, budget: int) -> None:
        self._raw = raw
        self._budget = budget
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0 or self._position + size > self._budget:
            raise BackupError(
                f"the archive expands past {_size(self._budget)}: a member or header is too large"
            )
        data = self._raw.read(size)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self._position:
            raise BackupError("the archive cannot be read in one pass")
        while self._position < offset:
            if not self.read(min(CHUNK, offset - self._position)):
                break  # past the end: tarfile's next read sees it
        return self._position


def _size(n: int) -> str:
    """Bytes for people: 2.1 GB (decimal units, as disks are sold)."""
    if n < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} GB"


def _check_member(member: tarfile.TarInfo) -> tuple[str, ...]:
    name = member.name
    shown = repr(name) if len(name) <= 80 else repr(name[:80] + "...")
    if member.issym() or member.islnk():
        raise BackupError(f"member {shown} is a link; a backup holds only plain files")
    if member.ischr() or member.isblk() or member.isfifo():
        raise BackupError(f"member {shown} is a device or FIFO; a backup holds only plain files")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
        raise BackupError(f"member {shown} is of an unknown kind; a backup holds only plain files")
    if name.startswith("/") or ".." in name.split("/"):
        raise BackupError(f"member {shown} points outside the data folder")
    parts = member_parts(name, folder_ok=member.isdir())
    if parts is None:
        raise BackupError(
            f"member {shown} is not part of a YakYak backup (expected {', '.join(TOP_FILES)}, "
            f"{MANIFEST} or files under {', '.join(f + '/' for f in FOLDERS)})"
        )
    return parts


def _unpack(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> FileEntry:
    """Copy one member to `target` (created afresh, never through a link); its hash."""
    source = tar.extractfile(member)
    if source is None:
        raise BackupError(f"member {member.name!r} has no content")
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if member.name in SECRET_FILES else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        remaining = member.size
        while remaining:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                raise BackupError(f"the archive is truncated inside {member.name}")
            digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return FileEntry(digest.hexdigest(), member.size)


def _make_folder(path: Path, name: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BackupError(f"member {name} clashes with another member") from None


def _too_big(total: int, cap: int, limits: Limits, free: int) -> BackupError:
    if cap == limits.max_expanded:
        return BackupError(
            f"the archive expands past {_size(limits.max_expanded)}, the most a restore takes"
        )
    return BackupError(
        f"the archive needs more than {_size(total - 1)} of disk space, and only "
        f"{_size(free)} is free (less {_size(limits.reserve)} kept in reserve)"
    )


def unpack_archive(
    source: BinaryIO, staging: Path, limits: Limits, free_bytes: int
) -> tuple[Manifest, bytes]:
    """Unpack `source` into the empty folder `staging`, checking each member's kind,
    name and size on the way; the manifest (parsed and raw). Hashes are checked after."""
    cap = min(limits.max_expanded, max(0, free_bytes - limits.reserve))
    unpacked: dict[str, FileEntry] = {}
    raw_manifest: bytes | None = None
    total = count = 0
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as unzipped:
            # casts: GzipFile reads like a BinaryIO; tarfile needs only read, seek and tell.
            reader = _BoundedReader(cast(BinaryIO, unzipped), cap + HEADER_ALLOWANCE)
            with tarfile.open(fileobj=cast(BinaryIO, reader), mode="r:") as tar:
                while (member := tar.next()) is not None:
                    count += 1
                    if count > limits.max_members:
                        raise BackupError(f"the archive has more than {limits.max_members} members")
                    parts = _check_member(member)
                    if member.isdir():
                        _make_folder(staging.joinpath(*parts), member.name)
                        continue
                    if member.name in unpacked or (
                        member.name == MANIFEST and raw_manifest is not None
                    ):
                        raise BackupError(f"member {member.name} appears twice")
                    total += member.size
                    if total > cap:
                        raise _too_big(total, cap, limits, free_bytes)
                    if member.name == MANIFEST:
                        if member.size > MAX_MANIFEST:
                            raise BackupError(f"{MANIFEST} is larger than {_size(MAX_MANIFEST)}")
                        content = tar.extractfile(member)
                        raw_manifest = b"" if content is None else content.read(member.size)
                        if len(raw_manifest) != member.size:
                            raise BackupError(f"the archive is truncated inside {MANIFEST}")
                        continue
                    try:
                        unpacked[member.name] = _unpack(tar, member, staging.joinpath(*parts))
                    except (FileExistsError, NotADirectoryError, IsADirectoryError):
                        raise BackupError(
                            f"member {member.name} clashes with another member"
                        ) from None
    except EOFError:
        raise BackupError("the archive is truncated: it ends before its last member") from None
    except tarfile.ReadError as exc:
        if "unexpected end" in str(exc):
            raise BackupError("the archive is truncated: it ends inside a member") from None
        raise BackupError(f"not a readable .tar.gz archive: {exc}") from None
    except (tarfile.TarError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError(f"not a readable .tar.gz archive: {exc}") from None
    if raw_manifest is None:
        raise BackupError(f"{MANIFEST} is missing: this is not a YakYak backup")
    manifest = Manifest.parse(raw_manifest)
    extra = sorted(set(unpacked) - set(manifest.files))
    if extra:
        raise BackupError(f"member {extra[0]} is not listed in {MANIFEST}")
    missing = sorted(set(manifest.files) - set(unpacked))
    if missing:
        raise BackupError(f"{MANIFEST} lists {missing[0]}, which the archive lacks")
    for name in sorted(unpacked):
        if unpacked[name] != manifest.files[name]:
            raise BackupError(
                f"{name}: its SHA-256 or size does not match {MANIFEST}: "
                "the archive was altered or damaged"
            )
    return manifest, raw_manifest


def check_database(path: Path) -> int:
    """The schema version of the database copy at `path`, checked; BackupError if refused."""
    if not path.is_file():
        raise BackupError(f"{DATABASE_FILE} is missing")
    with path.open("rb") as f:
        if f.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            raise BackupError(f"{DATABASE_FILE} is not an SQLite database")
    try:
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA trusted_schema=OFF")  # run no SQL the file defines
            rows = connection.execute("PRAGMA integrity_check(5)").fetchall()
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{DATABASE_FILE} does not open: {exc}") from None
    finally:
        for sidecar in DB_SIDECARS:  # made by this look only (the archive has none)
            path.with_name(sidecar).unlink(missing_ok=True)
    found = [line for row in rows for line in str(row[0]).splitlines()]
    if found != ["ok"]:
        problems = "; ".join(line for line in found if not line.startswith("***"))
        raise BackupError(f"{DATABASE_FILE} fails PRAGMA integrity_check: {problems[:300]}")
    if version > CURRENT_VERSION:
        raise BackupError(
            f"{DATABASE_FILE} has schema version {version}, newer than this YakYak's "
            f"{CURRENT_VERSION}: update YakYak before restoring this backup"
        )
    if version < 1:
        raise BackupError(f"{DATABASE_FILE} is not a YakYak database (schema version 0)")
    return version


def check_config(path: Path, data_dir: Path) -> None:
    if not path.is_file():
        raise BackupError(f"{CONFIG_FILE} is missing")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{CONFIG_FILE} is not valid TOML: {exc}") from None
    try:
        Config.from_document(document, data_dir, CONFIG_FILE)
    except ConfigError as exc:
        raise BackupError(str(exc)) from None


def check_certificate(path: Path) -> None:
    if not path.exists():
        return  # optional: the current certificate is kept
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(path))
    except ssl.SSLError as exc:
        raise BackupError(f"{TLS_FILE}: OpenSSL refuses the certificate and key: {exc}") from None


def write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def check_archive(
    source: BinaryIO, staging: Path, data_dir: Path, limits: Limits, free_bytes: int
) -> Manifest:
    """Unpack and check everything; the manifest, or BackupError and `staging` to discard."""
    manifest, raw = unpack_archive(source, staging, limits, free_bytes)
    check_database(staging / DATABASE_FILE)
    check_config(staging / CONFIG_FILE, data_dir)
    check_certificate(staging / TLS_FILE)
    write_new(staging / MANIFEST, raw)
    for folder in FOLDERS:  # every item exists, so a restore empties a folder the backup had empty
        (staging / folder).mkdir(exist_ok=True)
    return manifest
