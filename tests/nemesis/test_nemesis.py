"""HA across real hosts: the nemeses against 3 server hosts and 2 client hosts, then the checks.

The schedule runs once per module (the ``nemesis_run`` fixture: every fault
alone, then a random sequence); each test below checks one goal over the
recorded history. See docs/reliability.md for the table of a real run.
"""

from __future__ import annotations

import pytest

from tests.nemesis.cluster import ATTEMPT_TIMEOUT_S, DRIFT, node_missing
from tests.nemesis.outcome import NemesisRun
from tests.nemesis.report import Row

pytestmark = pytest.mark.nemesis

MIN_SUCCESS = 0.999
"""With one faulty server host, at least this share of calls succeeds."""
P99_LIMIT_S = 0.1
"""With one faulty server host, p99 latency during the fault is at most this: the clients and
proxies hedge (issue 27), so a lost host costs a call about one hedge delay (at most 50 ms), not
an attempt timeout (1 s). Measured 2026-12-06: 7 to 54 ms in every such row (docs/reliability.md)."""
LOADED_EXTRA_S = 0.05
"""When the machine itself is so loaded that the clients' p99 *before* a fault already passes
P99_LIMIT_S - LOADED_EXTRA_S, the fault may add at most this (the hedge delay's ceiling) to it:
the goal is about what a lost host costs, and a shared 2-core CI machine can make p99 near 100 ms
with no fault at all (seen once: 94 to 118 ms before the faults). On a machine that is not that
loaded, the limit is P99_LIMIT_S itself."""

CATCH_UP_MAX_REQUESTS = 3
"""A server that fell far behind (more than twice drift) is within drift of the others again after
this many of its own requests. Measured on 2026-11-27: 1 in each of the 41 such episodes of a
soak and two bounded runs: its first request carries a recent ``last``. A lag of about drift is
the servers' steady state ("within about drift"), not falling behind: there the count wanders
(1 to 3 measured) and is reported, not judged."""
FAR_BEHIND = 2 * DRIFT

ONE_SERVER_HOST = ("isolate", "one-way", "flap", "loss-10%", "loss-30%", "sigstop", "kill-9-host",
                   "kill-9-programs")


def _alone(run: NemesisRun, kind: str) -> Row:
    rows = [r for r in run.rows if r.episode.phase == "alone" and r.episode.nemesis.kind == kind]
    assert len(rows) == 1, [r.episode.label for r in run.rows]
    return rows[0]


def _goal_failures(row: Row) -> list[str]:
    d = row.during
    failures = []
    if d.calls == 0:
        failures.append("no calls during the fault")
    elif d.success_ratio < MIN_SUCCESS:
        failures.append(f"{d.failed} of {d.calls} calls failed ({dict(d.errors)})")
    limit_s = p99_limit_s(row)
    if d.p99_s is not None and d.p99_s > limit_s:
        failures.append(f"p99 {d.p99_s * 1000:.0f} ms > {limit_s * 1000:.0f} ms")
    return [f"{row.episode.label}: {f}" for f in failures]


def p99_limit_s(row: Row) -> float:
    """P99_LIMIT_S, or on a machine loaded before the fault, its p99 then + LOADED_EXTRA_S."""
    before = row.before.p99_s
    return P99_LIMIT_S if before is None else max(P99_LIMIT_S, before + LOADED_EXTRA_S)


def test_no_number_is_acknowledged_twice(nemesis_run: NemesisRun) -> None:
    acked = sum(1 for calls in nemesis_run.histories.values() for c in calls if c.value is not None)
    assert acked > 1000, "too few numbers to say anything"
    assert nemesis_run.twice == {}, nemesis_run.context()


def test_each_server_issues_increasing_numbers(nemesis_run: NemesisRun) -> None:
    """Per server (residue), a call that began after another ended got a higher number."""
    assert [str(v) for v in nemesis_run.violations[:20]] == [], nemesis_run.context()


def test_no_call_outlives_its_deadline(nemesis_run: NemesisRun) -> None:
    assert nemesis_run.late == [], nemesis_run.context()


def test_clients_stop_cleanly(nemesis_run: NemesisRun) -> None:
    assert set(nemesis_run.exits.values()) == {0}, nemesis_run.exits


@pytest.mark.parametrize("kind", ONE_SERVER_HOST)
def test_one_faulty_server_host(nemesis_run: NemesisRun, kind: str) -> None:
    """>= 99.9 % of calls succeed and p99 <= 100 ms (hedging), over every client."""
    assert _goal_failures(_alone(nemesis_run, kind)) == [], nemesis_run.context()


def test_random_sequence_of_single_host_faults(nemesis_run: NemesisRun) -> None:
    rows = [r for r in nemesis_run.rows if r.episode.phase == "random"]
    assert len(rows) == nemesis_run.schedule.random_episodes
    failures = [f for r in rows for f in _goal_failures(r)]
    assert failures == [], nemesis_run.context()


def test_proxy_host_isolated_its_clients_fail_over(nemesis_run: NemesisRun) -> None:
    """The clients of the other client host, which list both proxies, go on through the other."""
    row = _alone(nemesis_run, "isolate-proxy-host")
    assert row.judged and all(nemesis_run.host_of[c] != "c1" for c in row.judged)
    through_proxies = [c for c in row.judged if c.endswith("-proxies")]
    assert through_proxies, row.judged
    for label in through_proxies:
        assert row.per_client[label][1].succeeded > 0, label
    assert _goal_failures(row) == [], nemesis_run.context()


def test_all_but_one_isolated_the_survivor_serves(nemesis_run: NemesisRun) -> None:
    row = _alone(nemesis_run, "all-but-one")
    for label, (_, during, _) in row.per_client.items():
        assert during.succeeded > 0, f"{label} got no number from the survivor\n{nemesis_run.context()}"
    assert row.during.success_ratio >= MIN_SUCCESS, nemesis_run.context()


def test_servers_catch_up_after_healing(nemesis_run: NemesisRun) -> None:
    """A server that fell behind is back within drift of the others after a bounded number of its
    own requests, and the admins then show values within drift of each other."""
    far = [(row, cu) for row in nemesis_run.rows for cu in row.catch_ups if cu.lag_at_heal > FAR_BEHIND]
    assert far, "no fault left a server far behind: the check proves nothing"
    for row, cu in far:
        assert cu.requests is not None and cu.requests <= CATCH_UP_MAX_REQUESTS, (
            f"{row.episode.label}: {cu}\n{nemesis_run.context()}")
    for row in nemesis_run.rows:
        converge = row.episode.converge
        assert converge["ok"], f"{row.episode.label}: {converge}\n{nemesis_run.context()}"


HEALED_SLACK_S = 1.5
"""Beyond the back-off rule, how late a direct client may first use a healed server (the pacing
of its calls, 40 per second per process, and a busy machine)."""


def _direct(run: NemesisRun, node: bool) -> list[str]:
    return [label for label in run.histories
            if label.endswith("-direct") and ("-node-" in label) == node]


def test_node_clients_run_next_to_the_python_ones(nemesis_run: NemesisRun) -> None:
    """Both call forms of the Node.js client, through the proxies and straight to the servers."""
    missing = node_missing()
    if missing is not None:
        pytest.skip(f"no Node.js clients in this run: {missing}")
    node = {label: calls for label, calls in nemesis_run.histories.items() if "-node-" in label}
    assert {label.split("-", 1)[1] for label in node} == {
        "node-callback-proxies", "node-promise-direct", "node-promise-proxies", "node-callback-direct"}
    for label, calls in node.items():
        assert sum(1 for c in calls if c.value is not None) > 1000, label


def test_direct_clients_use_a_healed_server_within_the_back_off_rule(nemesis_run: NemesisRun) -> None:
    """After each fault of a server, every client that calls the servers directly, Python and
    Node.js alike, gets a number from it again within the rule they share: a failed endpoint is
    probed again after a back-off that doubles from 1 s, so the probe after healing comes at the
    latest the fault's duration plus two attempt timeouts plus 1 s after the host answers again
    (plus HEALED_SLACK_S; measured once: 7.4 s after a 3.3 s loss of 30 %, whose probes kept
    failing until it healed). A fault that healed too near the end of the run is not judged.

    Which client comes back first is chance (where each one's probes fall against the heal),
    so clients are not compared with each other here; tests/nemesis/test_recovery.py measures
    the sockets themselves after a partition, one endpoint per client, no back-off."""
    direct = _direct(nemesis_run, False) + _direct(nemesis_run, True)
    if node_missing() is None:
        assert _direct(nemesis_run, True), "the Node.js clients that call the servers directly"
    run_end = max(c.t1 for calls in nemesis_run.histories.values() for c in calls)
    compared = 0
    late = []
    for row in nemesis_run.rows:
        ep = row.episode
        # From healing: the host back (a killed host boots first); a probe sent just before
        # healing can still time out after it (one attempt timeout); the back-off it then
        # starts is at most the time since the first failure plus 1 s (1 s doubling after each
        # failed probe): fault + timeout + 1 s; then that probe's own attempt.
        limit = ((ep.t_ready - ep.t_heal) + (ep.t_heal - ep.t_start) + 2 * ATTEMPT_TIMEOUT_S
                 + 1.0 + HEALED_SLACK_S)
        if ep.t_heal + limit > run_end:
            continue  # the run ended before the limit passed: nothing to judge
        for server, per_client in row.back_in_use.items():
            for label in direct:
                if label not in row.judged:
                    continue
                seconds = per_client[label]
                observed_s = max(c.t1 for c in nemesis_run.histories[label]) - row.episode.t_heal
                if seconds is None and observed_s < limit:
                    continue  # the run ended before the limit: not having used it says nothing
                compared += 1
                if seconds is None or seconds > limit:
                    late.append(f"{row.episode.label}: {label} used {server} again after "
                                f"{seconds} s (limit {limit:.1f} s)")
    assert compared > 0, "no healed server to check"
    assert late == [], "\n".join(late) + "\n" + nemesis_run.context()
