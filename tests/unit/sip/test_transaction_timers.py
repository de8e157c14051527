"""Every transaction timer, A to M, fires at its RFC 3261 §17 / RFC 6026 instant."""

from __future__ import annotations

from typing import Protocol

import pytest

from appliance.sip.transaction import (
    Action,
    Event,
    InviteClient,
    InviteClientState,
    InviteServer,
    InviteServerState,
    NonInviteClient,
    NonInviteServer,
    NonInviteServerState,
    TimerConfig,
    client_key,
    server_key,
)
from appliance.sip.transport import Peer

from .test_transaction_support import CONFIG, TCP, UDP, ManualClock, kinds, make_request, reply

INVITE = make_request("INVITE")
OPTIONS = make_request("OPTIONS", cseq=2)


class Timed(Protocol):
    def next_deadline(self) -> float | None: ...
    def handle_timer(self, now: float) -> list[Action]: ...


def run(tx: Timed, clock: ManualClock, until: float = 1000.0) -> list[tuple[float, list[str]]]:
    """Advance from deadline to deadline; what fired when."""
    fired: list[tuple[float, list[str]]] = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        assert deadline >= clock.now
        clock.now = deadline
        fired.append((clock.now, kinds(tx.handle_timer(clock.now))))
    return fired


def times_of(fired: list[tuple[float, list[str]]], kind: str) -> list[float]:
    return [t for t, ks in fired if kind in ks]


def test_timer_config_derives_every_timer_from_t1_t2_t4() -> None:
    c = TimerConfig()
    assert (c.t1, c.t2, c.t4) == (0.5, 4.0, 5.0)
    assert c.timer_a() == c.timer_e() == c.timer_g() == 0.5
    assert c.timer_b() == c.timer_f() == c.timer_h() == c.timer_l() == c.timer_m() == 32.0
    assert c.timer_d(reliable=False) == 32.0 and c.timer_d(reliable=True) == 0.0
    assert c.timer_i(reliable=False) == 5.0 and c.timer_i(reliable=True) == 0.0
    assert c.timer_j(reliable=False) == 32.0 and c.timer_j(reliable=True) == 0.0
    assert c.timer_k(reliable=False) == 5.0 and c.timer_k(reliable=True) == 0.0
    fast = TimerConfig(t1=0.1, t2=0.4, t4=0.5)
    assert fast.timer_b() == pytest.approx(6.4) and fast.timer_d(False) == 32.0
    with pytest.raises(ValueError, match="T1 <= T2"):
        TimerConfig(t1=5.0, t2=4.0)


def test_invite_client_retransmits_on_timer_a_until_timer_b() -> None:
    clock = ManualClock()
    tx, actions = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, clock.now)
    assert kinds(actions) == ["Send INVITE"]
    fired = run(tx, clock)
    sent = [0.0, *times_of(fired, "Send INVITE")]
    assert sent == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # RFC 3261 §17.1.1.2
    assert fired[-1] == (32.0, ["TimedOut", "Terminated"])  # Timer B
    assert tx.state is InviteClientState.TERMINATED


def test_invite_client_on_tcp_sends_once_and_times_out_on_timer_b() -> None:
    clock = ManualClock(10.0)
    tx, actions = InviteClient.start(client_key(INVITE), INVITE, TCP, CONFIG, clock.now)
    assert kinds(actions) == ["Send INVITE"]
    assert run(tx, clock) == [(42.0, ["TimedOut", "Terminated"])]


def test_a_late_timer_call_skips_missed_retransmissions_instead_of_bursting() -> None:
    clock = ManualClock()
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    assert kinds(tx.handle_timer(4.0)) == ["Send INVITE"]  # A was due at 0.5
    assert tx.next_deadline() == 7.5  # the RFC schedule continues: 0.5, 1.5, 3.5, 7.5
    clock.now = 4.0
    assert times_of(run(tx, clock), "Send INVITE") == [7.5, 15.5, 31.5]


def test_provisional_stops_timers_a_and_b() -> None:
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    assert kinds(tx.receive_response(reply(INVITE, 180), 0.7)) == ["ResponseReceived"]
    assert tx.state is InviteClientState.PROCEEDING
    assert tx.next_deadline() is None  # Proceeding waits for the final or a CANCEL


def test_timer_d_absorbs_final_retransmissions_for_32s_on_udp() -> None:
    clock = ManualClock()
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    clock.now = 2.0
    busy = reply(INVITE, 486)
    assert kinds(tx.receive_response(busy, clock.now)) == ["ResponseReceived", "Send ACK"]
    assert kinds(tx.receive_response(busy, 3.0)) == ["Send ACK"]  # not passed up again
    assert run(tx, clock) == [(34.0, ["Terminated"])]  # Timer D


def test_timer_d_is_zero_on_tcp() -> None:
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, TCP, CONFIG, 0.0)
    tx.receive_response(reply(INVITE, 486), 2.0)
    assert tx.next_deadline() == 2.0
    assert kinds(tx.handle_timer(2.0)) == ["Terminated"]


def test_timer_m_keeps_accepted_passing_2xx_up() -> None:
    clock = ManualClock()
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, TCP, CONFIG, 0.0)
    ok = reply(INVITE, 200)
    assert kinds(tx.receive_response(ok, 1.0)) == ["ResponseReceived"]
    assert tx.state is InviteClientState.ACCEPTED
    assert kinds(tx.receive_response(ok, 2.0)) == ["ResponseReceived"]  # RFC 6026 §8.4
    forked = reply(INVITE, 200, to_tag="other-fork")
    assert kinds(tx.receive_response(forked, 3.0)) == ["ResponseReceived"]
    clock.now = 1.0
    assert run(tx, clock) == [(33.0, ["Terminated"])]  # Timer M = 64*T1, any transport


def test_cancel_timer_gives_up_on_an_invite_64_t1_after_the_cancel() -> None:
    clock = ManualClock()
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    tx.receive_response(reply(INVITE, 180), 1.0)
    clock.now = 5.0
    assert tx.cancel_sent(clock.now) == []
    assert run(tx, clock) == [(37.0, ["TimedOut", "Terminated"])]  # RFC 3261 §9.1


def test_non_invite_client_retransmits_capped_at_t2_until_timer_f() -> None:
    clock = ManualClock()
    tx, actions = NonInviteClient.start(client_key(OPTIONS), OPTIONS, UDP, CONFIG, 0.0)
    fired = run(tx, clock)
    sent = [0.0, *times_of(fired, "Send OPTIONS")]
    # Intervals 0.5, 1, 2, then T2 = 4 (RFC 3261 §17.1.2.2).
    assert sent == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, ["TimedOut", "Terminated"])  # Timer F


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    clock = ManualClock()
    tx, _ = NonInviteClient.start(client_key(OPTIONS), OPTIONS, UDP, CONFIG, 0.0)
    assert times_of(run(tx, clock, until=0.5), "Send OPTIONS") == [0.5]
    tx.receive_response(reply(OPTIONS, 100), 0.7)
    fired = run(tx, clock)
    assert times_of(fired, "Send OPTIONS") == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert fired[-1] == (32.0, ["TimedOut", "Terminated"])


def test_non_invite_client_on_tcp_never_retransmits() -> None:
    clock = ManualClock()
    tx, _ = NonInviteClient.start(client_key(OPTIONS), OPTIONS, TCP, CONFIG, 0.0)
    assert run(tx, clock) == [(32.0, ["TimedOut", "Terminated"])]


@pytest.mark.parametrize(("peer", "k"), [(UDP, 5.0), (TCP, 0.0)])
def test_timer_k_absorbs_response_retransmissions(peer: Peer, k: float) -> None:
    clock = ManualClock()
    tx, _ = NonInviteClient.start(client_key(OPTIONS), OPTIONS, peer, CONFIG, 0.0)
    clock.now = 1.2
    assert kinds(tx.receive_response(reply(OPTIONS, 200), clock.now)) == ["ResponseReceived"]
    assert tx.receive_response(reply(OPTIONS, 200), clock.now) == []
    assert run(tx, clock) == [(1.2 + k, ["Terminated"])]


def test_invite_server_sends_100_trying_after_200_ms_of_tu_silence() -> None:
    clock = ManualClock()
    key = server_key(INVITE)
    tx, actions = InviteServer.start(key, INVITE, UDP, CONFIG, 0.0)
    assert kinds(actions) == ["RequestReceived"]
    assert tx.next_deadline() == 0.2
    assert run(tx, clock) == [(0.2, ["Send 100"])]
    trying = tx.last_sent
    assert trying is not None and trying.message.get("To") == "<sip:201@yakyak.local>"
    assert kinds(tx.receive_request(INVITE, 0.5)) == ["Send 100"]  # the retransmit gets it


def test_invite_server_sends_no_100_when_the_tu_answers_first() -> None:
    tx, _ = InviteServer.start(server_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    assert kinds(tx.send_response(reply(INVITE, 180), 0.1)) == ["Send 180"]
    assert tx.next_deadline() is None


def test_invite_server_retransmits_on_timer_g_until_timer_h() -> None:
    clock = ManualClock()
    tx, _ = InviteServer.start(server_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    assert kinds(tx.send_response(reply(INVITE, 486), 0.0)) == ["Send 486"]
    fired = run(tx, clock)
    sent = times_of(fired, "Send 486")
    assert sent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # capped at T2
    assert fired[-1] == (32.0, ["TimedOut", "Terminated"])  # Timer H: no ACK came


def test_invite_server_on_tcp_does_not_retransmit_but_still_waits_timer_h() -> None:
    clock = ManualClock()
    tx, _ = InviteServer.start(server_key(INVITE), INVITE, TCP, CONFIG, 0.0)
    tx.send_response(reply(INVITE, 486), 0.0)
    assert run(tx, clock) == [(32.0, ["TimedOut", "Terminated"])]


@pytest.mark.parametrize(("peer", "i"), [(UDP, 5.0), (TCP, 0.0)])
def test_ack_stops_timer_g_and_timer_i_absorbs_ack_retransmissions(peer: Peer, i: float) -> None:
    clock = ManualClock()
    tx, _ = InviteServer.start(server_key(INVITE), INVITE, peer, CONFIG, 0.0)
    tx.send_response(reply(INVITE, 486), 0.0)
    ack = make_request("ACK", to_tag="as83kd9bs")
    clock.now = 2.0
    assert tx.receive_ack(ack, peer, clock.now) == []  # absorbed, never passed up
    assert tx.state is InviteServerState.CONFIRMED
    assert tx.receive_ack(ack, peer, clock.now) == []
    assert run(tx, clock) == [(2.0 + i, ["Terminated"])]


def test_timer_l_keeps_accepted_absorbing_invite_retransmissions() -> None:
    clock = ManualClock()
    tx, _ = InviteServer.start(server_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    clock.now = 3.0
    assert kinds(tx.send_response(reply(INVITE, 200), clock.now)) == ["Send 200"]
    assert tx.state is InviteServerState.ACCEPTED
    assert tx.receive_request(INVITE, 4.0) == []  # RFC 6026 §8.5
    assert kinds(tx.send_response(reply(INVITE, 200), 4.0)) == ["Send 200"]  # TU's resend
    assert run(tx, clock) == [(35.0, ["Terminated"])]  # Timer L


@pytest.mark.parametrize(("peer", "j"), [(UDP, 32.0), (TCP, 0.0)])
def test_timer_j_absorbs_request_retransmissions(peer: Peer, j: float) -> None:
    clock = ManualClock()
    register = make_request("REGISTER")
    tx, _ = NonInviteServer.start(server_key(register), register, peer, CONFIG, 0.0)
    assert tx.receive_request(register, 0.3) == []  # Trying: absorbed
    clock.now = 1.0
    assert kinds(tx.send_response(reply(register, 200), clock.now)) == ["Send 200"]
    assert tx.state is NonInviteServerState.COMPLETED
    if j:
        assert kinds(tx.receive_request(register, 2.0)) == ["Send 200"]
    assert run(tx, clock) == [(1.0 + j, ["Terminated"])]


def test_timers_never_fire_early() -> None:
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    assert tx.handle_timer(0.4999) == []
    assert tx.timers.armed() == {Event.TIMER_A: 0.5, Event.TIMER_B: 32.0}
