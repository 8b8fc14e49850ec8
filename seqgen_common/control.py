"""The private control protocol between a server and its admin (DESIGN section 7).

ZeroMQ REQ/REP on the server's ``--control`` socket, one JSON frame each way.
Every message is a msgspec Struct tagged by its ``type`` field; the server
answers every request, including malformed ones, with exactly one reply
(``ControlError`` for anything it cannot do).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from seqgen_common.limits import MAX_NAME_BYTES, MAX_VALUE

__all__ = [
    "MAX_PAGE",
    "ControlError",
    "ControlReply",
    "ControlRequest",
    "Counters",
    "GetSequence",
    "GetStatus",
    "ListSequences",
    "Ping",
    "Pong",
    "RaiseFloor",
    "SequenceInfo",
    "SequencePage",
    "Status",
    "decode_control_reply",
    "decode_control_request",
    "encode_control",
]

MAX_PAGE: Final = 1000
"""At most this many sequences per ListSequences page."""

Value = Annotated[int, msgspec.Meta(ge=0, le=MAX_VALUE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_BYTES)]


class _Message(msgspec.Struct, tag_field="type", kw_only=True, frozen=True):
    pass


# ---- requests ---------------------------------------------------------------


class Ping(_Message, tag="ping", frozen=True):
    """Is the server there? Answered with Pong."""


class GetStatus(_Message, tag="get_status", frozen=True):
    """Answered with Status."""


class ListSequences(_Message, tag="list_sequences", frozen=True):
    """A page of sequences in name order, names > ``cursor`` that start with ``prefix``."""

    prefix: str = ""
    cursor: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE)] = 100


class GetSequence(_Message, tag="get_sequence", frozen=True):
    """One sequence; ControlError NOT_FOUND when the server never saw the name."""

    name: Name


class RaiseFloor(_Message, tag="raise_floor", frozen=True):
    """Make the next number issued for ``name`` greater than ``value``.

    Forward only: a value below what was already issued is refused (CONFLICT).
    The new floor is durable before the reply. A name the public protocol
    refuses (over 200 UTF-8 bytes, control characters) is BAD_REQUEST.
    """

    name: Name
    value: Value


ControlRequest = Ping | GetStatus | ListSequences | GetSequence | RaiseFloor


# ---- replies ----------------------------------------------------------------


class Pong(_Message, tag="pong", frozen=True):
    version: str
    instance: int
    instances: int


class Counters(msgspec.Struct, kw_only=True, frozen=True):
    """Counters since the server started."""

    requests: dict[str, int]
    """Public requests by outcome: "OK" or the error code."""
    numbers_issued: int
    catchups: int
    """Requests whose ``last`` made the server skip ahead."""
    catchup_skipped: int
    """Own numbers skipped by catch-ups."""
    skipped_at_start: int
    """Own numbers skipped at start (reserved but possibly never issued before a crash)."""
    reservations_written: int
    """Durable high-water marks written (one per name per store write)."""
    store_writes: int
    store_write_failures: int
    store_write_seconds_sum: float
    store_write_seconds_max: float
    disk_waits: int
    """Public requests that had to wait for a store write before their reply."""
    control_requests: int


class Status(_Message, tag="status", frozen=True):
    version: str
    instance: int
    instances: int
    drift: int
    reserve: int
    uptime_s: float
    data_dir: str
    sequences: int
    clean_start: bool
    """False when the previous run did not stop cleanly (crash, kill -9)."""
    store_ok: bool
    """False while the store cannot persist (requests needing it get INTERNAL)."""
    counters: Counters


class SequenceInfo(_Message, tag="sequence", frozen=True):
    name: str
    current: int
    """The highest number issued (or the floor); the next is greater."""
    durable: int
    """The durable high-water mark: after a crash the server restarts above it."""


class SequencePage(_Message, tag="sequence_page", frozen=True):
    items: list[SequenceInfo]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; None on the last page."""


class ControlError(_Message, tag="error", frozen=True):
    code: str
    """BAD_REQUEST, NOT_FOUND, CONFLICT or INTERNAL."""
    message: str


ControlReply = Pong | Status | SequenceInfo | SequencePage | ControlError


_encoder: Final = msgspec.json.Encoder()
_request_decoder: Final[msgspec.json.Decoder[ControlRequest]] = msgspec.json.Decoder(
    ControlRequest
)
_reply_decoder: Final[msgspec.json.Decoder[ControlReply]] = msgspec.json.Decoder(ControlReply)


def encode_control(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode_control_request(frame: bytes) -> ControlRequest:
    """Raises ValueError (msgspec.DecodeError or UnicodeDecodeError) for bad input."""
    return _request_decoder.decode(frame)


def decode_control_reply(frame: bytes) -> ControlReply:
    return _reply_decoder.decode(frame)
