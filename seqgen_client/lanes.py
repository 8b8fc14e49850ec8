"""Coalescing and prefetch: which calls of one name share one request. Pure logic, no I/O.

Each name has a lane. A ``next`` call that finds the lane idle leads at once:
it gets a ``Batch`` and sends one request for it. A call that finds a request
of its name in flight waits in the lane. When that request settles, every
waiting call (at most 1,000) goes out together in one request with
``count`` = the number of waiting calls, led by the first of them. A call
never waits on a timer to gather a batch: at low load every call leads.

Numbers are handed out in arrival order, ascending within a request. A caller
that gave up (its deadline, or cancellation) after its request was sent does
not take its number: it goes to the next caller, then to the prefetch buffer
(``prefetch`` > 1), and only when nobody wants it is it lost, and counted
(``Stats.lost_numbers``). An error reply reaches every caller of the request;
failover (another endpoint) is the leader's, within its request. A leader
that gives up hands its waiting callers back to the lane, and the first of
them leads a new request.

``prefetch`` > 1 makes every request ask for at least that many numbers; the
ones nobody waits for go to a per-name buffer that later calls take from
without a round trip. Without coalescing, a request carries its leader only
(and with prefetch 1, calls never wait in a lane at all).

Callers are objects of the client's own kind (a thread's event, an asyncio
future) behind the small ``Caller`` protocol; the client holds any lock.
``settle``, ``fail`` and ``abandon`` return the lane's next batch, if callers
wait: the client starts it and hands it to its first caller (the sync client
sends its request at once, so the new leader's wake-up overlaps the round trip).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from seqgen_common.errors import SeqgenError
from seqgen_common.limits import MAX_COUNT

__all__ = ["Batch", "Caller", "Lanes", "Stats"]


class Caller(Protocol):
    """One ``next`` call waiting for its number."""

    def gone(self) -> bool:
        """True once the caller gave up (deadline, cancellation) or was answered."""

    def give(self, value: int) -> None:
        """Its number."""

    def fail(self, error: SeqgenError) -> None:
        """The error that ends its call."""


C = TypeVar("C", bound=Caller)
"""The callers of one client (its own kind of waiter)."""


@dataclass(slots=True)
class Batch(Generic[C]):
    """One request of a lane: its callers, in arrival order, and how many numbers it asks."""

    name: str
    callers: list[C]
    count: int


@dataclass(slots=True)
class Stats:
    """What the client did since it was made (``Client.stats``, ``AsyncClient.stats``).

    The Node.js client's ``stats`` has the same counters (camelCase there); docs/client.md,
    "Statistics", is the one table of what each counts, for both.
    """

    requests: int = 0
    """Requests sent for ``next`` calls (a failover retry or a hedge is part of its request)."""
    calls: int = 0
    """``next`` calls served with a number (by a request, or from the prefetch buffer)."""
    coalesced_calls: int = 0
    """``next`` calls served by a request they shared with at least one other call."""
    lost_numbers: int = 0
    """Numbers that came for this client and that no caller took (callers that gave up, late
    answers)."""
    attempts: int = 0
    """Requests put on the wire to one endpoint, by every kind of call."""
    timeouts: int = 0
    """Attempts that got no answer within their timeout."""
    hedges: int = 0
    """Extra attempts sent because the first had not answered within the hedge delay."""
    hedge_wins: int = 0
    """Requests answered by their hedge before their first attempt."""
    late_answers: int = 0
    """Answers that came after the other attempt of their request had won; never delivered."""


class _Lane(Generic[C]):
    __slots__ = ("buffer", "busy", "waiting")

    def __init__(self) -> None:
        self.buffer: deque[int] = deque()
        self.waiting: deque[C] = deque()
        self.busy = False
        """A request of this lane is in flight."""


class Lanes(Generic[C]):
    """The lanes of one client (one process, one event loop)."""

    __slots__ = ("_lanes", "coalesce", "prefetch", "stats")

    def __init__(self, prefetch: int, coalesce: bool) -> None:
        self.prefetch = prefetch
        self.coalesce = coalesce
        self._lanes: dict[str, _Lane[C]] = {}
        self.stats = Stats()

    def join(self, name: str, caller: C) -> Batch[C] | None:
        """A new call: served from the buffer or queued (None), or the Batch it leads."""
        if not self.coalesce and self.prefetch == 1:
            self.stats.requests += 1
            return Batch(name, [caller], 1)
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane()
        if lane.buffer:
            self.stats.calls += 1
            caller.give(lane.buffer.popleft())
            return None
        if lane.busy:
            lane.waiting.append(caller)
            return None
        lane.busy = True
        self.stats.requests += 1
        return Batch(name, [caller], self.prefetch)

    def go_alone(self, name: str) -> bool:
        """Whether a new call for ``name`` may go out at once on its own (the lane is idle,
        nothing buffered); the lane is then busy until ``alone_done``. The sync client's
        fast path: no caller object for the common uncontended call."""
        if not self.coalesce and self.prefetch == 1:
            self.stats.requests += 1
            return True
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane()
        elif lane.busy or lane.buffer:
            return False
        lane.busy = True
        self.stats.requests += 1
        return True

    def alone_done(self, name: str, outcome: list[int] | SeqgenError) -> Batch[C] | None:
        """The request of a call that went alone ended: the lane's next batch, if any.

        The call takes the first number itself; the rest (prefetch) go to waiting
        callers, then to the buffer.
        """
        if not isinstance(outcome, SeqgenError):
            self.stats.calls += 1
            if len(outcome) > 1:
                return self.settle(Batch(name, [], len(outcome) - 1), outcome[1:])
        return self._next(name)

    def _batch(self, name: str, callers: list[C]) -> Batch[C]:
        self.stats.requests += 1
        return Batch(name, callers, max(len(callers), self.prefetch))

    def settle(self, batch: Batch[C], values: list[int]) -> Batch[C] | None:
        """The request of ``batch`` brought ``values`` (ascending): hand them out."""
        stats = self.stats
        callers = batch.callers
        if len(values) == 1 and not callers[0].gone():  # one call alone: the common case
            stats.calls += 1
            callers[0].give(values[0])
            return self._next(batch.name)
        numbers = iter(values)
        served = 0
        for caller in batch.callers:
            if not caller.gone():
                caller.give(next(numbers))
                served += 1
        stats.calls += served
        if served > 1:
            stats.coalesced_calls += served
        for value in numbers:  # numbers nobody in the batch took
            self.give_back(batch.name, value)
        return self._next(batch.name)

    def give_back(self, name: str, value: int) -> None:
        """A number nobody took (its caller gave up after it came): to the next caller that
        waits, else to the prefetch buffer, else counted lost."""
        lane = self._lanes.get(name)
        if lane is not None and self._serve_waiting(lane, value):
            return
        if lane is not None and self.prefetch > 1:
            lane.buffer.append(value)
        else:
            self.stats.lost_numbers += 1

    def _serve_waiting(self, lane: _Lane[C], value: int) -> bool:
        while lane.waiting:
            caller = lane.waiting.popleft()
            if not caller.gone():
                self.stats.calls += 1
                caller.give(value)
                return True
        return False

    def fail(self, batch: Batch[C], error: SeqgenError) -> Batch[C] | None:
        """The request of ``batch`` ended with ``error``: it reaches every caller of it."""
        for caller in batch.callers:
            if not caller.gone():
                caller.fail(error)
        return self._next(batch.name)

    def abandon(self, batch: Batch[C], leader: C | None) -> Batch[C] | None:
        """The leader of ``batch`` gave up (or nobody can take its reply): its other callers
        go back to the front of the lane."""
        lane = self._lanes.get(batch.name)
        others = [caller for caller in batch.callers if caller is not leader and not caller.gone()]
        if lane is None:  # a batch without a lane (no coalescing, no prefetch): nobody else
            return None
        lane.waiting.extendleft(reversed(others))
        return self._next(batch.name)

    def _next(self, name: str) -> Batch[C] | None:
        """The lane's request settled: the next batch, of the callers that wait, if any."""
        lane = self._lanes.get(name)
        if lane is None:
            return None
        waiting = lane.waiting
        while waiting and waiting[0].gone():
            waiting.popleft()
        if not waiting:
            lane.busy = False  # kept, like the client's memory of the name's last number
            return None
        taken = [waiting.popleft() for _ in range(min(len(waiting), MAX_COUNT if self.coalesce else 1))]
        return self._batch(name, [caller for caller in taken if not caller.gone()])

    def forget(self) -> None:
        """Drop every lane and buffered number (a forked child, a closed client)."""
        self._lanes.clear()
