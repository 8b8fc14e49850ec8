"""Both clients when servers are killed, frozen, all gone, and back again.

Every test runs against ``Client`` and ``AsyncClient`` (driven from a private
event loop through the same blocking calls).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from seqgen_client import AsyncClient, Client, Unavailable
from tests.conftest import Cluster, ServerProc, wait_until

TIMEOUT_S = 0.3
BACKOFF_S = 1.0
SLOW_S = 0.25
"""A call that took this long paid (most of) a timeout; healthy calls take milliseconds."""


class Blocking:
    """The calls of a Client or an AsyncClient, made blocking for the test."""

    def __init__(self, kind: str, endpoints: list[str], **options: Any) -> None:
        self.kind = kind
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | AsyncClient
        if kind == "sync":
            self._client = Client(endpoints, **options)
        else:
            self._loop = asyncio.new_event_loop()
            self._client = AsyncClient(endpoints, **options)

    def next(self, name: str) -> int:
        if isinstance(self._client, Client):
            return self._client.next(name)
        assert self._loop is not None
        return self._loop.run_until_complete(self._client.next(name))

    @property
    def stats(self) -> Any:
        return self._client.stats

    def close(self) -> None:
        if isinstance(self._client, Client):
            self._client.close()
        else:
            assert self._loop is not None
            self._loop.run_until_complete(self._client.close())
            self._loop.close()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Iterator[Any]:
    made: list[Blocking] = []

    def factory(endpoints: list[str], **options: Any) -> Blocking:
        client = Blocking(kind, endpoints, **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


def two_servers(cluster: Cluster) -> tuple[ServerProc, ServerProc]:
    return cluster.server(1, 2, drift=10), cluster.server(2, 2, drift=10)


def run_for(
    next_: Callable[[str], int], name: str, seconds: float
) -> tuple[list[int], list[float]]:
    """Call ``next_(name)`` for ``seconds``: the values and each call's duration."""
    values: list[int] = []
    durations: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        values.append(next_(name))
        durations.append(time.monotonic() - started)
    return values, durations


def used_again(client: Blocking, name: str, parity: int, within_s: float) -> bool:
    """Does a server of ``parity`` answer some call within ``within_s``?"""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if client.next(name) % 2 == parity:
            return True
    return False


def allowed_slow_calls(seconds: float) -> int:
    """A dead server costs one timeout when it fails and one per probe after each back-off."""
    return int(seconds / BACKOFF_S) + 2


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_one_server_lost_costs_at_most_one_timeout_per_back_off(
    cluster: Cluster, make: Any, fault: str
) -> None:
    lost, alive = two_servers(cluster)
    # Without hedging: the timeouts and back-offs themselves (tests/integration/
    # test_client_hedging.py has the hedged path).
    client = make([lost.bind, alive.bind], timeout_s=TIMEOUT_S, deadline_s=5.0,
                  backoff_s=BACKOFF_S, max_backoff_s=BACKOFF_S, hedge=False)
    warm = [client.next("lose") for _ in range(10)]
    assert {v % 2 for v in warm} == {0, 1}
    if fault == "kill":
        lost.kill()
    else:
        lost.stop()
    seconds = 2.2
    values, durations = run_for(client.next, "lose", seconds)
    # Every call succeeded, from the live (even) server.
    assert {v % 2 for v in values} == {0}
    assert len(set(values)) == len(values)
    slow = sum(1 for d in durations if d >= SLOW_S)
    assert 1 <= slow <= allowed_slow_calls(seconds), (slow, len(durations))
    assert len(durations) > 10 * slow  # the others went straight to the live server
    assert max(durations) < TIMEOUT_S + 2.0  # never more than one timeout per call
    # The lost server comes back and is used again after its back-off.
    if fault == "kill":
        cluster.restart(lost)
    else:
        lost.cont()
    assert used_again(client, "lose", 1, within_s=BACKOFF_S + 5.0)
    after = [client.next("lose") for _ in range(10)]
    assert {v % 2 for v in after} == {0, 1}
    everything = warm + values + after
    assert len(set(everything)) == len(everything)


def test_stats_count_requests_attempts_and_timeouts(cluster: Cluster, make: Any) -> None:
    """The counters have the Node.js client's meanings (docs/client.md, "Statistics")."""
    frozen, alive = two_servers(cluster)
    client = make([frozen.bind, alive.bind], timeout_s=TIMEOUT_S, deadline_s=5.0,
                  backoff_s=60.0, max_backoff_s=60.0, hedge=False)
    warm = [client.next("counted") for _ in range(2)]
    assert {v % 2 for v in warm} == {0, 1}
    frozen.stop()
    try:
        values = [client.next("counted") for _ in range(10)]
    finally:
        frozen.cont()
    assert {v % 2 for v in values} == {0}
    stats = client.stats
    # One attempt met the frozen server and timed out; its call went on to the other
    # server as one more attempt of the same request; then the frozen one was skipped.
    assert (stats.requests, stats.calls, stats.attempts, stats.timeouts) == (12, 12, 13, 1), stats
    assert (stats.coalesced_calls, stats.lost_numbers) == (0, 0), stats


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_all_servers_lost_gives_unavailable_within_the_deadline(
    cluster: Cluster, make: Any, fault: str
) -> None:
    servers = two_servers(cluster)
    deadline_s = 0.8
    client = make([s.bind for s in servers], timeout_s=TIMEOUT_S, deadline_s=deadline_s,
                  backoff_s=BACKOFF_S, max_backoff_s=BACKOFF_S)
    assert client.next("gone") > 0
    for server in servers:
        if fault == "kill":
            server.kill()
        else:
            server.stop()
    for _ in range(2):
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            client.next("gone")
        elapsed = time.monotonic() - started
        assert deadline_s * 0.9 <= elapsed < deadline_s + 1.5, elapsed
        assert info.value.code == "UNAVAILABLE"
        assert servers[0].bind in info.value.message
    # Back again: the client serves without being rebuilt.
    for server in servers:
        if fault == "kill":
            cluster.restart(server)
        else:
            server.cont()
    wait_until(lambda: used_again(client, "gone", 0, 0.5) and used_again(client, "gone", 1, 0.5),
               BACKOFF_S * 2 + 10, "both servers used again")


def test_threads_fail_over_together(cluster: Cluster) -> None:
    frozen, alive = two_servers(cluster)
    client = Client([frozen.bind, alive.bind], timeout_s=TIMEOUT_S, deadline_s=5.0,
                    backoff_s=BACKOFF_S, max_backoff_s=BACKOFF_S, hedge=False)
    threads_n = 4
    seconds = 2.5
    results: list[tuple[list[int], list[float]]] = []
    errors: list[BaseException] = []
    started = threading.Barrier(threads_n + 1)

    def work() -> None:
        try:
            started.wait()
            results.append(run_for(client.next, "together", seconds))
        except BaseException as exc:  # reported below
            errors.append(exc)

    with client:
        assert client.next("together") > 0
        frozen.stop()
        workers = [threading.Thread(target=work) for _ in range(threads_n)]
        for worker in workers:
            worker.start()
        started.wait()
        for worker in workers:
            worker.join(30)
    assert errors == []
    values = [v for vals, _ in results for v in vals]
    assert len(set(values)) == len(values)
    slow = sum(1 for _, durs in results for d in durs if d >= SLOW_S)
    # Each thread may have been waiting on the frozen server when it froze; after that,
    # one probe per back-off period in all, not one per thread.
    assert slow <= threads_n + allowed_slow_calls(seconds), slow
