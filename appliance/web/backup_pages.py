"""Backup and restore in the browser and the API (permission system:write).

A backup is made on request into an unlinked file in the data folder and streamed out
(`appliance.system.backup` holds the archive logic). A restore upload is checked
completely and staged in restore-pending; the running PBX is left alone and the page
says to restart, since the composition root applies it before it opens the database.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

import bottle

from appliance.system.backup import (
    MEDIA_TYPE,
    PENDING,
    PREVIOUS,
    BackupError,
    Limits,
    Manifest,
    installed_version,
    open_backup,
)
from appliance.system.restore import (
    cancel_pending_restore,
    pending_restore,
    previous_state_kept,
    stage_restore,
)
from appliance.web.audit_trail import change
from appliance.web.auth import current, see_other
from appliance.web.pages import page, when
from appliance.web.registry import Registry
from appliance.web.schemas import obj
from appliance.web.services import WebServices

UPLOAD_FIELD: Final = "archive"
# Uploads in these types go straight to the checks; anything else is refused unread.
ARCHIVE_TYPES: Final = frozenset(
    (MEDIA_TYPE, "application/x-gzip", "application/x-tar+gzip", "application/octet-stream")
)
NOTICES: Final = {
    "staged": "The backup passed every check and waits in restore-pending. "
    "Restart YakYak to apply it; until then nothing has changed.",
    "cancelled": "The pending restore has been dropped; nothing was changed.",
}
STREAM_CHUNK: Final = 1 << 20

PENDING_SCHEMA: Final = obj(
    {
        "created_at": {"type": "number", "description": "when the backup was made (Unix time)"},
        "yakyak_version": {"type": "string"},
        "schema_version": {"type": "integer"},
        "files": {"type": "integer"},
        "bytes": {"type": "integer"},
    }
)
RESTORE_STATUS: Final = obj(
    {
        "pending": {"oneOf": [PENDING_SCHEMA, {"type": "null"}]},
        "previous_kept": {"type": "boolean", "description": "restore-previous is still there"},
        "message": {"type": "string"},
    }
)


def pending_dict(manifest: Manifest | None) -> dict[str, object] | None:
    if manifest is None:
        return None
    return {
        "created_at": manifest.created_at,
        "yakyak_version": manifest.yakyak_version,
        "schema_version": manifest.schema_version,
        "files": len(manifest.files),
        "bytes": manifest.total_size,
    }


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    """The archive in chunks; the file (already unlinked) closes when they run out."""
    try:
        while chunk := f.read(STREAM_CHUNK):
            yield chunk
    finally:
        f.close()


BACKUP: Final = bottle.SimpleTemplate("""% if notice:
<p class="notice">{{notice}}</p>
% end
<h2>Download a backup</h2>
<p>One .tar.gz archive of the database (a consistent copy, taken while calls go on),
yakyak.toml, the web certificate with its private key, custom prompts, music on hold
and every mailbox, with a manifest of SHA-256 hashes.</p>
<p>It holds everything needed to impersonate this box: password hashes, the SIP
credentials of every extension, the web certificate's key, and voicemail. Keep it
as safe as a password.</p>
<form method="post" action="/backup/download">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<button type="submit">Download backup</button>
</form>
<h2>Restore</h2>
% if pending:
<div class="notice">
<p>A restore is waiting: the backup made {{when(pending.created_at)}} UTC by YakYak
{{pending.yakyak_version}} ({{len(pending.files)}} files). <strong>Restart YakYak to apply
it.</strong> Until then the box runs on as it is.</p>
<form method="post" action="/backup/cancel" class="inline">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<button type="submit">Drop the pending restore</button>
</form>
</div>
% end
% if previous:
<p>The state from before the last restore is kept in {{previous}}.</p>
% end
<p>The archive is checked completely (every hash, every name, the database's integrity
and schema version, the configuration) before anything is replaced; a bad one changes
nothing. A good one is applied at the next start.</p>
<form method="post" action="/backup/restore" enctype="multipart/form-data">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<div class="field{{' invalid' if error else ''}}">
<label for="archive">Backup archive (.tar.gz)</label>
<input id="archive" name="archive" type="file" accept=".tar.gz,.tgz,application/gzip"
% if error:
aria-invalid="true" aria-describedby="archive-error"
% end
>
% if error:
<p class="error" id="archive-error">{{error}}</p>
% end
</div>
<button type="submit">Check and stage the restore</button>
</form>
""")


def register_backup_pages(
    reg: Registry, services: WebServices, limits: Limits | None = None
) -> None:
    limits = limits or Limits()

    def data_dir() -> Path:
        if services.data_dir is None:
            raise bottle.HTTPError(503, "backup is not available: this server has no data folder")
        return services.data_dir

    def backup_page(error: str = "", notice: str = "", status: int = 200) -> str:
        principal = current()
        folder = data_dir()
        body = BACKUP.render(
            notice=notice,
            pending=pending_restore(folder),
            previous=str(folder / PREVIOUS) if previous_state_kept(folder) else "",
            error=error,
            when=when,
            csrf_token=principal.session.csrf_token if principal.session else "",
        )
        return page("Backup and restore", str(body), status)

    def download() -> Iterator[bytes]:
        folder = data_dir()
        now = services.clock()
        try:
            f, size, manifest = open_backup(folder, now=now, version=installed_version())
        except (BackupError, OSError) as exc:
            raise bottle.HTTPError(500, f"the backup could not be made: {exc}") from None
        try:
            detail = f"{len(manifest.files)} files, {size} bytes"
            with change(services, "backup.download", "", detail):
                pass  # nothing changes, but who took a copy of every secret is recorded
        except BaseException:
            f.close()
            raise
        stamp = datetime.datetime.fromtimestamp(now, datetime.UTC)
        bottle.response.content_type = MEDIA_TYPE
        bottle.response.set_header("Content-Length", str(size))
        bottle.response.set_header(
            "Content-Disposition",
            f'attachment; filename="yakyak-backup-{stamp:%Y%m%d-%H%M%S}.tar.gz"',
        )
        return _chunks(f)

    def stage(source: BinaryIO) -> Manifest:
        """Check and stage; BackupError says what is wrong, and nothing changed."""
        manifest = stage_restore(data_dir(), source, limits=limits)
        detail = f"backup of {when(manifest.created_at)} UTC, {len(manifest.files)} files"
        with change(services, "backup.restore.stage", PENDING, detail):
            pass
        return manifest

    def too_large() -> bool:
        length = int(bottle.request.content_length)  # -1 when not sent
        return length > limits.max_expanded + (1 << 20)  # the archive and the form around it

    # -- pages -------------------------------------------------------------------

    @reg.add("GET", "/backup", "system:write", "Backup and restore", nav="Backup", nav_order=80)
    def backup() -> str:
        return backup_page(notice=NOTICES.get(bottle.request.query.get("notice") or "", ""))

    @reg.add("POST", "/backup/download", "system:write", "Download a backup archive")
    def backup_download() -> Iterator[bytes]:
        return download()

    @reg.add("POST", "/backup/restore", "system:write", "Upload a backup and stage its restore")
    def backup_restore() -> str:
        data_dir()
        if too_large():
            limit = limits.max_expanded >> 20
            return backup_page(
                f"The upload is larger than {limit} MiB: nothing was changed.", "", 413
            )
        upload = bottle.request.files.get(UPLOAD_FIELD)
        if not isinstance(upload, bottle.FileUpload):
            return backup_page("Choose a backup archive (.tar.gz) to upload.", "", 400)
        try:
            stage(upload.file)
        except BackupError as exc:
            return backup_page(f"Refused, and nothing was changed: {exc}.", "", 400)
        return see_other("/backup?notice=staged")

    @reg.add("POST", "/backup/cancel", "system:write", "Drop the pending restore")
    def backup_cancel() -> str:
        folder = data_dir()
        with change(services, "backup.restore.cancel", PENDING):
            dropped = cancel_pending_restore(folder)
        return see_other("/backup?notice=cancelled" if dropped else "/backup")

    # -- API ---------------------------------------------------------------------

    @reg.add(
        "GET",
        "/api/backup",
        "system:write",
        "Download a backup archive (application/gzip)",
        produces=MEDIA_TYPE,
    )
    def backup_api() -> Iterator[bytes]:
        return download()

    @reg.add(
        "GET",
        "/api/backup/restore",
        "system:write",
        "Whether a restore is pending",
        response=RESTORE_STATUS,
    )
    def restore_status_api() -> dict[str, object]:
        folder = data_dir()
        pending = pending_restore(folder)
        return {
            "pending": pending_dict(pending),
            "previous_kept": previous_state_kept(folder),
            "message": "restart YakYak to apply the pending restore" if pending else "",
        }

    @reg.add(
        "POST",
        "/api/backup/restore",
        "system:write",
        "Check a backup archive (the body, sent as application/gzip) and stage its restore, "
        "applied at the next start; a bad archive answers 400 naming what is wrong",
        response=RESTORE_STATUS,
        consumes=MEDIA_TYPE,
    )
    def restore_api() -> dict[str, object]:
        folder = data_dir()
        content_type = (bottle.request.content_type or "").split(";")[0].strip().lower()
        if content_type not in ARCHIVE_TYPES:
            raise bottle.HTTPError(415, f"send the archive as the body, as {MEDIA_TYPE}")
        if bottle.request.content_length < 0:
            raise bottle.HTTPError(411, "send a Content-Length")
        if too_large():
            raise bottle.HTTPError(413, f"archive larger than {limits.max_expanded} bytes")
        try:
            manifest = stage(bottle.request.body)
        except BackupError as exc:
            raise bottle.HTTPError(400, f"refused, and nothing was changed: {exc}") from None
        return {
            "pending": pending_dict(manifest),
            "previous_kept": previous_state_kept(folder),
            "message": "restart YakYak to apply the restore",
        }

    @reg.add(
        "DELETE", "/api/backup/restore", "system:write", "Drop the pending restore", status=204
    )
    def cancel_api() -> str:
        folder = data_dir()
        with change(services, "backup.restore.cancel", PENDING):
            if not cancel_pending_restore(folder):
                raise bottle.HTTPError(404, "no restore is pending")
        bottle.response.status = 204
        return ""
