"""The SSH switch of the System page: the form and PUT /api/system/ssh, the public keys
that may log in as root, and every refusal before anything is written."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance.system.updates import SSH_AUTHORIZED_KEYS, SSH_ENABLED, SSH_SWITCH, authorized_keys
from appliance.web import ssh_pages
from appliance.web.services import WebServices
from appliance.web.ssh_pages import SSH_STATE
from appliance.web.system_pages import SYSTEM

from .conftest import Client, signed_in
from .test_system_pages import Box, csrf_of, make_box


@pytest.fixture
def box(services: WebServices, tmp_path: Path) -> Box:
    """The YakYak OS image, as far as the web can tell: RAUC there, a data folder."""
    return make_box(services, tmp_path, on_image=True)


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


def test_the_ssh_api_is_described_in_the_openapi_document(box: Box) -> None:
    admin = signed_in(box.app, "admin")
    paths = admin.get("/api/openapi.json").json()["paths"]
    ssh = paths["/api/system/ssh"]["put"]
    assert ssh["x-permission"] == "system:write"
    schema = ssh["requestBody"]["content"]["application/json"]["schema"]
    assert schema == ssh_pages.SSH_SWITCH
    assert schema["required"] == ["enabled"]
    keys = schema["properties"]["authorized_keys"]
    assert (keys["type"], keys["items"], keys["maxItems"]) == ("array", {"type": "string"}, 20)
    answer = ssh["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["authorized_keys"]["items"] == {"type": "string"}
    assert answer["required"] == ["ssh_enabled", "authorized_keys"]
