"""Settings changed at run time (from the web UI), stored as JSON text by key.

Start-up configuration lives in yakyak.toml (appliance.config); these are the values
an administrator changes while the box runs and that must survive a restart.
"""

from __future__ import annotations

import json
import re
from typing import Final

import peewee

from appliance.store.errors import StoreError
from appliance.store.models import Setting

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

MAX_VALUE_BYTES: Final = 64 * 1024
# Set by the web UI's first-run wizard, read by the PBX at start.
TIME_ZONE_KEY: Final = "system.time_zone"  # IANA name, e.g. "Europe/Berlin"
COUNTRY_KEY: Final = "system.country"  # ISO 3166-1 alpha-2 of the tone plan
# The analog ports' roles set in the web UI, over yakyak.toml's [board] ones:
# {"fxs": {"1": "201"}, "fxo": {"3": "500"}} (port number as text -> number)
ANALOG_ROLES_KEY: Final = "analog.roles"
_KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")  # dotted, e.g. "voicemail.max_seconds"


def _check_key(key: str) -> str:
    if len(key) > 100 or not _KEY.fullmatch(key):
        raise StoreError(f"bad setting key {key!r}: dotted lower-case words")
    return key


def get_setting(db: peewee.SqliteDatabase, key: str, default: JsonValue = None) -> JsonValue:
    row = Setting.select(Setting.value).where(Setting.key == _check_key(key)).first(db)
    if row is None:
        return default
    value: JsonValue = json.loads(row.value)
    return value


def set_setting(db: peewee.SqliteDatabase, key: str, value: JsonValue) -> None:
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"setting {key}: value is not JSON: {exc}") from None
    if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
        raise StoreError(f"setting {key}: value larger than {MAX_VALUE_BYTES} bytes")
    Setting.insert(key=_check_key(key), value=text).on_conflict(
        conflict_target=[Setting.key], update={Setting.value: text}
    ).execute(db)


def delete_setting(db: peewee.SqliteDatabase, key: str) -> bool:
    return bool(Setting.delete().where(Setting.key == _check_key(key)).execute(db))


def all_settings(db: peewee.SqliteDatabase) -> dict[str, JsonValue]:
    query = Setting.select(Setting.key, Setting.value).order_by(Setting.key).tuples()
    return {key: json.loads(text) for key, text in query.execute(db)}
