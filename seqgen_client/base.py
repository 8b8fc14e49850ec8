"""What the blocking and the asyncio client share: everything but their I/O.

The options, the endpoint rotation, the highest number seen per name, the
lanes (coalescing and prefetch), the plan of one request (``_plan``: which
endpoint, what timeout, what a reply means) and the hand-over of a lane's next
request (``_hand_over``, whose docstring states what holds) live here.
``Client`` and ``AsyncClient`` add only how they wait and how one attempt goes
over a socket, under the same names in both: ``_send_first`` makes a ``Sent``
(a request on its way), ``_finish`` receives it and goes on with its plan,
``_lead`` does both for a caller that leads a batch, ``_take_over`` for a batch
whose callers all gave up. ``Waiter`` and ``Sent`` are generic over each
client's own kinds (how a call sleeps, what an attempt in flight is).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

from seqgen_client.failover import NO_ANSWER, Call, PendingReply, Reply, Rotation, judge
from seqgen_client.lanes import Batch, Lanes, Stats
from seqgen_client.lastseen import LastSeen
from seqgen_client.options import (
    DEFAULT_BACKOFF_S,
    DEFAULT_DEADLINE_S,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_TIMEOUT_S,
    ClientOptions,
)
from seqgen_common.curve import KeySource
from seqgen_common.errors import (
    RETRY_ELSEWHERE,
    ErrorCode,
    InternalError,
    RequestError,
    SeqgenError,
    Unavailable,
)
from seqgen_common.hedging import Hedging
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import decode_reply

__all__ = ["Attempt", "ClientBase", "Plan", "Sent", "Waiter"]

S = TypeVar("S")
"""How a waiting call sleeps, the client's own: a thread's lock (``Client``), a future
(``AsyncClient``)."""
F = TypeVar("F")
"""An attempt in flight, the client's own: a pooled REQ socket (``Client``), a channel and
its pending reply (``AsyncClient``)."""

Attempt = tuple[int, float, bytes]
"""One attempt of a request: endpoint index, timeout in seconds, the request frame."""
Plan = Generator[Attempt, Reply, list[int]]
"""The attempts of one request (``ClientBase._plan``)."""


class Sent(Generic[F]):
    """A request on its way (both clients): made by ``_send_first``, finished by ``_finish``.

    ``flight`` is the attempt in flight, ``reply`` what came of it so far:
    ``PENDING`` while its reply is still to come, else what its send already
    brought (NO_ANSWER: not sent in time; UNSENT: not even queued), ``flight``
    then None.
    """

    __slots__ = ("at", "attempt", "count", "flight", "plan", "reply")

    def __init__(self, plan: Plan, attempt: Attempt, flight: F | None, reply: Reply | PendingReply, *,
                 at: float, count: int) -> None:
        self.plan = plan
        self.attempt = attempt
        """The attempt in flight."""
        self.flight = flight
        self.reply = reply
        self.at = at
        """When the attempt in flight was sent."""
        self.count = count
        """How many numbers the request asks for."""


class Waiter(Generic[S, F]):
    """One ``next`` call in a lane (seqgen_client.lanes.Caller); the client's lock guards it."""

    __slots__ = ("answered", "batch", "deadline", "error", "given_up", "sent", "signal", "started",
                 "value")

    def __init__(self, started: float, deadline: float) -> None:
        self.started = started
        self.deadline = deadline
        self.value = 0
        self.error: SeqgenError | None = None
        self.batch: Batch[Waiter[S, F]] | None = None
        """A batch this call is to lead, handed over by another call (``ClientBase._hand_over``)."""
        self.answered = False
        self.given_up = False
        self.signal: S | None = None
        """How the waiting call is woken: the clients' waiters set it when they must wait."""
        self.sent: Sent[F] | None = None
        """With ``batch``: its request, already sent by the call that handed it over."""

    def gone(self) -> bool:
        return self.answered or self.given_up

    def give(self, value: int) -> None:
        self.value = value
        self.answered = True
        self.wake()

    def fail(self, error: SeqgenError) -> None:
        self.error = error
        self.answered = True
        self.wake()

    def lead(self, batch: Batch[Waiter[S, F]], sent: Sent[F]) -> None:
        self.batch = batch
        self.sent = sent
        self.wake()

    def wake(self) -> None:
        """Wake the waiting call (the clients' waiters know how)."""

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        return self.value


class ClientBase(Generic[S, F]):
    """Validated options, the endpoint rotation, the highest number seen per name, the lanes.

    ``endpoints`` is one ZeroMQ URI or several (servers or proxies), used
    round-robin. ``timeout_s`` bounds one attempt on one endpoint,
    ``deadline_s`` a whole call; an endpoint that failed is skipped for
    ``backoff_s`` (doubling per failure up to ``max_backoff_s``) before it is
    probed again. Sockets are opened on first use.

    ``server_public_key`` turns on CURVE: the servers' (or proxies') public
    key, as a certificate file (``NAME.key``) or z85 text; ``client_secret_key``
    is this client's key pair (``NAME.key_secret``, or a z85 secret key), else
    an ephemeral pair is made (only servers accepting any client take it).

    ``prefetch`` > 1 makes ``next`` fetch that many numbers per round trip and
    hand them out one by one from a per-name buffer; numbers still buffered
    when the process ends are skipped.

    ``coalesce`` (on by default): concurrent ``next`` calls for one name share
    one round trip (docs/client.md, "Coalescing"); ``coalesce=False`` sends
    every call on its own.

    ``hedge`` (on by default): a request whose attempt has not been answered
    within the hedge delay (twice the recent p99 latency, 10..50 ms) is sent to
    the next healthy endpoint too, within a budget of 5 % extra requests; the
    first answer wins, the other is counted and dropped (docs/client.md,
    "Hedging"). ``hedge=False`` waits for each attempt's timeout instead.
    """

    def __init__(
        self,
        endpoints: str | Iterable[str],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deadline_s: float = DEFAULT_DEADLINE_S,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        server_public_key: KeySource | None = None,
        client_secret_key: KeySource | None = None,
        prefetch: int = 1,
        coalesce: bool = True,
        hedge: bool = True,
    ) -> None:
        self.options = ClientOptions.build(
            endpoints, timeout_s=timeout_s, deadline_s=deadline_s, backoff_s=backoff_s,
            max_backoff_s=max_backoff_s, server_public_key=server_public_key,
            client_secret_key=client_secret_key, prefetch=prefetch, coalesce=coalesce,
            hedge=hedge,
        )
        opts = self.options
        self._endpoints = opts.endpoints
        self._clock: Callable[[], float] = time.monotonic
        self._rotation = Rotation(
            len(opts.endpoints), opts.backoff_s, opts.max_backoff_s,
            start=random.randrange(len(opts.endpoints)),
        )
        self._last = LastSeen()
        self._lanes: Lanes[Waiter[S, F]] = Lanes(opts.prefetch, opts.coalesce)
        self._hedging: Hedging | None = Hedging() if opts.hedge and len(opts.endpoints) > 1 else None
        """The hedge delay and budget; None: no hedging (turned off, or one endpoint)."""
        self._closed = False
        self._guard: AbstractContextManager[object] = _UNGUARDED
        """What guards the lanes and the waiters (the sync client's lock)."""
        self._setup()

    def _setup(self) -> None:
        """The subclass's own state (sockets are opened on first use)."""

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._endpoints

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stats(self) -> Stats:
        """A copy of the counters (docs/client.md, "Statistics")."""
        s = self._lanes.stats
        return Stats(s.requests, s.calls, s.coalesced_calls, s.lost_numbers, s.attempts, s.timeouts,
                     s.hedges, s.hedge_wins, s.late_answers)

    def last(self, name: str) -> int:
        """The highest number this client has received for ``name`` (0 when none).

        With prefetch this counts numbers received but still buffered.
        """
        return self._last.get(name)

    def seen(self, name: str, value: int) -> None:
        """A number of ``name`` seen elsewhere (a script that keeps its own highest number):
        from now on requests carry it as ``last`` while it is the highest this client knows,
        so a server that fell behind skips past it. RequestError (BAD_NAME, BAD_LAST) when
        the name or the value (0..2^63-1) is not one a server would take."""
        self._last.check(name)
        if value.__class__ is not int or not 0 <= value <= MAX_VALUE:
            raise RequestError(f"last must be between 0 and {MAX_VALUE}", ErrorCode.BAD_LAST)
        self._last.record(name, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._endpoints)!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"this seqgen {type(self).__name__} is closed")

    # ---- what both clients do between their I/O -------------------------------------

    def _plan(self, name: str, count: int, started: float) -> Plan:
        """The attempts of one request for a call that started at ``started``.

        Yields each attempt and is sent what it brought back (``failover.Reply``);
        returns the numbers, or raises the final error. The sync client runs it
        under its lock. Each reply is judged as ``Call.outcome`` does
        (``failover.judge``); the ``Call`` itself is made only when the first attempt
        fails (that saves about 2 us per call).
        """
        frame = self._last.request(name, count)
        clock, opts, rotation = self._clock, self.options, self._rotation
        stats = self._lanes.stats
        attempt_started = clock()
        index = rotation.pick(attempt_started)
        assert index is not None  # nothing is skipped yet
        timeout_s = min(opts.timeout_s, started + opts.deadline_s - attempt_started)
        if self._hedging is not None:
            self._hedging.sent()
        call: Call | None = None
        while True:
            stats.attempts += 1
            reply = yield index, timeout_s, frame
            if reply is NO_ANSWER:
                stats.timeouts += 1
            judged = judge(rotation, index, attempt_started, reply, count)
            if isinstance(judged, list):
                self._last.record(name, judged[-1])
                return judged
            if call is None:
                call = Call(rotation, self._endpoints, started, opts.deadline_s, opts.timeout_s)
            call.missed(index, attempt_started, clock(), judged)
            planned = call.next(clock())
            if planned is None:
                raise call.error()
            index, timeout_s = planned
            attempt_started = clock()

    # ---- hedging (seqgen_common.hedging): what both clients do around their I/O ----------

    def _hedge_to(self, index: int) -> int | None:
        """The endpoint to hedge an attempt on ``index`` to (``Rotation.pick_hedge``), when the
        budget allows; None when there is none or the budget is spent."""
        hedging = self._hedging
        if hedging is None:
            return None
        target = self._rotation.pick_hedge(index)
        if target is None or not hedging.allow():
            return None
        stats = self._lanes.stats
        stats.hedges += 1
        stats.attempts += 1
        return target

    def _answered(self, started: float, reply: Reply) -> None:
        """An attempt sent at ``started`` brought ``reply``: its latency feeds the hedge delay."""
        if self._hedging is not None and isinstance(reply, bytes):
            self._hedging.observe(self._clock() - started)

    @staticmethod
    def _final(reply: Reply, count: int) -> bool:
        """Whether ``reply`` ends the request (numbers, or an error every endpoint would give)."""
        if not isinstance(reply, bytes):
            return False
        try:
            decode_reply(reply, count)
        except SeqgenError as exc:
            return exc.code not in RETRY_ELSEWHERE
        return True

    def _hedge_won(self, index: int, started: float, hedge: int, hedge_started: float) -> None:
        """The hedge on ``hedge`` answered before the attempt on ``index``: that endpoint is
        suspect (skipped for a back-off) until it answers; the hedge's endpoint is up."""
        self._lanes.stats.hedge_wins += 1
        self._rotation.suspect(index, started, self._clock())
        self._rotation.succeeded(hedge, hedge_started)

    def _hedge_failed(self, index: int, started: float, reply: Reply) -> None:
        """A hedge sent at ``started`` to ``index`` ended without an answer that ends its
        request (none in time, or INTERNAL/UNAVAILABLE): a failure of its endpoint."""
        if not isinstance(reply, bytes):
            self._lanes.stats.timeouts += 1
        self._rotation.failed(index, started, self._clock())

    def _late(self, index: int, started: float, reply: Reply, count: int) -> None:
        """The attempt on ``index`` sent at ``started`` lost its race and has now ended with
        ``reply``: a late answer is counted (its numbers lost, never delivered); none in time
        is a failure of its endpoint, as for any attempt (the same outage as its loss)."""
        stats, now = self._lanes.stats, self._clock()
        if not isinstance(reply, bytes):
            stats.timeouts += 1
            self._rotation.failed(index, started, now)
            return
        stats.late_answers += 1
        # Its latency is not observed: it is the tail that hedging cuts, and it would raise
        # the hedge delay exactly while hedges are needed (a frozen or lossy endpoint).
        # It stays skipped until its back-off is over: an endpoint that answers late (a lossy
        # link) would otherwise take first attempts again at once and spend the budget.
        try:
            decode_reply(reply, count)
        except SeqgenError:
            return
        stats.lost_numbers += count

    def _led(self, batch: Batch[Waiter[S, F]], leader: Waiter[S, F],
             outcome: list[int] | SeqgenError) -> Batch[Waiter[S, F]] | None:
        """The request that ``leader`` sent for ``batch`` ended with ``outcome``; the next batch."""
        if not isinstance(outcome, SeqgenError):
            return self._lanes.settle(batch, outcome)
        if self._clock() >= leader.deadline and isinstance(outcome, Unavailable):
            # The leader ran out of time, not the others: they try again on their own time.
            following = self._lanes.abandon(batch, leader)
            leader.fail(outcome)
            return following
        return self._lanes.fail(batch, outcome)

    def _woken(self, waiter: Waiter[S, F]) -> tuple[Batch[Waiter[S, F]] | None, Sent[F] | None]:
        """After a wait: the batch ``waiter`` is to lead and its request, already sent;
        Unavailable when its deadline passed with neither a number nor a batch."""
        batch, sent = waiter.batch, waiter.sent
        waiter.batch = waiter.sent = None
        if batch is None and not waiter.answered and self._clock() >= waiter.deadline:
            waiter.given_up = True
            raise Unavailable(f"no number within {self.options.deadline_s:g} s")
        return batch, sent

    # ---- the hand-over: the same in both clients ---------------------------------------

    def _hand_over(self, batch: Batch[Waiter[S, F]] | None) -> None:
        """Start the lane's next ``batch`` (from ``settle``, ``fail`` or ``abandon``): the call
        that settled a request sends the next one and hands it to its leader.

        What holds (tests/unit/test_client_handover.py tests each):

        1. **Sent before woken.** The batch's request is sent here, by the call that settled
           the one before, and only then is its leader woken (``Waiter.lead``, with the
           ``Sent``): the leader only receives the reply (``_lead`` → ``_finish``), it never
           sends the request again. Waking a thread takes longer than a round trip; this
           way the two overlap.
        2. **The first caller still waiting leads.** A caller of the batch that gave up
           while the request was being sent is passed over; the lanes never put a caller
           that already gave up at the head of a batch.
        3. **Nothing is dropped unseen.** When every caller gave up before the request was
           out, this call takes the reply itself (``_take_over``): its numbers go to calls
           now waiting in the lane, then to the prefetch buffer, else are counted in
           ``Stats.lost_numbers``; no reply: the lane goes on with whoever waits.
        4. **A failed send ends its batch, not the lane.** An error sending the request (no
           socket, or the client closed meanwhile: INTERNAL) reaches every caller of the
           batch, and the lane's following batch is started the same way.
        5. **One request per lane.** A lane is busy from the batch's send until its
           request settles; the callers that come meanwhile wait for the next batch (at
           most 1,000 of them), which only the settling call starts.
        6. **Locking** (``Client``): the lanes and the waiters change only under the
           client's lock (``_guard``); requests are sent and replies received outside it.
           Callers given their number are woken one after the other, the new leader at
           once (``Client._hand_over``, seqgen_client.wakeups).
        """
        guard = self._guard
        while batch is not None:
            leader = batch.callers[0]
            try:
                sent = self._send_first(batch.name, batch.count, leader.started)
            except SeqgenError as exc:
                with guard:
                    batch = self._lanes.fail(batch, exc)
                continue
            except ValueError as exc:  # closed meanwhile
                with guard:
                    batch = self._lanes.fail(batch, InternalError(str(exc)))
                continue
            with guard:
                live = next((c for c in batch.callers if not c.gone()), None)
                if live is not None:
                    live.lead(batch, sent)
                    return
            batch = self._take_over(batch, sent)

    def _took_over(self, batch: Batch[Waiter[S, F]], values: list[int],
                   ) -> Batch[Waiter[S, F]] | None:
        """What the request of ``batch`` that nobody leads brought (``_take_over``): hand
        out its ``values`` (none: nothing came, or the client closed); the next batch."""
        with self._guard:
            return self._lanes.settle(batch, values) if values else self._lanes.abandon(batch, None)

    # ---- the I/O: each client's own --------------------------------------------------------

    def _send_first(self, name: str, count: int, started: float) -> Sent[F]:
        """Plan one request (on the time of a call that started at ``started``) and send its
        first attempt."""
        raise NotImplementedError

    def _take_over(self, batch: Batch[Waiter[S, F]], sent: Sent[F]) -> Batch[Waiter[S, F]] | None:
        """Every caller of ``batch`` gave up while its request ``sent`` went out: this call
        finishes it (``_took_over``); the lane's next batch to start, if any."""
        raise NotImplementedError


class _Unguarded(AbstractContextManager[object]):
    """No lock: the asyncio client runs in one thread."""

    def __exit__(self, *_: object) -> None:
        return None


_UNGUARDED: AbstractContextManager[object] = _Unguarded()
