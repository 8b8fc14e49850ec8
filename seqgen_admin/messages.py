"""The admin's own messages: what its HTTP endpoints serve beyond a control reply, and
what a peer's admin reads from them (``/readyz``, ``/changes``, ``/witness/{instance}``).

Defined once here, as the control messages are in seqgen_common.control;
seqgen_admin.models derives the HTTP models from both, seqgen_admin.peers reads
peers' answers back into these (seqgen_admin.derive).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from seqgen_common.control import ChangePage
from seqgen_common.fields import described

__all__ = ["BackwardsReport", "Changes", "Ready", "StepAnswer", "WitnessEntry", "WitnessPage"]


class Ready(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /readyz``: the server answers (its control Pong)."""

    status: Annotated[Literal["ready"], described("The server answers its control socket.")]
    version: Annotated[str, described("The server's seqgen version.")]
    instance: Annotated[int, described("This server's instance number K (1..N).")]
    instances: Annotated[int, described("N, the number of servers in the cluster.")]


class BackwardsReport(msgspec.Struct, kw_only=True, frozen=True):
    instance: Annotated[int, described("The instance that went backwards.")]
    conflict: Annotated[str, described("The conflict, as this admin's `/cluster` shows it.")]


class Changes(ChangePage, kw_only=True, frozen=True):
    """A page of the change feed (what a peer's witness polls)."""

    backwards: Annotated[list[BackwardsReport], described(
        "Servers this admin saw go backwards (values below what it witnessed them issue): "
        "the polling admin of that instance shows it too.")] = []


class WitnessEntry(msgspec.Struct, kw_only=True, frozen=True):
    name: Annotated[str, described("The sequence name.")]
    value: Annotated[int, described(
        "The highest value this host saw that instance issue.", digits=True)]
    seen_at: Annotated[datetime, described("When that value was first seen (UTC).")]
    rate: Annotated[float, described(
        "The name's observed rate of issue there, numbers per second: a peak that fades over "
        "about a minute, shown as it was when the record was last complete (`lost_at`, else "
        "now).")]


class WitnessPage(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /witness/{instance}``: a page of this host's witness record of an instance."""

    instance: Annotated[int, described("The instance witnessed.")]
    items: Annotated[list[WitnessEntry], described("Names in name order (UTF-8 byte order).")]
    next_cursor: Annotated[str | None, described(
        "Pass as `cursor` to get the next page; null on the last page.")]
    interval_s: Annotated[float, described("This admin's witness interval.")]
    confirmed_at: Annotated[datetime | None, described(
        "When the record of this instance was last known complete (null: never).")]
    lost_at: Annotated[datetime | None, described(
        "When it was first not complete after that (the server stopped answering, restarted "
        "or was fenced); null while it is.")]
    stale_s: Annotated[float | None, described(
        "How long that instance may have issued numbers missing here: lost_at (or now) minus "
        "confirmed_at; null when never confirmed.")]


class StepAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """``POST /resize/step``: a server's layout after one step of a resize (what the
    coordinating admin reads back from each admin)."""

    instance: Annotated[int, described("The server's instance.")]
    instances: Annotated[int, described(
        "Its number of instances (the layout it issues under).")]
    fenced: Annotated[bool, described("Whether it is fenced now.")]
    resize_to: Annotated[int | None, described(
        "The count of a resize begun there and not finished (null: none).")]
    retired: Annotated[bool, described("A resize retired it: fenced for good.")]
    drift: Annotated[int, described("Its --drift.")]
    names: Annotated[int, described("`floors`: names that got a boundary.")] = 0
    raised: Annotated[int, described("`floors`: floors that moved.")] = 0
    largest_jump: Annotated[int, described(
        "`floors`: the largest boundary minus the server's value before.")] = 0
    prepared: Annotated[bool, described(
        "`floors`: only what changed since `prepare` was read under the fence (false: every "
        "server in full).")] = False
    witnessed: Annotated[int, described(
        "`witnessed`: names of the lost instance this admin recorded (-1: it holds no record "
        "of it).")] = 0
    margin: Annotated[int, described("`lostfloors`: the margin used.")] = 0
