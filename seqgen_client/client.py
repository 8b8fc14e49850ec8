"""``Client``: the blocking client, safe to share between threads and across fork().

Each attempt borrows a REQ socket for its endpoint from a small pool, so
threads run their round trips side by side. A socket whose reply did not come
in time is closed, never reused (the Lazy Pirate pattern of the ZeroMQ guide):
a late reply dies with it and can never be read by another call. The first
attempt of a call is a lean fast path; failover is planned by ``failover.Call``.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from types import TracebackType

import zmq

from seqgen_client.base import ClientBase
from seqgen_client.failover import FAILOVER_CODES, NO_ANSWER, Call, Failure
from seqgen_client.forksafe import keep_from_parent
from seqgen_client.lastseen import values_of
from seqgen_client.sockets import connect
from seqgen_common.errors import SeqgenError, Unavailable
from seqgen_common.protocol import validate_name

__all__ = ["Client"]


class _Block:
    """Prefetched numbers of one name, and the lock that lets one thread at a time refill them."""

    __slots__ = ("refill", "values")

    def __init__(self) -> None:
        self.values: deque[int] = deque()  # append and popleft are atomic: no lock to take one
        self.refill = threading.Lock()


class _Conn:
    """A pooled REQ socket and the receive timeout it is set to."""

    __slots__ = ("sock", "timeout_ms")

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock
        self.timeout_ms = -1


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class Client(ClientBase):
    """Numbers from seqgen servers or proxies, with failover; safe to share between
    threads and across ``os.fork()``. The arguments are those of ``ClientBase``."""

    def _setup(self) -> None:
        self._first_timeout_ms = _ms(self._first_timeout_s)
        self._open()

    def _open(self) -> None:
        """Fresh process-local state: lock, context (made on first use), socket pools."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._idle: list[list[_Conn]] = [[] for _ in self._endpoints]
        self._in_use = 0
        self._blocks: dict[str, _Block] = {}
        """Prefetched numbers per name: the parent's are never used in a forked child."""

    def _after_fork(self) -> None:
        """In a forked child: the parent's sockets belong to the parent; start afresh."""
        keep_from_parent(self._ctx, self._idle)
        self._open()

    # ---- public API -------------------------------------------------------------------

    def next(self, name: str) -> int:
        """The next number for ``name`` (from the prefetch buffer when ``prefetch`` > 1)."""
        if self._prefetch == 1:
            return self._call(name, 1)[0]
        return self._next_prefetched(name)

    def next_many(self, name: str, count: int) -> list[int]:
        """``count`` (1..1000) numbers for ``name`` in one round trip, ascending.

        Always a round trip of its own: it neither uses nor fills the prefetch buffer.
        """
        return self._call(name, count)

    def close(self) -> None:
        """Close the sockets; calls in other threads finish first. Idempotent."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._blocks = {}
            idle = [conn for pool in self._idle for conn in pool]
            self._idle = [[] for _ in self._endpoints]
            ctx = self._ctx if self._in_use == 0 else None
        for conn in idle:
            conn.sock.close(linger=0)
        if ctx is not None:
            ctx.term()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({list(self._endpoints)!r})"

    # ---- prefetch -----------------------------------------------------------------------

    def _next_prefetched(self, name: str) -> int:
        """One number from ``name``'s buffer, refilled by one batch round trip when empty."""
        if self._pid != os.getpid():
            self._after_fork()  # the parent's buffered numbers are the parent's
        if self._closed:
            raise ValueError("this seqgen Client is closed")
        try:
            block = self._blocks.get(name)
        except TypeError:  # unhashable: certainly not a name
            block = None
        if block is None:
            validate_name(name)  # nothing is kept for a name a server would refuse
            with self._lock:
                block = self._blocks.setdefault(name, _Block())
        values = block.values
        try:
            return values.popleft()
        except IndexError:
            pass
        with block.refill:  # one batch per name at a time: blocks come in ascending order
            try:
                return values.popleft()  # another thread refilled it meanwhile
            except IndexError:
                pass
            fetched = self._call(name, self._prefetch)
            values.extend(fetched[1:])
            return fetched[0]

    # ---- one call -----------------------------------------------------------------------

    def _call(self, name: str, count: int) -> list[int]:
        if self._pid != os.getpid():
            self._after_fork()
        frame = self._last.request(name, count)
        started = time.monotonic()
        with self._lock:
            index = self._rotation.pick(started)
        assert index is not None
        reply = self._attempt(index, frame, self._first_timeout_ms)
        failure: Failure = NO_ANSWER
        if reply is not None:
            try:
                return self._accept(name, count, index, started, reply)
            except SeqgenError as exc:
                if exc.code not in FAILOVER_CODES:
                    raise
                failure = exc
        return self._failover(name, count, frame, index=index, started=started, failure=failure)

    def _accept(self, name: str, count: int, index: int, started: float, reply: bytes) -> list[int]:
        """The numbers in ``index``'s reply, remembered; or the error it carries."""
        try:
            values = values_of(reply, count)
        except SeqgenError as exc:
            if exc.code not in FAILOVER_CODES:
                with self._lock:
                    self._rotation.succeeded(index, started)
            raise
        with self._lock:
            self._rotation.succeeded(index, started)
            self._last.record(name, values[-1])
        return values

    def _failover(self, name: str, count: int, frame: bytes, *, index: int, started: float,
                  failure: Failure) -> list[int]:
        """The first attempt failed: plan the others until one answers or the deadline passes."""
        opts = self.options
        call = Call(self._rotation, self._endpoints, started, opts.deadline_s, opts.timeout_s)
        call.began(index)
        while True:
            now = time.monotonic()
            with self._lock:
                call.failed(index, started, now, failure)
                planned = call.next(now)
            if planned is None:
                raise call.error()
            index, timeout_s = planned
            started = now
            reply = self._attempt(index, frame, _ms(timeout_s))
            if reply is None:
                failure = NO_ANSWER
                continue
            try:
                return self._accept(name, count, index, started, reply)
            except SeqgenError as exc:
                if exc.code not in FAILOVER_CODES:
                    raise
                failure = exc

    def _attempt(self, index: int, frame: bytes, timeout_ms: int) -> bytes | None:
        """One round trip on ``index``: the reply, or None when none came in time."""
        with self._lock:
            if self._closed:
                raise ValueError("this seqgen Client is closed")
            pool = self._idle[index]
            conn = pool.pop() if pool else None
            self._in_use += 1
        reply: bytes | None = None
        try:
            if conn is None:
                conn = self._connect(index)
            sock = conn.sock
            if conn.timeout_ms != timeout_ms:
                sock.rcvtimeo = timeout_ms
                sock.sndtimeo = timeout_ms
                conn.timeout_ms = timeout_ms
            sock.send(frame)
            reply = sock.recv()
        except zmq.Again:
            reply = None  # no reply in time: the socket is closed with the late reply
        except zmq.ZMQError as exc:
            if self._closed:
                raise ValueError("this seqgen Client was closed during the call") from exc
            raise Unavailable(f"cannot use {self._endpoints[index]}: {exc}") from exc
        finally:
            self._release(index, conn, keep=reply is not None)
        return reply

    def _connect(self, index: int) -> _Conn:
        with self._lock:
            ctx = self._ctx
            if ctx is None:
                ctx = self._ctx = zmq.Context(io_threads=1)
        sock: zmq.Socket[bytes] = ctx.socket(zmq.REQ)
        connect(sock, self._endpoints[index], self.options)
        return _Conn(sock)

    def _release(self, index: int, conn: _Conn | None, *, keep: bool) -> None:
        """Give a socket back to the pool (or close it); the last call after close() ends zmq."""
        with self._lock:
            self._in_use -= 1
            if conn is not None and keep and not self._closed:
                self._idle[index].append(conn)
                conn = None
            ctx = self._ctx if self._closed and self._in_use == 0 else None
        if conn is not None:
            conn.sock.close(linger=0)
        if ctx is not None:
            ctx.term()
