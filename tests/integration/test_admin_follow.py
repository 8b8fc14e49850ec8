"""Admins follow their peers (seqgen_admin.follow) with real servers and admins: a server
back from a stop is close to the others again without any client's help, within two polls;
the raises are bounded per round and counted in /metrics; --no-follow-peers turns it off."""

from __future__ import annotations

import re
import time

from tests.conftest import Cluster, numbers, wait_until
from tests.integration.operator_support import Host, metric, pair, peers_reachable

INTERVAL_S = 0.5
"""--witness-interval (the poll interval) in these tests."""
DRIFT = 100
SLACK_S = 1.5
"""What a loaded test machine may add to two poll intervals (a control request, an fsync)."""


def stateless(host: Host, name: str) -> int:
    """One number as a caller that carries nothing gets it: a new socket, last "0"."""
    return numbers(host.server.bind, name, last=0)[0]


def test_a_server_back_from_a_stop_is_close_within_two_polls(cluster: Cluster) -> None:
    one, two = pair(cluster, interval_s=INTERVAL_S, drift=DRIFT)
    wait_until(peers_reachable(two, 1), 15, "admin 2 sees server 1")
    names = ("busy-a", "busy-b")
    two.server.stop()  # SIGSTOP: server 2 is held back, its admin keeps polling server 1
    try:
        for _ in range(150):  # stateless callers that reach server 1 alone meanwhile
            for name in names:
                stateless(one, name)
        wait_until(lambda: metric(two, "seqgen_follow_failures_total") >= 1, 15,
                   "admin 2 tried to follow while its server was stopped")
    finally:
        two.server.cont()
    resumed = time.monotonic()
    # Stateless callers now reach both servers in turn; the server that was stopped is
    # behind by ~300 until its admin raises its floors.
    latest = {name: stateless(one, name) for name in names}
    close_at: dict[str, float] = {}
    deadline = resumed + 15
    while len(close_at) < len(names) and time.monotonic() < deadline:
        for name in names:
            value = stateless(two, name)
            if name not in close_at and value > latest[name] - DRIFT:
                close_at[name] = time.monotonic() - resumed
            latest[name] = max(latest[name], stateless(one, name))
    assert set(close_at) == set(names), f"server 2 never came close: {latest}"
    assert max(close_at.values()) <= 2 * INTERVAL_S + SLACK_S, close_at
    # ... and it stays close for stateless callers of both servers.
    for _ in range(30):
        for name in names:
            behind, ahead = stateless(two, name), stateless(one, name)
            assert abs(ahead - behind) <= DRIFT, (name, behind, ahead)
    assert metric(two, "seqgen_follow_raised_total") >= len(names)
    assert metric(two, "seqgen_follow_enabled") == 1
    # Server 1 was never behind: its admin read server 2's values but raised nothing.
    assert metric(one, "seqgen_follow_raised_total") == 0


def test_raises_are_bounded_per_round_and_counted(cluster: Cluster) -> None:
    one, two = pair(cluster, interval_s=0.2, drift=10, admin_extra=["--follow-max-names", "2"])
    wait_until(peers_reachable(two, 1), 15, "admin 2 sees server 1")
    names = [f"jumped-{i}" for i in range(5)]
    # Server 1 far ahead for five names, all in one poll of admin 2's (paused meanwhile, so
    # that a busy machine cannot spread them over several polls).
    two.admin.proc.stop()
    try:
        for i, name in enumerate(names):
            assert numbers(one.server.bind, name, last=100_000 * (i + 1)) == [100_000 * (i + 1) + 1]
    finally:
        two.admin.proc.cont()
    wait_until(lambda: metric(two, "seqgen_follow_raised_total") == len(names), 15,
               "admin 2 raised all five floors")
    for i, name in enumerate(names):  # server 2 issues the first own number above server 1's
        assert stateless(two, name) == 100_000 * (i + 1) + 2
    assert metric(two, "seqgen_follow_deferred_total") >= 3  # 2 per round: 3 waited, then 1
    # Admin 1 learned server 1's values from the pages it served admin 2: server 2's raised
    # values are within drift of them, so it read nothing from server 1.
    assert metric(one, "seqgen_follow_raised_total") == 0
    assert metric(one, "seqgen_follow_checked_total") == 0
    raised = [int(n) for n in re.findall(r"raised (\d+) floor\(s\)", two.admin.proc.log())]
    assert raised and max(raised) <= 2 and sum(raised) == len(names), raised
    # Quiet names cost nothing: once nothing moves, no more rounds (not even a status request).
    def rounds() -> float:
        return metric(two, "seqgen_follow_rounds_total") + metric(one, "seqgen_follow_rounds_total")

    seen = [rounds()]

    def settled() -> bool:
        time.sleep(3 * 0.2)
        seen.append(rounds())
        return seen[-1] == seen[-2]

    wait_until(settled, 15, "the rounds stop once nothing moves")
    checked = metric(two, "seqgen_follow_checked_total")
    time.sleep(5 * 0.2)  # five polls of nothing: a negative check needs the time to pass
    assert rounds() == seen[-1]
    assert metric(two, "seqgen_follow_checked_total") == checked


def test_no_follow_peers_leaves_a_server_behind(cluster: Cluster) -> None:
    one, two = pair(cluster, interval_s=0.2, drift=10, admin_extra=["--no-follow-peers"])
    wait_until(peers_reachable(two, 1), 15, "admin 2 sees server 1")
    assert numbers(one.server.bind, "alone", last=100_000) == [100_001]
    wait_until(lambda: two.http().get("/witness/1").json()["items"] != [], 15,
               "admin 2 witnessed server 1")
    time.sleep(3 * 0.2)  # three polls: with following on, server 2 would have been raised
    assert stateless(two, "alone") == 2
    assert metric(two, "seqgen_follow_enabled") == 0
