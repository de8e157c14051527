"""Errors raised by the store: all are `StoreError`, a `ValueError` with a one-line message."""

from __future__ import annotations


class StoreError(ValueError):
    """A request the store refuses (bad input, missing row, protected row, ...).

    The message is written for the person at the command line or web form: one line,
    says what was wrong and, where useful, what to do instead.
    """


class NotFoundError(StoreError):
    """The named extension, user, role or lockout does not exist."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer YakYak than this one."""
