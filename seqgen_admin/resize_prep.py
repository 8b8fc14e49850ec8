"""A resize's reading of every server before the fence (docs/protocol.md, "Changing the
number of servers"), so that the fenced part of a resize reads only what changed.

Step ``prepare`` (the cluster still serves), on each admin that will raise floors:

1. it becomes a consumer of every server's change feed (its own through the control
   socket, each peer's through that admin's ``GET /changes``), under an id of its own
   for this resize (``resize-<token>-<instance>``): from that reply on, every name whose
   value changes on that server is in the feed for it;
2. it reads every server in full (``ListSequences``, the peers' ``GET /sequences``) and
   keeps, per name, the highest value read (``Prepared.values``);
3. it drains every feed once (what changed during the read).

Step ``preraise`` (still serving): it drains the feeds and raises its own server's
floors to every highest value it knows + the margin (``Prepared.floors``). Step
``drain`` (still serving, once every admin pre-raised): it drains the feeds again, so
the other servers' pre-raised floors are known values, not changes.

Step ``floors`` (every server fenced) then only drains the feeds again (``settle``):
every value that changed since a server was read is in its feed, so per name the
highest value kept is the highest value any server holds under the fence. The
boundary (``Prepared.boundaries``) is the highest of: the floor pre-raised here, every
value drained before the fence, and every value drained under the fence + the margin.
It is at or above every server's value under the fence, so above every number issued;
a name that moved after the last drain before the fence is the margin above it, and a
name that did not is the margin above what was known when the floors were pre-raised.
Only names whose boundary is above this server's value are written under the fence.
Without a pre-raise (the step failed) the boundary is every highest value + the margin.
A feed that cannot say what changed (the server restarted: a new epoch; it forgot
the consumer: ``resync``) raises ``FeedLost`` and the caller reads everything under the
fence instead, as without a preparation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import httpx

from seqgen_admin.cluster import THIS_SERVER
from seqgen_admin.control_client import ControlClient
from seqgen_admin.layout import boundaries
from seqgen_admin.peers import CHANGES_PAGE, PeerReader
from seqgen_admin.recover import FRAME_BUDGET_BYTES, floor_batches, own_values
from seqgen_common.control import MAX_CHANGES_PAGE, ChangePage

__all__ = [
    "FLOORS_IN_FLIGHT",
    "FeedLost",
    "Preparations",
    "Prepared",
    "prepare",
    "raise_all",
    "settle",
]

log = logging.getLogger(__name__)

FLOORS_IN_FLIGHT: Final = 8
"""RaiseFloors requests sent at once (the server makes them durable in one write)."""
FLOORS_TIMEOUT_S: Final = 10.0
"""How long one RaiseFloors request of a resize may wait (many are made durable together;
a server killed meanwhile costs this long)."""
MAX_DRAIN_PAGES: Final = 10_000
"""Pages one drain reads at most (a feed that never empties is not waited for)."""


class FeedLost(Exception):
    """A server's change feed cannot say what changed since it was read."""


@dataclass(slots=True)
class _Feed:
    """One server's change feed, as this admin consumes it."""

    who: str
    """THIS_SERVER or the peer's admin URL."""
    instance: int
    epoch: str
    ack: int


@dataclass(slots=True)
class Prepared:
    token: str
    instances: int
    """The count of the resize it was prepared for."""
    consumer: str = ""
    feeds: list[_Feed] = field(default_factory=list)
    values: dict[str, int] = field(default_factory=dict)
    """Per name, the highest value read on any server (then drained from the feeds)."""
    own: dict[str, int] = field(default_factory=dict)
    """Per name, this admin's own server's current value (as read, then drained)."""
    own_before: dict[str, int] = field(default_factory=dict)
    """Per name, its own server's value as read, before any floor of this resize."""
    floors: dict[str, int] | None = None
    """The floors step ``preraise`` raised on its own server (None: it did not)."""

    base: dict[str, int] | None = None
    """After step ``drain``: per name the highest of the floor pre-raised and every value
    known (Implausible checked)."""
    behind: set[str] = field(default_factory=set)
    """After step ``drain``: the names whose base is above this server's value then."""
    base_jump: int = 0
    """The largest base minus this server's value before the resize."""

    def set_base(self) -> None:
        """Step ``drain``, after the feeds were drained: what the fence then only updates."""
        if self.floors is None:
            return
        base = dict(self.values)
        for name, floor in self.floors.items():
            if floor > base.get(name, -1):
                base[name] = floor
        boundaries([base.items()], 0)  # Implausible above CEILING
        own, before = self.own, self.own_before
        self.behind = {name for name, value in base.items() if value > own.get(name, -1)}
        self.base_jump = max((value - before.get(name, 0) for name, value in base.items()),
                             default=0)
        self.base = base

    def fenced(self, changed: Mapping[str, int], margin: int,
               ) -> tuple[list[tuple[str, int]], int, int]:
        """Once the fenced drain brought ``changed`` (name -> value): the floors to write on
        this server, how many names have a boundary, the largest jump. Without a pre-raise
        (and ``drain``) every boundary is the highest value + margin; with them, the highest
        of the base and every value drained under the fence + margin (docs/protocol.md).
        Implausible above CEILING."""
        own, before = self.own, self.own_before
        base = self.base
        if base is None:
            floors = boundaries([self.values.items()], margin)
            jump = max((floor - before.get(name, 0) for name, floor in floors.items()),
                       default=0)
            return ([(name, floor) for name, floor in floors.items()
                     if floor > own.get(name, -1)], len(floors), jump)
        moved = boundaries([((name, value + margin) for name, value in changed.items())], 0)
        names = len(base) + sum(1 for name in moved if name not in base)
        write: list[tuple[str, int]] = []
        jump = self.base_jump
        for name in self.behind.union(moved):
            floor = max(base.get(name, -1), moved.get(name, -1))
            jump = max(jump, floor - before.get(name, 0))
            if floor > own.get(name, -1):
                write.append((name, floor))
        return write, names, jump

    def instances_read(self) -> set[int]:
        return {feed.instance for feed in self.feeds}

    def merge(self, items: Sequence[tuple[str, int]], *, own: bool = False) -> None:
        values = self.values
        for name, value in items:
            if value > values.get(name, -1):
                values[name] = value
        if own:
            self.own.update(items)


class Preparations:
    """The one preparation this admin holds (a newer one replaces it)."""

    def __init__(self) -> None:
        self._prepared: Prepared | None = None

    def put(self, prepared: Prepared) -> None:
        self._prepared = prepared

    def get(self, token: str, instances: int) -> Prepared | None:
        prepared = self._prepared
        if prepared is None or not token or prepared.token != token:
            return None
        return prepared if prepared.instances == instances else None

    def clear(self) -> None:
        self._prepared = None


# ---- the feeds --------------------------------------------------------------------

_Page = tuple[bool, str, int, int, bool, list[tuple[str, int]]]
"""(resync, epoch, seq, instance, more, [(name, current)])."""


async def _poll(client: ControlClient, http: httpx.AsyncClient, who: str, consumer: str, *,
                epoch: str | None, ack: int) -> _Page:
    if who == THIS_SERVER:
        page: ChangePage = await client.watch_changes(consumer, epoch, ack, MAX_CHANGES_PAGE)
    else:
        page = await PeerReader(http, who).changes(consumer, epoch, ack, CHANGES_PAGE)
    return (page.resync, page.epoch, page.seq, page.instance, page.more,
            [(item.name, item.current) for item in page.items])


async def _drain(client: ControlClient, http: httpx.AsyncClient, feed: _Feed, into: Prepared,
                 changes: dict[str, int] | None) -> int:
    """Every change of ``feed`` into ``into`` (and ``changes``: name -> highest value);
    how many; FeedLost when it cannot say."""
    changed = 0
    for _ in range(MAX_DRAIN_PAGES):
        resync, epoch, seq, _, more, items = await _poll(client, http, feed.who, into.consumer,
                                                         epoch=feed.epoch, ack=feed.ack)
        if resync or epoch != feed.epoch:
            raise FeedLost(f"{feed.who}: the server restarted or forgot this admin's "
                           "resize consumer")
        into.merge(items, own=feed.who == THIS_SERVER)
        if changes is not None:
            for name, value in items:
                if value > changes.get(name, -1):
                    changes[name] = value
        changed += len(items)
        feed.ack = seq
        if not more:
            return changed
    raise FeedLost(f"{feed.who}: its change feed did not empty")


async def _read(client: ControlClient, http: httpx.AsyncClient, who: str,
                ) -> list[tuple[str, int]]:
    if who == THIS_SERVER:
        return list((await own_values(client)).items())
    values: list[tuple[str, int]] = []
    async for items in PeerReader(http, who).sequences():
        values.extend(items)
    return values


async def prepare(client: ControlClient, http: httpx.AsyncClient, peers: Sequence[str], *,
                  token: str, instances: int) -> Prepared:
    """Steps 1 to 3 of the module doc (SeqgenError or PeerError when a server does not
    answer)."""
    own = (await client.status()).instance
    consumer = f"resize-{token}-{own}"
    prepared = Prepared(token, instances, consumer)
    whos = [THIS_SERVER, *peers]
    first = await asyncio.gather(*(_poll(client, http, who, consumer, epoch=None, ack=0) for who in whos))
    prepared.feeds = [_Feed(who, instance, epoch, seq)
                      for who, (_, epoch, seq, instance, _, _) in zip(whos, first, strict=True)]
    read = await asyncio.gather(*(_read(client, http, who) for who in whos))
    for who, values in zip(whos, read, strict=True):
        prepared.merge(values, own=who == THIS_SERVER)
    prepared.own_before = dict(prepared.own)
    await settle(client, http, prepared)
    return prepared


async def preraise(client: ControlClient, http: httpx.AsyncClient, prepared: Prepared,
                   margin: int) -> int:
    """Step ``preraise`` (the cluster still serves): this admin's server's floors raised to
    every highest value known now + ``margin``; how many moved."""
    await settle(client, http, prepared)
    floors = boundaries([prepared.values.items()], margin)
    own = prepared.own
    raised = await raise_all(client, sorted((name, floor) for name, floor in floors.items()
                                            if floor > own.get(name, -1)))
    prepared.floors = floors
    return raised


async def settle(client: ControlClient, http: httpx.AsyncClient, prepared: Prepared,
                 changes: dict[str, int] | None = None) -> int:
    """Drain every feed into ``prepared`` (and ``changes``); the changes read. FeedLost
    when one cannot say what changed."""
    counts = await asyncio.gather(*(_drain(client, http, feed, prepared, changes)
                                    for feed in prepared.feeds))
    return sum(counts)


# ---- the floors -------------------------------------------------------------------


async def raise_all(client: ControlClient, floors: Sequence[tuple[str, int]],
                    in_flight: int = FLOORS_IN_FLIGHT,
                    budget_bytes: int = FRAME_BUDGET_BYTES) -> int:
    """Raise ``floors`` with up to ``in_flight`` RaiseFloors requests at once (each durable
    before its reply); how many moved."""
    slots = asyncio.Semaphore(in_flight)

    async def one(batch: list[tuple[str, int]]) -> int:
        async with slots:
            return (await client.raise_floors(batch, FLOORS_TIMEOUT_S)).raised

    raised = await asyncio.gather(*(one(batch) for batch in floor_batches(floors, budget_bytes)))
    return sum(raised)

