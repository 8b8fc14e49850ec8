"""The Jepsen-style checker: pure functions over the recorded history of every client.

- Uniqueness: no number acknowledged twice, across every client of the cluster.
- Each server's numbers increase in real time: server k of n issues the numbers
  congruent to k mod n, one name's numbers strictly increasing, across crashes.
  So if call A ended before call B started (both acknowledged by the same
  server, any clients), A's number must be below B's. Client timestamps bracket
  the moment the server issued the number, which makes this check exact.
- Per window of time: calls, failures, latency percentiles.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tests.nemesis.records import CallRecord


@dataclass(frozen=True)
class Stats:
    calls: int
    failed: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def succeeded(self) -> int:
        return self.calls - self.failed

    @property
    def success_ratio(self) -> float:
        return self.succeeded / self.calls if self.calls else math.nan


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` (0..100) of ascending values; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def in_window(calls: Iterable[CallRecord], lo: float, hi: float) -> list[CallRecord]:
    """The calls that started in [lo, hi)."""
    return [c for c in calls if lo <= c.t0 < hi]


def stats(calls: Iterable[CallRecord]) -> Stats:
    calls = list(calls)
    latencies = sorted(c.t1 - c.t0 for c in calls)
    errors = Counter(c.error or "?" for c in calls if c.value is None)
    return Stats(
        calls=len(calls),
        failed=sum(errors.values()),
        p50_s=percentile(latencies, 50),
        p99_s=percentile(latencies, 99),
        max_s=latencies[-1] if latencies else None,
        errors=errors,
    )


def duplicates(histories: Mapping[str, Sequence[CallRecord]]) -> dict[int, list[str]]:
    """Numbers acknowledged more than once, with the clients that got them."""
    owners: dict[int, list[str]] = {}
    for client, calls in histories.items():
        for call in calls:
            if call.value is not None:
                owners.setdefault(call.value, []).append(client)
    return {value: who for value, who in owners.items() if len(who) > 1}


@dataclass(frozen=True)
class OrderViolation:
    server: int
    """The residue (instance mod instances) of the server that issued both numbers."""
    earlier: tuple[str, CallRecord]
    later: tuple[str, CallRecord]

    def __str__(self) -> str:
        (ca, a), (cb, b) = self.earlier, self.later
        return (f"server residue {self.server}: {ca} got {a.value} (ended {a.t1:.3f}) "
                f"but {cb} got {b.value} later (started {b.t0:.3f})")


def order_violations(histories: Mapping[str, Sequence[CallRecord]],
                     instances: int) -> list[OrderViolation]:
    """Pairs A, B of one server where A ended before B started but A's number >= B's."""
    violations: list[OrderViolation] = []
    for residue in range(instances):
        acked = [(client, c) for client, calls in histories.items() for c in calls
                 if c.value is not None and c.value % instances == residue]
        if not acked:
            continue
        by_end = sorted(acked, key=lambda item: item[1].t1)
        ends = [c.t1 for _, c in by_end]
        best: list[tuple[str, CallRecord]] = []
        for item in by_end:  # best[i]: the highest number among the i+1 earliest-ending calls
            best.append(item if not best or item[1].value > best[-1][1].value  # type: ignore[operator]
                        else best[-1])
        for client, call in acked:
            before = bisect_left(ends, call.t0)  # calls that ended strictly before this one began
            if before and best[before - 1][1].value >= call.value:  # type: ignore[operator]
                violations.append(OrderViolation(residue, best[before - 1], (client, call)))
    return violations


def calls_between(histories: Mapping[str, Sequence[CallRecord]], lo: float, hi: float) -> int:
    """How many calls (all clients) started in [lo, hi)."""
    return sum(1 for calls in histories.values() for c in calls if lo <= c.t0 < hi)


def late_calls(histories: Mapping[str, Sequence[CallRecord]], limit_s: float) -> list[tuple[str, float]]:
    """Calls that took longer than ``limit_s`` (the deadline plus slack): a call must never hang."""
    return [(client, c.t1 - c.t0) for client, calls in histories.items() for c in calls
            if c.t1 - c.t0 > limit_s]
