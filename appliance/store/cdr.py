"""Call detail records: one row per call, written behind the calls by one thread.

`CdrRecord` is the validated record the call controller hands over when a call ends;
`CdrWriter` commits records in batches on its own thread so call handling never waits
for an fsync; `query_cdrs`, `export_csv` and `stats_per_hour` read them back for the
call log, the CSV download and the dashboard. Hangup causes are ITU-T Q.850 values.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TextIO

import peewee

from appliance.pbx import call_events
from appliance.store.batch_writer import BatchWriter
from appliance.store.errors import StoreError
from appliance.store.models import Cdr

logger = logging.getLogger(__name__)

MAX_BATCH: Final = 1000  # records per transaction; bounds the time the lock is held
MAX_QUERY_LIMIT: Final = 1000  # rows per call-log page
MAX_STATS_HOURS: Final = 24 * 366  # a year of hourly buckets per dashboard request
MAX_TEXT: Final = 256  # characters in a number, display name or codec
MAX_CALL_ID: Final = 1024  # characters; Call-IDs are usually well under 100
_INT64_MAX: Final = 2**63 - 1  # SQLite INTEGER
_Q850_MAX: Final = 127  # Q.850 §2.2.5: the cause value is 7 bits


# One vocabulary for call outcomes: the call-control core defines it, the store keeps
# its values ("answered", "caller", ...) as they are.
Disposition = call_events.Disposition
HangupBy = call_events.Side


def _check_text(name: str, value: object, limit: int, *, empty_ok: bool = True) -> None:
    if not isinstance(value, str):
        raise StoreError(f"CDR {name} must be text, not {type(value).__name__}")
    if not value and not empty_ok:
        raise StoreError(f"CDR {name} is empty")
    if len(value) > limit:
        raise StoreError(f"CDR {name} is longer than {limit} characters")
    if "\x00" in value:
        raise StoreError(f"CDR {name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate would only fail later, in the writer, taking its batch along.
        raise StoreError(f"CDR {name} is not valid Unicode (lone surrogate)") from None


def _check_time(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StoreError(f"CDR {name} must be a number (Unix time)")
    if not math.isfinite(value) or value < 0:
        raise StoreError(f"CDR {name} must be a finite Unix time >= 0, not {value!r}")


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StoreError(f"CDR {name} must be an integer")
    if not 0 <= value <= _INT64_MAX:
        raise StoreError(f"CDR {name} must be between 0 and 2**63 - 1, not {value}")


@dataclass(frozen=True, slots=True)
class LegQuality:
    """RTP counters of one leg, from RTCP reports (RFC 3550 §6.4) or our relay's counts.

    `lost` is clamped at 0 by the producer: RFC 3550 §6.4.1 lets the cumulative count
    go negative when duplicates arrive, and a negative loss means nothing in a report.
    """

    packets_in: int = 0
    packets_out: int = 0
    lost: int = 0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        _check_count("packets_in", self.packets_in)
        _check_count("packets_out", self.packets_out)
        _check_count("lost", self.lost)
        if isinstance(self.jitter_ms, bool) or not isinstance(self.jitter_ms, int | float):
            raise StoreError("CDR jitter_ms must be a number")
        if not math.isfinite(self.jitter_ms) or self.jitter_ms < 0:
            raise StoreError(f"CDR jitter_ms must be finite and >= 0, not {self.jitter_ms!r}")


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """One finished call. Leg `a` is the caller's side, leg `b` the callee's.

    Times are Unix seconds. `answer_at` is set exactly when the call was ANSWERED.
    Construction validates everything, so a record that exists can always be written:
    bad values raise `StoreError` at the call controller, not later in the writer.
    """

    call_id: str
    caller: str  # "" when the caller withheld or had no number
    callee: str
    start_at: float
    end_at: float
    disposition: Disposition
    hangup_cause: int  # Q.850, e.g. 16 normal clearing, 17 user busy, 19 no answer
    hangup_by: HangupBy
    answer_at: float | None = None
    caller_name: str = ""
    codec: str | None = None  # None when no media was negotiated
    a: LegQuality = LegQuality()
    b: LegQuality = LegQuality()

    def __post_init__(self) -> None:
        _check_text("call_id", self.call_id, MAX_CALL_ID, empty_ok=False)
        _check_text("caller", self.caller, MAX_TEXT)
        _check_text("caller_name", self.caller_name, MAX_TEXT)
        _check_text("callee", self.callee, MAX_TEXT)
        if self.codec is not None:
            _check_text("codec", self.codec, MAX_TEXT, empty_ok=False)
        if not isinstance(self.disposition, Disposition):
            raise StoreError(
                f"CDR disposition {self.disposition!r} is not one of "
                + ", ".join(d.value for d in Disposition)
            )
        if not isinstance(self.hangup_by, HangupBy):
            raise StoreError(
                f"CDR hangup_by {self.hangup_by!r} is not one of "
                + ", ".join(h.value for h in HangupBy)
            )
        if isinstance(self.hangup_cause, bool) or not isinstance(self.hangup_cause, int):
            raise StoreError("CDR hangup_cause must be an integer Q.850 cause")
        if not 0 <= self.hangup_cause <= _Q850_MAX:
            raise StoreError(f"CDR hangup_cause {self.hangup_cause} is not a Q.850 cause (0-127)")
        _check_time("start_at", self.start_at)
        _check_time("end_at", self.end_at)
        if self.answer_at is not None:
            _check_time("answer_at", self.answer_at)
        if (self.answer_at is not None) != (self.disposition is Disposition.ANSWERED):
            raise StoreError(
                "CDR answer_at must be set for an ANSWERED call and only for one, "
                f"got disposition {self.disposition.value} with answer_at {self.answer_at!r}"
            )
        answer = self.start_at if self.answer_at is None else self.answer_at
        if not self.start_at <= answer <= self.end_at:
            raise StoreError(
                "CDR times out of order: need start_at <= answer_at <= end_at, got "
                f"{self.start_at!r}, {self.answer_at!r}, {self.end_at!r}"
            )
        if not isinstance(self.a, LegQuality) or not isinstance(self.b, LegQuality):
            raise StoreError("CDR legs a and b must be LegQuality")

    @property
    def duration_s(self) -> float:
        """Billable seconds: from answer to end, 0 for an unanswered call."""
        return 0.0 if self.answer_at is None else self.end_at - self.answer_at


# Column order shared by the INSERT, the SELECTs and the CSV header.
COLUMNS: Final[tuple[str, ...]] = (
    "call_id",
    "caller",
    "caller_name",
    "callee",
    "start_at",
    "answer_at",
    "end_at",
    "duration_s",
    "disposition",
    "hangup_cause",
    "hangup_by",
    "codec",
    "a_packets_in",
    "a_packets_out",
    "a_lost",
    "a_jitter_ms",
    "b_packets_in",
    "b_packets_out",
    "b_lost",
    "b_jitter_ms",
)

# One prepared statement through executemany: peewee's query builder costs ~100 us of
# Python per row, all of it holding the GIL the event loop needs (as in registrations).
# A repeated Call-ID keeps the first record: a UNIQUE failure would drop the whole batch.
_INSERT_SQL: Final = (
    'INSERT INTO "cdr" ('
    + ", ".join(f'"{c}"' for c in COLUMNS)
    + ") VALUES ("
    + ", ".join("?" for _ in COLUMNS)
    + ') ON CONFLICT ("call_id") DO NOTHING'
)


def _row(r: CdrRecord) -> tuple[object, ...]:
    return (
        r.call_id,
        r.caller,
        r.caller_name,
        r.callee,
        r.start_at,
        r.answer_at,
        r.end_at,
        r.duration_s,
        r.disposition.value,
        r.hangup_cause,
        r.hangup_by.value,
        r.codec,
        r.a.packets_in,
        r.a.packets_out,
        r.a.lost,
        r.a.jitter_ms,
        r.b.packets_in,
        r.b.packets_out,
        r.b.lost,
        r.b.jitter_ms,
    )


def _record(row: tuple[Any, ...]) -> CdrRecord:
    """The record of a row in COLUMNS order (duration_s is derived, so skipped)."""
    v = dict(zip(COLUMNS, row, strict=True))
    try:
        return CdrRecord(
            call_id=v["call_id"],  # Any from sqlite3; __post_init__ checks types
            caller=v["caller"],
            caller_name=v["caller_name"],
            callee=v["callee"],
            start_at=v["start_at"],
            answer_at=v["answer_at"],
            end_at=v["end_at"],
            disposition=Disposition(v["disposition"]),
            hangup_cause=v["hangup_cause"],
            hangup_by=HangupBy(v["hangup_by"]),
            codec=v["codec"],
            a=LegQuality(
                v["a_packets_in"],
                v["a_packets_out"],
                v["a_lost"],
                v["a_jitter_ms"],
            ),
            b=LegQuality(
                v["b_packets_in"],
                v["b_packets_out"],
                v["b_lost"],
                v["b_jitter_ms"],
            ),
        )
    except ValueError as exc:  # StoreError, or an enum value we do not know
        raise StoreError(f"CDR row {v['call_id']!r} is invalid: {exc}") from None


@dataclass(slots=True)
class CdrWriterStats:
    """Counters for tests and the status page; written by the writer thread only."""

    batches: int = 0
    records: int = 0  # rows inserted
    duplicates: int = 0  # records skipped because their call_id was already stored
    failed_batches: int = 0
    failed_records: int = 0


class CdrWriter(BatchWriter[CdrRecord]):
    """One thread that inserts queued CDRs, each batch with one executemany in one transaction.

    `submit()` and `submit_many()` only put on an unbounded queue: they never block the
    event loop, and a CDR is never dropped for lack of room. The thread takes what has
    queued since its last commit, up to MAX_BATCH records, and commits it at once: one
    fsync per batch. peewee keeps one connection per thread, so the thread owns its own.
    """

    def __init__(self, db: peewee.SqliteDatabase, *, start: bool = True) -> None:
        self.stats = CdrWriterStats()
        super().__init__(db, name="CDR writer", max_batch=MAX_BATCH, start=start)

    def write(self, items: list[CdrRecord]) -> None:
        rows = [_row(item) for item in items]
        try:
            with self._db.atomic():
                cursor = self._db.connection().executemany(_INSERT_SQL, rows)
                inserted = cursor.rowcount
        except (peewee.DatabaseError, sqlite3.DatabaseError):
            # Losing this batch loses its CDRs; losing the thread would lose every
            # later one. Count it, log it, go on.
            self.stats.failed_batches += 1
            self.stats.failed_records += len(rows)
            logger.exception("dropped %d call detail records", len(rows))
        else:
            self.stats.batches += 1
            self.stats.records += inserted
            if inserted < len(rows):
                self.stats.duplicates += len(rows) - inserted
                logger.warning(
                    "skipped %d call detail records with a Call-ID already stored",
                    len(rows) - inserted,
                )


def _filtered(
    since: float | None,
    until: float | None,
    number: str | None,
    disposition: Disposition | None,
) -> peewee.ModelSelect:
    """Rows with since <= start_at < until, caller or callee == number, the disposition."""
    query = Cdr.select(*(getattr(Cdr, c) for c in COLUMNS))
    if since is not None:
        query = query.where(Cdr.start_at >= since)
    if until is not None:
        query = query.where(Cdr.start_at < until)
    if number is not None:
        query = query.where((Cdr.caller == number) | (Cdr.callee == number))
    if disposition is not None:
        if not isinstance(disposition, Disposition):
            raise StoreError(f"unknown disposition {disposition!r}")
        query = query.where(Cdr.disposition == disposition.value)
    # id breaks ties between calls started in the same instant, so pages never overlap.
    return query.order_by(Cdr.start_at.desc(), Cdr.id.desc())


def query_cdrs(
    db: peewee.SqliteDatabase,
    *,
    since: float | None = None,
    until: float | None = None,
    number: str | None = None,
    disposition: Disposition | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CdrRecord]:
    """One page of the call log, newest call first.

    `since` is inclusive and `until` exclusive, both on start_at; `number` matches the
    caller or the callee exactly.
    """
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise StoreError(f"limit must be between 1 and {MAX_QUERY_LIMIT}, not {limit}")
    if offset < 0:
        raise StoreError(f"offset must be >= 0, not {offset}")
    query = _filtered(since, until, number, disposition).limit(limit).offset(offset)
    return [_record(row) for row in query.tuples().execute(db)]


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV
# injection"); display names and numbers come from the remote party's From header.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+")  # "+4930123" is a number, not a formula


def _csv_safe(value: str) -> str:
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_cell(value: object, neutralize_formulas: bool) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    if isinstance(value, str) and neutralize_formulas:
        return _csv_safe(value)
    return value


def export_csv(
    db: peewee.SqliteDatabase,
    stream: TextIO,
    *,
    since: float | None = None,
    until: float | None = None,
    number: str | None = None,
    disposition: Disposition | None = None,
    neutralize_formulas: bool = True,
) -> int:
    """Write every matching CDR as CSV (header row first, newest call first); return the rows.

    Open `stream` with newline="" (the csv module writes \\r\\n itself). Times are Unix
    seconds, empty cells mean NULL. With `neutralize_formulas` a text cell a spreadsheet
    would run as a formula is prefixed with "'"; pass False for a lossless export.
    The rows come from one SELECT, so one consistent snapshot even while the writer runs.
    """
    writer = csv.writer(stream, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    count = 0
    query = _filtered(since, until, number, disposition).tuples()
    for row in query.execute(db).iterator():
        writer.writerow([_csv_cell(value, neutralize_formulas) for value in row])
        count += 1
    return count


class HourStats(NamedTuple):
    hour_start: float  # Unix time of the UTC hour
    calls: int
    answered: int


def stats_per_hour(db: peewee.SqliteDatabase, since: float, until: float) -> list[HourStats]:
    """Calls and answered calls per UTC hour, every hour from the one holding `since`
    up to `until` (exclusive), empty hours included so a plot needs no gap filling.

    Counts calls by start_at with since <= start_at < until.
    """
    for name, value in (("since", since), ("until", until)):
        if not math.isfinite(value) or value < 0:
            raise StoreError(f"{name} must be a finite Unix time >= 0, not {value!r}")
    if until <= since:
        return []
    first = int(since) // 3600
    last = math.ceil(until / 3600)  # exclusive
    if last - first > MAX_STATS_HOURS:
        raise StoreError(f"stats cover at most {MAX_STATS_HOURS} hours at once")
    # CAST(start_at AS INTEGER) truncates, which is floor for the non-negative times
    # CdrRecord allows; integer division then finds the hour exactly, without rounding.
    rows = db.execute_sql(
        'SELECT CAST("start_at" AS INTEGER) / 3600 AS "hour", COUNT(*), '
        'SUM("disposition" = ?) '
        'FROM "cdr" WHERE "start_at" >= ? AND "start_at" < ? GROUP BY "hour"',
        (Disposition.ANSWERED.value, since, until),
    ).fetchall()
    found = {int(hour): (int(calls), int(answered)) for hour, calls, answered in rows}
    return [HourStats(float(hour * 3600), *found.get(hour, (0, 0))) for hour in range(first, last)]


# -- the call log's search (web page and API) -------------------------------------------

MAX_SEARCH: Final = 64  # characters of a search term


@dataclass(frozen=True, slots=True)
class CdrSearch:
    """What the call log shows; every field optional.

    `party` scopes the log to one extension (a user sees only calls it made or took);
    `search` is a part of the caller's or callee's number, or of the caller's name.
    """

    since: float | None = None  # inclusive, on start_at
    until: float | None = None  # exclusive, on start_at
    search: str | None = None
    disposition: Disposition | None = None
    party: str | None = None  # caller or callee, exactly

    def __post_init__(self) -> None:
        if self.search is not None:
            _check_text("search", self.search, MAX_SEARCH)


def _searched(f: CdrSearch) -> peewee.ModelSelect:
    query = _filtered(f.since, f.until, f.party, f.disposition)
    if f.search:
        # instr, not LIKE: no wildcard in the term to escape ("%" and "_" are literal).
        term = f.search
        query = query.where(
            (peewee.fn.instr(Cdr.caller, term) > 0)
            | (peewee.fn.instr(Cdr.callee, term) > 0)
            | (peewee.fn.instr(peewee.fn.lower(Cdr.caller_name), term.lower()) > 0)
        )
    return query


def search_cdrs(
    db: peewee.SqliteDatabase, f: CdrSearch, *, limit: int = 50, offset: int = 0
) -> list[CdrRecord]:
    """One page of the searched call log, newest call first."""
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise StoreError(f"limit must be between 1 and {MAX_QUERY_LIMIT}, not {limit}")
    if offset < 0:
        raise StoreError(f"offset must be >= 0, not {offset}")
    query = _searched(f).limit(limit).offset(offset)
    return [_record(row) for row in query.tuples().execute(db)]


def count_cdrs(db: peewee.SqliteDatabase, f: CdrSearch) -> int:
    """How many calls the search matches (for "page 2 of 7")."""
    count: int = _searched(f).order_by().count(db)
    return count


def export_search_csv(
    db: peewee.SqliteDatabase,
    stream: TextIO,
    f: CdrSearch,
    *,
    neutralize_formulas: bool = True,
) -> int:
    """`export_csv` of a search: header row first, newest call first; the rows written."""
    writer = csv.writer(stream, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    count = 0
    for row in _searched(f).tuples().execute(db).iterator():
        writer.writerow([_csv_cell(value, neutralize_formulas) for value in row])
        count += 1
    return count
