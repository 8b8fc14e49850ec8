"""A shrink whose retiring server is lost for good: ``POST /resize`` with
``{"instances": N-1, "retiring_lost": true}`` (docs/protocol.md, "Changing the number of
servers"; docs/operations.md, "Shrink when the retiring host is lost").

Only on the operator's word (the flag), never because a server does not answer. The
lost instance N cannot be read, so its numbers are covered as ``POST /recover`` covers a
lost server (seqgen_admin.margin): for every name, each surviving admin takes the highest
of its survivors' current values and every surviving admin's witness record of instance
N, adds the margin (given, or the default rule: at least 10 x drift x N, at least 4 x the
witnessed rate x the record's window) and raises its own server's floor to it, fenced,
before the survivors record the new layout (1..N-1 of N-1). With no witness record of
instance N on any surviving admin the request is refused unless ``margin`` is given:
a resize never unfences blind.

Steps (each survivor, through ``run_step``): ``witnessed`` (nothing changes: how much
of instance N its admin recorded), then ``begin``, ``lostfloors`` (this module's
``raise_lost``), ``commit``, ``end`` as in seqgen_admin.resize.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from seqgen_admin.control_client import ControlClient
from seqgen_admin.layout import LayoutError, LayoutNode, resize_plan
from seqgen_admin.margin import Implausible, Witnessed, base_margin, plan, record_problem
from seqgen_admin.peers import PeerReader
from seqgen_admin.recover import own_values
from seqgen_admin.resize_prep import raise_all
from seqgen_admin.witness import WitnessStore
from seqgen_common.errors import Conflict, Unavailable

__all__ = ["LostFloors", "OwnWitness", "blind", "local_witness", "lost_plan", "raise_lost",
           "witnessed"]

log = logging.getLogger(__name__)

Record = tuple[bool, list[tuple[str, Witnessed]]]
"""(whether the record of the instance was ever confirmed, its (name, record) items)."""
OwnWitness = Callable[[int], Awaitable[Record]]
"""This admin's own witness record of an instance."""

_PAGE = 1000


def local_witness(store: WitnessStore | None, interval_s: float) -> OwnWitness:
    """This admin's witness record, as ``GET /witness/{instance}`` would give it."""

    async def read(instance: int) -> Record:
        if store is None:
            return False, []
        known = await asyncio.to_thread(store.state, instance)
        now = time.time()
        stale_s = known.stale_s(now)
        if stale_s is None:
            return False, []
        at = known.lost_at if known.lost_at is not None else now
        window_s = max(interval_s, stale_s)
        items: list[tuple[str, Witnessed]] = []
        cursor: str | None = None
        while True:
            page, cursor = await asyncio.to_thread(store.page, instance, "", cursor, _PAGE, at)
            items.extend((item.name, Witnessed(item.value, item.rate, window_s)) for item in page)
            if cursor is None:
                return True, items

    return read


async def _peer_record(http: httpx.AsyncClient, url: str, instance: int) -> Record:
    items: list[tuple[str, Witnessed]] = []
    async for page in PeerReader(http, url).witnessed(instance):
        if page.stale_s is None:
            return False, []
        window_s = max(page.interval_s, page.stale_s)
        items.extend((item.name, Witnessed(item.value, item.rate, window_s))
                     for item in page.items)
    return True, items


async def witnessed(own: OwnWitness | None, instance: int) -> int:
    """Step ``witnessed``: how many names of ``instance`` this admin recorded; -1 when its
    record of that instance was never confirmed (it holds nothing to go by)."""
    if own is None:
        return -1
    confirmed, items = await own(instance)
    return len(items) if confirmed else -1


@dataclass(frozen=True, slots=True)
class LostFloors:
    names: int
    raised: int
    largest_jump: int
    margin: int


async def raise_lost(client: ControlClient, http: httpx.AsyncClient, peers: Sequence[str],
                     own_witness: OwnWitness | None, *, instances: int, lost: str,
                     margin: int | None) -> LostFloors:
    """Step ``lostfloors`` (this server fenced, a resize to ``instances`` begun): read the
    survivors (every peer but ``lost``) and every survivor's witness record of instance
    ``instances + 1``, raise this server's floors (module doc). Conflict when out of order,
    blind or implausible; PeerError when a survivor does not answer."""
    status = await client.status()
    if status.resize_to is None and status.instances == instances:
        return LostFloors(0, 0, 0, 0)  # finished here already: its floors hold
    if status.resize_to != instances:
        raise Conflict(f"no resize to {instances} servers is begun on this server")
    gone = instances + 1
    survivors = [url for url in peers if url != lost]
    records: list[Record] = []
    current: dict[str, int] = {}
    read = {status.instance}
    for url in survivors:
        reader = PeerReader(http, url)
        read.add((await reader.node()).instance)
        async for items in reader.sequences():
            for name, value in items:
                current[name] = max(value, current.get(name, 0))
        records.append(await _peer_record(http, url, gone))
    if read != set(range(1, gone)):
        raise Conflict(f"this admin reads instances {sorted(read)}, not every survivor "
                       f"1..{instances}: every admin must be peered with every other")
    if own_witness is not None:
        records.append(await own_witness(gone))
    own = await own_values(client)
    for name, value in own.items():
        current[name] = max(value, current.get(name, 0))
    seen: dict[str, list[Witnessed]] = {}
    for _, records_of in records:
        for name, record in records_of:
            if (problem := record_problem(record, check_rate=margin is None)) is not None:
                raise Conflict(f"an implausible witness record of {name!r}: {problem}")
            seen.setdefault(name, []).append(record)
    if margin is None and not any(confirmed for confirmed, _ in records):
        raise Conflict(blind(gone))
    try:
        floors = plan(own, current, seen, drift=status.drift, instances=gone, margin=margin)
    except Implausible as exc:
        raise Conflict(str(exc)) from exc
    raised = await raise_all(client, sorted(floors.floors.items()))
    used = margin if margin is not None else max(floors.largest_margin,
                                                  base_margin(status.drift, gone))
    log.warning("resize without lost instance %d: %d floor(s) raised, largest jump %d, "
                "margin %d", gone, raised, floors.largest_jump, used)
    return LostFloors(len(floors.floors) + floors.kept, raised, floors.largest_jump, used)


def blind(instance: int) -> str:
    return (f"no surviving admin holds a witness record of instance {instance}, so nothing "
            "says what it issued: shrinking now would leave its numbers uncovered. Give the "
            'margin yourself ({"instances": ..., "retiring_lost": true, "margin": "<digits>"}: '
            "more than any name may have issued since anything known of it; see "
            "docs/operations.md)")


def lost_plan(states: Sequence[tuple[str, LayoutNode | BaseException]], target: int,
              ) -> tuple[str, bool]:
    """From what each admin said of its server (or the exception of one that did not
    answer): (the lost server's admin URL, whether the cluster is at ``target`` already).
    SeqgenError saying why the lost path does not apply (nothing changed)."""
    down = [who for who, answer in states if isinstance(answer, BaseException)]
    up = [(who, answer) for who, answer in states if not isinstance(answer, BaseException)]
    if not down:
        raise Conflict(f"cannot resize, this request changed nothing: every server answers, "
                       f"so instance {target + 1} is not lost: shrink without retiring_lost")
    if len(down) > 1:
        raise Unavailable(f"cannot resize, this request changed nothing: {len(down)} admins do "
                          f"not answer ({', '.join(down)}); retiring_lost retires exactly one")
    if target != len(states) - 1:
        raise Conflict(f"cannot resize, this request changed nothing: retiring_lost is for a "
                       f"shrink by one, to {len(states) - 1} servers")
    nodes = [answer for _, answer in up if isinstance(answer, LayoutNode)]
    pending = {node.resize_to for node in nodes if node.resize_to is not None}
    if any(node.instance == target + 1 for node in nodes):
        raise Conflict(f"cannot resize, this request changed nothing: instance {target + 1} "
                       f"answers; {down[0]} does not: bring it back (it is not the retiring "
                       "server)")
    lost = LayoutNode(down[0], target + 1, target + 1, True,
                      next(iter(pending)) if len(pending) == 1 else None)
    try:
        chosen = resize_plan([*nodes, lost], target)
    except LayoutError as exc:
        raise Conflict(f"cannot resize, this request changed nothing: {exc}") from exc
    if chosen.undo is not None or (not chosen.done and chosen.retire != down[0]):
        raise Conflict("cannot resize, this request changed nothing: an unfinished grow is "
                       "pending; retiring_lost only finishes a shrink")
    return down[0], chosen.done
