"""Support for the REST API fuzz tests: a seeded appliance whose database and data
folder are put back to the seed before every generated example, a bare WSGI caller
for requests that schemathesis would not send (garbage credentials, raw paths), and
the Hypothesis strategies of what schemathesis cannot derive from the document.

Resetting per example, not per test, is what lets the fuzzer delete the signed-in
administrator's password, revoke the very token it is using or drop every role
without locking itself out of the next example: each example starts from the seed.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import shutil
import sqlite3
import string
import sys
import tarfile
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bottle
import peewee
from hypothesis import strategies as st

from appliance.config import write_default
from appliance.store.db import open_database
from appliance.store.permissions import PERMISSIONS
from appliance.store.settings import set_setting
from appliance.store.voicemail import VoicemailStore
from appliance.web.app import create_app
from appliance.web.auth import CSRF_HEADER, SESSION_COOKIE
from appliance.web.headers import SecurityHeaders
from appliance.web.openapi import document
from appliance.web.registry import Registry
from appliance.web.services import WebServices, build_services
from appliance.web.throttle import ThrottlePolicy
from appliance.web.wizard import SETUP_DONE

from .conftest import HOST, PASSWORDS, REALM, ManualClock, Response

DB_NAME = "yakyak.db"
ADDRESS = "192.0.2.10"


def static_document() -> tuple[dict[str, Any], Registry]:
    """The OpenAPI document and registry, built at import time for parametrizing.

    The routes are registered without touching the database, so an unmigrated
    in-memory one is enough; the tests themselves run against real files."""
    services = build_services(peewee.SqliteDatabase(":memory:"), REALM, clock=ManualClock())
    _, registry = create_app(services)
    return document(registry, "0"), registry


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How one account signs its requests: a session (cookie + CSRF) and an API token."""

    username: str
    session: str
    csrf: str
    bearer: str
    token_id: int

    def session_cookies(self) -> dict[str, str]:
        return {SESSION_COOKIE: self.session}

    def session_headers(self) -> dict[str, str]:
        return {CSRF_HEADER: self.csrf}

    def bearer_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer}"}


@dataclasses.dataclass(frozen=True)
class Seed:
    """A data folder (database, yakyak.toml, a voicemail) to copy; its credentials."""

    folder: Path
    accounts: dict[str, Credentials]
    message: str  # file name of the voicemail in 101's mailbox
    path_values: dict[str, tuple[str, ...]]  # existing objects, by path parameter name

    def values_for(self, path: str, name: str) -> tuple[str, ...]:
        """Values of path parameter `name` naming objects that exist (or nearly) on the
        route `path` (Bottle or OpenAPI syntax): `name` is a role on one, a route on
        another, a message on a third."""
        if name == "name":
            if path.startswith("/api/routes") or path.startswith("/routes"):
                return ("fuzz-route", "missing")
            if "/voicemail/" in path:
                return (self.message, "missing.wav")
            if "/roles" in path:
                return ("fuzz-role", "administrator", "user", "missing")
        return self.path_values[name]


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x02" * 800)
    return out.getvalue()


def build_seed(folder: Path) -> Seed:
    """Users admin/oper/alice/fresh as in conftest, extensions 101 and 102, a custom
    role, a web route, a voicemail, and a session and API token for each account."""
    folder.mkdir(parents=True, exist_ok=True)
    clock = ManualClock()
    db = open_database(folder / DB_NAME)
    services = build_services(db, REALM, clock=clock, data_dir=folder)
    services.directory.add("101", "sip-password-101", "Alice")
    services.directory.add("102", "sip-password-102", "Bob")
    accounts = services.accounts
    accounts.create_user("admin", PASSWORDS["admin"], "administrator", must_change_password=False)
    accounts.create_user("oper", PASSWORDS["oper"], "operator", must_change_password=False)
    accounts.create_user(
        "alice", PASSWORDS["alice"], "user", extension="101", must_change_password=False
    )
    accounts.create_user("fresh", PASSWORDS["fresh"], "administrator")  # must change
    accounts.create_role("fuzz-role", "Fuzz", ["cdr:read"])
    set_setting(db, SETUP_DONE, True)
    write_default(folder, "yakyak.local")

    credentials = {}
    for username in PASSWORDS:
        session, info = services.sessions.create(username, ADDRESS)
        bearer, token = services.tokens.create(username, "fuzz")
        credentials[username] = Credentials(username, session, info.csrf_token, bearer, token.id)
    _, spare = services.tokens.create("admin", "spare")

    store = VoicemailStore(db, folder / "voicemail")
    store.create_mailbox("101", "1234")
    recording = store.new_recording_path()
    recording.write_bytes(_wav())
    message_id = store.store_message("101", recording, 0.1, "102", "Bob", True, 1.7e9)
    assert message_id is not None
    stored = store.message("101", message_id)
    assert stored is not None
    message = Path(stored.recording.path).name

    # A route added from the web, through the API as a script would.
    app, _ = create_app(services)
    response = call(
        SecurityHeaders(app),
        "POST",
        "/api/routes",
        headers=credentials["admin"].bearer_headers(),
        json_body={
            "name": "fuzz-route",
            "pattern": "_4XX",
            "target": {"type": "extension", "number": "101"},
        },
    )
    assert response.status == 201, response.text
    db.close()  # checkpoints the WAL: the file alone is the whole database

    token_ids = [str(c.token_id) for c in credentials.values()] + [str(spare.id), "0", "9999"]
    path_values = {
        "username": (*PASSWORDS, "nobody"),
        "token_id": tuple(token_ids),
        "number": ("101", "102", "999"),
        "name": ("fuzz-role", "administrator", "user", "fuzz-route", message, "missing"),
    }
    return Seed(folder, credentials, message, path_values)


class Appliance:
    """The app over a copy of the seed; `reset` puts the copy back to the seed."""

    def __init__(self, seed: Seed, folder: Path) -> None:
        self.seed = seed
        self.folder = folder
        shutil.copytree(seed.folder, folder, ignore=shutil.ignore_patterns(f"{DB_NAME}-*"))
        self.db = open_database(folder / DB_NAME)
        # No fsync per commit: a crash of the test process loses nothing worth keeping.
        self.db.execute_sql("PRAGMA synchronous=OFF")
        self.services: WebServices = build_services(
            self.db,
            REALM,
            clock=ManualClock(),
            data_dir=folder,
            throttle=ThrottlePolicy(max_failures=3, address_max_failures=6),
            # The YakYak OS image as the web sees it: update uploads and the SSH switch
            # write into this temporary copy, which `reset` puts back.
            updates_available=True,
        )
        self.bottle, self.registry = create_app(self.services)
        self.app = SecurityHeaders(self.bottle)
        self._source = sqlite3.connect(seed.folder / DB_NAME)
        self._seed_files = _files(seed.folder)

    def reset(self) -> None:
        """The database and the data folder exactly as seeded (under 1 ms unless
        files changed)."""
        self._source.backup(self.db.connection())
        if _files(self.folder) != self._seed_files:
            self._reset_files()

    def _reset_files(self) -> None:
        for entry in self.folder.iterdir():
            if entry.name.startswith(DB_NAME):
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for entry in self.seed.folder.iterdir():
            if entry.name.startswith(DB_NAME):
                continue
            if entry.is_dir():
                shutil.copytree(entry, self.folder / entry.name)
            else:
                shutil.copy2(entry, self.folder / entry.name)

    def changes(self) -> int:
        """Rows written through the app's connection so far."""
        return self.db.connection().total_changes

    def state(self) -> list[object]:
        """Every row of the database, except the bookkeeping of signing in (when an
        API token or a session was last used): what a refused request must not change."""
        rows: list[object] = []
        tables = self.db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        for (table,) in tables:
            columns = "id" if table in ("api_token", "web_session") else "*"
            query = (
                f'SELECT {columns} FROM "{table}" ORDER BY rowid'  # table names from sqlite_master
            )
            rows.append((table, self.db.execute_sql(query).fetchall()))
        return rows

    def close(self) -> None:
        self._source.close()
        self.db.close()

    def routed(self, method: str, path_info: str) -> bool:
        """Whether Bottle's router sends this request to a handler at all."""
        try:
            self.bottle.router.match({"REQUEST_METHOD": method, "PATH_INFO": path_info})
        except bottle.HTTPError:
            return False
        return True


def _files(folder: Path) -> set[tuple[str, int, int]]:
    """(path, size, mtime) of every file outside the database: enough to see a change."""
    found = set()
    for entry in folder.rglob("*"):
        if not entry.name.startswith(DB_NAME):
            info = entry.stat()
            found.add((str(entry.relative_to(folder)), info.st_size, info.st_mtime_ns))
    return found


def wsgi_path(path: str) -> str:
    """A decoded path as WSGI carries it in PATH_INFO (PEP 3333: latin-1 of the bytes)."""
    return path.encode("utf-8").decode("latin-1")


def call(
    app: Any,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    json_body: object = None,
    content_type: str = "",
    origin: bool = True,
) -> Response:
    """One request to the WSGI app, `path` already decoded (may hold any character)."""
    if json_body is not None:
        body = json.dumps(json_body).encode()
        content_type = "application/json"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": wsgi_path(path),
        "QUERY_STRING": query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": HOST,
        "REMOTE_ADDR": ADDRESS,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if origin and method not in ("GET", "HEAD"):
        environ["HTTP_ORIGIN"] = f"https://{HOST}"
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"] = int(status.split()[0])
        seen["headers"] = headers
        return lambda data: None

    chunks = app(environ, start_response)
    data = b"".join(chunks)
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return Response(seen["status"], seen["headers"], data)


# -- strategies of the fuzz tests --------------------------------------------------

QUERY_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", "1_0", "٣", "true", "answered"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
PATTERNS = st.from_regex(r"_[0-9XZN.\[\]-]{1,5}|\+?[0-9]{1,8}|[^/]{0,6}", fullmatch=True)
TARGETS = st.one_of(
    st.fixed_dictionaries({"type": st.just("extension"), "number": st.sampled_from(["101", "9"])}),
    st.fixed_dictionaries({"type": st.just("voicemail"), "mailbox": st.sampled_from(["101", ""])}),
    st.fixed_dictionaries({"type": st.just("ivr"), "menu": st.sampled_from(["main", "no"])}),
    st.fixed_dictionaries({"type": st.just("analog"), "port": st.integers(-1, 9) | st.text()}),
    st.fixed_dictionaries(
        {"type": st.just("reject"), "cause": st.sampled_from([21, 0, 999, "call_rejected", "x"])}
    ),
    st.fixed_dictionaries({"type": st.just("trunk")}, optional={"name": st.text(max_size=5)}),
)
PERMISSION_LISTS = st.lists(st.sampled_from([*PERMISSIONS, "no:such"]), max_size=4)
ROLES = st.sampled_from(["administrator", "operator", "user", "fuzz-role", "nope"])
EXTENSIONS = st.sampled_from([None, "101", "102", "999", "x"])
ROUTE_BODY = st.fixed_dictionaries({"name": NAMES, "pattern": PATTERNS, "target": TARGETS})
# Bodies that get past the handlers' own checks more often than schema-random ones:
# role names, route patterns and targets, user names that can exist.
PLAUSIBLE_BODIES: dict[tuple[str, str], st.SearchStrategy[dict[str, Any]]] = {
    ("POST", "/api/roles"): st.fixed_dictionaries(
        {"name": NAMES, "permissions": PERMISSION_LISTS},
        optional={"description": st.text(max_size=20)},
    ),
    ("PATCH", "/api/roles/{name}"): st.fixed_dictionaries(
        {}, optional={"description": st.text(max_size=20), "permissions": PERMISSION_LISTS}
    ),
    ("POST", "/api/routes"): ROUTE_BODY,
    ("PUT", "/api/routes/{name}"): ROUTE_BODY,
    ("POST", "/api/users"): st.fixed_dictionaries(
        {"username": NAMES, "password": st.text(min_size=8, max_size=20), "role": ROLES},
        optional={"extension": EXTENSIONS},
    ),
    ("PATCH", "/api/users/{username}"): st.fixed_dictionaries(
        {}, optional={"role": ROLES, "extension": EXTENSIONS}
    ),
}


SAFE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="/"),
    min_size=1,
    max_size=20,
)
COOKIE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_.~%+=", max_size=60)
# Authorization header values: nothing here is a live secret of the seed.
GARBAGE_AUTHORIZATION = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    COOKIE_TEXT.map(lambda s: f"Bearer {s}"),
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=43, max_size=43).map(
        lambda s: f"Bearer yk_{s}"
    ),
    st.sampled_from(["Bearer", "Bearer ", "bearer", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtMQ=="]),
)
BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
)


def mutated(archive: bytes) -> st.SearchStrategy[bytes]:
    """The archive cut short, with bytes changed, or its gzip stream around other data."""
    cut = st.integers(0, len(archive)).map(lambda n: archive[:n])
    flipped = st.lists(
        st.tuples(st.integers(0, len(archive) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ).map(lambda edits: patch_bytes(archive, edits))
    wrapped = st.binary(max_size=512).map(gzip.compress)
    tarred = st.dictionaries(
        st.sampled_from(["manifest.json", "yakyak.db", "yakyak.toml", "../x", "/etc/x", "a/b"]),
        st.binary(max_size=64),
        max_size=3,
    ).map(tar_gz)
    return st.one_of(st.just(archive), cut, flipped, wrapped, tarred, st.binary(max_size=256))


def patch_bytes(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for where, value in edits:
        out[where] = value
    return bytes(out)


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


CSV_TEXT = st.lists(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
        | st.sampled_from(["101", "170", "number", "password", "long-enough-1", '"', "\r"]),
        max_size=5,
    ).map(",".join),
    max_size=6,
).map(lambda rows: "\n".join(["number,password,name,email", *rows]).encode())
