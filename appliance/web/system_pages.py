"""The System page and API: the software running and updating it.

The PBX runs unprivileged, so it installs nothing itself: an uploaded RAUC bundle is
written into the data folder and queued for root's update unit
(`appliance.system.updates` holds that hand-over). This module streams an upload to
disk, refuses what cannot work before writing anything (too large, no room, another
update under way) and shows what root reported back. Off the YakYak OS image (no RAUC)
the page shows the version only. The page's SSH section, and the switch behind it, are
`appliance.web.ssh_pages`.
"""

from __future__ import annotations

import errno
import html
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import bottle

from appliance.system.backup import installed_version
from appliance.system.updates import (
    Readable,
    Rollback,
    SlotInfo,
    SystemStatus,
    UpdateBusy,
    UpdateFolder,
    UpdateResult,
    UpdateState,
    authorized_keys,
    size_text,
    ssh_enabled,
)
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.os_image import NOT_IMAGE_ANSWER, on_image
from appliance.web.pages import hidden_csrf, page, when
from appliance.web.registry import PUBLIC, Registry, Schema
from appliance.web.schemas import obj
from appliance.web.services import WebServices
from appliance.web.ssh_pages import KEY_LINES, register_ssh_pages, ssh_section
from appliance.web.ssh_pages import NOTICES as SSH_NOTICES

BUNDLE_FIELD: Final = "bundle"
BUNDLE_TYPE: Final = "application/octet-stream"
SCRIPT_PATH: Final = "/static/system.js"
UPDATE_API: Final = "/api/system/update"
FORM_SLACK: Final = 1 << 20  # the multipart framing and CSRF field around a form's bundle
DISK_FULL: Final = frozenset((errno.ENOSPC, errno.EDQUOT))
NOTICES: Final = {"queued": "The bundle is uploaded and queued.", **SSH_NOTICES}


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


@dataclass(frozen=True, slots=True)
class UpdatePolicy:
    max_bundle: int = 1 << 30  # a bundle carries one root file system: far below this
    # left free beside the bundle: the database, call records and voicemail keep writing
    free_margin: int = 64 << 20
    install_minutes: int = 5  # what the page says checking, installing and restarting take
    free_space: Callable[[Path], int] = _free_bytes


class Refused(Exception):
    """Why an update was not queued, and the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RequestBody:
    """A request body read straight from the server's input, at most Content-Length
    bytes: a bundle is never held whole in memory, nor copied to /tmp (a small RAM disk
    on the image) as Bottle does with bodies it reads. A client that stops early is a
    ValueError, not a shorter bundle."""

    def __init__(self, stream: Readable, length: int) -> None:
        self._stream = stream
        self._length = length
        self._left = length

    def read(self, size: int, /) -> bytes:
        if self._left <= 0:
            return b""
        try:
            block = self._stream.read(self._left if size < 0 else min(size, self._left))
        except (ConnectionError, TimeoutError) as exc:  # the client went, or went quiet
            raise ValueError(f"the upload broke off: {exc}") from None
        if not block:
            got = self._length - self._left
            raise ValueError(f"the upload ended after {got} of the {self._length} bytes announced")
        self._left -= len(block)
        return block


def _request_input() -> Readable:
    """The body as the server delivers it; Bottle's copy if something already read it."""
    environ = bottle.request.environ
    stream: Readable = (
        bottle.request.body if "bottle.request.body" in environ else environ["wsgi.input"]
    )
    return stream


# -- JSON ---------------------------------------------------------------------------


def _nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


_TEXT: Final[Schema] = {"type": "string"}
UPDATE_RESULT: Final = obj(
    {
        "id": {"type": "string", "description": "the update request"},
        "state": {"enum": [state.value for state in UpdateState]},
        "message": {"type": "string", "description": "progress or the reason it failed"},
        "time": {"type": "number", "description": "when it reached this state (Unix time)"},
        "slot": {"type": "string", "description": "the slot installed into, once known"},
    }
)
SLOT: Final = obj(
    {
        "name": _TEXT,
        "bootname": {"type": "string", "description": "A or B"},
        "booted": {"type": "boolean"},
        "boot_status": {"type": "string", "description": "good, bad, or empty: not known"},
        "version": {"type": "string", "description": "empty: the factory image"},
        "installed": {"type": "string", "description": "when, as RAUC wrote it"},
    }
)
ROLLBACK: Final = obj(
    {
        "from_slot": _TEXT,
        "version": {"type": "string", "description": "the version that did not start"},
        "time": {"type": "number", "description": "Unix time"},
        "reason": _TEXT,
    }
)
SYSTEM: Final = obj(
    {
        "version": {"type": "string", "description": "the YakYak software running"},
        "updates_available": {
            "type": "boolean",
            "description": "the YakYak OS image: bundles can be installed, SSH switched",
        },
        "booted": {"type": "string", "description": "the slot running; empty: not reported"},
        "slots": {"type": "array", "items": SLOT},
        "last_update": _nullable(UPDATE_RESULT) | {"description": "as seen at the last start"},
        "rollback": _nullable(ROLLBACK),
        "health": {"type": "string", "description": "the health check of this start"},
        "ssh_enabled": {"type": "boolean"},
        "ssh_authorized_keys": KEY_LINES,
        "update": _nullable(UPDATE_RESULT) | {"description": "the latest update request"},
    }
)


def result_dict(result: UpdateResult) -> dict[str, object]:
    return {**asdict(result), "state": result.state.value}


def _result_or_none(result: UpdateResult | None) -> dict[str, object] | None:
    return result_dict(result) if result is not None else None


def _rollback_dict(rollback: Rollback | None) -> dict[str, object] | None:
    return asdict(rollback) if rollback is not None else None


def system_dict(
    version: str,
    available: bool,
    status: SystemStatus | None,
    ssh: bool,
    update: UpdateResult | None,
    *,
    keys: Sequence[str] = (),
) -> dict[str, object]:
    return {
        "version": version,
        "updates_available": available,
        "booted": status.booted if status else "",
        "slots": [asdict(slot) for slot in status.slots] if status else [],
        "last_update": _result_or_none(status.last_update) if status else None,
        "rollback": _rollback_dict(status.rollback) if status else None,
        "health": status.health if status else "",
        "ssh_enabled": ssh,
        "ssh_authorized_keys": list(keys),
        "update": _result_or_none(update),
    }


# -- HTML ---------------------------------------------------------------------------

esc = html.escape


def stamp(unix: float) -> str:
    """A time root reported, in UTC; read as defensively as root's files are."""
    if unix <= 0:
        return "an unknown time"
    try:
        return f"{when(unix)} UTC"
    except (OverflowError, ValueError, OSError):
        return "an unknown time"


def said(text: str) -> str:
    """A message (root's, or a refusal) as a sentence, whether or not it ends as one."""
    text = text.strip()
    if not text:
        return ""
    return f"{text[:1].upper()}{text[1:]}{'' if text[-1] in '.!?' else '.'}"


def rollback_text(rollback: Rollback, booted: str) -> str:
    version = f" to version {rollback.version}" if rollback.version else ""
    slot = f"slot {booted}" if booted else "the previous slot"
    reason = f": {rollback.reason}" if rollback.reason else "."
    return (
        f"The update{version} did not start properly and was rolled back to {slot} "
        f"at {stamp(rollback.time)}{reason}"
    )


def _running(result: UpdateResult, status: SystemStatus | None) -> bool:
    """The installed slot is the one running now: the box restarted into it."""
    return status is not None and bool(result.slot) and status.booted == result.slot


def _rolled_back(result: UpdateResult, status: SystemStatus | None) -> bool:
    rollback = status.rollback if status is not None else None
    return rollback is not None and rollback.time >= result.time


def update_text(result: UpdateResult, status: SystemStatus | None, minutes: int) -> str:
    """What the latest update request has come to, as a sentence or two."""
    note = f" {said(result.message)}" if result.message else ""
    if result.state is UpdateState.QUEUED:
        return (
            "Update queued: the box checks the bundle's signature, installs it into the "
            f"other slot and restarts (about {minutes} minutes); this page shows the result." + note
        )
    if result.state is UpdateState.INSTALLING:
        return "Installing the update into the other slot; the box restarts when it is done." + note
    if result.state is UpdateState.FAILED:
        return "The update failed and nothing was changed." + note
    if _rolled_back(result, status):
        return "The update was installed but rolled back: see above." + note
    if _running(result, status):
        return f"The update is installed and running from slot {result.slot}." + note
    where = f"slot {result.slot}" if result.slot else "the other slot"
    return f"The update is installed in {where}; the box restarts into it." + note


def _polling(result: UpdateResult, status: SystemStatus | None) -> bool:
    """Whether the page should keep asking: the update is still on its way."""
    if result.state in (UpdateState.QUEUED, UpdateState.INSTALLING):
        return True
    return (
        result.state is UpdateState.INSTALLED
        and not _running(result, status)
        and not _rolled_back(result, status)
    )


def _slot_row(slot: SlotInfo) -> str:
    name = slot.bootname or slot.name or "?"
    return (
        f"<tr><td>{esc(name)}{' (running)' if slot.booted else ''}</td>"
        f"<td>{esc(slot.version or 'factory image')}</td>"
        f"<td>{esc(slot.boot_status or 'not known')}</td>"
        f"<td>{esc(slot.installed or '')}</td></tr>"
    )


def software_section(version: str, status: SystemStatus | None) -> str:
    parts = [
        "<h2>Software</h2>",
        '<dl id="software">',
        f'<dt>Version running</dt><dd id="version">{esc(version)}</dd>',
    ]
    if status is not None and status.booted:
        parts.append(f'<dt>Slot running</dt><dd id="booted">{esc(status.booted)}</dd>')
    if status is not None and status.health:
        parts.append(f'<dt>Health check at start</dt><dd id="health">{esc(status.health)}</dd>')
    parts.append("</dl>")
    if status is not None and status.rollback is not None:
        text = rollback_text(status.rollback, status.booted)
        parts.append(f'<p class="error" id="rollback" role="alert">{esc(text)}</p>')
    if status is not None and status.slots:
        parts.append(
            '<table id="slots"><thead><tr><th>Slot</th><th>Version</th><th>Boot status</th>'
            "<th>Installed</th></tr></thead><tbody>"
        )
        parts.extend(_slot_row(slot) for slot in status.slots)
        parts.append("</tbody></table>")
    return "\n".join(parts)


def _upload_form(error: str, policy: UpdatePolicy) -> str:
    invalid = ' aria-invalid="true" aria-describedby="bundle-error"' if error else ""
    return "\n".join(
        (
            f'<form method="post" action="/system/update" enctype="multipart/form-data" '
            f'id="update-form" data-api="{UPDATE_API}" data-done="/system?notice=queued">',
            hidden_csrf(),
            f'<div class="field{" invalid" if error else ""}">',
            '<label for="bundle">Update bundle (.raucb)</label>',
            f'<input id="bundle" name="bundle" type="file" accept=".raucb"{invalid}>',
            f'<p class="error" id="bundle-error"{"" if error else " hidden"}>{esc(error)}</p>',
            "</div>",
            '<p id="bundle-progress" hidden></p>',
            '<button type="submit" id="update-submit">Upload and install</button>',
            "</form>",
            f"<p>At most {esc(size_text(policy.max_bundle))}. The box installs only bundles "
            "signed for YakYak, into the slot not running, and restarts into it; if the new "
            "version does not start properly it goes back to this one by itself.</p>",
        )
    )


def update_section(
    *,
    available: bool,
    status: SystemStatus | None,
    result: UpdateResult | None,
    busy: bool,
    may_write: bool,
    error: str,
    policy: UpdatePolicy,
) -> str:
    parts = ["<h2>Software update</h2>"]
    if not available:
        parts.append(
            '<p id="updates-unavailable">Software updates are possible only on the YakYak '
            "OS image; this machine has no A/B slots to install one into.</p>"
        )
        return "\n".join(parts)
    if status is None:
        parts.append(
            '<p id="status-unknown">The state of the slots has not been reported yet: '
            "the box records it at every start.</p>"
        )
    if result is not None:
        poll = f' data-poll="{UPDATE_API}"' if _polling(result, status) else ""
        text = update_text(result, status, policy.install_minutes)
        parts.append(
            f'<p class="notice" id="update-state" data-id="{esc(result.id)}" '
            f'data-state="{esc(result.state.value)}"{poll}>{esc(text)} '
            f"(update {esc(result.id)}, {esc(stamp(result.time))})</p>"
        )
    last = status.last_update if status is not None else None
    if last is not None and (result is None or last.id != result.id):
        said = f": {last.message}" if last.message else ""
        text = f"At the last start, update {last.id} was {last.state.value}{said}"
        text += f" ({stamp(last.time)})."
        parts.append(f'<p id="last-update">{esc(text)}</p>')
    if busy:
        parts.append(
            '<p id="update-busy">Another bundle can be uploaded once this update is over.</p>'
        )
    elif may_write:
        parts.append(_upload_form(error, policy))
    return "\n".join(parts)


# -- routes -------------------------------------------------------------------------


def register_system_pages(
    reg: Registry, services: WebServices, policy: UpdatePolicy | None = None
) -> None:
    rules = policy or UpdatePolicy()
    version = installed_version()
    # One upload at a time: they would share bundle.raucb.part, and the bundle one
    # request received must be the one it queues.
    receiving = threading.Lock()

    def folder() -> UpdateFolder | None:
        return UpdateFolder(services.data_dir) if services.data_dir is not None else None

    def queue(source: Readable, announced: int, slack: int = 0) -> UpdateResult:
        """Receive a bundle and queue it for root; `announced` is the Content-Length."""
        data = on_image(services, "software updates are installed")
        if announced > rules.max_bundle + slack:
            raise Refused(413, f"the bundle is larger than {size_text(rules.max_bundle)}")
        free, needed = rules.free_space(data), max(announced, 0) + rules.free_margin
        if free < needed:
            raise Refused(
                413,
                f"not enough free space on the data partition: {size_text(free)} free, "
                f"and this upload needs {size_text(needed)} "
                f"({size_text(rules.free_margin)} of it stays free for calls and voicemail)",
            )
        if not receiving.acquire(blocking=False):
            raise Refused(409, "another bundle is being uploaded right now")
        updates = UpdateFolder(data)
        try:
            updates.receive_bundle(source, rules.max_bundle)
            request = updates.request_install(current().username, services.clock())
        except UpdateBusy:
            raise Refused(409, "an update is already queued or being installed") from None
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            raise Refused(413, "the data partition is full: the bundle was not kept") from None
        finally:
            receiving.release()
        with change(services, "system.update.queue", request.id, f"{request.size} bytes"):
            pass  # the request is a file for root; the audit row says who sent it, from where
        return updates.result() or UpdateResult(request.id, UpdateState.QUEUED, "", request.time)

    def view(
        error: str = "",
        notice: str = "",
        status: int = 200,
        *,
        ssh_error: str = "",
        keys_text: str | None = None,
    ) -> str:
        updates = folder()
        system = updates.status() if updates else None
        available = services.updates_available and updates is not None
        may_write = current().may("system:write")
        parts = [f'<p class="notice" id="notice">{esc(notice)}</p>'] if notice else []
        parts.append(software_section(version, system))
        parts.append(
            update_section(
                available=available,
                status=system,
                result=updates.result() if updates else None,
                busy=updates is not None and updates.pending() is not None,
                may_write=may_write,
                error=error,
                policy=rules,
            )
        )
        data = services.data_dir
        enabled = data is not None and ssh_enabled(data)
        parts.append(
            ssh_section(
                available=available,
                enabled=enabled,
                may_write=may_write,
                keys=authorized_keys(data) if data is not None and available else [],
                keys_text=keys_text,
                error=ssh_error,
            )
        )
        if available:
            parts.append(f'<script src="{SCRIPT_PATH}" defer></script>')
        return page("System", "\n".join(parts), status)

    # -- pages -------------------------------------------------------------------

    @reg.add(
        "GET", "/system", "system:read", "Software, updates and SSH", nav="System", nav_order=78
    )
    def system_page() -> str:
        return view(notice=NOTICES.get(bottle.request.query.get("notice") or "", ""))

    @reg.add("POST", "/system/update", "system:write", "Upload an update bundle and queue it")
    def update_form() -> str:
        on_image(services, "software updates are installed")
        upload = bottle.request.files.get(BUNDLE_FIELD)
        if not isinstance(upload, bottle.FileUpload):
            return view("Choose an update bundle (.raucb) to upload.", status=400)
        try:
            queue(upload.file, bottle.request.content_length, FORM_SLACK)
        except Refused as exc:
            return view(said(str(exc)), status=exc.status)
        return see_other("/system?notice=queued")

    @reg.add("GET", SCRIPT_PATH, PUBLIC, "Upload and progress of updates (script)")
    def script() -> str:
        bottle.response.content_type = "text/javascript; charset=utf-8"
        bottle.response.set_header("Cache-Control", "max-age=3600")
        return SYSTEM_SCRIPT

    # -- API ---------------------------------------------------------------------

    @reg.add(
        "GET",
        "/api/system",
        "system:read",
        "The software running, its slots, the latest update and whether SSH is on",
        response=SYSTEM,
    )
    def system_api() -> dict[str, object]:
        updates = folder()
        data = services.data_dir
        return system_dict(
            version,
            services.updates_available and updates is not None,
            updates.status() if updates else None,
            data is not None and ssh_enabled(data),
            updates.result() if updates else None,
            keys=authorized_keys(data) if data is not None else [],
        )

    @reg.add(
        "GET",
        UPDATE_API,
        "system:read",
        "The latest update request: queued, installing, installed or failed (404: none yet)",
        response=UPDATE_RESULT,
    )
    def update_api() -> dict[str, object]:
        updates = folder()
        result = updates.result() if updates else None
        if result is None:
            raise bottle.HTTPError(404, "no update has been requested")
        return result_dict(result)

    @reg.add(
        "PUT",
        UPDATE_API,
        "system:write",
        f"Upload a signed RAUC bundle (the body, as {BUNDLE_TYPE}, at most "
        f"{size_text(rules.max_bundle)}) and queue it: root checks its signature, installs "
        "it into the other slot and restarts the box. 400: not a bundle; 409: an update "
        "is under way; 413: too large, or not enough free space; 503: not the YakYak OS image",
        response=UPDATE_RESULT,
        status=202,
        consumes=BUNDLE_TYPE,
        errors=((409, "An update is already queued or being installed"), (503, NOT_IMAGE_ANSWER)),
    )
    def update_put() -> dict[str, object]:
        on_image(services, "software updates are installed")
        content_type = (bottle.request.content_type or "").split(";")[0].strip().lower()
        if content_type != BUNDLE_TYPE:
            raise bottle.HTTPError(415, f"send the bundle itself as the body, as {BUNDLE_TYPE}")
        length = int(bottle.request.content_length)
        if length < 0:
            raise bottle.HTTPError(411, "send a Content-Length")
        try:
            result = queue(RequestBody(_request_input(), length), length)
        except Refused as exc:
            raise bottle.HTTPError(exc.status, str(exc)) from None
        bottle.response.status = 202
        return result_dict(result)

    def ssh_refused(reason: str, typed: str | None) -> str:
        return view(status=400, ssh_error=said(reason), keys_text=typed)

    # The SSH section's form and API; a refused form shows this page again.
    register_ssh_pages(reg, services, ssh_refused)


# Kept here, not in a .js file, so it ships in the wheel (as live.js does). It writes
# only textContent: no markup from answers.
SYSTEM_SCRIPT: Final = """\
// The System page. Sends an update bundle as the raw body of PUT /api/system/update,
// which the box writes straight to its data partition (a form upload is first copied
// to /tmp, a small RAM disk on the box), then follows the update until it is over.
// The page works without this script: the form posts, and a reload shows the state.
"use strict";
(function () {
  function sentence(text) { return text.charAt(0).toUpperCase() + text.slice(1) + "."; }

  var form = document.getElementById("update-form");
  if (form && typeof XMLHttpRequest !== "undefined") {
    form.addEventListener("submit", function (event) {
      var input = document.getElementById("bundle");
      var error = document.getElementById("bundle-error");
      var progress = document.getElementById("bundle-progress");
      var button = document.getElementById("update-submit");
      if (!input || !input.files || input.files.length !== 1) { return; }  // the box says why
      event.preventDefault();
      function fail(text) {
        error.textContent = text;
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        progress.hidden = true;
        button.disabled = false;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", form.getAttribute("data-api"));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-CSRF-Token", form.querySelector("input[name=csrf_token]").value);
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          progress.textContent = "Uploading: " + Math.floor(100 * e.loaded / e.total) + " %";
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status === 202) { window.location.assign(form.getAttribute("data-done")); return; }
        var text = "The upload was refused (HTTP " + xhr.status + ").";
        try { text = sentence(JSON.parse(xhr.responseText).error); } catch (ignored) { /* keep */ }
        fail(text);
      });
      xhr.addEventListener("error", function () { fail("The upload broke off: try again."); });
      error.hidden = true;
      progress.textContent = "Uploading…";
      progress.hidden = false;
      button.disabled = true;
      xhr.send(input.files[0]);
    });
  }

  var state = document.getElementById("update-state");
  if (state && state.hasAttribute("data-poll") && window.fetch) {
    var seen = state.getAttribute("data-id") + " " + state.getAttribute("data-state");
    var lost = false;  // the box stopped answering: it restarts into the new slot
    var poll = function () {
      fetch(state.getAttribute("data-poll"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 401 || r.status === 403) { return null; }  // signed out: stop
          if (r.status === 404) { window.location.reload(); return null; }
          if (!r.ok) { throw new Error(String(r.status)); }
          return r.json();
        })
        .then(function (d) {
          if (d === null) { return; }
          if (lost || d.id + " " + d.state !== seen) { window.location.reload(); return; }
          setTimeout(poll, 5000);
        })
        .catch(function () {
          lost = true;
          state.textContent = "The box is restarting or busy: this page reloads when it answers.";
          setTimeout(poll, 5000);
        });
    };
    setTimeout(poll, 5000);
  }
})();
"""
