"""The change feed for witnesses (control request WatchChanges): pure bookkeeping, no I/O.

The ledger adds every name whose value moves to one set (one set.add per
request: all the hot path pays). When any consumer polls, that set is handed
over and merged into the pending set of every known consumer, so the cost of
a poll is the number of names that changed, not the number of names.

Per consumer: ``pending`` (changed, not sent yet), ``sent`` (the last page,
until it is acknowledged) and ``seq`` (the number of the last page). A
consumer acknowledges a page by sending its ``seq`` as ``ack`` in the next
poll; a page that is not acknowledged (its reply was lost) goes back to
``pending`` and is sent again with the values of that moment. A consumer that
is new, forgotten (idle for ``ttl_s``, or pushed out by newer ones beyond
``max_consumers``) or that names another epoch (the server restarted) is told
to resync: it reads every sequence once, and everything that changes from
that reply on reaches it through the feed.

``floored`` marks names whose floor was raised (PUT floor, recovery), so the
witness does not mistake the jump for a rate of issue.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

__all__ = ["CONSUMER_TTL_S", "MAX_CONSUMERS", "ChangeFeed", "Poll"]

CONSUMER_TTL_S: Final = 120.0
"""A consumer that has not polled for this long is forgotten (it resyncs when it comes back)."""
MAX_CONSUMERS: Final = 16
"""Consumers remembered at once; beyond, the one idle longest is forgotten."""


@dataclass
class _Consumer:
    pending: set[str] = field(default_factory=set)
    floored: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)
    sent_floored: set[str] = field(default_factory=set)
    seq: int = 0
    polled_at: float = 0.0


class Poll(NamedTuple):
    """What to answer one poll: which names (with their jumped flag), and the page's facts."""

    resync: bool
    seq: int
    names: list[tuple[str, bool]]
    more: bool


class ChangeFeed:
    def __init__(self, epoch: str, clock: Callable[[], float], *, ttl_s: float = CONSUMER_TTL_S,
                 max_consumers: int = MAX_CONSUMERS) -> None:
        self.epoch = epoch
        self._clock = clock
        self._ttl_s = ttl_s
        self._max = max_consumers
        self._consumers: OrderedDict[str, _Consumer] = OrderedDict()
        """Least recently polled first."""

    def __len__(self) -> int:
        return len(self._consumers)

    def merge(self, changed: set[str]) -> None:
        """Hand the names that changed (the ledger's set) to every consumer."""
        if not changed:
            return
        for consumer in self._consumers.values():
            consumer.pending |= changed

    def note_floors(self, names: Iterable[str]) -> None:
        """These names jumped because their floor was raised (not because numbers were issued)."""
        if not self._consumers:
            return
        names = set(names)
        for consumer in self._consumers.values():
            consumer.floored |= names

    def poll(self, consumer_id: str, epoch: str | None, ack: int, limit: int) -> Poll:
        """One poll by ``consumer_id`` (call ``merge`` with the ledger's changes first)."""
        now = self._clock()
        self._expire(now)
        consumer = self._consumers.get(consumer_id)
        if consumer is None or epoch != self.epoch:
            self._consumers.pop(consumer_id, None)
            self._consumers[consumer_id] = _Consumer(polled_at=now)
            while len(self._consumers) > self._max:
                self._consumers.popitem(last=False)
            return Poll(resync=True, seq=0, names=[], more=False)
        self._consumers.move_to_end(consumer_id)
        consumer.polled_at = now
        if ack != consumer.seq:  # the last page was not stored: send its names again
            consumer.pending.update(consumer.sent)
            consumer.floored |= consumer.sent_floored
        pending = consumer.pending
        if len(pending) <= limit:
            names = list(pending)
            pending.clear()
        else:
            names = [pending.pop() for _ in range(limit)]
        floored = consumer.floored
        jumped = floored.intersection(names) if floored else set()
        floored -= jumped
        consumer.sent = names
        consumer.sent_floored = jumped
        consumer.seq += 1
        return Poll(resync=False, seq=consumer.seq, names=[(name, name in jumped) for name in names],
                    more=bool(pending))

    def _expire(self, now: float) -> None:
        consumers = self._consumers
        while consumers:
            oldest_id, oldest = next(iter(consumers.items()))
            if now - oldest.polled_at <= self._ttl_s:
                break
            del consumers[oldest_id]
