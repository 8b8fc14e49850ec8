"""Following the peers: this admin keeps its own server within ``drift`` of the others.

Closeness used to rest on clients alone: a server more than ``--drift`` behind
catches up only when a request's ``last`` tells it to, and many callers carry
nothing. The admin already polls every peer's change feed (seqgen_admin.peers),
so it knows, for every name that moves on a peer, the peer's current value.
When that value is more than ``drift`` ahead of its own server's, the admin
raises its server's floor for the name to just below the peer's value
(``raise_floors``: the next number is the first own number above the peer's).

- **Uniqueness never depends on this.** A floor only moves forward and a server
  never issues a number twice; a raise can only skip numbers, like a catch-up.
- **Quiet names cost nothing.** Only names in a peer's change feed are
  considered (never a full listing), and a name is read from the own server
  only when the peer's value is more than ``drift`` beyond what the admin knows
  of it: a lower bound (a server's value only goes up), learned from its reads
  and, for free, from the pages of its own server's change feed that it serves
  to the peers (``GET /changes``), so servers that are close cost no reads.
  After the own server lost its store, a stale bound delays a raise until the
  peer has moved ``drift`` further (the read then sees the truth).
- **Not while fenced.** A fenced server issues nothing and is being recovered
  (``POST /recover`` raises its floors from the witnesses); its names wait.
- **Bounded.** At most ``max_names`` names are read and raised per round (one
  ``raise_floors`` request); more wait for the next round in a bounded set
  (``PENDING_PER_NAME`` times that), beyond which a name is dropped until the
  feed brings it again (a busy name comes back at the next poll). Counted.

``FollowPlan`` is the pure part (what to read, what to raise); ``Follower``
runs it against the own server's control socket after each peer poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from seqgen_admin.control_client import ControlClient
from seqgen_common.control import MAX_FLOORS
from seqgen_common.errors import NotFound, SeqgenError

__all__ = ["DEFAULT_MAX_NAMES", "FollowCounts", "FollowPlan", "Follower"]

log = logging.getLogger(__name__)

DEFAULT_MAX_NAMES: Final = 1000
"""Names read and raised per round at most (``--follow-max-names``)."""
PENDING_PER_NAME: Final = 10
"""Names waiting for a round: at most this many times ``max_names``."""
KNOWN_NAMES: Final = 100_000
"""Names whose own value the admin remembers (least recently used forgotten)."""


@dataclass(slots=True)
class FollowCounts:
    """What following did since the admin started (exported in /metrics)."""

    rounds: int = 0
    """Rounds that had names to consider."""
    checked: int = 0
    """Names read from the own server because a peer was more than drift beyond them."""
    raised: int = 0
    """Floors the own server raised (durable)."""
    deferred: int = 0
    """Names left for a later round by the bound (or dropped while the waiting set was full)."""
    failures: int = 0
    """Rounds that failed (the own server did not answer); their names wait for the next."""


class FollowPlan:
    """Which names to read and raise: pure logic, no I/O, no clock."""

    def __init__(self, max_names: int, known_names: int = KNOWN_NAMES) -> None:
        if not 1 <= max_names <= MAX_FLOORS:
            raise ValueError(f"max_names must be in 1..{MAX_FLOORS}, got {max_names}")
        self.max_names = max_names
        self.max_pending = max_names * PENDING_PER_NAME
        self._known_names = known_names
        self.pending: dict[str, int] = {}
        """Name -> the highest value a peer was seen at, not yet considered."""
        self._own: OrderedDict[str, int] = OrderedDict()
        """Name -> a lower bound of the own server's value (it only goes up)."""
        self.counts = FollowCounts()

    def offer(self, seen: Iterable[tuple[str, int]]) -> None:
        """Values a peer's change feed carried."""
        pending = self.pending
        for name, value in seen:
            old = pending.get(name)
            if old is not None:
                if value > old:
                    pending[name] = value
            elif len(pending) < self.max_pending:
                pending[name] = value
            else:
                self.counts.deferred += 1

    def own_at_least(self, name: str) -> int:
        return self._own.get(name, 0)

    def candidates(self, drift: int) -> list[tuple[str, int]]:
        """Up to ``max_names`` pending names whose peer value may be more than ``drift``
        ahead, widest gap first; they leave the pending set, the others stay there. Names
        known to be within ``drift`` leave it too (nothing to do)."""
        wide = [(name, value) for name, value in self.pending.items()
                if value - self.own_at_least(name) > drift]
        wide.sort(key=lambda item: item[1] - self.own_at_least(item[0]), reverse=True)
        chosen, rest = wide[:self.max_names], wide[self.max_names:]
        self.pending = dict(rest)
        self.counts.deferred += len(rest)
        return chosen

    def put_back(self, names: Iterable[tuple[str, int]]) -> None:
        """Candidates of a failed round: considered again at the next."""
        self.offer(names)

    def floors(self, drift: int, read: Iterable[tuple[str, int, int]]) -> list[tuple[str, int]]:
        """From ``(name, peer value, own value)``: the floors to raise, just below the peer's
        value where it is more than ``drift`` ahead."""
        floors: list[tuple[str, int]] = []
        for name, peer, own in read:
            self.learn(name, own)
            if peer - own > drift:
                floors.append((name, peer - 1))
        return floors

    def learn(self, name: str, own: int) -> None:
        """The own server's value for ``name`` is at least ``own``."""
        known = self._own
        if own > known.get(name, -1):
            known[name] = own
        known.move_to_end(name)
        if len(known) > self._known_names:
            known.popitem(last=False)


class Follower:
    """Runs a FollowPlan against the own server (one round at a time)."""

    def __init__(self, control: ControlClient, max_names: int) -> None:
        self._control = control
        self.plan = FollowPlan(max_names)
        self._lock = asyncio.Lock()
        self._failing = False
        """The last round failed (its warning is logged once, until a round succeeds)."""

    @property
    def counts(self) -> FollowCounts:
        return self.plan.counts

    def offer(self, seen: Iterable[tuple[str, int]]) -> None:
        self.plan.offer(seen)

    def learn_own(self, values: Iterable[tuple[str, int]]) -> None:
        """The own server's values of a page of its change feed that this admin served to a
        peer: fresh lower bounds, so a name within drift of a peer is not read again."""
        plan = self.plan
        for name, value in values:
            plan.learn(name, value)

    async def follow(self) -> None:
        """One round: read and raise what the peers' feeds brought; never raises."""
        async with self._lock:
            plan = self.plan
            if not plan.pending:
                return  # quiet: not even a status request
            plan.counts.rounds += 1
            chosen: list[tuple[str, int]] = []
            try:
                status = await self._control.status()
                if self._failing:
                    log.info("following the peers again: the server answers")
                    self._failing = False
                if status.fenced:  # it issues nothing; recovery raises its floors itself
                    return  # the names wait (bounded) until it is unfenced
                drift = status.drift
                chosen = plan.candidates(drift)
                if not chosen:
                    return
                plan.counts.checked += len(chosen)
                owns = await asyncio.gather(*(self._own_value(name) for name, _ in chosen))
                floors = plan.floors(drift, [(name, peer, own) for (name, peer), own
                                             in zip(chosen, owns, strict=True)])
                if floors:
                    reply = await self._control.raise_floors(floors)
                    plan.counts.raised += reply.raised
                    for name, floor in floors:
                        plan.learn(name, floor)
                    log.info("followed the peers: raised %d floor(s) of %d (e.g. %s to just below %d)",
                             reply.raised, len(floors), floors[0][0], floors[0][1] + 1)
            except SeqgenError as exc:
                plan.counts.failures += 1
                plan.put_back(chosen)
                if not self._failing:
                    log.warning("cannot follow the peers now (until the server answers): %s", exc)
                    self._failing = True
            except Exception:
                plan.counts.failures += 1
                log.exception("unexpected error following the peers")

    async def _own_value(self, name: str) -> int:
        try:
            return (await self._control.get_sequence(name)).current
        except NotFound:
            return 0
