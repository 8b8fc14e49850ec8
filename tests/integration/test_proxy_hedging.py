"""seqgen-proxy hedging towards its backends (docs/proxy.md, "Hedging"), real processes."""

from __future__ import annotations

import re
import time

from seqgen_common import hedging
from tests.conftest import Cluster, ask, numbers, wait_until
from tests.integration.test_proxy import two_servers

_TOTALS = re.compile(r"(\d+) hedges \((\d+) won, (\d+) late answers, (\d+) numbers skipped\)")


def test_a_frozen_backend_costs_the_hedge_delay_not_the_timeout(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    proxy = cluster.proxy([odd.bind, even.bind], extra=["--timeout", "5"])
    warm = [numbers(proxy.bind, "hedged")[0] for _ in range(2 * hedging.MIN_SAMPLES)]
    assert {v % 2 for v in warm} == {0, 1}
    odd.stop()
    durations: list[float] = []
    values: list[int] = []
    try:
        for _ in range(20):
            started = time.monotonic()
            values.append(numbers(proxy.bind, "hedged")[0])
            durations.append(time.monotonic() - started)
    finally:
        odd.cont()
    assert {v % 2 for v in values} == {0}, values
    assert max(durations) < 1.0, durations  # the hedge delay (<= 50 ms), not the 5 s timeout
    # Thawed, the frozen server answers what it held: too late, counted, never relayed; its
    # late answer brings it back into the rotation.
    later: list[int] = []

    def odd_again() -> bool:
        later.append(numbers(proxy.bind, "hedged")[0])
        return later[-1] % 2 == 1

    wait_until(odd_again, 10, "the thawed backend used again", proxy)
    everything = warm + values + later
    assert len(set(everything)) == len(everything)  # no number twice
    assert proxy.term() == 0
    found = _TOTALS.search(proxy.log())
    assert found is not None, proxy.log()[-2000:]
    hedges, wins, late, skipped = map(int, found.groups())
    assert hedges >= 1 and wins >= 1, found.group(0)
    assert late >= 1 and skipped == late, found.group(0)  # one number per late answer here


def test_every_backend_frozen_both_are_tried_side_by_side(cluster: Cluster) -> None:
    odd, even = two_servers(cluster)
    timeout_s = 1.0
    proxy = cluster.proxy([odd.bind, even.bind], extra=["--timeout", str(timeout_s)])
    assert numbers(proxy.bind, "both")[0] > 0
    odd.stop()
    even.stop()
    try:
        started = time.monotonic()
        reply = ask(proxy.bind, ["both", "0"], timeout_s=10.0)
        elapsed = time.monotonic() - started
    finally:
        odd.cont()
        even.cont()
    assert reply[0] == "UNAVAILABLE", reply
    # The hedge went to the second backend after the delay: one timeout in all, not one
    # per backend as without hedging (test_proxy_failover.py).
    assert timeout_s * 0.9 <= elapsed < 1.6 * timeout_s, elapsed
