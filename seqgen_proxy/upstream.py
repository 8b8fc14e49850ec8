"""The proxy's side towards its hosts: attempts sent, answers read, time-outs, hedges, probes.

``Upstream`` owns one DEALER per backend (seqgen_proxy.links), the backends'
health (seqgen_proxy.backends), the attempts waiting on each (InFlight) and the
hedge queue (seqgen_proxy.hedges). The relay (seqgen_proxy.relay) hands it a
job to send and gets each job's answer back through ``answered`` (a backend's
reply, to relay to the job's clients) or ``give_up`` (the job's final error:
no backend is left to try).

A slow backend is told apart from a dead one. An attempt that passes its
deadline on a backend that answered anything within the last timeout is given
more time (the backend is busy, not dead), up to BUSY_PATIENCE timeouts, after
which only that request is retried elsewhere. A backend that answered nothing
for a whole timeout, or refuses a send (no connection), is marked down: its
socket is closed and opened again (so nothing queued for it is delivered later
and no reply to a forgotten id can come back on it) and every request waiting
on it is retried on the next backend. A backend that answers UNAVAILABLE or
INTERNAL (fenced, overloaded, its disk failing) is marked down too, without
losing its connection. Down backends are probed with ``[]`` (a server answers
BAD_REQUEST without touching a number) and used again once a probe gets that
answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import zmq

from seqgen_common.errors import ErrorCode
from seqgen_common.frames import MORE_NOBLOCK, NOBLOCK, receive
from seqgen_common.loops import BURST, IDLE_POLL_S
from seqgen_common.protocol import OK_START, encode_error
from seqgen_common.reqids import RequestIds, split_reply
from seqgen_proxy.backends import BackendPool
from seqgen_proxy.config import ProxyConfig
from seqgen_proxy.hedges import Hedges
from seqgen_proxy.jobs import Job
from seqgen_proxy.links import Backend, Links
from seqgen_proxy.stats import ProxyStats
from seqgen_proxy.wire import judge_error

__all__ = ["Upstream"]

log = logging.getLogger(__name__)

_send = zmq.backend.Socket.send
"""pyzmq's low-level send: 0.6 us for a request's three frames against 2 us (measured)."""

WARM_UP_POLL_S: Final = 0.005
"""At start, how often a backend that is not connected yet is tried again."""
BUSY_PATIENCE: Final = 4
"""An attempt on a backend that keeps answering others gets up to this many timeouts."""
PROBE_BODY: Final = b"[]"
_CANNOT_SERVE: Final = (b'["UNAVAILABLE"', b'["INTERNAL"')
"""A probe answered thus leaves its backend down (a healthy server answers BAD_REQUEST)."""
_UNAVAILABLE: Final = encode_error(ErrorCode.UNAVAILABLE, "no server answered in time")


def _send_request(sock: zmq.Socket[bytes], request_id: bytes, body: bytes) -> None:
    """``[request_id, b"", body]`` to a backend; zmq.Again (nothing sent) when it has no
    connection. Once the first part is taken, ZeroMQ takes the rest of the message."""
    _send(sock, request_id, MORE_NOBLOCK)
    _send(sock, b"", MORE_NOBLOCK)
    _send(sock, body, NOBLOCK)


class Upstream:
    """The backends of one proxy and the attempts out to them."""

    def __init__(self, config: ProxyConfig, links: Links, poller: zmq.Poller, stats: ProxyStats,
                 *, answered: Callable[[Job, bytes], None],
                 give_up: Callable[[Job, bytes], None]) -> None:
        self._timeout_s = config.timeout_s
        self._max_in_flight = config.max_in_flight
        self._links = links
        self._poller = poller
        self._stats = stats
        self._answered = answered
        self._give_up = give_up
        self._ids = RequestIds()
        self.pool = BackendPool(len(config.hosts), config.probe_interval_s)
        self.hedges = Hedges(config.hedge, config.max_in_flight)
        self.backends = [Backend(index, host, links.backend(host))
                         for index, host in enumerate(config.hosts)]
        self.by_socket = {backend.socket: backend for backend in self.backends}
        for backend in self.backends:
            poller.register(backend.socket, zmq.POLLIN)
        self.in_flight = 0
        """Attempts waiting on a backend (the sum of the backends' InFlight tables)."""
        self.now = 0.0
        """The loop's time, set by it at each turn."""
        self.check_at = 0.0
        """No attempt or probe times out, and no probe is due, before this."""

    # ---- sending ----------------------------------------------------------------

    def _send(self, backend: Backend, body: bytes) -> bytes | None:
        """Send ``body`` to ``backend`` under a fresh request id; None when it has no
        connection (nothing was sent)."""
        request_id = self._ids()
        try:
            _send_request(backend.socket, request_id, body)
        except zmq.Again:
            return None
        return request_id

    def forward(self, job: Job, first: int | None = None) -> None:
        """Send to ``first``, else the next backend not yet tried; answer when none is left."""
        pool = self.pool
        while True:
            index = pool.choose(job.tried) if first is None else first
            first = None
            if index is None:
                if job.fallback is None:
                    self._stats.unavailable += 1
                self._give_up(job, job.fallback or _UNAVAILABLE)
                return
            if job.tried:
                self._stats.retries += 1
            job.tried |= 1 << index
            backend = self.backends[index]
            request_id = self._send(backend, job.body)
            if request_id is None:
                self.mark_down(backend, "is not connected")
                continue
            job.backend = index
            job.sent_at = now = self.now
            deadline = now + self._timeout_s
            backend.inflight.add(request_id, job, deadline)
            self.in_flight += 1
            if job.hedge_backend >= 0:
                job.out += 1
            elif job.tried == 1 << index:  # its first attempt: a hedge may follow
                hedge_at = self.hedges.sent(job, now)
                if hedge_at is not None and hedge_at < deadline:
                    deadline = hedge_at
            if deadline < self.check_at:  # noqa: PLR1730 - hot path: cheaper than min()
                self.check_at = deadline
            return

    def _hedge(self, job: Job) -> None:
        """``job`` is unanswered after the hedge delay: send it to a healthy backend it has not
        tried too, if the budget and --max-in-flight allow."""
        if self.in_flight >= self._max_in_flight:
            return
        index = self.pool.choose_healthy(job.tried | job.lane.busy_backends())
        if index is None or not self.hedges.allow():
            return
        backend = self.backends[index]
        request_id = self._send(backend, job.body)
        if request_id is None:
            self.mark_down(backend, "is not connected")
            return
        self._stats.hedges += 1
        job.tried |= 1 << index
        job.hedge_backend, job.hedge_at, job.out = index, self.now, 2
        deadline = self.now + self._timeout_s
        backend.inflight.add(request_id, job, deadline)
        self.in_flight += 1
        self.check_at = min(self.check_at, deadline)

    def _probe(self, backend: Backend) -> bool:
        """Send ``backend`` a probe; False when it has no connection."""
        request_id = self._send(backend, PROBE_BODY)
        if request_id is None:
            return False
        backend.probe_id = request_id
        return True

    # ---- answers ----------------------------------------------------------------

    def _hedged_reply(self, job: Job, backend: Backend, body: bytes) -> bool:
        """A reply to one attempt of a hedged ``job``; True when it is not to be relayed (a
        late answer, counted; or an error worth retrying while the other attempt is out)."""
        job.out -= 1
        if job.settled:
            self._stats.late(job.count, body.startswith(OK_START))
            return True
        if body.startswith(OK_START) or not judge_error(body)[1]:  # it ends the request
            if backend.index == job.hedge_backend:
                self._stats.hedge_wins += 1
                if job.out > 0:  # the first attempt is still out: that backend is suspect
                    self.mark_down(self.backends[job.backend],
                                   f"was slower than a hedge (over {self.hedges.delay_s():g}s)")
            job.backend = backend.index
            return False
        if job.out > 0:  # the other attempt may still bring the answer
            self.mark_down(backend, "cannot serve (UNAVAILABLE or INTERNAL)")
            job.fallback = judge_error(body)[0]
            return True
        job.backend = backend.index
        return False

    def retry(self, job: Job, fallback: bytes) -> None:
        """``job``'s backend answered ``fallback``, an error worth another backend: it cannot
        serve now (fenced, overloaded, its disk failing), so it is left to its probes (the next
        requests do not pay a hop there first) and the job goes to the next backend."""
        self.mark_down(self.backends[job.backend], "cannot serve (UNAVAILABLE or INTERNAL)")
        job.fallback = fallback
        self.forward(job)

    def _retry(self, job: Job) -> None:
        """An attempt of ``job`` ended without an answer: the next backend, unless it was
        hedged and its other attempt is still out (or already won)."""
        if job.hedge_backend >= 0:
            job.out -= 1
            if job.settled or job.out > 0:
                return
        self.forward(job)

    def drain(self, backend: Backend) -> None:
        """Read what ``backend`` sent (up to BURST messages) and hand each answer on."""
        sock, inflight, pool, stats = backend.socket, backend.inflight, self.pool, self._stats
        backend.heard_at = now = self.now
        for _ in range(BURST):
            try:
                frames = receive(sock)
            except zmq.Again:
                return
            reply = split_reply(frames)
            if reply is None:
                stats.stale_replies += 1
                continue
            request_id, body = reply
            job = inflight.pop(request_id)
            if job is None:
                if request_id != backend.probe_id:
                    stats.stale_replies += 1
                elif body.startswith(_CANNOT_SERVE):  # fenced, overloaded, failing: not yet
                    backend.probe_id = None
                    pool.probe_failed(backend.index, now)
                    self.check_at = now
                else:
                    self._mark_up(backend)
                continue
            self.in_flight -= 1
            latency_s = now - (job.hedge_at if backend.index == job.hedge_backend
                               else job.sent_at)
            stats.latency[backend.index].observe(latency_s)
            if not job.settled:  # a late answer is the tail hedging cuts: not in the delay
                self.hedges.observe(latency_s)
            if (not pool.is_healthy(backend.index) and not body.startswith(_CANNOT_SERVE)
                    and not job.settled):  # a late answer (hedged) leaves it to its probes
                self._mark_up(backend)
            if job.hedge_backend >= 0 and self._hedged_reply(job, backend, body):
                continue
            try:
                self._answered(job, body)
            except Exception:
                log.exception("unexpected error relaying a reply")

    # ---- health -----------------------------------------------------------------

    def _mark_up(self, backend: Backend) -> None:
        backend.probe_id = None  # an outstanding probe is moot (its reply counts as stale)
        if self.pool.answered(backend.index):
            log.info("backend %s answers again", backend.host,
                     extra={"backend": backend.host, "up": True})

    def mark_down(self, backend: Backend, why: str) -> None:
        self.check_at = self.now  # a probe is due later: look again at the timers
        if self.pool.failed(backend.index, self.now):
            self._stats.marked_down[backend.index] += 1
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
        del self.by_socket[old]
        self._links.close_backend(old)
        backend.socket = self._links.backend(backend.host)
        if backend.probe_id is not None:
            backend.probe_id = None
            self.pool.probe_failed(backend.index, self.now)
            self.check_at = self.now
        self.by_socket[backend.socket] = backend
        self._poller.register(backend.socket, zmq.POLLIN)

    def _expire(self, backend: Backend, now: float) -> None:
        """Attempts past their deadline: more time if the backend is busy, else fail over."""
        inflight, timeout_s = backend.inflight, self._timeout_s
        while (oldest := inflight.oldest()) is not None and oldest[1].deadline <= now:
            request_id, job = oldest
            if now - backend.heard_at >= timeout_s:
                # Silent for a whole timeout with requests waiting: dead or frozen.
                self.mark_down(backend, f"did not answer within {timeout_s:g}s")
                self._reset(backend)
                waiting = inflight.take_all()
                self.in_flight -= len(waiting)
                for each in waiting:
                    self._retry(each)
                return
            if now - job.sent_at < BUSY_PATIENCE * timeout_s:
                inflight.extend(request_id, now + timeout_s)  # busy, not dead: wait on
                continue
            # The backend answers others but not this one (lost in a restart?): retry it alone.
            inflight.pop(request_id)
            self.in_flight -= 1
            self._retry(job)

    def _send_probes(self, now: float) -> None:
        for index in self.pool.probes_due(now):
            backend = self.backends[index]
            if not self._probe(backend):
                self.pool.probe_failed(index, now)
                continue
            backend.probe_deadline = now + self._timeout_s
            self.pool.probe_sent(index)

    def timers(self, now: float) -> None:
        """Time out attempts and probes, send due probes and hedges; then find the next time
        to look."""
        if now < self.check_at:
            return
        for backend in self.backends:
            self._expire(backend, now)
            if backend.probe_id is not None and backend.probe_deadline <= now:
                self._reset(backend)  # also schedules the next probe
        self._send_probes(now)
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
        self.check_at = check_at

    def warm_up(self, clock: Callable[[], float], stopping: Callable[[], bool]) -> None:
        """Give every backend up to one timeout to connect and answer a probe.

        Connections are made in the background, and a send to a backend that is not
        connected yet is refused: without this, the first requests after a start would
        find every backend "down". A backend that does not answer in time is marked
        down and probed as usual. The caller keeps clients out of the poller meanwhile.
        """
        waiting = {backend.index for backend in self.backends}
        deadline = clock() + self._timeout_s
        poll_ms = round(WARM_UP_POLL_S * 1000)
        while waiting and not stopping():
            self.now = now = clock()
            if now >= deadline:
                break
            for index in waiting:
                backend = self.backends[index]
                if backend.probe_id is None:
                    self._probe(backend)  # refused while not connected yet: tried again
            for sock, _ in self._poller.poll(poll_ms):
                backend = self.by_socket[sock]
                self.drain(backend)
                if backend.probe_id is None:
                    waiting.discard(backend.index)
        for index in sorted(waiting):
            backend = self.backends[index]
            self.mark_down(backend, "did not answer at start")
            if backend.probe_id is not None:
                self._reset(backend)  # connected but silent: drop what is queued

    def take_all(self) -> list[Job]:
        """Forget every attempt out (at a stop); the unsettled jobs they were for, once each."""
        jobs = [job for backend in self.backends for job in backend.inflight.take_all()]
        self.in_flight = 0
        return list({id(job): job for job in jobs if not job.settled}.values())  # hedged: twice
