"""The recovery rule (seqgen_admin.margin): floors above everything the lost server may have issued."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from seqgen_admin.margin import Witnessed, base_margin, default_margin, plan
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
    assert result.floors == {"a": 3000 + 2000, "b": 40 + 2000}
    assert result.largest_jump == 5000 - 5
    assert result.largest_margin == 2000
    assert result.kept == 1
    # Names nobody witnessed ("never", "mine") keep the server's own state.
    assert "never" not in result.floors and "mine" not in result.floors


def test_a_given_margin_replaces_the_default() -> None:
    result = plan({}, {}, {"a": [Witnessed(10, 1e6, 1.0)]}, drift=100, instances=2, margin=7)
    assert result.floors == {"a": 17}
    assert result.largest_margin == 7


def test_floors_stop_at_the_largest_value() -> None:
    result = plan({}, {}, {"a": [Witnessed(MAX_VALUE - 5, 0.0, 1.0)]}, drift=100, instances=2)
    assert result.floors == {"a": MAX_VALUE}


@given(
    own=st.integers(0, 10**12),
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
