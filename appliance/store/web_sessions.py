"""Server-side sessions of the web UI: a random 256-bit id in the cookie, its SHA-256 here.

Kept in SQLite so a restart does not sign everybody out. A session ends after `idle`
seconds without a request or `absolute` seconds after sign-in, whichever comes first
(OWASP Session Management: both timeouts, enforced on the server).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import peewee

from appliance.store.errors import NotFoundError
from appliance.store.models import User, WebSession

TOKEN_BYTES: Final = 32  # 256 bits
# token_urlsafe(32) is 43 characters of base64url; anything else is not ours.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: float = 3600.0  # s without a request
    absolute: float = 12 * 3600.0  # s after sign-in, however busy
    # s: last_seen is written at most this often, so a page with several requests
    # costs one write, not one each; idle expiry is late by at most this much.
    touch_every: float = 60.0


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    username: str
    csrf_token: str
    created_at: float
    last_seen: float
    address: str


class WebSessions:
    """Sessions of one database."""

    def __init__(
        self,
        db: peewee.SqliteDatabase,
        policy: SessionPolicy = SessionPolicy(),
        clock: Callable[[], float] = time.time,
        token_source: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self._db = db
        self.policy = policy
        self._clock = clock
        self._token = token_source

    def create(self, username: str, address: str) -> tuple[str, SessionInfo]:
        """A new session for `username`: (the cookie value, shown only now; the session)."""
        token = self._token(TOKEN_BYTES)
        now = self._clock()
        with self._db.atomic():
            user = User.select(User.id).where(User.username == username).first(self._db)
            if user is None:
                raise NotFoundError(f"no user {username!r}")
            WebSession.insert(
                token_hash=token_digest(token),
                user=user.id,
                csrf_token=self._token(TOKEN_BYTES),
                created_at=now,
                last_seen=now,
                address=address[:64],
            ).execute(self._db)
        info = self.lookup(token)
        if info is None:  # only if the policy expires sessions at birth
            raise NotFoundError("session expired as soon as it was made")
        return token, info

    def _expired(self, created_at: float, last_seen: float, now: float) -> bool:
        return now >= created_at + self.policy.absolute or now >= last_seen + self.policy.idle

    def lookup(self, token: str) -> SessionInfo | None:
        """The live session of a cookie value, or None; an expired one is deleted."""
        if not _TOKEN.fullmatch(token):
            return None
        digest = token_digest(token)
        row = (
            WebSession.select(WebSession, User.username)
            .join(User, on=(WebSession.user == User.id))
            .where(WebSession.token_hash == digest)
            .dicts()
            .first(self._db)
        )
        if row is None:
            return None
        now = self._clock()
        if self._expired(row["created_at"], row["last_seen"], now):
            WebSession.delete().where(WebSession.id == row["id"]).execute(self._db)
            return None
        last_seen = row["last_seen"]
        if now - last_seen >= self.policy.touch_every:
            last_seen = now
            WebSession.update(last_seen=now).where(WebSession.id == row["id"]).execute(self._db)
        return SessionInfo(
            id=row["id"],
            username=row["username"],
            csrf_token=row["csrf_token"],
            created_at=row["created_at"],
            last_seen=last_seen,
            address=row["address"],
        )

    def delete(self, token: str) -> bool:
        """End one session (sign-out); False if there was none."""
        if not _TOKEN.fullmatch(token):
            return False
        query = WebSession.delete().where(WebSession.token_hash == token_digest(token))
        return bool(query.execute(self._db))

    def delete_for_user(self, username: str, keep_id: int | None = None) -> int:
        """End every session of `username` but `keep_id` (after a password change)."""
        user_ids = User.select(User.id).where(User.username == username)
        condition = WebSession.user.in_(user_ids)
        if keep_id is not None:
            condition &= WebSession.id != keep_id
        return int(WebSession.delete().where(condition).execute(self._db))

    def count_for_user(self, username: str) -> int:
        user_ids = User.select(User.id).where(User.username == username)
        return int(WebSession.select().where(WebSession.user.in_(user_ids)).count(self._db))

    def purge_expired(self) -> int:
        now = self._clock()
        condition = (WebSession.created_at <= now - self.policy.absolute) | (
            WebSession.last_seen <= now - self.policy.idle
        )
        return int(WebSession.delete().where(condition).execute(self._db))
