"""Client-side prefetch against real servers: round trips counted by the server itself."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading

import pytest

from seqgen_client import AsyncClient, Client, RequestError
from seqgen_common.control import GetStatus, Status, decode_control_reply, encode_control
from tests.conftest import Cluster, ServerProc, in_forked_child, request


def status(server: ServerProc) -> Status:
    """The server's own counters, over its control socket."""
    reply = request(server.control, encode_control(GetStatus()), timeout_s=10.0)
    assert reply is not None, "no status from the control socket"
    decoded = decode_control_reply(reply[0])
    assert isinstance(decoded, Status), decoded
    return decoded


def round_trips(server: ServerProc) -> int:
    """Public requests the server answered with numbers."""
    return status(server).counters.requests.get("OK", 0)


def strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def test_one_batch_serves_prefetch_calls(cluster: Cluster) -> None:
    server = cluster.server()
    with Client(server.bind, prefetch=10) as client:
        values = [client.next("pre") for _ in range(25)]
        assert round_trips(server) == 3
        assert status(server).counters.numbers_issued == 30
        assert values == list(range(1, 26))
        # last() is the highest number received, buffered ones included: that is what
        # the next request sends, so a lagging server skips past all of them.
        assert client.last("pre") == 30
        # next_many is a round trip of its own and leaves the buffer alone.
        assert client.next_many("pre", 3) == [31, 32, 33]
        assert client.next("pre") == 26
        assert round_trips(server) == 4
        assert client.next("other") == 1  # each name has its own buffer
        assert round_trips(server) == 5


def test_a_buffered_client_still_refuses_bad_names_and_closes(cluster: Cluster) -> None:
    server = cluster.server()
    client = Client(server.bind, prefetch=5)
    with pytest.raises(RequestError):
        client.next("")
    with pytest.raises(RequestError):
        client.next(["not", "a", "name"])  # type: ignore[arg-type]
    assert client.next("n") == 1
    client.close()
    with pytest.raises(ValueError, match="closed"):
        client.next("n")  # four numbers are buffered, but a closed client hands out none
    assert round_trips(server) == 1


def test_threads_share_the_buffer_without_sharing_numbers(cluster: Cluster) -> None:
    server = cluster.server()
    threads, calls, prefetch = 8, 50, 10
    seen: list[list[int]] = [[] for _ in range(threads)]
    with Client(server.bind, prefetch=prefetch) as client:
        barrier = threading.Barrier(threads)

        def work(index: int) -> None:
            barrier.wait()
            for _ in range(calls):
                seen[index].append(client.next("threads"))

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert not any(worker.is_alive() for worker in workers)
    everything = [value for values in seen for value in values]
    assert sorted(everything) == list(range(1, threads * calls + 1))
    assert all(strictly_increasing(values) for values in seen), seen
    # One refill per name at a time, and only when the buffer is empty.
    assert round_trips(server) == threads * calls // prefetch


_WORKER = """
import sys
from seqgen_client import Client
endpoint, count = sys.argv[1], int(sys.argv[2])
with Client(endpoint, prefetch=7) as client:
    print(" ".join(str(client.next("shared")) for _ in range(count)))
"""


def test_processes_get_blocks_of_their_own(cluster: Cluster) -> None:
    server = cluster.server()
    count = 200
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, server.bind, str(count)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results: list[list[int]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        results.append([int(value) for value in out.split()])
    for values in results:
        assert len(values) == count
        assert strictly_increasing(values)
    everything = [value for values in results for value in values]
    assert len(set(everything)) == len(everything), "two processes got the same number"
    # Each process holds back at most one partly used block (200 = 28 * 7 + 4).
    assert round_trips(server) == 3 * 29


def test_a_forked_child_never_hands_out_its_parent_s_buffer(cluster: Cluster) -> None:
    server = cluster.server()
    with Client(server.bind, prefetch=10) as client:
        first = client.next("fork")  # 1; 2..10 stay buffered in the parent
        status_code, child = in_forked_child(lambda: [client.next("fork") for _ in range(3)])
        assert status_code == 0
        parent = [first] + [client.next("fork") for _ in range(9)]
    assert parent == list(range(1, 11))
    assert child == [11, 12, 13]  # a block of its own, fetched by the child
    assert round_trips(server) == 2


def test_async_client_prefetches_for_concurrent_awaits(cluster: Cluster) -> None:
    server = cluster.server()

    async def main() -> tuple[list[int], list[int]]:
        async with AsyncClient(server.bind, prefetch=10) as client:
            together = await asyncio.gather(*(client.next("async") for _ in range(25)))
            one_by_one = [await client.next("async") for _ in range(5)]
            return list(together), one_by_one

    together, one_by_one = asyncio.run(main())
    assert sorted(together) == list(range(1, 26))
    assert one_by_one == list(range(26, 31))
    assert round_trips(server) == 3
