"""The allocation rule of docs/protocol.md at its edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen_common.errors import ExhaustedError
from seqgen_common.limits import MAX_VALUE
from seqgen_server.allocator import Allocator, next_own


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_first_numbers_are_own_residue(n: int) -> None:
    for k in range(1, n + 1):
        a = Allocator(k, n, drift=100)
        first = a.allocate(0, 0, 1).first
        assert first == k
        assert first % n == k % n


def test_two_servers_odd_and_even() -> None:
    odd, even = Allocator(1, 2, 100), Allocator(2, 2, 100)
    assert [odd.allocate(c, 0, 1).first for c in (0, 1, 3)] == [1, 3, 5]
    assert [even.allocate(c, 0, 1).first for c in (0, 2, 4)] == [2, 4, 6]


def test_exactly_drift_behind_does_not_catch_up() -> None:
    a = Allocator(1, 2, drift=100)
    alloc = a.allocate(cur=11, last=111, count=1)  # last - cur == drift
    assert (alloc.first, alloc.skipped) == (13, 0)


def test_one_past_drift_catches_up() -> None:
    a = Allocator(1, 2, drift=100)
    alloc = a.allocate(cur=11, last=112, count=1)  # last - cur == drift + 1
    assert alloc.first == 113
    assert alloc.skipped == (113 - 13) // 2


def test_last_below_counter_is_ignored() -> None:
    a = Allocator(2, 2, drift=10)
    assert a.allocate(cur=500, last=3, count=1).first == 502


def test_drift_zero_catches_up_on_any_lead() -> None:
    a = Allocator(1, 1, drift=0)
    assert a.allocate(cur=5, last=6, count=1).first == 7
    assert a.allocate(cur=5, last=5, count=1).first == 6


def test_batches_step_by_instances() -> None:
    a = Allocator(3, 5, drift=100)
    alloc = a.allocate(0, 0, 4)
    assert (alloc.first, alloc.last) == (3, 18)


def test_n_equals_instance_residue_zero() -> None:
    a = Allocator(3, 3, drift=100)
    assert [a.allocate(c, 0, 1).first for c in (0, 3)] == [3, 6]


def test_maximum_can_be_issued() -> None:
    a = Allocator(1, 1, drift=0)
    assert a.allocate(MAX_VALUE - 1, 0, 1).last == MAX_VALUE


def test_batch_crossing_maximum_is_exhausted() -> None:
    a = Allocator(1, 1, drift=0)
    with pytest.raises(ExhaustedError):
        a.allocate(MAX_VALUE - 2, 0, 3)
    assert a.allocate(MAX_VALUE - 2, 0, 2).last == MAX_VALUE
    with pytest.raises(ExhaustedError):
        a.allocate(MAX_VALUE, 0, 1)


def test_catch_up_to_the_maximum_is_exhausted() -> None:
    a = Allocator(1, 2, drift=100)
    with pytest.raises(ExhaustedError):
        a.allocate(0, MAX_VALUE, 1)


@pytest.mark.parametrize(("k", "n", "drift"), [(0, 2, 1), (3, 2, 1), (1, 0, 1), (1, 1, -1)])
def test_bad_parameters(k: int, n: int, drift: int) -> None:
    with pytest.raises(ValueError):
        Allocator(k, n, drift)


@given(
    st.integers(1, 5).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(1, 1000),
    st.integers(0, 1000),
)
def test_rule_properties(kn: tuple[int, int], cur: int, last: int, count: int, drift: int) -> None:
    n, k = kn
    alloc = Allocator(k, n, drift).allocate(cur, last, count)
    base = last if last - cur > drift else cur
    assert alloc.first > base
    assert alloc.first - base <= n
    assert alloc.first % n == k % n
    assert alloc.last == alloc.first + (count - 1) * n
    assert next_own(base, k, n) == alloc.first
