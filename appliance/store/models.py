"""peewee models of the current schema, used only to build queries.

The models are bound to no database (``database = None``): every query is run with
the database it belongs to, ``Model.select().execute(db)``, ``query.first(db)``...
so there is no process-wide database and forgetting the argument fails loudly.
Avoid ``query.exists(db)``: peewee 3.19 drops the argument there (SelectBase.exists
calls ``scalar()`` without it); use ``query.first(db) is not None``.
The tables themselves are created by `appliance.store.migrations`, and a test checks
that these models and the migrated schema agree column for column.
"""

from __future__ import annotations

from typing import Final

import peewee


class BaseModel(peewee.Model):  # type: ignore[misc]  # peewee ships no type stubs
    class Meta:
        database = None
        legacy_table_names = False  # SipCredential -> "sip_credential"


class Extension(BaseModel):
    number = peewee.TextField(unique=True)  # 1..15 digits, checked by the service
    name = peewee.TextField(null=True)
    email = peewee.TextField(null=True, index=True)
    created_at = peewee.FloatField()  # Unix time
    enabled = peewee.BooleanField(default=True)
    # Per-extension challenge order, e.g. "SHA-256,MD5"; NULL means the [auth] default.
    auth_algorithms = peewee.TextField(null=True)
    moh_class = peewee.TextField(default="default")  # music-on-hold class for its callers


class SipCredential(BaseModel):
    """HA1 of one digest algorithm (RFC 7616 §3.4.2); the password itself is never kept."""

    extension = peewee.ForeignKeyField(Extension, on_delete="CASCADE")
    algorithm = peewee.TextField()
    realm = peewee.TextField()  # HA1 depends on it: a domain change makes rows stale
    ha1 = peewee.TextField()

    class Meta:
        indexes = ((("extension", "algorithm"), True),)


class Role(BaseModel):
    name = peewee.TextField(unique=True)
    description = peewee.TextField(default="")
    is_system = peewee.BooleanField(default=False)


class RolePermission(BaseModel):
    role = peewee.ForeignKeyField(Role, on_delete="CASCADE")
    permission = peewee.TextField()

    class Meta:
        indexes = ((("role", "permission"), True),)


class User(BaseModel):
    """A web/admin account (not a SIP extension, though it may be tied to one)."""

    username = peewee.TextField(unique=True)
    password_hash = peewee.TextField()  # "scrypt$n$r$p$salt$hash", see passwords.py
    role = peewee.ForeignKeyField(Role, on_delete="RESTRICT")
    extension = peewee.ForeignKeyField(Extension, null=True, on_delete="SET NULL")
    must_change_password = peewee.BooleanField(default=True)
    created_at = peewee.FloatField()


class Registration(BaseModel):
    """A persisted `appliance.pbx.location.Binding`; see that class for the fields."""

    aor = peewee.TextField()
    contact = peewee.TextField()
    expires_at = peewee.FloatField(index=True)
    call_id = peewee.TextField()
    cseq = peewee.IntegerField()
    q = peewee.FloatField(null=True)
    transport = peewee.TextField()
    source_host = peewee.TextField()
    source_port = peewee.IntegerField()
    user_agent = peewee.TextField(default="")
    instance = peewee.TextField(default="")
    path = peewee.TextField(default="")

    class Meta:
        indexes = ((("aor", "contact"), True),)


class Lockout(BaseModel):
    kind = peewee.TextField()  # a LockoutKind value
    key = peewee.TextField()  # the IP address or the extension number
    until = peewee.FloatField()  # Unix time
    failures = peewee.IntegerField()
    reason = peewee.TextField()
    created_at = peewee.FloatField()

    class Meta:
        indexes = ((("kind", "key"), True),)


class Setting(BaseModel):
    key = peewee.TextField(unique=True)
    value = peewee.TextField()  # JSON


class Cdr(BaseModel):
    """One call detail record; see `appliance.store.cdr.CdrRecord` for the fields."""

    call_id = peewee.TextField(unique=True)
    caller = peewee.TextField()
    caller_name = peewee.TextField(default="")
    callee = peewee.TextField()
    start_at = peewee.FloatField(index=True)  # Unix time
    answer_at = peewee.FloatField(null=True)
    end_at = peewee.FloatField()
    duration_s = peewee.FloatField()  # billable: end_at - answer_at, 0 if unanswered
    disposition = peewee.TextField()  # a Disposition value
    hangup_cause = peewee.IntegerField()  # Q.850
    hangup_by = peewee.TextField()  # a HangupBy value
    codec = peewee.TextField(null=True)
    a_packets_in = peewee.IntegerField(default=0)
    a_packets_out = peewee.IntegerField(default=0)
    a_lost = peewee.IntegerField(default=0)
    a_jitter_ms = peewee.FloatField(default=0)
    b_packets_in = peewee.IntegerField(default=0)
    b_packets_out = peewee.IntegerField(default=0)
    b_lost = peewee.IntegerField(default=0)
    b_jitter_ms = peewee.FloatField(default=0)

    class Meta:
        indexes = ((("caller", "start_at"), False), (("callee", "start_at"), False))


class Mailbox(BaseModel):
    """Voicemail settings of one extension; its messages are `VoicemailMessage` rows."""

    extension = peewee.ForeignKeyField(Extension, unique=True, on_delete="CASCADE")
    pin_hash = peewee.TextField(null=True)  # passwords.hash_password of the PIN
    email = peewee.TextField(null=True)  # where new-message notices go
    email_attach = peewee.BooleanField(default=True)
    max_message_seconds = peewee.FloatField(default=180.0)
    max_messages = peewee.IntegerField(default=100)
    language = peewee.TextField(default="en")
    timezone = peewee.TextField(default="UTC")  # IANA name, for dates in prompts and e-mail
    enabled = peewee.BooleanField(default=True)
    created_at = peewee.FloatField()


class VoicemailMessage(BaseModel):
    """One message; see `appliance.store.voicemail` for the file it names."""

    # index=False: the (mailbox, status) index below already serves look-ups by mailbox.
    mailbox = peewee.ForeignKeyField(Mailbox, on_delete="CASCADE", index=False)
    caller = peewee.TextField()
    caller_name = peewee.TextField(null=True)
    received_at = peewee.FloatField()  # Unix time
    duration = peewee.FloatField()  # seconds
    status = peewee.TextField()  # a MessageStatus value
    urgent = peewee.BooleanField(default=False)
    filename = peewee.TextField(unique=True)  # relative to the voicemail root

    class Meta:
        indexes = ((("mailbox", "status"), False),)


class IvrMenu(BaseModel):
    """An auto-attendant menu; `definition` is JSON in the menu module's format."""

    name = peewee.TextField(unique=True)
    definition = peewee.TextField()
    updated_at = peewee.FloatField()  # Unix time


class WebSession(BaseModel):
    """A signed-in browser; the cookie holds the secret, only its SHA-256 is kept."""

    token_hash = peewee.TextField(unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    csrf_token = peewee.TextField()  # sent back in forms and X-CSRF-Token headers
    created_at = peewee.FloatField()  # Unix time; the absolute expiry counts from here
    last_seen = peewee.FloatField()  # the idle expiry counts from here
    address = peewee.TextField(default="")  # where the sign-in came from


class ApiToken(BaseModel):
    """A bearer token for scripts; only its SHA-256 is kept, the secret is shown once."""

    token_hash = peewee.TextField(unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    name = peewee.TextField()
    prefix = peewee.TextField()  # the first characters, so a list can tell tokens apart
    created_at = peewee.FloatField()
    last_used_at = peewee.FloatField(null=True)


class AuditEntry(BaseModel):
    """One change made through the web UI or the API (or a sign-in attempt)."""

    at = peewee.FloatField(index=True)  # Unix time
    actor = peewee.TextField()  # a username; text, so history outlives the account
    action = peewee.TextField()  # "extension.create", "login.failed", ...
    target = peewee.TextField(default="")
    address = peewee.TextField(default="")  # the client's IP address
    detail = peewee.TextField(default="")


class DialplanRoute(BaseModel):
    """A dialplan route added from the web; see `appliance.store.routes`."""

    name = peewee.TextField(unique=True)
    pattern = peewee.TextField()  # as typed: "_1XX", "0800123"
    pattern_key = peewee.TextField(unique=True)  # as the Dialplan compares patterns
    target = peewee.TextField()  # JSON: the target table parse_route reads
    created_at = peewee.FloatField()  # Unix time; routes tie-break in this order
    updated_at = peewee.FloatField()


MODELS: Final[tuple[type[BaseModel], ...]] = (
    Extension,
    SipCredential,
    Role,
    RolePermission,
    User,
    Registration,
    Lockout,
    Setting,
    Cdr,
    Mailbox,
    VoicemailMessage,
    IvrMenu,
    WebSession,
    ApiToken,
    AuditEntry,
    DialplanRoute,
)
