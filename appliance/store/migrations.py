"""Schema migrations, tracked in PRAGMA user_version.

`MIGRATIONS[i]` takes the schema from version i to i + 1. Each one is a frozen
snapshot: it never uses the current model classes to create tables, because those
describe the newest schema and would make the later steps fail on a fresh database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import peewee
from playhouse.migrate import SqliteMigrator, migrate

from appliance.store.errors import SchemaTooNewError
from appliance.store.permissions import SYSTEM_ROLES

Migration = Callable[[peewee.SqliteDatabase], None]

_V1_TABLES: Final[tuple[str, ...]] = (
    """CREATE TABLE "extension" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "number" TEXT NOT NULL,
        "name" TEXT,
        "email" TEXT,
        "created_at" REAL NOT NULL,
        "enabled" INTEGER NOT NULL DEFAULT 1,
        "auth_algorithms" TEXT
    )""",
    'CREATE UNIQUE INDEX "extension_number" ON "extension" ("number")',
    """CREATE TABLE "sip_credential" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "extension_id" INTEGER NOT NULL
            REFERENCES "extension" ("id") ON DELETE CASCADE,
        "algorithm" TEXT NOT NULL,
        "realm" TEXT NOT NULL,
        "ha1" TEXT NOT NULL
    )""",
    'CREATE UNIQUE INDEX "sip_credential_extension_id_algorithm"'
    ' ON "sip_credential" ("extension_id", "algorithm")',
    """CREATE TABLE "role" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "name" TEXT NOT NULL,
        "description" TEXT NOT NULL DEFAULT '',
        "is_system" INTEGER NOT NULL DEFAULT 0
    )""",
    'CREATE UNIQUE INDEX "role_name" ON "role" ("name")',
    """CREATE TABLE "role_permission" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "role_id" INTEGER NOT NULL REFERENCES "role" ("id") ON DELETE CASCADE,
        "permission" TEXT NOT NULL
    )""",
    'CREATE UNIQUE INDEX "role_permission_role_id_permission"'
    ' ON "role_permission" ("role_id", "permission")',
    """CREATE TABLE "user" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "username" TEXT NOT NULL,
        "password_hash" TEXT NOT NULL,
        "role_id" INTEGER NOT NULL REFERENCES "role" ("id") ON DELETE RESTRICT,
        "extension_id" INTEGER REFERENCES "extension" ("id") ON DELETE SET NULL,
        "must_change_password" INTEGER NOT NULL DEFAULT 1,
        "created_at" REAL NOT NULL
    )""",
    'CREATE UNIQUE INDEX "user_username" ON "user" ("username")',
    'CREATE INDEX "user_role_id" ON "user" ("role_id")',
    'CREATE INDEX "user_extension_id" ON "user" ("extension_id")',
    """CREATE TABLE "registration" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "aor" TEXT NOT NULL,
        "contact" TEXT NOT NULL,
        "expires_at" REAL NOT NULL,
        "call_id" TEXT NOT NULL,
        "cseq" INTEGER NOT NULL,
        "q" REAL,
        "transport" TEXT NOT NULL,
        "source_host" TEXT NOT NULL,
        "source_port" INTEGER NOT NULL
    )""",
    'CREATE UNIQUE INDEX "registration_aor_contact" ON "registration" ("aor", "contact")',
    'CREATE INDEX "registration_expires_at" ON "registration" ("expires_at")',
    """CREATE TABLE "lockout" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "kind" TEXT NOT NULL,
        "key" TEXT NOT NULL,
        "until" REAL NOT NULL,
        "failures" INTEGER NOT NULL,
        "reason" TEXT NOT NULL,
        "created_at" REAL NOT NULL
    )""",
    'CREATE UNIQUE INDEX "lockout_kind_key" ON "lockout" ("kind", "key")',
)


def sync_system_roles(db: peewee.SqliteDatabase) -> None:
    """Make the system roles in the database match `SYSTEM_ROLES` exactly.

    Idempotent, so a fresh database seeded at v1 with today's roles and an old one
    that reaches a later "roles changed" migration (which calls this again) converge.
    """
    for name, (description, permissions) in SYSTEM_ROLES.items():
        row = db.execute_sql('SELECT "id" FROM "role" WHERE "name" = ?', (name,)).fetchone()
        if row is None:
            cursor = db.execute_sql(
                'INSERT INTO "role" ("name", "description", "is_system") VALUES (?, ?, 1)',
                (name, description),
            )
            role_id = cursor.lastrowid
        else:
            role_id = row[0]
            db.execute_sql(
                'UPDATE "role" SET "description" = ?, "is_system" = 1 WHERE "id" = ?',
                (description, role_id),
            )
        db.execute_sql('DELETE FROM "role_permission" WHERE "role_id" = ?', (role_id,))
        for permission in permissions:
            db.execute_sql(
                'INSERT INTO "role_permission" ("role_id", "permission") VALUES (?, ?)',
                (role_id, permission),
            )


def v1_initial(db: peewee.SqliteDatabase) -> None:
    """Extensions, credentials, roles, users, registrations, lockouts; system roles."""
    for statement in _V1_TABLES:
        db.execute_sql(statement)
    sync_system_roles(db)


def v2_registration_details(db: peewee.SqliteDatabase) -> None:
    """Keep User-Agent, +sip.instance (RFC 5626) and Path (RFC 3327) across restarts."""
    migrator = SqliteMigrator(db)
    migrate(
        migrator.add_column("registration", "user_agent", peewee.TextField(default="")),
        migrator.add_column("registration", "instance", peewee.TextField(default="")),
        migrator.add_column("registration", "path", peewee.TextField(default="")),
    )


def v3_settings(db: peewee.SqliteDatabase) -> None:
    """Key/value settings changed at run time (JSON values), and look-up by e-mail."""
    db.execute_sql(
        """CREATE TABLE "setting" (
            "id" INTEGER NOT NULL PRIMARY KEY,
            "key" TEXT NOT NULL,
            "value" TEXT NOT NULL
        )"""
    )
    db.execute_sql('CREATE UNIQUE INDEX "setting_key" ON "setting" ("key")')
    SqliteMigrator(db).add_index("extension", ("email",), False).run()


# Bumped by triggers on every change to what the SIP server caches (extensions, their
# credentials, lockouts), whichever process makes it. Unlike PRAGMA data_version it
# ignores registration writes, so the server reloads only when something it caches
# changed.
DIRECTORY_REVISION_KEY: Final = "revision.directory"
_REVISED_TABLES: Final[tuple[str, ...]] = ("extension", "sip_credential", "lockout")


def v4_directory_revision(db: peewee.SqliteDatabase) -> None:
    """Setting `revision.directory`, a counter triggers bump in the same transaction.

    The triggers only UPDATE the row seeded here: an INSERT OR IGNORE in a trigger
    body takes the outer statement's conflict handling, and fails under an upsert.
    """
    db.execute_sql(
        'INSERT OR IGNORE INTO "setting" ("key", "value") VALUES (?, ?)',
        (DIRECTORY_REVISION_KEY, "0"),
    )
    _revision_triggers(db, _REVISED_TABLES)


def _revision_triggers(db: peewee.SqliteDatabase, tables: tuple[str, ...]) -> None:
    """Any change to a row of ``tables`` bumps `revision.directory`."""
    for table in tables:
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute_sql(
                f'CREATE TRIGGER "{table}_{event.lower()}_revision" AFTER {event} ON "{table}"'
                " BEGIN"
                f""" UPDATE "setting" SET "value" = CAST("value" AS INTEGER) + 1"""
                f""" WHERE "key" = '{DIRECTORY_REVISION_KEY}';"""
                " END"
            )


# Call detail records (issue 4). Columns per leg: "a" is the caller's side of the
# B2BUA, "b" the callee's; counters come from RTCP reports or our own relay counts.
_V5_CDR: Final[tuple[str, ...]] = (
    """CREATE TABLE "cdr" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "call_id" TEXT NOT NULL,
        "caller" TEXT NOT NULL,
        "caller_name" TEXT NOT NULL DEFAULT '',
        "callee" TEXT NOT NULL,
        "start_at" REAL NOT NULL,
        "answer_at" REAL,
        "end_at" REAL NOT NULL,
        "duration_s" REAL NOT NULL,
        "disposition" TEXT NOT NULL,
        "hangup_cause" INTEGER NOT NULL,
        "hangup_by" TEXT NOT NULL,
        "codec" TEXT,
        "a_packets_in" INTEGER NOT NULL DEFAULT 0,
        "a_packets_out" INTEGER NOT NULL DEFAULT 0,
        "a_lost" INTEGER NOT NULL DEFAULT 0,
        "a_jitter_ms" REAL NOT NULL DEFAULT 0,
        "b_packets_in" INTEGER NOT NULL DEFAULT 0,
        "b_packets_out" INTEGER NOT NULL DEFAULT 0,
        "b_lost" INTEGER NOT NULL DEFAULT 0,
        "b_jitter_ms" REAL NOT NULL DEFAULT 0
    )""",
    'CREATE UNIQUE INDEX "cdr_call_id" ON "cdr" ("call_id")',
    'CREATE INDEX "cdr_start_at" ON "cdr" ("start_at")',
    # (number, start_at): the call log filters on one number and shows newest first.
    'CREATE INDEX "cdr_caller_start_at" ON "cdr" ("caller", "start_at")',
    'CREATE INDEX "cdr_callee_start_at" ON "cdr" ("callee", "start_at")',
)


def v5_cdr(db: peewee.SqliteDatabase) -> None:
    """Table `cdr`: one call detail record per call, written by `CdrWriter`."""
    for statement in _V5_CDR:
        db.execute_sql(statement)


# Voicemail (mailboxes, their messages), auto-attendant menus and music on hold.
# A message's audio lives in a file under the voicemail root; "filename" is relative
# to that root ("2000/msg-1700000000000-1a2b3c4d.wav") so the data folder can move.
# Rows of deleted messages are kept as history, hence the status in the index.
_V6_VOICEMAIL: Final[tuple[str, ...]] = (
    """CREATE TABLE "mailbox" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "extension_id" INTEGER NOT NULL
            REFERENCES "extension" ("id") ON DELETE CASCADE,
        "pin_hash" TEXT,
        "email" TEXT,
        "email_attach" INTEGER NOT NULL DEFAULT 1,
        "max_message_seconds" REAL NOT NULL DEFAULT 180,
        "max_messages" INTEGER NOT NULL DEFAULT 100,
        "language" TEXT NOT NULL DEFAULT 'en',
        "timezone" TEXT NOT NULL DEFAULT 'UTC',
        "enabled" INTEGER NOT NULL DEFAULT 1,
        "created_at" REAL NOT NULL
    )""",
    'CREATE UNIQUE INDEX "mailbox_extension_id" ON "mailbox" ("extension_id")',
    """CREATE TABLE "voicemail_message" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "mailbox_id" INTEGER NOT NULL
            REFERENCES "mailbox" ("id") ON DELETE CASCADE,
        "caller" TEXT NOT NULL,
        "caller_name" TEXT,
        "received_at" REAL NOT NULL,
        "duration" REAL NOT NULL,
        "status" TEXT NOT NULL,
        "urgent" INTEGER NOT NULL DEFAULT 0,
        "filename" TEXT NOT NULL
    )""",
    'CREATE INDEX "voicemail_message_mailbox_id_status"'
    ' ON "voicemail_message" ("mailbox_id", "status")',
    # One row per file: start-up reconciliation matches files to rows by name.
    'CREATE UNIQUE INDEX "voicemail_message_filename" ON "voicemail_message" ("filename")',
    """CREATE TABLE "ivr_menu" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "name" TEXT NOT NULL,
        "definition" TEXT NOT NULL,
        "updated_at" REAL NOT NULL
    )""",
    'CREATE UNIQUE INDEX "ivr_menu_name" ON "ivr_menu" ("name")',
    # SQLite adds a NOT NULL column in place when it has a constant default: existing
    # rows read the default, no table rebuild (which would drop the v4 triggers).
    """ALTER TABLE "extension" ADD COLUMN "moh_class" TEXT NOT NULL DEFAULT 'default'""",
)


def v6_voicemail(db: peewee.SqliteDatabase) -> None:
    """Tables `mailbox`, `voicemail_message`, `ivr_menu`; `extension.moh_class`.

    Mailbox and menu changes bump `revision.directory` like extension changes do: the
    server caches which extensions have a mailbox, and the menus.
    """
    for statement in _V6_VOICEMAIL:
        db.execute_sql(statement)
    _revision_triggers(db, ("mailbox", "ivr_menu"))


# The web UI and REST API (issue 7): sessions, API tokens, audit log. Secrets are kept
# as SHA-256 digests: they are 256-bit random values, so a slow hash adds nothing.
_V7_WEB: Final[tuple[str, ...]] = (
    """CREATE TABLE "web_session" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "token_hash" TEXT NOT NULL,
        "user_id" INTEGER NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
        "csrf_token" TEXT NOT NULL,
        "created_at" REAL NOT NULL,
        "last_seen" REAL NOT NULL,
        "address" TEXT NOT NULL DEFAULT ''
    )""",
    'CREATE UNIQUE INDEX "web_session_token_hash" ON "web_session" ("token_hash")',
    'CREATE INDEX "web_session_user_id" ON "web_session" ("user_id")',
    """CREATE TABLE "api_token" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "token_hash" TEXT NOT NULL,
        "user_id" INTEGER NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
        "name" TEXT NOT NULL,
        "prefix" TEXT NOT NULL,
        "created_at" REAL NOT NULL,
        "last_used_at" REAL
    )""",
    'CREATE UNIQUE INDEX "api_token_token_hash" ON "api_token" ("token_hash")',
    'CREATE INDEX "api_token_user_id" ON "api_token" ("user_id")',
    """CREATE TABLE "audit_entry" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "at" REAL NOT NULL,
        "actor" TEXT NOT NULL,
        "action" TEXT NOT NULL,
        "target" TEXT NOT NULL DEFAULT '',
        "address" TEXT NOT NULL DEFAULT '',
        "detail" TEXT NOT NULL DEFAULT ''
    )""",
    'CREATE INDEX "audit_entry_at" ON "audit_entry" ("at")',
)


def v7_web(db: peewee.SqliteDatabase) -> None:
    """Tables `web_session`, `api_token`, `audit_entry`; system roles gain the new
    extension, role and audit permissions. None of these tables is cached by the SIP
    server, so no revision triggers."""
    for statement in _V7_WEB:
        db.execute_sql(statement)
    sync_system_roles(db)


# Dialplan routes edited from the web (issue 7), after those of yakyak.toml. "target"
# is the route's target table as JSON, in the form `appliance.pbx.dialplan.parse_route`
# reads, so the one parser checks TOML and stored routes alike. "pattern_key" is the
# pattern as the Dialplan compares patterns (letters of a "_" pattern upper-cased): its
# unique index stops two writers from both adding a route that could never match.
_V8_ROUTES: Final[tuple[str, ...]] = (
    """CREATE TABLE "dialplan_route" (
        "id" INTEGER NOT NULL PRIMARY KEY,
        "name" TEXT NOT NULL,
        "pattern" TEXT NOT NULL,
        "pattern_key" TEXT NOT NULL,
        "target" TEXT NOT NULL,
        "created_at" REAL NOT NULL,
        "updated_at" REAL NOT NULL
    )""",
    'CREATE UNIQUE INDEX "dialplan_route_name" ON "dialplan_route" ("name")',
    'CREATE UNIQUE INDEX "dialplan_route_pattern_key" ON "dialplan_route" ("pattern_key")',
)


def v8_dialplan_routes(db: peewee.SqliteDatabase) -> None:
    """Table `dialplan_route`. Its changes bump `revision.directory`, so the running
    server rebuilds its dialplan when the web changes a route."""
    for statement in _V8_ROUTES:
        db.execute_sql(statement)
    _revision_triggers(db, ("dialplan_route",))


MIGRATIONS: Final[tuple[Migration, ...]] = (
    v1_initial,
    v2_registration_details,
    v3_settings,
    v4_directory_revision,
    v5_cdr,
    v6_voicemail,
    v7_web,
    v8_dialplan_routes,
)
CURRENT_VERSION: Final = len(MIGRATIONS)


def _user_version(db: peewee.SqliteDatabase) -> int:
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])


def migrate_to_current(
    db: peewee.SqliteDatabase, migrations: tuple[Migration, ...] = MIGRATIONS
) -> int:
    """Apply the missing migrations in order, one transaction each; return the version.

    BEGIN IMMEDIATE takes the write lock before the version is read, so a server and
    a CLI opening the same old file at once never both run a step. user_version lives
    in the database header and is rolled back with the step if the step fails.
    """
    target = len(migrations)
    while True:
        with db.atomic("IMMEDIATE"):
            version = _user_version(db)
            if version > target:
                raise SchemaTooNewError(
                    f"database schema version {version} is newer than this YakYak knows "
                    f"({target}); run a newer YakYak or restore a backup"
                )
            if version == target:
                return version
            migrations[version](db)
            db.execute_sql(f"PRAGMA user_version = {version + 1:d}")
