"""The private control protocol between a server and its admin (docs/protocol.md, "Control").

ZeroMQ REQ/REP on the server's ``--control`` socket, one JSON frame each way.
Every message is a msgspec Struct tagged by its ``type`` field; the server
answers every request, including malformed ones, with exactly one reply
(``ControlError`` for anything it cannot do).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from seqgen_common.errors import ControlCode
from seqgen_common.fields import described
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import name_problem
from seqgen_common.status import CounterField, Counters, Status, counter_fields

__all__ = [
    "MAX_BACKUP_CHUNK",
    "MAX_CHANGES_PAGE",
    "MAX_CONSUMER_CHARS",
    "MAX_FLOORS",
    "MAX_PAGE",
    "AbortResize",
    "BackupChunk",
    "BackupEnded",
    "BackupReady",
    "BeginResize",
    "Change",
    "ChangePage",
    "CommitResize",
    "ControlError",
    "ControlReply",
    "ControlRequest",
    "CounterField",
    "Counters",
    "EndBackup",
    "EndResize",
    "Fence",
    "FenceState",
    "Floor",
    "FloorsRaised",
    "GetSequence",
    "GetStatus",
    "Layout",
    "ListSequences",
    "Ping",
    "Pong",
    "RaiseFloor",
    "RaiseFloors",
    "ReadBackup",
    "SequenceInfo",
    "SequencePage",
    "StartBackup",
    "Status",
    "Unfence",
    "WatchChanges",
    "counter_fields",
    "decode_control_reply",
    "decode_control_request",
    "encode_control",
]

MAX_PAGE: Final = 1000
"""At most this many sequences per ListSequences page."""
MAX_CHANGES_PAGE: Final = 5000
"""At most this many changed names per ChangePage (worst case about 2.5 MB, under the
control client's 4 MiB frame limit)."""
MAX_FLOORS: Final = 1000
"""At most this many floors per RaiseFloors request (its frame must stay under 64 KiB)."""
MAX_BACKUP_CHUNK: Final = 32 * 1024
"""At most this many bytes of a snapshot per ReadBackup (base64 in JSON: about 44 KiB)."""
MAX_CONSUMER_CHARS: Final = 64
"""The longest consumer id of WatchChanges."""

Value = Annotated[int, msgspec.Meta(ge=0, le=MAX_VALUE)]


class _Message(msgspec.Struct, tag_field="type", kw_only=True, frozen=True):
    pass


def _check_name(name: str) -> None:
    """ValueError (msgspec reports it as a validation error) for a name the public protocol
    refuses."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)


class _Named(_Message, frozen=True):
    """A request about one sequence: its name follows the public protocol's rule."""

    name: str

    def __post_init__(self) -> None:
        _check_name(self.name)


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


class GetSequence(_Named, tag="get_sequence", frozen=True):
    """One sequence; ControlError NOT_FOUND when the server never saw the name."""


class RaiseFloor(_Named, tag="raise_floor", frozen=True):
    """Make the next number issued for ``name`` greater than ``value``.

    Forward only: a value below what was already issued is refused (CONFLICT).
    The new floor is durable before the reply. A name the public protocol
    refuses (over 200 UTF-8 bytes, control characters) is BAD_REQUEST.
    """

    value: Value


class Floor(msgspec.Struct, array_like=True, frozen=True):
    """One floor of RaiseFloors: ``[name, value]``."""

    name: str
    value: Value

    def __post_init__(self) -> None:
        _check_name(self.name)


class RaiseFloors(_Message, tag="raise_floors", frozen=True):
    """Raise many floors at once (recovery): each name's next number will be greater than
    its value. A floor at or below what was already issued for a name changes nothing (it is
    counted as kept, not refused). Every raised floor is durable before the reply
    (FloorsRaised). Keep the frame under 64 KiB: at most MAX_FLOORS floors."""

    floors: Annotated[list[Floor], msgspec.Meta(max_length=MAX_FLOORS)]


class Fence(_Message, tag="fence", frozen=True):
    """From now on the public socket answers every request ["UNAVAILABLE", "fenced"] and
    issues nothing. The fence is kept in the store: the reply (FenceState) comes once it is
    durable, and the server stays fenced across restarts until Unfence."""


class Unfence(_Message, tag="unfence", frozen=True):
    """Release the fence: durable first, then the public socket serves again (FenceState)."""


Count = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class BeginResize(_Message, tag="begin_resize", frozen=True):
    """Step 1 of a resize to ``instances`` servers (docs/protocol.md, "Changing the number
    of servers"): the fence, and the resize recorded as unfinished (store meta
    ``resize_to``), both durable before the reply (Layout). Until EndResize, Unfence is
    refused. CONFLICT while a resize to another count is unfinished, or on a retired server."""

    instances: Count


class CommitResize(_Message, tag="commit_resize", frozen=True):
    """Step 3: the new layout, durable before the reply (Layout): the store records
    ``instances`` (and the count it had), or with ``retire`` that this server is retired.
    The server stays fenced. CONFLICT unless BeginResize to ``instances`` came first."""

    instances: Count
    retire: bool = False


class EndResize(_Message, tag="end_resize", frozen=True):
    """Step 4: the resize is finished here: ``resize_to`` cleared and the fence released
    (a retired server stays fenced for good). CONFLICT unless CommitResize came first."""

    instances: Count


class AbortResize(_Message, tag="abort_resize", frozen=True):
    """Undo a resize to ``instances`` servers that is not committed here: ``resize_to``
    cleared and, unless ``stay_fenced`` (the new server of a grow, which goes back to
    waiting), the fence released; durable before the reply (Layout). CONFLICT when this
    server committed the resize already (only finishing it is safe then). Nothing happens
    when no resize is unfinished here."""

    instances: Count
    stay_fenced: bool = False


class WatchChanges(_Message, tag="watch_changes", frozen=True):
    """The change feed of one consumer (a witness): names whose value changed since its
    last acknowledged page, with their current values (ChangePage).

    The server remembers each consumer (by ``consumer``) for a while. ``epoch`` is the
    epoch of the last page the consumer got (None at first); ``ack`` the ``seq`` of the last
    page it has stored. A page that is not acknowledged is sent again (with current values).
    When ``epoch`` is not the server's (it restarted) or the server does not know the
    consumer, the reply has ``resync`` set: read every sequence with ListSequences, then
    carry on from that reply's ``seq``; nothing that changes meanwhile is lost.
    """

    consumer: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CONSUMER_CHARS)]
    epoch: str | None = None
    ack: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHANGES_PAGE)] = 1000


class StartBackup(_Message, tag="start_backup", frozen=True):
    """Make a consistent snapshot of the store with SQLite's online backup, in a thread,
    while the server serves; BackupReady once it is complete. The snapshot is marked fenced,
    so a server started on it stays fenced until recovered. One snapshot exists at a time:
    a new one replaces the previous one."""


class ReadBackup(_Message, tag="read_backup", frozen=True):
    """Up to ``length`` bytes of the snapshot from ``offset`` (BackupChunk); NOT_FOUND when
    ``backup_id`` is not the current snapshot."""

    backup_id: str
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    length: Annotated[int, msgspec.Meta(ge=1, le=MAX_BACKUP_CHUNK)] = MAX_BACKUP_CHUNK


class EndBackup(_Message, tag="end_backup", frozen=True):
    """Delete the snapshot (BackupEnded); harmless when it is gone already."""

    backup_id: str


ControlRequest = (
    Ping | GetStatus | ListSequences | GetSequence | RaiseFloor | RaiseFloors | Fence | Unfence
    | WatchChanges | StartBackup | ReadBackup | EndBackup | BeginResize | CommitResize | EndResize
    | AbortResize
)


# ---- replies ----------------------------------------------------------------


class Pong(_Message, tag="pong", frozen=True):
    version: str
    instance: int
    instances: int


class SequenceInfo(_Message, tag="sequence", frozen=True):
    name: Annotated[str, described("The sequence name.")]
    current: Annotated[int, described(
        "The highest number issued (or the floor): the next number is greater.", digits=True)]
    durable: Annotated[int, described(
        "The durable high-water mark: after a crash the server restarts above it.", digits=True)]


class SequencePage(_Message, tag="sequence_page", frozen=True):
    items: Annotated[list[SequenceInfo], described("Sequences in name order (UTF-8 byte order).")]
    next_cursor: Annotated[str | None, described(
        "Pass as `cursor` to get the next page; null on the last page.")]


class FloorsRaised(_Message, tag="floors_raised", frozen=True):
    raised: int
    """Floors that moved a sequence forward (durable now)."""
    kept: int
    """Floors at or below what was already issued: nothing changed for them."""


class FenceState(_Message, tag="fence_state", frozen=True):
    fenced: Annotated[bool, described("Whether the server is fenced now (durably).")]


class Layout(_Message, tag="layout", frozen=True):
    """A server's layout after a resize step."""

    instance: int
    instances: int
    fenced: bool
    resize_to: int | None
    retired: bool


class Change(msgspec.Struct, array_like=True, frozen=True):
    """One changed name of a ChangePage: ``[name, current, jumped]``."""

    name: Annotated[str, described("The sequence name.")]
    current: Annotated[int, described(
        "Its current value (the highest number issued, or the floor).", digits=True)]
    jumped: Annotated[bool, described(
        "A floor was raised for the name since it was last sent to this consumer: the change "
        "is not a rate of issue.")] = False


class ChangePage(_Message, tag="change_page", frozen=True):
    version: Annotated[str, described("The server's seqgen version.")]
    instance: Annotated[int, described("The server's instance number K.")]
    instances: Annotated[int, described("N, the number of servers in the cluster.")]
    epoch: Annotated[str, described(
        "Random per server start; a new epoch means the server restarted.")]
    fenced: Annotated[bool, described("Whether the server is fenced.")]
    seq: Annotated[int, described("Send this back as `ack` once the items are stored.")]
    resync: Annotated[bool, described(
        "Read every sequence (`GET /sequences`) first: the consumer is new to the server, or "
        "the server restarted.")]
    more: Annotated[bool, described("More changed names wait: ask again at once.")]
    items: Annotated[list[Change], described(
        "Names whose value changed, with their current value.")]


class BackupReady(_Message, tag="backup_ready", frozen=True):
    backup_id: str
    size: int
    """Bytes in the snapshot file."""
    sha256: str
    """Hex SHA-256 of the snapshot file."""


class BackupChunk(_Message, tag="backup_chunk", frozen=True):
    backup_id: str
    offset: int
    data: bytes
    """base64 in JSON; empty at the end of the file."""
    eof: bool
    """True when this chunk reaches the end of the file."""


class BackupEnded(_Message, tag="backup_ended", frozen=True):
    backup_id: str


class ControlError(_Message, tag="error", frozen=True):
    code: ControlCode
    message: str


ControlReply = (
    Pong | Status | SequenceInfo | SequencePage | FloorsRaised | FenceState | ChangePage
    | BackupReady | BackupChunk | BackupEnded | Layout | ControlError
)


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
