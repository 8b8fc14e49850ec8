"""The admin's HTTP models: what the OpenAPI schema documents, field by field.

Sequence values are 64-bit; JSON numbers lose precision above 2**53 in many
clients (JavaScript), so every sequence value travels as a string of decimal
digits, as on the public wire protocol. The ``*_out`` functions turn control
replies (msgspec structs) into these models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, create_model

from seqgen_common.control import (
    ChangePage,
    Counters,
    Pong,
    SequenceInfo,
    SequencePage,
    Status,
    counter_fields,
)
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import NAME_PATTERN, name_problem

__all__ = [
    "NAME_PATTERN",
    "BackwardsReport",
    "Changes",
    "ClusterView",
    "FenceResult",
    "FloorRequest",
    "Health",
    "PeerState",
    "Problem",
    "Ready",
    "RecoverRequest",
    "RecoverResult",
    "Sequence",
    "SequenceList",
    "ServerCounters",
    "ServerStatus",
    "WitnessPage",
    "changes_out",
    "check_name",
    "page_out",
    "ready_out",
    "sequence_out",
    "status_out",
    "when",
]

DIGITS_PATTERN: Final = r"^[0-9]+$"


def check_name(name: str) -> str:
    """A valid sequence name, else ValueError (FastAPI answers 422)."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def digits_at_most(limit: int) -> str:
    """A regular expression for the decimal digit strings of 0..``limit`` (leading zeros allowed).

    The schema then states the exact range, so a client (or a schema-driven test) can
    tell a valid value from the text alone. For 250:
    ``^0*(?:[0-9]{1,2}|[0-1][0-9]{2}|2[0-4][0-9]{1}|25[0-0]|250)$``.
    """
    digits = str(limit)
    width = len(digits)
    choices = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        if digit != "0":
            rest = width - i - 1
            choices.append(digits[:i] + f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    choices.append(digits)
    return "^0*(?:" + "|".join(choices) + ")$"


VALUE_PATTERN: Final = digits_at_most(MAX_VALUE)
"""A floor value: decimal digits of a number from 0 to 2**63 - 1."""


Digits = Annotated[str, Field(pattern=DIGITS_PATTERN, examples=["100000"])]
"""A 64-bit value as a string of decimal digits."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Problem(_Model):
    """Every error response (4xx/5xx other than 422) has this body."""

    detail: str = Field(description="What went wrong, for a person.")


class Health(_Model):
    status: Literal["ok"] = Field(description="The admin process serves HTTP.")


class Ready(_Model):
    status: Literal["ready"] = Field(description="The server answers its control socket.")
    version: str = Field(description="The server's seqgen version.")
    instance: int = Field(description="This server's instance number K (1..N).")
    instances: int = Field(description="N, the number of servers in the cluster.")


def _counters_model() -> type[BaseModel]:
    """``ServerCounters``, field by field from ``seqgen_common.control.Counters``."""
    fields: dict[str, Any] = {
        field.name: (field.value_type, Field(description=field.description))
        for field in counter_fields()
    }
    return create_model("ServerCounters", __base__=_Model, __doc__="Counters since the server started.",
                        **fields)


if TYPE_CHECKING:
    class ServerCounters(_Model):
        """For type checkers: the fields are made from ``Counters`` at import."""
else:
    ServerCounters = _counters_model()


class ServerStatus(_Model):
    version: str = Field(description="The server's seqgen version.")
    instance: int = Field(description="This server's instance number K: it issues v ≡ K mod N.")
    instances: int = Field(description="N, the number of servers in the cluster.")
    drift: int = Field(description="How far a client's `last` may run ahead before a catch-up.")
    reserve: int = Field(description="Own numbers per name made durable ahead of use.")
    uptime_s: float = Field(description="Seconds since the server started.")
    data_dir: str = Field(description="The server's data directory.")
    sequences: int = Field(description="How many sequences (names) the server holds.")
    clean_start: bool = Field(
        description="False when the previous run did not stop cleanly (crash, kill -9)."
    )
    store_ok: bool = Field(
        description="False while the store cannot persist (requests that need it get INTERNAL)."
    )
    counters: ServerCounters = Field(description="Counters since the server started.")
    fenced: bool = Field(
        description="True while the server is fenced: its public socket answers every request "
        "UNAVAILABLE \"fenced\" and issues nothing (POST /recover or /unfence releases it)."
    )
    restored: bool = Field(
        default=False,
        description="True when this run started on a restored backup (GET /backup), not after a "
        "crash: it starts fenced, and POST /recover brings it back.")
    resize_to: int | None = Field(
        default=None, description="A resize to this many servers is unfinished on this server "
        "(null: none); `POST /resize` with that number finishes it.")
    retired: bool = Field(default=False, description="A resize retired this server: it stays "
                          "fenced for good.")


class Sequence(_Model):
    name: str = Field(description="The sequence name.")
    current: Digits = Field(
        description="The highest number issued (or the floor): the next number is greater."
    )
    durable: Digits = Field(
        description="The durable high-water mark: after a crash the server restarts above it."
    )


class SequenceList(_Model):
    items: list[Sequence] = Field(description="Sequences in name order (UTF-8 byte order).")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class FloorRequest(_Model):
    value: Annotated[
        str,
        Field(
            pattern=VALUE_PATTERN,
            max_length=64,
            examples=["100000"],
            description=f"Decimal digits of a number from 0 to {MAX_VALUE}: the next number "
            "issued for the name will be greater than this.",
        ),
    ]


# ---- the operator's plane -----------------------------------------------------------


class FenceResult(_Model):
    fenced: bool = Field(description="Whether the server is fenced now (durably).")


class ChangeItem(_Model):
    name: str = Field(description="The sequence name.")
    current: Digits = Field(description="Its current value (the highest number issued, or the floor).")
    jumped: bool = Field(description="A floor was raised for the name since it was last sent "
                         "to this consumer: the change is not a rate of issue.")


class BackwardsReport(_Model):
    instance: int = Field(description="The instance that went backwards.")
    conflict: str = Field(description="The conflict, as this admin's `/cluster` shows it.")


class Changes(_Model):
    """A page of the change feed (what a peer's witness polls)."""

    version: str = Field(description="The server's seqgen version.")
    instance: int = Field(description="The server's instance number K.")
    instances: int = Field(description="N, the number of servers in the cluster.")
    epoch: str = Field(description="Random per server start; a new epoch means the server restarted.")
    fenced: bool = Field(description="Whether the server is fenced.")
    seq: int = Field(description="Send this back as `ack` once the items are stored.")
    resync: bool = Field(description="Read every sequence (`GET /sequences`) first: the consumer "
                         "is new to the server, or the server restarted.")
    more: bool = Field(description="More changed names wait: ask again at once.")
    items: list[ChangeItem] = Field(description="Names whose value changed, with their current value.")
    backwards: list[BackwardsReport] = Field(
        default_factory=list, description="Servers this admin saw go backwards (values below "
        "what it witnessed them issue): the polling admin of that instance shows it too.")


class PeerState(_Model):
    url: str = Field(description="The peer's admin URL (`--peer`).")
    reachable: bool = Field(description="Whether the peer (its admin and its server) answered "
                            "the last poll.")
    instance: int | None = Field(description="The peer's instance (as it last said; null: never).")
    instances: int | None = Field(description="The peer's number of instances.")
    version: str | None = Field(description="The peer server's seqgen version.")
    fenced: bool | None = Field(description="Whether the peer's server is fenced.")
    last_seen: datetime | None = Field(description="When the peer last answered (UTC).")
    error: str | None = Field(description="Why the last poll failed; null after a success.")


class ClusterView(_Model):
    instance: int | None = Field(description="This server's instance (null while it never answered).")
    instances: int | None = Field(description="This server's number of instances.")
    version: str | None = Field(description="This server's seqgen version.")
    reachable: bool = Field(description="Whether this server answered its admin just now.")
    fenced: bool | None = Field(default=None, description="Whether this server is fenced.")
    resize_to: int | None = Field(
        default=None, description="A resize to this many servers is unfinished here (null: "
        "none): `POST /resize` with that number finishes it (docs/operations.md).")
    retired: bool | None = Field(default=None, description="A resize retired this server: "
                                 "it stays fenced for good.")
    witness_interval_s: float = Field(description="How often the peers are polled and witnessed.")
    peers: list[PeerState] = Field(description="The peers (`--peer`), in the order given.")
    conflicts: list[str] = Field(
        description="Misconfigurations, one sentence each: two servers with the same instance, "
        "servers that disagree on the number of instances, an instance out of range. Empty "
        "when all is well.")


class WitnessEntry(_Model):
    name: str = Field(description="The sequence name.")
    value: Digits = Field(description="The highest value this host saw that instance issue.")
    seen_at: datetime = Field(description="When that value was first seen (UTC).")
    rate: float = Field(description="The name's observed rate of issue there, numbers per "
                        "second: a peak that fades over about a minute, shown as it was when "
                        "the record was last complete (`lost_at`, else now).")


class WitnessPage(_Model):
    instance: int = Field(description="The instance witnessed.")
    items: list[WitnessEntry] = Field(description="Names in name order (UTF-8 byte order).")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page.")
    interval_s: float = Field(description="This admin's witness interval.")
    confirmed_at: datetime | None = Field(
        description="When the record of this instance was last known complete (null: never).")
    lost_at: datetime | None = Field(
        description="When it was first not complete after that (the server stopped answering, "
        "restarted or was fenced); null while it is.")
    stale_s: float | None = Field(
        description="How long that instance may have issued numbers missing here: lost_at (or "
        "now) minus confirmed_at; null when never confirmed.")


class RecoverRequest(_Model):
    margin: Annotated[str | None, Field(
        pattern=VALUE_PATTERN, max_length=64, examples=["100000"],
        description="Decimal digits: add this to every name instead of the default margin "
        "(docs/operations.md gives the rule). Required when no peer can give its record.")] = None
    force: bool = Field(default=False, strict=True, description="Recover even when a peer "
                        "cannot give its part (or gives an implausible one) or the cluster is "
                        "misconfigured; never without any peer's record unless `margin` is given.")


class PeerAsked(_Model):
    url: str = Field(description="The peer's admin URL.")
    answered: bool = Field(description="Whether it gave its values and its witness record.")
    error: str | None = Field(description="Why not (null when it did).")
    witnessed: int = Field(description="Names of this instance in its witness record.")


class RecoverResult(_Model):
    raised: int = Field(description="Names whose floor was raised.")
    largest_jump: Digits = Field(description="The largest floor minus the name's value before.")
    margin: Digits = Field(description="The margin used: the given one, or the largest one the "
                           "default rule gave (at least 10 x drift x instances).")
    margin_rule: Literal["given", "default"] = Field(description="Where the margin came from.")
    kept: int = Field(description="Witnessed names already at or above their floor (unchanged).")
    unwitnessed: int = Field(description="Names only this server holds (no witness saw them, "
                             "no peer holds them): they keep this server's own state, or are "
                             "raised by a given margin.")
    forced: bool = Field(description="Whether `force` was given.")
    fenced: bool = Field(description="Whether the server is still fenced (false: serving again).")
    peers: list[PeerAsked] = Field(description="What each peer gave.")


def when(unix_s: float | None) -> datetime | None:
    """A Unix time as an aware UTC datetime."""
    return None if unix_s is None else datetime.fromtimestamp(unix_s, UTC)


# ---- control replies -> HTTP models ------------------------------------------------


def ready_out(pong: Pong) -> Ready:
    return Ready(status="ready", version=pong.version, instance=pong.instance,
                 instances=pong.instances)


def _counters_out(c: Counters) -> ServerCounters:
    return ServerCounters(**msgspec.structs.asdict(c))


def status_out(s: Status) -> ServerStatus:
    """The HTTP model has the control reply's fields, one for one."""
    fields = msgspec.structs.asdict(s)
    fields["counters"] = _counters_out(s.counters)
    return ServerStatus(**fields)


def sequence_out(info: SequenceInfo) -> Sequence:
    return Sequence(name=info.name, current=str(info.current), durable=str(info.durable))


def page_out(page: SequencePage) -> SequenceList:
    return SequenceList(
        items=[sequence_out(info) for info in page.items], next_cursor=page.next_cursor
    )



def changes_out(page: ChangePage, backwards: list[BackwardsReport] | None = None) -> Changes:
    return Changes(
        backwards=backwards or [],
        version=page.version, instance=page.instance, instances=page.instances, epoch=page.epoch,
        fenced=page.fenced, seq=page.seq, resync=page.resync, more=page.more,
        items=[ChangeItem(name=c.name, current=str(c.current), jumped=c.jumped) for c in page.items],
    )
