"""Which proxy jobs are due for a hedge, and what is counted (seqgen_proxy.hedges)."""

from __future__ import annotations

from seqgen_common import hedging
from seqgen_proxy.hedges import Hedges
from seqgen_proxy.jobs import Job, Lane, Member
from seqgen_proxy.stats import ProxyStats


def job(count: int = 1) -> Job:
    return Job(Lane("n"), [Member([b"c"], b'["n","0"]', count, 0, 0.0)], count)


def test_a_job_is_due_after_the_delay_unless_settled_or_hedged() -> None:
    hedges = Hedges(enabled=True, limit=10)
    a, b, c = job(), job(), job()
    assert hedges.sent(a, 100.0) == 100.0 + hedging.CEILING_S  # nothing observed yet
    hedges.sent(b, 100.01)
    hedges.sent(c, 100.02)
    assert hedges.next_at() == 100.0 + hedging.CEILING_S
    assert hedges.due(100.0 + hedging.CEILING_S - 0.001) == []
    b.settled = True  # answered in time: never hedged
    c.hedge_backend = 1  # hedged already (cannot happen twice)
    assert hedges.due(101.0) == [a]
    assert hedges.next_at() is None


def test_the_due_queue_is_bounded_and_off_means_nothing() -> None:
    hedges = Hedges(enabled=True, limit=2)
    assert hedges.sent(job(), 1.0) is not None
    assert hedges.sent(job(), 1.0) is not None
    assert hedges.sent(job(), 1.0) is None  # full: this one is not hedged
    off = Hedges(enabled=False, limit=2)
    assert off.sent(job(), 1.0) is None
    assert not off.allow()
    off.observe(0.5)
    assert off.delay_s() == 0.0


def test_the_delay_follows_the_latency_and_the_budget_caps_hedges() -> None:
    hedges = Hedges(enabled=True, limit=1000)
    for _ in range(hedging.MIN_SAMPLES):
        hedges.observe(0.001)
    assert hedges.delay_s() == hedging.FLOOR_S
    allowed = 0
    for _ in range(1000):
        hedges.sent(job(), 0.0)
        allowed += hedges.allow()
    assert allowed <= hedging.BURST + 1000 // hedging.REQUESTS_PER_HEDGE


def test_late_answers_count_their_numbers_when_they_are_numbers() -> None:
    stats = ProxyStats(2)
    stats.late(job(5).count, success=True)
    stats.late(job(5).count, success=False)
    assert (stats.late_answers, stats.late_numbers) == (2, 5)
