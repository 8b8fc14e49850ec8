"""The witness record (seqgen_admin.witness) in a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqgen_admin.margin import MAX_RATE_PER_S
from seqgen_admin.witness import InstanceState, Seen, WitnessStore, faded
from seqgen_common.errors import StartupError


def test_values_only_go_up_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "witness.db"
    store = WitnessStore.open(path)
    store.record(1, [Seen("a", 100, True), Seen("b", 5, True)], 1000.0, confirmed_at=999.0)
    store.record(1, [Seen("a", 40, True)], 1001.0)  # a restored backup says less: ignored
    store.record(2, [Seen("a", 7, True)], 1001.0)
    store.close()
    store = WitnessStore.open(path)
    items, cursor = store.page(1, "", None, 10)
    assert [(i.name, i.value, i.seen_at) for i in items] == [("a", 100, 1000.0), ("b", 5, 1000.0)]
    assert cursor is None
    assert store.state(1) == InstanceState(999.0, None)
    assert store.state(3) == InstanceState(None, None)
    assert [i.value for i in store.page(2, "", None, 10)[0]] == [7]


def test_rates_are_samples_of_issues_only(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    store.record(1, [Seen("a", 100, True)], 1000.0)
    store.record(1, [Seen("a", 300, True)], 1002.0)
    (item,), _ = store.page(1, "", None, 10)
    assert item.rate == pytest.approx(100.0)
    store.record(1, [Seen("a", 10**9, False)], 1003.0)  # a floor raised: no sample
    (item,), _ = store.page(1, "", None, 10)
    assert item.value == 10**9
    assert item.rate == pytest.approx(100.0)
    store.record(1, [Seen("a", 10**9 + 1, True)], 1063.0)  # slow now: the peak fades
    (item,), _ = store.page(1, "", None, 10)
    assert item.rate == pytest.approx(100.0 * 60 / 120)


def test_lost_keeps_the_first_loss_until_confirmed(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    store.record(1, [], 10.0, confirmed_at=10.0)
    store.lost(1, 12.0)
    store.lost(1, 15.0)
    assert store.state(1) == InstanceState(10.0, 12.0)
    assert store.state(1).stale_s(100.0) == 2.0
    store.record(1, [], 20.0, confirmed_at=20.0)
    assert store.state(1) == InstanceState(20.0, None)
    assert store.state(1).stale_s(23.0) == 3.0
    assert InstanceState(None, None).stale_s(5.0) is None


def test_pages_by_prefix_and_cursor(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    names = ["a", "b/1", "b/2", "b/3", "c"]
    store.record(1, [Seen(n, 1, False) for n in names], 1.0)
    first, cursor = store.page(1, "b/", None, 2)
    assert [i.name for i in first] == ["b/1", "b/2"] and cursor == "b/2"
    rest, cursor = store.page(1, "b/", cursor, 2)
    assert [i.name for i in rest] == ["b/3"] and cursor is None


def test_a_file_that_is_not_a_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StartupError, match="cannot be used"):
        WitnessStore.open(path)


def test_a_jump_faster_than_any_server_is_not_a_rate(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    store.record(1, [Seen("a", 100, True)], 1000.0)
    store.record(1, [Seen("a", 300, True)], 1001.0)
    store.record(1, [Seen("a", 10**18, True)], 1002.0)  # a catch-up to a client's last
    (item,), _ = store.page(1, "", None, 10)
    assert item.value == 10**18
    assert item.rate == pytest.approx(200.0)  # the jump is no sample: the peak before it stays
    assert item.rate <= MAX_RATE_PER_S


def test_rates_fade_while_no_new_value_arrives(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    store.record(1, [Seen("a", 0, True)], 1000.0)
    store.record(1, [Seen("a", 1000, True)], 1001.0)
    assert store.page(1, "", None, 10, at=1001.0)[0][0].rate == pytest.approx(1000.0)
    assert store.page(1, "", None, 10, at=1061.0)[0][0].rate == pytest.approx(500.0)
    assert store.page(1, "", None, 10, at=1001.0 + 3600)[0][0].rate < 20
    assert faded(10.0, 5.0, 4.0) == 10.0  # never above the peak


def test_values_below_the_record_are_answered(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    assert store.record(1, [Seen("a", 100, True), Seen("b", 5, True)], 1.0) == {}
    below = store.record(1, [Seen("a", 40, False), Seen("b", 6, True), Seen("new", 1, True)], 2.0)
    assert below == {"a": 100}
    assert store.record(2, [Seen("a", 1, True)], 3.0) == {}  # another instance's record
    many = [Seen(f"n{i}", 10, False) for i in range(1200)]
    store.record(1, many, 4.0)
    assert len(store.record(1, [Seen(f"n{i}", 9, False) for i in range(1200)], 5.0)) == 1200


def test_a_burst_after_a_quiet_hour_is_measured_over_the_poll_it_moved_in(tmp_path: Path) -> None:
    store = WitnessStore.open(tmp_path / "w.db")
    store.record(1, [Seen("quiet", 100, True), Seen("old", 100, True)], 1000.0)
    # An hour later the name moves by 20,000 between two polls 1 s apart.
    store.record(1, [Seen("quiet", 20_100, True)], 4600.0, span_s=1.0)
    store.record(1, [Seen("old", 20_100, True)], 4600.0)  # no span known: over the hour
    rates = {i.name: i.rate for i in store.page(1, "", None, 10)[0]}
    assert rates["quiet"] == pytest.approx(20_000.0)
    assert rates["old"] == pytest.approx(20_000 / 3600)
