"""Bulk import of extensions from CSV or JSON, with a report of every bad row.

CSV: a header row naming the columns (number, password, name, email; the last two
optional, any order), then one extension per record. Line numbers in the report are
physical lines of the file, counting from 1, where the record starts.
JSON: a list of objects with those keys, or {"extensions": [...]}; the report gives
each bad object's index in the list, counting from 0.

By default a file is all-or-nothing: every row is checked first and nothing is
written unless all are good. `partial=True` writes the good rows and reports the bad.
Problems with the file as a whole (bad UTF-8, malformed CSV/JSON, unknown column,
too many rows) are fatal in both modes.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from appliance.store.errors import StoreError
from appliance.store.extensions import Directory, NewExtension

MAX_ROWS: Final = 10_000
MAX_BYTES: Final = 8 * 1024 * 1024
COLUMNS: Final[tuple[str, ...]] = ("number", "password", "name", "email")
REQUIRED: Final[tuple[str, ...]] = ("number", "password")


class Format(enum.Enum):
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One problem: `line` (CSV) or `index` (JSON) says where; neither for the file."""

    reason: str
    line: int | None = None
    index: int | None = None
    number: str | None = None

    def __str__(self) -> str:
        where = (
            f"line {self.line}"
            if self.line is not None
            else f"index {self.index}"
            if self.index is not None
            else "file"
        )
        if self.number:
            return f"{where}: extension {self.number}: {self.reason}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: tuple[str, ...]  # numbers written
    issues: tuple[ImportIssue, ...]
    fatal: bool  # the file itself was unusable: nothing was written

    @property
    def ok(self) -> bool:
        return not self.issues


class _FileProblem(Exception):
    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.issue = ImportIssue(reason, line=line)


@dataclass(frozen=True, slots=True)
class _Row:
    fields: Mapping[str, object]
    line: int | None = None
    index: int | None = None


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise _FileProblem(f"file larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")  # -sig: spreadsheets like to start with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _FileProblem(f"not UTF-8 (byte 0x{data[exc.start]:02x})", line) from None


def _too_many() -> _FileProblem:
    return _FileProblem(f"more than {MAX_ROWS} rows; split the file")


def _csv_rows(text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[_Row] = []
    header: list[str] | None = None
    try:
        start = 1
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or record == [""]:
                continue  # blank line
            if header is None:
                header = [name.strip().lower() for name in record]
                _check_header(header, line)
                continue
            if len(rows) == MAX_ROWS:
                raise _too_many()
            fields: dict[str, object] = dict(zip(header, record, strict=False))
            if len(record) > len(header):
                fields["_error"] = f"{len(record)} fields but the header names {len(header)}"
            rows.append(_Row(fields, line=line))
    except csv.Error as exc:
        raise _FileProblem(f"malformed CSV: {exc}", reader.line_num) from None
    if header is None:
        raise _FileProblem("file is empty: expected a header row like number,password,name,email")
    return rows


def _check_header(header: list[str], line: int) -> None:
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise _FileProblem(f"unknown column {unknown[0]!r}; columns are {', '.join(COLUMNS)}", line)
    repeated = {name for name in header if header.count(name) > 1}
    if repeated:
        raise _FileProblem(f"column {sorted(repeated)[0]!r} appears twice", line)
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise _FileProblem(f"missing column {missing[0]!r}", line)


def _json_rows(text: str) -> list[_Row]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _FileProblem(f"malformed JSON: {exc.msg} at column {exc.colno}", exc.lineno) from None
    except RecursionError:
        raise _FileProblem("malformed JSON: nested too deeply") from None
    if isinstance(document, dict):
        extra = sorted(set(document) - {"extensions"})
        if extra:
            raise _FileProblem(f'unknown key {extra[0]!r}; expected {{"extensions": [...]}}')
        document = document.get("extensions")
    if not isinstance(document, list):
        raise _FileProblem('expected a list of extensions, or {"extensions": [...]}')
    if len(document) > MAX_ROWS:
        raise _too_many()
    rows: list[_Row] = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            rows.append(_Row({"_error": "not an object"}, index=index))
            continue
        fields: dict[str, object] = dict(item)
        unknown = sorted(set(item) - set(COLUMNS))
        if unknown:
            fields["_error"] = f"unknown key {unknown[0]!r}; keys are {', '.join(COLUMNS)}"
        number = item.get("number")
        if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
            fields["number"] = str(number)  # {"number": 101} is the obvious way to write it
        rows.append(_Row(fields, index=index))
    return rows


def _text(fields: Mapping[str, object], key: str, strip: bool = True) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise StoreError(f"{key} must be a string")
    return value.strip() if strip else value


def _check_row(row: _Row) -> NewExtension:
    """The validated row, or StoreError with the reason (never echoing the password)."""
    if "_error" in row.fields:
        raise StoreError(str(row.fields["_error"]))
    number = _text(row.fields, "number")
    if not number:
        raise StoreError("missing number")
    password = _text(row.fields, "password", strip=False)
    if not password:
        raise StoreError("missing password")
    return Directory.check_new(
        number, password, _text(row.fields, "name"), _text(row.fields, "email")
    )


@dataclass(frozen=True, slots=True)
class CheckedRow:
    extension: NewExtension
    line: int | None = None
    index: int | None = None


def _where(line: int | None, index: int | None) -> str:
    return f"line {line}" if line is not None else f"index {index}"


def check_rows(data: bytes, fmt: Format) -> tuple[list[CheckedRow], list[ImportIssue], bool]:
    """Parse and validate without the database: (good rows, issues, fatal).

    Never raises for any content: a problem with the whole file comes back as one
    issue with `fatal` set. Of duplicated numbers, the later occurrences are reported.
    """
    try:
        text = _decode(data)
        rows = _csv_rows(text) if fmt is Format.CSV else _json_rows(text)
    except _FileProblem as problem:
        return [], [problem.issue], True
    good: list[CheckedRow] = []
    issues: list[ImportIssue] = []
    first_seen: dict[str, CheckedRow] = {}
    for row in rows:
        raw_number = row.fields.get("number")
        shown = raw_number.strip() if isinstance(raw_number, str) else None
        try:
            checked = CheckedRow(_check_row(row), line=row.line, index=row.index)
        except StoreError as exc:
            issues.append(ImportIssue(str(exc), row.line, row.index, shown))
            continue
        number = checked.extension.number
        if (earlier := first_seen.get(number)) is not None:
            reason = f"duplicate number (first at {_where(earlier.line, earlier.index)})"
            issues.append(ImportIssue(reason, row.line, row.index, number))
            continue
        first_seen[number] = checked
        good.append(checked)
    return good, issues, False


def import_extensions(
    directory: Directory, data: bytes, fmt: Format, *, partial: bool = False
) -> ImportReport:
    """Check every row, then add the good ones in one transaction (see module doc)."""
    good, issues, fatal = check_rows(data, fmt)
    if fatal:
        return ImportReport(imported=(), issues=tuple(issues), fatal=True)
    taken = set(directory.existing(row.extension.number for row in good))
    for row in good:
        if row.extension.number in taken:
            issues.append(ImportIssue("already exists", row.line, row.index, row.extension.number))
    good = [row for row in good if row.extension.number not in taken]
    issues.sort(key=lambda i: (i.line or 0, i.index or 0))  # file order
    if issues and not partial:
        return ImportReport(imported=(), issues=tuple(issues), fatal=False)
    directory.add_many(row.extension for row in good)
    return ImportReport(
        imported=tuple(row.extension.number for row in good), issues=tuple(issues), fatal=False
    )


def detect_format(path: Path, data: bytes) -> Format:
    """By file name suffix; otherwise JSON when it starts like JSON, else CSV."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return Format.CSV
    if suffix == ".json":
        return Format.JSON
    return Format.JSON if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{") else Format.CSV


def import_file(directory: Directory, path: Path, *, partial: bool = False) -> ImportReport:
    """`import_extensions` on a file; StoreError if it cannot be read."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return import_extensions(directory, data, detect_format(path, data), partial=partial)
