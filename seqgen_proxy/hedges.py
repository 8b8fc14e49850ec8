"""When the proxy hedges a backend request, and what it counts: pure logic, no zmq, no clock.

A job (one backend request) unanswered within the hedge delay is sent to a
second healthy backend too, within the budget (seqgen_common.hedging, the
clients' rule and constants); the first answer that ends it goes to its
clients, the other one is counted (``ProxyStats.late``) and dropped (its
numbers are skipped). A
job is hedged once at most; the backend it lost on is marked down (probed,
and up again with its late answer or a probe's), so the following requests
do not each wait for the delay there.

``Hedges`` keeps the jobs due for a hedge in the order they were sent: the
delay changes slowly, so the oldest entry is always the first due (a
shortened delay only makes a few hedges late). The queue is bounded by
``limit`` (the proxy's --max-in-flight): a job sent while it is full is not
hedged.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from seqgen_common.hedging import Hedging

if TYPE_CHECKING:
    from seqgen_proxy.jobs import Job

__all__ = ["Hedges"]


class Hedges:
    """The hedge delay and budget of one proxy, and the jobs due for a hedge."""

    __slots__ = ("_due", "limit", "policy")

    def __init__(self, enabled: bool, limit: int) -> None:
        self.policy: Hedging | None = Hedging() if enabled else None
        """None: hedging is off (--no-hedge)."""
        self.limit = limit
        self._due: deque[tuple[float, Job]] = deque()

    def sent(self, job: Job, now: float) -> float | None:
        """The first attempt of ``job`` went out at ``now``: when its hedge is due (None: no
        hedge for it)."""
        policy = self.policy
        if policy is None:
            return None
        policy.sent()
        if len(self._due) >= self.limit:
            return None
        due = now + policy.delay_s
        self._due.append((due, job))
        return due

    def due(self, now: float) -> list[Job]:
        """The jobs whose hedge is due by ``now`` (those settled meanwhile are dropped)."""
        due, jobs = self._due, []
        while due and due[0][0] <= now:
            job = due.popleft()[1]
            if not job.settled and job.hedge_backend < 0:
                jobs.append(job)
        return jobs

    def next_at(self) -> float | None:
        """When the next hedge is due, if any is waiting."""
        return self._due[0][0] if self._due else None

    def delay_s(self) -> float:
        return self.policy.delay_s if self.policy is not None else 0.0

    def observe(self, latency_s: float) -> None:
        if self.policy is not None:
            self.policy.observe(latency_s)

    def allow(self) -> bool:
        """Whether the budget allows one more hedge now (True spends it)."""
        return self.policy is not None and self.policy.allow()
