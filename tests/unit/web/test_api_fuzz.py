"""Fuzzing of the REST API from its own OpenAPI description (schemathesis + Hypothesis).

Three properties, each over generated requests against the in-process WSGI app:

1. Signed in as the administrator (session cookie + CSRF header, and API token), no
   operation ever answers 5xx, and every answer has a documented status, content type
   and body schema.
2. Without valid credentials (none, a garbage cookie or bearer token, one kind of
   secret passed as the other, a session without its CSRF token, a cross-site
   Origin), no route of the registry (pages too, not only the documented ones) is
   reached: the guard refuses, nothing is written, never 2xx, never 5xx.
3. The "user" role, and an account that must still change its password, get 403
   from every operation they may not call, whatever the input.

The database and data folder are put back to one seed before each example (see
`api_fuzz_support`), so destructive operations (revoking the token in use, setting
the administrator's password, deleting roles) cannot hide later bugs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appliance.store.permissions import SYSTEM_ROLES, grants
from appliance.web.auth import CSRF_HEADER, LOGIN_PATH, SAFE_METHODS, SESSION_COOKIE
from appliance.web.registry import PUBLIC, SIGNED_IN, RouteSpec

from .api_fuzz_support import (
    BODIES,
    COOKIE_TEXT,
    CSV_TEXT,
    GARBAGE_AUTHORIZATION,
    PLAUSIBLE_BODIES,
    QUERY_VALUES,
    SAFE_TEXT,
    Appliance,
    Seed,
    build_seed,
    call,
    mutated,
    static_document,
)

DOCUMENT, REGISTRY = static_document()
# Credentials are the tests' business, not the generator's: without the security
# schemes schemathesis sends no Authorization header of its own.
_FUZZED = copy.deepcopy(DOCUMENT)
_FUZZED.pop("security")
_FUZZED["components"].pop("securitySchemes")
SCHEMA = schemathesis.openapi.from_dict(_FUZZED)
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]
SPECS = REGISTRY.specs()

# 25 examples an operation under the default "ci" profile; more under "deep".
EXAMPLES = max(25, settings.default.max_examples // 20)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=2),  # GET /api/backup builds an archive
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Query parameters the handlers read, which the document does not declare
# (schemathesis cannot generate what it does not know of).
QUERY_NAMES = (
    "limit",
    "before",
    "actor",
    "since",
    "until",
    "search",
    "disposition",
    "offset",
    "partial",
)
USER_PERMISSIONS = SYSTEM_ROLES["user"][1]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return build_seed(tmp_path_factory.mktemp("seed") / "data")


@pytest.fixture
def appliance(seed: Seed, tmp_path: Path) -> Iterator[Appliance]:
    built = Appliance(seed, tmp_path / "data")
    yield built
    built.close()


@schemathesis.serializer("application/gzip")
def _archive(ctx: Any, value: Any) -> bytes:
    """A generated "archive" (the restore upload, documented as binary) as raw bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _path_parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """The operation's path parameters (query ones are documented too, not generated here)."""
    return [p for p in operation.get("parameters", []) if p.get("in") == "path"]


def _known_path(
    seed: Seed, path: str, operation: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Path parameters naming objects that exist (or nearly), so handlers do real work."""
    values: dict[str, st.SearchStrategy[Any]] = {}
    for parameter in _path_parameters(operation):
        name = parameter["name"]
        known = st.sampled_from(seed.values_for(path, name))
        values[name] = known.map(int) if parameter["schema"]["type"] == "integer" else known
    return st.fixed_dictionaries(values)


def cases(seed: Seed, method: str, path: str, operation: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Schema-conforming and (where the schema leaves room) schema-violating requests;
    some aimed at existing objects, some with plausible bodies."""
    api = SCHEMA[path][method]
    found: list[st.SearchStrategy[Any]] = [api.as_strategy(GenerationMode.POSITIVE)]
    parameters = _path_parameters(operation)
    known = _known_path(seed, path, operation) if parameters else st.none()
    if parameters:
        found.append(
            known.flatmap(
                lambda values: api.as_strategy(GenerationMode.POSITIVE, path_parameters=values)
            )
        )
    plausible = PLAUSIBLE_BODIES.get((method, path))
    if plausible is not None:
        found.append(
            st.tuples(known, plausible).flatmap(
                lambda both: api.as_strategy(
                    GenerationMode.POSITIVE, path_parameters=both[0], body=both[1]
                )
            )
        )
    # Negative data needs room to be wrong: a body, or a non-string parameter.
    if "requestBody" in operation or any(p["schema"]["type"] != "string" for p in parameters):
        found.append(api.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(found)


def _strip_credentials(case: Any) -> None:
    """Drop any credential the generated case carries: the test sets its own."""
    if case.headers:
        case.headers = {
            k: v
            for k, v in case.headers.items()
            if k.lower() not in ("authorization", "cookie", CSRF_HEADER.lower(), "origin")
        }
    if case.cookies:
        case.cookies = {k: v for k, v in case.cookies.items() if k != SESSION_COOKIE}


def _send(case: Any, appliance: Appliance, username: str, auth: str, query: dict[str, str]) -> Any:
    credentials = appliance.seed.accounts[username]
    _strip_credentials(case)
    if auth == "bearer":
        return case.call(app=appliance.app, headers=credentials.bearer_headers(), params=query)
    return case.call(
        app=appliance.app,
        headers=credentials.session_headers(),
        cookies=credentials.session_cookies(),
        params=query,
    )


def _op_id(item: tuple[str, str, dict[str, Any]]) -> str:
    return f"{item[0]} {item[1]}"


# -- 1. the administrator: no 5xx, answers as documented ----------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("auth", ["session", "bearer"])
@pytest.mark.parametrize("item", OPERATIONS, ids=[_op_id(o) for o in OPERATIONS])
def test_administrator_fuzz_gets_documented_answers(
    appliance: Appliance, item: tuple[str, str, dict[str, Any]], auth: str
) -> None:
    method, path, operation = item

    @FUZZ
    @given(
        case=cases(appliance.seed, method, path, operation),
        query=st.none() | st.dictionaries(st.sampled_from(QUERY_NAMES), QUERY_VALUES, max_size=3),
    )
    def fuzz(case: Any, query: dict[str, str] | None) -> None:
        appliance.reset()
        response = _send(case, appliance, "admin", auth, query or {})
        event(f"{response.status_code}")
        # The administrator may do anything: a refusal means the fuzzer lost its
        # credentials and would go on testing nothing but the guard.
        assert response.status_code not in (401, 403), response.text
        case.validate_response(response, checks=CHECKS)

    fuzz()


# -- 2. without valid credentials, no route is reached -------------------------

# How a request comes without valid credentials; see `_attempt`.
REFUSALS = (
    "none",
    "garbage-cookie",
    "garbage-bearer",
    "session-as-bearer",
    "bearer-as-cookie",
    "csrf-missing",
    "csrf-garbage",
    "csrf-of-another-session",
    "cross-origin",
)


def _concrete(spec: RouteSpec, values: dict[str, str]) -> str:
    path = spec.rule
    for name, _ in spec.parameters:
        path = path.replace(f"<{name}:int>", values[name]).replace(f"<{name}>", values[name])
    return path


def _attempt(
    appliance: Appliance,
    spec: RouteSpec,
    path: str,
    refusal: str,
    garbage: str,
    body: bytes,
    content_type: str,
) -> Any:
    """Send one request without valid credentials of the `refusal` kind."""
    admin, alice = appliance.seed.accounts["admin"], appliance.seed.accounts["alice"]
    headers: dict[str, str] = {}
    origin = True
    if refusal == "garbage-cookie":
        headers["Cookie"] = f"{SESSION_COOKIE}={garbage}"
    elif refusal == "garbage-bearer":
        headers["Authorization"] = garbage
    elif refusal == "session-as-bearer":
        headers["Authorization"] = f"Bearer {admin.session}"
    elif refusal == "bearer-as-cookie":
        headers["Cookie"] = f"{SESSION_COOKIE}={admin.bearer}"
    elif refusal.startswith("csrf-") or refusal == "cross-origin":
        headers["Cookie"] = f"{SESSION_COOKIE}={admin.session}"
        if refusal == "csrf-garbage":
            headers[CSRF_HEADER] = garbage
        elif refusal == "csrf-of-another-session":
            headers[CSRF_HEADER] = alice.csrf
        elif refusal == "cross-origin":
            headers[CSRF_HEADER] = admin.csrf
            headers["Origin"] = "https://evil.example"
            origin = False
    return call(
        appliance.app,
        spec.method,
        path,
        headers=headers,
        body=body,
        content_type=content_type,
        origin=origin,
    )


def _applies(spec: RouteSpec, refusal: str) -> bool:
    """Whether `refusal` must stop this route (CSRF and Origin guard only changes)."""
    if spec.permission == PUBLIC:
        return False
    if refusal.startswith("csrf-") or refusal == "cross-origin":
        return spec.method not in SAFE_METHODS
    return True


def _check_refused(
    appliance: Appliance, spec: RouteSpec, path: str, refusal: str, response: Any, before: int
) -> None:
    where = f"{refusal}: {spec.method} {path!r} answered {response.status} {response.body[:200]!r}"
    assert response.status < 500, where
    if not appliance.routed(spec.method, path):
        assert response.status in (404, 405), where  # Bottle's router: no handler at all
        return
    if not _applies(spec, refusal):
        return
    if refusal in ("garbage-bearer", "session-as-bearer"):
        assert response.status == 401, where  # a bad Authorization header: 401 everywhere
        assert "invalid_token" in (response.header("WWW-Authenticate") or ""), where
    elif refusal in ("none", "garbage-cookie", "bearer-as-cookie"):
        if spec.kind == "api":
            assert response.status == 401, where
        else:
            location = response.header("Location") or ""
            assert response.status == 303, where
            assert location.startswith(f"{LOGIN_PATH}?next="), where
    else:
        assert response.status == 403, where
    # Refused before the handler: nothing written (not even a session touch).
    assert appliance.changes() == before, where


@pytest.mark.timeout(60)
@pytest.mark.parametrize("refusal", REFUSALS)
def test_every_route_refuses_requests_without_valid_credentials(
    appliance: Appliance, refusal: str
) -> None:
    """Every route of the registry (pages and API alike), with object names that exist."""
    checked = 0
    for spec in SPECS:
        seed = appliance.seed
        values = {name: seed.values_for(spec.rule, name)[0] for name, _ in spec.parameters}
        path = _concrete(spec, values)
        before = appliance.changes()
        response = _attempt(appliance, spec, path, refusal, "x", b"{}", "application/json")
        _check_refused(appliance, spec, path, refusal, response, before)
        checked += _applies(spec, refusal)
    assert checked >= 12


@pytest.mark.timeout(60)
@settings(
    max_examples=EXAMPLES * 12,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), refusal=st.sampled_from(REFUSALS), garbage=COOKIE_TEXT)
def test_fuzzed_requests_without_valid_credentials_are_refused(
    appliance: Appliance, data: st.DataObject, refusal: str, garbage: str
) -> None:
    """Any route, any path values, body and garbage: refused, or not routed at all."""
    appliance.reset()
    spec = data.draw(st.sampled_from(SPECS), label="route")
    values: dict[str, str] = {}
    for name, kind in spec.parameters:
        value = st.integers(-5, 2**70).map(str) if kind == "int" else SAFE_TEXT
        known = st.sampled_from(appliance.seed.values_for(spec.rule, name))
        values[name] = data.draw(known | value, name)
    if refusal == "garbage-bearer":
        garbage = data.draw(GARBAGE_AUTHORIZATION, label="authorization")
    body = data.draw(BODIES, label="body") if spec.method not in SAFE_METHODS else b""
    content_type = data.draw(
        st.sampled_from(["application/json", "text/csv", "application/gzip", ""]), "type"
    )
    path = _concrete(spec, values)
    before = appliance.changes()
    response = _attempt(appliance, spec, path, refusal, garbage, body, content_type)
    event(f"{refusal}: {response.status}")
    _check_refused(appliance, spec, path, refusal, response, before)


# -- 3. role boundaries ------------------------------------------------------------


API_SPECS = {(spec.method, spec.openapi_path): spec for spec in SPECS if spec.kind == "api"}


def _forbidden(method: str, path: str, username: str) -> bool:
    spec = API_SPECS[(method, path)]
    if username == "fresh":  # must change the password: only what helps doing that
        return not spec.while_must_change
    permission = spec.permission
    return permission not in (PUBLIC, SIGNED_IN) and not grants(USER_PERMISSIONS, permission)


BOUNDARIES = [
    (username, item)
    for username in ("alice", "fresh")
    for item in OPERATIONS
    if _forbidden(item[0], item[1], username)
]


def test_the_boundaries_cover_the_admin_operations() -> None:
    alice = {item[:2] for username, item in BOUNDARIES if username == "alice"}
    assert ("DELETE", "/api/users/{username}") in alice
    assert ("GET", "/api/extensions") not in alice  # extension:read_own
    assert len(alice) >= 20
    fresh = {item[:2] for username, item in BOUNDARIES if username == "fresh"}
    assert len(fresh) == len(OPERATIONS) - 1  # all but GET /api/me


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("username", "item"),
    BOUNDARIES,
    ids=[f"{u}-{_op_id(item)}" for u, item in BOUNDARIES],
)
def test_accounts_get_403_from_operations_they_may_not_call(
    appliance: Appliance, username: str, item: tuple[str, str, dict[str, Any]]
) -> None:
    method, path, operation = item

    @settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
    @given(
        case=cases(appliance.seed, method, path, operation),
        auth=st.sampled_from(["session", "bearer"]),
    )
    def fuzz(case: Any, auth: str) -> None:
        appliance.reset()
        before = appliance.state()
        response = _send(case, appliance, username, auth, {})
        sent = response.request.url.split("?")[0]
        raw = sent.split("://", 1)[1].split("/", 1)[1]
        routed = appliance.routed(method, unquote("/" + raw))
        where = f"{username} {auth}: {method} {sent} answered {response.status_code}"
        if routed:
            assert response.status_code == 403, f"{where} {response.content[:200]!r}"
            assert appliance.state() == before, where
        else:
            assert response.status_code in (404, 405), where

    fuzz()


# -- uploads the document cannot describe to the generator -------------------------


@pytest.fixture(scope="module")
def archive(seed: Seed, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real backup archive of the seed, to mutate."""
    appliance = Appliance(seed, tmp_path_factory.mktemp("archive") / "data")
    try:
        headers = seed.accounts["admin"].bearer_headers()
        response = call(appliance.app, "GET", "/api/backup", headers=headers)
    finally:
        appliance.close()
    assert response.status == 200, response.text
    return response.body


@pytest.mark.timeout(60)
@settings(
    max_examples=EXAMPLES * 4,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), auth=st.sampled_from(["session", "bearer"]))
def test_fuzzed_uploads_never_answer_5xx(
    appliance: Appliance, archive: bytes, data: st.DataObject, auth: str
) -> None:
    """Backup archives and CSV/JSON import files, as raw bodies with any declared type."""
    appliance.reset()
    target = data.draw(st.sampled_from(["restore", "import"]), label="target")
    if target == "restore":
        path, query = "/api/backup/restore", ""
        body = data.draw(mutated(archive), label="body")
        types = ["application/gzip", "application/x-gzip", "application/json", ""]
    else:
        path = "/api/extensions/import"
        query = data.draw(st.sampled_from(["", "partial=true", "partial=false", "partial=x"]))
        body = data.draw(CSV_TEXT | BODIES, label="body")
        types = ["text/csv", "text/csv; charset=utf-8", "application/json", "text/plain"]
    content_type = data.draw(st.sampled_from(types), label="type")
    admin = appliance.seed.accounts["admin"]
    if auth == "bearer":
        headers = admin.bearer_headers()
    else:
        headers = {**admin.session_headers(), "Cookie": f"{SESSION_COOKIE}={admin.session}"}
    response = call(
        appliance.app,
        "POST",
        path,
        query=query,
        headers=headers,
        body=body,
        content_type=content_type,
    )
    event(f"{target}: {response.status}")
    assert response.status in (200, 400, 413, 415), f"{response.status} {response.text[:300]}"
    assert "application/json" in (response.header("Content-Type") or "")
    assert "error" in response.json() or response.status == 200


# -- bugs found by the fuzzer, pinned until fixed ------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_revoking_a_token_id_beyond_sqlite_integers_answers_404(
    appliance: Appliance, method: str
) -> None:
    admin = appliance.seed.accounts["admin"]
    headers = {**admin.session_headers(), "Cookie": f"{SESSION_COOKIE}={admin.session}"}
    # DELETE /api/tokens/<token_id:int>, and the page's POST /tokens/<token_id:int>/revoke
    path = f"/api/tokens/{2**63}" if method == "DELETE" else f"/tokens/{2**63}/revoke"
    response = call(appliance.app, method, path, headers=headers)
    assert response.status == 404, response.text


@pytest.mark.timeout(10)
def test_the_document_describes_the_restore_upload() -> None:
    operation = DOCUMENT["paths"]["/api/backup/restore"]["post"]
    assert "application/gzip" in operation.get("requestBody", {}).get("content", {})
    assert {"411", "413", "415"} <= set(operation["responses"])
