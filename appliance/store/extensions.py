"""SIP extensions and their digest credentials (RFC 7616 §3.4.2 HA1, never the password).

HA1 = H(number ":" realm ":" password) bakes the realm in. When the SIP domain (the
realm) changes, the stored HA1 rows go stale: nothing is re-hashed automatically
(we no longer know the passwords); `Directory.stale_numbers()` lists them and
`Directory.set_password()` hashes afresh with the directory's current realm.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import peewee

from appliance.sip.digest_hash import ALGORITHMS, ha1
from appliance.store.errors import NotFoundError, StoreError
from appliance.store.models import Extension, Registration, SipCredential

MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 128
MAX_NAME: Final = 64
MAX_EMAIL: Final = 254  # RFC 5321 §4.5.3.1.3 path limit

_NUMBER = re.compile(r"[0-9]{1,15}")  # E.164 §6.1: at most 15 digits
# Deliberately loose: one @, no spaces, a dot in the domain. Mail delivery is the test.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def check_number(number: str) -> str:
    if not _NUMBER.fullmatch(number):
        raise StoreError(f"bad extension number {number!r}: must be 1 to 15 digits")
    return number


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise StoreError(f"password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StoreError(f"password too long: at most {MAX_PASSWORD} characters")
    if password != password.strip():
        # Almost always a stray space from a spreadsheet; phones would never match it.
        raise StoreError("password starts or ends with white space")
    if not password.isprintable():
        raise StoreError("password contains control characters")
    return password


def check_name(name: str | None) -> str | None:
    if name is None or name == "":
        return None
    if len(name) > MAX_NAME or not name.isprintable():
        raise StoreError(f"bad name {name!r}: at most {MAX_NAME} printable characters")
    return name


def check_email(email: str | None) -> str | None:
    if email is None or email == "":
        return None
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise StoreError(f"bad e-mail address {email!r}")
    return email


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """A challenge order: known algorithm names, no repeats, at least one."""
    order = tuple(a.strip().upper() for a in algorithms)
    unknown = [a for a in order if a not in ALGORITHMS]
    if unknown:
        raise StoreError(
            f"unknown digest algorithm(s) {', '.join(unknown)}; known: {', '.join(ALGORITHMS)}"
        )
    if not order or len(set(order)) != len(order):
        raise StoreError("algorithm list must name each algorithm at most once, at least one")
    return order


@dataclass(frozen=True, slots=True)
class ExtensionInfo:
    number: str
    name: str | None
    email: str | None
    created_at: float
    enabled: bool
    algorithms: tuple[str, ...] | None  # None: the [auth] algorithms setting applies


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the SIP server keeps in memory to check a digest response for one extension."""

    number: str
    ha1: Mapping[str, str]  # algorithm -> lower-case hex, only those of the current realm
    algorithms: tuple[str, ...] | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class NewExtension:
    """One validated row of an `add_many`: made by `Directory.check_new`."""

    number: str
    password: str
    name: str | None = None
    email: str | None = None


def _info(row: Extension) -> ExtensionInfo:
    return ExtensionInfo(
        number=row.number,
        name=row.name,
        email=row.email,
        created_at=row.created_at,
        enabled=bool(row.enabled),
        algorithms=tuple(row.auth_algorithms.split(",")) if row.auth_algorithms else None,
    )


class Directory:
    """Extensions of one realm (the SIP domain)."""

    def __init__(
        self,
        db: peewee.SqliteDatabase,
        realm: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.realm = realm
        self._clock = clock  # wall clock for created_at

    @staticmethod
    def check_new(
        number: str, password: str, name: str | None = None, email: str | None = None
    ) -> NewExtension:
        """Validate one new extension's fields without touching the database."""
        return NewExtension(
            number=check_number(number),
            password=check_password(password),
            name=check_name(name),
            email=check_email(email),
        )

    def add(
        self, number: str, password: str, name: str | None = None, email: str | None = None
    ) -> ExtensionInfo:
        self.add_many([self.check_new(number, password, name, email)])
        return self.get(number)

    def add_many(self, rows: Iterable[NewExtension]) -> int:
        """Add validated extensions in one transaction: all of them or none."""
        rows = builtins.list(rows)
        now = self._clock()
        try:
            with self._db.atomic():
                self._insert(rows, now)
        except peewee.IntegrityError as exc:
            # Another process added one of the numbers between our check and insert.
            raise StoreError(f"could not add extensions: {exc}") from exc
        return len(rows)

    def _insert(self, rows: builtins.list[NewExtension], now: float) -> None:
        taken = self.existing([r.number for r in rows])
        if taken:
            raise StoreError(f"extension {taken[0]} already exists")
        for row in rows:
            ext_id = Extension.insert(
                number=row.number, name=row.name, email=row.email, created_at=now
            ).execute(self._db)
            self._store_hashes(ext_id, row.number, row.password)

    def _store_hashes(self, ext_id: int, number: str, password: str) -> None:
        SipCredential.insert_many(
            [
                {
                    "extension": ext_id,
                    "algorithm": algorithm,
                    "realm": self.realm,
                    "ha1": ha1(algorithm, number, self.realm, password),
                }
                for algorithm in ALGORITHMS
            ]
        ).execute(self._db)

    def existing(self, numbers: Iterable[str]) -> builtins.list[str]:
        """Which of `numbers` already exist, sorted."""
        wanted = builtins.list(set(numbers))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
            chunk = wanted[start : start + 500]
            query = Extension.select(Extension.number).where(Extension.number.in_(chunk))
            found.update(row.number for row in query.execute(self._db))
        return sorted(found)

    def _row(self, number: str) -> Extension:
        row: Extension | None = Extension.select().where(Extension.number == number).first(self._db)
        if row is None:
            raise NotFoundError(f"no extension {number}")
        return row

    def get(self, number: str) -> ExtensionInfo:
        return _info(self._row(number))

    def list(self) -> builtins.list[ExtensionInfo]:
        query = Extension.select().order_by(Extension.number)
        return [_info(row) for row in query.execute(self._db)]

    def delete(self, number: str) -> None:
        """Remove the extension, its credentials (FK cascade) and its registrations.

        A running server notices through data_version and drops the bindings it holds.
        """
        with self._db.atomic():
            row = self._row(number)
            Registration.delete().where(Registration.aor == number).execute(self._db)
            Extension.delete().where(Extension.id == row.id).execute(self._db)

    def set_password(self, number: str, password: str) -> None:
        """Replace every HA1 of the extension, hashed with the current realm."""
        check_password(password)
        with self._db.atomic():
            row = self._row(number)
            SipCredential.delete().where(SipCredential.extension == row.id).execute(self._db)
            self._store_hashes(row.id, number, password)

    def set_details(self, number: str, name: str | None, email: str | None) -> ExtensionInfo:
        """Replace the display name and e-mail address ("" or None clears them)."""
        name, email = check_name(name), check_email(email)
        with self._db.atomic():
            row = self._row(number)
            query = Extension.update(name=name, email=email).where(Extension.id == row.id)
            query.execute(self._db)
        return self.get(number)

    def set_enabled(self, number: str, enabled: bool) -> None:
        with self._db.atomic():
            row = self._row(number)
            Extension.update(enabled=enabled).where(Extension.id == row.id).execute(self._db)

    def set_algorithms(self, number: str, algorithms: Iterable[str] | None) -> None:
        """Override the challenge order for one phone (None: use the [auth] default)."""
        value = None if algorithms is None else ",".join(check_algorithms(algorithms))
        with self._db.atomic():
            row = self._row(number)
            query = Extension.update(auth_algorithms=value).where(Extension.id == row.id)
            query.execute(self._db)

    def stale_numbers(self) -> builtins.list[str]:
        """Extensions with an HA1 hashed under another realm: they need `set_password`."""
        query = (
            Extension.select(Extension.number)
            .join(SipCredential)
            .where(SipCredential.realm != self.realm)
            .distinct()
            .order_by(Extension.number)
        )
        return [row.number for row in query.execute(self._db)]

    def load_credentials(self) -> dict[str, Credentials]:
        """Every extension's credentials in one query, for the SIP server's memory."""
        query = (
            Extension.select(
                Extension.number,
                Extension.enabled,
                Extension.auth_algorithms,
                SipCredential.algorithm,
                SipCredential.ha1,
            )
            .join(
                SipCredential,
                peewee.JOIN.LEFT_OUTER,
                on=(
                    (SipCredential.extension == Extension.id) & (SipCredential.realm == self.realm)
                ),
            )
            .tuples()
        )
        hashes: dict[str, dict[str, str]] = {}
        meta: dict[str, tuple[bool, str | None]] = {}
        for number, enabled, algorithms, algorithm, digest in query.execute(self._db):
            meta[number] = (bool(enabled), algorithms)
            found = hashes.setdefault(number, {})
            if algorithm is not None:
                found[algorithm] = digest
        return {
            number: Credentials(
                number=number,
                ha1=MappingProxyType(hashes[number]),
                algorithms=tuple(algorithms.split(",")) if algorithms else None,
                enabled=enabled,
            )
            for number, (enabled, algorithms) in meta.items()
        }
