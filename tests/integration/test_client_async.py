"""``AsyncClient`` against real seqgen servers: concurrency, late replies, loops, fork, errors."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import zmq

from seqgen_client import AsyncClient, ExhaustedError, RequestError, SeqgenError, Unavailable
from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, ServerProc, in_forked_child, numbers, tcp

DRIFT = 10


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerProc, ServerProc]]:
    """Instances 1 (odd) and 2 (even) of 2, shared by the tests that kill nothing."""
    root = Path(tempfile.mkdtemp(prefix="sga", dir="/tmp"))
    cluster = Cluster(root)
    try:
        yield cluster.server(1, 2, drift=DRIFT), cluster.server(2, 2, drift=DRIFT)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def test_the_server_echoes_a_dealer_s_request_id_envelope(
    pair: tuple[ServerProc, ServerProc],
) -> None:
    """What AsyncClient relies on: [id, "", body] comes back as [id, "", reply]."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(pair[0].bind)
        for rid in (b"\x00\x00\x00\x00\x00\x00\x00\x01", b"\x07" * 8):
            sock.send_multipart([rid, b"", b'["envelope","0"]'])
            assert sock.poll(5000)
            frames = sock.recv_multipart()
            assert frames[:2] == [rid, b""]
            assert len(frames) == 3
            assert msgspec.json.decode(frames[2])[0] is None
    finally:
        sock.close()


def test_awaits_spread_over_both_servers(pair: tuple[ServerProc, ServerProc]) -> None:
    async def main() -> list[int]:
        async with AsyncClient([pair[0].bind, pair[1].bind]) as client:
            values = [await client.next("aspread") for _ in range(20)]
            batch = await client.next_many("aspread", 30)
            assert client.last("aspread") == max(values + batch)
            return values + batch

    values = asyncio.run(main())
    assert len(set(values)) == 50
    assert {v % 2 for v in values[:20]} == {0, 1}
    batch = values[20:]
    assert batch == list(range(batch[0], batch[0] + 60, 2))


def test_200_concurrent_awaits(pair: tuple[ServerProc, ServerProc]) -> None:
    async def main() -> list[int]:
        async with AsyncClient([pair[0].bind, pair[1].bind]) as client:
            return await asyncio.gather(*(client.next("concurrent") for _ in range(200)))

    values = asyncio.run(main())
    assert len(values) == 200
    assert len(set(values)) == 200
    assert {v % 2 for v in values} == {0, 1}


def test_concurrent_awaits_each_get_their_own_reply(pair: tuple[ServerProc, ServerProc]) -> None:
    counts = list(range(1, 61))

    async def main() -> list[list[int]]:
        async with AsyncClient([pair[0].bind, pair[1].bind]) as client:
            return await asyncio.gather(*(client.next_many("own", n) for n in counts))

    batches = asyncio.run(main())
    assert [len(b) for b in batches] == counts
    flat = [v for b in batches for v in b]
    assert len(set(flat)) == len(flat)


def test_awaits_wait_side_by_side_not_one_after_another(cluster: Cluster) -> None:
    """200 awaits on a frozen server all give up after one deadline, not 200 of them."""
    server = cluster.server(1, 1)

    async def main() -> list[object]:
        async with AsyncClient(server.bind, timeout_s=1.0, deadline_s=1.0) as client:
            assert await client.next("frozen") == 1
            server.stop()
            return await asyncio.gather(
                *(client.next("frozen") for _ in range(200)), return_exceptions=True
            )

    started = time.monotonic()
    outcomes = asyncio.run(main())
    elapsed = time.monotonic() - started
    server.cont()
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes[:3]
    assert elapsed < 6.0, elapsed  # one after another would take 200 s


def test_a_late_reply_is_dropped_never_given_to_another_await(cluster: Cluster) -> None:
    server = cluster.server(1, 1)

    async def main() -> list[list[int]]:
        async with AsyncClient(server.bind, timeout_s=0.3, deadline_s=0.3) as client:
            assert await client.next_many("alate", 2) == [1, 2]
            server.stop()
            stale = await asyncio.gather(
                *(client.next_many("alate", n) for n in range(1, 21)), return_exceptions=True
            )
            assert all(isinstance(o, Unavailable) for o in stale), stale[:3]
            server.cont()
            # The thawed server answers the 20 stale requests on the same DEALER socket
            # while these new ones wait: each must get its own reply (with one endpoint,
            # a wrong one would surface as a count mismatch error).
            return await asyncio.gather(*(client.next_many("alate", n) for n in range(21, 41)))

    batches = asyncio.run(main())
    assert [len(b) for b in batches] == list(range(21, 41))
    flat = [v for b in batches for v in b]
    assert len(set(flat)) == len(flat)


def test_invalid_arguments_are_refused_before_anything_is_sent() -> None:
    async def main() -> None:
        async with AsyncClient(tcp(), timeout_s=5.0, deadline_s=5.0) as client:
            for call, code in (
                (client.next(""), "BAD_NAME"),
                (client.next("\x00"), "BAD_NAME"),
                (client.next_many("ok", 0), "BAD_COUNT"),
                (client.next_many("ok", 1001), "BAD_COUNT"),
            ):
                started = time.monotonic()
                with pytest.raises(RequestError) as info:
                    await call
                assert time.monotonic() - started < 1.0
                assert info.value.code == code

    asyncio.run(main())


def test_exhausted_comes_from_the_server(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    assert numbers(server.bind, "aedge", last=MAX_VALUE - 2) == [MAX_VALUE - 1]

    async def main() -> None:
        async with AsyncClient(server.bind) as client:
            assert await client.next("aedge") == MAX_VALUE
            with pytest.raises(ExhaustedError) as info:
                await client.next("aedge")
            assert info.value.code == "EXHAUSTED"
            assert await client.next("other") == 1

    asyncio.run(main())


def test_one_client_serves_successive_event_loops(pair: tuple[ServerProc, ServerProc]) -> None:
    client = AsyncClient([pair[0].bind, pair[1].bind])
    first = asyncio.run(client.next("loops"))
    second = asyncio.run(client.next("loops"))  # the first loop is closed now
    third = asyncio.run(client.next_many("loops", 3))
    asyncio.run(client.close())
    values = [first, second, *third]
    assert len(set(values)) == 5


def test_calls_after_close_are_refused(pair: tuple[ServerProc, ServerProc]) -> None:
    async def main() -> None:
        client = AsyncClient(pair[0].bind)
        assert await client.next("aclosed") > 0
        await client.close()
        await client.close()
        with pytest.raises(ValueError, match="closed"):
            await client.next("aclosed")

    asyncio.run(main())


def test_close_ends_calls_that_still_wait(cluster: Cluster) -> None:
    server = cluster.server(1, 1)

    async def main() -> BaseException | int:
        client = AsyncClient(server.bind, timeout_s=10.0, deadline_s=10.0)
        assert await client.next("ending") == 1
        server.stop()
        waiting = asyncio.ensure_future(client.next("ending"))
        while not any(c is not None and c._waiting for c in client._channels):  # a peek: it waits
            await asyncio.sleep(0.01)
        await client.close()
        try:
            return await asyncio.wait_for(waiting, 5.0)
        except (SeqgenError, ValueError) as exc:
            return exc

    started = time.monotonic()
    outcome = asyncio.run(main())
    server.cont()
    assert isinstance(outcome, ValueError), outcome
    assert time.monotonic() - started < 5.0


def test_a_forked_child_reopens_its_sockets(pair: tuple[ServerProc, ServerProc]) -> None:
    client = AsyncClient([pair[0].bind, pair[1].bind], timeout_s=2.0)
    before = asyncio.run(client.next_many("afork", 3))
    status, in_child = in_forked_child(lambda: asyncio.run(client.next_many("afork", 3)))
    assert status == 0
    assert isinstance(in_child, list), in_child
    after = asyncio.run(client.next_many("afork", 3))
    asyncio.run(client.close())
    everything = before + in_child + after
    assert len(set(everything)) == 9
