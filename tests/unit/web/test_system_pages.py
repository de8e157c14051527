"""The System page and API: version and slots shown, a bundle uploaded (API with a token,
form with CSRF) and queued for root, and every refusal before anything is written. The
SSH switch on the same page is test_ssh_pages.py."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.system.backup import installed_version
from appliance.system.updates import (
    SSH_ENABLED,
    Rollback,
    SlotInfo,
    SystemStatus,
    UpdateFolder,
    UpdateResult,
    UpdateState,
)
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices
from appliance.web.system_pages import (
    SYSTEM,
    UPDATE_RESULT,
    UpdatePolicy,
    rollback_text,
    said,
    stamp,
    update_text,
)

from .conftest import Client, signed_in

BOUNDARY = "yakyak-system-boundary"
BUNDLE = b"hsqs" + bytes(range(256)) * 16  # what receive_bundle takes for a RAUC bundle
NOW = 1_700_000_000.0  # conftest's ManualClock


class Disk:
    """The data partition's free space, as the policy asks for it."""

    def __init__(self, free: int = 8 << 30) -> None:
        self.free = free
        self.asked: list[Path] = []

    def __call__(self, folder: Path) -> int:
        self.asked.append(folder)
        return self.free


@dataclasses.dataclass
class Box:
    data: Path
    app: Any
    services: WebServices
    disk: Disk
    tokens: itertools.count[int] = dataclasses.field(default_factory=itertools.count)

    @property
    def updates(self) -> UpdateFolder:
        return UpdateFolder(self.data)

    def bearer(self, username: str = "admin") -> dict[str, str]:
        """An API token's header, as a script (the VM test) sends it."""
        secret, _ = self.services.tokens.create(username, f"script-{next(self.tokens)}")
        return {"Authorization": f"Bearer {secret}"}


def make_box(services: WebServices, data: Path, *, on_image: bool, **policy: Any) -> Box:
    disk = Disk()
    with_data = dataclasses.replace(services, data_dir=data, updates_available=on_image)
    app, _ = create_app(with_data, updates=UpdatePolicy(free_space=disk, **policy))
    return Box(data, SecurityHeaders(app), with_data, disk)


@pytest.fixture
def box(services: WebServices, tmp_path: Path) -> Box:
    """The YakYak OS image, as far as the web can tell: RAUC there, a data folder."""
    return make_box(services, tmp_path, on_image=True)


@pytest.fixture
def dev_box(services: WebServices, tmp_path: Path) -> Box:
    """A developer machine: a data folder, no RAUC."""
    return make_box(services, tmp_path, on_image=False)


def leftovers(data: Path) -> list[str]:
    folder = data / "update"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def put_bundle(client: Client, body: bytes, headers: dict[str, str] | None = None) -> Any:
    sent = {"Content-Type": "application/octet-stream", **(headers or {})}
    return client.request("PUT", "/api/system/update", body=body, headers=sent)


def csrf_of(client: Client) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/system").text)
    assert match is not None
    return match.group(1)


def post_form(client: Client, bundle: bytes | None, csrf: str | None = None) -> Any:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{csrf_of(client) if csrf is None else csrf}\r\n".encode()
    ]
    if bundle is not None:
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="bundle"; '
            'filename="yakyak.raucb"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + bundle + b"\r\n")
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return client.post("/system/update", body=body, headers=headers)


# -- the page --------------------------------------------------------------------------


def test_the_page_shows_the_version_and_its_forms_to_administrators_only(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    page = admin.get("/system")
    assert page.status == 200
    assert '<a href="/system">System</a>' in page.text
    assert f'<dd id="version">{installed_version()}</dd>' in page.text
    assert 'id="update-form"' in page.text and 'enctype="multipart/form-data"' in page.text
    assert 'action="/system/ssh"' in page.text and "Switch SSH on" in page.text
    assert "SSH is <strong>off</strong>" in page.text
    assert "/data/ssh/authorized_keys" in page.text and "off by default" in page.text
    # No inline script (the CSP forbids it): the one script is a file of ours.
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/system.js" defer>']
    script = admin.get("/static/system.js")
    assert script.status == 200
    assert (script.header("Content-Type") or "").startswith("text/javascript")
    assert "X-CSRF-Token" in script.text

    oper = signed_in(box.app, "oper")  # system:read: sees, changes nothing
    seen = oper.get("/system")
    assert seen.status == 200 and '<a href="/system">System</a>' in seen.text
    assert 'id="update-form"' not in seen.text and 'action="/system/ssh"' not in seen.text
    assert post_form(oper, BUNDLE, oper.csrf()).status == 403

    alice = signed_in(box.app, "alice")
    assert alice.get("/system").status == 403
    assert '<a href="/system">' not in alice.get("/").text
    assert alice.get("/api/system").status == 403
    assert put_bundle(alice, BUNDLE, {"X-CSRF-Token": alice.csrf()}).status == 403
    assert leftovers(box.data) == []


def test_off_the_image_the_page_says_so_and_the_changes_answer_503(dev_box: Box) -> None:
    admin = signed_in(dev_box.app, "admin")
    page = admin.get("/system").text
    assert "Software updates are possible only on the YakYak OS image" in page
    assert "SSH is switched only on the YakYak OS image" in page
    assert 'id="update-form"' not in page and 'action="/system/ssh"' not in page
    assert "<script" not in page
    csrf = admin.csrf()
    refused = put_bundle(admin, BUNDLE, {"X-CSRF-Token": csrf})
    assert refused.status == 503
    assert "only on the YakYak OS image" in refused.json()["error"]
    ssh = admin.request(
        "PUT", "/api/system/ssh", json_body={"enabled": True}, headers={"X-CSRF-Token": csrf}
    )
    assert ssh.status == 503 and "SSH" in ssh.json()["error"]
    assert post_form(admin, BUNDLE).status == 503
    assert admin.post("/system/ssh", form={"csrf_token": csrf, "enabled": "on"}).status == 503
    system = admin.get("/api/system").json()
    jsonschema.validate(system, SYSTEM)
    assert system["updates_available"] is False and system["ssh_enabled"] is False
    assert system["version"] == installed_version() and system["slots"] == []
    assert admin.get("/api/system/update").status == 404
    assert leftovers(dev_box.data) == [] and not (dev_box.data / SSH_ENABLED).exists()


def test_without_a_data_folder_the_page_still_shows_the_version(admin: Client) -> None:
    page = admin.get("/system")
    assert page.status == 200 and "only on the YakYak OS image" in page.text
    assert admin.get("/api/system").json()["updates_available"] is False
    assert admin.get("/api/system/update").status == 404


# -- uploading ---------------------------------------------------------------------


def test_a_bundle_sent_with_an_api_token_is_queued_for_root_and_audited(box: Box) -> None:
    script = Client(box.app)  # no session: what the VM test does
    token = box.bearer()
    response = put_bundle(script, BUNDLE, token)
    assert response.status == 202, response.text
    answer = response.json()
    jsonschema.validate(answer, UPDATE_RESULT)
    assert answer["state"] == "queued" and answer["time"] == NOW
    assert box.updates.bundle.read_bytes() == BUNDLE
    pending = box.updates.pending()
    assert pending is not None and pending.id == answer["id"]
    assert (pending.requested_by, pending.size) == ("admin", len(BUNDLE))
    assert leftovers(box.data) == ["bundle.raucb", "request.json", "result.json"]
    assert box.disk.asked == [box.data]

    latest = script.get("/api/system/update", headers=token)
    assert latest.status == 200 and latest.json() == answer
    system = script.get("/api/system", headers=token).json()
    jsonschema.validate(system, SYSTEM)
    assert system["update"] == answer and system["updates_available"] is True

    [entry] = [e for e in box.services.audit.entries(20) if e.action == "system.update.queue"]
    assert (entry.actor, entry.target, entry.address) == ("admin", answer["id"], "192.0.2.10")
    assert entry.detail == f"{len(BUNDLE)} bytes"


def test_a_bundle_uploaded_through_the_form_is_queued_and_the_page_follows_it(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    response = post_form(admin, BUNDLE)
    assert response.status == 303 and response.header("Location") == "/system?notice=queued"
    assert box.updates.bundle.read_bytes() == BUNDLE
    page = admin.get("/system?notice=queued").text
    assert (
        "Update queued: the box checks the bundle&#x27;s signature, installs it into the other "
        "slot and restarts (about 5 minutes); this page shows the result."
    ) in page
    assert 'data-state="queued"' in page and 'data-poll="/api/system/update"' in page
    assert "Another bundle can be uploaded once this update is over." in page
    assert 'id="update-form"' not in page  # one update at a time
    actions = [e.action for e in box.services.audit.entries(20)]
    assert actions.count("system.update.queue") == 1


def test_the_form_needs_its_csrf_token_and_a_file(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    assert post_form(admin, BUNDLE, csrf="not-the-token").status == 403
    empty = post_form(admin, None)
    assert empty.status == 400
    assert '<p class="error" id="bundle-error">Choose an update bundle (.raucb) to upload.</p>' in (
        empty.text
    )
    assert leftovers(box.data) == []


def test_what_is_not_a_bundle_is_refused_next_to_the_field_and_nothing_is_kept(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    page = post_form(admin, b"PK\x03\x04 a zip file, not a bundle")
    assert page.status == 400
    assert (
        '<p class="error" id="bundle-error">This is not a YakYak update bundle (.raucb).</p>'
    ) in page.text
    assert 'aria-invalid="true" aria-describedby="bundle-error"' in page.text
    api = put_bundle(admin, b"PK\x03\x04", {"X-CSRF-Token": admin.csrf()})
    assert api.status == 400
    assert api.json() == {"error": "this is not a YakYak update bundle (.raucb)"}
    empty = put_bundle(admin, b"", box.bearer())
    assert empty.status == 400 and empty.json() == {"error": "the upload is empty"}
    assert leftovers(box.data) == []
    assert not [e for e in box.services.audit.entries(20) if e.action.startswith("system.update")]


def test_an_upload_over_the_limit_is_refused(services: WebServices, tmp_path: Path) -> None:
    small = make_box(services, tmp_path, on_image=True, max_bundle=1024)
    token = small.bearer()
    api = put_bundle(Client(small.app), BUNDLE, token)  # 4 KiB against 1 KiB
    assert api.status == 413 and api.json() == {"error": "the bundle is larger than 1024 bytes"}
    assert small.disk.asked == []  # refused on Content-Length, before anything else
    admin = signed_in(small.app, "admin")
    form = post_form(admin, BUNDLE)  # the form's length includes its framing: checked as read
    assert form.status == 400 and "The bundle is larger than 1024 bytes." in form.text
    assert put_bundle(Client(small.app), BUNDLE[:1024], token).status == 202
    assert leftovers(small.data) == ["bundle.raucb", "request.json", "result.json"]


def test_an_upload_the_data_partition_has_no_room_for_is_refused(box: Box) -> None:
    box.disk.free = 10 << 20
    token = box.bearer()
    response = put_bundle(Client(box.app), BUNDLE, token)
    assert response.status == 413
    assert response.json()["error"] == (
        "not enough free space on the data partition: 10 MiB free, and this upload needs "
        "64 MiB (64 MiB of it stays free for calls and voicemail)"
    )
    admin = signed_in(box.app, "admin")
    page = post_form(admin, BUNDLE)
    assert page.status == 413 and "Not enough free space on the data partition" in page.text
    assert leftovers(box.data) == []
    box.disk.free = len(BUNDLE) + (64 << 20) - 1  # one byte short
    assert put_bundle(Client(box.app), BUNDLE, token).status == 413
    box.disk.free += 1
    assert put_bundle(Client(box.app), BUNDLE, token).status == 202


def test_while_an_update_is_queued_or_installing_another_is_refused_409(box: Box) -> None:
    token = box.bearer()
    script = Client(box.app)
    first = put_bundle(script, BUNDLE, token).json()
    again = put_bundle(script, BUNDLE[:100], token)
    assert again.status == 409
    assert again.json() == {"error": "an update is already queued or being installed"}
    assert box.updates.bundle.read_bytes() == BUNDLE  # the queued one is untouched
    taken = box.updates.take_request()  # root claims it: running.json
    assert taken is not None and taken.id == first["id"]
    box.updates.write_result(UpdateResult(first["id"], UpdateState.INSTALLING, "", NOW + 5))
    assert put_bundle(script, BUNDLE, token).status == 409
    admin = signed_in(box.app, "admin")
    page = admin.get("/system").text
    assert "Installing the update into the other slot" in page and 'id="update-form"' not in page
    box.updates.write_result(UpdateResult(first["id"], UpdateState.FAILED, "bad signature", NOW))
    box.updates.finish_request()
    assert put_bundle(script, BUNDLE, token).status == 202


class Stalling:
    """A request body that waits for the test before it lets the upload go on."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)
        self.started = threading.Event()
        self.go_on = threading.Event()

    def read(self, size: int = -1) -> bytes:
        self.started.set()
        assert self.go_on.wait(10)
        return self.data.read(size)


def test_two_uploads_at_once_do_not_share_the_bundle(box: Box) -> None:
    token = box.bearer()
    stalling = Stalling(BUNDLE)
    answers: list[int] = []

    def slow_body(environ: dict[str, Any], start: Any) -> Any:
        environ["wsgi.input"] = stalling
        return box.app(environ, start)

    first = threading.Thread(
        target=lambda: answers.append(put_bundle(Client(slow_body), BUNDLE, token).status)
    )
    first.start()
    try:
        assert stalling.started.wait(10)
        second = put_bundle(Client(box.app), BUNDLE, token)
        assert second.status == 409
        assert second.json() == {"error": "another bundle is being uploaded right now"}
    finally:
        stalling.go_on.set()
        first.join(10)
    assert answers == [202]


def test_a_body_cut_short_or_sent_wrong_is_refused(box: Box) -> None:
    token = box.bearer()
    script = Client(box.app)
    short = put_bundle(script, BUNDLE[:100], {**token, "Content-Length": str(len(BUNDLE))})
    assert short.status == 400
    assert (
        short.json()["error"] == f"the upload ended after 100 of the {len(BUNDLE)} bytes announced"
    )
    wrong_type = put_bundle(script, BUNDLE, {**token, "Content-Type": "application/gzip"})
    assert wrong_type.status == 415
    no_length = put_bundle(script, BUNDLE, {**token, "Content-Length": ""})
    assert no_length.status == 411

    class Gone:
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("reset by peer")

    def dropped_body(environ: dict[str, Any], start: Any) -> Any:
        environ["wsgi.input"] = Gone()
        return box.app(environ, start)

    dropped = put_bundle(Client(dropped_body), BUNDLE, token)
    assert dropped.status == 400
    assert dropped.json() == {"error": "the upload broke off: reset by peer"}
    assert leftovers(box.data) == []


def test_any_body_is_queued_or_refused_400_and_only_a_bundle_is_kept(box: Box) -> None:
    token = box.bearer()

    @settings(max_examples=60)
    @given(body=st.binary(max_size=64) | st.binary(max_size=64).map(lambda b: b"hsqs" + b))
    def upload(body: bytes) -> None:
        for name in leftovers(box.data):
            (box.data / "update" / name).unlink()
        response = put_bundle(Client(box.app), body, token)
        if body.startswith(b"hsqs"):
            assert response.status == 202, response.text
            assert box.updates.bundle.read_bytes() == body
        else:
            assert response.status == 400, response.text
            assert leftovers(box.data) == []

    upload()


# -- what root reported ----------------------------------------------------------------

SLOTS = (
    SlotInfo("rootfs.0", "A", False, "bad", "1.3.0", "2026-03-01T10:00:00Z"),
    SlotInfo("rootfs.1", "B", True, "good", "", ""),
)


def test_the_page_shows_the_slots_and_a_rollback(box: Box) -> None:
    box.updates.write_status(
        SystemStatus(
            booted="B",
            slots=SLOTS,
            last_update=UpdateResult("a1", UpdateState.INSTALLED, "", NOW - 600, "A"),
            rollback=Rollback("A", "1.3.0", NOW - 300, "yakyak.service did not become ready"),
            health="good",
            time=NOW - 200,
        )
    )
    box.updates.write_result(UpdateResult("a1", UpdateState.INSTALLED, "", NOW - 600, "A"))
    admin = signed_in(box.app, "admin")
    page = admin.get("/system").text
    assert (
        '<p class="error" id="rollback" role="alert">The update to version 1.3.0 did not start '
        "properly and was rolled back to slot B at 2023-11-14 22:08:20 UTC: yakyak.service did "
        "not become ready</p>"
    ) in page
    assert '<dd id="booted">B</dd>' in page and '<dd id="health">good</dd>' in page
    assert "<tr><td>A</td><td>1.3.0</td><td>bad</td><td>2026-03-01T10:00:00Z</td></tr>" in page
    assert "<tr><td>B (running)</td><td>factory image</td><td>good</td><td></td></tr>" in page
    assert "The update was installed but rolled back: see above." in page
    assert "data-poll" not in page  # nothing more will happen
    system = admin.get("/api/system").json()
    jsonschema.validate(system, SYSTEM)
    assert system["booted"] == "B" and system["health"] == "good"
    assert [s["bootname"] for s in system["slots"]] == ["A", "B"]
    assert system["rollback"] == {
        "from_slot": "A",
        "version": "1.3.0",
        "time": NOW - 300,
        "reason": "yakyak.service did not become ready",
    }
    assert system["last_update"]["state"] == "installed"


def test_the_page_follows_an_update_through_its_states(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    updates = box.updates
    updates.write_status(SystemStatus(booted="A", slots=SLOTS, health="good", time=NOW))
    updates.write_result(UpdateResult("b2", UpdateState.INSTALLED, "", NOW + 60, "B"))
    page = admin.get("/system").text
    assert "The update is installed in slot B; the box restarts into it." in page
    assert 'data-poll="/api/system/update"' in page  # waits for the restart
    updates.write_status(SystemStatus(booted="B", slots=SLOTS, health="good", time=NOW + 120))
    page = admin.get("/system").text
    assert "The update is installed and running from slot B." in page and "data-poll" not in page
    updates.write_result(UpdateResult("c3", UpdateState.FAILED, "signature is not valid", NOW))
    page = admin.get("/system").text
    assert "The update failed and nothing was changed. Signature is not valid." in page
    assert 'id="update-form"' in page  # a failed update leaves the way open


def test_damaged_files_from_root_read_as_nothing_known(box: Box) -> None:
    folder = box.data / "update"
    folder.mkdir()
    (folder / "status.json").write_text('{"booted": 7, "slots": "x", "time": 1e999}')
    (folder / "result.json").write_text("{not json")
    admin = signed_in(box.app, "admin")
    page = admin.get("/system")
    assert page.status == 200 and 'id="update-form"' in page.text
    system = admin.get("/api/system").json()
    jsonschema.validate(system, SYSTEM)
    assert (system["booted"], system["slots"], system["update"]) == ("", [], None)
    assert admin.get("/api/system/update").status == 404


def test_texts_of_states_times_and_rollbacks() -> None:
    assert stamp(0) == "an unknown time" and stamp(1e300) == "an unknown time"
    assert stamp(NOW) == "2023-11-14 22:13:20 UTC"
    assert said("done") == "Done." and said("done!") == "Done!" and said("  ") == ""
    bare = Rollback("", "", 0.0, "")
    assert rollback_text(bare, "") == (
        "The update did not start properly and was rolled back to the previous slot at an "
        "unknown time."
    )
    queued = UpdateResult("q", UpdateState.QUEUED, "", NOW)
    assert "(about 7 minutes)" in update_text(queued, None, 7)
    installed = UpdateResult("i", UpdateState.INSTALLED, "", NOW)
    assert update_text(installed, None, 5) == (
        "The update is installed in the other slot; the box restarts into it."
    )


# -- the OpenAPI document ----------------------------------------------------------------


def test_the_api_is_described_in_the_openapi_document(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    paths = admin.get("/api/openapi.json").json()["paths"]
    put = paths["/api/system/update"]["put"]
    assert put["x-permission"] == "system:write"
    assert put["requestBody"]["content"] == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
    assert put["responses"]["202"]["content"]["application/json"]["schema"] == UPDATE_RESULT
    assert {"400", "411", "413", "415"} <= set(put["responses"])
    assert paths["/api/system/update"]["get"]["x-permission"] == "system:read"
    assert paths["/api/system"]["get"]["responses"]["200"]["content"]["application/json"] == {
        "schema": SYSTEM
    }
