"""seqgen-proxy when backends die, freeze, come back, or answer too late."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from tests.conftest import Cluster, ask, numbers, wait_until
from tests.integration.test_proxy import (
    TIMEOUT_S,
    Outcome,
    check_outcomes,
    run_clients,
    two_servers,
)

MAX_LATENCY_S = 3.0
"""Bound on any one request during a failover: one --timeout (0.5 s) plus a generous margin
for a busy two-core machine."""


def progressed(outcomes: list[Outcome], replies: int) -> Callable[[], bool]:
    """A check: has every client had ``replies`` more replies than it has now?"""
    marks = [len(out.replies) + replies for out in outcomes]
    return lambda: all(len(out.replies) >= mark for out, mark in zip(outcomes, marks, strict=True))


def both_serve(endpoint: str, name: str) -> bool:
    """Two requests in a row are answered by the two servers (round-robin over both)."""
    got = [ask(endpoint, [name, "0"]) for _ in range(2)]
    return all(r[0] is None for r in got) and {int(str(r[1])) % 2 for r in got} == {0, 1}


def test_failover_when_a_backend_is_killed_under_load(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = cluster.proxy([odd.bind, even.bind], extra=["--timeout", TIMEOUT_S])
    stop = threading.Event()
    outcomes, threads = run_clients(proxy.bind, [1, 2, 3, 4, 5, 6], stop=stop)
    wait_until(lambda: all(len(out.replies) >= 5 for out in outcomes), 20, "load running")
    odd.kill()
    wait_until(progressed(outcomes, 10), 20, "load after the kill")
    stop.set()
    for thread in threads:
        thread.join(30)
    values = check_outcomes(outcomes)  # no request lost, none answered with an error
    assert {v % 2 for v in values} == {0, 1}
    worst = max(max(out.latencies_s) for out in outcomes)
    assert worst < MAX_LATENCY_S, worst
    # Later requests go straight to the live server: no more waiting for the dead one.
    started = time.monotonic()
    assert numbers(proxy.bind, "after")[0] % 2 == 0
    assert numbers(proxy.bind, "after")[0] % 2 == 0
    assert time.monotonic() - started < float(TIMEOUT_S)


def test_failover_when_a_backend_freezes_and_late_replies_are_dropped(cluster: Cluster) -> None:
    frozen, alive = two_servers(cluster)
    proxy = cluster.proxy([frozen.bind, alive.bind], extra=["--timeout", TIMEOUT_S])
    stop = threading.Event()
    # 16 clients, each with its own batch size: a reply delivered to the wrong client
    # would have the wrong length, and a stray extra reply would be seen by its DEALER.
    outcomes, threads = run_clients(proxy.bind, [1 + i for i in range(16)], stop=stop,
                                    extra_wait_s=1.5)
    wait_until(lambda: all(len(out.replies) >= 3 for out in outcomes), 20, "load running")
    frozen.stop()  # SIGSTOP: its connection stays up, requests sent to it sit unanswered
    wait_until(progressed(outcomes, 5), 30, "load while one backend is frozen")
    # Requests went elsewhere because the frozen backend was marked down: by a whole
    # --timeout of silence, or, when a hedge of a request held there won first (the jobs of
    # the clients' name were not out on both backends then), by losing to that hedge.
    marked = re.search(rf"backend {re.escape(frozen.bind)} (did not answer within "
                       r"|was slower than a hedge)", proxy.log())
    assert marked is not None, proxy.log()[-2000:]
    frozen.cont()  # it now answers the requests it was sent before: too late
    # The thawed server is found again by the probes and used again.
    odd_seen = len([v for out in outcomes for v in out.values() if v % 2])

    def odd_again() -> bool:
        return len([v for out in outcomes for v in out.values() if v % 2]) > odd_seen + 10

    wait_until(odd_again, 20, "the thawed backend used again")
    stop.set()
    for thread in threads:
        thread.join(30)
    check_outcomes(outcomes)  # exactly one reply each, its own, no stray late reply
    worst = max(max(out.latencies_s) for out in outcomes)
    assert worst < MAX_LATENCY_S, worst
    assert "answers again" in proxy.log()


def test_unavailable_when_every_backend_is_dead_then_recovery(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = cluster.proxy([odd.bind, even.bind], extra=["--timeout", TIMEOUT_S])
    before = [numbers(proxy.bind, "r")[0] for _ in range(2)]
    odd.kill()
    even.kill()
    for _ in range(3):
        started = time.monotonic()
        reply = ask(proxy.bind, ["r", "0"])
        assert reply[0] == "UNAVAILABLE", reply
        assert time.monotonic() - started < MAX_LATENCY_S
    assert ask(proxy.bind, ["r", "x"])[0] == "BAD_LAST"  # still validates by itself
    cluster.restart(odd)
    cluster.restart(even)

    wait_until(lambda: both_serve(proxy.bind, "r"), 20, "both backends used again")
    assert min(numbers(proxy.bind, "r")[0] for _ in range(2)) > max(before)


def test_unavailable_when_every_backend_is_frozen_then_recovery(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    # Without hedging: one timeout per backend, one after the other (test_proxy_hedging.py has
    # the hedged case: both tried side by side).
    proxy = cluster.proxy([odd.bind, even.bind], extra=["--timeout", TIMEOUT_S, "--no-hedge"])
    assert numbers(proxy.bind, "f")[0] > 0
    odd.stop()
    even.stop()
    started = time.monotonic()
    reply = ask(proxy.bind, ["f", "0"])
    assert reply[0] == "UNAVAILABLE", reply
    # Both were tried, one timeout each (and no longer).
    assert 2 * float(TIMEOUT_S) * 0.9 <= time.monotonic() - started < MAX_LATENCY_S
    started = time.monotonic()
    assert ask(proxy.bind, ["f", "0"])[0] == "UNAVAILABLE"
    assert time.monotonic() - started < MAX_LATENCY_S
    odd.cont()
    even.cont()
    wait_until(lambda: both_serve(proxy.bind, "f"), 20, "both backends used again")

