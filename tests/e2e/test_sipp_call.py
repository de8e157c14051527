"""A call between two real sipp instances through a running YakYak: sipp (UAS, 102)
registers and answers with PCMU, echoing RTP; sipp (UAC, 101) calls it with PCMA,
authenticates, plays 4 s of G.711 A-law from sipp's pcap and hangs up. YakYak anchors
and transcodes the media; the CDR it writes must show the call and the packets."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sipp_peer import finished, free_udp_port, sipp_callee

if TYPE_CHECKING:
    from conftest import ServerFactory, SippRunner, YakyakServer

pytestmark = pytest.mark.timeout(90)


def _cdrs(data: Path, timeout: float = 5.0) -> list[sqlite3.Row]:
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(data / "yakyak.db") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM cdr ORDER BY start_at").fetchall()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def call(server: YakyakServer, sipp: SippRunner, scenario: str, callee: str) -> None:
    caller = server.extensions[0]
    media = ["-mi", "127.0.0.1", "-mp", str(free_udp_port() & ~1)]
    result = sipp(scenario, server, users=[caller], timeout=60.0, extra=["-s", callee, *media])
    assert result.returncode == 0, result.describe() + "\n--- yakyak\n" + server.log()[-3000:]


def test_sipp_uac_calls_sipp_uas_through_yakyak_with_rtp(
    yakyak_server: YakyakServer, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_server
    alice, bob = server.extensions[0], server.extensions[1]
    with sipp_callee(server, sipp, bob, "call_uas.xml", tmp_path / "uas") as uas:
        call(server, sipp, "call_uac.xml", bob.number)
        finished(uas, tmp_path / "uas")
    (row,) = _cdrs(server.data)
    assert row["caller"] == alice.number and row["callee"] == bob.number
    assert row["disposition"] == "answered" and row["hangup_by"] == "caller"
    assert row["codec"] == "PCMA"  # what the caller speaks; the callee got PCMU
    assert row["duration_s"] >= 3.5
    # sipp plays its pcap from the ACK until its BYE 4 s later (about 130 packets here):
    # everything from the caller must go on to the callee, and the callee's echo of it
    # must come back, transcoded both ways, nothing lost on loopback.
    assert row["a_packets_in"] >= 100, dict(row)
    assert row["b_packets_out"] == row["a_packets_in"], dict(row)
    assert row["b_packets_in"] >= row["a_packets_in"] - 2, dict(row)
    assert row["a_lost"] == 0 and row["b_lost"] == 0, dict(row)


def test_busy_callee_gives_the_caller_486(
    yakyak_server: YakyakServer, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_server
    bob = server.extensions[1]
    with sipp_callee(server, sipp, bob, "call_uas_busy.xml", tmp_path / "uas") as uas:
        call(server, sipp, "call_uac_busy.xml", bob.number)
        finished(uas, tmp_path / "uas")
    (row,) = _cdrs(server.data)
    assert row["disposition"] == "busy" and row["hangup_cause"] == 17
    assert row["answer_at"] is None and row["codec"] is None


def test_caller_cancels_while_it_rings(
    yakyak_server: YakyakServer, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_server
    bob = server.extensions[1]
    with sipp_callee(server, sipp, bob, "call_uas_ring.xml", tmp_path / "uas") as uas:
        call(server, sipp, "call_uac_cancel.xml", bob.number)
        finished(uas, tmp_path / "uas")  # it got our CANCEL
    (row,) = _cdrs(server.data)
    assert row["disposition"] == "cancelled" and row["hangup_by"] == "caller"


def test_unanswered_call_times_out_with_480(
    yakyak_servers: ServerFactory, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_servers(config={"calls.no_answer_timeout": "2"})
    bob = server.extensions[1]
    with sipp_callee(server, sipp, bob, "call_uas_ring.xml", tmp_path / "uas") as uas:
        started = time.monotonic()
        call(server, sipp, "call_uac_unanswered.xml", bob.number)
        assert time.monotonic() - started >= 1.9  # not before the configured timeout
        finished(uas, tmp_path / "uas")  # it got our CANCEL
    (row,) = _cdrs(server.data)
    assert row["disposition"] == "no-answer" and row["hangup_cause"] == 19
    assert row["hangup_by"] == "system"


def test_two_phones_ring_the_first_to_answer_wins_the_other_is_cancelled(
    yakyak_server: YakyakServer, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_server
    bob = server.extensions[1]
    with (
        sipp_callee(server, sipp, bob, "call_uas_ring.xml", tmp_path / "desk") as desk,
        sipp_callee(server, sipp, bob, "call_uas.xml", tmp_path / "soft", contacts=2) as soft,
    ):
        call(server, sipp, "call_uac.xml", bob.number)
        finished(soft, tmp_path / "soft")  # answered, talked, got the BYE
        finished(desk, tmp_path / "desk")  # rang, got our CANCEL, answered it 200 + 487
    (row,) = _cdrs(server.data)
    assert row["disposition"] == "answered" and row["a_packets_in"] >= 100


def test_dtmf_by_sip_info_reaches_the_call_as_a_digit(
    yakyak_server: YakyakServer, sipp: SippRunner, tmp_path: Path
) -> None:
    """The caller sends digit 5 by SIP INFO; the callee negotiated telephone-event, so the
    PBX sends it on as RFC 4733 events (the media engine's own tests check the packets);
    here the digit must show in the caller's DTMF stream, which the PBX logs."""
    server = yakyak_server
    bob = server.extensions[1]
    mark = server.log_mark()
    with sipp_callee(server, sipp, bob, "call_uas.xml", tmp_path / "uas") as uas:
        call(server, sipp, "call_uac_info.xml", bob.number)
        finished(uas, tmp_path / "uas")
    line = server.wait_for_log(r"DTMF 5 from the caller \(info, 160 ms\)", 5.0, since=mark)
    assert line is not None, server.log()[-2000:]
    # Towards the callee went everything relayed from the caller plus the event packets
    # we generated for the digit (RFC 4733: updates every 20 ms, then 3 end packets).
    (row,) = _cdrs(server.data)
    assert row["b_packets_out"] >= row["a_packets_in"] + 4, dict(row)


def test_a_caller_that_allows_100rel_gets_a_reliable_180_and_its_prack_is_answered(
    yakyak_server: YakyakServer, sipp: SippRunner, tmp_path: Path
) -> None:
    server = yakyak_server
    bob = server.extensions[1]
    with sipp_callee(server, sipp, bob, "call_uas_ring.xml", tmp_path / "uas") as uas:
        call(server, sipp, "call_uac_100rel.xml", bob.number)
        finished(uas, tmp_path / "uas")  # the caller then cancelled: our CANCEL reached it
    (row,) = _cdrs(server.data)
    assert row["disposition"] == "cancelled"
