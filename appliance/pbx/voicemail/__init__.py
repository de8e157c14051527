"""Voicemail call applications (deposit, dial-in mailbox access) and the RFC 3842 body.

Both applications speak numbers and dates through an ``Announcer``; the standard one is
``appliance.pbx.announce``, and a test or another sound set may pass its own. The
applications live in ``deposit`` and ``access``, the message-summary body in ``mwi``.
"""

from __future__ import annotations

from typing import Protocol

from appliance.pbx import announce


class Announcer(Protocol):
    """Turns numbers and times into ``digits/...`` prompt names (announce.py's shape)."""

    def say_number(self, n: int, language: str, /) -> list[str]: ...

    def say_digits(self, s: str, /) -> list[str]: ...

    def say_datetime(
        self, unix_time: float, timezone: str, language: str, now: float | None = None, /
    ) -> list[str]: ...


def default_announcer() -> Announcer:
    """``appliance.pbx.announce`` itself: the module's functions fit ``Announcer``."""
    return announce
