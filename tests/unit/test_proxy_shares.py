"""The proxy's waiting requests per name (seqgen_proxy.shares): one name cannot take the queue."""

from __future__ import annotations

from seqgen_proxy.shares import Shares


def test_a_name_gets_half_the_queue_and_the_others_the_rest() -> None:
    shares = Shares(10)
    assert shares.share == 5
    for _ in range(5):
        assert shares.room("hot")
        shares.add("hot")
    assert not shares.room("hot")  # its share is full
    for i in range(5):
        assert shares.room(f"other-{i}")
        shares.add(f"other-{i}")
    assert shares.total == 10 and not shares.room("new")  # the whole queue is full
    shares.remove("hot", 2)
    assert shares.waiting("hot") == 3 and shares.room("hot") and shares.room("new")
    for i in range(5):
        shares.remove(f"other-{i}")
    shares.remove("hot", 3)
    assert shares.total == 0 and shares.waiting("hot") == 0
    assert shares._by_name == {}  # nothing kept for names that no longer wait


def test_tiny_queues() -> None:
    assert Shares(1).share == 1 and Shares(1).room("a")
    assert not Shares(0).room("a")
