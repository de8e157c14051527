"""Backup and restore pages and API: download an archive, upload one to stage a restore,
see exactly why a bad one is refused (and that nothing changed), drop a pending one."""

from __future__ import annotations

import dataclasses
import gzip
import io
import re
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from appliance.config import write_default
from appliance.system.backup import MANIFEST, PENDING
from appliance.web.app import create_app
from appliance.web.backup_pages import RESTORE_STATUS
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices

from .conftest import REALM, Client, signed_in

BOUNDARY = "yakyak-test-boundary"


@dataclasses.dataclass
class Box:
    data: Path
    app: Any
    services: WebServices


@pytest.fixture
def box(services: WebServices, tmp_path: Path) -> Box:
    """The web app over a data folder holding the fixture's database (tmp_path/yakyak.db)."""
    write_default(tmp_path, REALM)
    (tmp_path / "prompts" / "en").mkdir(parents=True)
    (tmp_path / "prompts" / "en" / "hello.wav").write_bytes(b"RIFF hello")
    with_data = dataclasses.replace(services, data_dir=tmp_path)
    app, _ = create_app(with_data)
    return Box(tmp_path, SecurityHeaders(app), with_data)


def listing(data: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(data).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(data.rglob("*"))
        if not p.name.startswith("yakyak.db")  # the live database changes with every sign-in
    }


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    parts = []
    for name, value in fields.items():
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, content in files.items():
        parts.append(
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="backup.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def csrf_of(client: Client, path: str = "/backup") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match is not None
    return match.group(1)


def download(client: Client) -> bytes:
    response = client.post("/backup/download", form={"csrf_token": csrf_of(client)})
    assert response.status == 200, response.text
    assert response.header("Content-Type") == "application/gzip"
    assert re.fullmatch(
        r'attachment; filename="yakyak-backup-\d{8}-\d{6}\.tar\.gz"',
        response.header("Content-Disposition") or "",
    )
    assert response.header("Content-Length") == str(len(response.body))
    return response.body


def upload(client: Client, archive: bytes | None) -> Any:
    body, headers = multipart(
        {"csrf_token": csrf_of(client)}, {} if archive is None else {"archive": archive}
    )
    return client.post("/backup/restore", body=body, headers=headers)


def test_the_backup_page_is_for_system_write_only(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    page = admin.get("/backup")
    assert page.status == 200
    assert '<a href="/backup">Backup</a>' in page.text
    assert 'action="/backup/download"' in page.text
    assert 'enctype="multipart/form-data"' in page.text and 'type="file"' in page.text
    assert "<script" not in page.text
    for name in ("oper", "alice"):
        client = signed_in(box.app, name)
        assert client.get("/backup").status == 403
        assert '<a href="/backup">' not in client.get("/").text
        refused = client.post("/backup/download", form={"csrf_token": client.csrf()})
        assert refused.status == 403 and refused.header("Content-Type") != "application/gzip"


def test_download_is_an_archive_of_the_data_folder_and_is_audited(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    archive = download(admin)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
        database = tar.extractfile("yakyak.db")
        assert database is not None
        data = database.read()
    assert names == ["yakyak.db", "yakyak.toml", "prompts/en/hello.wav", MANIFEST]
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "copy.db"
        copy.write_bytes(data)
        connection = sqlite3.connect(copy)
        found = {r[0] for r in connection.execute("SELECT number FROM extension")}
        connection.close()
    assert found == {"101", "102"}
    [entry] = [e for e in box.services.audit.entries(10) if e.action == "backup.download"]
    assert entry.actor == "admin" and "3 files" in entry.detail
    assert not [p for p in box.data.iterdir() if p.name.startswith(".backup-")]  # no leftovers
    api = admin.get("/api/backup")
    assert api.status == 200 and api.header("Content-Type") == "application/gzip"
    assert gzip.decompress(api.body)[:9] == b"yakyak.db"


def test_a_good_upload_is_staged_and_the_page_says_restart(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    archive = download(admin)
    response = upload(admin, archive)
    assert response.status == 303 and response.header("Location") == "/backup?notice=staged"
    assert (box.data / PENDING / "yakyak.db").is_file()
    page = admin.get("/backup?notice=staged").text
    assert "Restart YakYak to apply it" in page and "A restore is waiting" in page
    assert "(4 files)" not in page and "(3 files)" in page
    actions = [e.action for e in box.services.audit.entries(10)]
    assert "backup.restore.stage" in actions
    dropped = admin.post("/backup/cancel", form={"csrf_token": csrf_of(admin)})
    assert dropped.status == 303 and dropped.header("Location") == "/backup?notice=cancelled"
    assert not (box.data / PENDING).exists()
    assert "A restore is waiting" not in admin.get("/backup").text


def test_a_bad_upload_says_exactly_what_is_wrong_and_changes_nothing(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    archive = download(admin)
    raw = gzip.decompress(archive)
    forged = gzip.compress(raw.replace(b"RIFF hello", b"RIFF HELLO"))
    before = listing(box.data)
    response = upload(admin, forged)
    assert response.status == 400
    assert (
        '<p class="error" id="archive-error">Refused, and nothing was changed: '
        "prompts/en/hello.wav: its SHA-256 or size does not match manifest.json"
    ) in response.text
    assert 'aria-invalid="true"' in response.text
    assert listing(box.data) == before
    empty = upload(admin, None)
    assert empty.status == 400 and "Choose a backup archive" in empty.text
    truncated = upload(admin, archive[: len(archive) // 3])
    assert truncated.status == 400 and "truncated" in truncated.text
    assert listing(box.data) == before


def test_the_restore_api(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    csrf = admin.csrf()
    archive = admin.get("/api/backup").body
    idle = admin.get("/api/backup/restore").json()
    jsonschema.validate(idle, RESTORE_STATUS)
    assert idle == {"pending": None, "previous_kept": False, "message": ""}
    gz = {"Content-Type": "application/gzip", "X-CSRF-Token": csrf}
    staged = admin.post("/api/backup/restore", body=archive, headers=gz)
    assert staged.status == 200, staged.text
    jsonschema.validate(staged.json(), RESTORE_STATUS)
    assert staged.json()["pending"]["files"] == 3
    assert staged.json()["message"] == "restart YakYak to apply the restore"
    assert admin.get("/api/backup/restore").json()["pending"]["files"] == 3
    bad = admin.post("/api/backup/restore", body=b"not an archive", headers=gz)
    assert bad.status == 400
    assert bad.json()["error"].startswith("refused, and nothing was changed: not a readable")
    assert admin.get("/api/backup/restore").json()["pending"] is not None  # still the good one
    wrong_type = admin.post(
        "/api/backup/restore", body=archive, headers={**gz, "Content-Type": "application/json"}
    )
    assert wrong_type.status == 415
    assert admin.delete("/api/backup/restore", headers={"X-CSRF-Token": csrf}).status == 204
    assert admin.delete("/api/backup/restore", headers={"X-CSRF-Token": csrf}).status == 404
    no_csrf = admin.post("/api/backup/restore", body=archive, headers={**gz, "X-CSRF-Token": ""})
    assert no_csrf.status == 403 and not (box.data / PENDING).exists()


def test_without_a_data_folder_backup_is_not_available(admin: Client) -> None:
    page = admin.get("/backup")
    assert page.status == 503 and "not available" in page.text
    assert admin.get("/api/backup").status == 503


def test_the_api_is_described_in_the_openapi_document(admin: Client) -> None:
    paths = admin.get("/api/openapi.json").json()["paths"]
    assert paths["/api/backup"]["get"]["x-permission"] == "system:write"
    restore = paths["/api/backup/restore"]
    assert {method: op["x-permission"] for method, op in restore.items()} == {
        "get": "system:write",
        "post": "system:write",
        "delete": "system:write",
    }
    assert restore["post"]["responses"]["200"]["content"]["application/json"]["schema"] == (
        RESTORE_STATUS
    )
