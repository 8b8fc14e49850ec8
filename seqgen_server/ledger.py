"""Per-name state of a server: what was issued and what is durable. Pure logic.

``cur[name]`` is the highest number issued (or the floor), ``mark[name]`` the
durable high-water mark. A number may leave the server only when it is at
most ``mark``. Marks are raised in batches by the store writer: the ledger
collects the wanted marks (``take_batch``) and learns the outcome
(``batch_done``).

Reservation: a mark is raised a *span* of own numbers past the last number
issued, and the refill is asked for when less than half of the span is left,
so a steady stream of requests rarely waits for the disk. The span adapts to
the name's rate: it starts at MIN_SPAN own numbers, doubles when a name needs
a refill again within HOT_S seconds and halves when it does not, never
exceeding ``reserve``. A crash skips at most the span, so a quiet name (an
invoice a minute) loses a handful of numbers and only a busy one up to
``reserve``. Spans are remembered for at most HOT_NAMES names (LRU).

Change tracking (for the witnesses' change feed, seqgen_server.changes): every
name whose ``cur`` moves is added to ``changed`` (one set.add per request);
``take_changed`` hands the set over and starts a new one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from seqgen_common.errors import Conflict, InternalError, Unavailable
from seqgen_common.limits import MAX_VALUE
from seqgen_server.allocator import Allocation, Allocator

__all__ = ["HOT_NAMES", "HOT_S", "MIN_SPAN", "Ledger"]

MIN_SPAN: Final = 16
"""Own numbers reserved for a name that is not busy."""
HOT_S: Final = 1.0
"""A refill sooner than this after the last one doubles the name's span."""
HOT_NAMES: Final = 10_000
"""Names whose span and last refill time are remembered."""


class Ledger:
    """Issued and durable numbers per name; the allocation rule applied to them."""

    def __init__(
        self,
        allocator: Allocator,
        reserve: int,
        marks: dict[str, int],
        max_sequences: int,
        clock: Callable[[], float],
    ) -> None:
        self.allocator = allocator
        self.max_sequences = max_sequences
        self._reserve = reserve
        self._spans(allocator.instances)
        self._clock = clock
        self._hot: OrderedDict[str, tuple[int, float]] = OrderedDict()
        """name -> (span, time of its last refill), least recently refilled first."""
        self.mark = marks
        self.highest_mark = max(marks.values(), default=0)
        """The highest of the marks (how close the busiest name is to MAX_VALUE)."""
        self.cur = dict(marks)
        self.wanted: dict[str, int] = {}
        """Marks to write in the next batch."""
        self.in_flight: dict[str, int] = {}
        """Marks being written now (at most one batch at a time)."""
        self.changed: set[str] = set()
        """Names whose ``cur`` moved since the last ``take_changed``."""

    def _spans(self, n: int) -> None:
        self.max_span = max(self._reserve, 1) * n
        """The farthest past the last number issued that a mark may reach."""
        self.min_span = min(MIN_SPAN * n, self.max_span)
        self._low_water = self.max_span // 2

    def relayout(self, instances: int) -> None:
        """Issue under the residues of ``instances`` servers from now on (a resize)."""
        self.allocator.relayout(instances)
        self._spans(instances)

    def __len__(self) -> int:
        return len(self.cur)

    def issue(self, name: str, last: int, count: int, *,
              may_wait: Callable[[], bool] | None = None) -> Allocation:
        """Allocate ``count`` numbers and ask for a mark that covers them.

        Raises ExhaustedError (nothing changes) or InternalError when a new
        name would pass ``max_sequences``. When the numbers are not durable yet
        and ``may_wait()`` says no (asked only then, not for every request),
        nothing is allocated: Unavailable (overloaded) is raised instead, and
        only the refill they need is asked for.
        """
        cur = self.cur.get(name)
        if cur is None:
            if len(self.cur) >= self.max_sequences:
                raise InternalError(
                    f"this server holds its maximum of {self.max_sequences} sequences"
                )
            cur = 0
        allocation = self.allocator.allocate(cur, last, count)
        mark = self.mark.get(name, 0)
        if allocation.last > mark - self._low_water:
            self._refill(name, allocation.last)
            if allocation.last > mark and may_wait is not None and not may_wait():
                raise Unavailable(
                    "overloaded: too many replies wait for the disk; nothing was issued"
                )
        self.cur[name] = allocation.last
        self.changed.add(name)
        return allocation

    def span(self, name: str) -> int:
        """The current reservation span of ``name`` (in numbers, not own numbers)."""
        entry = self._hot.get(name)
        return entry[0] if entry is not None else self.min_span

    def _refill(self, name: str, issued: int) -> None:
        promised = max(
            self.mark.get(name, 0), self.in_flight.get(name, 0), self.wanted.get(name, 0)
        )
        span = self.span(name)
        if issued <= promised - span // 2:
            return
        now = self._clock()
        entry = self._hot.pop(name, None)
        if entry is not None:
            span = min(span * 2, self.max_span) if now - entry[1] < HOT_S else max(span // 2, self.min_span)
        self._hot[name] = (span, now)
        if len(self._hot) > HOT_NAMES:
            self._hot.popitem(last=False)
        self.wanted[name] = min(issued + span, MAX_VALUE)

    def is_durable(self, name: str, value: int) -> bool:
        return value <= self.mark.get(name, 0)

    def raise_floor(self, name: str, value: int) -> None:
        """The next number for ``name`` will be greater than ``value``; Conflict if
        numbers above ``value`` were already issued. Durable once its batch is done."""
        cur = self.cur.get(name)
        if cur is None and len(self.cur) >= self.max_sequences:
            raise InternalError(f"this server holds its maximum of {self.max_sequences} sequences")
        if cur is not None and value < cur:
            raise Conflict(
                f"cannot lower {name!r} to {value}: numbers up to {cur} were already issued; "
                "floors only move forward", current=cur)
        self.cur[name] = value
        self.changed.add(name)
        if value > self.mark.get(name, 0):
            self.wanted[name] = max(self.wanted.get(name, 0), value)

    def take_changed(self) -> set[str]:
        """The names whose ``cur`` moved since the last call (and forget them)."""
        changed, self.changed = self.changed, set()
        return changed

    def take_batch(self) -> dict[str, int] | None:
        """The marks to write next, or None while a batch is in flight or none is wanted."""
        if self.in_flight or not self.wanted:
            return None
        self.in_flight, self.wanted = self.wanted, {}
        return self.in_flight

    def batch_done(self, ok: bool) -> None:
        """Record the outcome of the batch in flight."""
        if ok:
            mark = self.mark
            for name, value in self.in_flight.items():
                if value > mark.get(name, 0):
                    mark[name] = value
            self.highest_mark = max(self.highest_mark, max(self.in_flight.values(), default=0))
        self.in_flight = {}

    def exact_marks(self) -> list[tuple[str, int]]:
        """Marks lowered to exactly what was issued, for a clean stop (only names that differ)."""
        mark = self.mark
        return [(name, cur) for name, cur in self.cur.items() if mark.get(name) != cur]
