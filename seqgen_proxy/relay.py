"""The proxy's I/O loop: one frontend ROUTER, one DEALER per backend, one thread.

A valid request is forwarded as ``[request_id, b"", body]`` on the DEALER of
the backend chosen for it; the backend's ROUTER echoes the id, so replies come
back in any order and many requests are in flight at once.

Every request gets exactly one reply (docs/protocol.md, "Overload"):

- At most ``--max-in-flight`` requests wait on backends; more wait in the
  proxy (at most ``--max-queued``). A request beyond both, or one that waited
  in the proxy for a whole ``--timeout``, is answered ``UNAVAILABLE``
  ("overloaded") at once, so its client tries elsewhere.
- A slow backend is told apart from a dead one. An attempt that passes its
  deadline on a backend that answered anything within the last timeout is
  given more time (the backend is busy, not dead), up to BUSY_PATIENCE
  timeouts, after which only that request is retried elsewhere. A backend
  that answered nothing for a whole timeout, or refuses a send (no
  connection), is marked down: its socket is closed and opened again (so
  nothing queued for it is delivered later and no reply to a forgotten id can
  come back on it) and every request waiting on it is retried on the next
  backend. A backend that answers UNAVAILABLE or INTERNAL (fenced, overloaded,
  its disk failing) is marked down too, without losing its connection. Down
  backends are probed with ``[]`` (a server answers BAD_REQUEST without
  touching a number) and used again once a probe gets that answer.
- Replies that a client's queue cannot take yet wait in the frontend's
  outbox; while it is full, no request is read.

Hedging (seqgen_proxy.hedges, on unless ``--no-hedge``): a backend request
unanswered within the hedge delay goes to a second healthy backend too; the
first answer that ends it is relayed, the other is counted and dropped.

Coalescing (seqgen_proxy.jobs, on unless ``--no-coalesce``): requests for a name
that has a job out wait in the name's lane and leave together as one request
when it settles; each client gets its own consecutive numbers of the reply.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import zmq

from seqgen_common import __version__
from seqgen_common.daemon import serve
from seqgen_common.errors import ErrorCode, SeqgenError, StartupError
from seqgen_common.frames import MORE_NOBLOCK, NOBLOCK, drain, receive, take_body
from seqgen_common.logs import describe_settings, settings
from seqgen_common.outbox import Outbox
from seqgen_common.protocol import decode_request, encode_error, encode_request
from seqgen_common.reqids import RequestIds, split_reply
from seqgen_proxy.backends import BackendPool
from seqgen_proxy.caps import CapTable
from seqgen_proxy.config import ProxyConfig
from seqgen_proxy.hedges import Hedges
from seqgen_proxy.jobs import Job, Lane, Member, split_values
from seqgen_proxy.links import Backend, Links
from seqgen_proxy.shares import Shares
from seqgen_proxy.stats import ProxyStats
from seqgen_proxy.wire import highest_issued, judge_error

__all__ = ["Relay", "run"]

_send = zmq.backend.Socket.send
"""pyzmq's low-level send: 0.6 us for a request's three frames against 2 us (measured)."""

log = logging.getLogger(__name__)

BURST: Final = 256
"""Messages taken from one socket before looking at the others again."""
IDLE_POLL_S: Final = 0.1
"""Longest poll: how soon a stop request is noticed."""
RETRY_S: Final = 0.002
"""Poll timeout while replies are held for clients whose queues are full."""
STOP_FLUSH_S: Final = 1.0
WARM_UP_POLL_MS: Final = 5
"""At start, how often a backend that is not connected yet is tried again."""
BUSY_PATIENCE: Final = 4
"""An attempt on a backend that keeps answering others gets up to this many timeouts."""
PROBE_BODY: Final = b"[]"
_CANNOT_SERVE: Final = (b'["UNAVAILABLE"', b'["INTERNAL"')
"""A probe answered thus leaves its backend down (a healthy server answers BAD_REQUEST)."""

_NOT_ONE_FRAME: Final = encode_error(ErrorCode.BAD_REQUEST, "a request is exactly one frame")
_UNAVAILABLE: Final = encode_error(ErrorCode.UNAVAILABLE, "no server answered in time")
_OVERLOADED: Final = encode_error(
    ErrorCode.UNAVAILABLE, "overloaded: the proxy has too many requests waiting; nothing was issued")
_STOPPING: Final = encode_error(ErrorCode.UNAVAILABLE, "the proxy is stopping")
_UNEXPECTED: Final = encode_error(ErrorCode.INTERNAL, "unexpected error in the proxy; nothing was issued")


class Relay:
    def __init__(self, config: ProxyConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._now = clock()
        self._timeout_s = config.timeout_s
        self._stopping = False
        self.pool = BackendPool(len(config.hosts), config.probe_interval_s)
        self.caps = CapTable(config.max_names)
        self._ids = RequestIds()
        self._links = Links(config.max_in_flight, frontend_curve=config.curve,
                            backend_curve=config.host_curve)
        try:
            self.frontend = self._links.frontend(config.bind)
            self.backends = [
                Backend(index, host, self._links.backend(host))
                for index, host in enumerate(config.hosts)
            ]
        except StartupError:
            self._links.close()
            raise
        self.outbox = Outbox(self.frontend)
        self._by_socket = {backend.socket: backend for backend in self.backends}
        self._poller = zmq.Poller()
        self._poller.register(self.frontend, zmq.POLLIN)
        for backend in self.backends:
            self._poller.register(backend.socket, zmq.POLLIN)
        self._in_flight = 0
        """Jobs waiting on a backend (the sum of the backends' InFlight tables)."""
        self._lanes: dict[str, Lane] = {}
        """Lanes of the names with a job out (coalescing only)."""
        self._queued: deque[Lane] = deque()
        """Lanes whose next job waits for room in flight, oldest first."""
        self._waiting = Shares(config.max_queued)
        """Client requests waiting in lanes (not yet part of a job out), in all and per name."""
        self._check_at = self._now
        """No attempt or probe times out, and no probe is due, before this."""
        self.stale_replies = 0
        self.retries = 0
        self.unavailable = 0
        self.shed = 0
        self.undelivered = 0
        self.coalesced = 0
        """Client requests that shared a backend request with others."""
        self.stats = ProxyStats(len(config.hosts))
        """What --metrics exports besides the counters above."""
        self.hedges = Hedges(config.hedge, config.max_in_flight)

    def load(self) -> tuple[int, int]:
        """(requests waiting on backends, client requests waiting in the proxy)."""
        return self._in_flight, self._waiting.total

    def request_stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler: it only sets a flag)."""
        self._stopping = True

    # ---- clients ----------------------------------------------------------------

    def _on_request(self, frames: list[bytes]) -> None:
        try:
            self._relay(frames)
        except Exception:  # a bug must not take the proxy down with it; this request is lost
            log.exception("unexpected error relaying a request")

    def _relay(self, frames: list[bytes]) -> None:
        body = take_body(frames)  # frames keeps the envelope
        if body is None:
            self._reply(frames, _NOT_ONE_FRAME)
            return
        try:
            request = decode_request(body)
        except SeqgenError as exc:
            self._reply(frames, encode_error(exc.code, exc.message))
            return
        except Exception:  # a bug in validation: still one reply, and nothing forwarded
            log.exception("unexpected error validating a request")
            self._reply(frames, _UNEXPECTED)
            return
        name = request.name
        last = request.last_value
        forwarded = self.caps.forward(name, last)
        if forwarded != last:
            if forwarded < last:
                self.stats.caps_applied += 1  # a client asked beyond what was relayed
            body = encode_request(name, forwarded, request.count)
        self._admit(name, Member(frames, body, request.count, forwarded, self._now))

    def _reply(self, envelope: list[bytes], reply: bytes) -> None:
        self.stats.replied(reply)
        if self.outbox.send(envelope, reply) is None:
            self.undelivered += 1  # the client has left

    def _shed(self, member: Member) -> None:
        self.shed += 1
        self._reply(member.envelope, _OVERLOADED)

    def _admit(self, name: str, member: Member) -> None:
        """A valid request: into its lane, from which it leaves as soon as it can."""
        if not self._waiting.room(name):  # the whole queue, or this name's share of it
            self._shed(member)
            return
        if self.config.coalesce:
            found = self._lanes.get(name)
            lane = self._lanes[name] = Lane(name) if found is None else found
        else:
            lane = Lane(name)  # a lane of its own: it never waits for another request
        if not lane.waiting and self._in_flight < self.config.max_in_flight:
            # The common case, without a trip through the lane's queue.
            index = self.pool.choose_free(lane.busy_backends())
            if index is not None:
                job = Job(lane, [member], member.count)
                lane.jobs.append(job)
                self._forward(job, index)
                return
        lane.waiting.append(member)
        self._waiting.add(name)
        self._pump(lane)

    def _pump(self, lane: Lane) -> None:
        """Send the lane's waiting requests as jobs while a backend is free for them."""
        stale_before = self._now - self._timeout_s
        waiting = lane.waiting
        while waiting:
            if self._in_flight >= self.config.max_in_flight:
                if not lane.queued:  # it waits its turn for room in flight
                    lane.queued = True
                    self._queued.append(lane)
                return
            index = self.pool.choose_free(lane.busy_backends())
            if index is None:
                return  # every backend has a job of this name out: wait for one
            while waiting and waiting[0].received_at <= stale_before:
                self._waiting.remove(lane.name)
                self._shed(waiting.popleft())  # it waited a whole timeout: its client moved on
            if not waiting:
                break
            job = lane.take_job()
            self._waiting.remove(lane.name, len(job.members))
            if len(job.members) > 1:
                self.coalesced += len(job.members)
                self.stats.coalesced_jobs += 1
                self.stats.coalesced_numbers += job.count
            lane.jobs.append(job)
            self._forward(job, index)
        if not lane.jobs and not lane.queued and self._lanes.get(lane.name) is lane:
            del self._lanes[lane.name]  # idle: memory stays bounded by the names in use

    def _settled(self, job: Job) -> None:
        """``job`` got its final answer: the lane's next requests may go."""
        job.settled = True
        lane = job.lane
        lane.jobs.remove(job)
        self._pump(lane)

    def _answer(self, job: Job, reply: bytes) -> None:
        """The same final reply (an error) for every client of ``job``."""
        for member in job.members:
            self._reply(member.envelope, reply)
        self._settled(job)

    def _dequeue(self) -> None:
        """Lanes that waited for room in flight send their jobs now."""
        queued, limit = self._queued, self.config.max_in_flight
        while queued and self._in_flight < limit:
            lane = queued.popleft()
            lane.queued = False
            self._pump(lane)

    # ---- backends ---------------------------------------------------------------

    def _forward(self, job: Job, first: int | None = None) -> None:
        """Send to ``first``, else the next backend not yet tried; answer when none is left."""
        pool = self.pool
        while True:
            index = pool.choose(job.tried) if first is None else first
            first = None
            if index is None:
                if job.fallback is None:
                    self.unavailable += 1
                self._answer(job, job.fallback or _UNAVAILABLE)
                return
            if job.tried:
                self.retries += 1
            job.tried |= 1 << index
            backend = self.backends[index]
            request_id = self._ids()
            sock = backend.socket
            try:
                _send(sock, request_id, MORE_NOBLOCK)
            except zmq.Again:
                self._mark_down(backend, "is not connected")
                continue
            # Once the first part is taken, ZeroMQ takes the rest of the message.
            _send(sock, b"", MORE_NOBLOCK)
            _send(sock, job.body, NOBLOCK)
            job.backend = index
            job.sent_at = now = self._now
            deadline = now + self._timeout_s
            backend.inflight.add(request_id, job, deadline)
            self._in_flight += 1
            if job.hedge_backend >= 0:
                job.out += 1
            elif job.tried == 1 << index:  # its first attempt: a hedge may follow
                hedge_at = self.hedges.sent(job, now)
                if hedge_at is not None and hedge_at < deadline:
                    deadline = hedge_at
            if deadline < self._check_at:  # noqa: PLR1730 - hot path: cheaper than min()
                self._check_at = deadline
            return

    def _hedge(self, job: Job) -> None:
        """``job`` is unanswered after the hedge delay: send it to a healthy backend it has not
        tried too, if the budget and --max-in-flight allow."""
        if self._in_flight >= self.config.max_in_flight:
            return
        index = self.pool.choose_healthy(job.tried | job.lane.busy_backends())
        if index is None or not self.hedges.allow():
            return
        backend = self.backends[index]
        request_id = self._ids()
        try:
            backend.socket.send_multipart([request_id, b"", job.body], zmq.NOBLOCK)
        except zmq.Again:
            self._mark_down(backend, "is not connected")
            return
        self.hedges.hedges += 1
        job.tried |= 1 << index
        job.hedge_backend, job.hedge_at, job.out = index, self._now, 2
        deadline = self._now + self._timeout_s
        backend.inflight.add(request_id, job, deadline)
        self._in_flight += 1
        self._check_at = min(self._check_at, deadline)

    def _hedged_reply(self, job: Job, backend: Backend, body: bytes) -> bool:
        """A reply to one attempt of a hedged ``job``; True when it is not to be relayed (a
        late answer, counted; or an error worth retrying while the other attempt is out)."""
        job.out -= 1
        if job.settled:
            self.hedges.late(job, body.startswith(b"[null"))
            return True
        if body.startswith(b"[null") or not judge_error(body)[1]:  # it ends the request
            if backend.index == job.hedge_backend:
                self.hedges.wins += 1
                if job.out > 0:  # the first attempt is still out: that backend is suspect
                    self._mark_down(self.backends[job.backend],
                                    f"was slower than a hedge (over {self.hedges.delay_s():g}s)")
            job.backend = backend.index
            return False
        if job.out > 0:  # the other attempt may still bring the answer
            self._mark_down(backend, "cannot serve (UNAVAILABLE or INTERNAL)")
            job.fallback = judge_error(body)[0]
            return True
        job.backend = backend.index
        return False

    def _retry(self, job: Job) -> None:
        """An attempt of ``job`` ended without an answer: the next backend, unless it was
        hedged and its other attempt is still out (or already won)."""
        if job.hedge_backend >= 0:
            job.out -= 1
            if job.settled or job.out > 0:
                return
        self._forward(job)

    def _drain_backend(self, backend: Backend) -> None:
        sock, inflight, pool = backend.socket, backend.inflight, self.pool
        backend.heard_at = self._now
        for _ in range(BURST):
            try:
                frames = receive(sock)
            except zmq.Again:
                return
            reply = split_reply(frames)
            if reply is None:
                self.stale_replies += 1
                continue
            request_id, body = reply
            job = inflight.pop(request_id)
            if job is None:
                if request_id != backend.probe_id:
                    self.stale_replies += 1
                elif body.startswith(_CANNOT_SERVE):  # fenced, overloaded, failing: not yet
                    backend.probe_id = None
                    self.pool.probe_failed(backend.index, self._now)
                    self._check_at = self._now
                else:
                    self._mark_up(backend)
                continue
            self._in_flight -= 1
            latency_s = self._now - (job.hedge_at if backend.index == job.hedge_backend
                                     else job.sent_at)
            self.stats.latency[backend.index].observe(latency_s)
            if not job.settled:  # a late answer is the tail hedging cuts: not in the delay
                self.hedges.observe(latency_s)
            if (not pool.is_healthy(backend.index) and not body.startswith(_CANNOT_SERVE)
                    and not job.settled):  # a late answer (hedged) leaves it to its probes
                self._mark_up(backend)
            if job.hedge_backend >= 0 and self._hedged_reply(job, backend, body):
                continue
            try:
                self._on_reply(job, body)
            except Exception:
                log.exception("unexpected error relaying a reply")

    def _on_reply(self, job: Job, body: bytes) -> None:
        members = job.members
        if len(members) == 1:  # the common case: the reply passes through unchanged
            highest = highest_issued(body)
            if highest is not None:
                self.caps.relayed(job.name, highest)
                self._reply(members[0].envelope, body)
                self._settled(job)
                return
        elif body.startswith(b"[null"):
            parts = split_values(body, [member.count for member in members])
            if parts is not None:
                self.caps.relayed(job.name, int(parts[-1][parts[-1].rfind(b'"', 0, -2) + 1:-2]))
                for member, part in zip(members, parts, strict=True):
                    self._reply(member.envelope, part)
                self._settled(job)
                return
        body, retry = judge_error(body)
        if retry:
            # It cannot serve now (fenced, overloaded, its disk failing): leave it to its
            # probes, so the next requests do not pay a hop there first.
            self._mark_down(self.backends[job.backend], "cannot serve (UNAVAILABLE or INTERNAL)")
            job.fallback = body
            self._forward(job)
        else:
            self._answer(job, body)

    def _mark_up(self, backend: Backend) -> None:
        backend.probe_id = None  # an outstanding probe is moot (its reply counts as stale)
        if self.pool.answered(backend.index):
            log.info("backend %s answers again", backend.host,
                     extra={"backend": backend.host, "up": True})

    def _mark_down(self, backend: Backend, why: str) -> None:
        self._check_at = self._now  # a probe is due later: look again at the timers
        if self.pool.failed(backend.index, self._now):
            self.stats.marked_down[backend.index] += 1
            refusal = self._links.refusal(backend.socket)
            if refusal is not None:
                why = f"refused the proxy's security handshake: {refusal}"
            log.warning("backend %s %s: marked down, probing it every %gs", backend.host, why,
                        self.pool.probe_interval_s,
                        extra={"backend": backend.host, "up": False, "reason": why})

    def _reset(self, backend: Backend) -> None:
        """Close and reopen the backend's socket: whatever was queued or is late is gone."""
        old = backend.socket
        self._poller.unregister(old)
        del self._by_socket[old]
        self._links.close_backend(old)
        backend.socket = self._links.backend(backend.host)
        if backend.probe_id is not None:
            backend.probe_id = None
            self.pool.probe_failed(backend.index, self._now)
            self._check_at = self._now
        self._by_socket[backend.socket] = backend
        self._poller.register(backend.socket, zmq.POLLIN)

    def _expire(self, backend: Backend, now: float) -> None:
        """Attempts past their deadline: more time if the backend is busy, else fail over."""
        inflight, timeout_s = backend.inflight, self._timeout_s
        while (oldest := inflight.oldest()) is not None and oldest[1].deadline <= now:
            request_id, job = oldest
            if now - backend.heard_at >= timeout_s:
                # Silent for a whole timeout with requests waiting: dead or frozen.
                self._mark_down(backend, f"did not answer within {timeout_s:g}s")
                self._reset(backend)
                waiting = inflight.take_all()
                self._in_flight -= len(waiting)
                for each in waiting:
                    self._retry(each)
                return
            if now - job.sent_at < BUSY_PATIENCE * timeout_s:
                inflight.extend(request_id, now + timeout_s)  # busy, not dead: wait on
                continue
            # The backend answers others but not this one (lost in a restart?): retry it alone.
            inflight.pop(request_id)
            self._in_flight -= 1
            self._retry(job)

    def _probe(self, now: float) -> None:
        for index in self.pool.probes_due(now):
            backend = self.backends[index]
            request_id = self._ids()
            try:
                backend.socket.send_multipart([request_id, b"", PROBE_BODY], zmq.NOBLOCK)
            except zmq.Again:
                self.pool.probe_failed(index, now)
                continue
            backend.probe_id = request_id
            backend.probe_deadline = now + self._timeout_s
            self.pool.probe_sent(index)

    def _timers(self, now: float) -> None:
        """Time out attempts and probes, send due probes; then find the next time to look."""
        if now < self._check_at:
            return
        for backend in self.backends:
            self._expire(backend, now)
            if backend.probe_id is not None and backend.probe_deadline <= now:
                self._reset(backend)  # also schedules the next probe
        self._probe(now)
        for job in self.hedges.due(now):
            self._hedge(job)
        check_at = now + IDLE_POLL_S
        hedge_at = self.hedges.next_at()
        if hedge_at is not None and hedge_at < check_at:
            check_at = hedge_at
        for backend in self.backends:
            deadline = backend.inflight.oldest_deadline()
            if deadline is not None and deadline < check_at:
                check_at = deadline
            if backend.probe_id is not None and backend.probe_deadline < check_at:
                check_at = backend.probe_deadline
        probe_at = self.pool.next_probe_at()
        if probe_at is not None and probe_at < check_at:
            check_at = probe_at
        self._check_at = check_at

    def _poll_timeout_ms(self) -> int:
        if self.outbox:
            return int(RETRY_S * 1000)
        wait_s = min(self._check_at - self._clock(), IDLE_POLL_S)
        return max(0, int(wait_s * 1000) + 1)

    # ---- the loop ---------------------------------------------------------------

    def _warm_up(self) -> None:
        """Before reading clients, give every backend up to one timeout to connect and answer.

        Connections are made in the background, and a send to a backend that is not
        connected yet is refused: without this, the first requests after a start would
        find every backend "down". A backend that does not answer in time is marked
        down and probed as usual.
        """
        self._poller.modify(self.frontend, 0)
        waiting = {backend.index for backend in self.backends}
        deadline = self._clock() + self._timeout_s
        while waiting and not self._stopping:
            self._now = now = self._clock()
            if now >= deadline:
                break
            for index in waiting:
                backend = self.backends[index]
                if backend.probe_id is None:
                    request_id = self._ids()
                    try:
                        backend.socket.send_multipart([request_id, b"", PROBE_BODY], zmq.NOBLOCK)
                    except zmq.Again:
                        continue  # not connected yet
                    backend.probe_id = request_id
            for sock, _ in self._poller.poll(WARM_UP_POLL_MS):
                backend = self._by_socket[sock]
                self._drain_backend(backend)
                if backend.probe_id is None:
                    waiting.discard(backend.index)
        for index in sorted(waiting):
            backend = self.backends[index]
            self._mark_down(backend, "did not answer at start")
            if backend.probe_id is not None:
                self._reset(backend)  # connected but silent: drop what is queued
        self._poller.modify(self.frontend, zmq.POLLIN)

    def serve(self) -> None:
        """Relay until request_stop(); then let what is in flight finish (bounded) and stop."""
        self._warm_up()
        poller, frontend, by_socket, outbox = self._poller, self.frontend, self._by_socket, self.outbox
        reading = True
        stop_at: float | None = None
        while True:
            events = poller.poll(self._poll_timeout_ms())
            self._now = now = self._clock()
            if outbox:
                self.undelivered += outbox.flush().dropped
            for sock, _ in events:
                if sock is frontend:
                    drain(frontend, self._on_request, BURST)
                else:
                    self._drain_backend(by_socket[sock])
            self._timers(now)
            if self._queued:
                self._dequeue()
            if self._stopping:
                if stop_at is None:
                    stop_at = now + self._timeout_s
                    log.info("stopping: %d request(s) in flight, %d waiting",
                             self._in_flight, self._waiting.total)
                if not (self._in_flight or self._waiting.total) or now >= stop_at:
                    break
            want = not self._stopping and not outbox.full
            if want != reading:
                reading = want
                poller.modify(frontend, zmq.POLLIN if reading else 0)
        self._finish()

    def _finish(self) -> None:
        jobs = [job for backend in self.backends for job in backend.inflight.take_all()]
        jobs = list({id(job): job for job in jobs if not job.settled}.values())  # hedged: twice
        lanes = [*(job.lane for job in jobs), *self._queued, *self._lanes.values()]
        for member in [m for job in jobs for m in job.members]:
            self._reply(member.envelope, _STOPPING)
        for lane in {id(lane): lane for lane in lanes}.values():
            for member in lane.waiting:
                self._reply(member.envelope, _STOPPING)
        give_up_at = self._clock() + STOP_FLUSH_S
        while self.outbox and self._clock() < give_up_at:
            self.undelivered += self.outbox.flush().dropped
            time.sleep(RETRY_S)
        hedges = self.hedges
        totals = {"retries": self.retries, "unavailable": self.unavailable, "shed": self.shed,
                  "stale_replies": self.stale_replies,
                  "undelivered": self.undelivered + self.outbox.size, "coalesced": self.coalesced,
                  "hedges": hedges.hedges, "hedge_wins": hedges.wins,
                  "late_answers": hedges.late_answers, "late_numbers": hedges.late_numbers}
        log.info("stopped: %d retries, %d UNAVAILABLE, %d shed (overloaded), %d stale replies "
                 "dropped, %d replies undelivered, %d requests coalesced, %d hedges (%d won, "
                 "%d late answers, %d numbers skipped)", *totals.values(), extra={"totals": totals})
        self.frontend.close(linger=0)
        self._links.close()


def run(config: ProxyConfig) -> int:
    """Start a proxy with ``config`` and relay until SIGTERM or SIGINT; the exit status."""

    def describe(relay: Relay) -> None:
        log.info("seqgen-proxy %s: %s", __version__, describe_settings(config),
                 extra={"version": __version__, "config": settings(config)})

    if config.metrics is not None:
        from seqgen_proxy.metrics import serve_observed  # noqa: PLC0415 - prometheus-client only when asked for

        return serve_observed(lambda: Relay(config), describe, config.metrics)
    return serve(lambda: Relay(config), describe)
