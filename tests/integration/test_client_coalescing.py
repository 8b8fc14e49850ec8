"""Client coalescing against real servers: concurrent calls for one name share requests.

Every caller gets its own number, none is skipped without being counted, errors
and failover reach every caller of a shared request, and each caller keeps its
own deadline.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from seqgen_client import AsyncClient, Client, ExhaustedError, Unavailable
from seqgen_common.control import GetStatus, RaiseFloor, Status, decode_control_reply, encode_control
from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, ServerProc, request


def issued(server: ServerProc) -> int:
    reply = request(server.control, encode_control(GetStatus()))
    assert reply is not None
    status = decode_control_reply(reply[0])
    assert isinstance(status, Status)
    return status.counters.numbers_issued


def test_concurrent_awaits_share_requests_and_get_distinct_numbers(cluster: Cluster) -> None:
    server = cluster.server(1, 1)

    async def main() -> tuple[list[int], int, int]:
        async with AsyncClient(server.bind) as client:
            values = await asyncio.gather(*(client.next("together") for _ in range(500)))
            return values, client.stats.requests, client.stats.coalesced_calls

    values, requests, coalesced = asyncio.run(main())
    assert sorted(values) == list(range(1, 501))  # each caller its own number, none skipped
    assert requests <= 50, requests  # 500 calls, a handful of requests
    assert coalesced >= 450
    assert issued(server) == 500


def test_threads_share_requests_of_a_client(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    got: list[int] = []
    lock = threading.Lock()
    with Client(server.bind) as client:

        def work() -> None:
            mine = [client.next("threads") for _ in range(100)]
            with lock:
                got.extend(mine)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        stats = client.stats
        assert sum(len(pool) for pool in client._idle) <= 2  # a peek: sockets are reused
    assert sorted(got) == list(range(1, 1601))
    assert stats.calls == 1600
    assert stats.requests < 1600 and stats.coalesced_calls > 0, stats
    assert stats.lost_numbers == 0


def test_without_coalescing_every_call_is_a_request(cluster: Cluster) -> None:
    server = cluster.server(1, 1)

    async def main() -> int:
        async with AsyncClient(server.bind, coalesce=False) as client:
            await asyncio.gather(*(client.next("alone") for _ in range(50)))
            return client.stats.requests

    assert asyncio.run(main()) == 50


def test_a_lone_caller_sends_at_once(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    with Client(server.bind) as client:
        values = [client.next("lone") for _ in range(20)]
        assert client.stats.requests == 20  # nothing waited to be gathered
    assert values == list(range(1, 21))


def test_numbers_of_callers_that_gave_up_are_counted(cluster: Cluster) -> None:
    """Cancelled awaits: their numbers go to others or are counted lost, never silently."""
    server = cluster.server(1, 1)

    async def main() -> tuple[list[int], int]:
        async with AsyncClient(server.bind) as client:
            tasks = [asyncio.ensure_future(client.next("cancel")) for _ in range(300)]
            await asyncio.sleep(0)  # every task has joined its lane
            for task in tasks[1::3]:
                task.cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            values = [v for v in done if isinstance(v, int)]
            return values, client.stats.lost_numbers

    values, lost = asyncio.run(main())
    assert len(values) == len(set(values)) == 200
    # Every number the server handed to this client went to a caller or is counted lost.
    assert issued(server) == len(values) + lost


def test_awaits_cancelled_at_any_moment_never_strand_the_others(cluster: Cluster) -> None:
    """Cancellations land at every moment of a call: from timers, and from awaits that just
    got their number (those run before the next leader does, so some hit an await just
    handed a batch whose request is already out, or one whose number just came). The
    others still get their numbers at once, not at their deadline, and every number the
    server issued is taken or counted lost."""
    server = cluster.server(1, 1)

    async def main() -> tuple[list[int], int, int]:
        rng = random.Random(13)
        values: list[int] = []
        cancelled = 0
        async with AsyncClient(server.bind, deadline_s=60.0) as client:
            loop = asyncio.get_running_loop()
            for _ in range(100):
                tasks: list[asyncio.Task[int]] = []

                async def call(tasks: list[asyncio.Task[int]] = tasks) -> int:
                    value = await client.next("chaos")
                    other = rng.choice(tasks)
                    if rng.random() < 0.5 and other is not asyncio.current_task():
                        other.cancel()  # (a task cancelled as it returns is counted cancelled)
                    return value

                tasks += [asyncio.ensure_future(call()) for _ in range(64)]
                for task in tasks[::4]:
                    loop.call_later(rng.uniform(0.0, 0.003), task.cancel)
                done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10.0)
                values += [v for v in done if isinstance(v, int)]
                cancelled += sum(isinstance(v, asyncio.CancelledError) for v in done)
            return values, cancelled, client.stats.lost_numbers

    values, cancelled, lost = asyncio.run(main())
    assert len(values) == len(set(values)) == 100 * 64 - cancelled
    assert cancelled > 0
    assert issued(server) == len(values) + lost


@pytest.mark.parametrize("moment", ["handed a batch to lead", "given its number"])
def test_an_await_cancelled_between_wake_up_and_run_loses_nothing_silently(
        cluster: Cluster, moment: str) -> None:
    """A leads alone while B and C wait. Then either B, just handed the batch [B, C] (its
    request already sent by A), or C, just given its number by B, is cancelled before it
    runs, by the await that woke it. The request goes on for the others; the number nobody
    takes is counted lost."""
    server = cluster.server(1, 1)

    async def main() -> tuple[list[object], int]:
        async with AsyncClient(server.bind, deadline_s=60.0) as client:
            tasks: dict[str, asyncio.Task[int]] = {}

            async def call(who: str, then_cancel: str | None) -> int:
                value = await client.next("moment")
                if then_cancel is not None:
                    tasks[then_cancel].cancel()
                return value

            plan = {"a": "b", "b": None} if moment == "handed a batch to lead" else {"a": None, "b": "c"}
            tasks["a"] = asyncio.ensure_future(call("a", plan["a"]))
            await asyncio.sleep(0)  # A's request is out
            tasks["b"] = asyncio.ensure_future(call("b", plan["b"]))
            tasks["c"] = asyncio.ensure_future(call("c", None))
            await asyncio.sleep(0)  # B and C wait in the lane
            done = await asyncio.wait_for(asyncio.gather(*tasks.values(), return_exceptions=True), 10)
            return list(done), client.stats.lost_numbers

    (a, b, c), lost = asyncio.run(main())
    if moment == "handed a batch to lead":
        assert (a, c) == (1, 2) and isinstance(b, asyncio.CancelledError)
    else:
        assert (a, b) == (1, 2) and isinstance(c, asyncio.CancelledError)
    assert lost == 1  # 3: its caller was cancelled, and nobody else waited
    assert issued(server) == 3


def test_an_error_reaches_every_caller_of_a_shared_request(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    assert request(server.control, encode_control(RaiseFloor(name="full", value=MAX_VALUE)))

    async def main() -> list[BaseException | int]:
        async with AsyncClient(server.bind) as client:
            return await asyncio.gather(*(client.next("full") for _ in range(40)),
                                        return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, ExhaustedError) for o in outcomes), outcomes


def test_a_shared_request_fails_over_for_all_its_callers(cluster: Cluster) -> None:
    frozen, alive = cluster.server(1, 2), cluster.server(2, 2)
    frozen.stop()
    try:
        async def main() -> list[int]:
            async with AsyncClient([frozen.bind, alive.bind], timeout_s=0.3, deadline_s=5.0) as client:
                return await asyncio.gather(*(client.next("over") for _ in range(60)))

        values = asyncio.run(main())
    finally:
        frozen.cont()
    assert len(set(values)) == 60
    assert all(v % 2 == 0 for v in values)  # all from the server that answers


@pytest.mark.parametrize("kind", ["threads", "asyncio"])
def test_each_caller_keeps_its_own_deadline(cluster: Cluster, kind: str) -> None:
    """A and B wait on a frozen server; B, who came 0.4 s later, gives up 0.4 s later."""
    frozen = cluster.server(1, 1)
    frozen.stop()
    deadline_s = 1.0
    elapsed: dict[str, float] = {}
    try:
        if kind == "threads":
            with Client(frozen.bind, timeout_s=0.3, deadline_s=deadline_s) as client:

                def call(who: str) -> None:
                    started = time.monotonic()
                    with pytest.raises(Unavailable):
                        client.next("late")
                    elapsed[who] = time.monotonic() - started

                a = threading.Thread(target=call, args=("a",))
                a.start()
                time.sleep(0.4)  # B arrives while A's request is out: B waits in the lane
                call("b")
                a.join(10)
        else:
            async def main() -> None:
                async with AsyncClient(frozen.bind, timeout_s=0.3, deadline_s=deadline_s) as client:

                    async def call(who: str, delay_s: float) -> None:
                        await asyncio.sleep(delay_s)
                        started = time.monotonic()
                        with pytest.raises(Unavailable):
                            await client.next("late")
                        elapsed[who] = time.monotonic() - started

                    await asyncio.gather(call("a", 0.0), call("b", 0.4))

            asyncio.run(main())
    finally:
        frozen.cont()
    for who in ("a", "b"):
        assert deadline_s - 0.1 <= elapsed[who] < deadline_s + 1.0, elapsed  # its own deadline
