"""The auto-attendant document (menus and schedules, ``appliance.pbx.ivr.menu`` format)
kept as JSON in the ``ivr_menu`` table, one row named ``DOCUMENT``."""

from __future__ import annotations

import json
import time
from typing import Final

import peewee

from appliance.store.errors import StoreError
from appliance.store.models import IvrMenu

DOCUMENT: Final = "ivr"


def load_ivr(db: peewee.SqliteDatabase) -> object | None:
    """The stored document, or None when there is none."""
    row = IvrMenu.select().where(IvrMenu.name == DOCUMENT).first(db)
    if row is None:
        return None
    try:
        document: object = json.loads(row.definition)
        return document
    except json.JSONDecodeError as exc:
        raise StoreError(f"stored auto-attendant document is not JSON: {exc}") from None


def save_ivr(db: peewee.SqliteDatabase, document: object) -> None:
    """Replace the document (the caller has checked it with ``parse_ivr``)."""
    text = json.dumps(document, sort_keys=True)
    with db.atomic():
        IvrMenu.insert(name=DOCUMENT, definition=text, updated_at=time.time()).on_conflict(
            conflict_target=[IvrMenu.name],
            update={IvrMenu.definition: text, IvrMenu.updated_at: time.time()},
        ).execute(db)
