"""Bulk import of extensions from the web: the upload form, the per-row report, and
`run_import`, which the REST API's import endpoint shares.

The file is checked by `appliance.store.importer`; this module only moves it there
and shows what came back. Passwords come from the file (the importer has no way to
generate them, and a generated password nobody saw would be useless anyway).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Final

import bottle

from appliance.store.importer import (
    COLUMNS,
    MAX_BYTES,
    MAX_ROWS,
    Format,
    ImportReport,
    detect_format,
    import_extensions,
)
from appliance.web.auth import client_address, current
from appliance.web.choice_fields import select_field
from appliance.web.pages import page
from appliance.web.registry import Registry
from appliance.web.services import WebServices

MODES: Final = (
    ("all", "All or nothing: import only if every row is good"),
    ("partial", "Import the good rows, report the bad ones"),
)
# Multipart framing around the file: boundaries, part headers, the other fields.
MULTIPART_SLACK: Final = 64 * 1024


def run_import(services: WebServices, data: bytes, fmt: Format, partial: bool) -> ImportReport:
    """Import, and record it in the audit log in the same transaction if anything was
    written (a refused file changes nothing, so there is nothing to record)."""
    with services.db.atomic():
        report = import_extensions(services.directory, data, fmt, partial=partial)
        if report.imported:
            services.audit.record(
                current().username,
                "extension.import",
                f"{len(report.imported)} extension(s)",
                client_address(),
                " ".join(report.imported),
            )
    return report


def _form(mode: str, error: str | None) -> str:
    e = html.escape
    csrf = current().session
    token = csrf.csrf_token if csrf else ""
    invalid = ' aria-invalid="true" aria-describedby="file-error"' if error else ""
    message = f'<p class="error" id="file-error">{e(error)}</p>' if error else ""
    return f"""<p>One extension per row. CSV: a header row naming the columns
<code>{", ".join(COLUMNS)}</code> (<code>number</code> and <code>password</code> are
required on every row; <code>name</code> and <code>email</code> may be left out), then
one row per extension. JSON: a list of objects with those keys, or
<code>{{"extensions": [...]}}</code>. At most {MAX_ROWS} rows and
{MAX_BYTES // (1024 * 1024)} MiB. Passwords are not generated here: give each phone's
password in the file (at least 8 characters).</p>
<pre><code>number,password,name,email
201,correct-horse-201,Reception,desk@example.com
202,battery-staple-202,Stock room,</code></pre>
<form method="post" action="/extensions/import" enctype="multipart/form-data">
<input type="hidden" name="csrf_token" value="{e(token)}">
<div class="field{" invalid" if error else ""}">
<label for="file">CSV or JSON file</label>
<input id="file" name="file" type="file"
 accept=".csv,.json,.txt,text/csv,application/json"{invalid}>
{message}</div>
{select_field("mode", "When some rows are bad", MODES, mode, None)}
<button type="submit" id="import-submit">Import</button>
</form>"""


def _where(line: int | None, index: int | None) -> str:
    if line is not None:
        return f"line {line}"
    return "the whole file" if index is None else f"item {index} (counting from 0)"


def _report(report: ImportReport, filename: str, partial: bool) -> str:
    e = html.escape
    parts = []
    if report.fatal:
        parts.append(
            f'<p class="error" id="import-result">Nothing imported: {e(filename)} '
            "cannot be read as a whole.</p>"
        )
    elif report.issues and not partial:
        parts.append(
            f'<p class="error" id="import-result">Nothing imported: {len(report.issues)} '
            f"bad row(s) in {e(filename)}. Fix them and import the file again, or choose "
            "to import the good rows.</p>"
        )
    else:
        bad = f", {len(report.issues)} bad row(s) left out" if report.issues else ""
        parts.append(
            f'<p class="notice" id="import-result">Imported {len(report.imported)} '
            f"extension(s) from {e(filename)}{bad}.</p>"
        )
    if report.issues:
        rows = "".join(
            f"<tr><td>{e(_where(i.line, i.index))}</td><td>{e(i.number or '')}</td>"
            f"<td>{e(i.reason)}</td></tr>"
            for i in report.issues
        )
        parts.append(
            '<h2>Problems</h2><table id="import-issues"><thead><tr><th>Where</th>'
            f"<th>Number</th><th>What is wrong</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    if report.imported:
        numbers = ", ".join(e(n) for n in report.imported)
        parts.append(f'<h2>Imported</h2><p id="import-imported">{numbers}</p>')
    parts.append('<p><a href="/extensions">Back to the extensions</a></p>')
    return "\n".join(parts)


def register_import_pages(reg: Registry, services: WebServices) -> None:
    @reg.add("GET", "/extensions/import", "extension:write", "Extension import form")
    def import_form() -> str:
        return page("Import extensions", _form("all", None))

    @reg.add("POST", "/extensions/import", "extension:write", "Import extensions from a file")
    def import_submit() -> str:
        mode = str(bottle.request.forms.get("mode") or "all")
        mode = mode if mode in dict(MODES) else "all"
        if bottle.request.content_length > MAX_BYTES + MULTIPART_SLACK:
            limit = f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB: split it."
            return page("Import extensions", _form(mode, limit), 413)
        upload = bottle.request.files.get("file")
        if not isinstance(upload, bottle.FileUpload) or not upload.raw_filename:
            return page("Import extensions", _form(mode, "Choose a CSV or JSON file."), 400)
        data = upload.file.read(MAX_BYTES + 1)
        filename = Path(str(upload.raw_filename)).name[:100]
        fmt = detect_format(Path(filename), data)  # only its suffix is looked at
        partial = mode == "partial"
        report = run_import(services, data, fmt, partial)
        status = 200 if report.imported or not report.issues else 400
        body = _report(report, filename, partial)
        return page("Import report", body, status)
