"""Web/admin accounts and the roles that grant them permissions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, cast

import peewee

from appliance.store.errors import NotFoundError, StoreError
from appliance.store.extensions import MIN_PASSWORD, check_password
from appliance.store.models import Extension, Role, RolePermission, User
from appliance.store.passwords import hash_password, spend_verify_time, verify_password
from appliance.store.permissions import check_permissions

_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_DESCRIPTION: Final = 200


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION or not description.isprintable():
        raise StoreError(f"bad role description: at most {MAX_DESCRIPTION} characters")
    return description


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    role: str
    extension: str | None
    must_change_password: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class RoleInfo:
    name: str
    description: str
    is_system: bool
    permissions: tuple[str, ...]


class Accounts:
    """Users and roles of one database."""

    def __init__(self, db: peewee.SqliteDatabase, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    # -- users -------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        password: str,
        role: str,
        *,
        extension: str | None = None,
        must_change_password: bool = True,
    ) -> UserInfo:
        if not _USERNAME.fullmatch(username):
            raise StoreError(f"bad username {username!r}: 1 to 64 letters, digits or _ . @ -")
        try:
            check_password(password)
        except StoreError as exc:
            raise StoreError(f"admin password: {exc} (minimum {MIN_PASSWORD})") from None
        with self._db.atomic():
            role_row = self._role(role)
            ext_id = None
            if extension is not None:
                ext = Extension.select().where(Extension.number == extension).first(self._db)
                if ext is None:
                    raise NotFoundError(f"no extension {extension}")
                ext_id = ext.id
            if User.select().where(User.username == username).first(self._db) is not None:
                raise StoreError(f"user {username!r} already exists")
            User.insert(
                username=username,
                password_hash=hash_password(password),
                role=role_row.id,
                extension=ext_id,
                must_change_password=must_change_password,
                created_at=self._clock(),
            ).execute(self._db)
        return self.get_user(username)

    def _user_query(self) -> peewee.ModelSelect:
        return (
            User.select(User, Role.name.alias("role_name"), Extension.number.alias("ext"))
            .join(Role, on=(User.role == Role.id))
            .switch(User)
            .join(Extension, peewee.JOIN.LEFT_OUTER, on=(User.extension == Extension.id))
            .dicts()
        )

    @staticmethod
    def _user_info(row: dict[str, object]) -> UserInfo:
        return UserInfo(
            username=str(row["username"]),
            role=str(row["role_name"]),
            extension=None if row["ext"] is None else str(row["ext"]),
            must_change_password=bool(row["must_change_password"]),
            created_at=cast(float, row["created_at"]),  # REAL NOT NULL
        )

    def get_user(self, username: str) -> UserInfo:
        row = self._user_query().where(User.username == username).first(self._db)
        if row is None:
            raise NotFoundError(f"no user {username!r}")
        return self._user_info(row)

    def list_users(self) -> list[UserInfo]:
        query = self._user_query().order_by(User.username)
        return [self._user_info(row) for row in query.execute(self._db)]

    def verify(self, username: str, password: str) -> UserInfo | None:
        """The user when the password is right, else None; same cost either way."""
        row = User.select(User.password_hash).where(User.username == username).first(self._db)
        if row is None:
            spend_verify_time(password)
            return None
        if not verify_password(password, row.password_hash):
            return None
        return self.get_user(username)

    def set_user_password(
        self, username: str, password: str, *, must_change_password: bool = False
    ) -> None:
        check_password(password)
        query = User.update(
            password_hash=hash_password(password), must_change_password=must_change_password
        ).where(User.username == username)
        if query.execute(self._db) == 0:
            raise NotFoundError(f"no user {username!r}")

    def set_user_role(self, username: str, role: str) -> UserInfo:
        with self._db.atomic():
            role_row = self._role(role)
            query = User.update(role=role_row.id).where(User.username == username)
            if query.execute(self._db) == 0:
                raise NotFoundError(f"no user {username!r}")
        return self.get_user(username)

    def set_user_extension(self, username: str, extension: str | None) -> UserInfo:
        """Tie the account to an extension (what a `_own` permission reaches), or untie it."""
        with self._db.atomic():
            ext_id = None
            if extension is not None:
                ext = Extension.select().where(Extension.number == extension).first(self._db)
                if ext is None:
                    raise NotFoundError(f"no extension {extension}")
                ext_id = ext.id
            query = User.update(extension=ext_id).where(User.username == username)
            if query.execute(self._db) == 0:
                raise NotFoundError(f"no user {username!r}")
        return self.get_user(username)

    def delete_user(self, username: str) -> None:
        if User.delete().where(User.username == username).execute(self._db) == 0:
            raise NotFoundError(f"no user {username!r}")

    # -- roles -------------------------------------------------------------------

    def _role(self, name: str) -> Role:
        row: Role | None = Role.select().where(Role.name == name).first(self._db)
        if row is None:
            raise NotFoundError(f"no role {name!r}")
        return row

    def get_role(self, name: str) -> RoleInfo:
        row = self._role(name)
        query = (
            RolePermission.select(RolePermission.permission)
            .where(RolePermission.role == row.id)
            .tuples()
        )
        granted = [p for (p,) in query.execute(self._db)]
        return RoleInfo(
            name=row.name,
            description=row.description,
            is_system=bool(row.is_system),
            permissions=check_permissions(granted),
        )

    def list_roles(self) -> list[RoleInfo]:
        names = [r.name for r in Role.select(Role.name).order_by(Role.name).execute(self._db)]
        return [self.get_role(name) for name in names]

    def create_role(self, name: str, description: str, permissions: Iterable[str]) -> RoleInfo:
        if not _ROLE_NAME.fullmatch(name):
            raise StoreError(
                f"bad role name {name!r}: a lower-case letter, then up to 31 of a-z 0-9 _ -"
            )
        _check_description(description)
        granted = check_permissions(permissions)
        with self._db.atomic():
            if Role.select().where(Role.name == name).first(self._db) is not None:
                raise StoreError(f"role {name!r} already exists")
            role_id = Role.insert(name=name, description=description, is_system=False).execute(
                self._db
            )
            if granted:
                RolePermission.insert_many(
                    [{"role": role_id, "permission": p} for p in granted]
                ).execute(self._db)
        return self.get_role(name)

    def update_role(self, name: str, description: str, permissions: Iterable[str]) -> RoleInfo:
        """Replace a custom role's description and permissions; system roles are fixed
        (migrations seed them and a test holds them to `SYSTEM_ROLES`)."""
        _check_description(description)
        granted = check_permissions(permissions)
        with self._db.atomic():
            row = self._role(name)
            if row.is_system:
                raise StoreError(f"role {name!r} is a system role and cannot be changed")
            Role.update(description=description).where(Role.id == row.id).execute(self._db)
            RolePermission.delete().where(RolePermission.role == row.id).execute(self._db)
            if granted:
                RolePermission.insert_many(
                    [{"role": row.id, "permission": p} for p in granted]
                ).execute(self._db)
        return self.get_role(name)

    def delete_role(self, name: str) -> None:
        """Delete a custom role; system roles and roles still given to users are kept."""
        with self._db.atomic():
            row = self._role(name)
            if row.is_system:
                raise StoreError(f"role {name!r} is a system role and cannot be deleted")
            users = User.select().where(User.role == row.id).count(self._db)
            if users:
                raise StoreError(f"role {name!r} is still given to {users} user(s)")
            Role.delete().where(Role.id == row.id).execute(self._db)
