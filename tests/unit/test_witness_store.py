"""The witness record (seqgen_admin.witness) in a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqgen_admin.witness import InstanceState, Seen, WitnessStore
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
