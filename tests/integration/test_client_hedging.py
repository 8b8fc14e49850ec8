"""Hedged requests (docs/client.md, "Hedging") against real servers and real sockets.

A frozen server (SIGSTOP) costs a call about the hedge delay, not the attempt
timeout; when it wakes, its late answer is counted and never delivered. The
budget is checked against a backend played by the test over a real socket (a
ROUTER that answers every request after a fixed delay): no real server can be
made to answer every request slowly, and a slow answer for every request is
what makes each request want a hedge.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import pytest
import zmq

from seqgen_client import AsyncClient, Client
from seqgen_common import hedging
from tests.conftest import Cluster, ServerProc, tcp, wait_until
from tests.integration.test_client_failover import Blocking, two_servers

TIMEOUT_S = 5.0
"""Far above the hedge delay: a call that waited for it would stand out."""
BACKOFF_S = 3.0
"""Longer than the calls made while a server is frozen (milliseconds each)."""


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Every test runs against Client and AsyncClient (driven through Blocking)."""
    return str(request.param)


def test_a_frozen_server_costs_the_hedge_delay_not_the_timeout(cluster: Cluster, kind: str) -> None:
    frozen, alive = two_servers(cluster)
    with closing(Blocking(kind, [frozen.bind, alive.bind], timeout_s=TIMEOUT_S,
                          deadline_s=2 * TIMEOUT_S, backoff_s=BACKOFF_S,
                          max_backoff_s=BACKOFF_S)) as client:
        frozen_server_costs_the_hedge_delay(client, frozen)


def frozen_server_costs_the_hedge_delay(client: Blocking, frozen: ServerProc) -> None:
    warm = [client.next("hedged") for _ in range(2 * hedging.MIN_SAMPLES)]
    assert {v % 2 for v in warm} == {0, 1}
    before = client.stats  # a busy machine may have delayed an answer past the delay already
    frozen.stop()
    durations: list[float] = []
    values: list[int] = []
    try:
        for _ in range(20):
            started = time.monotonic()
            values.append(client.next("hedged"))
            durations.append(time.monotonic() - started)
    finally:
        frozen.cont()
    assert {v % 2 for v in values} == {0}, values  # all from the live server
    assert max(durations) < 1.0, durations  # the hedge delay is at most 50 ms; timeout 5 s
    stats = client.stats
    # The call that met the frozen server hedged and the hedge won; the frozen server was
    # then skipped (not tried first): one hedge won, not one per call. (An attempt on the
    # live one slower than the delay, on a busy machine, may still hedge to it, and lose.)
    assert stats.hedge_wins - before.hedge_wins >= 1, stats
    assert stats.hedge_wins - before.hedge_wins <= 3, (before, stats)
    # Awake again, the frozen server answers the request it held: the answer is counted
    # (its number lost) and never delivered. The server is used again after its back-off.
    later: list[int] = []

    def late_answer_counted() -> bool:
        later.append(client.next("hedged"))
        return client.stats.late_answers > before.late_answers

    wait_until(late_answer_counted, 10.0, "the late answer counted")
    assert client.stats.lost_numbers == client.stats.late_answers  # one number each
    assert client.stats.timeouts == 0

    def used_again() -> bool:
        later.append(client.next("hedged"))
        return later[-1] % 2 == 1

    wait_until(used_again, BACKOFF_S + 5.0, "the thawed server used again")
    everything = warm + values + later
    assert len(set(everything)) == len(everything)  # no number twice


def test_without_hedging_a_frozen_server_costs_a_timeout(cluster: Cluster, kind: str) -> None:
    frozen, alive = two_servers(cluster)
    with closing(Blocking(kind, [frozen.bind, alive.bind], timeout_s=0.5, deadline_s=5.0,
                          backoff_s=60.0, max_backoff_s=60.0, hedge=False)) as client:
        frozen_server_costs_a_timeout(client, frozen)


def frozen_server_costs_a_timeout(client: Blocking, frozen: ServerProc) -> None:
    assert {client.next("plain") % 2 for _ in range(4)} == {0, 1}
    frozen.stop()
    try:
        started = time.monotonic()
        first = [client.next("plain") for _ in range(2)]
        elapsed = time.monotonic() - started
    finally:
        frozen.cont()
    assert {v % 2 for v in first} == {0}
    assert elapsed >= 0.5  # one call waited out its attempt's timeout
    stats = client.stats
    assert (stats.hedges, stats.hedge_wins, stats.timeouts) == (0, 0, 1), stats


def test_the_only_healthy_endpoint_lost_its_hedge_goes_to_one_in_back_off(
        cluster: Cluster, kind: str) -> None:
    """The endpoint in back-off is back, the only healthy one has just gone down: the call
    is hedged to the one in back-off and costs a hedge delay, not its attempt's timeout
    (nemesis seed 669524: a client's own proxy stayed in back-off for up to 30 s after the
    client's host was cut off and healed; then the other proxy's host was cut off)."""
    lost, back = two_servers(cluster)
    with closing(Blocking(kind, [lost.bind, back.bind], timeout_s=1.0, deadline_s=5.0,
                          backoff_s=30.0, max_backoff_s=30.0)) as client:
        for _ in range(hedging.MIN_SAMPLES):
            client.next("in-back-off")
        back.stop()
        try:
            for _ in range(4):  # round-robin: one of them meets it, hedges, and skips it 30 s
                assert client.next("in-back-off") % 2 == 1
        finally:
            back.cont()
        assert client.stats.hedge_wins >= 1, client.stats
        lost.stop()
        try:
            before = client.stats
            started = time.monotonic()
            value = client.next("in-back-off")
            elapsed = time.monotonic() - started
        finally:
            lost.cont()
    assert value % 2 == 0  # from the endpoint in back-off
    assert elapsed < 0.5, elapsed  # the hedge delay (<= 50 ms), not the 1 s timeout
    assert client.stats.hedges == before.hedges + 1, (before, client.stats)
    assert client.stats.hedge_wins == before.hedge_wins + 1, (before, client.stats)


class SlowBackend:
    """A ROUTER played by the test that answers every request ``delay_s`` after it came,
    with numbers of its own (``start``, ``start`` + 2, ...)."""

    def __init__(self, delay_s: float, start: int) -> None:
        self.bind = tcp()
        self.delay_s = delay_s
        self._next = start
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(self.bind)
        self._stop = threading.Event()
        self.requests = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        due: list[tuple[float, list[bytes]]] = []
        while not self._stop.is_set():
            wait_ms = 10 if not due else max(0, int((due[0][0] - time.monotonic()) * 1000))
            if self._sock.poll(wait_ms):
                frames = self._sock.recv_multipart()
                self.requests += 1
                due.append((time.monotonic() + self.delay_s, frames))
            while due and due[0][0] <= time.monotonic():
                _, frames = due.pop(0)
                self._sock.send_multipart([*frames[:-1], b'[null,"%d"]' % self._next])
                self._next += 2

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        self._ctx.term()


def test_the_budget_caps_hedges_when_every_answer_is_slow(kind: str) -> None:
    backends = [SlowBackend(0.15, 1), SlowBackend(0.15, 2)]
    rounds, per_round = 8, 40

    async def run() -> tuple[list[int], Any]:
        got: list[int] = []
        async with AsyncClient([b.bind for b in backends], timeout_s=TIMEOUT_S,
                               deadline_s=2 * TIMEOUT_S) as seq:
            for _ in range(rounds):
                got += [v for vs in await asyncio.gather(
                    *(seq.next_many("slow", 1) for _ in range(per_round))) for v in vs]
            # Every hedge's request is answered too, after the attempt that won: wait for it.
            for _ in range(100):
                if seq.stats.late_answers == seq.stats.hedges:
                    break
                await asyncio.sleep(0.05)
            return got, seq.stats

    def run_threads() -> tuple[list[int], Any]:
        got: list[int] = []
        with Client([b.bind for b in backends], timeout_s=TIMEOUT_S, deadline_s=2 * TIMEOUT_S,
                    ) as seq, ThreadPoolExecutor(per_round) as pool:
            for _ in range(rounds):
                got += [v for vs in pool.map(lambda _: seq.next_many("slow", 1), range(per_round))
                        for v in vs]
            # The blocking client reads a late answer at its next call: one more round of
            # calls (their own hedges, if any, come on top and are read by the round after).
            extra = 0
            while seq.stats.late_answers < seq.stats.hedges and extra < 20:
                got += seq.next_many("slow", 1)
                extra += 1
            return got, seq.stats

    try:
        values, stats = asyncio.run(run()) if kind == "async" else run_threads()
    finally:
        for backend in backends:
            backend.close()
    requests = len(values)
    assert requests >= rounds * per_round and len(set(values)) == requests  # no number twice
    # Every request waited past the hedge delay (150 ms > the 50 ms ceiling), so every one
    # would hedge without a budget; the budget allows the burst and 1 in 20 requests.
    assert requests // hedging.REQUESTS_PER_HEDGE <= stats.hedges, stats
    assert stats.hedges <= hedging.BURST + requests // hedging.REQUESTS_PER_HEDGE, stats
    assert sum(b.requests for b in backends) == requests + stats.hedges
    # Both backends are equally slow: the first attempt always wins, each hedge answers late.
    assert stats.hedge_wins == 0, stats
    assert stats.late_answers == stats.hedges and stats.lost_numbers == stats.hedges, stats
    assert stats.timeouts == 0, stats


def test_closing_with_a_lost_attempt_still_out_does_not_wait_for_it(
        cluster: Cluster, kind: str) -> None:
    frozen, alive = two_servers(cluster)
    client = Blocking(kind, [frozen.bind, alive.bind], timeout_s=TIMEOUT_S,
                      deadline_s=2 * TIMEOUT_S, backoff_s=60.0, max_backoff_s=60.0)
    try:
        for _ in range(hedging.MIN_SAMPLES):
            client.next("closing")
        frozen.stop()
        for _ in range(4):  # round-robin: one of the first calls meets the frozen server
            assert client.next("closing") % 2 == 0
        assert client.stats.hedge_wins >= 1
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 1.0  # the lost attempt's socket is just closed
    finally:
        frozen.cont()
