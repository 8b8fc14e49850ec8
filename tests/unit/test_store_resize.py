"""The store's record of a resize (docs/protocol.md, "Changing the number of servers"):
which starts it accepts, and what it says to the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqgen_common.errors import StartupError
from seqgen_server.store import Store


def _resized(tmp_path: Path, *, end: bool) -> None:
    store = Store.open(tmp_path, 1, 2)
    store.set_meta(fenced=True, resize_to=3)
    store.set_meta(fenced=True, instances=3)
    if end:
        store.set_meta(fenced=False, end_resize=True)
    store.close()


def test_a_finished_resize_refuses_the_old_count_and_says_what_happened(tmp_path: Path) -> None:
    _resized(tmp_path, end=True)
    with pytest.raises(StartupError, match=r"resized from 2 to 3 servers.*--instances 3"):
        Store.open(tmp_path, 1, 2)
    store = Store.open(tmp_path, 1, 3)
    assert (store.instances, store.resize_to, store.fenced) == (3, None, False)
    store.close()


def test_an_unfinished_resize_starts_with_the_store_layout_fenced(tmp_path: Path) -> None:
    _resized(tmp_path, end=False)
    for count in (2, 3):
        store = Store.open(tmp_path, 1, count)
        assert (store.instance, store.instances, store.resize_to, store.fenced) == (1, 3, 3, True)
        store.close()
    with pytest.raises(StartupError, match="belongs to instance 1 of 3"):
        Store.open(tmp_path, 1, 5)
    with pytest.raises(StartupError, match="belongs to instance 1 of 3"):
        Store.open(tmp_path, 2, 3)


def test_a_retired_store_stays_retired_and_fenced(tmp_path: Path) -> None:
    store = Store.open(tmp_path, 3, 3)
    store.set_meta(fenced=True, resize_to=2)
    store.set_meta(fenced=True, retired=True)
    store.set_meta(fenced=True, end_resize=True)
    store.close()
    store = Store.open(tmp_path, 3, 3)
    assert (store.retired, store.fenced, store.resize_to, store.instances) == (True, True, None, 3)
    store.close()
