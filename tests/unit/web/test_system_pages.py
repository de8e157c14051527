"""The System page and API: version and slots shown, a bundle uploaded (API with a token,
form with CSRF) and queued for root, every refusal before anything is written, and the
SSH switch with the public keys that may log in."""

from __future__ import annotations

import dataclasses
import html
import io
import itertools
import re
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.system.backup import installed_version
from appliance.system.updates import (
    SSH_AUTHORIZED_KEYS,
    SSH_ENABLED,
    SSH_SWITCH,
    Rollback,
    SlotInfo,
    SystemStatus,
    UpdateFolder,
    UpdateResult,
    UpdateState,
    authorized_keys,
)
from appliance.web import system_pages
from appliance.web.app import create_app
from appliance.web.headers import SecurityHeaders
from appliance.web.services import WebServices
from appliance.web.system_pages import (
    SSH_STATE,
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


# -- SSH ---------------------------------------------------------------------------


def public_key(comment: str) -> str:
    """A real Ed25519 public key line, as ssh-keygen's .pub file holds it."""
    line = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{line} {comment}"


def post_ssh(client: Client, enabled: str, keys: str | None = None) -> Any:
    form = {"csrf_token": csrf_of(client), "enabled": enabled}
    if keys is not None:
        form["authorized_keys"] = keys
    return client.post("/system/ssh", form=form)


def ssh_audit(box: Box) -> list[tuple[str, str, str, str]]:
    return [
        (e.action, e.actor, e.target, e.detail)
        for e in box.services.audit.entries(50)
        if e.action.startswith("system.ssh")
    ]


def test_the_ssh_form_saves_the_keys_then_switches_the_flag(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    anna, ben = public_key("anna@laptop"), public_key("ben@desk")
    page = admin.get("/system").text
    assert (
        '<label for="authorized_keys">Public keys allowed to log in as root (one per line)</label>'
    ) in page
    assert 'spellcheck="false" autocomplete="off">\n</textarea>' in page  # none given yet
    assert '<p id="ssh-keys">No public keys have been given here.</p>' in page

    on = post_ssh(admin, "on", f"# the installer\r\n{anna}\r\n\r\n{ben}\r\n")
    assert on.status == 303 and on.header("Location") == "/system?notice=ssh-on"
    assert (box.data / SSH_AUTHORIZED_KEYS).read_text() == f"{anna}\n{ben}\n"
    assert (box.data / SSH_ENABLED).exists()
    assert (box.data / SSH_SWITCH).read_text().startswith("on ")
    page = admin.get("/system?notice=ssh-on").text
    assert "SSH is switched on." in page and "SSH is <strong>on</strong>" in page
    assert f'autocomplete="off">\n{anna}\n{ben}</textarea>' in page  # prefilled, as stored
    assert "2 public keys given here" in page
    assert 'value="on" id="ssh-save">Save keys' in page
    assert 'value="off" id="ssh-submit">Switch SSH off' in page

    kept = post_ssh(admin, "on", ben)  # Save keys: SSH stays on, one key fewer
    assert kept.status == 303 and kept.header("Location") == "/system?notice=ssh-keys"
    assert authorized_keys(box.data) == [ben] and (box.data / SSH_ENABLED).exists()
    assert "The public keys for SSH are saved." in admin.get("/system?notice=ssh-keys").text

    off = post_ssh(admin, "off", ben)
    assert off.status == 303 and off.header("Location") == "/system?notice=ssh-off"
    assert not (box.data / SSH_ENABLED).exists()
    assert (box.data / SSH_SWITCH).read_text().startswith("off ")
    assert authorized_keys(box.data) == [ben]
    bad = admin.post("/system/ssh", form={"csrf_token": csrf_of(admin), "enabled": "yes"})
    assert bad.status == 400
    no_csrf = admin.post("/system/ssh", form={"enabled": "on", "authorized_keys": anna})
    assert no_csrf.status == 403 and not (box.data / SSH_ENABLED).exists()
    assert authorized_keys(box.data) == [ben]
    assert ssh_audit(box) == [  # newest first; the keys are public: counted, not hidden
        ("system.ssh.disable", "admin", "ssh", "1 public key"),
        ("system.ssh.enable", "admin", "ssh", "1 public key; keys replaced"),
        ("system.ssh.enable", "admin", "ssh", "2 public keys; keys replaced"),
    ]


def test_a_bad_key_is_shown_next_to_the_field_and_nothing_is_written(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    anna = public_key("anna@laptop")
    typed = f'{anna}\r\ncommand="/bin/sh" {anna}\r\n<b>not</b>'
    page = post_ssh(admin, "on", typed)
    assert page.status == 400
    assert (
        '<p class="error" id="keys-error">Line 2: options before the key (such as '
        "command=...) are not accepted: give the key alone.</p>"
    ) in page.text
    assert 'aria-invalid="true" aria-describedby="keys-error"' in page.text
    # what was typed comes back as it was (escaped), so one line can be fixed
    assert f'aria-describedby="keys-error">\n{html.escape(typed)}</textarea>' in page.text
    assert "SSH is <strong>off</strong>" in page.text
    truncated = post_ssh(admin, "off", anna[:60])
    assert truncated.status == 400
    assert "Line 1: the key is cut short (was it copied whole?)." in truncated.text
    assert sorted(p.name for p in box.data.iterdir() if p.name.startswith("ssh")) == []
    assert ssh_audit(box) == []


def test_ssh_is_not_switched_on_without_a_key(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    message = (
        '<p class="error" id="keys-error">Add at least one public key: SSH accepts no '
        "passwords.</p>"
    )
    for keys in ("", "\r\n# only a comment\r\n", None):  # None: no field sent at all
        refused = post_ssh(admin, "on", keys)
        assert refused.status == 400 and message in refused.text
    assert not (box.data / SSH_ENABLED).exists() and not (box.data / SSH_SWITCH).exists()
    kept = post_ssh(admin, "on", "# only a comment")
    assert ">\n# only a comment</textarea>" in kept.text
    # with keys stored, the switch alone (no field) is enough
    anna = public_key("anna@laptop")
    assert post_ssh(admin, "off", anna).status == 303
    assert post_ssh(admin, "on").status == 303 and (box.data / SSH_ENABLED).exists()
    # and the last key cannot be taken away while switching (or staying) on
    assert post_ssh(admin, "on", "").status == 400
    assert authorized_keys(box.data) == [anna]
    assert post_ssh(admin, "off", "").status == 303  # off, with none: allowed
    assert authorized_keys(box.data) == [] and not (box.data / SSH_ENABLED).exists()


def test_readers_see_how_many_keys_but_get_no_form(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    post_ssh(admin, "off", public_key("anna@laptop"))
    oper = signed_in(box.app, "oper")
    page = oper.get("/system").text
    assert '<p id="ssh-keys">1 public key given here' in page
    assert "<textarea" not in page
    assert oper.get("/api/system").json()["ssh_authorized_keys"] == authorized_keys(box.data)


def put_ssh(client: Client, body: object, headers: dict[str, str]) -> Any:
    return client.request("PUT", "/api/system/ssh", json_body=body, headers=headers)


def test_the_ssh_api(box: Box) -> None:
    script = Client(box.app)
    token = box.bearer()
    refused = put_ssh(script, {"enabled": True}, token)  # no keys stored: nobody could log in
    assert refused.status == 400 and "authorized_keys" in refused.json()["fields"]
    assert not (box.data / SSH_ENABLED).exists()
    key = public_key("api")
    on = put_ssh(script, {"enabled": True, "authorized_keys": [key]}, token)
    assert on.status == 200 and on.json() == {"ssh_enabled": True, "authorized_keys": [key]}
    jsonschema.validate(on.json(), SSH_STATE)
    assert (box.data / SSH_ENABLED).exists()
    assert (box.data / SSH_AUTHORIZED_KEYS).read_text().strip() == key
    # later switches keep the stored keys
    assert put_ssh(script, {"enabled": True}, token).status == 200
    assert script.get("/api/system", headers=token).json()["ssh_enabled"] is True
    for body, fields in (
        ({}, {"enabled": "required"}),
        ({"enabled": "yes"}, {"enabled": "must be true or false"}),
        ({"enabled": False, "port": 22}, {"port": "unknown field"}),
    ):
        bad = put_ssh(script, body, token)
        assert bad.status == 400 and bad.json()["fields"] == fields
    assert (box.data / SSH_ENABLED).exists()  # nothing changed by the bad ones
    off = put_ssh(script, {"enabled": False}, token)
    assert off.json() == {"ssh_enabled": False, "authorized_keys": [key]}
    assert not (box.data / SSH_ENABLED).exists()
    actions = [e.action for e in box.services.audit.entries(20)]
    assert actions.count("system.ssh.enable") == 2 and actions.count("system.ssh.disable") == 1


def test_the_ssh_api_sets_the_keys(box: Box) -> None:
    script = Client(box.app)
    token = box.bearer()
    anna, ben = public_key("anna@laptop"), public_key("ben@desk")
    body = {"enabled": True, "authorized_keys": [anna, "", "# ben's desk", f"  {ben}  "]}
    on = put_ssh(script, body, token)
    assert on.status == 200, on.text
    assert on.json() == {"ssh_enabled": True, "authorized_keys": [anna, ben]}  # as stored
    jsonschema.validate(on.json(), SSH_STATE)
    assert (box.data / SSH_AUTHORIZED_KEYS).read_text() == f"{anna}\n{ben}\n"
    system = script.get("/api/system", headers=token).json()
    jsonschema.validate(system, SYSTEM)
    assert system["ssh_authorized_keys"] == [anna, ben] and system["ssh_enabled"] is True
    kept = put_ssh(script, {"enabled": True}, token)  # no field: the keys stay
    assert kept.json()["authorized_keys"] == [anna, ben]
    off = put_ssh(script, {"enabled": False, "authorized_keys": []}, token)
    assert off.json() == {"ssh_enabled": False, "authorized_keys": []}
    assert (box.data / SSH_AUTHORIZED_KEYS).read_text() == ""  # root cannot keep old ones
    assert ssh_audit(box) == [
        ("system.ssh.disable", "admin", "ssh", "0 public keys; keys replaced"),
        ("system.ssh.enable", "admin", "ssh", "2 public keys"),
        ("system.ssh.enable", "admin", "ssh", "2 public keys; keys replaced"),
    ]


def test_the_ssh_api_refuses_bad_keys_naming_the_line(box: Box) -> None:
    script = Client(box.app)
    token = box.bearer()
    anna = public_key("anna@laptop")
    put_ssh(script, {"enabled": False, "authorized_keys": [anna]}, token)
    before = (box.data / SSH_AUTHORIZED_KEYS).read_text(), (box.data / SSH_SWITCH).read_text()
    kind, blob, _ = anna.split()
    for keys, reason in (
        ([anna, f"ssh-rsa {blob}"], "line 2: the key inside is not of the type the line names"),
        ([anna, anna, f"{kind} {blob[:-5]}"], "line 3: the key's base64 text is damaged"),
        ([f'command="id" {anna}'], "line 1: options before the key"),
        ([f"{anna}\n{anna}"], "line 1: one key an item, without line breaks"),
        ([anna] * 21, "at most 20 items"),
        ([anna, 7], "must be a list of strings"),
        (anna, "must be a list of strings"),
        ([], "add at least one public key: SSH accepts no passwords"),
        (["# only a comment"], "add at least one public key: SSH accepts no passwords"),
    ):
        bad = put_ssh(script, {"enabled": True, "authorized_keys": keys}, token)
        assert bad.status == 400, keys
        assert bad.json()["error"] == "invalid request body"
        assert bad.json()["fields"]["authorized_keys"].startswith(reason), bad.json()
    after = (box.data / SSH_AUTHORIZED_KEYS).read_text(), (box.data / SSH_SWITCH).read_text()
    assert after == before
    assert not (box.data / SSH_ENABLED).exists()
    assert [e[0] for e in ssh_audit(box)] == ["system.ssh.disable"]  # the first, good call


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
    ssh = paths["/api/system/ssh"]["put"]
    assert ssh["x-permission"] == "system:write"
    schema = ssh["requestBody"]["content"]["application/json"]["schema"]
    assert schema == system_pages.SSH_SWITCH
    assert schema["required"] == ["enabled"]
    keys = schema["properties"]["authorized_keys"]
    assert (keys["type"], keys["items"], keys["maxItems"]) == ("array", {"type": "string"}, 20)
    answer = ssh["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["authorized_keys"]["items"] == {"type": "string"}
    assert answer["required"] == ["ssh_enabled", "authorized_keys"]
