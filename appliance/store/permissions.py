"""Permissions (`resource:action` strings) and the three system roles built from them.

Actions ending in `_own` are limited to the account's own extension, mailbox, call
records or profile; the web layer applies that scope, the store only keeps the names.
A permission also grants its `_own` twin (`extension:read` covers `extension:read_own`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from appliance.store.errors import StoreError

RESOURCES: Final[tuple[str, ...]] = (
    "user",
    "call",
    "cdr",
    "system",
    "conference",
    "voicemail",
    "extension",
    "role",
    "audit",
)

# Every valid permission; anything else is refused when a role is created.
PERMISSIONS: Final[tuple[str, ...]] = (
    "user:read",
    "user:write",
    "user:delete",
    "user:read_own",
    "user:write_own",  # own password, name, e-mail
    "call:read",  # see every active call
    "call:make",
    "call:hangup",  # end anybody's call
    "cdr:read",
    "cdr:delete",
    "cdr:read_own",
    "system:read",  # status, logs, settings
    "system:write",  # settings, network, restart, update
    "conference:read",
    "conference:write",
    "conference:delete",
    "conference:join",
    "voicemail:read",
    "voicemail:write",  # greetings and mailbox options of any mailbox
    "voicemail:delete",
    "voicemail:read_own",
    "voicemail:delete_own",
    "extension:read",  # every extension
    "extension:write",  # add, edit, reset SIP passwords
    "extension:delete",
    "extension:read_own",  # the extension tied to the account
    "role:read",
    "role:write",
    "role:delete",
    "audit:read",  # who changed what, from where
)

ADMINISTRATOR: Final = "administrator"
OPERATOR: Final = "operator"
USER: Final = "user"

# name -> (description, permissions). Migrations seed these; a test checks that a
# fresh database still matches, so changing this needs a migration too.
SYSTEM_ROLES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    ADMINISTRATOR: ("Everything, including users, roles and system settings", PERMISSIONS),
    OPERATOR: (
        "Front desk: watches and handles calls, conferences and call records",
        (
            "user:read",
            "user:read_own",
            "user:write_own",
            "call:read",
            "call:make",
            "call:hangup",
            "cdr:read",
            "system:read",
            "conference:read",
            "conference:write",
            "conference:delete",
            "conference:join",
            "voicemail:read",
            "voicemail:read_own",
            "voicemail:delete_own",
            "extension:read",
            "extension:read_own",
        ),
    ),
    USER: (
        "A phone user: own calls, own voicemail, own profile",
        (
            "user:read_own",
            "user:write_own",
            "call:make",
            "cdr:read_own",
            "conference:join",
            "voicemail:read_own",
            "voicemail:delete_own",
            "extension:read_own",
        ),
    ),
}


def check_permissions(permissions: Iterable[str]) -> tuple[str, ...]:
    """The permissions, sorted and de-duplicated, or StoreError naming the bad ones."""
    wanted = set(permissions)
    unknown = sorted(wanted.difference(PERMISSIONS))
    if unknown:
        raise StoreError(
            f"unknown permission(s): {', '.join(unknown)}; "
            "permissions look like 'resource:action', e.g. 'call:make'"
        )
    return tuple(p for p in PERMISSIONS if p in wanted)


def grants(granted: Iterable[str], needed: str) -> bool:
    """Whether `granted` allows `needed`; `resource:action` also covers `resource:action_own`."""
    have = set(granted)
    if needed in have:
        return True
    return needed.endswith("_own") and needed.removesuffix("_own") in have
