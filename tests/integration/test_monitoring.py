"""A real Prometheus with etc/prometheus/seqgen-rules.yml scraping a running cluster.

Two peered hosts (server and admin) and a proxy with --metrics, scraped as the jobs
seqgen-admin and seqgen-proxy every second. While healthy, no alert; then three
faults, each read as firing from Prometheus's own API (/api/v1/alerts): a server
fenced, a server killed, and a misconfigured third server that makes a conflict. The
``for:`` of the alerts expected here is shortened to 1 s (``rules_with_short_for``);
every expression is the shipped one. While healthy, every query of every panel of the
Grafana dashboard (etc/grafana/seqgen.json) returns series.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.conftest import Cluster, free_port, request, require_tools, wait_until
from tests.integration.operator_support import free_admin_url, pair, peers_reachable, start_host
from tests.integration.prometheus_support import Prometheus, panel_queries, rules_with_short_for

FAST = ("SeqgenFencedTooLong", "SeqgenServerDown", "SeqgenClusterConflict",
        "SeqgenProxyBackendDown", "SeqgenPeerUnreachable")
"""The alerts these faults raise; their ``for:`` is 1 s here."""
FAULT_TIMEOUT_S = 30.0


@contextmanager
def traffic(endpoint: str) -> Iterator[list[int]]:
    """Requests through the proxy until the block ends, a new name each (a store write each);
    yields the number of replies so far."""
    stop = threading.Event()
    replies = [0]

    def run() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            if request(endpoint, b'["t%d","0",2]' % n, timeout_s=2) is not None:
                replies[0] += 1
            stop.wait(0.02)

    thread = threading.Thread(target=run, name="traffic", daemon=True)
    thread.start()
    try:
        yield replies
    finally:
        stop.set()
        thread.join(10)


def returns_series(prom: Prometheus, expr: str) -> Callable[[], bool]:
    return lambda: bool(prom.query(expr))


def quiet_for_evaluations(prom: Prometheus, count: int) -> None:
    """No alert, pending or firing, over ``count`` evaluations of the rules."""
    start = prom.evaluations()
    while prom.evaluations() < start + count:
        assert prom.alerts() == [], prom.alerts()
    assert prom.alerts() == []


def test_alerts_fire_on_three_faults_and_none_while_healthy(cluster: Cluster) -> None:
    require_tools("prometheus")
    prom = Prometheus(cluster, rules_with_short_for(FAST))
    one, two = pair(cluster)
    metrics = f"http://127.0.0.1:{free_port()}"
    proxy = cluster.proxy([one.server.bind, two.server.bind],
                          extra=["--timeout", "0.5", "--metrics", metrics])
    admin_one = prom.scrape("seqgen-admin", one.admin.url)
    admin_two = prom.scrape("seqgen-admin", two.admin.url)
    prom.scrape("seqgen-proxy", metrics)
    wait_until(peers_reachable(one, 1), FAULT_TIMEOUT_S, "host 1 reaches host 2")
    wait_until(peers_reachable(two, 1), FAULT_TIMEOUT_S, "host 2 reaches host 1")
    with traffic(proxy.bind) as replies:
        wait_until(prom.targets_up, FAULT_TIMEOUT_S, "every target scraped", prom.proc)
        wait_until(lambda: replies[0] >= 20, FAULT_TIMEOUT_S, "numbers through the proxy")
        quiet_for_evaluations(prom, 3)  # healthy: nothing pending, nothing firing
        for title, expr in panel_queries():  # the dashboard shows the healthy cluster
            wait_until(returns_series(prom, expr), FAULT_TIMEOUT_S,
                       f"series for the panel {title!r}: {expr}", prom.proc)

        # 1. A server fenced (past the maintenance window, the window being 1 s here).
        with two.http() as http:
            assert http.post("/fence").json() == {"fenced": True}
        wait_until(lambda: prom.firing("SeqgenFencedTooLong", instance=admin_two),
                   FAULT_TIMEOUT_S, "SeqgenFencedTooLong of host 2", prom.proc)
        assert not prom.firing("SeqgenFencedTooLong", instance=admin_one)
        (fenced,) = [a for a in prom.alerts("firing") if a["labels"]["alertname"] == "SeqgenFencedTooLong"]
        assert admin_two in fenced["annotations"]["summary"]  # rendered by Prometheus itself
        assert fenced["annotations"]["runbook"] == "docs/operations.md#fenced-for-too-long"
        assert fenced["labels"]["severity"] == "warning"

        # 2. A server killed: its admin says so, and the proxy marks it down.
        one.server.kill()
        wait_until(lambda: prom.firing("SeqgenServerDown", instance=admin_one),
                   FAULT_TIMEOUT_S, "SeqgenServerDown of host 1", prom.proc)
        wait_until(lambda: prom.firing("SeqgenProxyBackendDown", backend=one.server.bind),
                   FAULT_TIMEOUT_S, "the proxy's backend 1 down", prom.proc)
        wait_until(lambda: prom.firing("SeqgenPeerUnreachable", instance=admin_two),
                   FAULT_TIMEOUT_S, "host 2 cannot reach host 1", prom.proc)
        assert not prom.firing("SeqgenServerDown", instance=admin_two)

        # 3. A third server, misconfigured: instance 2 (host 2's) of 3 (the others say 2).
        url = free_admin_url()
        third = start_host(cluster, 2, 3, url, [one.admin.url, two.admin.url])
        admin_three = prom.scrape("seqgen-admin", third.admin.url)
        wait_until(lambda: prom.firing("SeqgenClusterConflict", instance=admin_three),
                   FAULT_TIMEOUT_S, "SeqgenClusterConflict seen by host 3", prom.proc)

    firing = {alert["labels"]["alertname"] for alert in prom.alerts("firing")}
    assert firing <= set(FAST), firing  # nothing else: no store failure, no name near the end
