"""The admin's asyncio client of a server's control socket (DESIGN section 7).

One DEALER socket, many concurrent calls: each request carries a request id
as an envelope frame (``[id, "", body]``), which the server's ROUTER echoes
back, so a reader task can hand every reply to the call that waits for it
and drop replies that come after their call gave up. Every call has its own
deadline; a server that is down, stopped or too slow makes the call raise
``Unavailable`` within that deadline. ``IMMEDIATE`` keeps requests from
queueing while there is no connection, so a dead server is reported at
once; ZeroMQ reconnects by itself, so the admin recovers as soon as the
server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from types import TracebackType
from typing import Final, TypeVar

import msgspec
import zmq
import zmq.asyncio

from seqgen_common.control import (
    ControlError,
    ControlReply,
    ControlRequest,
    GetSequence,
    GetStatus,
    ListSequences,
    Ping,
    Pong,
    RaiseFloor,
    SequenceInfo,
    SequencePage,
    Status,
    decode_control_reply,
    encode_control,
)
from seqgen_common.errors import InternalError, Unavailable, error_for

__all__ = ["ControlClient"]

log = logging.getLogger(__name__)

SEND_HWM: Final = 100
"""Requests queued for a connected but stalled server before sends wait (and time out)."""
RECONNECT_IVL_MS: Final = 100
RECONNECT_IVL_MAX_MS: Final = 1000

_Reply = TypeVar("_Reply", Pong, Status, SequenceInfo, SequencePage)


class ControlClient:
    """Calls a server's control socket; use ``async with`` (or open()/close())."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 1.0,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._own_context = context is None
        self._context = context or zmq.asyncio.Context()
        self._socket: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)

    # ---- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> ControlClient:
        self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Connect (ZeroMQ connects in the background) and start reading replies."""
        if self._socket is not None:
            return
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        sock.setsockopt(zmq.IPV6, 1)
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise InternalError(f"cannot connect to {self.endpoint}: {exc}") from exc
        self._socket = sock
        self._reader = asyncio.get_running_loop().create_task(
            self._read_replies(sock), name="seqgen-admin control replies"
        )

    async def close(self) -> None:
        """Stop reading, fail the calls still waiting, close the socket."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(Unavailable("the admin is shutting down"))
        self._waiting.clear()
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close(linger=0)
        if self._own_context:
            self._context.term()

    # ---- calls --------------------------------------------------------------------

    async def call(self, request: ControlRequest) -> ControlReply:
        """One request, its reply; Unavailable when none came within ``timeout_s``."""
        sock = self._socket
        if sock is None:
            raise Unavailable("the control client is not open")
        request_id = next(self._ids).to_bytes(8, "big")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            async with asyncio.timeout(self.timeout_s):
                await sock.send_multipart([request_id, b"", encode_control(request)])
                body = await future
        except TimeoutError as exc:
            raise Unavailable(
                f"the server did not answer on {self.endpoint} within {self.timeout_s:g}s"
            ) from exc
        except zmq.ZMQError as exc:
            raise Unavailable(f"cannot reach the server on {self.endpoint}: {exc}") from exc
        finally:
            self._waiting.pop(request_id, None)
        try:
            return decode_control_reply(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise InternalError(f"the server sent a malformed control reply: {exc}") from exc

    async def _expect(self, request: ControlRequest, kind: type[_Reply]) -> _Reply:
        reply = await self.call(request)
        if isinstance(reply, ControlError):
            raise error_for(reply.code, reply.message)
        if not isinstance(reply, kind):
            raise InternalError(
                f"the server answered {type(reply).__name__} to {type(request).__name__}"
            )
        return reply

    async def ping(self) -> Pong:
        return await self._expect(Ping(), Pong)

    async def status(self) -> Status:
        return await self._expect(GetStatus(), Status)

    async def list_sequences(self, prefix: str, cursor: str | None, limit: int) -> SequencePage:
        return await self._expect(
            ListSequences(prefix=prefix, cursor=cursor, limit=limit), SequencePage
        )

    async def get_sequence(self, name: str) -> SequenceInfo:
        """Raises SeqgenError with code NOT_FOUND for a name the server never saw."""
        return await self._expect(GetSequence(name=name), SequenceInfo)

    async def raise_floor(self, name: str, value: int) -> SequenceInfo:
        """Raises SeqgenError with code CONFLICT when numbers above ``value`` were issued."""
        return await self._expect(RaiseFloor(name=name, value=value), SequenceInfo)

    # ---- replies ------------------------------------------------------------------

    async def _read_replies(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            try:
                frames = await sock.recv_multipart()
            except zmq.ZMQError as exc:
                if exc.errno in (zmq.ETERM, zmq.ENOTSOCK):
                    return
                log.warning("control socket: %s", exc)
                continue
            try:
                self._deliver(frames)
            except Exception:  # the reader must live on, or every later call would time out
                log.exception("cannot deliver a control reply")

    def _deliver(self, frames: list[bytes]) -> None:
        if len(frames) != 3 or frames[1]:
            log.debug("dropping a control reply with %d frames", len(frames))
            return
        future = self._waiting.pop(frames[0], None)
        if future is None or future.done():
            log.debug("dropping a late control reply")
            return
        future.set_result(frames[2])

