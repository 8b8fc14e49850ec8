"""An asyncio DEALER channel: many concurrent requests on one socket, replies matched by id.

Used by ``AsyncClient`` (one channel per endpoint) and by the admin's control
client (one channel to its server). Each request goes out as
``[request_id, b"", body]`` (seqgen_common.reqids); one reader task hands each
reply to the request waiting for its id. A reply whose id nobody waits for any
more (it came after its request timed out) is dropped: it can never reach
another request.

By default sends never wait: a full send queue (or, on an ``IMMEDIATE``
socket, no connection) raises ``Unsent`` at once, so the caller can try
elsewhere. With ``wait_to_send`` the send waits for room (a connection)
within the request's timeout, for a caller with nowhere else to go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import zmq
import zmq.asyncio

from seqgen_common.reqids import RequestIds, split_reply

__all__ = ["Channel", "Unsent"]

log = logging.getLogger(__name__)

_Waiter = asyncio.Future[bytes | None]


class Unsent(Exception):
    """The request could not be queued (the send queue is full, or there is no connection)."""


def _expire(waiter: _Waiter) -> None:
    """No reply (any more) for this waiter."""
    if not waiter.done():
        # RuntimeError: its event loop is closed, so nobody waits any more.
        with contextlib.suppress(RuntimeError):
            waiter.set_result(None)


class Channel:
    """One DEALER socket of the running event loop and the requests waiting on it."""

    def __init__(self, sock: zmq.asyncio.Socket, ids: RequestIds | None = None) -> None:
        self.socket = sock
        self._ids = ids or RequestIds()
        self._waiting: dict[bytes, _Waiter] = {}
        self._loop = asyncio.get_running_loop()
        self._reader: asyncio.Task[None] = self._loop.create_task(self._read())

    @property
    def alive(self) -> bool:
        """False once the socket was closed or its reader ended."""
        return not self._reader.done()

    async def request(self, body: bytes, timeout_s: float, *, wait_to_send: bool = False,
                      ) -> bytes | None:
        """Send ``body``; its reply, or None when none came within ``timeout_s``.

        Raises Unsent when the request cannot be queued (at once, or with
        ``wait_to_send`` within ``timeout_s``), zmq.ZMQError when the socket is
        unusable.
        """
        loop = self._loop
        request_id = self._ids()
        waiter: _Waiter = loop.create_future()
        self._waiting[request_id] = waiter
        timer = loop.call_later(timeout_s, _expire, waiter)
        try:
            frames = [request_id, b"", body]
            if wait_to_send:
                sent = cast("asyncio.Future[object]", self.socket.send_multipart(frames))
                await asyncio.wait((sent, waiter), return_when=asyncio.FIRST_COMPLETED)
                if not sent.done():
                    sent.cancel()
                    raise Unsent
                try:
                    sent.result()
                except zmq.Again as exc:
                    raise Unsent from exc
            else:
                sent = cast("asyncio.Future[object]",
                            self.socket.send_multipart(frames, flags=zmq.DONTWAIT))
                try:  # pyzmq resolves a DONTWAIT send at once
                    sent.result()
                except zmq.Again as exc:
                    raise Unsent from exc
            return await waiter
        finally:
            timer.cancel()
            self._waiting.pop(request_id, None)

    async def _read(self) -> None:
        sock, waiting = self.socket, self._waiting
        while True:
            try:
                frames = await sock.recv_multipart()
            except zmq.ZMQError as exc:
                if exc.errno not in (zmq.ETERM, zmq.ENOTSOCK):
                    log.warning("channel reader stopped: %s", exc)
                return  # the socket was closed
            reply = split_reply(frames)
            if reply is None:
                log.debug("dropping a reply of %d frames", len(frames))
                continue
            waiter = waiting.get(reply[0])
            if waiter is not None and not waiter.done():
                waiter.set_result(reply[1])

    def close(self) -> asyncio.Task[None]:
        """Close the socket and fail the waiting requests; the reader task (cancelled)."""
        for waiter in self._waiting.values():
            _expire(waiter)
        self._waiting.clear()
        with contextlib.suppress(RuntimeError):  # its event loop is closed already
            self._reader.cancel()
        self.socket.close(linger=0)
        return self._reader
