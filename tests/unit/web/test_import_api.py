"""Bulk import from the web: the upload form and its per-row report, and the API."""

from __future__ import annotations

import json
import re

from appliance.web.services import WebServices

from .conftest import Client

BOUNDARY = "yakyak-test-boundary"
# The record on line 4 (extension 203) is bad: its password is too short.
CSV_ONE_BAD = (
    "number,password,name,email\n"
    "201,correct-horse-201,Reception,desk@example.com\n"
    "202,battery-staple-202,Stock room,\n"
    "203,short,Workshop,\n"
    "204,correct-horse-204,,\n"
)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, (filename, data) in files.items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def upload(client: Client, filename: str, data: bytes, mode: str = "all") -> tuple[int, str]:
    body = multipart({"csrf_token": client.csrf(), "mode": mode}, {"file": (filename, data)})
    response = client.post(
        "/extensions/import",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    return response.status, response.text


def issue_rows(text: str) -> list[tuple[str, str, str]]:
    table = text.split('id="import-issues"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table)


def numbers(services: WebServices) -> list[str]:
    return [e.number for e in services.directory.list()]


def test_the_form_says_what_a_file_needs(admin: Client) -> None:
    text = admin.get("/extensions/import").text
    assert "<h1>Import extensions</h1>" in text
    assert 'enctype="multipart/form-data"' in text and 'id="file" name="file" type="file"' in text
    assert 'id="mode"' in text and "password</code> are\nrequired" in text


def test_one_bad_row_is_reported_with_its_line_and_nothing_is_written(
    admin: Client, services: WebServices
) -> None:
    status, text = upload(admin, "phones.csv", CSV_ONE_BAD.encode())
    assert status == 400
    assert "<h1>Import report</h1>" in text and "Nothing imported: 1 bad row(s)" in text
    [(where, number, reason)] = issue_rows(text)
    assert (where, number) == ("line 4", "203")
    assert reason.startswith("password too short")
    assert numbers(services) == ["101", "102"]
    assert [e.action for e in services.audit.entries()] == ["login"]


def test_the_good_rows_can_be_imported_and_the_bad_one_reported(
    admin: Client, services: WebServices
) -> None:
    status, text = upload(admin, "phones.csv", CSV_ONE_BAD.encode(), mode="partial")
    assert status == 200
    assert "Imported 3 extension(s) from phones.csv, 1 bad row(s) left out." in text
    assert [row[0] for row in issue_rows(text)] == ["line 4"]
    assert numbers(services) == ["101", "102", "201", "202", "204"]
    entry = services.audit.entries()[0]
    assert (entry.action, entry.target, entry.detail) == (
        "extension.import",
        "3 extension(s)",
        "201 202 204",
    )
    assert "correct-horse" not in entry.detail


def test_json_rows_are_reported_by_index_and_clashes_with_existing_numbers(
    admin: Client, services: WebServices
) -> None:
    rows = [{"number": 301, "password": "long-enough-1"}, {"number": "101", "password": "x" * 9}]
    status, text = upload(admin, "phones.json", json.dumps(rows).encode())
    assert status == 400
    assert issue_rows(text) == [("item 1 (counting from 0)", "101", "already exists")]
    status, text = upload(admin, "phones.json", json.dumps(rows[:1]).encode())
    assert (status, numbers(services)[-1]) == (200, "301")


def test_an_unusable_file_or_no_file_says_so(admin: Client, services: WebServices) -> None:
    status, text = upload(admin, "phones.csv", b"number,colour\n1,red\n")
    assert status == 400 and "cannot be read as a whole" in text
    assert issue_rows(text) == [
        (
            "line 1",
            "",
            "unknown column &#x27;colour&#x27;; columns are number, password, name, email",
        )
    ]
    status, text = upload(admin, "", b"")
    assert status == 400 and 'id="file-error">Choose a CSV or JSON file.' in text
    assert 'aria-invalid="true"' in text
    assert numbers(services) == ["101", "102"]


def test_the_page_is_refused_to_those_who_cannot_add_extensions(oper: Client) -> None:
    assert oper.get("/extensions/import").status == 403
    assert upload(oper, "phones.csv", CSV_ONE_BAD.encode())[0] == 403


# -- the API -----------------------------------------------------------------------


def post_file(
    client: Client, data: bytes, content_type: str, query: str = ""
) -> tuple[int, object]:
    response = client.post(
        f"/api/extensions/import{query}",
        body=data,
        headers={"Content-Type": content_type, "X-CSRF-Token": client.csrf()},
    )
    return response.status, response.json()


def test_api_refuses_a_file_with_a_bad_row_naming_the_line(
    admin: Client, services: WebServices
) -> None:
    status, body = post_file(admin, CSV_ONE_BAD.encode(), "text/csv")
    assert status == 400
    assert body == {
        "error": "nothing imported: 1 bad row(s)",
        "fields": {
            "line 4": "extension 203: password too short: at least 8 characters",
        },
    }
    assert numbers(services) == ["101", "102"]


def test_api_partial_import_writes_the_good_rows(admin: Client, services: WebServices) -> None:
    status, body = post_file(
        admin, CSV_ONE_BAD.encode(), "text/csv; charset=utf-8", "?partial=true"
    )
    assert status == 200
    assert body == {
        "imported": ["201", "202", "204"],
        "issues": [
            {
                "reason": "password too short: at least 8 characters",
                "line": 4,
                "index": None,
                "number": "203",
            }
        ],
        "partial": True,
    }
    assert numbers(services)[-3:] == ["201", "202", "204"]


def test_api_takes_json_and_checks_its_query_and_type(admin: Client, services: WebServices) -> None:
    rows = json.dumps({"extensions": [{"number": "401", "password": "long-enough-401"}]}).encode()
    assert post_file(admin, rows, "application/json") == (
        200,
        {"imported": ["401"], "issues": [], "partial": False},
    )
    assert post_file(admin, rows, "application/json", "?partial=yes")[0] == 400
    assert post_file(admin, rows, "application/xml")[0] == 415
    status, body = post_file(admin, b"{", "application/json")
    assert status == 400 and body["error"] == "nothing imported: the file is unusable"  # type: ignore[index]
