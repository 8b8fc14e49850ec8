"""An asyncio DEALER channel: many concurrent requests on one socket, replies matched by id.

Used by ``AsyncClient`` (one channel per endpoint) and by the admin's control
client (one channel to its server). Each request goes out as
``[request_id, b"", body]`` (seqgen_common.reqids); replies are handed to the
request waiting for their id. A reply whose id nobody waits for any more (it
came after its request timed out) is dropped: it can never reach another
request.

The socket is a plain pyzmq socket used without blocking: the event loop
watches its ``FD`` and a callback reads every reply that is there and
resolves the waiting futures directly. That is the least an event loop can do
per reply (no reader task to resume, no future per receive as
``zmq.asyncio`` makes). The ``FD`` is edge-triggered, so the callback reads
until the socket has nothing more, and a send (which can take in the
socket's pending signals) is followed by a look at ``EVENTS``.

By default sends never wait: a full send queue (or, on an ``IMMEDIATE``
socket, no connection) raises ``Unsent`` at once, so the caller can try
elsewhere. With ``wait_to_send`` the send waits for room (a connection)
within the request's timeout, for a caller with nowhere else to go.
``request`` is ``send`` (synchronous: the request is queued when it returns)
then ``receive``; the two halves let a caller send a request on behalf of
another coroutine, which receives its reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final, cast

import zmq

from seqgen_common.handshake import HandshakeWatch
from seqgen_common.reqids import RequestIds, split_reply

__all__ = ["Channel", "Pending", "Unsent"]

log = logging.getLogger(__name__)

_Waiter = asyncio.Future[bytes | None]

READ_BUDGET: Final = 1000
"""Replies read per turn of the event loop before the others get a turn."""


class Pending:
    """A request sent on a channel whose reply is still to be received."""

    __slots__ = ("reply", "request_id", "timer")

    def __init__(self, request_id: bytes, reply: _Waiter, timer: asyncio.TimerHandle) -> None:
        self.request_id = request_id
        self.reply = reply
        """Resolved with the reply, or with None when its time is up."""
        self.timer = timer


class Unsent(Exception):
    """The request could not be queued (the send queue is full, or there is no connection)."""


def _expire(waiter: asyncio.Future[Any]) -> None:
    """No reply (any more) for this waiter."""
    if not waiter.done():
        # RuntimeError: its event loop is closed, so nobody waits any more.
        with contextlib.suppress(RuntimeError):
            waiter.set_result(None)


class Channel:
    """One DEALER socket watched by the running event loop, and the requests waiting on it."""

    def __init__(self, sock: zmq.Socket[bytes], ids: RequestIds | None = None, *,
                 watch: HandshakeWatch | None = None) -> None:
        self.socket = sock
        self.watch = watch
        """The socket's handshakes (closed with the channel), when the owner asked for it."""
        self._ids = ids or RequestIds()
        self._waiting: dict[bytes, _Waiter] = {}
        self._room: list[asyncio.Future[None]] = []
        """Senders waiting for room in the send queue (``wait_to_send``)."""
        self._loop = asyncio.get_running_loop()
        self._fd = cast(int, sock.getsockopt(zmq.FD))
        self._alive = True
        self._looking = False
        """A look at the socket is already scheduled."""
        try:
            self._loop.add_reader(self._fd, self._read)
        except NotImplementedError as exc:
            sock.close(linger=0)
            raise RuntimeError(
                "this event loop cannot watch a socket (no add_reader): on Windows, use "
                "asyncio.WindowsSelectorEventLoopPolicy()") from exc

    @property
    def alive(self) -> bool:
        """False once the socket was closed or could not be read."""
        return self._alive

    async def request(self, body: bytes, timeout_s: float, *, wait_to_send: bool = False,
                      ) -> bytes | None:
        """Send ``body``; its reply, or None when none came within ``timeout_s``.

        Raises Unsent when the request cannot be queued (at once, or with
        ``wait_to_send`` within ``timeout_s``), zmq.ZMQError when the socket is
        unusable.
        """
        if not wait_to_send:
            return await self.receive(self.send(body, timeout_s))
        pending = self._pending(timeout_s)
        try:
            while not self._try_send(pending.request_id, body):
                if pending.reply.done():  # its time is up
                    raise Unsent
                if self._events() & zmq.POLLOUT:  # room came as the send failed: try again
                    await asyncio.sleep(0)
                    continue
                room: asyncio.Future[None] = self._loop.create_future()
                self._room.append(room)
                try:
                    await asyncio.wait((room, pending.reply), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if room in self._room:
                        self._room.remove(room)
        except BaseException:
            self.drop(pending)
            raise
        return await self.receive(pending)

    def send(self, body: bytes, timeout_s: float) -> Pending:
        """Queue ``body`` now, without waiting; ``receive`` its reply (or ``drop`` it).

        Raises Unsent when the send queue is full (or there is no connection),
        zmq.ZMQError when the socket is unusable.
        """
        pending = self._pending(timeout_s)
        try:
            sent = self._try_send(pending.request_id, body)
        except BaseException:
            self.drop(pending)
            raise
        if not sent:
            self.drop(pending)
            raise Unsent
        return pending

    async def receive(self, pending: Pending) -> bytes | None:
        """The reply of a request sent with ``send``, or None when none came in time."""
        try:
            return await pending.reply
        finally:
            self.drop(pending)

    def drop(self, pending: Pending) -> None:
        """Nobody waits for this request's reply any more (idempotent)."""
        pending.timer.cancel()
        self._waiting.pop(pending.request_id, None)

    def close(self) -> None:
        """Stop watching the socket, close it, and fail the waiting requests. Idempotent."""
        self._alive = False
        self._loop.remove_reader(self._fd)  # does nothing once the loop is closed
        if self.watch is not None:
            self.watch.close()
        self.socket.close(linger=0)
        self._fail_waiting()

    # ---- inside ---------------------------------------------------------------------------

    def _pending(self, timeout_s: float) -> Pending:
        if not self._alive:
            raise zmq.ZMQError(zmq.ENOTSOCK, "the channel is closed")
        loop = self._loop
        request_id = self._ids()
        reply: _Waiter = loop.create_future()
        self._waiting[request_id] = reply
        return Pending(request_id, reply, loop.call_later(timeout_s, _expire, reply))

    def _try_send(self, request_id: bytes, body: bytes) -> bool:
        """Queue one request; False when there is no room (or no connection)."""
        try:
            self.socket.send_multipart([request_id, b"", body], zmq.DONTWAIT)
        except zmq.Again:
            sent = False
        else:
            sent = True
        self._look_soon()
        return sent

    def _look_soon(self) -> None:
        """After a send: look at the socket's events (the send may have taken in the signal
        the event loop waits for); waiting senders look again on the loop's next turn."""
        if self._alive:
            self._events()
            if self._room:
                self._loop.call_soon(self._read)

    def _events(self) -> int:
        """The socket's events. Reading them takes in the socket's signals, so the FD may not
        fire for replies already there: when there are some, a read is scheduled here."""
        events = cast(int, self.socket.getsockopt(zmq.EVENTS))
        if events & zmq.POLLIN and not self._looking:
            self._looking = True
            self._loop.call_soon(self._read)
        return events

    def _read(self) -> None:
        """The socket's FD fired (or a send saw replies): hand out every reply that is there."""
        self._looking = False
        if not self._alive:
            return
        sock, waiting = self.socket, self._waiting
        try:
            for _ in range(READ_BUDGET):
                try:
                    frames = sock.recv_multipart(zmq.DONTWAIT)
                except zmq.Again:
                    break
                reply = split_reply(frames)
                if reply is None:
                    log.debug("dropping a reply of %d frames", len(frames))
                    continue
                waiter = waiting.get(reply[0])
                if waiter is not None and not waiter.done():
                    waiter.set_result(reply[1])
            else:  # more may be there: the FD will not fire for them, so look again
                self._looking = True
                self._loop.call_soon(self._read)
            if self._room and self._events() & zmq.POLLOUT:
                for room in self._room:
                    if not room.done():
                        room.set_result(None)
        except zmq.ZMQError as exc:
            if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                log.warning("channel stopped: %s", exc)
            self.close()

    def _fail_waiting(self) -> None:
        for waiter in self._waiting.values():
            _expire(waiter)
        self._waiting.clear()
        for room in self._room:
            _expire(room)
