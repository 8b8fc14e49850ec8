"""Following the peers as pure logic (seqgen_admin.follow.FollowPlan): what to read, what
to raise, and the bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen_admin.follow import PENDING_PER_NAME, FollowPlan


def test_a_peer_more_than_drift_ahead_gets_a_floor_just_below_its_value() -> None:
    plan = FollowPlan(max_names=10)
    plan.offer([("far", 5000), ("near", 150)])
    chosen = plan.candidates(drift=100)
    # nothing known of the own server yet (0): both may be behind, the widest gap first
    assert chosen == [("far", 5000), ("near", 150)]
    assert plan.floors(100, [("far", 5000, 41), ("near", 150, 120)]) == [("far", 4999)]
    assert plan.pending == {}


def test_a_name_known_to_be_within_drift_is_not_read_again() -> None:
    plan = FollowPlan(max_names=10)
    plan.learn("n", 1000)
    plan.offer([("n", 1100)])  # exactly drift ahead of a lower bound: close enough
    assert plan.candidates(drift=100) == []
    assert plan.pending == {}  # nothing left to do for it
    plan.offer([("n", 1101)])
    assert plan.candidates(drift=100) == [("n", 1101)]


def test_the_highest_value_offered_wins_and_a_lower_one_never_lowers_it() -> None:
    plan = FollowPlan(max_names=10)
    plan.offer([("n", 900), ("n", 700)])
    plan.offer([("n", 800)])
    assert plan.candidates(drift=10) == [("n", 900)]


def test_at_most_max_names_per_round_the_rest_wait_and_are_counted() -> None:
    plan = FollowPlan(max_names=2)
    plan.offer([(f"n{i}", 1000 * (i + 1)) for i in range(5)])
    assert plan.candidates(drift=10) == [("n4", 5000), ("n3", 4000)]
    assert plan.counts.deferred == 3
    assert plan.candidates(drift=10) == [("n2", 3000), ("n1", 2000)]
    assert plan.candidates(drift=10) == [("n0", 1000)]
    assert plan.candidates(drift=10) == []
    assert plan.counts.deferred == 3 + 1


def test_the_waiting_set_is_bounded() -> None:
    plan = FollowPlan(max_names=1)
    plan.offer([(f"n{i}", 500) for i in range(PENDING_PER_NAME + 5)])
    assert len(plan.pending) == PENDING_PER_NAME
    assert plan.counts.deferred == 5
    plan.offer([("n0", 900)])  # a name already waiting still moves up
    assert plan.pending["n0"] == 900


def test_what_it_knows_of_the_own_server_is_bounded_and_only_goes_up() -> None:
    plan = FollowPlan(max_names=10, known_names=2)
    plan.learn("a", 50)
    plan.learn("a", 10)
    assert plan.own_at_least("a") == 50
    plan.learn("b", 1)
    plan.learn("c", 1)  # evicts "a", the least recently used
    assert plan.own_at_least("a") == 0  # forgotten: read again when it matters (safe)
    assert plan.own_at_least("c") == 1


def test_max_names_is_checked() -> None:
    with pytest.raises(ValueError):
        FollowPlan(max_names=0)
    with pytest.raises(ValueError):
        FollowPlan(max_names=1001)


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 10**6), st.integers(0, 10**6)),
                max_size=30), st.integers(0, 1000))
def test_a_floor_is_always_below_the_peer_value_and_only_where_it_is_beyond_drift(
    read: list[tuple[str, int, int]], drift: int
) -> None:
    plan = FollowPlan(max_names=10)
    floors = plan.floors(drift, read)
    expected = [(name, peer - 1) for name, peer, own in read if peer - own > drift]
    assert floors == expected
    for name, floor in floors:
        # the next own number is above the floor: above every number up to the peer's
        # value minus one, so within the instances of the peer's value and never below own
        assert floor >= min(own for n, _, own in read if n == name)
