"""``Client``: the blocking client, safe to share between threads and across fork().

Each attempt borrows a REQ socket for its endpoint from a small pool, so
threads run their round trips side by side. A socket whose reply did not come
in time is closed, never reused (the Lazy Pirate pattern of the ZeroMQ guide):
a late reply dies with it and can never be read by another call.

Hedging (seqgen_common.hedging): an attempt unanswered within the hedge delay
is sent on a second socket to the next healthy endpoint, and both are polled
(``_race``). The socket of the attempt that lost is not reused before its
reply is read: a later call reads it when it has come (a late answer,
counted; the socket goes back to the pool) or closes it at its timeout.

Concurrent ``next`` calls for one name share a request (seqgen_client.lanes):
the thread that leads a batch does its round trip; the others sleep, each
until its own deadline, and are woken with their number, their error, or a
batch of their own to lead (seqgen_client.wakeups), its request already sent
by the thread that settled the one before: ``ClientBase._hand_over`` states
what holds.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import NoReturn

import zmq
from zmq.backend import Socket as _BackendSocket

from seqgen_client import forksafe
from seqgen_client.base import Attempt, ClientBase, Plan, Sent, Waiter
from seqgen_client.failover import NO_ANSWER, PENDING, PendingReply, Reply
from seqgen_client.forksafe import keep_from_parent
from seqgen_client.lanes import Batch
from seqgen_client.reqsockets import Conn as _Conn
from seqgen_client.reqsockets import Lost as _Lost
from seqgen_client.reqsockets import ms as _ms
from seqgen_client.wakeups import ThreadWaiter, WakeQueue, own_lock
from seqgen_common.errors import AuthError, SeqgenError, Unavailable
from seqgen_common.handshake import open_watched
from seqgen_common.sockets import CLIENT_REQ

__all__ = ["Client"]

_send = _BackendSocket.send
_recv = _BackendSocket.recv


_Waiter = Waiter[threading.Lock, _Conn]
_Batch = Batch[_Waiter]


class Client(ClientBase[threading.Lock, _Conn]):
    """Numbers from seqgen servers or proxies, with failover; safe to share between
    threads and across ``os.fork()``. The arguments are those of ``ClientBase``."""

    def _setup(self) -> None:
        self._open()

    def _open(self) -> None:
        """Fresh process-local state: lock, context (made on first use), socket pools."""
        self._generation = forksafe.current()
        self._lock = self._guard = threading.Lock()
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._idle: list[list[_Conn]] = [[] for _ in self._endpoints]
        self._in_use = 0
        self._to_wake = WakeQueue(self._lock)
        """Waiters given their number (or error), to be woken one after the other."""
        self._lost: list[_Lost] = []
        """Attempts that lost their race, their reply still to come (each counts in _in_use)."""
        self._lanes.forget()  # a forked child never hands out its parent's numbers

    def _after_fork(self) -> None:
        """In a forked child: the parent's sockets belong to the parent; start afresh."""
        keep_from_parent(self._ctx, self._idle, self._lost)
        self._open()

    # ---- public API -------------------------------------------------------------------

    def next(self, name: str) -> int:
        """The next number for ``name`` (shared with concurrent calls, or from the prefetch buffer)."""
        if self._generation != forksafe.current():
            self._after_fork()
        self._check_open()
        lock = self._lock
        self._last.check(name)
        with lock:
            alone = self._lanes.go_alone(name)
        if alone:  # the common case: nothing of this name is out, nothing buffered
            return self._alone(name)
        now = self._clock()
        waiter = ThreadWaiter(now, now + self.options.deadline_s)
        waiter.sleeping = False
        waiter.queue = self._to_wake
        with lock:
            batch = self._lanes.join(name, waiter)
            if batch is None and not waiter.answered:
                waiter.signal, waiter.sleeping = own_lock(), True
        sent: Sent[_Conn] | None = None
        while True:
            if batch is not None:
                self._lead(batch, waiter, sent)
                if waiter.answered:  # set by this thread, in _lead: no lock needed to read it
                    return waiter.result()
                with lock:
                    if not waiter.answered:
                        waiter.signal, waiter.sleeping = own_lock(), True
            # ``answered`` is set under the lock before the sleeper is released: once the
            # sleeper is ours again it can be read without the lock (a waiter woken with its
            # number returns without one more lock hold).
            if waiter.answered:
                return waiter.result()
            sleeper = waiter.signal
            assert sleeper is not None
            woken = sleeper.acquire(timeout=max(0.0, waiter.deadline - self._clock()))
            self._to_wake.wake_next()
            if woken and waiter.answered:
                return waiter.result()
            with lock:
                if not woken:
                    if waiter.sleeping:  # timed out, and nobody released it
                        waiter.sleeping = False
                    else:
                        sleeper.acquire()  # released just after the timeout: take it back
                batch, sent = self._woken(waiter)
                if batch is None and not waiter.answered:
                    waiter.sleeping = True  # woken early: sleep on

    def _alone(self, name: str) -> int:
        """A call that went out on its own (``Lanes.go_alone``): its request, then the lane's."""
        outcome: list[int] | SeqgenError
        try:
            outcome = self._request(name, self._lanes.prefetch, self._clock())
        except SeqgenError as exc:
            outcome = exc
        except BaseException:
            with self._lock:
                following = self._lanes.alone_done(name, Unavailable("the call was interrupted"))
            self._hand_over(following)
            raise
        with self._lock:
            following = self._lanes.alone_done(name, outcome)
        self._hand_over(following)
        if isinstance(outcome, SeqgenError):
            raise outcome
        return outcome[0]

    def _lead(self, batch: _Batch, leader: _Waiter, sent: Sent[_Conn] | None) -> None:
        """Receive (or send) the request of ``batch`` and hand out what it brings; start the
        lane's next batch."""
        outcome: list[int] | SeqgenError
        try:
            if sent is None:
                sent = self._send_first(batch.name, batch.count, leader.started)
            outcome = self._finish(sent)
        except SeqgenError as exc:
            outcome = exc
        except BaseException:
            with self._lock:
                following = self._lanes.abandon(batch, leader)
            self._hand_over(following)
            raise
        with self._lock:
            following = self._led(batch, leader, outcome)
        self._hand_over(following)

    def _hand_over(self, batch: _Batch | None) -> None:
        """``ClientBase._hand_over``, then wake the first of the callers just answered
        (seqgen_client.wakeups)."""
        if batch is None and not self._to_wake:  # the common lone call: nothing to do
            return
        try:
            super()._hand_over(batch)
        finally:
            self._to_wake.wake_next()

    def _take_over(self, batch: _Batch, sent: Sent[_Conn]) -> _Batch | None:
        # Everyone gave up meanwhile: this thread takes the reply itself, so that the
        # numbers go to calls that wait now, or are counted lost (never dropped unseen).
        try:
            values = self._finish(sent)
        except (SeqgenError, ValueError):
            values = []  # nothing came, or the client was closed
        return self._took_over(batch, values)

    def next_many(self, name: str, count: int) -> list[int]:
        """``count`` (1..1000) numbers for ``name`` in one round trip, ascending.

        Always a round trip of its own: it neither waits for other calls nor uses
        the prefetch buffer.
        """
        if self._generation != forksafe.current():
            self._after_fork()
        self._check_open()
        return self._request(name, count, self._clock())

    def close(self) -> None:
        """Close the sockets; calls in other threads finish first. Idempotent."""
        if self._generation != forksafe.current():
            self._after_fork()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lanes.forget()
            lost, self._lost = self._lost, []
            for entry in lost:  # their late answers die with them
                entry.conn.close()
                self._in_use -= 1
            idle = [conn for pool in self._idle for conn in pool]
            self._idle = [[] for _ in self._endpoints]
            ctx = self._ctx if self._in_use == 0 else None
        for conn in idle:
            conn.close()
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

    def _request(self, name: str, count: int, started: float) -> list[int]:
        """One request with failover: its numbers, or the error that ends it.

        ``_send_first`` and ``_finish`` without the ``Sent`` between them: the lone call's
        path, where that object would cost about a fifth of the client's own time."""
        plan = self._plan(name, count, started)
        with self._lock:
            attempt = next(plan)
            conn = self._borrow(attempt[0])
        conn, reply = self._send(attempt, conn)
        return self._complete(plan, attempt, conn, reply, at=self._clock(), count=count)

    def _send_first(self, name: str, count: int, started: float) -> Sent[_Conn]:
        plan = self._plan(name, count, started)
        with self._lock:
            attempt = next(plan)
            conn = self._borrow(attempt[0])
        conn, reply = self._send(attempt, conn)
        return Sent(plan, attempt, conn, reply, at=self._clock(), count=count)

    def _finish(self, sent: Sent[_Conn]) -> list[int]:
        """Receive the reply of the attempt ``sent`` (unless its send already brought one) and
        go on with its plan: the numbers, or the error."""
        return self._complete(sent.plan, sent.attempt, sent.flight, sent.reply, at=sent.at,
                              count=sent.count)

    def _complete(self, plan: Plan, attempt: Attempt, conn: _Conn | None,
                  reply: Reply | PendingReply, *, at: float, count: int) -> list[int]:
        """``_finish`` of the request whose attempt ``attempt`` went out on ``conn`` at ``at``.

        The plan runs under the lock, the round trips outside it; a socket is
        borrowed and given back in the same lock holds as the plan's steps (each
        lock hold costs about 0.2 us, and a call needs only two here).
        """
        lock = self._lock
        if self._lost:
            self._sweep()
        if reply is PENDING:
            conn, reply, at = self._receive(attempt, conn, at, count)
        while True:
            with lock:
                if self._hedging is not None:
                    self._answered(at, reply)
                self._give_back(conn, attempt[0])
                try:
                    attempt = plan.send(reply)
                except StopIteration as done:
                    values: list[int] = done.value
                    return values
                conn = self._borrow(attempt[0])
            conn, reply = self._send(attempt, conn)
            at = self._clock()
            if reply is PENDING:
                conn, reply, at = self._receive(attempt, conn, at, count)

    def _borrow(self, index: int) -> _Conn | None:
        """A pooled socket of endpoint ``index`` (None: make one). Under the lock."""
        self._check_open()
        self._in_use += 1
        pool = self._idle[index]
        return pool.pop() if pool else None

    def _give_back(self, conn: _Conn | None, index: int, *, keep: bool = True) -> None:
        """Back to the pool (or closed); the last call after close() ends zmq. Under the lock."""
        self._in_use -= 1
        if conn is not None:
            if keep and not self._closed:
                self._idle[index].append(conn)
            else:
                conn.close()
        if self._closed and self._in_use == 0 and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def _send(self, attempt: Attempt, conn: _Conn | None) -> tuple[_Conn | None, Reply | PendingReply]:
        """Send the attempt's request on ``conn`` (or a new socket): the socket, and PENDING
        (its reply is still to come) or NO_ANSWER (not even sent in time)."""
        index, timeout_s, frame = attempt
        try:
            if conn is None:
                conn = self._connect(index)
            sock = conn.sock
            if conn.timeout_s != timeout_s:
                sock.rcvtimeo = sock.sndtimeo = conn.rcv_ms = _ms(timeout_s)
                conn.timeout_s = timeout_s
            _send(sock, frame, 0)  # pyzmq's low-level calls: see seqgen_common.frames
        except zmq.Again:
            return conn, NO_ANSWER  # not even sent in time
        except zmq.ZMQError as exc:
            self._failed(conn, index, exc)
        return conn, PENDING

    def _receive(self, attempt: Attempt, conn: _Conn | None, at: float, count: int,
                 ) -> tuple[_Conn | None, Reply, float]:
        """The reply on ``conn`` (sent at ``at``), or what its silence means (``_silence``);
        hedged (``_race``) when none came within the hedge delay. With the reply: the socket
        to give back for this attempt (None: dealt with) and when the answered attempt was
        sent."""
        assert conn is not None
        hedging, sock = self._hedging, conn.sock
        try:
            if hedging is not None:
                # The receive timeout is the hedge delay (set only when it changes: the delay
                # moves rarely), so the common call costs no more than without hedging.
                index, timeout_s, _ = attempt
                delay_s = hedging.delay_s
                wait_ms = _ms(delay_s if delay_s < timeout_s else timeout_s)
                if conn.rcv_ms != wait_ms:
                    sock.rcvtimeo = conn.rcv_ms = wait_ms
                if delay_s < timeout_s:
                    try:
                        return conn, _recv(sock, 0), at
                    except zmq.Again:
                        pass
                    with self._lock:
                        hedge = self._hedge_to(index)
                    if hedge is not None:
                        return self._race(attempt, conn, at, count, hedge)
                    left_s = at + timeout_s - self._clock()
                    if left_s <= 0 or not sock.poll(_ms(left_s)):
                        return *self._silence(attempt, conn), at
                    return conn, _recv(sock, zmq.NOBLOCK), at
            return conn, _recv(sock, 0), at
        except zmq.Again:
            return *self._silence(attempt, conn), at  # the socket is closed with the late reply
        except zmq.ZMQError as exc:
            self._failed(conn, attempt[0], exc)

    def _silence(self, attempt: Attempt, conn: _Conn) -> tuple[_Conn | None, Reply]:
        """What an attempt that got no reply in time brought, and its socket: AuthError when
        its endpoint refused the security handshake (the socket's monitor says), else
        NO_ANSWER, the socket closed with the late reply (Lazy Pirate: never reused)."""
        refusal = conn.watch.check()
        if refusal is not None:
            return conn, AuthError(f"{self._endpoints[attempt[0]]}: {refusal}")
        conn.close()
        return None, NO_ANSWER

    def _race(self, attempt: Attempt, conn: _Conn, at: float, count: int, hedge: int,
              ) -> tuple[_Conn | None, Reply, float]:
        """Send the request to ``hedge`` too; the first reply that ends the request wins. The
        other attempt's socket waits in ``_lost`` for its reply (Lazy Pirate: never reused
        before its reply is read, closed when none comes). With no final answer from either,
        what the first attempt brought goes to the plan."""
        index, timeout_s, frame = attempt
        full_s = self.options.timeout_s
        hedge_at = self._clock()
        hedge_s = full_s if timeout_s >= full_s else at + timeout_s - hedge_at
        racers = {conn.sock: _Lost(index, conn, at, at + timeout_s, count)}
        with self._lock:
            hconn = self._borrow(hedge)
        try:
            hconn, unsent = self._send((hedge, hedge_s, frame), hconn)
        except Unavailable:  # no socket for it (given back already): the first goes on alone
            hconn, unsent = None, NO_ANSWER
        if hconn is not None and unsent is PENDING:
            racers[hconn.sock] = _Lost(hedge, hconn, hedge_at, hedge_at + hedge_s, count)
        else:
            assert unsent is not PENDING
            with self._lock:
                self._hedge_failed(hedge, hedge_at, unsent)
                if hconn is not None:
                    self._give_back(hconn, hedge, keep=False)
        first: _Conn | None = conn
        outcome: Reply | PendingReply = PENDING
        """What the first attempt brought, once it ended without an answer that ends it."""
        poller = zmq.Poller()
        for sock in racers:
            poller.register(sock, zmq.POLLIN)
        while racers:
            soonest = min(racer.end for racer in racers.values())
            ready = dict(poller.poll(_ms(soonest - self._clock())))
            now = self._clock()
            for sock, racer in list(racers.items()):
                reply: Reply = _recv(sock, zmq.NOBLOCK) if sock in ready else NO_ANSWER
                if reply is NO_ANSWER and racer.end > now:
                    continue
                del racers[sock]
                poller.unregister(sock)
                if isinstance(reply, bytes) and self._final(reply, count):
                    with self._lock:
                        for loser in racers.values():  # still out: its reply is read later
                            self._lost.append(loser)
                            if loser.index == index:
                                self._in_use += 1  # held by _lost; the plan gives back too
                                first = None
                        if racer.index == index:
                            return first, reply, at
                        self._hedge_won(index, at, hedge, hedge_at)
                        if outcome is NO_ANSWER:  # the first timed out (its socket closed)
                            self._lanes.stats.timeouts += 1
                        self._give_back(racer.conn, hedge)
                    return first, reply, hedge_at
                if racer.index != index:
                    with self._lock:
                        self._hedge_failed(hedge, hedge_at, reply)
                        self._give_back(racer.conn, hedge, keep=reply is not NO_ANSWER)
                elif reply is NO_ANSWER:
                    first, outcome = self._silence(attempt, racer.conn)
                else:
                    outcome = reply
        assert outcome is not PENDING  # the first attempt has ended
        return first, outcome, at

    def _sweep(self) -> None:
        """Attempts that lost their race: count the late answers that came (their sockets go
        back to the pool) and the ones past their timeout (closed, a failure)."""
        with self._lock:
            lost, self._lost = self._lost, []
        waiting: list[_Lost] = []
        for entry in lost:
            sock = entry.conn.sock
            try:
                reply: Reply = _recv(sock, zmq.NOBLOCK) if sock.poll(0) else NO_ANSWER
            except zmq.ZMQError:
                reply = NO_ANSWER
            if reply is NO_ANSWER and self._clock() < entry.end:
                waiting.append(entry)
                continue
            with self._lock:
                self._late(entry.index, entry.at, reply, entry.count)
                self._give_back(entry.conn, entry.index, keep=reply is not NO_ANSWER)
        if waiting:
            with self._lock:
                self._lost += waiting

    def _failed(self, conn: _Conn | None, index: int, exc: zmq.ZMQError) -> NoReturn:
        with self._lock:
            self._give_back(conn, index, keep=False)
        if self._closed:
            raise ValueError("this seqgen Client was closed during the call") from exc
        raise Unavailable(f"cannot use {self._endpoints[index]}: {exc}") from exc

    def _connect(self, index: int) -> _Conn:
        with self._lock:
            ctx = self._ctx
            if ctx is None:
                ctx = self._ctx = zmq.Context(io_threads=1)
        sock, watch = open_watched(ctx, CLIENT_REQ, self._endpoints[index], curve=self.options.curve)
        return _Conn(sock, watch)
