"""The SQLite store: creation, locking, refusal of foreign or broken state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from seqgen_common.errors import ConfigError, StartupError
from seqgen_server.store import DB_NAME, NEW_DB_NAME, Store


def test_marks_survive_reopen(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "d", 1, 2)
    store.write_marks([("a", 41), ("b", 7)], clean=False)
    store.write_marks([("a", 81)])
    store.close()
    again = Store.open(tmp_path / "d", 1, 2)
    assert again.load() == {"a": 81, "b": 7}
    assert not again.clean_start
    again.close()


def test_second_open_is_refused_by_the_lock(tmp_path: Path) -> None:
    store = Store.open(tmp_path, 1, 1)
    with pytest.raises(StartupError, match="locked"):
        Store.open(tmp_path, 1, 1)
    store.close()
    Store.open(tmp_path, 1, 1).close()


def test_other_instance_is_refused_with_both_values(tmp_path: Path) -> None:
    Store.open(tmp_path, 2, 3).close()
    with pytest.raises(StartupError, match=r"instance 2 of 3.*instance 1 of 2"):
        Store.open(tmp_path, 1, 2)


def test_missing_meta_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path, 1, 1).close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'instance'")
    with pytest.raises(StartupError, match="meta"):
        Store.open(tmp_path, 1, 1)


def test_empty_database_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"")
    with pytest.raises(StartupError, match="meta"):
        Store.open(tmp_path, 1, 1)


def test_garbage_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StartupError, match="corrupt"):
        Store.open(tmp_path, 1, 1)


def test_truncated_database_is_refused(tmp_path: Path) -> None:
    store = Store.open(tmp_path, 1, 1)
    store.write_marks([(f"name-{i}", i) for i in range(5000)])
    store.close()
    db = tmp_path / DB_NAME
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    with pytest.raises(StartupError):
        Store.open(tmp_path, 1, 1)


def test_paging_in_name_order(tmp_path: Path) -> None:
    store = Store.open(tmp_path, 1, 1)
    store.write_marks([(n, 1) for n in ["b2", "a", "b1", "b", "c", "b\u00e9"]])
    assert store.page("", None, 10) == ["a", "b", "b1", "b2", "b\u00e9", "c"]
    assert store.page("b", None, 2) == ["b", "b1"]
    assert store.page("b", "b1", 10) == ["b2", "b\u00e9"]
    assert store.page("zz", None, 10) == []
    store.write_marks([("\ud7ff-x", 1), ("\ue000", 1)])
    assert store.page("\ud7ff", None, 10) == ["\ud7ff-x"]  # the bound skips the surrogates
    store.write_marks([(n, 1) for n in ["x\U0010ffff", "x\U0010ffffa", "x\U0010ffff\U0010ffff", "y"]])
    # The largest code point cannot be incremented: the bound comes from the one before it.
    assert store.page("x\U0010ffff", None, 10) == [
        "x\U0010ffff", "x\U0010ffffa", "x\U0010ffff\U0010ffff"]
    assert store.page("\U0010ffff", None, 10) == []
    store.close()


def test_an_interrupted_creation_leaves_no_store_and_the_next_start_makes_one(tmp_path: Path) -> None:
    (tmp_path / NEW_DB_NAME).write_bytes(b"half a database")  # a crash before the rename
    store = Store.open(tmp_path, 2, 3)
    store.write_marks([("a", 5)])
    store.close()
    assert not (tmp_path / NEW_DB_NAME).exists()
    again = Store.open(tmp_path, 2, 3)
    assert again.load() == {"a": 5}
    again.close()


def test_a_store_is_created_only_with_both_numbers_and_read_without_them(tmp_path: Path) -> None:
    data = tmp_path / "d"
    for instance, instances in ((None, None), (1, None), (None, 2)):
        with pytest.raises(ConfigError, match="--instance K --instances N"):
            Store.open(data, instance, instances)
    assert not data.exists()  # not even the directory
    Store.open(data, 2, 3).close()
    for instance, instances in ((None, None), (2, None), (None, 3), (2, 3)):
        store = Store.open(data, instance, instances)
        assert (store.instance, store.instances) == (2, 3)
        store.close()
    for instance, instances in ((1, None), (None, 2)):
        with pytest.raises(StartupError, match="belongs to instance 2 of 3"):
            Store.open(data, instance, instances)


def test_a_snapshot_is_marked_restored_until_a_server_starts_on_it(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "a", 1, 2)
    store.snapshot(tmp_path / "backup.db")
    store.close()
    (tmp_path / "b").mkdir()
    (tmp_path / "backup.db").rename(tmp_path / "b" / "seqgen.db")
    restored = Store.open(tmp_path / "b", None, None)
    assert restored.restored and restored.fenced and not restored.clean_start
    restored.write_marks([], clean=False, started=True)
    restored.close()
    again = Store.open(tmp_path / "b", 1, 2)
    assert not again.restored and again.fenced
    again.close()
