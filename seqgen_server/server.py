"""The server's I/O loop: the public and control ROUTER sockets and the store writer.

One thread serves both sockets; the store writer thread raises durable marks
in batches. A reply whose numbers are not yet durable is parked until the
writer reports; everything else is answered at once, so the common case never
waits for the disk.
"""

from __future__ import annotations

import logging
import queue
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Final, NamedTuple

import msgspec
import zmq

from seqgen_common import __version__
from seqgen_common.control import (
    ControlError,
    decode_control_request,
    encode_control,
)
from seqgen_common.curve import Gatekeeper
from seqgen_common.errors import ErrorCode, SeqgenError, StartupError
from seqgen_common.frames import bind_public, has_message, receive, send_reply, take_body
from seqgen_common.protocol import decode_request, encode_error, encode_values
from seqgen_server.allocator import Allocator
from seqgen_server.config import ServerConfig
from seqgen_server.control import ControlHandler, Deferred
from seqgen_server.ledger import Ledger
from seqgen_server.stats import Stats
from seqgen_server.store import Store
from seqgen_server.writer import StoreWriter

__all__ = ["Server", "run"]

log = logging.getLogger(__name__)

MAX_PARKED: Final = 10_000
"""Stop reading the public socket while this many replies wait for the disk."""
BURST: Final = 256
"""Messages taken from one socket before looking at the others again."""
POLL_MS: Final = 100
"""Idle poll timeout: how soon a stop request is noticed."""
CLOSE_LINGER_MS: Final = 1000

_NOT_ONE_FRAME: Final = encode_error(ErrorCode.BAD_REQUEST, "a request is exactly one frame")
_UNEXPECTED: Final = encode_error(ErrorCode.INTERNAL, "unexpected error; nothing was issued")
_STORE_FAILED: Final = encode_error(
    ErrorCode.INTERNAL, "the store cannot persist; nothing was issued"
)
_CONTROL_STORE_FAILED: Final = encode_control(
    ControlError(code="INTERNAL", message="the store could not persist the floor")
)


class _Parked(NamedTuple):
    name: str
    value: int
    socket: zmq.Socket[bytes]
    envelope: list[bytes]
    reply: bytes | None
    """The public reply; None for a floor (its reply is built when released)."""
    issued: int
    """How many numbers the reply carries."""


class Server:
    def __init__(self, config: ServerConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._stopping = False
        self.store = Store.open(config.data, config.instance, config.instances)
        try:
            marks = self.store.load()
            self.store.write_marks([], clean=False)
        except SeqgenError as exc:
            self.store.close()
            raise StartupError(str(exc)) from exc
        skipped = 0 if self.store.clean_start else len(marks) * config.reserve
        self.stats = Stats(skipped_at_start=skipped)
        self.allocator = Allocator(config.instance, config.instances, config.drift)
        self.ledger = Ledger(self.allocator, config.reserve, marks, config.max_sequences, clock)
        self.store_ok = True
        self.control = ControlHandler(
            instance=config.instance,
            instances=config.instances,
            drift=config.drift,
            reserve=config.reserve,
            data_dir=config.data,
            ledger=self.ledger,
            stats=self.stats,
            page_names=self.store.page,
            clock=clock,
            clean_start=self.store.clean_start,
            store_ok=lambda: self.store_ok,
        )
        self._parked: list[_Parked] = []
        self._ctx = zmq.Context()
        self._gatekeeper: Gatekeeper | None = None
        try:
            if config.curve is not None:  # the ZAP handler must be there before clients come
                self._gatekeeper = Gatekeeper(self._ctx, config.curve)
            self.public = bind_public(self._ctx, config.bind, config.curve)
            self.control_socket = bind_public(self._ctx, config.control)
        except StartupError:
            if self._gatekeeper is not None:
                self._gatekeeper.stop()
            self._ctx.destroy(linger=0)
            self.store.close()
            raise
        self.writer = StoreWriter(self.store)
        if not self.store.clean_start:
            log.warning(
                "the previous run did not stop cleanly; up to %d own numbers per name were skipped",
                config.reserve,
            )

    def request_stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler: it only sets a flag)."""
        self._stopping = True

    # ---- public requests --------------------------------------------------------

    def _on_public(self, envelope: list[bytes]) -> None:
        body = take_body(envelope)  # what is left in ``envelope`` is the envelope
        if body is None:
            self.stats.requests[ErrorCode.BAD_REQUEST] += 1
            send_reply(self.public, envelope, _NOT_ONE_FRAME)
            return
        stats = self.stats
        try:
            request = decode_request(body)
            allocation = self.ledger.issue(request.name, request.last_value, request.count)
        except SeqgenError as exc:
            stats.requests[exc.code] += 1
            send_reply(self.public, envelope, encode_error(exc.code, exc.message))
            return
        except Exception:
            log.exception("unexpected error serving a request")
            stats.requests[ErrorCode.INTERNAL] += 1
            send_reply(self.public, envelope, _UNEXPECTED)
            return
        if allocation.skipped:
            stats.catchups += 1
            stats.catchup_skipped += allocation.skipped
        reply = encode_values(allocation.first, self.allocator.instances, request.count)
        if allocation.last <= self.ledger.mark.get(request.name, 0):
            stats.requests["OK"] += 1
            stats.numbers_issued += request.count
            send_reply(self.public, envelope, reply)
        else:
            stats.disk_waits += 1
            self._parked.append(
                _Parked(request.name, allocation.last, self.public, envelope, reply, request.count)
            )

    # ---- control requests -------------------------------------------------------

    def _on_control(self, envelope: list[bytes]) -> None:
        body = take_body(envelope)
        if body is None:
            reply = encode_control(ControlError(code="BAD_REQUEST", message="one frame expected"))
        else:
            try:
                request = decode_control_request(body)
            except (msgspec.DecodeError, ValueError, RecursionError) as exc:
                reply = encode_control(ControlError(code="BAD_REQUEST", message=str(exc)[:500]))
            else:
                try:
                    answer = self.control.handle(request)
                except Exception:
                    log.exception("unexpected error serving a control request")
                    answer = ControlError(code="INTERNAL", message="unexpected error; see the server log")
                if isinstance(answer, Deferred):
                    if not self.ledger.is_durable(answer.name, answer.value):
                        self._parked.append(
                            _Parked(answer.name, answer.value, self.control_socket, envelope, None, 0)
                        )
                        return
                    answer = self.control.info(answer.name)
                reply = encode_control(answer)
        send_reply(self.control_socket, envelope, reply)

    # ---- the store writer -------------------------------------------------------

    def _submit(self) -> None:
        batch = self.ledger.take_batch()
        if batch is not None:
            self.writer.submit(batch)

    def _on_written(self) -> None:
        self.writer.drain_wakeups()
        while True:
            try:
                result = self.writer.results.get_nowait()
            except queue.Empty:
                break
            self._record(result.ok, result.names, result.seconds)
        self._submit()

    def _record(self, ok: bool, names: int, seconds: float) -> None:
        self.ledger.batch_done(ok)
        self.stats.store_write(ok, names, seconds)
        if ok != self.store_ok:
            log.warning("store %s", "works again" if ok else "cannot persist: answering INTERNAL")
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
                reply = encode_control(self.control.info(parked.name)) if durable else _CONTROL_STORE_FAILED
            elif durable:
                self.stats.requests["OK"] += 1
                self.stats.numbers_issued += parked.issued
                reply = parked.reply
            else:
                self.stats.requests[ErrorCode.INTERNAL] += 1
                reply = _STORE_FAILED
            send_reply(parked.socket, parked.envelope, reply)
        self._parked = waiting

    # ---- the loop ---------------------------------------------------------------

    def serve(self) -> None:
        """Serve until request_stop(); then answer what is parked and stop cleanly."""
        poller = zmq.Poller()
        poller.register(self.public, zmq.POLLIN)
        poller.register(self.control_socket, zmq.POLLIN)
        poller.register(self.writer.wake_fd, zmq.POLLIN)
        reading_public = True
        public, control, wake_fd = self.public, self.control_socket, self.writer.wake_fd
        while not self._stopping:
            events = dict(poller.poll(POLL_MS))
            if public in events:
                self._drain(public, self._on_public)
            if control in events:
                self._drain(control, self._on_control)
            if wake_fd in events:
                self._on_written()
            self._submit()
            if reading_public != (len(self._parked) < MAX_PARKED):
                reading_public = not reading_public
                poller.modify(public, zmq.POLLIN if reading_public else 0)
        self._finish()

    def _drain(self, sock: zmq.Socket[bytes], handle: Callable[[list[bytes]], None]) -> None:
        for _ in range(BURST):
            if not has_message(sock):  # cheaper than letting receive() raise zmq.Again
                return
            frames = receive(sock)
            try:
                handle(frames)
            except zmq.ZMQError:
                # A reply that cannot be sent (peer gone, queue full) is dropped.
                log.debug("could not send a reply", exc_info=True)

    def _finish(self) -> None:
        """Answer parked replies, write the exact position, close everything."""
        log.info("stopping: %d replies wait for the store", len(self._parked))
        while self._parked:
            self._submit()
            if not self.ledger.in_flight:
                self._release(False)
                break
            result = self.writer.results.get()
            self._record(result.ok, result.names, result.seconds)
        self.writer.stop()  # a refill still in flight is finished; the exact marks follow
        try:
            exact = self.ledger.exact_marks()
            self.store.write_marks(exact, clean=True)
            log.info("stopped cleanly; exact position of %d sequence(s) saved", len(exact))
        except SeqgenError as exc:
            log.error("could not save the exact position (%s); the next start skips "
                      "at most the reservation", exc)
        self.public.close(linger=CLOSE_LINGER_MS)
        self.control_socket.close(linger=CLOSE_LINGER_MS)
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
        self._ctx.term()
        self.store.close()


def run(config: ServerConfig) -> int:
    """Start a server with ``config`` and serve until SIGTERM or SIGINT; the exit status."""
    try:
        server = Server(config)
    except StartupError as exc:
        log.error("cannot start: %s", exc.message)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "seqgen-server %s: instance %d of %d, drift %d, reserve %d, bind %s, control %s, "
        "data %s, %d sequence(s)",
        __version__, config.instance, config.instances, config.drift, config.reserve,
        config.bind, config.control, config.data, len(server.ledger),
    )
    if config.curve is not None and config.curve.allowed is None:
        log.warning("public socket: %s (no --curve-clients)", config.curve.describe())
    elif config.curve is not None:
        log.info("public socket: %s", config.curve.describe())
    server.serve()
    return 0
