"""The call log page, its CSV export and its API: filters, paging, scoping, CSV safety."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import jsonschema
import peewee
import pytest

from appliance.store.cdr import COLUMNS, CdrRecord, CdrWriter, Disposition, HangupBy, LegQuality
from appliance.web.cdr_pages import CDR_PAGE, clock
from appliance.web.services import WebServices

from .conftest import Client, signed_in

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
OUTCOMES = [
    Disposition.ANSWERED,
    Disposition.NO_ANSWER,
    Disposition.BUSY,
    Disposition.FAILED,
    Disposition.CANCELLED,
]


def record(n: int, caller: str, callee: str, disposition: Disposition, **kw: Any) -> CdrRecord:
    answered = disposition is Disposition.ANSWERED
    start = T0 + 3600 * n  # one call an hour
    return CdrRecord(
        call_id=f"call-{n}@pbx.example.com",
        caller=caller,
        callee=callee,
        start_at=start,
        answer_at=start + 5 if answered else None,
        end_at=start + 65 if answered else start + 20,
        disposition=disposition,
        hangup_cause=16 if answered else 17,
        hangup_by=HangupBy.CALLER,
        codec="PCMU" if answered else None,
        a=LegQuality(3000, 3000, 30, 2.5) if answered else LegQuality(),
        **kw,
    )


@pytest.fixture
def calls(db: peewee.SqliteDatabase, services: WebServices) -> list[CdrRecord]:
    """120 calls, one an hour: 101 -> 102 mostly, every 10th 103 -> 102, outcomes cycling."""
    made = []
    for n in range(120):
        caller = "103" if n % 10 == 0 else "101"
        made.append(record(n, caller, "102", OUTCOMES[n % 5]))
    made.append(record(120, "+4930123", "102", Disposition.ANSWERED, caller_name="=HYPERLINK(1)"))
    CdrWriter(db, start=False).write(made)
    return made


def rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def test_admin_sees_every_call_newest_first_50_a_page(admin: Client, calls: Any) -> None:
    first = admin.get("/calls")
    assert first.status == 200
    assert "121 call(s); page 1 of 3" in first.text
    shown = rows(first.text)
    assert len(shown) == 50
    assert "2023-11-19 22:13:20" in shown[0]  # call 120, the newest
    assert "=HYPERLINK(1) &lt;+4930123&gt;" in shown[0]  # escaped on the page
    assert 'href="/calls?page=2"' in first.text and "Newer calls" not in first.text
    last = admin.get("/calls?page=3")
    assert len(rows(last.text)) == 21
    assert "2023-11-14 22:13:20" in rows(last.text)[-1]  # call 0, the oldest
    assert 'href="/calls?page=2"' in last.text and "Older calls" not in last.text
    beyond = admin.get("/calls?page=99")  # clamped to the last page
    assert len(rows(beyond.text)) == 21


def test_a_row_shows_times_cause_codec_and_quality(admin: Client, calls: Any) -> None:
    text = admin.get("/calls?disposition=answered&number=103").text
    row = rows(text)[0]
    assert "Answered" in row and "1:05" in row and "1:00" in row  # duration, talk time
    assert "16 " in row and "PCMU" in row
    assert "caller: jitter 2.5 ms, loss 1.0%" in row
    assert clock(3725) == "1:02:05" and clock(-1) == "0:00"


def test_filters_date_number_and_outcome(admin: Client, calls: Any) -> None:
    busy = rows(admin.get("/calls?disposition=busy").text)
    assert len(busy) == 24 and all("Busy" in r for r in busy)
    by_number = rows(admin.get("/calls?number=103").text)
    assert len(by_number) == 12 and all("103" in r for r in by_number)
    by_name = rows(admin.get("/calls?number=hyperlink").text)  # names, case-insensitive
    assert len(by_name) == 1
    # 2023-11-15 (UTC) holds calls 2..25: 24 calls, the "to" day included.
    day = admin.get("/calls?from=2023-11-15&to=2023-11-15")
    assert "24 call(s)" in day.text
    both = admin.get("/calls?from=2023-11-15&to=2023-11-15&disposition=answered&number=101")
    assert "3 call(s)" in both.text  # calls 5, 15 and 25 (10 and 20 are 103's)
    expected = [
        c
        for c in calls
        if T0 + 3600 * 2 <= c.start_at < T0 + 3600 * 26
        and c.disposition is Disposition.ANSWERED
        and "101" in (c.caller, c.callee)
    ]
    assert len(expected) == 3


def test_bad_filters_are_shown_next_to_their_fields_and_kept(admin: Client, calls: Any) -> None:
    response = admin.get("/calls?from=2023-13-01&to=2023-11-01&number=%3Cb%3E&disposition=nope")
    assert response.status == 400
    text = response.text
    assert 'id="from-error">Enter a date as YYYY-MM-DD.' in text
    assert 'value="2023-13-01"' in text
    assert 'id="disposition-error"' in text
    assert 'value="&lt;b&gt;"' in text  # kept, escaped
    assert rows(text) == []
    reversed_range = admin.get("/calls?from=2023-11-15&to=2023-11-14")
    assert reversed_range.status == 400 and "before the start date" in reversed_range.text


def test_a_user_sees_only_calls_of_their_own_extension(alice: Client, calls: Any) -> None:
    page = alice.get("/calls")
    assert "108 call(s)" in page.text  # 121 less the twelve of 103 and the one of +4930123
    assert all("101" in r for r in rows(page.text))
    assert rows(alice.get("/calls?number=103").text) == []  # 103's calls stay hidden
    api = alice.get("/api/cdr?limit=1000").json()
    assert api["total"] == 108
    assert all("101" in (c["caller"], c["callee"]) for c in api["items"])
    exported = list(csv.reader(io.StringIO(alice.get("/calls.csv").text)))
    assert len(exported) == 1 + 108


def test_an_account_without_extension_sees_no_calls(
    app: Any, services: WebServices, calls: Any
) -> None:
    services.accounts.create_user("noext", "noext-password-1", "user", must_change_password=False)
    client = Client(app)
    client.login("noext", "noext-password-1")
    page = client.get("/calls")
    assert page.status == 200 and "No extension is tied to your account" in page.text
    assert client.get("/api/cdr").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert client.get("/calls.csv").text.strip() == ",".join(COLUMNS)


def test_csv_export_of_the_filtered_set_is_formula_safe(admin: Client, calls: Any) -> None:
    response = admin.get("/calls.csv?disposition=answered")
    assert response.status == 200
    assert response.header("Content-Type") == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="yakyak-calls-\d{8}-\d{6}\.csv"',
        response.header("Content-Disposition") or "",
    )
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == COLUMNS
    assert len(table) == 1 + 25  # 24 answered of 120, and call 120
    newest = dict(zip(COLUMNS, table[1], strict=True))
    assert newest["caller_name"] == "'=HYPERLINK(1)"  # OWASP: never run as a formula
    assert newest["caller"] == "+4930123"  # a plain number stays a number
    assert {row[COLUMNS.index("disposition")] for row in table[1:]} == {"answered"}
    bad = admin.get("/calls.csv?from=yesterday")
    assert bad.status == 400 and "YYYY-MM-DD" in bad.text


def test_api_pages_filters_and_matches_its_schema(admin: Client, calls: Any) -> None:
    answer = admin.get("/api/cdr?disposition=busy&limit=10&offset=20")
    assert answer.status == 200
    body = answer.json()
    jsonschema.validate(body, CDR_PAGE)
    assert body["total"] == 24 and body["limit"] == 10 and body["offset"] == 20
    assert len(body["items"]) == 4
    starts = [c["start_at"] for c in body["items"]]
    assert starts == sorted(starts, reverse=True)
    window = admin.get(f"/api/cdr?since={T0 + 3600 * 10}&until={T0 + 3600 * 12}").json()
    assert [c["call_id"] for c in window["items"]] == [
        "call-11@pbx.example.com",
        "call-10@pbx.example.com",
    ]
    found = admin.get("/api/cdr?search=4930").json()
    assert [c["caller"] for c in found["items"]] == ["+4930123"]
    for query in ("limit=0", "limit=1001", "since=-1", "since=nan", "disposition=lost"):
        refused = admin.get(f"/api/cdr?{query}")
        assert refused.status == 400, query
        assert refused.json()["error"].startswith("query "), query


def test_the_call_log_is_in_the_menu_of_whoever_may_read_it(
    admin: Client, alice: Client, app: Any
) -> None:
    assert '<a href="/calls">Call log</a>' in admin.get("/").text
    assert '<a href="/calls">Call log</a>' in alice.get("/").text
    assert signed_in(app, "oper").get("/calls").status == 200


def test_the_api_is_described_in_the_openapi_document(admin: Client) -> None:
    operation = admin.get("/api/openapi.json").json()["paths"]["/api/cdr"]["get"]
    assert operation["x-permission"] == "cdr:read_own"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == CDR_PAGE
