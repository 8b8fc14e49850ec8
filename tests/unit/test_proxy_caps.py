"""The cap on `last` (docs/protocol.md): highest relayed number per name, bounded by LRU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen_common.limits import MAX_VALUE
from seqgen_proxy.caps import CapTable


def test_unknown_name_caps_last_to_zero() -> None:
    caps = CapTable(10)
    assert caps.cap("invoice", MAX_VALUE) == 0
    assert caps.cap("invoice", 0) == 0
    assert caps.cap("invoice", MAX_VALUE) == 0


def test_cap_is_the_highest_number_relayed() -> None:
    caps = CapTable(10)
    caps.relayed("invoice", 41)
    caps.relayed("invoice", 17)  # a lower reply (another server) never lowers the cap
    assert caps.cap("invoice", MAX_VALUE) == 41
    assert caps.cap("invoice", 10**15) == 41
    assert caps.cap("invoice", 40) == 40  # a last below the cap passes unchanged
    assert caps.cap("invoice", 41) == 41
    assert caps.cap("ticket", 5) == 0  # names are independent


def test_least_recently_used_name_is_forgotten() -> None:
    caps = CapTable(2)
    caps.relayed("a", 1)
    caps.relayed("b", 2)
    caps.relayed("a", 3)  # "a" is now the most recent
    caps.relayed("c", 4)  # evicts "b"
    assert len(caps) == 2
    assert caps.cap("a", MAX_VALUE) == 3
    assert caps.cap("b", MAX_VALUE) == 0
    assert caps.cap("c", MAX_VALUE) == 4


def test_max_names_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CapTable(0)


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, MAX_VALUE)), max_size=60),
       st.integers(1, 4), st.integers(0, MAX_VALUE))
def test_forwarded_last_never_exceeds_a_relayed_number(
    relays: list[tuple[str, int]], max_names: int, last: int
) -> None:
    caps = CapTable(max_names)
    for name, value in relays:
        caps.relayed(name, value)
    assert len(caps) <= max_names
    for name in "abcdef":
        capped = caps.cap(name, last)
        assert capped <= last
        seen = [v for n, v in relays if n == name]
        assert capped <= max(seen, default=0)
        if capped < last:  # capped only at a number really relayed (or 0 when unknown)
            assert capped == 0 or capped in seen
