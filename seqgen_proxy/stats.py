"""What the relay counts for ``--metrics``, beyond the counters it logs at stop. No zmq, no I/O.

The relay's loop bumps these (a few plain additions per request); the
exporter's thread (seqgen_proxy.metrics) reads them at scrape time. Readers
copy a dict or list in one step (atomic under the GIL), so a scrape never sees
a container change size under it and the loop never waits for a scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from seqgen_common.errors import ErrorCode

__all__ = ["LATENCY_BUCKETS_S", "OTHER_OUTCOME", "Latency", "ProxyStats"]

LATENCY_BUCKETS_S: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                            1.0, 2.5, 5.0)
"""Upper bounds of the latency histogram's buckets (one more bucket holds the rest)."""
OTHER_OUTCOME: Final = "OTHER"
"""The outcome of a reply that is neither a success nor a known error code."""
_CODES: Final = frozenset(code.encode() for code in ErrorCode)
_OTHER: Final = OTHER_OUTCOME.encode()
_OK_HEAD: Final = b"[null"


class Latency:
    """A histogram of one backend's answer times: counts per bucket (not cumulative) and a sum."""

    __slots__ = ("counts", "sum_s")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self.sum_s += seconds

    def snapshot(self) -> tuple[list[int], float]:
        """(cumulative counts per bucket, the last being +Inf, sum of seconds)."""
        counts, total = list(self.counts), self.sum_s
        cumulative, running = [], 0
        for count in counts:
            running += count
            cumulative.append(running)
        return cumulative, total


class ProxyStats:
    """Client replies by outcome, numbers relayed, caps applied, coalescing, per-backend figures."""

    __slots__ = ("caps_applied", "coalesced_jobs", "coalesced_numbers", "errors", "latency",
                 "marked_down", "numbers", "ok")

    def __init__(self, backends: int) -> None:
        self.ok = 0
        """Success replies handed to clients."""
        self.numbers = 0
        """Numbers in those replies."""
        self.errors: dict[bytes, int] = dict.fromkeys([*sorted(_CODES), _OTHER], 0)
        """Error replies to clients by code (the proxy's own and the backends')."""
        self.caps_applied = 0
        """Requests whose ``last`` the cap lowered."""
        self.coalesced_jobs = 0
        """Backend requests that carried more than one client request."""
        self.coalesced_numbers = 0
        """Numbers asked for by those backend requests."""
        self.latency = [Latency() for _ in range(backends)]
        """Per backend: time from sending an attempt to its answer, as the loop saw it."""
        self.marked_down = [0] * backends
        """Per backend: how often it went from up to down."""

    def replied(self, reply: bytes) -> None:
        """A reply was handed to a client (or meant for one that has left)."""
        if reply.startswith(_OK_HEAD):
            self.ok += 1
            self.numbers += reply.count(b",")  # [null,"v1",...,"vN"]: one comma per number
            return
        code = reply[2:reply.find(b'"', 2)]  # ["CODE","message"]
        self.errors[code if code in _CODES else _OTHER] += 1

    def outcomes(self) -> dict[str, int]:
        """Replies by outcome: "OK", each error code, "OTHER" (a consistent copy)."""
        errors = dict(self.errors)
        return {"OK": self.ok, **{code.decode(): count for code, count in errors.items()}}
