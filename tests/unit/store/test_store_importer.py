from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.store.errors import StoreError
from appliance.store.extensions import Directory
from appliance.store.importer import (
    MAX_ROWS,
    Format,
    ImportReport,
    check_rows,
    import_extensions,
    import_file,
)


def _csv(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def _issues(report: ImportReport) -> list[str]:
    return [str(issue) for issue in report.issues]


def test_good_csv_imports_everything(directory: Directory) -> None:
    data = _csv(
        "number,password,name,email",
        "101,password-101,Alice,alice@example.com",
        "102,password-102,,",
        "103,password-103",  # trailing optional fields may be left out
    )
    report = import_extensions(directory, data, Format.CSV)
    assert report.ok and report.imported == ("101", "102", "103")
    assert [(e.number, e.name, e.email) for e in directory.list()] == [
        ("101", "Alice", "alice@example.com"),
        ("102", None, None),
        ("103", None, None),
    ]


def test_csv_report_names_physical_lines_and_reasons(directory: Directory) -> None:
    directory.add("150", "password-150")
    data = _csv(
        "Password , Number,email,name",  # any order, any case, spaces
        "password-101,101,,Alice",
        "",  # blank line 3 is skipped but still counted
        'password-102,102,,"Bob',  # a quoted name spanning lines 4-5
        'Builder"',
        "password-103,101,,",  # line 6: duplicate of line 2
        ",104,,",  # 7
        "short,105,,",  # 8
        "password-106,10x6,,",  # 9
        "password-107,107,not-mail,",  # 10
        "password-150,150,,",  # 11: already in the database
        "password-108,108,,,extra",  # 12
    )
    report = import_extensions(directory, data, Format.CSV)
    assert _issues(report) == [
        "line 4: extension 102: bad name 'Bob\\r\\nBuilder': at most 64 printable characters",
        "line 6: extension 101: duplicate number (first at line 2)",
        "line 7: extension 104: missing password",
        "line 8: extension 105: password too short: at least 8 characters",
        "line 9: extension 10x6: bad extension number '10x6': must be 1 to 15 digits",
        "line 10: extension 107: bad e-mail address 'not-mail'",
        "line 11: extension 150: already exists",
        "line 12: extension 108: 5 fields but the header names 4",
    ]
    assert report.imported == () and not report.fatal
    assert [e.number for e in directory.list()] == ["150"]  # all-or-nothing


def test_partial_mode_imports_the_good_rows(directory: Directory) -> None:
    data = _csv("number,password", "101,password-101", "102,short", "103,password-103")
    report = import_extensions(directory, data, Format.CSV, partial=True)
    assert report.imported == ("101", "103")
    assert _issues(report) == ["line 3: extension 102: password too short: at least 8 characters"]
    assert [e.number for e in directory.list()] == ["101", "103"]
    assert directory.load_credentials()["103"].ha1


@pytest.mark.parametrize(
    ("data", "issue"),
    [
        (b"", "file: file is empty: expected a header row like number,password,name,email"),
        (_csv("number,password,phone"), "line 1: unknown column 'phone'; columns are"),
        (_csv("number,number,password"), "line 1: column 'number' appears twice"),
        (_csv("number,name"), "line 1: missing column 'password'"),
        (_csv("number,password", "101,password-101", "102,pass\xff"), None),  # valid text
        (b"number,password\n101,password-101\n102,\xffbad\n", "line 3: not UTF-8 (byte 0xff)"),
        (b'number,password\n101,"password-101\n', "line 2: malformed CSV: unexpected end"),
        (b'number,password\n101,"pass"word\n', "line 2: malformed CSV"),
    ],
)
def test_csv_file_problems_are_fatal_in_both_modes(
    directory: Directory, data: bytes, issue: str | None
) -> None:
    for partial in (False, True):
        report = import_extensions(directory, data, Format.CSV, partial=partial)
        if issue is None:
            continue
        assert report.fatal and report.imported == ()
        assert len(report.issues) == 1 and str(report.issues[0]).startswith(issue)
    if issue is not None:
        assert directory.list() == []


def test_control_characters_are_a_row_issue(directory: Directory) -> None:
    report = import_extensions(directory, b"number,password\n101,pass\0word\n", Format.CSV)
    assert _issues(report) == ["line 2: extension 101: password contains control characters"]


def test_too_many_rows_is_a_clear_error(directory: Directory) -> None:
    rows = [f"{n},password-{n}" for n in range(MAX_ROWS + 1)]
    report = import_extensions(directory, _csv("number,password", *rows), Format.CSV)
    assert report.fatal
    assert _issues(report) == [f"file: more than {MAX_ROWS} rows; split the file"]


def test_json_list_and_object_forms(directory: Directory) -> None:
    data = json.dumps(
        {
            "extensions": [
                {"number": "101", "password": "password-101", "name": "Alice"},
                {"number": 102, "password": "password-102", "email": "bob@example.com"},
            ]
        }
    ).encode()
    report = import_extensions(directory, data, Format.JSON)
    assert report.imported == ("101", "102")
    more = json.dumps([{"number": "103", "password": "password-103"}]).encode()
    assert import_extensions(directory, more, Format.JSON).imported == ("103",)


def test_json_report_names_indexes(directory: Directory) -> None:
    data = json.dumps(
        [
            {"number": "101", "password": "password-101"},
            "not an object",
            {"number": "102", "password": "password-102", "phone": "x"},
            {"number": "101", "password": "password-103"},
            {"number": "104", "password": 12345678},
            {"number": True, "password": "password-105"},
        ]
    ).encode()
    report = import_extensions(directory, data, Format.JSON)
    assert _issues(report) == [
        "index 1: not an object",
        "index 2: extension 102: unknown key 'phone'; keys are number, password, name, email",
        "index 3: extension 101: duplicate number (first at index 0)",
        "index 4: extension 104: password must be a string",
        "index 5: number must be a string",
    ]
    assert directory.list() == []


@pytest.mark.parametrize(
    ("data", "issue"),
    [
        (b'[\n{"number": "101",\n "password": }]', "line 3: malformed JSON: Expecting value"),
        (b'{"users": []}', "file: unknown key 'users'"),
        (b'"101"', "file: expected a list of extensions"),
        (b"[" * 100_000, "file: malformed JSON"),
    ],
)
def test_json_file_problems(directory: Directory, data: bytes, issue: str) -> None:
    report = import_extensions(directory, data, Format.JSON, partial=True)
    assert report.fatal
    assert str(report.issues[0]).startswith(issue)


def test_import_file_detects_format_and_reports_unreadable(
    directory: Directory, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbfnumber,password\n101,password-101\n")
    (tmp_path / "b").write_text('  [{"number": "102", "password": "password-102"}]')
    assert import_file(directory, tmp_path / "a.csv").imported == ("101",)
    assert import_file(directory, tmp_path / "b").imported == ("102",)
    with pytest.raises(StoreError, match="missing.csv: cannot read"):
        import_file(directory, tmp_path / "missing.csv")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_rows_or_issues_never_an_exception(data: bytes) -> None:
    for fmt in Format:
        good, issues, fatal = check_rows(data, fmt)
        assert not (fatal and good)
        assert all(str(issue) for issue in issues)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["101", "x", "password-1", "", '"', ",", "\n", "a@b.c"]), max_size=5
        ),
        max_size=8,
    )
)
def test_csv_like_input_never_raises(rows: list[list[str]]) -> None:
    data = _csv("number,password,name,email", *(",".join(row) for row in rows))
    check_rows(data, Format.CSV)
