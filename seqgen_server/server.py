"""The server's I/O loop: the public and control ROUTER sockets and the store writer.

One thread serves both sockets; the store writer thread raises durable marks
in batches. A reply whose numbers are not yet durable is parked until the
writer reports; everything else is answered at once, so the common case never
waits for the disk.

Overload (docs/protocol.md, "Overload"): every request gets exactly one reply.
A reply that a client's queue cannot take yet is held in the socket's outbox
(seqgen_common.outbox), and while the outbox is full no request is read.
While the disk is behind (a store write has taken half a second, or
``--max-disk-waits`` replies wait for it), a request that would wait too is
answered ``UNAVAILABLE`` ("overloaded") with nothing issued, so clients move to
another server at once. Numbers count as issued when their reply is handed
to the socket.

Fence (docs/operations.md): while ``fenced`` the public socket answers every
request ``["UNAVAILABLE", "fenced"]`` and issues nothing; the control socket
works. Slow control work (the fence made durable, snapshots) runs in the tasks
thread (seqgen_server.tasks), whose replies the loop sends when they are ready.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Final, NamedTuple

import msgspec
import zmq

from seqgen_common import __version__
from seqgen_common.control import ControlError, ControlReply, decode_control_request, encode_control
from seqgen_common.curve import Gatekeeper, start_gatekeeper
from seqgen_common.daemon import serve
from seqgen_common.errors import ControlCode, ErrorCode, SeqgenError, StartupError
from seqgen_common.frames import drain, take_body
from seqgen_common.logs import describe_settings, settings
from seqgen_common.loops import BURST, IDLE_POLL_S, NOT_ONE_FRAME, RETRY_S, flush_at_stop, poll_ms
from seqgen_common.outbox import Flushed, Outbox
from seqgen_common.protocol import decode_request, encode_error, encode_values
from seqgen_common.sockets import CONTROL, PUBLIC, open_socket
from seqgen_server.allocator import Allocator
from seqgen_server.backup import Backups
from seqgen_server.changes import ChangeFeed
from seqgen_server.config import ServerConfig
from seqgen_server.control import ControlHandler, Deferred, Fencing
from seqgen_server.ledger import Ledger
from seqgen_server.stats import record_store_write, started_with
from seqgen_server.store import Store
from seqgen_server.tasks import Job, Tasks
from seqgen_server.writer import StoreWriter

__all__ = ["Server", "run"]

log = logging.getLogger(__name__)

DISK_LAG_S: Final = 0.5
"""A store write in progress this long means the disk is behind: shed what would wait."""
RESIZE_HOLD_S: Final = 0.5
"""During a resize, how long a public request may wait for the fence to lift (under the
clients' 1 s attempt timeout) before it is answered UNAVAILABLE "fenced"."""
MAX_RESIZE_HELD: Final = 10_000
"""At most this many public requests wait during a resize; more are answered "fenced"."""

_UNEXPECTED: Final = encode_error(ErrorCode.INTERNAL, "unexpected error; nothing was issued")
_STORE_FAILED: Final = encode_error(
    ErrorCode.INTERNAL, "the store cannot persist; nothing was issued"
)
_CONTROL_STORE_FAILED: Final = encode_control(
    ControlError(code=ControlCode.INTERNAL, message="the store could not persist the floor")
)
_FENCED: Final = encode_error(ErrorCode.UNAVAILABLE, "fenced")


class _Parked(NamedTuple):
    name: str
    value: int
    outbox: Outbox
    envelope: list[bytes]
    reply: bytes | None
    """The public reply; None for a floor (its reply is built when released)."""
    issued: int
    """How many numbers the reply carries."""
    answer: ControlReply | None = None
    """The control reply of floors raised in bulk (None: the sequence's info)."""


class Server:
    def __init__(self, config: ServerConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._stopping = False
        self._ctx = zmq.Context()
        self._gatekeeper: Gatekeeper | None = None
        self._sockets: list[zmq.Socket[bytes]] = []
        try:  # bound first: a server that cannot bind stops before it creates a store
            if config.curve is not None:  # the ZAP handler must be there before clients come
                self._gatekeeper = start_gatekeeper(self._ctx, config.curve, "public socket")
            self._sockets.append(open_socket(self._ctx, PUBLIC, config.bind, curve=config.curve))
            self._sockets.append(open_socket(self._ctx, CONTROL, config.control))
            self.store = Store.open(config.data, config.instance, config.instances)
        except StartupError:
            self._close_sockets()
            raise
        try:
            marks = self.store.load()
            self.store.write_marks([], clean=False, started=True)
            if config.fenced and not self.store.fenced:
                self.store.set_fenced(True)
        except SeqgenError as exc:
            self._close_sockets()
            self.store.close()
            raise StartupError(str(exc)) from exc
        self.instance, self.instances = self.store.instance, self.store.instances
        """From the store: the flags, when given, were checked against it."""
        self.fenced = self.store.fenced
        """While True the public socket answers every request UNAVAILABLE "fenced"."""
        self.epoch = secrets.token_hex(8)
        """Random per start: a witness that sees another epoch resyncs."""
        skipped = 0 if self.store.clean_start else len(marks) * config.reserve
        self.counters = started_with(skipped)
        self.allocator = Allocator(self.instance, self.instances, config.drift)
        self.ledger = Ledger(self.allocator, config.reserve, marks, config.max_sequences, clock)
        self.store_ok = True
        self.control = ControlHandler(
            instance=self.instance,
            instances=self.instances,
            drift=config.drift,
            reserve=config.reserve,
            data_dir=config.data,
            ledger=self.ledger,
            counters=self.counters,
            page_names=self.store.page,
            clock=clock,
            clean_start=self.store.clean_start,
            restored=self.store.restored,
            store_ok=lambda: self.store_ok,
            fencing=Fencing(get=lambda: self.fenced, set=self._set_fenced,
                            persist=self.store.set_fenced, beginning=self._resize_beginning),
            feed=ChangeFeed(self.epoch, clock),
            backups=Backups(self.store),
            store=self.store,
        )
        self._parked: list[_Parked] = []
        self._held: list[tuple[float, list[bytes]]] = []
        """Public requests that wait for a resize to end (when they came, the envelope)."""
        self._beginning_to: int | None = None
        """The count of a resize whose begin step is being recorded (the store's
        ``resize_to`` is not set yet), else None."""
        self._max_disk_waits = config.max_disk_waits
        self._clock = clock
        self._may_wait_now = self._may_wait  # bound once: the hot path passes it on
        self._writing_since: float | None = None
        """When the store write in progress was handed to the writer (None: none is)."""
        self.public, self.control_socket = self._sockets
        self.outbox = Outbox(self.public)
        self.control_outbox = Outbox(self.control_socket)
        self.writer = StoreWriter(self.store)
        self.tasks = Tasks()
        if self.store.restored:
            log.warning("started on a restored backup (GET /backup): fenced until POST /recover "
                        "on the admin raises its floors above what the peers witnessed; up to %d "
                        "own numbers per name skipped", config.reserve)
        elif not self.store.clean_start:
            log.warning(
                "the previous run did not stop cleanly; up to %d own numbers per name were skipped",
                config.reserve,
            )

    def request_stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler: it only sets a flag)."""
        self._stopping = True

    def _set_fenced(self, fenced: bool) -> None:
        if fenced != self.fenced:
            log.warning("%s", "fenced: the public socket answers UNAVAILABLE, nothing is issued"
                        if fenced else "fence released: serving numbers again")
        self.fenced = fenced
        if not fenced:
            self._beginning_to = None  # a begin step that never ended holds nothing after it

    # ---- replies ----------------------------------------------------------------

    def _reply(self, outbox: Outbox, envelope: list[bytes], body: bytes, numbers: int) -> None:
        """Hand a reply to its client (or hold it); ``numbers`` count once it is handed over."""
        sent = outbox.send(envelope, body, numbers)
        if sent:
            if numbers:
                self._issued(numbers)
        elif sent is None:
            self.counters.replies_undelivered += 1

    def _issued(self, numbers: int) -> None:
        counters = self.counters
        counters.requests["OK"] += 1
        counters.numbers_issued += numbers

    def _flush(self) -> None:
        for outbox in (self.outbox, self.control_outbox):
            if outbox:
                self._count_flushed(outbox.flush())

    def _count_flushed(self, flushed: Flushed) -> None:
        for numbers in flushed.delivered:
            if numbers:
                self._issued(numbers)
        self.counters.replies_undelivered += flushed.dropped

    # ---- public requests --------------------------------------------------------

    def _on_public(self, envelope: list[bytes]) -> None:
        if self.fenced:
            if self._holding() and len(self._held) < MAX_RESIZE_HELD:
                self._held.append((self._clock(), envelope))
            else:
                self._refuse_fenced(envelope)
            return
        body = take_body(envelope)  # what is left in ``envelope`` is the envelope
        counters = self.counters
        if body is None:
            counters.requests[ErrorCode.BAD_REQUEST] += 1
            self._reply(self.outbox, envelope, NOT_ONE_FRAME, 0)
            return
        try:
            request = decode_request(body)
            allocation = self.ledger.issue(request.name, request.last_value, request.count,
                                           may_wait=self._may_wait_now)
        except SeqgenError as exc:
            counters.requests[exc.code] += 1
            self._reply(self.outbox, envelope, encode_error(exc.code, exc.message), 0)
            return
        except Exception:
            log.exception("unexpected error serving a request")
            counters.requests[ErrorCode.INTERNAL] += 1
            self._reply(self.outbox, envelope, _UNEXPECTED, 0)
            return
        if allocation.skipped:
            counters.catchups += 1
            counters.catchup_skipped += allocation.skipped
        reply = encode_values(allocation.first, self.allocator.instances, request.count)
        if allocation.last <= self.ledger.mark.get(request.name, 0):
            self._reply(self.outbox, envelope, reply, request.count)
        else:
            counters.disk_waits += 1
            self._parked.append(
                _Parked(request.name, allocation.last, self.outbox, envelope, reply, request.count)
            )

    def _holding(self) -> bool:
        """Whether a fenced request may wait: during a resize this server survives (a
        retiring one sends its clients on at once), from the moment its begin step fences
        it, before the store has recorded the resize."""
        store = self.store
        target = store.resize_to if store.resize_to is not None else self._beginning_to
        return target is not None and not store.retired and self.allocator.instance <= target

    def _resize_beginning(self, instances: int | None) -> None:
        self._beginning_to = instances

    def _on_held(self) -> None:
        """Serve the held requests once the fence lifted; refuse those that waited too long."""
        held, self._held = self._held, []
        if not self.fenced:
            for _, envelope in held:
                self._on_public(envelope)
            return
        oldest = self._clock() - RESIZE_HOLD_S
        for index, (since, envelope) in enumerate(held):
            if since > oldest:
                self._held = held[index:]
                return
            self._refuse_fenced(envelope)

    def _refuse_fenced(self, envelope: list[bytes]) -> None:
        take_body(envelope)
        self.counters.requests[ErrorCode.UNAVAILABLE] += 1
        self._reply(self.outbox, envelope, _FENCED, 0)

    # ---- control requests -------------------------------------------------------

    def _on_control(self, envelope: list[bytes]) -> None:
        body = take_body(envelope)
        if body is None:
            reply = encode_control(
                ControlError(code=ControlCode.BAD_REQUEST, message="one frame expected"))
        else:
            try:
                request = decode_control_request(body)
            except (msgspec.DecodeError, ValueError, RecursionError) as exc:
                reply = encode_control(
                    ControlError(code=ControlCode.BAD_REQUEST, message=str(exc)[:500]))
            else:
                try:
                    answer = self.control.handle(request)
                except Exception:
                    log.exception("unexpected error serving a control request")
                    answer = ControlError(code=ControlCode.INTERNAL,
                                          message="unexpected error; see the server log")
                if isinstance(answer, Job):
                    refused = self.tasks.submit(envelope, answer)
                    if refused is None:
                        return
                    answer = refused
                if isinstance(answer, Deferred):
                    if not self.ledger.is_durable(answer.name, answer.value):
                        self._parked.append(_Parked(answer.name, answer.value, self.control_outbox,
                                                    envelope, None, 0, answer.answer))
                        return
                    answer = answer.answer or self.control.info(answer.name)
                reply = encode_control(answer)
        self._reply(self.control_outbox, envelope, reply, 0)

    # ---- the store writer -------------------------------------------------------

    def _submit(self) -> None:
        batch = self.ledger.take_batch()
        if batch is not None:
            self.writer.submit(batch)
            self._writing_since = self._clock()

    def _may_wait(self) -> bool:
        """Whether a reply may wait for the disk now: the disk is not behind.

        Behind: ``--max-disk-waits`` replies wait already, or the store write in
        progress has taken DISK_LAG_S or more (its clients are about to give up).
        """
        parked = self._parked
        if not parked:
            return self._max_disk_waits > 0
        writing_since = self._writing_since
        return len(parked) < self._max_disk_waits and (
            writing_since is None or self._clock() - writing_since < DISK_LAG_S)

    def _on_written(self) -> None:
        for result in self.writer.written():
            self._record(result.ok, result.names, result.seconds)
        self._submit()

    def _record(self, ok: bool, names: int, seconds: float) -> None:
        self._writing_since = None
        self.ledger.batch_done(ok)
        record_store_write(self.counters, ok, names, seconds)
        if ok != self.store_ok:
            log.warning("store %s", "works again" if ok else "cannot persist: answering INTERNAL",
                        extra={"store_ok": ok})
        self.store_ok = ok
        self._release(ok)

    def _release(self, ok: bool) -> None:
        """Send the parked replies that are durable now; fail the rest if the store failed."""
        waiting: list[_Parked] = []
        for parked in self._parked:
            durable = self.ledger.is_durable(parked.name, parked.value)
            if not durable and ok:
                waiting.append(parked)
                continue
            if parked.reply is None:
                reply = (encode_control(parked.answer or self.control.info(parked.name)) if durable
                         else _CONTROL_STORE_FAILED)
                self._reply(parked.outbox, parked.envelope, reply, 0)
            elif durable:
                self._reply(parked.outbox, parked.envelope, parked.reply, parked.issued)
            else:
                self.counters.requests[ErrorCode.INTERNAL] += 1
                self._reply(parked.outbox, parked.envelope, _STORE_FAILED, 0)
        self._parked = waiting

    def _on_tasks_done(self, replies: list[tuple[list[bytes], ControlReply]]) -> None:
        for envelope, reply in replies:
            self._reply(self.control_outbox, envelope, encode_control(reply), 0)

    # ---- the loop ---------------------------------------------------------------

    def serve(self) -> None:
        """Serve until request_stop(); then answer what is parked and stop cleanly."""
        poller = zmq.Poller()
        poller.register(self.public, zmq.POLLIN)
        poller.register(self.control_socket, zmq.POLLIN)
        poller.register(self.writer.wake_fd, zmq.POLLIN)
        poller.register(self.tasks.wake_fd, zmq.POLLIN)
        reading_public = True
        public, control, wake_fd = self.public, self.control_socket, self.writer.wake_fd
        tasks_fd = self.tasks.wake_fd
        outbox, control_outbox = self.outbox, self.control_outbox
        retry_ms, idle_ms = poll_ms(RETRY_S), poll_ms(IDLE_POLL_S)
        while not self._stopping:
            held = outbox or control_outbox or self._held
            events = dict(poller.poll(retry_ms if held else idle_ms))
            if self._held:
                self._on_held()
            if held:
                self._flush()
            if public in events:
                self._drain(public, self._on_public)
            if control in events and not control_outbox.full:
                self._drain(control, self._on_control)
            if wake_fd in events:
                self._on_written()
            if tasks_fd in events:
                self._on_tasks_done(self.tasks.done())
            self._submit()
            if reading_public == outbox.full:
                reading_public = not reading_public
                poller.modify(public, zmq.POLLIN if reading_public else 0)
        self._finish()

    def _drain(self, sock: zmq.Socket[bytes], handle: Callable[[list[bytes]], None]) -> None:
        try:
            drain(sock, handle, BURST)
        except zmq.ZMQError:
            log.exception("socket error while serving requests")

    def _finish(self) -> None:
        """Answer parked replies, write the exact position, close everything."""
        log.info("stopping: %d replies wait for the store", len(self._parked))
        held, self._held = self._held, []
        for _, envelope in held:
            self._refuse_fenced(envelope)
        while self._parked:
            self._submit()
            if not self.ledger.in_flight:
                self._release(False)
                break
            result = self.writer.wait()
            self._record(result.ok, result.names, result.seconds)
        self.writer.stop()  # a refill still in flight is finished; the exact marks follow
        self._on_tasks_done(self.tasks.stop())  # a fence being persisted is finished too
        self.control.close()
        try:
            exact = self.ledger.exact_marks()
            self.store.write_marks(exact, clean=True)
            log.info("stopped cleanly; exact position of %d sequence(s) saved", len(exact),
                     extra={"sequences": len(exact)})
        except SeqgenError as exc:
            log.error("could not save the exact position (%s); the next start skips "
                      "at most the reservation", exc)
        flush_at_stop(lambda: bool(self.outbox or self.control_outbox), self._flush)
        if self.outbox.size:
            log.warning("stopped with %d replies that their clients did not take", self.outbox.size)
        self._close_sockets()
        self.store.close()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
        self._ctx.term()


def run(config: ServerConfig) -> int:
    """Start a server with ``config`` and serve until SIGTERM or SIGINT; the exit status."""

    def describe(server: Server) -> None:
        log.info("seqgen-server %s: instance %d of %d (from %s), %d sequence(s)%s; %s",
                 __version__, server.instance, server.instances,
                 "the flags" if config.instance is not None else "the store",
                 len(server.ledger),
                 ", FENCED (the public socket answers UNAVAILABLE until the admin recovers or "
                 "unfences)" if server.fenced else "", describe_settings(config),
                 extra={"version": __version__, "sequences": len(server.ledger),
                        "instance": server.instance, "instances": server.instances,
                        "fenced": server.fenced, "config": settings(config)})

    return serve(lambda: Server(config), describe)
