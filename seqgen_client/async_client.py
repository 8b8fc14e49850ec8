"""``AsyncClient``: the asyncio client; many awaits share one socket per endpoint.

Each endpoint gets one DEALER channel (seqgen_common.channel): requests carry
an id, one reader task hands each reply to the await that waits for it, so
concurrent awaits are all in flight at once, and a reply whose await gave up
is dropped, never given to another. An attempt that gets no reply in time
closes its endpoint's channel (its other requests then fail over too), and the
next request opens a new one.

Concurrent ``next`` awaits for one name share a request (seqgen_client.lanes):
the await that leads a batch sends it; the others wait, each until its own
deadline, and are woken with their number, their error, or a batch to lead,
its request already sent by the await that settled the one before
(``ClientBase._hand_over`` states what holds). A cancelled await gives up its
place like a late one; a leader cancelled with its request out leaves it
running for the others (``_carry_on``).

An AsyncClient belongs to one event loop at a time (not thread-safe); used
from a new loop, or in a process forked from the one that opened it, it opens
new sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import Future, get_running_loop
from functools import partial
from types import TracebackType
from typing import Final

import zmq

from seqgen_client import forksafe
from seqgen_client.base import Attempt, ClientBase, Sent, Waiter
from seqgen_client.failover import NO_ANSWER, PENDING, UNSENT, PendingReply, Reply
from seqgen_client.forksafe import keep_from_parent
from seqgen_client.lanes import Batch
from seqgen_common.channel import Channel, Pending, Unsent
from seqgen_common.errors import AuthError, SeqgenError, Unavailable
from seqgen_common.handshake import open_watched
from seqgen_common.sockets import CLIENT_DEALER

__all__ = ["AsyncClient"]


_InFlight = tuple[Channel, Pending]
"""An attempt sent on a channel, its reply still to come."""


class _TaskWaiter(Waiter[Future[None], _InFlight]):
    """A waiter whose await sleeps on a future of the running loop (``signal``)."""

    __slots__ = ()

    def give(self, value: int) -> None:  # Waiter.give, one call less: it runs once per number
        self.value = value
        self.answered = True
        woken = self.signal
        if woken is not None and not woken.done():
            woken.set_result(None)

    def wake(self) -> None:
        woken = self.signal
        if woken is not None and not woken.done():
            woken.set_result(None)


_Waiter = Waiter[Future[None], _InFlight]
_Batch = Batch[_Waiter]


def _wake(future: Future[None], *_: object) -> None:
    if not future.done():
        future.set_result(None)


async def _within(reply: Future[bytes | None], wait_s: float) -> bool:
    """Whether ``reply`` is done within ``wait_s`` (the reply is left alone either way)."""
    if wait_s <= 0:
        return reply.done()
    loop = reply.get_loop()
    woken = loop.create_future()
    timer = loop.call_later(wait_s, _wake, woken)
    reply.add_done_callback(lambda _: _wake(woken))
    try:
        await woken
    finally:
        timer.cancel()
    return reply.done()


SWEEP_S: Final = 0.05
"""How often the waiters past their deadline are woken (see ``AsyncClient._sweep``)."""


class AsyncClient(ClientBase[Future[None], _InFlight]):
    """Numbers from seqgen servers or proxies for asyncio code, with failover.

    The arguments (CURVE keys, prefetch and coalescing included) and the
    behaviour are those of ``Client``; the calls are coroutines:
    ``await seq.next(name)``, ``await seq.next_many(name, count)``,
    ``await seq.close()``, ``async with AsyncClient([...]) as seq``.
    """

    def _setup(self) -> None:
        self._deadline_s = self.options.deadline_s
        self._generation = forksafe.current()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._channels: list[Channel | None] = [None] * len(self._endpoints)
        self._carried: set[asyncio.Task[None]] = set()
        """Requests going on after their leader gave up (``_carry_on``)."""
        self._sleepers: set[_TaskWaiter] = set()
        """The waiters asleep now (each takes itself out when it wakes)."""
        self._sweeping: asyncio.TimerHandle | None = None

    # ---- public API -------------------------------------------------------------------

    async def next(self, name: str) -> int:
        """The next number for ``name`` (shared with concurrent awaits, or from the prefetch buffer)."""
        # The hot path of coalescing: every call that waits pays each line here. It does not
        # ask for the running loop (asyncio asks the kernel for the pid each time): the loop
        # it is bound to is running only while it runs this very call, in this thread.
        loop = self._loop
        if (loop is None or not loop.is_running() or self._generation != forksafe.current()
                or self._closed):
            loop = self._bind(get_running_loop())
        self._last.check(name)
        now = self._clock()
        waiter = _TaskWaiter(now, now + self._deadline_s)
        batch = self._lanes.join(name, waiter)
        sent: Sent[_InFlight] | None = None
        try:
            while True:
                if batch is not None:
                    await self._lead(batch, waiter, sent)
                if waiter.answered:
                    return waiter.result()
                waiter.signal = woken = Future[None](loop=loop)
                self._sleepers.add(waiter)
                if self._sweeping is None:
                    self._sweeping = loop.call_later(SWEEP_S, self._sweep)
                try:
                    await woken
                finally:
                    # Not kept for the sweep: a waiter alive for longer than its call makes
                    # the garbage collector's young generations far more costly.
                    self._sleepers.discard(waiter)
                if waiter.answered:  # the common case: woken with its number
                    if waiter.error is None:
                        return waiter.value
                    raise waiter.error
                self._check_open()
                batch, sent = self._woken(waiter)
        except asyncio.CancelledError:
            waiter.given_up = True  # its number, if one comes, goes to another caller
            if waiter.answered and waiter.error is None:  # it came, but too late for this call
                self._lanes.give_back(name, waiter.value)
            if waiter.batch is not None:  # handed a batch to lead, cancelled before leading it
                self._refuse(waiter)
            raise

    async def next_many(self, name: str, count: int) -> list[int]:
        """``count`` (1..1000) numbers for ``name`` in one round trip, ascending.

        Always a round trip of its own: it neither waits for other calls nor uses
        the prefetch buffer.
        """
        self._bind(get_running_loop())
        return await self._request(name, count, self._clock())

    async def close(self) -> None:
        """Close the sockets; calls still waiting give up. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._drop_io()
        carried, self._carried = self._carried, set()
        if carried and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*carried, return_exceptions=True)  # each ends at once now

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

    def _sweep(self) -> None:
        """Wake the waiters still asleep past their deadline; again in SWEEP_S while any sleep.

        There is no timer per waiter (a timer each cost more than the rest of a coalesced
        call): a waiter's request is led by a call no younger than it, which ends by its own
        deadline, so the lane wakes every waiter in time. This is the net under that.
        """
        now = self._clock()
        for waiter in self._sleepers:
            woken = waiter.signal
            if waiter.deadline <= now and woken is not None and not woken.done():
                woken.set_result(None)  # its next step raises Unavailable
        loop = self._loop
        self._sweeping = loop.call_later(SWEEP_S, self._sweep) if self._sleepers and loop else None

    # ---- sockets ------------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """First use, a new event loop, or a forked child: start with fresh sockets."""
        self._check_open()
        if loop is not self._loop or self._generation != forksafe.current():
            self._drop_io()
            self._loop = loop
        return loop

    def _drop_io(self) -> None:
        """Close this process's sockets and context."""
        self._lanes.forget()  # a forked child must never hand out its parent's numbers
        if self._sweeping is not None:
            with contextlib.suppress(RuntimeError):  # its event loop is closed already
                self._sweeping.cancel()
            self._sweeping = None
        for waiter in self._sleepers:  # nothing will wake them now: they see the client closed
            with contextlib.suppress(RuntimeError):
                waiter.wake()
        self._sleepers = set()
        if self._generation != forksafe.current():
            keep_from_parent(self._ctx, self._channels)
        else:
            for channel in self._channels:
                if channel is not None:
                    channel.close()
            if self._ctx is not None:
                self._ctx.term()
        self._generation = forksafe.current()
        self._ctx = None
        self._channels = [None] * len(self._endpoints)

    def _channel(self, index: int) -> Channel:
        channel = self._channels[index]
        if channel is not None and channel.alive:
            return channel
        if channel is not None:  # its socket failed: start over on a new one
            channel.close()
        if self._ctx is None:
            self._ctx = zmq.Context(io_threads=1)
        sock, watch = open_watched(self._ctx, CLIENT_DEALER, self._endpoints[index],
                                   curve=self.options.curve)
        channel = self._channels[index] = Channel(sock, watch=watch)
        return channel

    # ---- requests -----------------------------------------------------------------------

    async def _lead(self, batch: _Batch, leader: _Waiter, sent: Sent[_InFlight] | None) -> None:
        """Receive (or send) the request of ``batch`` and hand out what it brings; start the
        lane's next batch."""
        outcome: list[int] | SeqgenError
        try:
            if sent is None:
                sent = self._send_first(batch.name, batch.count, leader.started)
            outcome = await self._finish(sent)
        except SeqgenError as exc:
            outcome = exc
        except BaseException:  # cancelled
            leader.given_up = True
            if sent is not None:
                self._carry_on(batch, leader, sent)
            else:
                self._hand_over(self._lanes.abandon(batch, leader))
            raise
        self._hand_over(self._led(batch, leader, outcome))

    def _refuse(self, waiter: _Waiter) -> None:
        """``waiter`` was handed a batch (its request sent) but was cancelled before it led
        it: the request goes on for the batch's other callers."""
        batch, sent = waiter.batch, waiter.sent
        waiter.batch = waiter.sent = None
        if batch is not None and sent is not None:
            self._carry_on(batch, waiter, sent)

    def _carry_on(self, batch: _Batch, leader: _Waiter | None, sent: Sent[_InFlight]) -> None:
        """The leader of ``batch`` gave up (None: every caller did) while its request was out.
        The request goes on without it: the numbers it brings go to the others, to callers
        waiting in the lane, or are counted lost (the server issued them); nothing is
        silently dropped."""
        assert self._loop is not None  # bound by the call that sent the request
        task = self._loop.create_task(self._settle_without(batch, leader, sent))
        self._carried.add(task)
        task.add_done_callback(self._carried.discard)

    async def _settle_without(self, batch: _Batch, leader: _Waiter | None,
                              sent: Sent[_InFlight]) -> None:
        outcome: list[int] | SeqgenError
        try:
            outcome = await self._finish(sent)
        except SeqgenError as exc:
            outcome = exc
        except ValueError:  # closed meanwhile: every caller was woken, and sees it closed
            return
        if leader is None:
            self._hand_over(self._took_over(batch, [] if isinstance(outcome, SeqgenError) else outcome))
        else:
            self._hand_over(self._led(batch, leader, outcome))

    def _take_over(self, batch: _Batch, sent: Sent[_InFlight]) -> _Batch | None:
        self._carry_on(batch, None, sent)
        return None

    def _send_first(self, name: str, count: int, started: float) -> Sent[_InFlight]:
        plan = self._plan(name, count, started)
        attempt = next(plan)
        flight, reply = self._start(attempt)
        return Sent(plan, attempt, flight, reply, at=self._clock(), count=count)

    async def _request(self, name: str, count: int, started: float) -> list[int]:
        """One request with failover (``next_many``): its numbers, or the error that ends it."""
        sent = self._send_first(name, count, started)
        try:
            return await self._finish(sent)
        except BaseException:
            if sent.flight is not None:  # cancelled: nobody takes the reply
                channel, pending = sent.flight
                channel.drop(pending)
            raise

    async def _finish(self, sent: Sent[_InFlight]) -> list[int]:
        """Receive the reply of the attempt ``sent`` (unless its send already brought one) and
        go on with its plan: the numbers, or the error. ``sent`` always holds the attempt in
        flight, so a caller cancelled meanwhile can pass the request on (``_carry_on``)."""
        plan = sent.plan
        try:
            while True:
                reply = await self._reply(sent)
                sent.flight, sent.reply = None, reply
                sent.attempt = plan.send(reply)
                sent.flight, sent.reply = self._start(sent.attempt)
                sent.at = self._clock()
        except StopIteration as done:
            values: list[int] = done.value
            return values

    def _start(self, attempt: Attempt) -> tuple[_InFlight | None, Reply | PendingReply]:
        """Send one attempt on its endpoint's channel: the channel and its pending reply, and
        PENDING; or no flight and UNSENT when its send queue is full."""
        index, timeout_s, frame = attempt
        self._check_open()
        try:
            channel = self._channel(index)
            return (channel, channel.send(frame, timeout_s)), PENDING
        except Unsent:
            return None, UNSENT
        except zmq.ZMQError as exc:  # no socket to be had (too many open files?)
            raise Unavailable(f"cannot use {self._endpoints[index]}: {exc}") from exc

    async def _reply(self, sent: Sent[_InFlight]) -> Reply:
        """The reply of the attempt in flight (or what its send brought: UNSENT); hedged
        (``_race``) when it has not come within the hedge delay."""
        first = sent.flight
        if first is None:
            assert sent.reply is not PENDING
            return sent.reply
        hedging = self._hedging
        if hedging is not None and not first[1].reply.done():
            wait_s = sent.at + hedging.delay_s - self._clock()
            if wait_s < sent.attempt[1] and not await _within(first[1].reply, wait_s):
                hedge = self._hedge_to(sent.attempt[0])
                if hedge is not None:
                    return await self._race(sent, first, hedge)
        reply = await self._receive(sent.attempt[0], first)
        self._answered(sent.at, reply)
        return reply

    async def _race(self, sent: Sent[_InFlight], first: _InFlight, hedge: int) -> Reply:
        """Send the request to ``hedge`` too and take the first answer that ends it; the
        other attempt goes on unwatched (``_lost``). With no final answer from either, what
        the first attempt brought goes to the plan (the hedge's failure is counted here)."""
        index, timeout_s, frame = sent.attempt
        hedge_at = self._clock()
        full_s = self.options.timeout_s
        # The same timeout as any attempt, unless the call's deadline comes first.
        second, _ = self._start((hedge, full_s if timeout_s >= full_s else sent.at + timeout_s - hedge_at,
                                 frame))
        racing: dict[Future[bytes | None], tuple[int, float, _InFlight]] = {
            first[1].reply: (index, sent.at, first)}
        if second is not None:
            racing[second[1].reply] = (hedge, hedge_at, second)
        else:  # not even queued: a failure of that endpoint; the first attempt goes on alone
            self._hedge_failed(hedge, hedge_at, UNSENT)
        outcome: Reply | PendingReply = PENDING
        """What the first attempt brought, once it ended without an answer that ends it."""
        try:
            while racing:
                done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    which, at, attempt = racing.pop(future)
                    reply = await self._receive(which, attempt)
                    self._answered(at, reply)
                    if self._final(reply, sent.count):
                        if which == hedge:
                            self._hedge_won(index, sent.at, hedge, hedge_at)
                            if outcome is NO_ANSWER:
                                self._lanes.stats.timeouts += 1  # the first timed out before
                        self._let_go(racing, sent.count)
                        return reply
                    if which == index:
                        outcome = reply
                    else:
                        self._hedge_failed(hedge, hedge_at, reply)
        except BaseException:  # cancelled: the first attempt is left for _carry_on
            racing.pop(first[1].reply, None)
            self._let_go(racing, sent.count)
            raise
        assert outcome is not PENDING  # the first attempt has ended
        return outcome

    def _let_go(self, racing: dict[Future[bytes | None], tuple[int, float, _InFlight]],
                count: int) -> None:
        """Attempts that lost their race: what each brings, when it comes, is counted."""
        for future, (index, at, attempt) in racing.items():
            future.add_done_callback(partial(self._lost, index, at, attempt, count))

    def _lost(self, index: int, at: float, attempt: _InFlight, count: int, _: object) -> None:
        channel, pending = attempt
        answer = pending.reply.result()
        channel.drop(pending)
        reply: Reply = NO_ANSWER if answer is None else answer
        if reply is NO_ANSWER and self._channels[index] is channel and not self._closed:
            self._channels[index] = None  # no reply in time: a new socket (see _receive)
            channel.close()
        self._late(index, at, reply, count)

    async def _receive(self, index: int, flight: _InFlight) -> Reply:
        """The reply of an attempt on endpoint ``index``, or what its silence means: AuthError
        when the endpoint refused the security handshake, else NO_ANSWER."""
        channel, pending = flight
        # Shielded: a cancelled caller leaves the reply to come for _carry_on.
        answer = await asyncio.shield(pending.reply)
        channel.drop(pending)
        if answer is not None:
            return answer
        refusal = channel.watch.check() if channel.watch is not None else None
        if self._channels[index] is channel and not self._closed:
            # No reply in time: start over on a new socket, as Client does (Lazy Pirate).
            # What this one still holds (requests queued during a partition) dies with it,
            # and the new one connects afresh instead of waiting for TCP's retransmissions.
            self._channels[index] = None
            channel.close()
        if refusal is not None:  # no reply because the handshake was refused
            return AuthError(f"{self._endpoints[index]}: {refusal}")
        return NO_ANSWER
