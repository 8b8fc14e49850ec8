"""The proxy's I/O loop: one frontend ROUTER, one DEALER per backend, one thread.

A valid request is forwarded as ``[request_id, b"", body]`` on the DEALER of
the backend chosen for it; the backend's ROUTER echoes the id, so replies come
back in any order and many requests are in flight at once. This module is the
clients' side (requests read, queued, coalesced, answered) and the loop;
seqgen_proxy.upstream is the backends' side (attempts, time-outs, failover,
hedges, probes).

Every request gets exactly one reply (docs/protocol.md, "Overload"):

- At most ``--max-in-flight`` requests wait on backends; more wait in the
  proxy (at most ``--max-queued``). A request beyond both, or one that waited
  in the proxy for a whole ``--timeout``, is answered ``UNAVAILABLE``
  ("overloaded") at once, so its client tries elsewhere.
- A slow backend is told apart from a dead one, and a request whose backend
  fails is retried on the next (seqgen_proxy.upstream); when none is left it
  is answered ``UNAVAILABLE``.
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
from seqgen_common.frames import drain, take_body
from seqgen_common.logs import describe_settings, settings
from seqgen_common.loops import BURST, IDLE_POLL_S, NOT_ONE_FRAME, RETRY_S, flush_at_stop, poll_ms
from seqgen_common.outbox import Outbox
from seqgen_common.protocol import (
    OK_START,
    decode_request,
    encode_error,
    encode_request,
    highest_issued,
    split_values,
)
from seqgen_proxy.caps import CapTable
from seqgen_proxy.config import ProxyConfig
from seqgen_proxy.jobs import Job, Lane, Member
from seqgen_proxy.links import Links
from seqgen_proxy.shares import Shares
from seqgen_proxy.stats import ProxyStats
from seqgen_proxy.upstream import Upstream
from seqgen_proxy.wire import judge_error

__all__ = ["Relay", "run"]

log = logging.getLogger(__name__)

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
        self.caps = CapTable(config.max_names)
        self.stats = ProxyStats(len(config.hosts))
        """Everything the proxy counts: --metrics and the stop log line read it."""
        self._links = Links(config.max_in_flight, frontend_curve=config.curve,
                            backend_curve=config.host_curve)
        self._poller = zmq.Poller()
        try:
            self.frontend = self._links.frontend(config.bind)
            self._poller.register(self.frontend, zmq.POLLIN)  # first: requests before replies
            self.upstream = Upstream(config, self._links, self._poller, self.stats,
                                     answered=self._on_reply, give_up=self._answer)
        except StartupError:
            self._links.close()
            raise
        self.upstream.now = self.upstream.check_at = self._now
        self.outbox = Outbox(self.frontend)
        self._lanes: dict[str, Lane] = {}
        """Lanes of the names with a job out (coalescing only)."""
        self._queued: deque[Lane] = deque()
        """Lanes whose next job waits for room in flight, oldest first."""
        self._waiting = Shares(config.max_queued)
        """Client requests waiting in lanes (not yet part of a job out), in all and per name."""

    def load(self) -> tuple[int, int]:
        """(requests waiting on backends, client requests waiting in the proxy)."""
        return self.upstream.in_flight, self._waiting.total

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
            self._reply(frames, NOT_ONE_FRAME)
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
            self.stats.undelivered += 1  # the client has left

    def _shed(self, member: Member) -> None:
        self.stats.shed += 1
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
        upstream = self.upstream
        if not lane.waiting and upstream.in_flight < self.config.max_in_flight:
            # The common case, without a trip through the lane's queue.
            index = upstream.pool.choose_free(lane.busy_backends())
            if index is not None:
                job = Job(lane, [member], member.count)
                lane.jobs.append(job)
                upstream.forward(job, index)
                return
        lane.waiting.append(member)
        self._waiting.add(name)
        self._pump(lane)

    def _pump(self, lane: Lane) -> None:
        """Send the lane's waiting requests as jobs while a backend is free for them."""
        stale_before = self._now - self._timeout_s
        waiting, upstream, stats = lane.waiting, self.upstream, self.stats
        while waiting:
            if upstream.in_flight >= self.config.max_in_flight:
                if not lane.queued:  # it waits its turn for room in flight
                    lane.queued = True
                    self._queued.append(lane)
                return
            index = upstream.pool.choose_free(lane.busy_backends())
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
                stats.coalesced += len(job.members)
                stats.coalesced_jobs += 1
                stats.coalesced_numbers += job.count
            lane.jobs.append(job)
            upstream.forward(job, index)
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
        queued, limit, upstream = self._queued, self.config.max_in_flight, self.upstream
        while queued and upstream.in_flight < limit:
            lane = queued.popleft()
            lane.queued = False
            self._pump(lane)

    def _on_reply(self, job: Job, body: bytes) -> None:
        """A backend's answer that ends an attempt of ``job``: to its clients, or retried."""
        members = job.members
        if len(members) == 1:  # the common case: the reply passes through unchanged
            highest = highest_issued(body)
            if highest is not None:
                self.caps.relayed(job.name, highest)
                self._reply(members[0].envelope, body)
                self._settled(job)
                return
        elif body.startswith(OK_START):
            split = split_values(body, [member.count for member in members])
            if split is not None:
                parts, highest = split
                self.caps.relayed(job.name, highest)
                for member, part in zip(members, parts, strict=True):
                    self._reply(member.envelope, part)
                self._settled(job)
                return
        body, retry = judge_error(body)
        if retry:
            self.upstream.retry(job, body)
        else:
            self._answer(job, body)

    # ---- the loop ---------------------------------------------------------------

    def _poll_timeout_ms(self, retry_ms: int) -> int:
        if self.outbox:
            return retry_ms
        wait_s = min(self.upstream.check_at - self._clock(), IDLE_POLL_S)
        return max(0, int(wait_s * 1000) + 1)

    def serve(self) -> None:
        """Relay until request_stop(); then let what is in flight finish (bounded) and stop."""
        poller, frontend, outbox, upstream = self._poller, self.frontend, self.outbox, self.upstream
        poller.modify(frontend, 0)  # before reading clients, the backends get a chance to answer
        upstream.warm_up(self._clock, lambda: self._stopping)
        poller.modify(frontend, zmq.POLLIN)
        by_socket, stats, retry_ms = upstream.by_socket, self.stats, poll_ms(RETRY_S)
        reading = True
        stop_at: float | None = None
        while True:
            events = poller.poll(self._poll_timeout_ms(retry_ms))
            self._now = upstream.now = now = self._clock()
            if outbox:
                stats.undelivered += outbox.flush().dropped
            for sock, _ in events:
                if sock is frontend:
                    drain(frontend, self._on_request, BURST)
                else:
                    upstream.drain(by_socket[sock])
            upstream.timers(now)
            if self._queued:
                self._dequeue()
            if self._stopping:
                if stop_at is None:
                    stop_at = now + self._timeout_s
                    log.info("stopping: %d request(s) in flight, %d waiting",
                             upstream.in_flight, self._waiting.total)
                if not (upstream.in_flight or self._waiting.total) or now >= stop_at:
                    break
            want = not self._stopping and not outbox.full
            if want != reading:
                reading = want
                poller.modify(frontend, zmq.POLLIN if reading else 0)
        self._finish()

    def _finish(self) -> None:
        jobs = self.upstream.take_all()
        lanes = [*(job.lane for job in jobs), *self._queued, *self._lanes.values()]
        for member in [m for job in jobs for m in job.members]:
            self._reply(member.envelope, _STOPPING)
        for lane in {id(lane): lane for lane in lanes}.values():
            for member in lane.waiting:
                self._reply(member.envelope, _STOPPING)
        stats, outbox = self.stats, self.outbox

        def flush() -> None:
            stats.undelivered += outbox.flush().dropped

        flush_at_stop(lambda: bool(outbox), flush, clock=self._clock)
        stats.undelivered += outbox.size  # still held: they never reach their clients
        text, totals = stats.stop_summary()
        log.info("stopped: %s", text, extra={"totals": totals})
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
