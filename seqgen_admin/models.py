"""The admin's HTTP models: what the OpenAPI schema documents, field by field.

Sequence values are 64-bit; JSON numbers lose precision above 2**53 in many
clients (JavaScript), so every sequence value travels as a string of decimal
digits, as on the public wire protocol. The models of messages (the control
replies of seqgen_common.control, the admin's own of seqgen_admin.messages) are
derived from them (seqgen_admin.derive); the ``*_out`` functions turn a message
into its model. The models written here are those of no message (requests, and
what only this admin composes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final, Literal

import msgspec
from pydantic import Field

from seqgen_admin import messages
from seqgen_admin.derive import DIGITS_PATTERN, Digits, Model, derive, to_model
from seqgen_common.control import (
    Change,
    ChangePage,
    Counters,
    FenceState,
    Pong,
    SequenceInfo,
    SequencePage,
    Status,
)
from seqgen_common.limits import MAX_VALUE
from seqgen_common.protocol import NAME_PATTERN, name_problem

__all__ = [
    "DIGITS_PATTERN",
    "NAME_PATTERN",
    "BackwardsReport",
    "ChangeItem",
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
    "WitnessEntry",
    "WitnessPage",
    "changes_out",
    "check_name",
    "fence_out",
    "page_out",
    "ready_out",
    "sequence_out",
    "status_out",
    "when",
    "witness_out",
]


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


_Model = Model
"""The base of every HTTP model (seqgen_admin.derive)."""

VALUE_PATTERN: Final = digits_at_most(MAX_VALUE)
"""A floor value: decimal digits of a number from 0 to 2**63 - 1."""


class Problem(_Model):
    """Every error response (4xx/5xx other than 422) has this body."""

    detail: str = Field(description="What went wrong, for a person.")


class Health(_Model):
    status: Literal["ok"] = Field(description="The admin process serves HTTP.")


# ---- derived from the messages (seqgen_admin.derive) ---------------------------------

if TYPE_CHECKING:  # for type checkers: the fields are made from the messages at import
    class ServerCounters(_Model): ...
    class ServerStatus(_Model): ...
    class Sequence(_Model): ...
    class SequenceList(_Model): ...
    class ChangeItem(_Model): ...
    class BackwardsReport(_Model): ...
    class Changes(_Model): ...
    class Ready(_Model): ...
    class WitnessEntry(_Model): ...
    class WitnessPage(_Model): ...
    class FenceResult(_Model): ...
else:
    ServerCounters = derive(Counters, "ServerCounters", "Counters since the server started.")
    ServerStatus = derive(Status, "ServerStatus")
    Sequence = derive(SequenceInfo, "Sequence")
    SequenceList = derive(SequencePage, "SequenceList")
    ChangeItem = derive(Change, "ChangeItem")
    BackwardsReport = derive(messages.BackwardsReport, "BackwardsReport")
    Changes = derive(messages.Changes, "Changes", messages.Changes.__doc__)
    Ready = derive(messages.Ready, "Ready")
    WitnessEntry = derive(messages.WitnessEntry, "WitnessEntry")
    WitnessPage = derive(messages.WitnessPage, "WitnessPage")
    FenceResult = derive(FenceState, "FenceResult")


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


# ---- messages -> HTTP models --------------------------------------------------------


def ready_out(pong: Pong) -> Ready:
    return to_model(messages.Ready(status="ready", **msgspec.structs.asdict(pong)), Ready)


def fence_out(state: FenceState) -> FenceResult:
    return to_model(state, FenceResult)


def status_out(s: Status) -> ServerStatus:
    return to_model(s, ServerStatus)


def sequence_out(info: SequenceInfo) -> Sequence:
    return to_model(info, Sequence)


def page_out(page: SequencePage) -> SequenceList:
    return to_model(page, SequenceList)


def changes_out(page: ChangePage, backwards: list[tuple[int, str]] | None = None) -> Changes:
    """The page, and the servers this admin saw go backwards: (instance, conflict)."""
    reports = [messages.BackwardsReport(instance=instance, conflict=conflict)
               for instance, conflict in backwards or []]
    return to_model(messages.Changes(**msgspec.structs.asdict(page), backwards=reports), Changes)


def witness_out(page: messages.WitnessPage) -> WitnessPage:
    return to_model(page, WitnessPage)
