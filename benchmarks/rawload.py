"""Lean load on raw ZeroMQ sockets: the load generators and the client-side floors.

The server and proxy scenarios use ``pipeline``, ``lockstep`` and ``burst``:
they send a prepared frame and check only that a reply starts with ``[null``,
so the process under test, not the load generator, sets the pace. An error
reply is rare and only then decoded, for its code.

``lockstep`` with ``values``, ``threads_raw`` and ``async_floor`` are the
floors of the client scenarios: what any client must do per call (encode the
request with its ``last``, decode the reply, keep the highest number).
Every socket has a receive timeout, so no load can hang on a lost reply.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

import msgspec
import zmq
import zmq.asyncio
from zmq.backend import Socket as _BackendSocket

from benchmarks.callers import async_callers, thread_callers
from benchmarks.commands import Command, Result
from benchmarks.window import Window, sleep_until

__all__ = ["async_floor", "burst", "lockstep", "pipeline", "threads_raw"]

RECV_TIMEOUT_MS: Final = 10_000
"""A reply that has not come after this long is taken as lost."""

_send = _BackendSocket.send  # the low-level methods take plain int flags: cheaper per frame
_recv = _BackendSocket.recv
_MORE: Final = int(zmq.SNDMORE)
_OK: Final = b"[null"
_encode = msgspec.json.Encoder().encode
_decode_reply = msgspec.json.Decoder(list[str | None]).decode


def _error_code(body: bytes) -> str:
    try:
        reply = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "MALFORMED"
    if isinstance(reply, list) and reply and isinstance(reply[0], str):
        return reply[0]
    return "MALFORMED"


def _request(cmd: Command, name: str | None = None, last: int = 0) -> bytes:
    body: list[object] = [name or cmd.name, str(last)]
    if cmd.count != 1:
        body.append(cmd.count)
    return _encode(body)


def _socket(ctx: zmq.Context[zmq.Socket[bytes]], kind: int, endpoint: str) -> zmq.Socket[bytes]:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
    sock.connect(endpoint)
    return sock


def pipeline(cmd: Command, ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """A DEALER keeping ``depth`` requests in flight until the window closes, then draining."""
    sock = _socket(ctx, zmq.DEALER, cmd.endpoint)
    body = _request(cmd)
    result = Result()
    errors: Counter[str] = Counter()
    ok = 0
    sleep_until(cmd.start)
    window = Window()
    deadline = window.began + cmd.seconds
    clock = time.perf_counter
    for _ in range(cmd.depth):
        _send(sock, b"", _MORE)
        _send(sock, body, 0)
    in_flight = cmd.depth
    sent = cmd.depth
    try:
        while in_flight:
            _recv(sock, 0)  # the empty delimiter
            reply = _recv(sock, 0)
            in_flight -= 1
            if reply[:5] == _OK:
                ok += 1
            else:
                errors[_error_code(reply)] += 1
            if clock() < deadline:
                _send(sock, b"", _MORE)
                _send(sock, body, 0)
                in_flight += 1
                sent += 1
    except zmq.Again:
        result.unanswered = in_flight
    window.close(result)
    sock.close()
    result.ok, result.sent, result.errors = ok, sent, dict(errors)
    result.numbers = ok * cmd.count
    return result


def lockstep(cmd: Command, ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """A REQ socket, one request at a time. With ``values``: a raw client (the Client.next floor)."""
    sock = _socket(ctx, zmq.REQ, cmd.endpoint)
    result = Result()
    sleep_until(cmd.start)
    window = Window()
    try:
        result.ok, result.errors = (_lockstep_values if cmd.values else _lockstep_blind)(
            cmd, sock, window.began + cmd.seconds
        )
    except zmq.Again:
        result.unanswered = 1
    window.close(result)
    sock.close()
    result.numbers = result.ok * cmd.count
    result.sent = result.answered + result.unanswered
    return result


def _lockstep_blind(cmd: Command, sock: zmq.Socket[bytes], deadline: float) -> tuple[int, dict[str, int]]:
    body = _request(cmd)
    clock = time.perf_counter
    ok = 0
    errors: Counter[str] = Counter()
    while clock() < deadline:
        _send(sock, body, 0)
        reply = _recv(sock, 0)
        if reply[:5] == _OK:
            ok += 1
        else:
            errors[_error_code(reply)] += 1
    return ok, dict(errors)


def _lockstep_values(cmd: Command, sock: zmq.Socket[bytes], deadline: float) -> tuple[int, dict[str, int]]:
    clock = time.perf_counter
    name = cmd.name
    last = 0
    ok = 0
    errors: Counter[str] = Counter()
    while clock() < deadline:
        _send(sock, _encode([name, str(last)]), 0)
        reply = _decode_reply(_recv(sock, 0))
        if reply[0] is None:
            last = int(reply[-1] or 0)
            ok += 1
        else:
            errors[reply[0]] += 1
    return ok, dict(errors)


def threads_raw(cmd: Command, ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``depth`` threads, each with its own REQ socket and raw client loop (the shared-Client floor)."""
    socks: list[zmq.Socket[bytes]] = []

    def make_call(_index: int) -> Callable[[], int]:
        sock = _socket(ctx, zmq.REQ, cmd.endpoint)
        socks.append(sock)
        name = cmd.name
        last = 0

        def call() -> int:
            nonlocal last
            _send(sock, _encode([name, str(last)]), 0)
            reply = _decode_reply(_recv(sock, 0))
            if reply[0] is not None:
                raise RuntimeError(f"error reply {reply}")
            last = int(reply[-1] or 0)
            return last

        return call

    result = thread_callers(cmd, make_call)
    for sock in socks:
        sock.close()
    return result


def burst(cmd: Command, ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``depth`` requests sent at once, each for a new name and with its own id; then wait.

    Stops when every request is answered, when no reply came for ``quiet_s``, or after
    ``cap_s``. ``seconds`` is the time until the last reply (the drain time).
    """
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # the client holds the whole burst: only the far end can drop
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.RCVTIMEO, max(1, int(cmd.quiet_s * 1000)))
    sock.connect(cmd.endpoint)
    n = cmd.depth
    ids = [i.to_bytes(4, "big") for i in range(n)]
    bodies = [_request(cmd, f"{cmd.name}-{cmd.tag}-{i}") for i in range(n)]
    seen = bytearray(n)
    errors: Counter[str] = Counter()
    result = Result(sent=n)
    sleep_until(cmd.start)
    window = Window()
    cap = window.began + cmd.cap_s
    for request_id, body in zip(ids, bodies, strict=True):
        _send(sock, request_id, _MORE)
        _send(sock, b"", _MORE)
        _send(sock, body, 0)
    answered = 0
    last_reply = window.began
    while answered < n:
        try:
            frames = sock.recv_multipart()
        except zmq.Again:
            break  # quiet for quiet_s: the rest is lost
        last_reply = time.perf_counter()
        index = int.from_bytes(frames[0], "big") if len(frames) == 3 and len(frames[0]) == 4 else n
        if index >= n:
            errors["MALFORMED"] += 1
        elif seen[index]:
            result.duplicates += 1
        else:
            seen[index] = 1
            answered += 1
            if frames[2][:5] == _OK:
                result.ok += 1
            else:
                errors[_error_code(frames[2])] += 1
        if last_reply > cap:
            break
    window.close(result, end=last_reply)
    sock.close()
    result.unanswered = n - answered
    result.numbers = result.ok * cmd.count
    result.errors = dict(errors)
    return result


def async_floor(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``depth`` concurrent callers on one asyncio DEALER, a future per request id."""
    return asyncio.run(_async_floor(cmd))


async def _async_floor(cmd: Command) -> Result:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(cmd.endpoint)
    loop = asyncio.get_running_loop()
    pending: dict[bytes, asyncio.Future[bytes]] = {}
    ids = itertools.count()
    name = cmd.name
    last = 0

    async def read() -> None:
        while True:
            frames = await sock.recv_multipart()
            waiter = pending.pop(frames[0], None)
            if waiter is not None:
                waiter.set_result(frames[-1])

    async def next_number() -> int:
        nonlocal last
        request_id = next(ids).to_bytes(8, "little")
        waiter: asyncio.Future[bytes] = loop.create_future()
        pending[request_id] = waiter
        await sock.send_multipart([request_id, b"", _encode([name, str(last)])])
        reply = _decode_reply(await waiter)
        if reply[0] is not None:
            raise RuntimeError(f"error reply {reply}")
        value = int(reply[-1] or 0)
        last = max(last, value)
        return value

    reader = loop.create_task(read())
    result = await async_callers(cmd, next_number)
    reader.cancel()
    sock.close()
    ctx.term()
    return result
