"""What the orchestrator asks a load worker to do, and what the worker answers.

One JSON line each way (see ``loadgen``). Every load starts at the wall-clock
time ``start`` so that all workers of a measurement run in the same window.
"""

from __future__ import annotations

import msgspec

__all__ = ["Command", "Result"]


class Command(msgspec.Struct, kw_only=True, frozen=True):
    mode: str
    """pipeline, lockstep, burst, async-floor, threads-raw, threads-handoff (raw ZeroMQ), client,
    client-latency, async-client, threads-client (seqgen_client), pg, redis (peers)."""
    endpoint: str
    start: float
    """Wall-clock time (time.time()) at which the timed window opens."""
    seconds: float = 1.0
    """Length of the window: no new request is sent after it."""
    name: str = "perf"
    depth: int = 1
    """Requests in flight (pipeline, burst) or concurrent callers (async, threads)."""
    count: int = 1
    """Numbers per request (the protocol's ``count``)."""
    values: bool = False
    """lockstep: decode each reply and send the highest number as ``last``, as a client must."""
    prefetch: int = 1
    coalesce: bool | None = None
    """Pass ``coalesce=`` to the seqgen client; None: leave its default."""
    hedge: bool | None = None
    """Pass ``hedge=`` to the seqgen client; None: leave its default. With hedging, ``endpoint``
    may list several endpoints, comma-separated."""
    quiet_s: float = 5.0
    """burst: give up once no reply came for this long."""
    cap_s: float = 120.0
    """burst: give up after this long in any case."""
    tag: str = ""
    """burst: makes the names of this burst unique."""


class Result(msgspec.Struct, kw_only=True):
    ok: int = 0
    """Replies that carried numbers (or calls that returned one)."""
    numbers: int = 0
    errors: dict[str, int] = msgspec.field(default_factory=dict)
    """Error replies by code."""
    seconds: float = 0.0
    """Length of the window as this worker saw it (burst: until its last reply)."""
    cpu_s: float = 0.0
    """CPU time of this worker process (all threads) during the window."""
    sent: int = 0
    unanswered: int = 0
    duplicates: int = 0
    latencies_us: list[float] = msgspec.field(default_factory=list)
    """client-latency: p50 and p99 of one call, in µs."""
    requests: int = 0
    """seqgen clients: requests sent (``stats.requests``, or ``attempts`` for next_many)."""
    hedges: int = 0
    """seqgen clients: hedges sent (``stats.hedges``)."""
    skipped: int = 0
    """seqgen clients: numbers issued and never delivered (``stats.lost_numbers``)."""
    failure: str | None = None
    """Set when the load itself failed (an exception in the worker)."""

    @property
    def answered(self) -> int:
        return self.ok + sum(self.errors.values())
