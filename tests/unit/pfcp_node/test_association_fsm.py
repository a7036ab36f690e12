"""The association state machine as a table: every entry moves the state as
listed; every other (state, trigger) pair raises and leaves the state alone."""

from __future__ import annotations

import itertools

import pytest

from pfcp.association import TRANSITIONS, Association, AssociationState, InvalidTransition, Trigger
from tests.fakes.pfcp_pair import UP_ADDR

S = AssociationState
T = Trigger
INVALID = [pair for pair in itertools.product(S, T) if pair not in TRANSITIONS]


@pytest.mark.parametrize(
    ("state", "trigger", "target"),
    [(s, t, target) for (s, t), target in TRANSITIONS.items()],
    ids=[f"{s.value}+{t.value}" for s, t in TRANSITIONS],
)
def test_every_transition_of_the_table(state: AssociationState, trigger: Trigger, target: AssociationState) -> None:
    assoc = Association(UP_ADDR, state=state)
    assert assoc.fire(trigger) is target
    assert assoc.state is target


@pytest.mark.parametrize(("state", "trigger"), INVALID, ids=[f"{s.value}+{t.value}" for s, t in INVALID])
def test_every_other_pair_raises(state: AssociationState, trigger: Trigger) -> None:
    assoc = Association(UP_ADDR, state=state)
    with pytest.raises(InvalidTransition, match=f"{trigger.value} is not valid in state {state.value}"):
        assoc.fire(trigger)
    assert assoc.state is state


def test_the_table_is_partial_and_covers_every_state_and_trigger() -> None:
    assert len(TRANSITIONS) + len(INVALID) == len(S) * len(T)
    assert INVALID  # some pairs are invalid
    assert {s for s, _ in TRANSITIONS} == set(S)
    assert {t for _, t in TRANSITIONS} == set(T)
    assert set(TRANSITIONS.values()) == set(S)


def test_the_happy_paths() -> None:
    ours = Association(UP_ADDR)
    for trigger, state in [
        (T.SEND_SETUP, S.SETUP_SENT),
        (T.SETUP_ACCEPTED, S.ASSOCIATED),
        (T.UPDATE, S.ASSOCIATED),
        (T.SEND_RELEASE, S.RELEASING),
        (T.RELEASE_ANSWERED, S.IDLE),
    ]:
        assert ours.fire(trigger) is state
    theirs = Association(UP_ADDR)
    assert theirs.fire(T.SETUP_RECEIVED) is S.ASSOCIATED
    assert theirs.fire(T.PEER_LOST) is S.IDLE


@pytest.mark.parametrize(
    ("state", "associated"),
    [(S.IDLE, False), (S.SETUP_SENT, False), (S.ASSOCIATED, True), (S.RELEASING, True)],
)
def test_which_states_serve_sessions(state: AssociationState, associated: bool) -> None:
    assert Association(UP_ADDR, state=state).associated is associated
