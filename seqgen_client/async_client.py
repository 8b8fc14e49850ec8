"""``AsyncClient``: the asyncio client; many awaits share one socket per endpoint.

Each endpoint gets one DEALER channel (seqgen_common.channel): requests carry
an id, one reader task hands each reply to the await that waits for it, so
concurrent awaits are all in flight at once, and a reply whose await gave up
is dropped, never given to another. An attempt that gets no reply in time
closes its endpoint's channel (its other requests then fail over too), and the
next request opens a new one.

Concurrent ``next`` awaits for one name share a request (seqgen_client.lanes):
the await that leads a batch sends it; the others wait, each until its own
deadline, and are woken with their number, their error, or a batch to lead.
A cancelled await gives up its place like a late one.

An AsyncClient belongs to one event loop at a time (not thread-safe); used
from a new loop, or in a process forked from the one that opened it, it opens
new sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Final

import zmq
import zmq.asyncio

from seqgen_client import forksafe
from seqgen_client.base import Attempt, ClientBase, Waiter
from seqgen_client.failover import UNSENT, Reply
from seqgen_client.forksafe import keep_from_parent
from seqgen_client.lanes import Batch
from seqgen_common.channel import Channel, Unsent
from seqgen_common.errors import SeqgenError, Unavailable
from seqgen_common.sockets import CLIENT_DEALER, open_socket

__all__ = ["AsyncClient"]


class _TaskWaiter(Waiter):
    """A waiter whose await sleeps on a future of the running loop (``signal``)."""

    __slots__ = ()

    def wake(self) -> None:
        woken = self.signal
        if woken is not None and not woken.done():
            woken.set_result(None)


SWEEP_S: Final = 0.05
"""How often the waiters past their deadline are woken (see ``AsyncClient._sweep``)."""


class AsyncClient(ClientBase):
    """Numbers from seqgen servers or proxies for asyncio code, with failover.

    The arguments (CURVE keys, prefetch and coalescing included) and the
    behaviour are those of ``Client``; the calls are coroutines:
    ``await seq.next(name)``, ``await seq.next_many(name, count)``,
    ``await seq.close()``, ``async with AsyncClient([...]) as seq``.
    """

    def _setup(self) -> None:
        self._generation = forksafe.current()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: zmq.asyncio.Context | None = None
        self._channels: list[Channel | None] = [None] * len(self._endpoints)
        self._sleepers: list[_TaskWaiter] = []
        self._sweeping: asyncio.TimerHandle | None = None

    # ---- public API -------------------------------------------------------------------

    async def next(self, name: str) -> int:
        """The next number for ``name`` (shared with concurrent awaits, or from the prefetch buffer)."""
        self._bind()
        waiter = self._waiter(name, _TaskWaiter)
        batch = self._lanes.join(name, waiter)
        try:
            while True:
                if batch is not None:
                    await self._lead(batch, waiter)
                if waiter.answered:
                    return waiter.result()
                await self._sleep(waiter)
                self._check_open()
                batch = self._woken(waiter)[0]
        except asyncio.CancelledError:
            waiter.given_up = True  # its number, if one comes, goes to another caller
            raise

    async def next_many(self, name: str, count: int) -> list[int]:
        """``count`` (1..1000) numbers for ``name`` in one round trip, ascending.

        Always a round trip of its own: it neither waits for other calls nor uses
        the prefetch buffer.
        """
        self._bind()
        return await self._request(name, count, self._clock())

    async def close(self) -> None:
        """Close the sockets; calls still waiting give up. Idempotent."""
        if self._closed:
            return
        self._closed = True
        readers = self._drop_io()
        if readers and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*readers, return_exceptions=True)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- waiting ------------------------------------------------------------------------

    async def _sleep(self, waiter: _TaskWaiter) -> None:
        """Until woken by the lane (a number, an error, a batch to lead), or its deadline.

        No timer per waiter (a timer each cost more than the rest of a coalesced call):
        a waiter's request is led by a call no younger than it, which ends by its own
        deadline, so the lane wakes every waiter in time. ``_sweep`` is the net under
        that: every SWEEP_S it wakes whoever is still asleep past its deadline.
        """
        loop = asyncio.get_running_loop()
        waiter.signal = woken = loop.create_future()
        self._sleepers.append(waiter)
        if self._sweeping is None:
            self._sweeping = loop.call_later(SWEEP_S, self._sweep)
        await woken

    def _sweep(self) -> None:
        now = self._clock()
        asleep: list[_TaskWaiter] = []
        for waiter in self._sleepers:
            woken = waiter.signal
            if woken is None or woken.done():
                continue
            if waiter.deadline <= now:
                woken.set_result(None)  # its next step raises Unavailable
            else:
                asleep.append(waiter)
        self._sleepers = asleep
        loop = self._loop
        self._sweeping = loop.call_later(SWEEP_S, self._sweep) if asleep and loop else None

    # ---- sockets ------------------------------------------------------------------------

    def _bind(self) -> None:
        """First use, a new event loop, or a forked child: start with fresh sockets."""
        self._check_open()
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._generation != forksafe.current():
            self._drop_io()
            self._loop = loop

    def _drop_io(self) -> list[asyncio.Task[None]]:
        """Close this process's sockets and context; the reader tasks that were cancelled."""
        self._lanes.forget()  # a forked child must never hand out its parent's numbers
        if self._sweeping is not None:
            with contextlib.suppress(RuntimeError):  # its event loop is closed already
                self._sweeping.cancel()
            self._sweeping = None
        for waiter in self._sleepers:  # nothing will wake them now: they see the client closed
            with contextlib.suppress(RuntimeError):
                waiter.wake()
        self._sleepers = []
        readers: list[asyncio.Task[None]] = []
        if self._generation != forksafe.current():
            keep_from_parent(self._ctx, self._channels)
        else:
            readers = [channel.close() for channel in self._channels if channel is not None]
            if self._ctx is not None:
                self._ctx.term()
        self._generation = forksafe.current()
        self._ctx = None
        self._channels = [None] * len(self._endpoints)
        return readers

    def _channel(self, index: int) -> Channel:
        channel = self._channels[index]
        if channel is not None and channel.alive:
            return channel
        if channel is not None:  # its reader died: start over on a new socket
            channel.close()
        if self._ctx is None:
            self._ctx = zmq.asyncio.Context(io_threads=1)
        sock = open_socket(self._ctx, CLIENT_DEALER, self._endpoints[index], curve=self.options.curve)
        channel = self._channels[index] = Channel(sock)
        return channel

    # ---- requests -----------------------------------------------------------------------

    async def _lead(self, batch: Batch, leader: Waiter) -> None:
        """Send the request of ``batch`` and hand out what it brings."""
        outcome: list[int] | SeqgenError
        try:
            outcome = await self._request(batch.name, batch.count, leader.started)
        except SeqgenError as exc:
            outcome = exc
        except BaseException:  # cancelled: the others get another leader
            self._hand_over(self._lanes.abandon(batch, leader))
            raise
        self._hand_over(self._led(batch, leader, outcome))

    @staticmethod
    def _hand_over(batch: Batch | None) -> None:
        """Wake the first caller of the lane's next batch to lead it."""
        if batch is not None:
            leader = batch.callers[0]
            assert isinstance(leader, Waiter)
            leader.lead(batch)

    async def _request(self, name: str, count: int, started: float) -> list[int]:
        """One request with failover: its numbers, or the error that ends it."""
        plan = self._plan(name, count, started)
        try:
            attempt = next(plan)
            while True:
                attempt = plan.send(await self._attempt(attempt))
        except StopIteration as done:
            values: list[int] = done.value
            return values

    async def _attempt(self, attempt: Attempt) -> Reply:
        """One request on one endpoint: the reply, None when none came in time, or UNSENT."""
        index, timeout_s, frame = attempt
        self._check_open()
        try:
            channel = self._channel(index)
            reply = await channel.request(frame, timeout_s)
        except Unsent:
            return UNSENT
        except zmq.ZMQError as exc:  # no socket to be had (too many open files?)
            raise Unavailable(f"cannot use {self._endpoints[index]}: {exc}") from exc
        if reply is None and self._channels[index] is channel and not self._closed:
            # No reply in time: start over on a new socket, as Client does (Lazy Pirate).
            # What this one still holds (requests queued during a partition) dies with it,
            # and the new one connects afresh instead of waiting for TCP's retransmissions.
            self._channels[index] = None
            channel.close()
        return reply
