"""JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the REST API's bodies.

Requests are checked by the handlers' parse functions; these describe them for the
OpenAPI document, and the tests check every real response against them.
"""

from __future__ import annotations

from typing import Final

from appliance.web.registry import Schema

_TIME: Final[Schema] = {"type": "number", "description": "Unix time"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] | None = None) -> Schema:
    """An object with exactly these properties; all required unless told."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


def items(schema: Schema) -> Schema:
    return obj({"items": {"type": "array", "items": schema}})


NULLABLE_STRING: Final[Schema] = {"type": ["string", "null"]}

ERROR: Final = obj(
    {
        "error": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    required=("error",),
)
ME: Final = obj(
    {
        "username": {"type": "string"},
        "role": {"type": "string"},
        "extension": NULLABLE_STRING,
        "permissions": {"type": "array", "items": {"type": "string"}},
        "must_change_password": {"type": "boolean"},
        "auth": {"enum": ["session", "token"]},
        "csrf_token": NULLABLE_STRING,
    }
)
TOKEN: Final = obj(
    {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "created_at": _TIME,
        "last_used_at": {"type": ["number", "null"]},
    }
)
TOKEN_CREATED: Final = obj(
    {
        "token": {"type": "string", "description": "the secret: shown only in this answer"},
        "info": TOKEN,
    }
)
TOKEN_NEW: Final = obj({"name": {"type": "string", "minLength": 1, "maxLength": 64}})
AUDIT_ENTRY: Final = obj(
    {
        "id": {"type": "integer"},
        "at": _TIME,
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "target": {"type": "string"},
        "address": {"type": "string"},
        "detail": {"type": "string"},
    }
)
USER: Final = obj(
    {
        "username": {"type": "string"},
        "role": {"type": "string"},
        "extension": NULLABLE_STRING,
        "must_change_password": {"type": "boolean"},
        "created_at": _TIME,
    }
)
USER_NEW: Final = obj(
    {
        "username": {"type": "string"},
        "password": {"type": "string", "minLength": 8},
        "role": {"type": "string"},
        "extension": NULLABLE_STRING,
    },
    required=("username", "password", "role"),
)
USER_PASSWORD: Final = obj(
    {
        "password": {"type": "string", "minLength": 8},
        "must_change_password": {"type": "boolean"},
    },
    required=("password",),
)
ROLE: Final = obj(
    {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "is_system": {"type": "boolean"},
        "permissions": {"type": "array", "items": {"type": "string"}},
    }
)
ROLE_NEW: Final = obj(
    {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "permissions": {"type": "array", "items": {"type": "string"}},
    },
    required=("name", "permissions"),
)
EXTENSION: Final = obj(
    {
        "number": {"type": "string"},
        "name": NULLABLE_STRING,
        "email": NULLABLE_STRING,
        "created_at": _TIME,
        "enabled": {"type": "boolean"},
        "algorithms": {"type": ["array", "null"], "items": {"type": "string"}},
    }
)
EXTENSION_NEW: Final = obj(
    {
        "number": {"type": "string", "pattern": "^[0-9]{1,15}$"},
        "password": {"type": ["string", "null"], "description": "generated when absent"},
        "name": NULLABLE_STRING,
        "email": NULLABLE_STRING,
    },
    required=("number",),
)
EXTENSION_CREATED: Final = obj(
    {
        "extension": EXTENSION,
        "password": {"type": "string", "description": "SIP password: shown only in this answer"},
    }
)
EXTENSION_PASSWORD: Final = obj(
    {"password": {"type": ["string", "null"], "description": "generated when absent"}},
    required=(),
)
NEW_PASSWORD: Final = obj(
    {"password": {"type": "string", "description": "shown only in this answer"}}
)
EMPTY: Final = obj({})
