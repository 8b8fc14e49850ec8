"""The change feed for witnesses (seqgen_server.changes) and the ledger's part in it."""

from __future__ import annotations

from seqgen_server.allocator import Allocator
from seqgen_server.changes import ChangeFeed
from seqgen_server.ledger import Ledger


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_ledger_notes_every_name_that_moves() -> None:
    ledger = Ledger(Allocator(1, 2, 100), 10, {"old": 5}, 100, Clock())
    ledger.issue("a", 0, 1)
    ledger.issue("a", 0, 3)
    ledger.raise_floor("b", 50)
    assert ledger.take_changed() == {"a", "b"}
    assert ledger.take_changed() == set()


def test_a_new_consumer_resyncs_then_gets_only_changes() -> None:
    feed = ChangeFeed("e1", Clock())
    first = feed.poll("w", None, 0, 10)
    assert first.resync and first.seq == 0 and first.names == []
    feed.merge({"a", "b"})
    page = feed.poll("w", "e1", 0, 10)
    assert not page.resync and page.seq == 1 and not page.more
    assert sorted(page.names) == [("a", False), ("b", False)]
    assert feed.poll("w", "e1", 1, 10).names == []


def test_an_unacknowledged_page_is_sent_again() -> None:
    feed = ChangeFeed("e1", Clock())
    feed.poll("w", None, 0, 10)
    feed.merge({"a"})
    assert feed.poll("w", "e1", 0, 10).names == [("a", False)]
    feed.merge({"b"})
    again = feed.poll("w", "e1", 0, 10)  # the reply of seq 1 was lost: ack is still 0
    assert sorted(again.names) == [("a", False), ("b", False)]
    assert again.seq == 2


def test_pages_are_limited_and_say_there_is_more() -> None:
    feed = ChangeFeed("e1", Clock())
    feed.poll("w", None, 0, 10)
    feed.merge({f"n{i}" for i in range(25)})
    seen: set[str] = set()
    ack, pages = 0, 0
    while True:
        page = feed.poll("w", "e1", ack, 10)
        pages += 1
        assert len(page.names) <= 10
        seen |= {name for name, _ in page.names}
        ack = page.seq
        if not page.more:
            break
    assert pages == 3 and len(seen) == 25


def test_every_consumer_gets_every_change() -> None:
    feed = ChangeFeed("e1", Clock())
    feed.poll("w1", None, 0, 10)
    feed.poll("w2", None, 0, 10)
    feed.merge({"a"})
    assert feed.poll("w1", "e1", 0, 10).names == [("a", False)]
    feed.merge({"b"})
    assert sorted(feed.poll("w2", "e1", 0, 10).names) == [("a", False), ("b", False)]
    assert feed.poll("w1", "e1", 1, 10).names == [("b", False)]


def test_another_epoch_or_a_forgotten_consumer_resyncs() -> None:
    clock = Clock()
    feed = ChangeFeed("e2", clock, ttl_s=10, max_consumers=2)
    assert feed.poll("w", "e1", 5, 10).resync  # the server restarted
    assert not feed.poll("w", "e2", 0, 10).resync
    clock.now += 11
    assert feed.poll("w", "e2", 1, 10).resync  # idle too long: forgotten
    feed.poll("x", None, 0, 10)
    feed.poll("y", None, 0, 10)  # a third consumer pushes out the one idle longest ("w")
    assert len(feed) == 2
    assert feed.poll("w", "e2", 0, 10).resync


def test_floors_are_marked_as_jumps_once() -> None:
    feed = ChangeFeed("e1", Clock())
    feed.poll("w", None, 0, 10)
    feed.merge({"a", "b"})
    feed.note_floors(["a"])
    page = feed.poll("w", "e1", 0, 10)
    assert sorted(page.names) == [("a", True), ("b", False)]
    again = feed.poll("w", "e1", 0, 10)  # not acknowledged: the jump is reported again
    assert sorted(again.names) == [("a", True), ("b", False)]
    feed.merge({"a"})
    assert feed.poll("w", "e1", again.seq, 10).names == [("a", False)]
