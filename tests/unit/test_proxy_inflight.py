"""Request bookkeeping: ids, deadlines, and late replies that match nothing."""

from __future__ import annotations

from seqgen_common.reqids import RequestIds
from seqgen_proxy.inflight import InFlight
from seqgen_proxy.jobs import Job, Lane, Member


def _pending(tag: bytes) -> Job:
    return Job(Lane("n"), [Member([tag, b""], b'["n","0"]', 1, 0, 0.0)], 1)


def test_request_ids_are_unique_and_never_empty() -> None:
    ids = RequestIds()
    seen = {ids() for _ in range(1000)}
    assert len(seen) == 1000
    assert all(len(i) == 8 and i for i in seen)


def test_a_reply_finds_its_own_request_once() -> None:
    table = InFlight()
    a, b = _pending(b"client-a"), _pending(b"client-b")
    table.add(b"1", a, deadline=5.0)
    table.add(b"2", b, deadline=6.0)
    assert table.pop(b"2") is b
    assert table.pop(b"2") is None  # a duplicate reply matches nothing
    assert table.pop(b"9") is None  # nor does an unknown id
    assert table.pop(b"1") is a
    assert len(table) == 0


def test_oldest_deadline_first_and_take_all_forgets_the_ids() -> None:
    table = InFlight()
    assert table.oldest_deadline() is None
    first, second = _pending(b"x"), _pending(b"y")
    table.add(b"1", first, deadline=5.0)
    table.add(b"2", second, deadline=6.0)
    assert table.oldest_deadline() == 5.0
    table.pop(b"1")
    assert table.oldest_deadline() == 6.0
    assert table.take_all() == [second]
    # After a backend is given up, its late replies are dropped.
    assert table.pop(b"2") is None
    assert table.oldest_deadline() is None
