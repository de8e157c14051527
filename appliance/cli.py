"""The `yakyak` command line: set up a data folder, manage extensions and lockouts, serve.

Every command takes `--data DIR` (default `$YAKYAK_DATA`, else `./var`). Errors are
one line on stderr and exit code 1; usage errors exit 2. Secrets the command makes
up (admin and extension passwords) are printed once and never stored in clear.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import peewee

from appliance.config import (
    CONFIG_FILE,
    DATABASE_FILE,
    LAN_HOST,
    Config,
    ConfigError,
    GeneralConfig,
    check_domain,
    write_default,
)
from appliance.store.db import open_database
from appliance.store.errors import StoreError
from appliance.store.extensions import Directory, check_password
from appliance.store.importer import import_file
from appliance.store.ivr import save_ivr
from appliance.store.lockouts import clear_lockouts, delete_lockout, list_lockouts
from appliance.store.permissions import ADMINISTRATOR
from appliance.store.registrations import count_active
from appliance.store.users import Accounts
from appliance.store.voicemail import VoicemailStore
from appliance.system import admin_reset
from appliance.system.maintenance import DEFAULT_KEEP_DAYS
from appliance.system.restore import apply_pending_restore

if TYPE_CHECKING:
    from appliance.system.update_agent import Agent

ADMIN_USERNAME: Final = admin_reset.ADMIN_USERNAME
DEMO_EXTENSIONS: Final[tuple[tuple[str, str], ...]] = (
    ("101", "Alice"),
    ("102", "Bob"),
    ("103", "Carol"),
)

DEMO_ATTENDANT: Final = "500"  # dial 500 for the demo auto-attendant
# The sim board's analog ports in the demo: two phones on FXS 1-2, a line on FXO 3
# whose calls go to the attendant.
DEMO_ANALOG: Final[tuple[tuple[int, str, str], ...]] = (
    (1, "201", "Analog 1"),
    (2, "202", "Analog 2"),
)
DEMO_FXO: Final = {3: DEMO_ATTENDANT}
DEMO_IVR: Final[dict[str, object]] = {
    "menus": {
        "main": {
            "language": "en",
            "greeting": ["welcome"],
            "timeout": 5,
            "retries": 3,
            "dial_by_extension": True,
            "options": {
                "1": {"action": "transfer", "extension": "101", "voicemail_on_fail": True},
                "2": {"action": "transfer", "extension": "102", "voicemail_on_fail": True},
                "9": {"action": "voicemail", "mailbox": "101"},
                "0": {"action": "repeat"},
            },
        }
    },
    "schedules": {},
}

Handler = Callable[[argparse.Namespace], int]


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(f"yakyak: {text}\n")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _box(lines: Sequence[str]) -> None:
    width = max(len(line) for line in lines)
    out("+" + "-" * (width + 2) + "+")
    for line in lines:
        out(f"| {line.ljust(width)} |")
    out("+" + "-" * (width + 2) + "+")


def _database_files(data: Path) -> list[Path]:
    db = data / DATABASE_FILE
    return [db, db.with_name(DATABASE_FILE + "-wal"), db.with_name(DATABASE_FILE + "-shm")]


def _open(data: Path) -> tuple[Config, peewee.SqliteDatabase]:
    """The folder's config and database; StoreError if `init` has not been run."""
    config = Config.load(data)
    if not config.database_path.exists():
        raise StoreError(f"{data}: no database here; create one with `yakyak init --data {data}`")
    return config, open_database(config.database_path)


def _create_database(config: Config, admin_password: str) -> peewee.SqliteDatabase:
    db = open_database(config.database_path)
    Accounts(db).create_user(
        ADMIN_USERNAME, admin_password, ADMINISTRATOR, must_change_password=True
    )
    return db


# -- commands -------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    data: Path = args.data
    domain = check_domain(args.domain or GeneralConfig().domain)
    existing = [p for p in (data / CONFIG_FILE, data / DATABASE_FILE) if p.exists()]
    if existing and not args.force:
        err(
            f"{data} already holds a YakYak setup ({', '.join(p.name for p in existing)}); "
            "use --force to replace it, which deletes the database"
        )
        return 1
    generated = args.admin_password is None
    password = secrets.token_urlsafe(12) if generated else args.admin_password
    try:
        check_password(password)
    except StoreError as exc:
        raise StoreError(f"--admin-password: {exc}") from None
    data.mkdir(parents=True, exist_ok=True)
    if args.force:
        for path in _database_files(data):
            path.unlink(missing_ok=True)
    write_default(data, domain)
    config = Config.load(data)
    _create_database(config, password).close()
    out(f"initialised {data} for SIP domain {domain}")
    if generated:
        out(f"admin password: {password}")
        out("(shown only now; it must be changed at the first login)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # A restore staged from the web UI goes in place first: before the configuration is
    # read and the database opened, so both come from the backup.
    try:
        restored = apply_pending_restore(args.data)
    except OSError as exc:
        err(f"cannot apply the restore waiting in {args.data}: {exc}")
        return 1
    config = Config.load(args.data).with_overrides(
        sip=args.sip, http=args.http, board=args.board, rtp_ports=args.rtp_ports
    )
    # Uploads the web framework spools (a multipart backup or update bundle) go to the
    # data partition: the image's /tmp is a 64 MiB RAM disk, a bundle is ~300 MiB.
    spool = args.data / "tmp"
    spool.mkdir(mode=0o700, exist_ok=True)
    tempfile.tempdir = str(spool)
    # Lazy: the composition root pulls in asyncio, sockets and the board drivers,
    # which the management commands never need.
    from appliance import app

    status: int = app.serve(config, restored)
    return status


def cmd_ext_add(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    try:
        Directory(db, config.general.domain).add(args.number, args.password, args.name, args.email)
    finally:
        db.close()
    out(f"added extension {args.number}")
    return 0


def cmd_ext_list(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    try:
        directory = Directory(db, config.general.domain)
        extensions = directory.list()
        contacts = count_active(db, time.time())
        stale = directory.stale_numbers()
    finally:
        db.close()
    if not extensions:
        out("no extensions; add one with `yakyak ext add NUMBER --password PW`")
        return 0
    rows = [
        (
            e.number + ("" if e.enabled else " (disabled)"),
            e.name or "-",
            e.email or "-",
            str(contacts.get(e.number, 0)),
        )
        for e in extensions
    ]
    _table(("NUMBER", "NAME", "EMAIL", "CONTACTS"), rows)
    if stale:
        out(
            f"note: {', '.join(stale)}: password set under another SIP domain; "
            "set it again with `yakyak ext passwd NUMBER`"
        )
    return 0


def cmd_ext_del(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    try:
        Directory(db, config.general.domain).delete(args.number)
    finally:
        db.close()
    out(f"deleted extension {args.number}")
    return 0


def cmd_ext_passwd(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    generated = args.password is None
    password = secrets.token_urlsafe(12) if generated else args.password
    try:
        Directory(db, config.general.domain).set_password(args.number, password)
    finally:
        db.close()
    out(f"password of extension {args.number} changed")
    if generated:
        out(f"new password: {password}")
    return 0


def cmd_ext_auth(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    order = None if args.default else [a.strip() for a in args.algorithms.split(",")]
    try:
        Directory(db, config.general.domain).set_algorithms(args.number, order)
    finally:
        db.close()
    if order is None:
        out(f"extension {args.number} gets the [auth] algorithms order again")
    else:
        out(f"extension {args.number} is challenged with {', '.join(order)}, in that order")
    return 0


def cmd_ext_import(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    try:
        report = import_file(Directory(db, config.general.domain), args.file, partial=args.partial)
    finally:
        db.close()
    for issue in report.issues:
        out(f"{args.file}: {issue}")
    if report.fatal:
        out(f"nothing imported: {args.file} could not be read as a whole")
        return 1
    if report.issues and not args.partial:
        out(
            f"nothing imported: {len(report.issues)} bad row(s); "
            "fix them, or use --partial to import the good rows"
        )
        return 1
    skipped = f"; skipped {len(report.issues)} bad row(s)" if report.issues else ""
    out(f"imported {len(report.imported)} extension(s){skipped}")
    return 0


def cmd_lockout_list(args: argparse.Namespace) -> int:
    _, db = _open(args.data)
    try:
        lockouts = list_lockouts(db, now=time.time())
    finally:
        db.close()
    if not lockouts:
        out("no lockouts")
        return 0
    rows = [
        (
            lock.kind.value,
            lock.key,
            datetime.fromtimestamp(lock.until).strftime("%Y-%m-%d %H:%M:%S"),
            str(lock.failures),
            lock.reason,
        )
        for lock in lockouts
    ]
    _table(("KIND", "KEY", "UNTIL", "FAILURES", "REASON"), rows)
    return 0


def cmd_lockout_clear(args: argparse.Namespace) -> int:
    if (args.target is None) == (not args.all):
        err("lockout clear: give an ADDRESS or EXTENSION, or --all (not both)")
        return 2
    _, db = _open(args.data)
    try:
        lifted = clear_lockouts(db) if args.all else delete_lockout(db, args.target)
    finally:
        db.close()
    if not args.all and lifted == 0:
        err(f"no lockout for {args.target}")
        return 1
    # The running server sees the change through PRAGMA data_version.
    out(f"lifted {lifted} lockout(s)")
    return 0


def cmd_mailbox_add(args: argparse.Namespace) -> int:
    config, db = _open(args.data)
    try:
        store = VoicemailStore(db, config.data_dir / "voicemail")
        store.create_mailbox(
            args.number,
            args.pin,
            args.email,
            max_message_seconds=float(args.max_seconds),
            max_messages=args.max_messages,
            language=args.language,
            timezone=args.timezone,
        )
    finally:
        db.close()
    out(f"mailbox {args.number} created")
    return 0


def _telephony_audio(path: Path) -> npt.NDArray[np.int16]:
    """An uploaded WAV (any common rate, width, channels) as 8 kHz mono, or StoreError."""
    from appliance.media.wav import WavError, convert_upload

    try:
        return convert_upload(path.read_bytes())
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except WavError as exc:
        raise StoreError(f"{path}: {exc}") from None


def cmd_mailbox_greeting(args: argparse.Namespace) -> int:
    from appliance.media.wav import write_wav_atomic
    from appliance.pbx.app_events import GreetingKind

    samples = _telephony_audio(args.file)
    config, db = _open(args.data)
    try:
        store = VoicemailStore(db, config.data_dir / "voicemail")
        spooled = store.new_recording_path()
        write_wav_atomic(spooled, samples)
        if not store.save_greeting(args.number, GreetingKind(args.kind), spooled):
            store.discard_recording(spooled)
            raise StoreError(f"extension {args.number} has no mailbox")
    finally:
        db.close()
    out(f"{args.kind} greeting of {args.number} set ({len(samples) / 8000:.1f} s)")
    return 0


def cmd_prompt_set(args: argparse.Namespace) -> int:
    from appliance.media.wav import write_wav_atomic

    if not args.name.replace("-", "").replace("_", "").isalnum():
        raise StoreError(f"prompt name {args.name!r}: letters, digits, - and _ only")
    samples = _telephony_audio(args.file)
    folder = args.data / "prompts" / args.language
    folder.mkdir(parents=True, exist_ok=True)
    write_wav_atomic(folder / f"{args.name}.wav", samples)
    out(f"prompt {args.name} ({args.language}) set ({len(samples) / 8000:.1f} s)")
    return 0


def cmd_ivr_load(args: argparse.Namespace) -> int:
    from appliance.pbx.ivr.menu import IvrError, parse_ivr  # only this command needs it
    from appliance.store.models import Extension, Mailbox

    config, db = _open(args.data)
    try:
        try:
            document = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"{args.file}: cannot read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{args.file}: line {exc.lineno}: not JSON: {exc.msg}") from None
        numbers = {row.number for row in Extension.select(Extension.number).execute(db)}
        boxes = {
            row.extension.number
            for row in Mailbox.select(Extension.number).join(Extension).execute(db)
        }
        try:
            parse_ivr(document, numbers, boxes)
        except IvrError as exc:
            raise StoreError(f"{args.file}: {exc}") from None
        save_ivr(db, document)
    finally:
        db.close()
    out(f"auto-attendant loaded from {args.file}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    data: Path = args.data
    if (data / DATABASE_FILE).exists():
        out(f"{data} already has a database; leaving it as it is")
        return 0
    data.mkdir(parents=True, exist_ok=True)
    if not (data / CONFIG_FILE).exists():
        fxs = {port: number for port, number, _ in DEMO_ANALOG}
        write_default(
            data,
            GeneralConfig().domain,
            attendant=(DEMO_ATTENDANT, "main"),
            analog=(fxs, DEMO_FXO),
        )
    config = Config.load(data)
    admin_password = secrets.token_urlsafe(12)
    db = _create_database(config, admin_password)
    passwords = {number: secrets.token_urlsafe(9) for number, _ in DEMO_EXTENSIONS}
    pins = {number: f"{secrets.randbelow(10**6):06d}" for number, _ in DEMO_EXTENSIONS}
    try:
        directory = Directory(db, config.general.domain)
        voicemail = VoicemailStore(db, config.data_dir / "voicemail")
        for number, name in DEMO_EXTENSIONS:
            directory.add(number, passwords[number], name)
            voicemail.create_mailbox(number, pins[number])
        for _, number, name in DEMO_ANALOG:
            # the analog ports authenticate with the stored hash: nobody needs this one
            directory.add(number, secrets.token_urlsafe(12), name)
            voicemail.create_mailbox(
                number, pins.setdefault(number, f"{secrets.randbelow(10**6):06d}")
            )
        save_ivr(db, DEMO_IVR)
    finally:
        db.close()
    ports = sorted({f"{a.transport.upper()} {a.port}" for a in config.sip.listen})
    lines = [
        f"YakYak demo set up in {data}",
        "",
        f"SIP domain (realm): {config.general.domain}",
        f"SIP server: this machine's address, {', '.join(ports)}",
        "",
        *(
            f"extension {number}  {name:<6} password {passwords[number]}"
            f"  voicemail PIN {pins[number]}"
            for number, name in DEMO_EXTENSIONS
        ),
        "",
        *(
            f"extension {number}  analog phone on FXS port {port}  voicemail PIN {pins[number]}"
            for port, number, _ in DEMO_ANALOG
        ),
        "",
        f"auto-attendant: dial {DEMO_ATTENDANT}; voicemail: *97 (own), *98 (any)",
        "a call in on the FXO line (port 3) reaches the attendant",
        "",
        f"web admin: {ADMIN_USERNAME} / {admin_password} (change at first login)",
        "",
        "These passwords are shown only now.",
    ]
    _box(lines)
    return 0


def _first_setup(data: Path, password: str) -> None:
    """`yakyak init`'s steps for the first boot: the default config (unless the image
    put one there, e.g. naming the board) and the database with the admin account."""
    if not (data / CONFIG_FILE).exists():
        write_default(data, GeneralConfig().domain)
    _create_database(Config.load(data), password).close()


def _certificate_hosts() -> list[str]:
    """What the first self-signed certificate covers: the LAN address if the network
    is up already, the host name, name.local and the loopback addresses."""
    from appliance.net.routes import SourceAddresses  # sockets: this command only
    from appliance.web.server import local_names

    return local_names(SourceAddresses().towards(LAN_HOST))


def cmd_firstboot(args: argparse.Namespace) -> int:
    from appliance.system import firstboot
    from appliance.system.logs import setup_logging

    setup_logging("info")
    done = firstboot.first_boot(
        args.data,
        create_setup=_first_setup,
        new_password=lambda: secrets.token_urlsafe(12),
        hosts=_certificate_hosts(),
        now=datetime.now(UTC),
        boot_file=args.boot_file,
    )
    if done is None:
        out(f"first boot was done already ({args.data / firstboot.MARKER})")
        return 0
    where = [str(done.password_file)] + ([str(done.boot_file)] if done.boot_file else [])
    _box(
        [
            "YakYak is set up." if done.created_database else "YakYak: new admin password.",
            "",
            "web UI: https://yakyak.local/ or https://THIS-BOX-ADDRESS/",
            f"user {ADMIN_USERNAME}, password {done.password}",
            "(change it at the first sign-in)",
            f"written to {', '.join(where)}",
            "",
            "certificate SHA-256 fingerprint:",
            done.certificate.sha256,
        ]
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from appliance.system.backup import BackupError
    from appliance.system.logs import setup_logging
    from appliance.system.maintenance import MaintenanceError, nightly_backup

    setup_logging("info")
    try:
        run = nightly_backup(args.data, now=time.time(), keep_days=args.keep_days)
    except (MaintenanceError, BackupError, OSError, sqlite3.Error) as exc:
        err(f"backup failed: {exc}")
        return 1
    out(f"backup written: {run.path} ({run.size} bytes)")
    for path in run.removed:
        out(f"removed {path} (older than {args.keep_days} days)")
    return 0


def cmd_dbcheck(args: argparse.Namespace) -> int:
    from appliance.system.logs import setup_logging
    from appliance.system.maintenance import MaintenanceError, check_database, report

    setup_logging("info")
    path = args.data / DATABASE_FILE
    try:
        check = check_database(path)
    except MaintenanceError as exc:
        err(f"database check failed: {exc}")
        return 1
    report(path, check)
    return 0 if check.ok else 1


def _update_agent(args: argparse.Namespace) -> Agent:
    from appliance.system.update_agent import Agent
    from appliance.system.updates import UpdateFolder

    return Agent(UpdateFolder(args.data), cmdline=Path("/proc/cmdline").read_text())


def cmd_update_apply(args: argparse.Namespace) -> int:
    from appliance.system.logs import setup_logging
    from appliance.system.updates import UpdateState

    setup_logging("info")
    agent = _update_agent(args)
    result = agent.apply()
    if result is None:
        out("no update queued")
        return 0
    out(f"update {result.id}: {result.state.value}: {result.message}")
    if result.state is not UpdateState.INSTALLED:
        return 1
    if args.reboot:
        # a moment for the web UI to show "installed" before the connection drops
        time.sleep(args.reboot_delay)
        os.execvp("systemctl", ["systemctl", "reboot"])
    return 0


def cmd_update_health(args: argparse.Namespace) -> int:
    from appliance.system.logs import setup_logging

    setup_logging("info")
    agent = _update_agent(args)
    status = agent.health(timeout=args.timeout)
    out(f"slot {status.booted or '-'}: {status.health}")
    if status.health.startswith("bad") and args.reboot:
        os.execvp("systemctl", ["systemctl", "reboot"])
    return 0


# -- parser ---------------------------------------------------------------------


def build_parser(default_data: Path) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        type=Path,
        default=default_data,
        metavar="DIR",
        help="data folder (default: $YAKYAK_DATA, else ./var; now %(default)s)",
    )
    parser = argparse.ArgumentParser(prog="yakyak", description="YakYak phone system")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help: str,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    init = command(commands, "init", cmd_init, "create the data folder, config and database")
    init.add_argument("--admin-password", metavar="PW", help="default: generated and printed")
    init.add_argument("--domain", metavar="NAME", help="SIP domain (default: yakyak.local)")
    init.add_argument("--force", action="store_true", help="replace an existing setup")

    serve = command(commands, "serve", cmd_serve, "run the phone system")
    serve.add_argument("--sip", metavar="HOST:PORT", help="listen for SIP on UDP and TCP here")
    serve.add_argument("--http", metavar="HOST:PORT", help="web interface address")
    serve.add_argument("--board", metavar="NAME", help="hardware board: sim or a board name")
    serve.add_argument("--rtp-ports", metavar="LOW-HIGH", help="UDP ports for media")

    ext = commands.add_parser("ext", help="manage extensions").add_subparsers(
        dest="ext_command", required=True, metavar="ACTION"
    )
    add = command(ext, "add", cmd_ext_add, "add an extension")
    add.add_argument("number")
    add.add_argument("--password", required=True, metavar="PW")
    add.add_argument("--name")
    add.add_argument("--email", metavar="E")
    command(ext, "list", cmd_ext_list, "list extensions")
    command(ext, "del", cmd_ext_del, "delete an extension").add_argument("number")
    passwd = command(ext, "passwd", cmd_ext_passwd, "set an extension's password")
    passwd.add_argument("number")
    passwd.add_argument("--password", metavar="PW", help="default: generated and printed")
    auth = command(
        ext, "auth", cmd_ext_auth, "set the digest algorithms one phone is challenged with"
    )
    auth.add_argument("number")
    which = auth.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--algorithms", metavar="ALG,...", help="e.g. MD5 or SHA-256,MD5 (first offered first)"
    )
    which.add_argument("--default", action="store_true", help="use the [auth] order again")
    imp = command(ext, "import", cmd_ext_import, "add extensions from a CSV or JSON file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--partial", action="store_true", help="import the good rows of a bad file")

    lockout = commands.add_parser("lockout", help="list and lift lockouts").add_subparsers(
        dest="lockout_command", required=True, metavar="ACTION"
    )
    command(lockout, "list", cmd_lockout_list, "list lockouts in force")
    clear = command(lockout, "clear", cmd_lockout_clear, "lift lockouts")
    clear.add_argument("target", nargs="?", metavar="ADDRESS|EXTENSION")
    clear.add_argument("--all", action="store_true", help="lift every lockout")

    mailbox = commands.add_parser("mailbox", help="manage voicemail boxes").add_subparsers(
        dest="mailbox_command", required=True, metavar="ACTION"
    )
    box = command(mailbox, "add", cmd_mailbox_add, "give an extension a voicemail box")
    box.add_argument("number")
    box.add_argument("--pin", metavar="DIGITS", help="4-10 digits; default: none (own phone only)")
    box.add_argument("--email", metavar="E", help="new messages are mailed here")
    box.add_argument("--max-seconds", type=int, default=180, metavar="S")
    box.add_argument("--max-messages", type=int, default=100, metavar="N")
    box.add_argument("--language", default="en", choices=("en", "es", "fr"))
    box.add_argument("--timezone", default="UTC", metavar="ZONE")
    greet = command(mailbox, "greeting", cmd_mailbox_greeting, "set a greeting from a WAV file")
    greet.add_argument("number")
    greet.add_argument("kind", choices=("unavailable", "busy", "name"))
    greet.add_argument("file", type=Path)

    prompt = commands.add_parser("prompt", help="installer's own prompts").add_subparsers(
        dest="prompt_command", required=True, metavar="ACTION"
    )
    own = command(prompt, "set", cmd_prompt_set, "record a prompt from a WAV file (any rate)")
    own.add_argument("name", help="a prompt name (e.g. welcome) or a custom: menu item name")
    own.add_argument("file", type=Path)
    own.add_argument("--language", default="en", choices=("en", "es", "fr"))

    ivr = commands.add_parser("ivr", help="manage the auto-attendant").add_subparsers(
        dest="ivr_command", required=True, metavar="ACTION"
    )
    load = command(ivr, "load", cmd_ivr_load, "check and load menus from a JSON file")
    load.add_argument("file", type=Path)

    command(commands, "demo", cmd_demo, "set up demo extensions 101-103 if there is no database")

    first = command(
        commands, "firstboot", cmd_firstboot, "first boot: certificate, admin password, database"
    )
    first.add_argument(
        "--boot-file",
        type=Path,
        metavar="FILE",
        help="also write the admin password here, e.g. /boot/firmware/yakyak-admin.txt",
    )
    backup = command(commands, "backup", cmd_backup, "write a backup into DIR/backups")
    backup.add_argument(
        "--keep-days",
        type=int,
        default=DEFAULT_KEEP_DAYS,
        metavar="N",
        help="remove backups older than N days (default: %(default)s)",
    )
    update = commands.add_parser(
        "update", help="software updates on the image (root units run these)"
    ).add_subparsers(dest="update_command", required=True, metavar="ACTION")
    apply = command(update, "apply", cmd_update_apply, "install the bundle the web UI queued")
    apply.add_argument("--reboot", action="store_true", help="reboot into it when installed")
    apply.add_argument("--reboot-delay", type=float, default=3.0, metavar="S")
    health = command(
        update, "health", cmd_update_health, "judge this boot: mark the slot good, or roll back"
    )
    health.add_argument("--timeout", type=float, default=300.0, metavar="S")
    health.add_argument("--reboot", action="store_true", help="reboot when rolling back")
    command(commands, "dbcheck", cmd_dbcheck, "check the database's integrity and foreign keys")
    return parser


def main(argv: list[str] | None = None) -> int:
    default_data = Path(os.environ.get("YAKYAK_DATA") or "var")
    parser = build_parser(default_data)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else 2
    handler: Handler = args.handler
    try:
        return handler(args)
    except (StoreError, ConfigError) as exc:
        err(str(exc))
        return 1
    except peewee.DatabaseError as exc:
        err(f"database error: {exc}")
        return 1
