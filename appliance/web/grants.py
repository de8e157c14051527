"""The escalation rule of the web UI and API: nobody grants a permission they lack.

It covers giving a role to an account, changing or resetting an account that holds a
role, and writing a custom role's permission list (what is added and what is taken
away): a weaker account can neither climb nor weaken a stronger one.
"""

from __future__ import annotations

from collections.abc import Iterable

from appliance.store.users import Accounts
from appliance.web.auth import Principal


def lacking(principal: Principal, permissions: Iterable[str]) -> list[str]:
    """The permissions of `permissions` that `principal` does not hold, sorted."""
    return sorted(p for p in set(permissions) if not principal.may(p))


def role_lacking(principal: Principal, accounts: Accounts, role: str) -> list[str]:
    """What `principal` lacks of the role named `role` (NotFoundError if none)."""
    return lacking(principal, accounts.get_role(role).permissions)
