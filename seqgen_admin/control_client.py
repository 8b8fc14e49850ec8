"""The admin's asyncio client of a server's control socket (docs/protocol.md, "Control").

One DEALER socket, many concurrent calls (``seqgen_common.channel``): replies
are matched to calls by request id, and a reply that comes after its call
gave up is dropped. Every call has its own deadline; a server that is down,
stopped or too slow makes the call raise ``Unavailable`` within it (at once
while there is no connection). ZeroMQ reconnects by itself, so the admin
recovers as soon as the server is back.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, TypeVar

import msgspec
import zmq

from seqgen_common.channel import Channel, Unsent
from seqgen_common.control import (
    AbortResize,
    BackupChunk,
    BackupEnded,
    BackupReady,
    BeginResize,
    ChangePage,
    CommitResize,
    ControlError,
    ControlReply,
    ControlRequest,
    EndBackup,
    EndResize,
    Fence,
    FenceState,
    Floor,
    FloorsRaised,
    GetSequence,
    GetStatus,
    Layout,
    ListSequences,
    Ping,
    Pong,
    RaiseFloor,
    RaiseFloors,
    ReadBackup,
    SequenceInfo,
    SequencePage,
    StartBackup,
    Status,
    Unfence,
    WatchChanges,
    decode_control_reply,
    encode_control,
)
from seqgen_common.errors import InternalError, Unavailable, error_for
from seqgen_common.sockets import CONTROL_CLIENT, open_socket

__all__ = ["ControlClient"]

log = logging.getLogger(__name__)

_Reply = TypeVar("_Reply", Pong, Status, SequenceInfo, SequencePage, FloorsRaised, FenceState,
                 ChangePage, BackupReady, BackupChunk, BackupEnded, Layout)


class ControlClient:
    """Calls a server's control socket; use ``async with`` (or open()/close())."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 1.0,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._own_context = context is None
        self._context: zmq.Context[Any] = context or zmq.Context()
        self._channel: Channel | None = None

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
        if self._channel is not None:
            return
        # The channel wants a plain socket (an asyncio context's are made on a shadow of it).
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.shadow(self._context.underlying)
        try:
            sock = open_socket(context, CONTROL_CLIENT, self.endpoint)
        except zmq.ZMQError as exc:
            raise InternalError(f"cannot connect to {self.endpoint}: {exc}") from exc
        self._channel = Channel(sock)

    async def close(self) -> None:
        """Stop reading, fail the calls still waiting, close the socket."""
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        if self._own_context:
            self._context.term()

    # ---- calls --------------------------------------------------------------------

    async def call(self, request: ControlRequest, timeout_s: float | None = None) -> ControlReply:
        """One request, its reply; Unavailable when none came within ``timeout_s`` (default:
        the client's)."""
        channel = self._channel
        if channel is None:
            raise Unavailable("the control client is not open")
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        try:
            body = await channel.request(encode_control(request), timeout_s, wait_to_send=True)
        except Unsent as exc:
            raise Unavailable(
                f"the server did not answer on {self.endpoint} within {timeout_s:g}s "
                "(no connection)"
            ) from exc
        except zmq.ZMQError as exc:
            raise Unavailable(f"cannot reach the server on {self.endpoint}: {exc}") from exc
        if body is None:
            raise Unavailable(
                f"the server did not answer on {self.endpoint} within {timeout_s:g}s"
            )
        try:
            return decode_control_reply(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise InternalError(f"the server sent a malformed control reply: {exc}") from exc

    async def _expect(self, request: ControlRequest, kind: type[_Reply],
                      timeout_s: float | None = None) -> _Reply:
        reply = await self.call(request, timeout_s)
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

    async def raise_floors(self, floors: list[tuple[str, int]],
                           timeout_s: float | None = None) -> FloorsRaised:
        """Raise many floors in one request (at most MAX_FLOORS, in a frame under 64 KiB);
        durable before the reply. A floor at or below what was issued is kept, not refused."""
        return await self._expect(
            RaiseFloors(floors=[Floor(name, value) for name, value in floors]), FloorsRaised,
            timeout_s)

    async def fence(self) -> FenceState:
        return await self._expect(Fence(), FenceState)

    async def unfence(self) -> FenceState:
        return await self._expect(Unfence(), FenceState)

    async def begin_resize(self, instances: int) -> Layout:
        return await self._expect(BeginResize(instances=instances), Layout)

    async def commit_resize(self, instances: int, retire: bool) -> Layout:
        return await self._expect(CommitResize(instances=instances, retire=retire), Layout)

    async def end_resize(self, instances: int) -> Layout:
        return await self._expect(EndResize(instances=instances), Layout)

    async def abort_resize(self, instances: int, stay_fenced: bool) -> Layout:
        return await self._expect(AbortResize(instances=instances, stay_fenced=stay_fenced),
                                  Layout)

    async def watch_changes(self, consumer: str, epoch: str | None, ack: int, limit: int,
                            ) -> ChangePage:
        return await self._expect(
            WatchChanges(consumer=consumer, epoch=epoch, ack=ack, limit=limit), ChangePage)

    async def start_backup(self, timeout_s: float) -> BackupReady:
        """Make a snapshot; may take long for a large store (``timeout_s``)."""
        return await self._expect(StartBackup(), BackupReady, timeout_s)

    async def read_backup(self, backup_id: str, offset: int, length: int) -> BackupChunk:
        return await self._expect(
            ReadBackup(backup_id=backup_id, offset=offset, length=length), BackupChunk)

    async def end_backup(self, backup_id: str) -> BackupEnded:
        return await self._expect(EndBackup(backup_id=backup_id), BackupEnded)
