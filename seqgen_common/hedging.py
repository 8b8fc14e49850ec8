"""When to hedge a request, and whether the budget allows it: pure logic, no zmq, no clock.

A hedge is a second attempt of a request, sent to the next healthy endpoint
when the first has not answered within the hedge delay; the first good answer
wins and the other one, when it comes, is counted and dropped (its numbers are
skipped). "The Tail at Scale" (Dean and Barroso) describes the technique.

The delay adapts to the latency observed: ``MULTIPLIER`` times the p99 of the
last ``WINDOW`` answered attempts (answers in time: a late answer, which came
after the other attempt had won, is not observed; it is the tail hedging cuts,
and it would raise the delay exactly while hedges are needed), never below ``FLOOR_S`` (a healthy host's
scheduling hiccups on a busy machine stay below it, so they do not hedge) and
never above ``CEILING_S`` (a lost server costs at most that much). Until
``MIN_SAMPLES`` latencies are known the delay is the ceiling. The p99 is
recomputed every ``RECOMPUTE_EVERY`` samples, not per request.

The budget is a token bucket counted in whole requests (no rounding): each
request earns one credit, a hedge costs ``REQUESTS_PER_HEDGE`` (20: 5 %), and
the bucket holds at most ``BURST`` hedges' worth. Over any stretch of N
requests at most ``BURST + N / REQUESTS_PER_HEDGE`` hedges go out, so a slow
cluster is not doubled in load by its own clients. The bucket starts full, so
the first requests after a fault hedge at once.

The Node.js client mirrors this module (clients/node/lib/hedging.js) with the
same constants; both are checked against the same vectors
(tests/unit/hedging_vectors.json).
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "BURST",
    "CEILING_S",
    "FLOOR_S",
    "MIN_SAMPLES",
    "MULTIPLIER",
    "RECOMPUTE_EVERY",
    "REQUESTS_PER_HEDGE",
    "WINDOW",
    "Hedging",
]

MULTIPLIER: Final = 2.0
"""The delay is this many times the recent p99 of observed latency."""
FLOOR_S: Final = 0.010
"""The shortest delay (seconds)."""
CEILING_S: Final = 0.050
"""The longest delay (seconds): what a lost server costs a call at most, plus a round trip."""
WINDOW: Final = 256
"""How many recent latencies the p99 is taken over."""
MIN_SAMPLES: Final = 16
"""Below this many latencies, the delay is the ceiling."""
RECOMPUTE_EVERY: Final = 32
"""The p99 is recomputed after this many new latencies."""
REQUESTS_PER_HEDGE: Final = 20
"""Requests that earn one hedge: hedges are at most 1/20 (5 %) of requests, plus the burst."""
BURST: Final = 10
"""The most hedges the bucket holds (and holds at first)."""
_FULL: Final = BURST * REQUESTS_PER_HEDGE


class Hedging:
    """The hedge delay and budget of one client (or one proxy). Not thread-safe by itself."""

    __slots__ = ("_count", "_credit", "_delay_s", "_ring", "_since")

    def __init__(self) -> None:
        self._ring: list[float] = [0.0] * WINDOW
        self._count = 0
        """Latencies observed in all (the ring holds the last WINDOW)."""
        self._since = 0
        """Latencies observed since the delay was last computed."""
        self._delay_s = CEILING_S
        self._credit = _FULL
        """Requests' worth of budget (a hedge costs REQUESTS_PER_HEDGE)."""

    @property
    def delay_s(self) -> float:
        """How long an attempt may go unanswered before the request is hedged."""
        return self._delay_s

    @property
    def credit(self) -> int:
        """The budget now, in requests (a hedge costs REQUESTS_PER_HEDGE)."""
        return self._credit

    def observe(self, latency_s: float) -> None:
        """An attempt was answered ``latency_s`` after it was sent."""
        self._ring[self._count % WINDOW] = latency_s
        self._count += 1
        self._since += 1
        if self._since >= RECOMPUTE_EVERY or self._count == MIN_SAMPLES:
            self._since = 0
            self._delay_s = self._compute()

    def p99_s(self) -> float | None:
        """The p99 of the latencies in the window (None below MIN_SAMPLES)."""
        held = min(self._count, WINDOW)
        if self._count < MIN_SAMPLES:
            return None
        ordered = sorted(self._ring[:held])
        return ordered[max(math.ceil(0.99 * held) - 1, 0)]

    def _compute(self) -> float:
        p99 = self.p99_s()
        if p99 is None:
            return CEILING_S
        return min(max(MULTIPLIER * p99, FLOOR_S), CEILING_S)

    def sent(self) -> None:
        """A request went out (its first attempt): it earns the budget its share."""
        if self._credit < _FULL:
            self._credit += 1

    def allow(self) -> bool:
        """Whether a hedge may go out now; True spends its budget."""
        if self._credit >= REQUESTS_PER_HEDGE:
            self._credit -= REQUESTS_PER_HEDGE
            return True
        return False
