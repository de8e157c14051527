"""SVG charts: bucketing of CDRs per hour, tick choice, and charts that read well,
empty ones included, with no style attribute for the CSP to refuse."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import peewee
import pytest

from appliance.store.cdr import CdrRecord, CdrWriter, Disposition, HangupBy, LegQuality
from appliance.web.plots import (
    HOUR,
    HourCount,
    calls_chart,
    chart_data,
    count_per_hour,
    line_chart,
    nice_ticks,
    quality_charts,
    quality_per_hour,
    window,
)

SVG = "{http://www.w3.org/2000/svg}"
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
SINCE, UNTIL = window(NOW)
NO_MEDIA = LegQuality()


def cdr(
    call_id: str,
    start: float,
    *,
    caller: str = "101",
    callee: str = "102",
    answered: bool = True,
    a: LegQuality = NO_MEDIA,
    b: LegQuality = NO_MEDIA,
) -> CdrRecord:
    return CdrRecord(
        call_id=call_id,
        caller=caller,
        callee=callee,
        start_at=start,
        end_at=start + 60,
        answer_at=start + 5 if answered else None,
        disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
        hangup_cause=16 if answered else 19,
        hangup_by=HangupBy.CALLER,
        a=a,
        b=b,
    )


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    assert "style" not in svg  # neither style= nor <style>: the CSP forbids both
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_window_is_the_last_24_whole_hours_with_the_current_one() -> None:
    assert UNTIL == 1_700_002_800.0  # 23:00 UTC, the end of the current hour
    assert UNTIL - SINCE == 24 * HOUR and SINCE % HOUR == 0


@pytest.mark.parametrize(
    ("top", "integers", "ticks"),
    [
        (0, True, [0, 1]),
        (1, True, [0, 1]),
        (7, True, [0, 2, 4, 6, 8]),
        (23, True, [0, 5, 10, 15, 20, 25]),
        (0.37, False, [0, 0.1, 0.2, 0.3, 0.4]),
        (120, False, [0, 50, 100, 150]),
    ],
)
def test_nice_ticks(top: float, integers: bool, ticks: list[float]) -> None:
    assert nice_ticks(top, integers=integers) == ticks


def test_count_per_hour_fills_every_hour_and_ignores_calls_outside() -> None:
    records = [
        cdr("a", SINCE + 10),
        cdr("b", SINCE + 20, answered=False),
        cdr("c", UNTIL - 1),
        cdr("d", SINCE - 1),  # before the window
        cdr("e", UNTIL),  # after it
    ]
    counts = count_per_hour(records, SINCE, 24)
    assert len(counts) == 24
    assert counts[0] == HourCount(SINCE, 2, 1)
    assert counts[23] == HourCount(SINCE + 23 * HOUR, 1, 1)
    assert sum(c.calls for c in counts) == 3


def test_quality_per_hour_means_worse_leg_jitter_and_pools_loss() -> None:
    records = [
        # 2 lost of 100 expected on a, 0 of 100 on b; worse jitter 12.
        cdr("a", SINCE + 1, a=LegQuality(98, 100, 2, 12.0), b=LegQuality(100, 98, 0, 3.0)),
        # 8 lost of 200; jitter 20 on b.
        cdr("b", SINCE + 2, a=LegQuality(200, 190, 0, 1.0), b=LegQuality(192, 200, 8, 20.0)),
        cdr("c", SINCE + 3, answered=False),  # no media: not counted
    ]
    quality = quality_per_hour(records, SINCE, 24)
    first = quality[0]
    assert first.calls == 2
    assert first.jitter_ms == pytest.approx(16.0)
    assert first.loss_percent == pytest.approx(100 * 10 / 600)  # 100+100+200+200
    assert quality[1].jitter_ms is None and quality[1].loss_percent is None


def test_calls_chart_has_labelled_axes_hours_and_one_bar_per_busy_hour() -> None:
    counts = count_per_hour(
        [cdr(str(i), SINCE + 2 * HOUR + i, answered=i % 2 == 0) for i in range(5)], SINCE, 24
    )
    root = parsed(calls_chart(counts))
    labels = texts(root)
    assert "Hour (UTC)" in labels and "Calls" in labels
    assert labels.count("23:00") == 1 and "02:00" in labels  # every third hour from 23:00
    assert {"0", "1", "2", "3", "4", "5"} <= set(labels)  # integer counts on y
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 2  # one hour: all calls, and the answered part
    assert bars[0].findtext(f"{SVG}title") == "01:00: 5 call(s), 3 answered"
    assert float(bars[0].get("height", "0")) > float(bars[1].get("height", "0")) > 0
    assert "No calls" not in "".join(labels)
    assert root.findtext(f"{SVG}title") == "Calls per hour (all calls)"


def test_empty_charts_explain_themselves() -> None:
    empty = count_per_hour([], SINCE, 24)
    root = parsed(calls_chart(empty, whose="calls of extension 101"))
    assert "No calls in the last 24 hours" in texts(root)
    assert "Hour (UTC)" in texts(root)  # axes still drawn
    jitter, loss = quality_charts(quality_per_hour([], SINCE, 24))
    for svg in (jitter, loss):
        root = parsed(svg)
        assert "No calls with media in the last 24 hours" in texts(root)
        assert root.find(f".//{SVG}polyline") is None


def test_line_chart_breaks_at_hours_without_data() -> None:
    hours = [SINCE + i * HOUR for i in range(6)]
    svg = line_chart(
        "t", "Jitter", hours, [1.0, 2.0, None, 4.0, 5.0, 6.0], y_title="ms", unit="ms", empty="x"
    )
    root = parsed(svg)
    lines = root.findall(f".//{SVG}polyline")
    assert [len(p.get("points", "").split()) for p in lines] == [2, 3]
    assert len(root.findall(f".//{SVG}circle")) == 5
    assert re.search(r"highest 6\.0 ms", svg)


def test_chart_data_reads_the_cdr_table_for_all_or_one_extension(
    db: peewee.SqliteDatabase,
) -> None:
    writer = CdrWriter(db, start=False)
    writer.write(
        [
            cdr("1", SINCE + 5, caller="101", callee="102", a=LegQuality(50, 50, 0, 4.0)),
            cdr("2", SINCE + HOUR + 5, caller="103", callee="104"),
            cdr("3", SINCE + HOUR + 6, caller="104", callee="101", answered=False),
            cdr("4", SINCE - 5),  # a day ago: outside
        ]
    )
    every = chart_data(db, NOW)
    assert [c.calls for c in every.counts[:2]] == [1, 2]
    assert sum(c.calls for c in every.counts) == 3
    assert every.quality[0].jitter_ms == 4.0 and not every.truncated
    own = chart_data(db, NOW, "101")
    assert [(c.calls, c.answered) for c in own.counts[:2]] == [(1, 1), (1, 0)]
    assert sum(c.calls for c in own.counts) == 2
