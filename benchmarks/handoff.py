"""The least a coalescing client for threads can do: what bounds issue 13's threads target.

``threads-handoff``: ``depth`` threads share one REQ socket the way any coalescing
client for threads must. A thread that finds no request out becomes the courier:
it sends one request for itself and for every thread waiting (``count`` = 1 + the
waiting), hands each waiting thread its number, and goes on while threads wait.
The waiting threads sleep on a lock each and wake one after the other (the
courier releases the first, each woken thread the next): measured here, that
beats releasing them all at once by about a quarter, as a woken thread then
finds the interpreter lock free more often. No validation, no failover, no
deadlines, no statistics, no socket pool: only what every coalesced call in a
thread costs in CPython, a wake-up and a hand-over of the interpreter lock. What
it reaches bounds what a shared ``Client`` can reach.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import msgspec
import zmq

from benchmarks.callers import thread_callers
from benchmarks.commands import Command, Result

__all__ = ["threads_handoff"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[str | None]).decode


def threads_handoff(cmd: Command, ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(cmd.endpoint)
    mutex = threading.Lock()
    waiting: list[list[object]] = []
    state = {"busy": False, "last": 0}
    sleepers = threading.local()
    due: deque[object] = deque()
    """Locks of threads given their number, to be released one after the other."""

    def sleeper() -> threading.Lock:
        lock: threading.Lock | None = getattr(sleepers, "lock", None)
        if lock is None:
            lock = sleepers.lock = threading.Lock()
            lock.acquire()
        return lock

    def wake_next() -> None:
        try:
            lock = due.popleft()
        except IndexError:
            return
        assert isinstance(lock, type(mutex))
        lock.release()

    def round_trip(count: int) -> list[int]:
        sock.send(_encode([cmd.name, str(state["last"]), count]))
        reply = _decode(sock.recv())
        if reply[0] is not None:
            raise RuntimeError(f"error reply {reply}")
        values = [int(v or 0) for v in reply[1:]]
        state["last"] = values[-1]
        return values

    def next_number() -> int:
        with mutex:
            if state["busy"]:
                box: list[object] = [0, sleeper()]
                waiting.append(box)
            else:
                state["busy"] = True
                box = []
        if box:  # wait for the courier
            lock = box[1]
            assert isinstance(lock, type(mutex))
            lock.acquire()
            wake_next()
            value = box[0]
            assert isinstance(value, int)
            return value
        with mutex:
            batch, waiting[:] = waiting[:], []
        mine = None
        while True:
            values = round_trip(len(batch) + (mine is None))
            if mine is None:
                mine = values.pop(0)
            for box, value in zip(batch, values, strict=True):
                box[0] = value
                due.append(box[1])
            wake_next()
            with mutex:
                batch, waiting[:] = waiting[:], []
                if not batch:
                    state["busy"] = False
                    return mine

    def make_call(_index: int) -> Callable[[], object]:
        return next_number

    try:
        return thread_callers(cmd, make_call)
    finally:
        sock.close()
