"""The oldest version a store records, and the refusal of a store made for newer versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from seqgen_common import __version__
from seqgen_common.errors import StartupError
from seqgen_server.store import DB_NAME, Store
from seqgen_server.versions import newer, release


def meta(data: Path) -> dict[str, str]:
    with sqlite3.connect(data / DB_NAME) as conn:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def set_meta(data: Path, **values: str) -> None:
    conn = sqlite3.connect(data / DB_NAME)
    with conn:
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())
    conn.close()


def test_versions_compare_by_release() -> None:
    assert release("0.3.0.dev1") == (0, 3, 0) and release("0.0.0+unknown") is None
    assert newer("0.2.0", "0.1.0") and newer("1.0.0", "0.10.0")
    assert not newer("0.2.0", "0.2.0") and not newer("0.1.0", "0.2.0")
    assert not newer("0.3.0", "0.3.0.dev1")
    assert not newer("9.0.0", "0.0.0+unknown")  # an uninstalled tree cannot tell
    with pytest.raises(ValueError, match="not a version"):
        newer("banana", "0.2.0")


def test_a_new_store_may_be_opened_by_every_version_until_it_is_fenced(tmp_path: Path) -> None:
    store = Store.open(tmp_path, 1, 2)
    assert (meta(tmp_path)["oldest_version"], meta(tmp_path)["format"]) == ("0.1.0", "1")
    store.set_fenced(True)  # 0.1.0 would serve from it: only 0.2.0 and later, format 2
    assert (meta(tmp_path)["oldest_version"], meta(tmp_path)["format"]) == ("0.2.0", "2")
    store.set_fenced(False)
    assert (meta(tmp_path)["oldest_version"], meta(tmp_path)["format"]) == ("0.1.0", "1")
    store.close()


def test_a_snapshot_is_fenced_and_guarded(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "d", 1, 2)
    store.write_marks([("a", 10)])
    store.snapshot(tmp_path / "copy.db")
    store.close()
    with sqlite3.connect(tmp_path / "copy.db") as conn:
        copied = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert (copied["fenced"], copied["oldest_version"], copied["format"]) == ("1", "0.2.0", "2")


def test_a_store_of_an_older_version_gets_its_oldest_version_on_open(tmp_path: Path) -> None:
    Store.open(tmp_path, 1, 2).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    with conn:  # as 0.1.0 and 0.2.0 leave it: no oldest_version
        conn.execute("DELETE FROM meta WHERE key = 'oldest_version'")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('fenced', '1')")
    conn.close()
    store = Store.open(tmp_path, 1, 2)
    assert store.fenced
    store.close()
    assert (meta(tmp_path)["oldest_version"], meta(tmp_path)["format"]) == ("0.2.0", "2")


def test_a_store_for_a_newer_version_is_refused_with_what_to_run(tmp_path: Path) -> None:
    Store.open(tmp_path, 1, 2).close()
    set_meta(tmp_path, oldest_version="99.1.0", format="2")
    with pytest.raises(StartupError, match=r"only be opened by seqgen 99\.1\.0 or later") as refused:
        Store.open(tmp_path, 1, 2)
    assert __version__ in str(refused.value) and "docs/upgrading.md" in str(refused.value)
    assert meta(tmp_path)["oldest_version"] == "99.1.0"  # left as it was


@pytest.mark.parametrize(("key", "value", "message"), [
    ("format", "3", "has format 3"),
    ("oldest_version", "soon", "damaged oldest_version"),
])
def test_an_unknown_format_or_version_is_refused(tmp_path: Path, key: str, value: str, message: str) -> None:
    Store.open(tmp_path, 1, 2).close()
    set_meta(tmp_path, **{key: value})
    with pytest.raises(StartupError, match=message):
        Store.open(tmp_path, 1, 2)
