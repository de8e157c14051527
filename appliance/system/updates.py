"""The files through which the unprivileged PBX asks root for software updates and SSH.

yakyak.service runs as its own user with no privileges, so it cannot install an update,
reboot the box or start sshd. It writes requests into its data folder instead, and small
root units (systemd path units on the image: yakyak-update.path, yakyak-ssh.path) act on
them and write back what happened. Everything lives under ``DATA/update/``:

    bundle.raucb    the uploaded RAUC bundle (written as bundle.raucb.part, then renamed)
    request.json    written last, after the bundle: root's trigger to install it
    running.json    the request root has taken (request.json renamed)
    result.json     root's answer: installing, installed (rebooting) or failed, and why
    trial.json      root: the slot an update went into, until it booted healthy
    status.json     root, every boot: the booted slot, each slot's version and health,
                    the last update and the last rollback

and for SSH ``DATA/ssh-enabled`` (exists: SSH runs) with ``DATA/ssh-switch`` rewritten on
every change so the path unit notices a removal too, and ``DATA/ssh-authorized-keys``: the
public keys the installer gave, which root copies to sshd's authorized_keys when SSH goes
on. Root copies that file as it is, so only checked key lines are ever written to it (see
`parse_authorized_keys`).

Files root writes are read defensively: a missing or damaged file reads as "nothing known".
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from appliance.system.files import fsync_folder

UPDATE_FOLDER = "update"
BUNDLE = "bundle.raucb"
REQUEST = "request.json"
RUNNING = "running.json"
RESULT = "result.json"
TRIAL = "trial.json"
STATUS = "status.json"
SSH_ENABLED = "ssh-enabled"
SSH_SWITCH = "ssh-switch"
SSH_AUTHORIZED_KEYS = "ssh-authorized-keys"
MAX_AUTHORIZED_KEYS = 20
MAX_AUTHORIZED_KEYS_TEXT = 16 << 10  # characters, comments and blank lines included
# Key types sshd takes as user keys, and how many length-prefixed strings the key blob
# holds (its type name first): RFC 8709 §4 (Ed25519), RFC 4253 §6.6 (RSA: e, n),
# RFC 5656 §3.1 (ECDSA: curve, point), and OpenSSH's PROTOCOL.u2f for the security-key
# types, which add the application ("ssh:"). DSA and certificates are left out.
SSH_KEY_FIELDS: Final[dict[str, int]] = {
    "ssh-ed25519": 2,
    "ssh-rsa": 3,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
}
ED25519_KEY_SIZE = 32  # RFC 8032 §5.1.5
# A RAUC bundle is a squashfs image: its first four bytes.
SQUASHFS_MAGIC = b"hsqs"


class UpdateState(StrEnum):
    QUEUED = "queued"  # the web wrote the request; root has not taken it yet
    INSTALLING = "installing"
    INSTALLED = "installed"  # into the other slot; the box reboots into it
    FAILED = "failed"  # refused or failed; nothing changed


@dataclass(frozen=True)
class UpdateRequest:
    id: str
    requested_by: str
    size: int
    time: float


@dataclass(frozen=True)
class UpdateResult:
    id: str
    state: UpdateState
    message: str
    time: float
    slot: str = ""  # the slot installed into (bootname), when known


@dataclass(frozen=True)
class Trial:
    """An update's slot until it boots healthy (trial.json)."""

    slot: str  # bootname
    version: str
    id: str  # the update request's
    time: float
    failure: str = ""  # why its health check failed, for the rollback notice


@dataclass(frozen=True)
class SlotInfo:
    name: str  # RAUC's slot name, rootfs.0
    bootname: str  # A or B
    booted: bool
    boot_status: str  # good, bad, or "" when unknown
    version: str  # the bundle version installed there, "" for the factory image
    installed: str  # when (RAUC's timestamp text), "" if never by an update


@dataclass(frozen=True)
class Rollback:
    from_slot: str
    version: str
    time: float
    reason: str


@dataclass(frozen=True)
class SystemStatus:
    booted: str  # bootname of the running slot, "" outside an A/B system
    slots: tuple[SlotInfo, ...] = ()
    last_update: UpdateResult | None = None
    rollback: Rollback | None = None
    health: str = ""  # what the health check concluded this boot
    time: float = field(default=0.0)


class UpdateBusy(Exception):
    """An update is already queued or being installed."""


class Readable(Protocol):
    """Where an upload comes from: a file, or a request body read in chunks."""

    def read(self, size: int, /) -> bytes: ...


def size_text(size: int) -> str:
    """A byte count as people read it: MiB from one MiB up, bytes below."""
    return f"{size // (1 << 20)} MiB" if size >= 1 << 20 else f"{size} bytes"


def write_text(path: Path, text: str) -> None:
    """Write-then-rename with fsyncs: the old file or the new one after a power cut."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    fsync_folder(path.parent)


def write_json(path: Path, value: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return value if isinstance(value, dict) else None


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key, "")
    return value if isinstance(value, str) else ""


def _float(d: Mapping[str, Any], key: str) -> float:
    """A finite number or 0.0: JSON allows integers beyond any float, and Python's json
    reads NaN and Infinity, none of which a page can show as a time."""
    value = d.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _request(d: Mapping[str, Any] | None) -> UpdateRequest | None:
    if d is None or not _str(d, "id"):
        return None
    size = d.get("size", 0)
    return UpdateRequest(
        id=_str(d, "id"),
        requested_by=_str(d, "requested_by"),
        size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
        time=_float(d, "time"),
    )


def _result(d: Mapping[str, Any] | None) -> UpdateResult | None:
    if d is None or not _str(d, "id"):
        return None
    try:
        state = UpdateState(_str(d, "state"))
    except ValueError:
        return None
    return UpdateResult(
        id=_str(d, "id"),
        state=state,
        message=_str(d, "message"),
        time=_float(d, "time"),
        slot=_str(d, "slot"),
    )


def _slot(d: Mapping[str, Any]) -> SlotInfo:
    return SlotInfo(
        name=_str(d, "name"),
        bootname=_str(d, "bootname"),
        booted=d.get("booted") is True,
        boot_status=_str(d, "boot_status"),
        version=_str(d, "version"),
        installed=_str(d, "installed"),
    )


def status_from_dict(d: Mapping[str, Any] | None) -> SystemStatus | None:
    if d is None:
        return None
    slots = d.get("slots", [])
    rollback = d.get("rollback")
    last = d.get("last_update")
    return SystemStatus(
        booted=_str(d, "booted"),
        slots=tuple(_slot(s) for s in slots if isinstance(s, dict))
        if isinstance(slots, list)
        else (),
        last_update=_result(last) if isinstance(last, dict) else None,
        rollback=Rollback(
            from_slot=_str(rollback, "from_slot"),
            version=_str(rollback, "version"),
            time=_float(rollback, "time"),
            reason=_str(rollback, "reason"),
        )
        if isinstance(rollback, dict)
        else None,
        health=_str(d, "health"),
        time=_float(d, "time"),
    )


class UpdateFolder:
    """``DATA/update/``: both sides of the update hand-over (see the module text)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / UPDATE_FOLDER

    def _file(self, name: str) -> Path:
        return self.path / name

    @property
    def bundle(self) -> Path:
        return self._file(BUNDLE)

    # --- the web's side (user yakyak) ---

    def pending(self) -> UpdateRequest | None:
        """The request queued or being installed, if any."""
        return _request(read_json(self._file(REQUEST))) or _request(read_json(self._file(RUNNING)))

    def receive_bundle(self, source: Readable, limit: int, chunk: int = 1 << 20) -> int:
        """Copy an uploaded bundle into place; returns its size.

        Raises UpdateBusy while another update is queued or installing, ValueError when the
        upload is larger than ``limit`` or is not a bundle at all (RAUC checks signatures
        later; this only saves the box from queueing garbage). A failed upload leaves
        neither a bundle nor its .part behind."""
        if self.pending() is not None:
            raise UpdateBusy("an update is already being installed")
        self.path.mkdir(parents=True, exist_ok=True)
        # Nothing is pending, so a bundle still here is a leftover nobody will install
        # (the web stopped between upload and request): it only holds disk space.
        self.bundle.unlink(missing_ok=True)
        part = self._file(BUNDLE + ".part")
        size = 0
        head = b""  # the first bytes, however few each read returns
        try:
            with open(part, "wb") as out:
                while True:
                    block = source.read(chunk)
                    if not block:
                        break
                    if len(head) < len(SQUASHFS_MAGIC):
                        head = (head + block)[: len(SQUASHFS_MAGIC)]
                        if not SQUASHFS_MAGIC.startswith(head):
                            raise ValueError("this is not a YakYak update bundle (.raucb)")
                    size += len(block)
                    if size > limit:
                        raise ValueError(f"the bundle is larger than {size_text(limit)}")
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise ValueError("the upload is empty")
            if head != SQUASHFS_MAGIC:
                raise ValueError("this is not a YakYak update bundle (.raucb)")
            os.replace(part, self.bundle)
            fsync_folder(self.path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return size

    def request_install(self, requested_by: str, now: float | None = None) -> UpdateRequest:
        """Queue the received bundle for root to install (the path unit's trigger);
        ``now`` is the request's time (the web passes its clock)."""
        if self.pending() is not None:
            raise UpdateBusy("an update is already being installed")
        if not self.bundle.is_file():
            raise FileNotFoundError("no bundle was uploaded")
        req = UpdateRequest(
            id=secrets.token_hex(8),
            requested_by=requested_by,
            size=self.bundle.stat().st_size,
            time=time.time() if now is None else now,
        )
        write_json(
            self._file(RESULT), asdict(UpdateResult(req.id, UpdateState.QUEUED, "", req.time))
        )
        write_json(self._file(REQUEST), asdict(req))
        return req

    def result(self) -> UpdateResult | None:
        return _result(read_json(self._file(RESULT)))

    def status(self) -> SystemStatus | None:
        return status_from_dict(read_json(self._file(STATUS)))

    # --- root's side (yakyak update apply / health) ---

    def take_request(self) -> UpdateRequest | None:
        """Claim the queued request (request.json becomes running.json)."""
        req = _request(read_json(self._file(REQUEST)))
        if req is None:
            self._file(REQUEST).unlink(missing_ok=True)
            return None
        os.replace(self._file(REQUEST), self._file(RUNNING))
        fsync_folder(self.path)
        return req

    def finish_request(self) -> None:
        """The installation is over (either way): the bundle and the claim go."""
        for name in (RUNNING, BUNDLE):
            self._file(name).unlink(missing_ok=True)
        fsync_folder(self.path)

    def write_result(self, result: UpdateResult) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self._file(RESULT), asdict(result))

    def trial(self) -> Trial | None:
        d = read_json(self._file(TRIAL))
        if d is None or not _str(d, "slot"):
            return None
        return Trial(
            slot=_str(d, "slot"),
            version=_str(d, "version"),
            id=_str(d, "id"),
            time=_float(d, "time"),
            failure=_str(d, "failure"),
        )

    def set_trial(self, trial: Trial) -> None:
        write_json(self._file(TRIAL), asdict(trial))

    def clear_trial(self) -> None:
        self._file(TRIAL).unlink(missing_ok=True)
        fsync_folder(self.path)

    def write_status(self, status: SystemStatus) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self._file(STATUS), asdict(status))


def _blob_fields(blob: bytes) -> list[bytes]:
    """The length-prefixed strings (RFC 4251 §5 "string", "mpint") a key blob is made of;
    ValueError when a length runs past the end."""
    fields: list[bytes] = []
    at = 0
    while at < len(blob):
        if len(blob) - at < 4:
            raise ValueError("cut short")
        size = int.from_bytes(blob[at : at + 4], "big")
        at += 4
        if size > len(blob) - at:
            raise ValueError("cut short")
        fields.append(blob[at : at + size])
        at += size
    return fields


def _key_problem(kind: str, encoded: str) -> str:
    """Why the base64 part of a key line is not a key of type `kind` ("" if it is)."""
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "the key's base64 text is damaged (was it cut or wrapped when copied?)"
    try:
        fields = _blob_fields(blob)
    except ValueError:
        return "the key is cut short (was it copied whole?)"
    if not fields or fields[0] != kind.encode("ascii"):
        return f"the key inside is not of the type the line names ({kind})"
    if len(fields) != SSH_KEY_FIELDS[kind]:
        return f"the key does not have the parts an {kind} key has"
    if "ed25519" in kind:
        if len(fields[1]) != ED25519_KEY_SIZE:
            return "the Ed25519 key is not 32 bytes long"
    elif "ecdsa-sha2-" in kind:
        # RFC 5656 §3.1: the curve named inside is the one the type names
        curve = kind.removeprefix("sk-").removeprefix("ecdsa-sha2-").split("@")[0]
        if fields[1] != curve.encode("ascii"):
            return f"the key inside is not on the curve its type names ({curve})"
    return ""


def _unprintable(line: str) -> bool:
    """Control and invisible formatting characters: sshd reads lines up to a newline, and
    a page shows the comment, so neither may carry what a reader cannot see. Unpaired
    surrogates (JSON can carry them) would not even encode to the file."""
    return any(
        ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in line
    )


def parse_authorized_keys(text: str) -> list[str]:
    """The OpenSSH public keys in `text`, one a line, as lines to write to authorized_keys.

    Blank lines and ``#`` comments go; each key line is ``type base64 [comment]`` and comes
    back as exactly that, single-spaced. No options prefix (``command="..."``,
    ``from=...``, ``restrict``): a web form must not be a way to give root a forced
    command or an agent. ValueError names the first bad line."""
    keys: list[str] = []
    size = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        size += len(raw) + 1
        if size > MAX_AUTHORIZED_KEYS_TEXT + 1:  # + 1: the last line has no newline
            raise ValueError(
                f"line {number}: the keys are longer than {MAX_AUTHORIZED_KEYS_TEXT} "
                "characters in all"
            )
        line = raw.removesuffix("\r").strip()  # a browser sends a textarea's lines as CRLF
        if not line or line.startswith("#"):
            continue
        if _unprintable(line):
            raise ValueError(f"line {number}: it holds control or invisible characters")
        parts = line.split(None, 2)
        kind = parts[0]
        if kind not in SSH_KEY_FIELDS:
            if any(word in SSH_KEY_FIELDS for word in line.split()):
                raise ValueError(
                    f"line {number}: options before the key (such as command=...) are "
                    "not accepted: give the key alone"
                )
            raise ValueError(
                f"line {number}: not an OpenSSH public key; it starts with none of "
                f"{', '.join(SSH_KEY_FIELDS)}"
            )
        if len(parts) < 2:
            raise ValueError(f"line {number}: the key's base64 text is missing after {kind}")
        problem = _key_problem(kind, parts[1])
        if problem:
            raise ValueError(f"line {number}: {problem}")
        if len(keys) == MAX_AUTHORIZED_KEYS:
            raise ValueError(f"line {number}: more than {MAX_AUTHORIZED_KEYS} keys")
        keys.append(" ".join(parts))
    return keys


def authorized_keys(data_dir: Path) -> list[str]:
    """The key lines last written for SSH ([] when none ever were)."""
    try:
        text = (data_dir / SSH_AUTHORIZED_KEYS).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def ssh_enabled(data_dir: Path) -> bool:
    return (data_dir / SSH_ENABLED).exists()


def set_ssh(data_dir: Path, enabled: bool, keys: list[str] | None = None) -> None:
    """Switch SSH on or off; root's path unit starts or stops sshd.

    With `keys`, they replace the public keys root installs for sshd (when SSH is on),
    written before the switch so root never copies the old ones in after the change.
    An empty list writes an empty file, not none: root copies only a file that exists,
    and no file would leave the keys of before in sshd's authorized_keys. The keys are
    checked again here (ValueError) since root copies them as they are."""
    if keys is not None:
        checked = parse_authorized_keys("\n".join(keys))
        write_text(data_dir / SSH_AUTHORIZED_KEYS, "".join(f"{key}\n" for key in checked))
    flag = data_dir / SSH_ENABLED
    if enabled:
        flag.touch(exist_ok=True)
    else:
        flag.unlink(missing_ok=True)
    fsync_folder(data_dir)
    # a write to a file that stays: the path unit (PathChanged=) sees the removal too
    with open(data_dir / SSH_SWITCH, "w", encoding="utf-8") as f:
        f.write(f"{'on' if enabled else 'off'} {time.time():.0f}\n")
