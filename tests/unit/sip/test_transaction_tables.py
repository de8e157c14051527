"""Walk every transition table: each listed move lands where the table says, each
missing move raises TransactionError, and wire input is legal in every state."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from appliance.sip.transaction import (
    Action,
    Event,
    InviteClient,
    InviteClientState,
    InviteServer,
    InviteServerState,
    NonInviteClient,
    NonInviteClientState,
    NonInviteServer,
    NonInviteServerState,
    TransactionError,
    client_key,
    invite_client,
    invite_server,
    non_invite_client,
    non_invite_server,
    server_key,
)
from appliance.sip.transaction.machine import TIMERS

from .test_transaction_support import CONFIG, UDP, make_request, reply

INVITE = make_request("INVITE")
BYE = make_request("BYE", cseq=2)
ACK = make_request("ACK", to_tag="as83kd9bs")


def invite_client_in(state: InviteClientState) -> InviteClient:
    tx, _ = InviteClient.start(client_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    step = {
        InviteClientState.PROCEEDING: 180,
        InviteClientState.COMPLETED: 486,
        InviteClientState.ACCEPTED: 200,
    }.get(state)
    if step is not None:
        tx.receive_response(reply(INVITE, step), 1.0)
    if state is InviteClientState.TERMINATED:
        tx.transport_error(1.0)
    return tx


def non_invite_client_in(state: NonInviteClientState) -> NonInviteClient:
    tx, _ = NonInviteClient.start(client_key(BYE), BYE, UDP, CONFIG, 0.0)
    step = {NonInviteClientState.PROCEEDING: 100, NonInviteClientState.COMPLETED: 200}.get(state)
    if step is not None:
        tx.receive_response(reply(BYE, step), 1.0)
    if state is NonInviteClientState.TERMINATED:
        tx.transport_error(1.0)
    return tx


def invite_server_in(state: InviteServerState) -> InviteServer:
    tx, _ = InviteServer.start(server_key(INVITE), INVITE, UDP, CONFIG, 0.0)
    if state in (InviteServerState.COMPLETED, InviteServerState.CONFIRMED):
        tx.send_response(reply(INVITE, 486), 1.0)
    if state is InviteServerState.CONFIRMED:
        tx.receive_ack(ACK, UDP, 1.5)
    if state is InviteServerState.ACCEPTED:
        tx.send_response(reply(INVITE, 200), 1.0)
    if state is InviteServerState.TERMINATED:
        tx.transport_error(1.0)
    return tx


def non_invite_server_in(state: NonInviteServerState) -> NonInviteServer:
    tx, _ = NonInviteServer.start(server_key(BYE), BYE, UDP, CONFIG, 0.0)
    step = {NonInviteServerState.PROCEEDING: 100, NonInviteServerState.COMPLETED: 200}.get(state)
    if step is not None:
        tx.send_response(reply(BYE, step), 1.0)
    if state is NonInviteServerState.TERMINATED:
        tx.abandon(1.0)
    return tx


def client_inputs(request: Any) -> dict[Event, Callable[[Any], list[Action]]]:
    return {
        Event.PROVISIONAL: lambda tx: tx.receive_response(reply(request, 180), 2.0),
        Event.SUCCESS: lambda tx: tx.receive_response(reply(request, 200), 2.0),
        Event.FAILURE: lambda tx: tx.receive_response(reply(request, 404), 2.0),
        Event.TRANSPORT_ERROR: lambda tx: tx.transport_error(2.0),
    }


def server_inputs(request: Any) -> dict[Event, Callable[[Any], list[Action]]]:
    return {
        Event.REQUEST: lambda tx: tx.receive_request(request, 2.0),
        Event.PROVISIONAL: lambda tx: tx.send_response(reply(request, 180), 2.0),
        Event.SUCCESS: lambda tx: tx.send_response(reply(request, 200), 2.0),
        Event.FAILURE: lambda tx: tx.send_response(reply(request, 404), 2.0),
        Event.TRANSPORT_ERROR: lambda tx: tx.transport_error(2.0),
    }


# (state enum, table, factory, inputs, wire events)
MACHINES: dict[str, tuple[type[enum.Enum], Mapping[Any, Any], Callable[[Any], Any], Any, Any]] = {
    "InviteClient": (
        InviteClientState,
        invite_client.TRANSITIONS,
        invite_client_in,
        client_inputs(INVITE) | {Event.CANCEL_SENT: lambda tx: tx.cancel_sent(2.0)},
        {Event.PROVISIONAL, Event.SUCCESS, Event.FAILURE, Event.TRANSPORT_ERROR},
    ),
    "NonInviteClient": (
        NonInviteClientState,
        non_invite_client.TRANSITIONS,
        non_invite_client_in,
        client_inputs(BYE),
        {Event.PROVISIONAL, Event.SUCCESS, Event.FAILURE, Event.TRANSPORT_ERROR},
    ),
    "InviteServer": (
        InviteServerState,
        invite_server.TRANSITIONS,
        invite_server_in,
        server_inputs(INVITE) | {Event.ACK: lambda tx: tx.receive_ack(ACK, UDP, 2.0)},
        {Event.REQUEST, Event.ACK, Event.TRANSPORT_ERROR},
    ),
    "NonInviteServer": (
        NonInviteServerState,
        non_invite_server.TRANSITIONS,
        non_invite_server_in,
        server_inputs(BYE) | {Event.ABANDON: lambda tx: tx.abandon(2.0)},
        {Event.REQUEST, Event.TRANSPORT_ERROR},
    ),
}

EDGES = [
    pytest.param(name, state, event, id=f"{name}-{state.name}-{event.name}")
    for name, (states, _, _, inputs, _) in MACHINES.items()
    for state, event in itertools.product(states, inputs)
]


@pytest.mark.parametrize(("name", "state", "event"), EDGES)
def test_every_input_in_every_state(name: str, state: enum.Enum, event: Event) -> None:
    _, table, factory, inputs, _ = MACHINES[name]
    tx = factory(state)
    assert tx.state is state
    if (state, event) in table:
        inputs[event](tx)
        assert tx.state is table[state, event]
    else:
        with pytest.raises(TransactionError, match=f"in {state.name}"):
            inputs[event](tx)
        assert tx.state is state  # an illegal move changes nothing


TIMER_EDGES = [
    pytest.param(name, state, event, id=f"{name}-{state.name}-{event.name}")
    for name, (_, table, _, _, _) in MACHINES.items()
    for (state, event) in table
    if event in TIMERS
]


@pytest.mark.parametrize(("name", "state", "event"), TIMER_EDGES)
def test_every_timer_edge(name: str, state: enum.Enum, event: Event) -> None:
    _, table, factory, _, _ = MACHINES[name]
    tx = factory(state)
    tx.timers.clear()
    tx.timers.arm(event, 50.0)
    tx.handle_timer(50.0)
    assert tx.state is table[state, event]


@pytest.mark.parametrize("name", MACHINES)
def test_tables_only_hold_inputs_the_machine_has(name: str) -> None:
    states, table, _, inputs, _ = MACHINES[name]
    for state, event in table:
        assert isinstance(state, states)
        assert event in inputs or event in TIMERS, (state, event)


@pytest.mark.parametrize("name", MACHINES)
def test_wire_input_is_legal_in_every_state(name: str) -> None:
    states, table, _, _, wire = MACHINES[name]
    for state, event in itertools.product(states, wire):
        assert (state, event) in table, (state, event)


@pytest.mark.parametrize("name", MACHINES)
def test_armed_timers_are_legal_in_their_state(name: str) -> None:
    states, table, factory, _, _ = MACHINES[name]
    for state in states:
        for timer in factory(state).timers.armed():
            assert (state, timer) in table, (state, timer)


@pytest.mark.parametrize("name", MACHINES)
def test_terminated_has_no_way_out_and_is_silent(name: str) -> None:
    states, table, factory, inputs, wire = MACHINES[name]
    terminated = states["TERMINATED"]
    assert all(table[s, e] is terminated for s, e in table if s is terminated)
    tx = factory(terminated)
    for event in wire:
        assert inputs[event](tx) == []
    assert tx.next_deadline() is None
