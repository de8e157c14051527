"""Backup and restore against a real `yakyak serve` over HTTPS: sign in, download an
archive, change the box, see a forged archive refused, stage the real one, restart,
and find the box as it was when the backup was taken.

Applying the staged restore is the composition root's job at start-up
(`apply_pending_restore` before the database opens); until `appliance.app` calls it,
this test calls it between the stop and the start, where the root will.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import ssl
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import pytest
from https_session import CookieSession

from appliance.system.backup import PENDING, PREVIOUS
from appliance.system.restore import apply_pending_restore

if TYPE_CHECKING:
    from conftest import ServerFactory, YakyakServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

INIT_PASSWORD = "e2e-admin"  # what the fixture's `yakyak init` set; must be changed
PASSWORD = "e2e-backup-password-1"
BOUNDARY = "yakyak-e2e-boundary"


class Browser:
    """Cookies and CSRF over http.client, trusting only the box's own certificate."""

    def __init__(self, server: YakyakServer) -> None:
        line = server.wait_for_log(r"web UI on https://", timeout=0)
        assert line is not None, server.log()
        match = re.search(r"web UI on (https://\S+)", line)
        assert match is not None, line
        url = urlsplit(match.group(1))
        self.host, self.port = url.hostname or "", url.port or 443
        pem = (server.data / "web-tls.pem").read_bytes()
        cert = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
        assert cert is not None
        self.session = CookieSession(
            self.host, self.port, ssl.create_default_context(cadata=cert.group(0).decode())
        )

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        response, data = self.session.send(method, path, body, headers)
        return response.status, dict(response.headers.items()), data

    def csrf(self, path: str) -> str:
        _, _, page = self.request("GET", path)
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        assert match is not None, page[:2000]
        return match.group(1).decode()

    def form(self, path: str, fields: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        body = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", path, body, headers)

    def sign_in(self, password: str) -> None:
        token = self.csrf("/login")
        status, headers, _ = self.form(
            "/login", {"username": "admin", "password": password, "csrf_token": token}
        )
        assert status == 303, headers
        if headers.get("Location") == "/password":  # the first sign-in: a new password first
            token = self.csrf("/password")
            status, _, _ = self.form(
                "/password",
                {"current": password, "new": PASSWORD, "confirm": PASSWORD, "csrf_token": token},
            )
            assert status == 303

    def api(self, method: str, path: str, document: object = None) -> tuple[int, bytes]:
        _, _, me = self.request("GET", "/api/me")
        headers = {"X-CSRF-Token": json.loads(me)["csrf_token"]}
        body = b""
        if document is not None:
            body = json.dumps(document).encode()
            headers["Content-Type"] = "application/json"
        status, _, data = self.request(method, path, body, headers)
        return status, data

    def upload(self, archive: bytes) -> tuple[int, dict[str, str], bytes]:
        token = self.csrf("/backup")
        body = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f'{token}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="archive"; '
            'filename="backup.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'
        ).encode()
        body += archive + f"\r\n--{BOUNDARY}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        return self.request("POST", "/backup/restore", body, headers)


def test_download_a_backup_and_restore_it(yakyak_servers: ServerFactory) -> None:
    first = yakyak_servers()
    data: Path = first.data
    browser = Browser(first)
    browser.sign_in(INIT_PASSWORD)
    assert browser.api("POST", "/api/extensions", {"number": "150", "name": "Kept"})[0] == 201
    prompt = data / "prompts" / "en" / "e2e-hello.wav"
    prompt.parent.mkdir(parents=True, exist_ok=True)
    prompt.write_bytes(b"RIFF e2e prompt")

    status, headers, archive = browser.form(
        "/backup/download", {"csrf_token": browser.csrf("/backup")}
    )
    assert status == 200 and headers["Content-Type"] == "application/gzip"
    assert "attachment" in headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
    for name in ("yakyak.db", "yakyak.toml", "web-tls.pem", "prompts/en/e2e-hello.wav"):
        assert name in names
    assert names[-1] == "manifest.json"

    # The box changes after the backup.
    assert browser.api("DELETE", "/api/extensions/150")[0] == 204
    prompt.unlink()

    forged = gzip.compress(gzip.decompress(archive).replace(b"RIFF e2e prompt", b"RIFF e2e PROMPT"))
    status, _, page = browser.upload(forged)
    assert status == 400
    assert b"prompts/en/e2e-hello.wav: its SHA-256 or size does not match" in page
    assert not (data / PENDING).exists()

    status, headers, _ = browser.upload(archive)
    assert status == 303 and headers["Location"] == "/backup?notice=staged"
    _, _, page = browser.request("GET", "/backup?notice=staged")
    assert b"Restart YakYak to apply it" in page
    assert (data / PENDING).is_dir()
    assert browser.api("GET", "/api/extensions/150")[0] == 404  # nothing applied while running

    assert first.stop() == 0, first.log()
    message = apply_pending_restore(data)  # the composition root's start-up step
    assert message is not None and message.startswith("restored the backup of")

    second = yakyak_servers(data)
    browser = Browser(second)
    browser.sign_in(PASSWORD)  # the backup was taken after the password change
    status, body = browser.api("GET", "/api/extensions/150")
    assert status == 200 and json.loads(body)["name"] == "Kept"
    assert prompt.read_bytes() == b"RIFF e2e prompt"
    assert (data / PREVIOUS / "yakyak.db").is_file()
    assert not (data / PENDING).exists()
