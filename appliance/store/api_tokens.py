"""API tokens for scripts: `Authorization: Bearer yk_...`, kept as SHA-256 digests.

The secret is shown once, when made. The digest suffices because a token is 256
random bits: nothing to guess, so a slow password hash would only cost CPU.
"""

from __future__ import annotations

import builtins
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import peewee

from appliance.store.errors import NotFoundError, StoreError
from appliance.store.models import ApiToken, User
from appliance.store.web_sessions import TOKEN_BYTES, token_digest

TOKEN_PREFIX: Final = "yk_"
SHOWN_PREFIX: Final = 8  # characters of the secret kept to tell tokens apart in a list
MAX_NAME: Final = 64
MAX_TOKENS_PER_USER: Final = 50
_SECRET = re.compile(r"yk_[A-Za-z0-9_-]{43}")
TOUCH_EVERY: Final = 60.0  # s: last_used_at is written at most this often


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    username: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None


def check_token_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise StoreError(f"token name: 1 to {MAX_NAME} printable characters")
    return name


class ApiTokens:
    """API tokens of one database."""

    def __init__(
        self,
        db: peewee.SqliteDatabase,
        clock: Callable[[], float] = time.time,
        token_source: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self._db = db
        self._clock = clock
        self._token = token_source

    def create(self, username: str, name: str) -> tuple[str, TokenInfo]:
        """A new token: (the secret, shown only now; its description)."""
        name = check_token_name(name)
        secret = TOKEN_PREFIX + self._token(TOKEN_BYTES)
        with self._db.atomic():
            user = User.select(User.id).where(User.username == username).first(self._db)
            if user is None:
                raise NotFoundError(f"no user {username!r}")
            count = ApiToken.select().where(ApiToken.user == user.id).count(self._db)
            if count >= MAX_TOKENS_PER_USER:
                raise StoreError(f"at most {MAX_TOKENS_PER_USER} tokens per user: revoke one first")
            token_id = ApiToken.insert(
                token_hash=token_digest(secret),
                user=user.id,
                name=name,
                prefix=secret[: len(TOKEN_PREFIX) + SHOWN_PREFIX],
                created_at=self._clock(),
            ).execute(self._db)
        return secret, self.get(token_id)

    def _query(self) -> peewee.ModelSelect:
        return (
            ApiToken.select(ApiToken, User.username)
            .join(User, on=(ApiToken.user == User.id))
            .order_by(ApiToken.id)
            .dicts()
        )

    @staticmethod
    def _info(row: dict[str, object]) -> TokenInfo:
        last = row["last_used_at"]
        return TokenInfo(
            id=int(row["id"]),  # type: ignore[call-overload]  # INTEGER PRIMARY KEY
            username=str(row["username"]),
            name=str(row["name"]),
            prefix=str(row["prefix"]),
            created_at=float(row["created_at"]),  # type: ignore[arg-type]  # REAL NOT NULL
            last_used_at=None if last is None else float(last),  # type: ignore[arg-type]
        )

    def get(self, token_id: int) -> TokenInfo:
        if not 0 < token_id < 2**63:  # SQLite's INTEGER: a larger id cannot exist
            raise NotFoundError(f"no token {token_id}")
        row = self._query().where(ApiToken.id == token_id).first(self._db)
        if row is None:
            raise NotFoundError(f"no token {token_id}")
        return self._info(row)

    def list(self, username: str | None = None) -> builtins.list[TokenInfo]:
        """Every token, or those of one user, oldest first."""
        query = self._query()
        if username is not None:
            query = query.where(User.username == username)
        return [self._info(row) for row in query.execute(self._db)]

    def revoke(self, token_id: int, username: str | None = None) -> TokenInfo:
        """Delete a token (only if it is `username`'s, when given); NotFoundError if not."""
        with self._db.atomic():
            info = self.get(token_id)
            if username is not None and info.username != username:
                raise NotFoundError(f"no token {token_id}")
            ApiToken.delete().where(ApiToken.id == token_id).execute(self._db)
        return info

    def authenticate(self, secret: str) -> str | None:
        """The username a token belongs to, or None."""
        if not _SECRET.fullmatch(secret):
            return None
        row = (
            ApiToken.select(ApiToken.id, ApiToken.last_used_at, User.username)
            .join(User, on=(ApiToken.user == User.id))
            .where(ApiToken.token_hash == token_digest(secret))
            .dicts()
            .first(self._db)
        )
        if row is None:
            return None
        now = self._clock()
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY:
            ApiToken.update(last_used_at=now).where(ApiToken.id == row["id"]).execute(self._db)
        return str(row["username"])
