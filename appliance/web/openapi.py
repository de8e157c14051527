"""The OpenAPI 3.1 description of the REST API, built from the route registry."""

from __future__ import annotations

from typing import Final, cast

from appliance.web.registry import PUBLIC, SIGNED_IN, Registry, RouteSpec, Schema
from appliance.web.schemas import ERROR

OPENAPI_VERSION: Final = "3.1.0"
_ERRORS: Final[dict[int, str]] = {
    400: "Bad request: the fields object names each bad field",
    401: "Not signed in, or a bad API token",
    403: "Signed in, but the role lacks the permission (or the CSRF token is wrong)",
    404: "No such object",
}
# Where the request has a body: what the body checks answer before any handler.
_BODY_ERRORS: Final[dict[int, str]] = {
    411: "The body needs a Content-Length",
    413: "The body is larger than allowed",
    415: "The body is not of the media type this operation takes",
}


def _json(schema: Schema, description: str) -> dict[str, object]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(spec: RouteSpec) -> dict[str, object]:
    responses: dict[str, object] = {}
    if spec.produces is not None:
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[str(spec.status)] = {"description": "Success", "content": {spec.produces: binary}}
    elif spec.response is None:
        responses[str(spec.status)] = {"description": "Done"}
    else:
        responses[str(spec.status)] = _json(spec.response, "Success")
    errors = dict(_ERRORS)
    if spec.request is not None or spec.consumes is not None:
        errors |= _BODY_ERRORS
    errors |= dict(spec.errors)
    for status, description in errors.items():
        responses[str(status)] = _json(ERROR, description)
    operation: dict[str, object] = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}{spec.openapi_path}".replace("/", "_")
        .replace("{", "")
        .replace("}", ""),
        "x-permission": spec.permission,
        "responses": responses,
    }
    if spec.permission == PUBLIC:
        operation["security"] = []
    if spec.parameters:
        operation["parameters"] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if kind == "int" else "string"},
            }
            for name, kind in spec.parameters
        ]
    if spec.consumes is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {spec.consumes: {"schema": {"type": "string", "format": "binary"}}},
        }
    elif spec.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": spec.request}},
        }
    if spec.query:
        params = cast(list[dict[str, object]], operation.setdefault("parameters", []))
        params.extend(
            {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
            for name, kind in spec.query
        )
    return operation


def document(registry: Registry, version: str) -> dict[str, object]:
    paths: dict[str, dict[str, object]] = {}
    for spec in registry.specs():
        if spec.kind == "api":
            paths.setdefault(spec.openapi_path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "YakYak REST API",
            "version": version,
            "description": (
                "Send an API token (made on the web UI's API tokens page) as "
                "`Authorization: Bearer yk_...`. A browser session works too, and then "
                "every request that changes something needs the X-CSRF-Token header "
                "(its value is in GET /api/me). x-permission names what each operation "
                f"needs; {SIGNED_IN!r} means any signed-in account."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "__Host-yakyak_session"},
            }
        },
        "security": [{"bearer": []}, {"session": []}],
    }
