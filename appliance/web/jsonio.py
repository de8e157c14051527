"""Reading JSON request bodies: bounded, an object, every field checked and named.

A body that fails answers 400 with `{"error": ..., "fields": {field: reason}}` so a
form or script can show each reason next to its field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

import bottle

from appliance.store.errors import StoreError

MAX_BODY: Final = 64 * 1024
T = TypeVar("T")


def read_object() -> dict[str, object]:
    content_type = (bottle.request.content_type or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise bottle.HTTPError(415, "send the body as application/json")
    if bottle.request.content_length > MAX_BODY:
        raise bottle.HTTPError(413, f"body larger than {MAX_BODY} bytes")
    raw = bottle.request.body.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise bottle.HTTPError(413, f"body larger than {MAX_BODY} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bottle.HTTPError(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise bottle.HTTPError(400, "body must be a JSON object")
    return value


class FieldErrors(Exception):
    """Bad fields of a request body; the guard answers 400 naming each one."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(f"invalid fields: {', '.join(sorted(fields))}")
        self.fields = fields

    def response(self) -> bottle.HTTPResponse:
        body = json.dumps({"error": "invalid request body", "fields": self.fields})
        return bottle.HTTPResponse(body, 400, headers={"Content-Type": "application/json"})


class Fields:
    """Pulls typed fields out of a decoded JSON object, gathering every error."""

    def __init__(self, data: dict[str, object], allowed: Iterable[str]) -> None:
        self.data = data
        self.errors: dict[str, str] = {}
        for key in data:
            if key not in allowed:
                self.errors[key] = "unknown field"

    def text(self, key: str, *, required: bool = True, max_length: int = 256) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.errors[key] = "required"
            return None
        if not isinstance(value, str):
            self.errors[key] = "must be a string"
            return None
        if len(value) > max_length:
            self.errors[key] = f"at most {max_length} characters"
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.errors[key] = "must be true or false"
            return default
        return value

    def strings(self, key: str, *, max_items: int = 100) -> list[str]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.errors[key] = "must be a list of strings"
            return []
        if len(value) > max_items:
            self.errors[key] = f"at most {max_items} items"
            return []
        return [str(v) for v in value]

    def check(self, key: str, value: T | None, checker: Callable[[T], object]) -> None:
        """Run a store validator on a field already read; its message becomes the error."""
        if value is None or key in self.errors:
            return
        try:
            checker(value)
        except StoreError as exc:
            self.errors[key] = str(exc)

    def done(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)
