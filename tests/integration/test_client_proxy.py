"""Both clients through real seqgen-proxy processes (the usual deployment)."""

from __future__ import annotations

import asyncio
import time

import pytest

from seqgen_client import AsyncClient, Client, Unavailable
from tests.conftest import Cluster, tcp


def test_both_clients_through_a_proxy(cluster: Cluster) -> None:
    odd, even = cluster.server(1, 2), cluster.server(2, 2)
    proxy = cluster.proxy([odd.bind, even.bind])
    with Client(proxy.bind) as client:
        values = [client.next("via") for _ in range(10)]
        batch = client.next_many("via", 20)
    assert {v % 2 for v in values} == {0, 1}
    assert len(batch) == 20

    async def main() -> list[list[int]]:
        async with AsyncClient(proxy.bind) as aclient:
            # The proxy echoes the request-id envelope too: each await gets its own reply.
            return await asyncio.gather(*(aclient.next_many("via", n) for n in range(1, 101)))

    batches = asyncio.run(main())
    assert [len(b) for b in batches] == list(range(1, 101))
    everything = values + batch + [v for b in batches for v in b]
    assert len(set(everything)) == len(everything)


def test_a_proxy_without_servers_is_failed_over_and_its_word_is_kept(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    orphan = cluster.proxy([tcp()], extra=["--timeout", "0.2"])  # its one backend never answers
    # The orphan answers UNAVAILABLE; the call goes on to the next endpoint.
    with Client([orphan.bind, server.bind], timeout_s=2.0, deadline_s=5.0) as client:
        started = time.monotonic()
        values = [client.next("orphan") for _ in range(6)]
        assert values == [1, 2, 3, 4, 5, 6]
        # Far less than a client timeout per call: the orphan answered at once, then
        # stayed in back-off.
        assert time.monotonic() - started < 2.0
    # Alone, the orphan's UNAVAILABLE is raised as it said it, without waiting for the deadline.
    with Client(orphan.bind, timeout_s=2.0, deadline_s=5.0) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            client.next("orphan")
        assert time.monotonic() - started < 2.0
        assert info.value.code == "UNAVAILABLE"
        assert orphan.bind not in info.value.message  # the proxy's message, not the client's


def test_failover_between_two_proxies(cluster: Cluster) -> None:
    odd, even = cluster.server(1, 2), cluster.server(2, 2)
    first = cluster.proxy([odd.bind, even.bind])
    second = cluster.proxy([odd.bind, even.bind])
    with Client([first.bind, second.bind], timeout_s=0.3, backoff_s=1.0) as client:
        before = [client.next("two") for _ in range(6)]
        first.kill()
        after = [client.next("two") for _ in range(30)]
    everything = before + after
    assert len(set(everything)) == len(everything)
    assert {v % 2 for v in after} == {0, 1}
