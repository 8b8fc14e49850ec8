"""The `last` a proxy forwards (docs/protocol.md): the highest it relayed per name, bounded by LRU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen_common.limits import MAX_VALUE
from seqgen_proxy.caps import CapTable


def test_unknown_name_is_forwarded_with_last_zero() -> None:
    caps = CapTable(10)
    assert caps.forward("invoice", MAX_VALUE) == 0
    assert caps.forward("invoice", 0) == 0
    assert caps.forward("invoice", MAX_VALUE) == 0


def test_forwarded_last_is_the_highest_number_relayed() -> None:
    caps = CapTable(10)
    caps.relayed("invoice", 41)
    caps.relayed("invoice", 17)  # a lower reply (another server) never lowers it
    assert caps.forward("invoice", MAX_VALUE) == 41  # capped
    assert caps.forward("invoice", 10**15) == 41
    assert caps.forward("invoice", 0) == 41  # carried for a client that sends nothing
    assert caps.forward("invoice", 40) == 41
    assert caps.forward("invoice", 41) == 41
    assert caps.forward("ticket", 5) == 0  # names are independent


def test_least_recently_used_name_is_forgotten() -> None:
    caps = CapTable(2)
    caps.relayed("a", 1)
    caps.relayed("b", 2)
    caps.relayed("a", 3)  # "a" is now the most recent
    caps.relayed("c", 4)  # evicts "b"
    assert len(caps) == 2
    assert caps.forward("a", 0) == 3
    assert caps.forward("b", MAX_VALUE) == 0
    assert caps.forward("c", 0) == 4


def test_max_names_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CapTable(0)


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, MAX_VALUE)), max_size=60),
       st.integers(1, 8), st.integers(0, MAX_VALUE))
def test_forwarded_last_is_the_highest_relayed_while_remembered_and_never_more(
    relays: list[tuple[str, int]], max_names: int, last: int
) -> None:
    caps = CapTable(max_names)
    for name, value in relays:
        caps.relayed(name, value)
    assert len(caps) <= max_names
    for name in "abcdef":
        forwarded = caps.forward(name, last)
        seen = [v for n, v in relays if n == name]
        highest = max(seen, default=0)
        # the cap: always a number really relayed (0 when unknown or forgotten), never more
        assert forwarded == 0 or forwarded in seen
        assert forwarded <= highest
        if max_names >= 6:  # nothing forgotten: carried whatever the client sent
            assert forwarded == highest
