"""Resize under the nemeses: grow 2 -> 3 and shrink 3 -> 2, twice, on the real templates, while
clients run and a fault hits the POST /resize at a random moment (tests/nemesis/resize_run.py).

The checks are the suite's (tests/nemesis/checker.py) over the whole history: no number
acknowledged twice, each server's numbers increasing under each layout, and numbers after a
resize above every number before it; then what each request left in /cluster, and the success
and latency of the calls before, during and after each resize and the restarts that follow it
(docs/reliability.md, "Resize under faults").
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.nemesis import netns
from tests.nemesis.checker import Stats, duplicates, late_calls, order_violations, stats
from tests.nemesis.cluster import ATTEMPT_TIMEOUT_S, DEADLINE_S
from tests.nemesis.outcome import skip_reason
from tests.nemesis.records import CallRecord
from tests.nemesis.resize_run import FENCED, NEW, PLAN, STAYING, ResizeCluster, ResizeEpisode, run_plan

pytestmark = pytest.mark.nemesis

RATE_PER_WORKER_S = 40.0
MAX_DURATION_S = 300.0
MIN_SUCCESS = 0.999
"""The suite's goal: with one faulty host, at least this share of calls succeeds."""
FAILOVER_P99_S = ATTEMPT_TIMEOUT_S + 0.1
"""Next to a resize (after it, while the servers restart), p99 is at most one failover: a call
that meets the restarting (or still faulty) server costs at most one attempt timeout. The
hedging goal of 100 ms (test_nemesis.py) is reported, not asserted, here: measured on this
machine at load 8 to 14, these windows' p99 was 20 to 567 ms (567: a loss of 30 % still on
after a quick resize; otherwise at most 193 ms; docs/reliability.md)."""
QUICK_RESIZE_S = 1.0
"""A first request that answered 200 within this: the fault did not stall the resize, and the
issue's goal holds over the resize itself (>= 99.9 % of calls succeed)."""
WINDOWS = ("before", "resize", "after", "restarts")


@dataclass
class ResizeRun:
    seed: int
    episodes: list[ResizeEpisode]
    histories: dict[str, list[CallRecord]]
    exits: dict[str, int | None]
    tables: str

    def context(self) -> str:
        return f"(seed {self.seed}; rerun with --nemesis-seed {self.seed})\n{self.tables}"

    def calls(self, lo: float, hi: float) -> list[CallRecord]:
        return [c for calls in self.histories.values() for c in calls if lo <= c.t0 < hi]


def windows(ep: ResizeEpisode) -> dict[str, tuple[float, float]]:
    """before: the 2 s before the first request; resize: from it until the request that
    answered 200 returned; after: the 3 s after; restarts: the servers restarted with the new
    count, one after the other (and, for a shrink, the retired one stopped)."""
    return {"before": (ep.t_before, ep.t_first),
            "resize": (ep.t_first, ep.t_done), "after": (ep.t_done, ep.t_restart),
            "restarts": (ep.t_restart, ep.t_end)}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f}"


def _cell(s: Stats) -> str:
    return f"{s.calls} / {s.failed} / {_ms(s.p50_s)} / {_ms(s.p99_s)} / {_ms(s.max_s)}"


def table(episodes: Sequence[ResizeEpisode], histories: dict[str, list[CallRecord]]) -> str:
    lines = ["| # | resize | fault after (s) | requests | resize (s) | before | resize | after "
             "| restarts |", "|---:|---|---:|---|---:|---|---|---|---|"]
    for i, ep in enumerate(episodes, start=1):
        cells = [_cell(stats(c for calls in histories.values() for c in calls if lo <= c.t0 < hi))
                 for lo, hi in windows(ep).values()]
        requests = "; ".join(str(a.status or a.error) for a in ep.attempts)[:120]
        if ep.restarted_early:
            requests += f" (restarted with the new count first: {', '.join(ep.restarted_early)})"
        lines.append(f"| {i} | {ep.label} | {ep.fault_delay_s:.2f} | {requests} "
                     f"| {ep.t_done - ep.t_first:.2f} | {' | '.join(cells)} |")
    lines.append("\n(calls / failed / p50 / p99 / max ms)\n")
    lines += [f"{i}. {a}" for i, ep in enumerate(episodes, start=1) for a in ep.attempts]
    lines += [f"{i}. steps (s): {ep.timeline()}" for i, ep in enumerate(episodes, start=1)]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def resize_run(request: pytest.FixtureRequest) -> Iterator[ResizeRun]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    seed_option = request.config.getoption("--nemesis-seed")
    seed = seed_option if seed_option is not None else random.SystemRandom().randrange(10**6)
    netns.remove_leftovers()
    tag = f"{netns.PREFIX}{os.getpid()}-z"
    root = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
    cluster = ResizeCluster(root, tag, RATE_PER_WORKER_S, MAX_DURATION_S)
    try:
        cluster.start()
        try:
            episodes = run_plan(cluster, seed)
        except Exception as exc:
            raise AssertionError(f"seed {seed}: {exc}\n{cluster.logs()}") from exc
        exits = cluster.stop_workers()
        histories = cluster.histories()
        tables = f"seed {seed}\n\n{table(episodes, histories)}\n"
        print(tables)
        yield ResizeRun(seed, episodes, histories, exits, tables)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def test_every_resize_finishes_by_the_same_request(resize_run: ResizeRun) -> None:
    """The request that failed under the fault, sent again after healing, finishes the resize."""
    assert [ep.kind for ep in resize_run.episodes] == [kind for kind, *_ in PLAN], resize_run.context()
    for ep in resize_run.episodes:
        last = ep.attempts[-1]
        assert last.status == 200, f"{ep.label}: {[str(a) for a in ep.attempts]}"
        assert isinstance(last.body, dict) and last.body["instances"] == ep.target, last
        for attempt in ep.attempts[:-1]:  # a failure says what is missing; none hangs
            assert attempt.status in (None, 409, 502, 503), attempt


def test_cluster_shows_the_new_count(resize_run: ResizeRun) -> None:
    for ep in resize_run.episodes:
        views = ep.views
        staying = list(STAYING) + ([NEW] if ep.kind == "grow" else [])
        for host in staying:
            got = {k: views[host][k] for k in ("instances", "fenced", "resize_to", "retired")}
            assert got == {"instances": ep.target, "fenced": False, "resize_to": None,
                           "retired": False}, (ep.label, host, views[host])
        if ep.kind == "shrink":
            assert (views[NEW]["retired"], views[NEW]["fenced"]) == (True, True), views[NEW]
            assert ep.retired_reply == FENCED, ep.retired_reply


def test_no_number_is_acknowledged_twice(resize_run: ResizeRun) -> None:
    acked = sum(1 for calls in resize_run.histories.values() for c in calls if c.value is not None)
    assert acked > 1000, "too few numbers to say anything"
    assert duplicates(resize_run.histories) == {}, resize_run.context()


def _layouts(run: ResizeRun) -> list[tuple[float, float, int]]:
    """(from, until, instances): the periods between resizes, each under one layout."""
    periods, since, count = [], 0.0, run.episodes[0].previous
    for ep in run.episodes:
        periods.append((since, ep.t_first, count))
        since, count = ep.t_done, ep.target
    periods.append((since, float("inf"), count))
    return periods


def test_each_server_issues_increasing_numbers_under_each_layout(resize_run: ResizeRun) -> None:
    """Within each period between two resizes, per server (residue mod that period's count):
    a call that began after another ended got a higher number."""
    for lo, hi, count in _layouts(resize_run):
        within = {label: [c for c in calls if lo <= c.t0 and c.t1 <= hi]
                  for label, calls in resize_run.histories.items()}
        violations = order_violations(within, count)
        assert [str(v) for v in violations[:10]] == [], resize_run.context()


def test_numbers_after_a_resize_are_above_every_number_before_it(resize_run: ResizeRun) -> None:
    """The boundaries lie above every number issued before the resize began."""
    every = [(c.t0, c.t1, c.value) for calls in resize_run.histories.values() for c in calls
             if c.value is not None]
    for ep in resize_run.episodes:
        before = [value for _, t1, value in every if t1 < ep.t_first]
        after = [value for t0, _, value in every if t0 > ep.t_done]
        assert before and after, ep.label
        assert max(before) < min(after), (ep.label, max(before), min(after))


def test_every_server_serves_under_the_new_layout(resize_run: ResizeRun) -> None:
    """Between a resize and the next, numbers of every residue of the new count (after a grow,
    the new server's too, residue 0 of 3)."""
    periods = _layouts(resize_run)[1:]
    for ep, (lo, hi, count) in zip(resize_run.episodes, periods, strict=True):
        residues = {c.value % count for c in resize_run.calls(lo, hi) if c.value is not None}
        assert residues == set(range(count)), (ep.label, residues)


def test_no_call_outlives_its_deadline(resize_run: ResizeRun) -> None:
    assert late_calls(resize_run.histories, DEADLINE_S + 1.0) == [], resize_run.context()


def test_clients_stop_cleanly(resize_run: ResizeRun) -> None:
    assert set(resize_run.exits.values()) == {0}, resize_run.exits


def _goal(s: Stats) -> list[str]:
    failures = []
    if s.calls == 0:
        failures.append("no calls")
    elif s.success_ratio < MIN_SUCCESS:
        failures.append(f"{s.failed} of {s.calls} failed ({dict(s.errors)})")
    if s.p99_s is not None and s.p99_s > FAILOVER_P99_S:
        failures.append(f"p99 {s.p99_s * 1000:.0f} ms > {FAILOVER_P99_S * 1000:.0f} ms")
    return failures


@pytest.mark.parametrize("window", ["before", "after", "restarts"])
def test_success_and_latency_around_each_resize(resize_run: ResizeRun, window: str) -> None:
    """Before the request, after it answered 200 (the fault may still be healing), and while
    the servers restart with the new count: >= 99.9 % succeed, p99 within one failover."""
    failures = [f"{ep.label}, {window}: {f}" for ep in resize_run.episodes
                for f in _goal(stats(resize_run.calls(*windows(ep)[window])))]
    assert failures == [], "\n".join(failures) + "\n" + resize_run.context()


def test_a_resize_the_fault_did_not_stall_keeps_the_clients_served(resize_run: ResizeRun) -> None:
    """Where the first request answered 200 at once, >= 99.9 % of the calls made during it
    succeeded (the issue's goal). A request that failed or waited on the fault leaves every
    server fenced until it finishes: those windows are reported, and the deadline check and
    the "after" window bound them."""
    quick = [ep for ep in resize_run.episodes
             if ep.attempts[0].status == 200 and ep.t_done - ep.t_first <= QUICK_RESIZE_S]
    if not quick:
        pytest.skip("every resize of this run was stalled or failed by its fault (see the table)")
    for ep in quick:
        during = stats(resize_run.calls(ep.t_first, ep.t_done))
        assert during.failed <= (1 - MIN_SUCCESS) * during.calls, (ep.label, during)
