"""``Client``: the blocking client, safe to share between threads and across fork().

Each attempt borrows a REQ socket for its endpoint from a small pool, so
threads run their round trips side by side. A socket whose reply did not come
in time is closed, never reused (the Lazy Pirate pattern of the ZeroMQ guide):
a late reply dies with it and can never be read by another call.

Concurrent ``next`` calls for one name share a request (seqgen_client.lanes):
the thread that leads a batch does its round trip; the others wait on an
event, each until its own deadline, and are woken with their number, their
error, or a batch of their own to lead.
"""

from __future__ import annotations

import math
import os
import threading
from types import TracebackType

import zmq

from seqgen_client.base import Attempt, ClientBase, Waiter
from seqgen_client.failover import Reply
from seqgen_client.forksafe import keep_from_parent
from seqgen_client.lanes import Batch
from seqgen_common.errors import SeqgenError, Unavailable
from seqgen_common.sockets import CLIENT_REQ, open_socket

__all__ = ["Client"]


class _Conn:
    """A pooled REQ socket and the receive timeout it is set to."""

    __slots__ = ("sock", "timeout_ms")

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock
        self.timeout_ms = -1


class _ThreadWaiter(Waiter):
    """A waiter whose thread sleeps on an event (made only if it has to wait)."""

    __slots__ = ("event",)

    def __init__(self, started: float, deadline: float) -> None:
        super().__init__(started, deadline)
        self.event: threading.Event | None = None

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class Client(ClientBase):
    """Numbers from seqgen servers or proxies, with failover; safe to share between
    threads and across ``os.fork()``. The arguments are those of ``ClientBase``."""

    def _setup(self) -> None:
        self._open()

    def _open(self) -> None:
        """Fresh process-local state: lock, context (made on first use), socket pools."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._idle: list[list[_Conn]] = [[] for _ in self._endpoints]
        self._in_use = 0
        self._lanes.forget()  # a forked child never hands out its parent's numbers

    def _after_fork(self) -> None:
        """In a forked child: the parent's sockets belong to the parent; start afresh."""
        keep_from_parent(self._ctx, self._idle)
        self._open()

    # ---- public API -------------------------------------------------------------------

    def next(self, name: str) -> int:
        """The next number for ``name`` (shared with concurrent calls, or from the prefetch buffer)."""
        if self._pid != os.getpid():
            self._after_fork()
        self._check_open()
        waiter = self._waiter(name, _ThreadWaiter)
        with self._lock:
            batch = self._lanes.join(name, waiter)
            if batch is None and not waiter.answered:
                waiter.event = threading.Event()
        while True:
            if batch is not None:
                self._lead(batch, waiter)
            if waiter.answered:
                return waiter.result()
            assert waiter.event is not None
            waiter.event.wait(max(0.0, waiter.deadline - self._clock()))
            with self._lock:
                waiter.event.clear()
                batch = self._woken(waiter)

    def next_many(self, name: str, count: int) -> list[int]:
        """``count`` (1..1000) numbers for ``name`` in one round trip, ascending.

        Always a round trip of its own: it neither waits for other calls nor uses
        the prefetch buffer.
        """
        if self._pid != os.getpid():
            self._after_fork()
        self._check_open()
        return self._request(name, count, self._clock())

    def close(self) -> None:
        """Close the sockets; calls in other threads finish first. Idempotent."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lanes.forget()
            idle = [conn for pool in self._idle for conn in pool]
            self._idle = [[] for _ in self._endpoints]
            ctx = self._ctx if self._in_use == 0 else None
        for conn in idle:
            conn.sock.close(linger=0)
        if ctx is not None:
            ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- requests -----------------------------------------------------------------------

    def _lead(self, batch: Batch, leader: Waiter) -> None:
        """Send the request of ``batch`` and hand out what it brings (under the lock)."""
        outcome: list[int] | SeqgenError
        try:
            outcome = self._request(batch.name, batch.count, leader.started)
        except SeqgenError as exc:
            outcome = exc
        except BaseException:
            with self._lock:
                self._lanes.abandon(batch, leader)
            raise
        with self._lock:
            self._led(batch, leader, outcome)

    def _request(self, name: str, count: int, started: float) -> list[int]:
        """One request with failover: its numbers, or the error that ends it."""
        plan = self._plan(name, count, started)
        try:
            with self._lock:
                attempt = next(plan)
            while True:
                reply = self._attempt(attempt)
                with self._lock:
                    attempt = plan.send(reply)
        except StopIteration as done:
            values: list[int] = done.value
            return values

    def _attempt(self, attempt: Attempt) -> Reply:
        """One round trip: the reply, or None when none came in time."""
        index, timeout_s, frame = attempt
        timeout_ms = _ms(timeout_s)
        with self._lock:
            self._check_open()
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
        sock: zmq.Socket[bytes] = open_socket(ctx, CLIENT_REQ, self._endpoints[index],
                                              curve=self.options.curve)
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
