"""Proxy coalescing against real servers: requests for one name share backend requests."""

from __future__ import annotations

import random
import threading
from itertools import pairwise

import msgspec
import zmq

from seqgen_common.control import GetStatus, RaiseFloor, Status, decode_control_reply, encode_control
from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, ServerProc, numbers, request


def server_requests(server: ServerProc) -> int:
    reply = request(server.control, encode_control(GetStatus()))
    assert reply is not None
    status = decode_control_reply(reply[0])
    assert isinstance(status, Status)
    return sum(status.counters.requests.values())


def pipelined(endpoint: str, bodies: list[bytes], in_flight: int) -> list[list[object]]:
    """Send ``bodies`` from one DEALER with ``in_flight`` outstanding; the decoded replies, in order."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    replies: dict[int, list[object]] = {}
    sent = 0
    try:
        while len(replies) < len(bodies):
            while sent < len(bodies) and sent - len(replies) < in_flight:
                sock.send_multipart([sent.to_bytes(4, "big"), b"", bodies[sent]])
                sent += 1
            assert sock.poll(10_000), f"no reply for 10 s ({len(replies)} of {len(bodies)})"
            frames = sock.recv_multipart()
            replies[int.from_bytes(frames[0], "big")] = msgspec.json.decode(frames[-1])
    finally:
        sock.close()
    return [replies[i] for i in range(len(bodies))]


def test_concurrent_requests_share_backend_requests_and_get_their_own_numbers(
    cluster: Cluster,
) -> None:
    odd, even = cluster.server(1, 2), cluster.server(2, 2)
    proxy = cluster.proxy([odd.bind, even.bind])
    before = server_requests(odd) + server_requests(even)
    rng = random.Random(3)
    counts = [rng.choice([1, 1, 1, 2, 5]) for _ in range(1200)]
    bodies = [msgspec.json.encode(["shared", "0", c]) for c in counts]
    results: list[list[list[object]]] = [[] for _ in range(4)]
    workers = [threading.Thread(target=lambda i=i: results[i].extend(
        pipelined(proxy.bind, bodies[i::4], 64))) for i in range(4)]  # type: ignore[misc]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    everything: list[int] = []
    for i, replies in enumerate(results):
        assert len(replies) == len(bodies[i::4])
        for count, reply in zip(counts[i::4], replies, strict=True):
            assert reply[0] is None, reply
            values = [int(str(v)) for v in reply[1:]]
            assert len(values) == count  # its own count, ascending, one server's numbers
            assert all(b - a == 2 for a, b in pairwise(values)), values
            everything += values
    assert len(everything) == len(set(everything)) == sum(counts)
    backend = server_requests(odd) + server_requests(even) - before
    assert backend * 4 <= len(bodies), f"{backend} backend requests for {len(bodies)} client requests"


def test_an_error_reaches_every_client_of_a_shared_request(cluster: Cluster) -> None:
    server = cluster.server()
    assert request(server.control, encode_control(RaiseFloor(name="edge", value=MAX_VALUE - 1)))
    proxy = cluster.proxy([server.bind])
    replies = pipelined(proxy.bind, [b'["edge","0",2]'] * 50, 50)
    # Shared or not, a request for 2 more numbers than exist is refused, every time.
    assert {str(reply[0]) for reply in replies} == {"EXHAUSTED"}
    assert numbers(server.bind, "edge", count=1) == [MAX_VALUE]  # nothing was issued


def test_a_coalescing_proxy_still_caps_last(cluster: Cluster) -> None:
    odd, even = cluster.server(1, 2, drift=10), cluster.server(2, 2, drift=10)
    proxy = cluster.proxy([odd.bind, even.bind])
    first = numbers(proxy.bind, "capped")[0]
    # Many clients at once claim to have seen a number far ahead.
    far = msgspec.json.encode(["capped", str(10**15)])
    replies = pipelined(proxy.bind, [far] * 300, 300)
    values = [int(str(v)) for reply in replies for v in reply[1:]]
    assert all(reply[0] is None for reply in replies)
    assert len(set(values)) == 300
    assert max(values) < first + 10_000  # the servers never jumped towards 10**15
