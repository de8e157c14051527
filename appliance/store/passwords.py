"""Password hashing for web/admin accounts: scrypt (RFC 7914) with a random salt.

Stored as "scrypt$n$r$p$salt$hash" (salt and hash base64) so the cost can be raised
later while old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

SCRYPT_N: Final = 2**14  # 16 MiB of memory per hash with r=8: fine on a small board
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
_MAXMEM: Final = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_MAXMEM
    )


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches; compares in constant time, never raises."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(
            password, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected)
        )
    except ValueError:  # malformed field, bad base64, or cost parameters scrypt refuses
        return False
    return hmac.compare_digest(actual, expected)


def spend_verify_time(password: str) -> bool:
    """Do the work of one verification and return False.

    Used when the username is unknown, so that answer takes as long as a wrong password
    and does not reveal which usernames exist.
    """
    _scrypt(password, b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return False
