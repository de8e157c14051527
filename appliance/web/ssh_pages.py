"""The SSH switch: its section of the System page, the form behind it and
PUT /api/system/ssh, with the public keys that may log in as root.

The PBX runs unprivileged and starts no sshd itself: SSH follows a flag file that root's
path unit watches, with the public keys given here copied by root for sshd
(`appliance.system.updates` holds that hand-over). This module refuses a key that is not
one, or switching on with none, before writing anything. The System page itself is
composed by `system_pages`, which hands over the page to show again when the form is
refused: importing that module here would make the two import each other.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final, Protocol

import bottle

from appliance.system.updates import (
    MAX_AUTHORIZED_KEYS,
    authorized_keys,
    parse_authorized_keys,
    set_ssh,
    ssh_enabled,
)
from appliance.web.audit_trail import change
from appliance.web.auth import see_other
from appliance.web.jsonio import Fields, read_object
from appliance.web.os_image import NOT_IMAGE_ANSWER, on_image
from appliance.web.pages import form_text, hidden_csrf
from appliance.web.registry import Registry, Schema
from appliance.web.schemas import obj
from appliance.web.services import WebServices

# On the image's data partition, beside (not inside) the PBX's data folder.
AUTHORIZED_KEYS: Final = "/data/ssh/authorized_keys"
KEYS_FIELD: Final = "authorized_keys"  # the form's textarea and the API's field
# sshd takes keys only (image/overlay/etc/ssh/sshd_config.d/yakyak.conf): on with none
# given here, nobody could log in unless a key was put on the data partition by hand.
NO_KEYS: Final = "add at least one public key: SSH accepts no passwords"
NOTICES: Final = {
    "ssh-on": "SSH is switched on.",
    "ssh-off": "SSH is switched off.",
    "ssh-keys": "The public keys for SSH are saved.",
}

esc = html.escape


class RefusedPage(Protocol):
    """The System page again, answered 400: `reason` (a refusal, not yet a sentence)
    next to the keys, and `typed` in them (None: the keys stored)."""

    def __call__(self, reason: str, typed: str | None) -> str: ...


# -- JSON ---------------------------------------------------------------------------

KEY_LINES: Final[Schema] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "the public keys SSH takes for root, as OpenSSH key lines",
}
SSH_SWITCH: Final = obj(
    {
        "enabled": {"type": "boolean"},
        KEYS_FIELD: {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": MAX_AUTHORIZED_KEYS,
            "description": (
                "The public keys that may log in as root: one OpenSSH key line an item "
                "(type, base64, optional comment; no options such as command=), replacing "
                "those given before. Empty and # items are dropped; an item holding a line "
                "break is refused. Errors name the bad item as line N, counting from 1. "
                "Omitted: the keys stay as they are. An empty list with enabled true is "
                "refused: SSH accepts no passwords."
            ),
        },
    },
    required=("enabled",),
)
SSH_STATE: Final = obj({"ssh_enabled": {"type": "boolean"}, KEYS_FIELD: KEY_LINES})


# -- HTML ---------------------------------------------------------------------------


def key_count(count: int) -> str:
    return f"{count} public key{'' if count == 1 else 's'}"


def _keys_form(enabled: bool, text: str, error: str) -> str:
    invalid = ' aria-invalid="true" aria-describedby="keys-error"' if error else ""
    turn = "off" if enabled else "on"
    stay = "on" if enabled else "off"
    return "\n".join(
        (
            '<form method="post" action="/system/ssh" id="ssh-form">',
            hidden_csrf(),
            f'<div class="field{" invalid" if error else ""}">',
            f'<label for="{KEYS_FIELD}">Public keys allowed to log in as root '
            "(one per line)</label>",
            # The newline after the start tag: HTML drops one there, so text that starts
            # with a blank line keeps it.
            f'<textarea id="{KEYS_FIELD}" name="{KEYS_FIELD}" rows="6" cols="80" '
            f'spellcheck="false" autocomplete="off"{invalid}>\n{esc(text)}</textarea>',
            f'<p class="error" id="keys-error"{"" if error else " hidden"}>{esc(error)}</p>',
            f"<p>Paste each key as OpenSSH writes it (the line of a .pub file), at most "
            f"{MAX_AUTHORIZED_KEYS}. Lines starting with # are left out.</p>",
            "</div>",
            # Which button was pressed says whether SSH is to be on: both save the keys.
            f'<button type="submit" name="enabled" value="{stay}" id="ssh-save">Save keys</button>',
            f'<button type="submit" name="enabled" value="{turn}" id="ssh-submit">'
            f"Switch SSH {turn}</button>",
            "</form>",
        )
    )


def ssh_section(
    *,
    available: bool,
    enabled: bool,
    may_write: bool,
    keys: Sequence[str] = (),
    keys_text: str | None = None,
    error: str = "",
) -> str:
    """The SSH state and switch; `keys_text` is what the textarea shows (the keys
    stored, unless a refused form sent other text) and `error` why it was refused."""
    parts = ["<h2>SSH</h2>"]
    if not available:
        parts.append('<p id="ssh-unavailable">SSH is switched only on the YakYak OS image.</p>')
        return "\n".join(parts)
    state = "on" if enabled else "off"
    parts.append(f'<p id="ssh-state">SSH is <strong>{state}</strong>.</p>')
    parts.append(
        '<p class="notice" id="ssh-warning">SSH gives a shell that can act as root to whoever '
        f"holds one of the keys in <code>{esc(AUTHORIZED_KEYS)}</code>. "
        "SSH is off by default.</p>"
    )
    if keys:
        them = "it" if len(keys) == 1 else "them"
        parts.append(
            f'<p id="ssh-keys">{key_count(len(keys))} given here: the box puts {them} in '
            f"<code>{esc(AUTHORIZED_KEYS)}</code> while SSH is on.</p>"
        )
    else:
        parts.append('<p id="ssh-keys">No public keys have been given here.</p>')
    if may_write:
        text = "\n".join(keys) if keys_text is None else keys_text
        parts.append(_keys_form(enabled, text, error))
    return "\n".join(parts)


# -- routes -------------------------------------------------------------------------


def register_ssh_pages(reg: Registry, services: WebServices, refused: RefusedPage) -> None:
    def switch_ssh(enabled: bool, keys: list[str] | None = None) -> bool:
        """Switch SSH and, when `keys` are given, replace the public keys root installs."""
        data = on_image(services, "SSH is switched")
        before = authorized_keys(data)
        after = before if keys is None else keys
        detail = key_count(len(after)) + ("; keys replaced" if after != before else "")
        action = "system.ssh.enable" if enabled else "system.ssh.disable"
        with change(services, action, "ssh", detail):
            set_ssh(data, enabled, keys)
        return ssh_enabled(data)

    @reg.add("POST", "/system/ssh", "system:write", "Switch SSH on or off, and set its keys")
    def ssh_form() -> str:
        data = on_image(services, "SSH is switched")
        value = form_text("enabled")
        if value not in ("on", "off"):
            raise bottle.HTTPError(400, "enabled must be on or off")
        # None: a client without the field (not our form); the keys stay as they are.
        typed: str | None = bottle.request.forms.getunicode(KEYS_FIELD)
        keys = None
        if typed is not None:
            try:
                keys = parse_authorized_keys(typed)
            except ValueError as exc:
                return refused(str(exc), typed)
        on = value == "on"
        if on and not (authorized_keys(data) if keys is None else keys):
            return refused(NO_KEYS, typed)
        was = ssh_enabled(data)
        switch_ssh(on, keys)
        notice = "ssh-keys" if keys is not None and was == on else f"ssh-{value}"
        return see_other(f"/system?notice={notice}")

    @reg.add(
        "PUT",
        "/api/system/ssh",
        "system:write",
        "Switch SSH on or off and, with authorized_keys, replace the public keys that may "
        "log in as root (400: a bad key, its line named; 503: not the YakYak OS image)",
        request=SSH_SWITCH,
        response=SSH_STATE,
        errors=((503, NOT_IMAGE_ANSWER),),
    )
    def ssh_api() -> dict[str, object]:
        data = on_image(services, "SSH is switched")
        fields = Fields(read_object(), ("enabled", KEYS_FIELD))
        if "enabled" not in fields.data:
            fields.errors["enabled"] = "required"
        enabled = fields.boolean("enabled", False)
        keys = _api_keys(fields) if KEYS_FIELD in fields.data else None
        # root's switch unit installs exactly the keys stored here (none: none accepted)
        if enabled and not (keys if keys is not None else authorized_keys(data)):
            fields.errors[KEYS_FIELD] = NO_KEYS
        fields.done()
        return {"ssh_enabled": switch_ssh(enabled, keys), KEYS_FIELD: authorized_keys(data)}


def _api_keys(fields: Fields) -> list[str] | None:
    """The API's key list, checked (None after recording why it is not)."""
    items = fields.strings(KEYS_FIELD, max_items=MAX_AUTHORIZED_KEYS)
    if KEYS_FIELD in fields.errors:
        return None
    for number, item in enumerate(items, start=1):
        if "\n" in item or "\r" in item:
            # one item, one line: else the line numbers of errors would not be items
            fields.errors[KEYS_FIELD] = f"line {number}: one key an item, without line breaks"
            return None
    try:
        return parse_authorized_keys("\n".join(items))
    except ValueError as exc:
        fields.errors[KEYS_FIELD] = str(exc)
        return None
