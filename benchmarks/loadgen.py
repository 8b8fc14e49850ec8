"""Load generators, one per process: ``python -m benchmarks.loadgen MODE ...``.

Every mode waits until the wall-clock START (so all load processes run in the
same window), runs for SECONDS, and prints one JSON line: replies, numbers,
seconds. Modes:

    lockstep ENDPOINT START SECONDS NAME COUNT     REQ socket, one request at a time
    pipeline ENDPOINT START SECONDS NAME DEPTH     DEALER, DEPTH requests in flight
    client   ENDPOINT START SECONDS NAME PREFETCH  seqgen_client.Client.next
"""

from __future__ import annotations

import sys
import time

import msgspec
import zmq

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[str | None]).decode


def _wait(start: float) -> None:
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)


def _report(replies: int, numbers: int, seconds: float) -> None:
    sys.stdout.write(_encode({"replies": replies, "numbers": numbers, "seconds": seconds}).decode() + "\n")


def lockstep(endpoint: str, start: float, seconds: float, name: str, count: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    last = 0
    replies = 0
    _wait(start)
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        body = [name, str(last)] if count == 1 else [name, str(last), count]
        sock.send(_encode(body))
        reply = _decode(sock.recv())
        if reply[0] is not None:
            raise SystemExit(f"error reply: {reply}")
        last = int(reply[-1] or 0)
        replies += 1
    _report(replies, replies * count, time.perf_counter() - began)


def pipeline(endpoint: str, start: float, seconds: float, name: str, depth: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    body = _encode([name, "0"])
    replies = 0
    _wait(start)
    began = time.perf_counter()
    deadline = began + seconds
    for _ in range(depth):
        sock.send_multipart([b"", body])
    in_flight = depth
    while in_flight:
        frames = sock.recv_multipart()
        if _decode(frames[-1])[0] is not None:
            raise SystemExit(f"error reply: {frames}")
        replies += 1
        in_flight -= 1
        if time.perf_counter() < deadline:
            sock.send_multipart([b"", body])
            in_flight += 1
    _report(replies, replies, time.perf_counter() - began)


def client(endpoint: str, start: float, seconds: float, name: str, prefetch: int) -> None:
    from seqgen_client import Client  # noqa: PLC0415 - only this mode needs it

    options = {"prefetch": prefetch} if prefetch > 1 else {}
    with Client([endpoint], **options) as seq:
        replies = 0
        _wait(start)
        began = time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline:
            seq.next(name)
            replies += 1
    _report(replies, replies, time.perf_counter() - began)


if __name__ == "__main__":
    mode, endpoint_arg, start_arg, seconds_arg, name_arg, n_arg = sys.argv[1:]
    modes = {"lockstep": lockstep, "pipeline": pipeline, "client": client}
    modes[mode](endpoint_arg, float(start_arg), float(seconds_arg), name_arg, int(n_arg))
