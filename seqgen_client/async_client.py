"""``AsyncClient``: the asyncio client; many awaits share one socket per endpoint.

Each endpoint gets one DEALER socket. A request goes out as
``[request id, b"", body]``: the server's ROUTER (or a proxy) echoes every
frame up to and including the empty delimiter, so the reply comes back as
``[request id, b"", reply]`` and one reader task per socket hands it to the
call that waits for that id. Concurrent awaits are thus all in flight at once;
a reply whose id nobody waits for any more (it came after its call timed out)
is dropped, never given to another call.

An AsyncClient belongs to one event loop at a time (not thread-safe); used
from a new loop, or in a process forked from the one that opened it, it opens
new sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import deque
from types import TracebackType
from typing import cast

import zmq
import zmq.asyncio

from seqgen_client.base import ClientBase
from seqgen_client.failover import FAILOVER_CODES, NO_ANSWER, UNSENT, Call, Failure
from seqgen_client.forksafe import keep_from_parent
from seqgen_client.lastseen import values_of
from seqgen_client.sockets import connect
from seqgen_common.errors import SeqgenError, Unavailable
from seqgen_common.protocol import validate_name

__all__ = ["AsyncClient"]

_Waiter = asyncio.Future[bytes | None]


class _Block:
    """Prefetched numbers of one name, and the lock that lets one await at a time refill them."""

    __slots__ = ("refill", "values")

    def __init__(self) -> None:
        self.values: deque[int] = deque()
        self.refill = asyncio.Lock()


class _Unsent(Exception):
    """The request could not be queued for the endpoint (its send queue is full)."""


def _expire(waiter: _Waiter) -> None:
    """No reply (any more) for this waiter."""
    if not waiter.done():
        # RuntimeError: its event loop is closed, so nobody waits any more.
        with contextlib.suppress(RuntimeError):
            waiter.set_result(None)


class AsyncClient(ClientBase):
    """Numbers from seqgen servers or proxies for asyncio code, with failover.

    The arguments (CURVE keys and prefetch included) and the behaviour are
    those of ``Client``; the calls are coroutines: ``await seq.next(name)``,
    ``await seq.next_many(name, count)``, ``await seq.close()``,
    ``async with AsyncClient([...]) as seq``.
    """

    def _setup(self) -> None:
        self._blocks: dict[str, _Block] = {}
        """Prefetched numbers per name, for the current event loop and process."""
        self._ids = itertools.count(1)
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: zmq.asyncio.Context | None = None
        self._sockets: list[zmq.asyncio.Socket | None] = [None] * len(self._endpoints)
        self._readers: list[asyncio.Task[None] | None] = [None] * len(self._endpoints)
        self._pending: dict[bytes, _Waiter] = {}

    # ---- public API -------------------------------------------------------------------

    async def next(self, name: str) -> int:
        """The next number for ``name`` (from the prefetch buffer when ``prefetch`` > 1)."""
        if self._prefetch == 1:
            return (await self._call(name, 1))[0]
        return await self._next_prefetched(name)

    async def next_many(self, name: str, count: int) -> list[int]:
        """``count`` (1..1000) numbers for ``name`` in one round trip, ascending.

        Always a round trip of its own: it neither uses nor fills the prefetch buffer.
        """
        return await self._call(name, count)

    async def close(self) -> None:
        """Close the sockets; calls still waiting give up. Idempotent."""
        if self._closed:
            return
        self._closed = True
        readers = self._drop_io()
        if readers and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*readers, return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient({list(self._endpoints)!r})"

    # ---- sockets ------------------------------------------------------------------------

    def _drop_io(self) -> list[asyncio.Task[None]]:
        """Close this process's sockets and context; the reader tasks that were cancelled."""
        for waiter in self._pending.values():
            _expire(waiter)
        self._pending = {}
        self._blocks = {}  # a forked child must never hand out its parent's numbers
        if self._pid != os.getpid():
            keep_from_parent(self._ctx, self._sockets, self._readers)
            readers: list[asyncio.Task[None]] = []
        else:
            readers = [task for task in self._readers if task is not None and not task.done()]
            for task in readers:
                with contextlib.suppress(RuntimeError):  # its event loop is closed already
                    task.cancel()
            for sock in self._sockets:
                if sock is not None:
                    sock.close(linger=0)
            if self._ctx is not None:
                self._ctx.term()
        self._pid = os.getpid()
        self._ctx = None
        self._sockets = [None] * len(self._endpoints)
        self._readers = [None] * len(self._endpoints)
        return readers

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, a new event loop, or a forked child: start with fresh sockets."""
        self._drop_io()
        self._loop = loop

    def _socket(self, index: int) -> zmq.asyncio.Socket:
        sock = self._sockets[index]
        reader = self._readers[index]
        if sock is not None and reader is not None and not reader.done():
            return sock
        if sock is not None:  # its reader died: start over on a new socket
            sock.close(linger=0)
        if self._ctx is None:
            self._ctx = zmq.asyncio.Context(io_threads=1)
        sock = self._ctx.socket(zmq.DEALER)
        connect(sock, self._endpoints[index], self.options)
        assert self._loop is not None
        self._sockets[index] = sock
        self._readers[index] = self._loop.create_task(self._read(sock, self._pending))
        return sock

    @staticmethod
    async def _read(sock: zmq.asyncio.Socket, pending: dict[bytes, _Waiter]) -> None:
        """Hand each reply to the call waiting for its id; drop the rest."""
        while True:
            try:
                frames = await sock.recv_multipart()
            except zmq.ZMQError:
                return  # the socket was closed
            if len(frames) == 3 and not frames[1]:
                waiter = pending.get(frames[0])
                if waiter is not None and not waiter.done():
                    waiter.set_result(frames[2])

    # ---- prefetch -----------------------------------------------------------------------

    async def _next_prefetched(self, name: str) -> int:
        """One number from ``name``'s buffer, refilled by one batch round trip when empty."""
        if self._closed:
            raise ValueError("this seqgen AsyncClient is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._pid != os.getpid():
            self._rebind(loop)  # drops the buffers of the old loop or the parent process
        try:
            block = self._blocks.get(name)
        except TypeError:  # unhashable: certainly not a name
            block = None
        if block is None:
            validate_name(name)  # nothing is kept for a name a server would refuse
            block = self._blocks.setdefault(name, _Block())
        values = block.values
        if values:
            return values.popleft()
        async with block.refill:  # one batch per name at a time: blocks come in ascending order
            if values:
                return values.popleft()  # another await refilled it meanwhile
            fetched = await self._call(name, self._prefetch)
            values.extend(fetched[1:])
            return fetched[0]

    # ---- one call -----------------------------------------------------------------------

    async def _call(self, name: str, count: int) -> list[int]:
        frame = self._last.request(name, count)
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._pid != os.getpid():
            self._rebind(loop)
        started = time.monotonic()
        index = self._rotation.pick(started)
        assert index is not None
        failure: Failure = NO_ANSWER
        try:
            reply = await self._attempt(loop, index, frame, self._first_timeout_s)
        except _Unsent:
            reply, failure = None, UNSENT
        if reply is not None:
            try:
                return self._accept(name, count, index, started, reply)
            except SeqgenError as exc:
                if exc.code not in FAILOVER_CODES:
                    raise
                failure = exc
        return await self._failover(name, count, frame, index=index, started=started,
                                    failure=failure)

    def _accept(self, name: str, count: int, index: int, started: float, reply: bytes) -> list[int]:
        """The numbers in ``index``'s reply, remembered; or the error it carries."""
        try:
            values = values_of(reply, count)
        except SeqgenError as exc:
            if exc.code not in FAILOVER_CODES:
                self._rotation.succeeded(index, started)
            raise
        self._rotation.succeeded(index, started)
        self._last.record(name, values[-1])
        return values

    async def _failover(self, name: str, count: int, frame: bytes, *, index: int,
                        started: float, failure: Failure) -> list[int]:
        """The first attempt failed: plan the others until one answers or the deadline passes."""
        opts = self.options
        loop = asyncio.get_running_loop()
        call = Call(self._rotation, self._endpoints, started, opts.deadline_s, opts.timeout_s)
        call.began(index)
        while True:
            now = time.monotonic()
            call.failed(index, started, now, failure)
            planned = call.next(now)
            if planned is None:
                raise call.error()
            index, timeout_s = planned
            started = now
            try:
                reply = await self._attempt(loop, index, frame, timeout_s)
            except _Unsent:
                failure = UNSENT
                continue
            if reply is None:
                failure = NO_ANSWER
                continue
            try:
                return self._accept(name, count, index, started, reply)
            except SeqgenError as exc:
                if exc.code not in FAILOVER_CODES:
                    raise
                failure = exc

    async def _attempt(self, loop: asyncio.AbstractEventLoop, index: int, frame: bytes,
                       timeout_s: float) -> bytes | None:
        """One request on ``index``: the reply, or None when none came in time."""
        if self._closed:
            raise ValueError("this seqgen AsyncClient is closed")
        try:
            sock = self._socket(index)
        except zmq.ZMQError as exc:  # no socket to be had (too many open files?)
            raise Unavailable(f"cannot use {self._endpoints[index]}: {exc}") from exc
        request_id = next(self._ids).to_bytes(8, "little")
        pending = self._pending
        waiter: _Waiter = loop.create_future()
        pending[request_id] = waiter
        timer: asyncio.TimerHandle | None = None
        try:
            # DONTWAIT: a full queue fails at once instead of blocking the call.
            sent = cast(
                "asyncio.Future[object]",
                sock.send_multipart([request_id, b"", frame], flags=zmq.DONTWAIT),
            )
            try:
                if sent.done():
                    sent.result()
                else:  # pragma: no cover - pyzmq resolves DONTWAIT sends at once
                    await sent
            except zmq.Again as exc:
                raise _Unsent from exc
            timer = loop.call_later(timeout_s, _expire, waiter)
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            pending.pop(request_id, None)
