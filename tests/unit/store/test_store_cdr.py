from __future__ import annotations

import csv
import dataclasses
import io
import sqlite3
from pathlib import Path

import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.store.cdr import (
    COLUMNS,
    CdrRecord,
    CdrWriter,
    Disposition,
    HangupBy,
    HourStats,
    LegQuality,
    export_csv,
    query_cdrs,
    stats_per_hour,
)
from appliance.store.db import open_database, schema_version
from appliance.store.errors import StoreError
from appliance.store.migrations import CURRENT_VERSION, MIGRATIONS, migrate_to_current
from appliance.store.models import Cdr

V1_FIXTURE = Path(__file__).parents[2] / "data" / "schema_v1.sql"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
HOUR0 = 1_699_999_200.0  # the UTC hour holding T0


def _cdr(n: int, **changes: object) -> CdrRecord:
    """Call n: 101 -> 102, starting n minutes after T0, answered after 5 s, 60 s talk."""
    record = CdrRecord(
        call_id=f"call-{n}@pbx.example.com",
        caller="101",
        caller_name="Reception",
        callee="102",
        start_at=T0 + 60 * n,
        answer_at=T0 + 60 * n + 5,
        end_at=T0 + 60 * n + 65.5,
        disposition=Disposition.ANSWERED,
        hangup_cause=16,
        hangup_by=HangupBy.CALLER,
        codec="PCMU",
        a=LegQuality(3275, 3270, 4, 1.25),
        b=LegQuality(3270, 3275, 0, 0.5),
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]  # test helper


def _unanswered(n: int, disposition: Disposition = Disposition.NO_ANSWER) -> CdrRecord:
    return _cdr(
        n,
        answer_at=None,
        disposition=disposition,
        hangup_cause=19,
        hangup_by=HangupBy.SYSTEM,
        codec=None,
        a=LegQuality(),
        b=LegQuality(),
    )


def _write(db: peewee.SqliteDatabase, records: list[CdrRecord]) -> None:
    writer = CdrWriter(db)
    writer.submit_many(records)
    assert writer.close(timeout=10)
    assert writer.stats.failed_batches == 0


# --- migration -------------------------------------------------------------------


def _cdr_schema(
    db: peewee.SqliteDatabase,
) -> tuple[set[str], set[tuple[tuple[str, ...], bool]]]:
    columns = {c.name for c in db.get_columns("cdr")}
    indexes = {(tuple(i.columns), bool(i.unique)) for i in db.get_indexes("cdr")}
    return columns, indexes


def test_fresh_database_has_the_cdr_table_at_v5(db: peewee.SqliteDatabase) -> None:
    assert CURRENT_VERSION == len(MIGRATIONS) >= 5
    assert schema_version(db) == CURRENT_VERSION
    columns, indexes = _cdr_schema(db)
    assert columns == set(Cdr._meta.columns) == {"id", *COLUMNS}
    assert indexes == {
        (("call_id",), True),
        (("start_at",), False),
        (("caller", "start_at"), False),
        (("callee", "start_at"), False),
    }


def test_model_indexes_match_the_migration(tmp_path: Path) -> None:
    from_model = peewee.SqliteDatabase(str(tmp_path / "model.db"))
    with from_model.bind_ctx([Cdr]):
        Cdr.create_table()
    migrated = open_database(tmp_path / "migrated.db")
    try:
        assert _cdr_schema(from_model) == _cdr_schema(migrated)
    finally:
        from_model.close()
        migrated.close()


def test_v1_fixture_migrates_to_v5_and_takes_cdrs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(V1_FIXTURE.read_text())  # as test_store_db loads it
    con.close()
    db = open_database(path)
    try:
        assert schema_version(db) == CURRENT_VERSION
        _write(db, [_cdr(1)])
        assert query_cdrs(db) == [_cdr(1)]
    finally:
        db.close()


def test_v4_database_gains_only_the_cdr_table(tmp_path: Path) -> None:
    db = peewee.SqliteDatabase(str(tmp_path / "v4.db"))
    migrate_to_current(db, MIGRATIONS[:4])
    before = set(db.get_tables())
    assert migrate_to_current(db, MIGRATIONS[:5]) == 5
    assert set(db.get_tables()) == before | {"cdr"}
    db.close()


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"call_id": ""}, "call_id is empty"),
        ({"caller": "1" * 257}, "caller is longer than 256"),
        ({"caller_name": "a\x00b"}, "caller_name contains a NUL"),
        ({"caller_name": "\ud800"}, "lone surrogate"),
        ({"codec": ""}, "codec is empty"),
        ({"disposition": "answered"}, "disposition 'answered' is not one of answered, no-answer"),
        ({"hangup_by": "caller"}, "hangup_by 'caller' is not one of caller, callee, system"),
        ({"hangup_cause": 128}, "not a Q.850 cause"),
        ({"hangup_cause": -1}, "not a Q.850 cause"),
        ({"start_at": float("nan")}, "start_at must be a finite Unix time"),
        ({"end_at": -1.0}, "end_at must be a finite Unix time >= 0"),
        ({"answer_at": T0 - 1}, "times out of order"),
        ({"end_at": T0 + 60}, "times out of order"),
        ({"answer_at": None}, "answer_at must be set for an ANSWERED call"),
        ({"disposition": Disposition.BUSY}, "with answer_at"),
    ],
)
def test_invalid_records_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(StoreError, match=message.replace("(", r"\(")):
        _cdr(1, **changes)


@pytest.mark.parametrize(
    ("leg", "message"),
    [
        ({"packets_in": -1}, "packets_in must be between 0"),
        ({"lost": -3}, "lost must be between 0"),
        ({"packets_out": 2**63}, "packets_out must be between 0"),
        ({"packets_out": 1.5}, "packets_out must be an integer"),
        ({"jitter_ms": -0.1}, "jitter_ms must be finite and >= 0"),
        ({"jitter_ms": float("inf")}, "jitter_ms must be finite"),
    ],
)
def test_invalid_leg_counters_are_refused(leg: dict[str, object], message: str) -> None:
    with pytest.raises(StoreError, match=message):
        LegQuality(**leg)  # type: ignore[arg-type]  # wrong types on purpose


def test_duration_is_billable_time_only() -> None:
    assert _cdr(1).duration_s == 60.5
    assert _unanswered(1).duration_s == 0.0
    assert _cdr(1, end_at=T0 + 65).duration_s == 0.0  # hung up the instant it answered


# --- writer ----------------------------------------------------------------------


def test_queued_records_commit_as_one_batch(db: peewee.SqliteDatabase) -> None:
    writer = CdrWriter(db, start=False)
    records = [_cdr(n) for n in range(40)]
    for record in records[:10]:
        writer.submit(record)
    writer.submit_many(records[10:])
    writer.submit_many([])
    writer.start()
    assert writer.flush(timeout=10)
    assert (writer.stats.batches, writer.stats.records) == (1, 40)
    assert query_cdrs(db, limit=1000) == records[::-1]
    db_rows = db.execute_sql('SELECT "duration_s" FROM "cdr" GROUP BY "duration_s"')
    assert db_rows.fetchall() == [(60.5,)]
    assert writer.close()


def test_close_drains_the_queue_and_a_reopened_database_sees_it(db_path: Path) -> None:
    db = open_database(db_path)
    writer = CdrWriter(db)
    records = [_cdr(1), _unanswered(2), _cdr(3)]
    writer.submit_many(records)
    assert writer.close(timeout=10)
    assert writer.close(timeout=10)  # twice is harmless
    with pytest.raises(StoreError, match="closed"):
        writer.submit(_cdr(4))
    with pytest.raises(StoreError, match="closed"):
        writer.submit_many([_cdr(4)])
    db.close()
    reopened = open_database(db_path)
    try:
        assert query_cdrs(reopened) == records[::-1]
    finally:
        reopened.close()


def test_close_of_a_never_started_writer_still_writes(db: peewee.SqliteDatabase) -> None:
    writer = CdrWriter(db, start=False)
    writer.submit(_cdr(1))
    assert writer.close(timeout=10)
    assert query_cdrs(db) == [_cdr(1)]
    idle = CdrWriter(db, start=False)
    assert idle.flush(timeout=1)  # nothing queued, nothing to wait for
    assert idle.close(timeout=1)


def test_a_repeated_call_id_keeps_the_first_record(db: peewee.SqliteDatabase) -> None:
    writer = CdrWriter(db)
    writer.submit_many([_cdr(1), _cdr(1, caller="999"), _cdr(2)])
    assert writer.flush(timeout=10)
    writer.submit(_cdr(2, callee="888"))
    assert writer.close(timeout=10)
    assert (writer.stats.records, writer.stats.duplicates, writer.stats.failed_batches) == (
        2,
        2,
        0,
    )
    assert query_cdrs(db) == [_cdr(2), _cdr(1)]


def test_a_failing_batch_is_counted_and_the_writer_goes_on(
    db: peewee.SqliteDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    db.execute_sql('ALTER TABLE "cdr" RENAME TO "gone"')
    writer = CdrWriter(db)
    writer.submit_many([_cdr(1), _cdr(2)])
    assert writer.flush(timeout=10)
    assert (writer.stats.failed_batches, writer.stats.failed_records) == (1, 2)
    assert "dropped 2 call detail records" in caplog.text
    db.execute_sql('ALTER TABLE "gone" RENAME TO "cdr"')
    writer.submit(_cdr(3))
    assert writer.close(timeout=10)
    assert query_cdrs(db) == [_cdr(3)]


# --- queries ---------------------------------------------------------------------


@pytest.fixture
def call_log(db: peewee.SqliteDatabase) -> list[CdrRecord]:
    records = [
        _cdr(0),
        _unanswered(1),
        _cdr(2, caller="103", callee="101"),
        _unanswered(3, Disposition.BUSY),
        _cdr(4, caller="104", callee="105"),
        _unanswered(5, Disposition.CANCELLED),
        _cdr(6, call_id="same-start", start_at=T0 + 300),  # starts with call 5
    ]
    _write(db, records)
    return records


def test_query_is_newest_first_with_ties_in_insertion_order(
    db: peewee.SqliteDatabase, call_log: list[CdrRecord]
) -> None:
    assert query_cdrs(db) == call_log[::-1]


def test_query_filters(db: peewee.SqliteDatabase, call_log: list[CdrRecord]) -> None:
    def ids(**filters: object) -> list[str]:
        return [r.call_id.split("@")[0] for r in query_cdrs(db, **filters)]  # type: ignore[arg-type]  # test helper

    assert ids(number="101") == [
        "same-start",
        "call-5",
        "call-3",
        "call-2",
        "call-1",
        "call-0",
    ]
    assert ids(number="105") == ["call-4"]
    assert ids(number="10") == []  # exact match, not a prefix
    assert ids(since=T0 + 120, until=T0 + 300) == ["call-4", "call-3", "call-2"]
    assert ids(since=T0 + 300) == ["same-start", "call-5"]
    assert ids(disposition=Disposition.BUSY) == ["call-3"]
    assert ids(disposition=Disposition.ANSWERED, number="101", since=T0 + 60) == [
        "same-start",
        "call-2",
    ]


def test_query_pages_do_not_overlap(db: peewee.SqliteDatabase, call_log: list[CdrRecord]) -> None:
    pages = [query_cdrs(db, limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [r for page in pages for r in page] == call_log[::-1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"disposition": "BUSY"}, "unknown disposition 'BUSY'"),
    ],
)
def test_query_refuses_bad_arguments(
    db: peewee.SqliteDatabase, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(StoreError, match=message):
        query_cdrs(db, **kwargs)  # type: ignore[arg-type]  # wrong on purpose


# --- CSV -------------------------------------------------------------------------


def _from_csv_row(row: dict[str, str]) -> CdrRecord:
    def leg(side: str) -> LegQuality:
        return LegQuality(
            int(row[f"{side}_packets_in"]),
            int(row[f"{side}_packets_out"]),
            int(row[f"{side}_lost"]),
            float(row[f"{side}_jitter_ms"]),
        )

    return CdrRecord(
        call_id=row["call_id"],
        caller=row["caller"],
        caller_name=row["caller_name"],
        callee=row["callee"],
        start_at=float(row["start_at"]),
        answer_at=float(row["answer_at"]) if row["answer_at"] else None,
        end_at=float(row["end_at"]),
        disposition=Disposition(row["disposition"]),
        hangup_cause=int(row["hangup_cause"]),
        hangup_by=HangupBy(row["hangup_by"]),
        codec=row["codec"] or None,
        a=leg("a"),
        b=leg("b"),
    )


def test_csv_export_round_trips_awkward_text(db: peewee.SqliteDatabase) -> None:
    records = [
        _cdr(1, caller_name='Müller, "Hans"', start_at=T0 + 0.1),
        _cdr(2, caller_name="Zoë\r\nnew line; 東京", caller="+4930123456"),
        _unanswered(3),
        _cdr(4, caller_name="  spaces  ", codec="opus/48000/2", call_id="a,b\"c'd"),
    ]
    _write(db, records)
    out = io.StringIO(newline="")
    assert export_csv(db, out, neutralize_formulas=False) == 4
    text = out.getvalue()
    assert text.startswith(",".join(COLUMNS) + "\r\n")
    assert '"Müller, ""Hans"""' in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [_from_csv_row(row) for row in rows] == records[::-1]
    assert [float(row["duration_s"]) for row in rows] == [r.duration_s for r in records[::-1]]


def test_csv_export_takes_the_query_filters(
    db: peewee.SqliteDatabase, call_log: list[CdrRecord]
) -> None:
    out = io.StringIO(newline="")
    assert export_csv(db, out, number="101", disposition=Disposition.ANSWERED) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [row["call_id"] for row in rows] == [
        "same-start",
        "call-2@pbx.example.com",
        "call-0@pbx.example.com",
    ]


def test_csv_export_of_nothing_is_the_header(db: peewee.SqliteDatabase) -> None:
    out = io.StringIO(newline="")
    assert export_csv(db, out) == 0
    assert out.getvalue() == ",".join(COLUMNS) + "\r\n"


def test_csv_export_neutralizes_formulas_but_not_numbers(db: peewee.SqliteDatabase) -> None:
    _write(
        db,
        [
            _cdr(1, caller_name='=HYPERLINK("http://evil.example","x")', caller="+4930123"),
            _cdr(2, caller_name="@SUM(A1)", caller="-1+2", callee="102"),
        ],
    )
    out = io.StringIO(newline="")
    export_csv(db, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [(r["caller_name"], r["caller"]) for r in rows] == [
        ("'@SUM(A1)", "'-1+2"),
        ('\'=HYPERLINK("http://evil.example","x")', "+4930123"),
    ]


# --- stats -----------------------------------------------------------------------


def test_stats_per_hour_fills_empty_hours(db: peewee.SqliteDatabase) -> None:
    _write(
        db,
        [
            _cdr(0, start_at=HOUR0, answer_at=HOUR0 + 1, end_at=HOUR0 + 2),  # first instant
            _unanswered(1),
            _cdr(2, start_at=HOUR0 + 3599.999, answer_at=HOUR0 + 3600, end_at=HOUR0 + 3700),
            _cdr(3, start_at=HOUR0 + 2 * 3600 + 5, answer_at=HOUR0 + 7300, end_at=HOUR0 + 7400),
            _unanswered(4, Disposition.BUSY),  # T0 + 240, hour 0
            _cdr(5, start_at=HOUR0 + 5 * 3600, answer_at=HOUR0 + 18001, end_at=HOUR0 + 18002),
        ],
    )
    assert stats_per_hour(db, HOUR0, HOUR0 + 4 * 3600) == [
        HourStats(HOUR0, 4, 2),
        HourStats(HOUR0 + 3600, 0, 0),
        HourStats(HOUR0 + 7200, 1, 1),
        HourStats(HOUR0 + 10800, 0, 0),
    ]
    # since is inclusive and may fall inside an hour; until is exclusive
    assert stats_per_hour(db, HOUR0 + 1, HOUR0 + 5 * 3600) == [
        HourStats(HOUR0, 3, 1),
        HourStats(HOUR0 + 3600, 0, 0),
        HourStats(HOUR0 + 7200, 1, 1),
        HourStats(HOUR0 + 10800, 0, 0),
        HourStats(HOUR0 + 14400, 0, 0),
    ]
    assert stats_per_hour(db, HOUR0, HOUR0) == []


def test_stats_per_hour_refuses_huge_or_bad_ranges(db: peewee.SqliteDatabase) -> None:
    with pytest.raises(StoreError, match="at most 8784 hours"):
        stats_per_hour(db, 0.0, T0)
    with pytest.raises(StoreError, match="since must be a finite Unix time"):
        stats_per_hour(db, float("nan"), T0)


# --- property --------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_times = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)
_counts = st.integers(min_value=0, max_value=2**63 - 1)
_legs = st.builds(
    LegQuality,
    _counts,
    _counts,
    _counts,
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
)


@st.composite
def _records(draw: st.DrawFn) -> CdrRecord:
    start, middle, end = sorted(draw(st.lists(_times, min_size=3, max_size=3)))
    disposition = draw(st.sampled_from(Disposition))
    return CdrRecord(
        call_id=draw(_text.filter(lambda s: 0 < len(s) <= 40)),
        caller=draw(_text.filter(lambda s: len(s) <= 256)),
        caller_name=draw(_text.filter(lambda s: len(s) <= 256)),
        callee=draw(_text.filter(lambda s: len(s) <= 256)),
        start_at=start,
        answer_at=middle if disposition is Disposition.ANSWERED else None,
        end_at=end,
        disposition=disposition,
        hangup_cause=draw(st.integers(0, 127)),
        hangup_by=draw(st.sampled_from(HangupBy)),
        codec=draw(st.none() | _text.filter(lambda s: 0 < len(s) <= 256)),
        a=draw(_legs),
        b=draw(_legs),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        _records(),
        max_size=8,
        unique_by=lambda r: r.call_id,
    )
)
def test_any_valid_record_round_trips(db: peewee.SqliteDatabase, records: list[CdrRecord]) -> None:
    db.execute_sql('DELETE FROM "cdr"')
    writer = CdrWriter(db)
    writer.submit_many(records)
    assert writer.close(timeout=10)
    assert writer.stats.records == len(records)
    # newest first; equal start times come back newest-inserted first
    expected = [r for _, r in sorted(enumerate(records), key=lambda p: (p[1].start_at, p[0]))]
    assert query_cdrs(db, limit=1000) == expected[::-1]
