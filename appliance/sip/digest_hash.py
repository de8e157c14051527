"""Digest hash functions named by RFC 7616 §6.1 / RFC 8760 algorithm tokens."""

from __future__ import annotations

import hashlib
from typing import Final

# Order is our default preference when offering challenges (strongest last is *not*
# what phones want: see appliance.pbx.auth for the offered order).
ALGORITHMS: Final[tuple[str, ...]] = ("MD5", "SHA-256", "SHA-512-256")

_HASHLIB_NAMES: Final[dict[str, str]] = {
    "MD5": "md5",
    "SHA-256": "sha256",
    "SHA-512-256": "sha512_256",
}


def digest_hex(algorithm: str, data: str) -> str:
    """H(data) for one of ALGORITHMS, lower-case hex (RFC 7616 §3.4)."""
    try:
        name = _HASHLIB_NAMES[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None
    return hashlib.new(name, data.encode("utf-8")).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 = H(username ":" realm ":" password), what we store instead of the password."""
    return digest_hex(algorithm, f"{username}:{realm}:{password}")
