"""The recovery rule (seqgen_admin.margin): floors above everything the lost server may have issued."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqgen_admin.margin import (
    CEILING,
    MAX_RATE_PER_S,
    Implausible,
    Witnessed,
    base_margin,
    default_margin,
    plan,
    record_problem,
    value_problem,
)
from seqgen_common.limits import MAX_VALUE


def test_the_default_margin_is_the_larger_of_drift_and_rate() -> None:
    assert base_margin(100, 2) == 2000
    quiet = [Witnessed(value=10, rate=1.0, window_s=1.0)]
    assert default_margin(100, 2, quiet) == 2000
    busy = [Witnessed(value=10, rate=5000.0, window_s=1.0), Witnessed(value=12, rate=10.0, window_s=9.0)]
    assert default_margin(100, 2, busy) == 4 * 5000
    stale = [Witnessed(value=10, rate=1000.0, window_s=3.5)]
    assert default_margin(100, 2, stale) == 14000  # the window of a late witness counts


def test_plan_takes_the_highest_value_plus_the_margin() -> None:
    result = plan(
        own={"a": 5, "kept": 10**6, "mine": 7},
        peers_current={"a": 3000, "b": 10, "never": 99},
        witnessed={"a": [Witnessed(2500, 0.0, 1.0), Witnessed(2600, 0.0, 1.0)],
                   "b": [Witnessed(40, 0.0, 1.0)],
                   "kept": [Witnessed(100, 0.0, 1.0)]},
        drift=100, instances=2)
    # "never": no witness saw it, but a peer holds it: above the peer's value plus the margin.
    assert result.floors == {"a": 3000 + 2000, "b": 40 + 2000, "never": 99 + 2000}
    assert result.largest_jump == 5000 - 5
    assert result.largest_margin == 2000
    assert result.kept == 1
    assert result.peer_only == 1
    assert "mine" not in result.floors  # only this server holds it: its own state


def test_a_given_margin_raises_the_names_only_this_server_holds() -> None:
    result = plan({"mine": 7, "a": 1}, {"a": 50}, {}, drift=100, instances=2, margin=10)
    assert result.floors == {"mine": 17, "a": 60}


def test_a_given_margin_replaces_the_default() -> None:
    result = plan({}, {}, {"a": [Witnessed(10, 1e6, 1.0)]}, drift=100, instances=2, margin=7)
    assert result.floors == {"a": 17}
    assert result.largest_margin == 7


def test_no_floor_in_the_top_quarter_of_the_range() -> None:
    with pytest.raises(Implausible, match="top quarter"):
        plan({}, {}, {"a": [Witnessed(CEILING - 5, 0.0, 1.0)]}, drift=100, instances=2)
    with pytest.raises(Implausible, match="'b'"):
        plan({}, {"b": CEILING}, {}, drift=100, instances=2, margin=1)
    assert plan({}, {"b": CEILING - 1}, {}, drift=100, instances=2, margin=1).floors == {
        "b": CEILING}


def test_implausible_values_and_rates() -> None:
    assert value_problem(10**18) is None
    assert value_problem(MAX_VALUE) is not None and value_problem(CEILING + 1) is not None
    fine = Witnessed(10, 1e6, 1.0)
    assert record_problem(fine) is None
    for rate in (float("inf"), float("nan"), -1.0, 1e308, MAX_RATE_PER_S * 2):
        assert "rate" in str(record_problem(Witnessed(10, rate, 1.0))), rate
        assert record_problem(Witnessed(10, rate, 1.0), check_rate=False) is None
    assert "window" in str(record_problem(Witnessed(10, 1.0, float("inf"))))
    assert "top quarter" in str(record_problem(Witnessed(MAX_VALUE, 0.0, 1.0), check_rate=False))


@given(
    own=st.integers(0, 10**12),  # far below CEILING: every plan is plausible
    peer=st.integers(0, 10**12),
    values=st.lists(st.tuples(st.integers(0, 10**12), st.floats(0, 1e6), st.floats(0.01, 100)),
                    min_size=1, max_size=4),
    drift=st.integers(0, 1000),
    instances=st.integers(1, 5),
)
def test_a_floor_covers_every_record_and_what_its_rate_may_have_issued(
    own: int, peer: int, values: list[tuple[int, float, float]], drift: int, instances: int
) -> None:
    records = [Witnessed(v, r, w) for v, r, w in values]
    result = plan({"n": own}, {"n": peer}, {"n": records}, drift=drift, instances=instances)
    floor = result.floors.get("n", own)
    assert floor >= own
    for record in records:
        # What the server could issue after the record: its rate, 4 times over, in the window.
        assert floor >= record.value + math.floor(4 * record.rate * record.window_s)
        assert floor >= record.value + 10 * drift * instances
    assert floor >= peer + 10 * drift * instances
