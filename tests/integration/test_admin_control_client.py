"""The admin's asyncio control client: against a real server, and against a raw ROUTER
peer that answers out of order, late, or with garbage (what a real server never does)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec
import pytest
import zmq
import zmq.asyncio

from seqgen_admin.control_client import ControlClient
from seqgen_common.control import (
    GetSequence,
    Pong,
    SequenceInfo,
    decode_control_request,
    encode_control,
)
from seqgen_common.errors import InternalError, SeqgenError, Unavailable
from tests.conftest import Cluster, numbers, tcp


def test_calls_against_a_real_server(cluster: Cluster) -> None:
    server = cluster.server(instance=2, instances=3)
    numbers(server.bind, "cc/a", count=2)

    async def scenario() -> None:
        async with ControlClient(server.control, timeout_s=2.0) as client:
            pong = await client.ping()
            assert (pong.instance, pong.instances) == (2, 3)
            status = await client.status()
            assert status.sequences == 1 and status.counters.numbers_issued == 2
            page = await client.list_sequences("cc/", None, 10)
            assert [i.name for i in page.items] == ["cc/a"] and page.next_cursor is None
            assert (await client.get_sequence("cc/a")).current == 5
            with pytest.raises(SeqgenError) as missing:
                await client.get_sequence("cc/none")
            assert missing.value.code == "NOT_FOUND"
            raised = await client.raise_floor("cc/a", 100)
            assert (raised.current, raised.durable) == (100, 100)
            with pytest.raises(SeqgenError) as conflict:
                await client.raise_floor("cc/a", 99)
            assert conflict.value.code == "CONFLICT"
            # Many at once over one socket: each call gets its own reply.
            infos = await asyncio.gather(*(client.get_sequence("cc/a") for _ in range(50)),
                                         client.ping())
            assert all(isinstance(i, SequenceInfo) and i.current == 100 for i in infos[:-1])
            assert isinstance(infos[-1], Pong)

    asyncio.run(scenario())
    assert numbers(server.bind, "cc/a") == [101]


Peer = Callable[[zmq.asyncio.Socket], Awaitable[None]]


def with_peer(peer: Peer, scenario: Callable[[ControlClient], Awaitable[None]],
              timeout_s: float = 0.5) -> None:
    """Run ``scenario`` with a client connected to a ROUTER that ``peer`` drives."""
    endpoint = tcp()

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(endpoint)
        task = asyncio.create_task(peer(router))
        try:
            async with ControlClient(endpoint, timeout_s=timeout_s, context=ctx) as client:
                await scenario(client)
        finally:
            task.cancel()
            router.close(0)
            ctx.term()

    asyncio.run(main())


def info_for(body: bytes) -> bytes:
    request = decode_control_request(body)
    assert isinstance(request, GetSequence)
    return encode_control(SequenceInfo(name=request.name, current=len(request.name), durable=0))


def test_replies_out_of_order_reach_the_right_calls() -> None:
    async def peer(router: zmq.asyncio.Socket) -> None:
        held = [await router.recv_multipart() for _ in range(3)]
        for identity, request_id, empty, body in reversed(held):
            await router.send_multipart([identity, request_id, empty, info_for(body)])

    async def scenario(client: ControlClient) -> None:
        names = ["a", "bb", "ccc"]
        got = await asyncio.gather(*(client.get_sequence(n) for n in names))
        assert [(i.name, i.current) for i in got] == [("a", 1), ("bb", 2), ("ccc", 3)]

    with_peer(peer, scenario, timeout_s=5.0)


def test_garbage_is_dropped_and_a_malformed_reply_fails_only_its_call() -> None:
    async def peer(router: zmq.asyncio.Socket) -> None:
        identity, request_id, empty, body = await router.recv_multipart()
        await router.send_multipart([identity, b"unknown-id", b"", info_for(body)])
        await router.send_multipart([identity, request_id, b"not empty", info_for(body)])
        await router.send_multipart([identity, request_id])
        await router.send_multipart([identity, request_id, empty, b"{not json"])
        identity, request_id, empty, body = await router.recv_multipart()
        await router.send_multipart([identity, request_id, empty, info_for(body)])

    async def scenario(client: ControlClient) -> None:
        with pytest.raises(InternalError):
            await client.get_sequence("x")
        assert (await client.get_sequence("after")).current == 5

    with_peer(peer, scenario, timeout_s=5.0)


def test_a_late_reply_is_dropped_and_the_next_call_works() -> None:
    async def peer(router: zmq.asyncio.Socket) -> None:
        first = await router.recv_multipart()
        second = await router.recv_multipart()  # sent after the first call gave up
        identity, request_id, empty, body = first
        await router.send_multipart([identity, request_id, empty, info_for(body)])
        identity, request_id, empty, body = second
        await router.send_multipart([identity, request_id, empty, info_for(body)])

    async def scenario(client: ControlClient) -> None:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await client.get_sequence("late")
        assert 0.4 <= time.monotonic() - started < 2.0
        assert (await client.get_sequence("fresh!")).name == "fresh!"

    with_peer(peer, scenario, timeout_s=0.5)


def test_an_unexpected_reply_type_is_an_internal_error() -> None:
    async def peer(router: zmq.asyncio.Socket) -> None:
        identity, request_id, empty, _ = await router.recv_multipart()
        pong = Pong(version="x", instance=1, instances=1)
        await router.send_multipart([identity, request_id, empty, encode_control(pong)])

    async def scenario(client: ControlClient) -> None:
        with pytest.raises(InternalError, match="Pong"):
            await client.get_sequence("x")

    with_peer(peer, scenario, timeout_s=5.0)


def test_nobody_listening_is_unavailable_within_the_timeout() -> None:
    async def scenario() -> None:
        async with ControlClient(tcp(), timeout_s=0.3) as client:
            started = time.monotonic()
            results = await asyncio.gather(*(client.ping() for _ in range(20)),
                                           return_exceptions=True)
            assert all(isinstance(r, Unavailable) for r in results)
            assert time.monotonic() - started < 1.5
        with pytest.raises(Unavailable):
            await client.ping()  # closed

    asyncio.run(scenario())


def test_requests_are_one_json_frame_of_the_control_protocol() -> None:
    seen: list[object] = []

    async def peer(router: zmq.asyncio.Socket) -> None:
        identity, request_id, empty, body = await router.recv_multipart()
        seen.append(msgspec.json.decode(body))
        await router.send_multipart([identity, request_id, empty, info_for(body)])

    async def scenario(client: ControlClient) -> None:
        await client.get_sequence("n")

    with_peer(peer, scenario, timeout_s=5.0)
    assert seen == [{"type": "get_sequence", "name": "n"}]
