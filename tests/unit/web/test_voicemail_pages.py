"""Voicemail pages and API: who sees which mailbox, playing and downloading the WAV,
deleting through the store (file and row), and names that must not reach other files."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import wave
from pathlib import Path
from typing import Any

import jsonschema
import peewee
import pytest

from appliance.pbx.app_events import MessageStatus
from appliance.store.voicemail import VoicemailStore
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices
from appliance.web.voicemail_pages import MAILBOX_MESSAGES

from .conftest import Client, signed_in

T0 = 1_700_000_000.0


def wav_bytes(seconds: float = 0.25) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x01\x02" * int(8000 * seconds))
    return out.getvalue()


@dataclasses.dataclass
class Boxes:
    store: VoicemailStore
    app: Any
    ids: dict[str, list[int]]

    def name(self, number: str, index: int = 0) -> str:
        info = self.store.message(number, self.ids[number][index])
        assert info is not None
        return Path(info.recording.path).name

    def path(self, number: str, index: int = 0) -> Path:
        return self.store.root / number / self.name(number, index)


@pytest.fixture
def boxes(services: WebServices, db: peewee.SqliteDatabase, tmp_path: Path) -> Boxes:
    data = tmp_path / "data"
    data.mkdir()
    store = VoicemailStore(db, data / "voicemail")
    ids: dict[str, list[int]] = {}
    for number in ("101", "102"):
        store.create_mailbox(number, "1234")
        ids[number] = []
        for n in range(2):
            recording = store.new_recording_path()
            recording.write_bytes(wav_bytes())
            message_id = store.store_message(
                number, recording, 0.25, f"20{n}", "Caller <x>", n == 1, T0 + 60 * n
            )
            assert message_id is not None
            ids[number].append(message_id)
    store.set_status("101", ids["101"][0], MessageStatus.READ)
    with_data = dataclasses.replace(services, data_dir=data)
    app, _ = create_app(with_data)
    return Boxes(store, SecurityHeaders(app), ids)


def test_an_administrator_sees_every_mailbox_and_its_messages(boxes: Boxes) -> None:
    admin = signed_in(boxes.app, "admin")
    listing = admin.get("/voicemail")
    assert listing.status == 200
    assert '<a href="/voicemail/101">101</a>' in listing.text
    assert '<a href="/voicemail/102">102</a>' in listing.text
    assert re.search(r">101</a></td><td>Alice</td>\s*<td>1</td><td>1</td>", listing.text)
    page = admin.get("/voicemail/101")
    assert page.status == 200 and "<h1>Mailbox 101 (Alice)</h1>" in page.text
    newest, oldest = boxes.name("101", 1), boxes.name("101", 0)
    assert page.text.index(newest) < page.text.index(oldest)  # newest first
    assert f'<audio controls preload="none" src="/voicemail/101/{newest}"></audio>' in page.text
    assert f'href="/voicemail/101/{newest}/download" download' in page.text
    assert f'action="/voicemail/101/{newest}/delete"' in page.text
    assert "Caller &lt;x&gt; &lt;201&gt;" in page.text and "new, urgent" in page.text
    assert "<script" not in page.text


def test_play_and_download_serve_the_wav(boxes: Boxes) -> None:
    admin = signed_in(boxes.app, "admin")
    name = boxes.name("102")
    played = admin.get(f"/voicemail/102/{name}")
    assert played.status == 200
    assert played.header("Content-Type") == "audio/wav"
    assert played.header("Content-Disposition") == f'inline; filename="{name}"'
    assert played.body == boxes.path("102").read_bytes()
    part = admin.get(f"/voicemail/102/{name}", headers={"Range": "bytes=0-3"})
    assert part.status == 206 and part.body == b"RIFF"  # browsers seek with Range
    saved = admin.get(f"/voicemail/102/{name}/download")
    assert saved.header("Content-Disposition") == f'attachment; filename="{name}"'
    assert saved.body == played.body
    api = admin.get(f"/api/voicemail/102/messages/{name}")
    assert api.status == 200 and api.header("Content-Type") == "audio/wav"


def test_a_user_sees_only_their_own_mailbox(boxes: Boxes) -> None:
    alice = signed_in(boxes.app, "alice")
    listing = alice.get("/voicemail").text
    assert "/voicemail/101" in listing and "/voicemail/102" not in listing
    assert alice.get("/voicemail/101").status == 200
    other = boxes.name("102")
    for path in (
        "/voicemail/102",
        f"/voicemail/102/{other}",
        f"/voicemail/102/{other}/download",
        "/api/voicemail/102",
        f"/api/voicemail/102/messages/{other}",
    ):
        assert alice.get(path).status == 404, path
    assert [b["number"] for b in alice.get("/api/voicemail").json()["items"]] == ["101"]
    csrf = alice.csrf()
    refused = alice.delete(f"/api/voicemail/102/messages/{other}", headers={"X-CSRF-Token": csrf})
    assert refused.status == 404 and boxes.path("102").exists()


def test_the_owner_deletes_a_message_file_and_row_audited(
    boxes: Boxes, services: WebServices
) -> None:
    alice = signed_in(boxes.app, "alice")
    name, path = boxes.name("101"), boxes.path("101")
    page = alice.get("/voicemail/101")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = alice.post(f"/voicemail/101/{name}/delete", form={"csrf_token": token.group(1)})
    assert response.status == 303
    assert response.header("Location") == "/voicemail/101?notice=deleted"
    assert not path.exists()
    kept = boxes.store.message("101", boxes.ids["101"][0])  # the row stays, marked
    assert kept is not None and kept.status is MessageStatus.DELETED
    after = alice.get("/voicemail/101?notice=deleted").text
    assert "The message has been deleted." in after and name not in after
    [entry] = [e for e in services.audit.entries(10) if e.action == "voicemail.delete"]
    assert (entry.actor, entry.target) == ("alice", f"101/{name}")
    again = alice.post(f"/voicemail/101/{name}/delete", form={"csrf_token": token.group(1)})
    assert again.status == 404


def test_delete_needs_the_right_permission(boxes: Boxes) -> None:
    oper = signed_in(boxes.app, "oper")  # voicemail:read, but delete only its own (none)
    page = oper.get("/voicemail/101")
    assert page.status == 200 and "/delete" not in page.text
    refused = oper.delete(
        f"/api/voicemail/101/messages/{boxes.name('101')}", headers={"X-CSRF-Token": oper.csrf()}
    )
    assert refused.status == 403 and boxes.path("101").exists()
    admin = signed_in(boxes.app, "admin")
    done = admin.delete(
        f"/api/voicemail/102/messages/{boxes.name('102')}",
        headers={"X-CSRF-Token": admin.csrf()},
    )
    assert done.status == 204 and done.body == b""
    assert boxes.store.counts("102") == (1, 0)  # the other, new message is left


def test_names_that_are_not_live_messages_of_the_box_reach_no_file(boxes: Boxes) -> None:
    admin = signed_in(boxes.app, "admin")
    folder = boxes.store.root / "101"
    (folder / "greet-unavailable.wav").write_bytes(wav_bytes())
    (boxes.store.root.parent / "secret.wav").write_bytes(b"secret")
    for name in (
        "greet-unavailable.wav",  # a file in the box, but no message
        boxes.name("102"),  # a message, but of another box
        "msg-1-0123456789ab.wav",  # the shape of one, but no row
        "..%2Fsecret.wav",
        "%2E%2E",
        "yakyak.db",
    ):
        assert admin.get(f"/voicemail/101/{name}").status == 404, name
    # A message row whose file was swapped for a link is not followed.
    target = boxes.path("101", 1)
    target.unlink()
    os.symlink(boxes.store.root.parent / "secret.wav", target)
    assert admin.get(f"/voicemail/101/{target.name}").status == 404


def test_api_answers_match_their_schemas(boxes: Boxes) -> None:
    admin = signed_in(boxes.app, "admin")
    box = admin.get("/api/voicemail/101").json()
    jsonschema.validate(box, MAILBOX_MESSAGES)
    assert box["mailbox"] == {"number": "101", "name": "Alice", "enabled": True, "new": 1, "old": 1}
    assert [m["status"] for m in box["messages"]] == ["new", "read"]
    first = box["messages"][0]
    assert first["audio"] == f"/api/voicemail/101/messages/{first['name']}"
    assert admin.get(first["audio"]).status == 200


def test_without_a_data_folder_voicemail_is_not_available(admin: Client) -> None:
    page = admin.get("/voicemail")
    assert page.status == 503 and "not available" in page.text
    api = admin.get("/api/voicemail")
    assert api.status == 503 and "not available" in api.json()["error"]


def test_the_api_is_described_in_the_openapi_document(admin: Client) -> None:
    paths = admin.get("/api/openapi.json").json()["paths"]
    assert paths["/api/voicemail/{number}"]["get"]["x-permission"] == "voicemail:read_own"
    message = paths["/api/voicemail/{number}/messages/{name}"]
    assert message["get"]["x-permission"] == "voicemail:read_own"
    assert message["delete"]["x-permission"] == "voicemail:delete_own"
    assert [p["name"] for p in message["delete"]["parameters"]] == ["number", "name"]
