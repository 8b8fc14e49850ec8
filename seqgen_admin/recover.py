"""``POST /recover``: bring a fenced server back without issuing a number twice.

1. This server must be fenced (it issues nothing while the floors are
   computed). Every peer gives its own current values (``GET /sequences``)
   and what its witness saw of this server's instance (``GET /witness/{k}``).
   A peer that cannot (no answer, no witness, never saw this instance, an
   implausible answer: seqgen_admin.margin) stops the recovery (503) unless
   ``force``; a misconfigured cluster (two servers with one instance,
   different instance counts) stops it too (409). With no peer's part at all
   it stops (409), ``force`` or not, unless the operator gives the margin:
   a recovery never unfences blind.
2. The floors follow the rule of seqgen_admin.margin, raised in bulk
   (RaiseFloors requests under 64 KiB each, durable before each reply).
3. The fence is released, if steps 1 and 2 ended within the deadline and
   the operator's request is still there; otherwise the server stays fenced.

Floors only move forward and a floor already reached is kept, so a recovery
that failed half way (the server stays fenced) can simply be run again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import httpx
import msgspec

from seqgen_admin.cluster import THIS_SERVER, Node, conflicts
from seqgen_admin.control_client import ControlClient
from seqgen_admin.margin import (
    Implausible,
    Plan,
    Witnessed,
    base_margin,
    plan,
    record_problem,
    value_problem,
)
from seqgen_admin.peers import PeerError, PeerReader
from seqgen_common.control import MAX_FLOORS, MAX_PAGE, Status
from seqgen_common.errors import Conflict, Unavailable

__all__ = ["FRAME_BUDGET_BYTES", "Outcome", "PeerAnswer", "floor_batches", "recover"]

log = logging.getLogger(__name__)

FRAME_BUDGET_BYTES: Final = 48 * 1024
"""The most encoded floors per RaiseFloors frame (the control socket refuses frames over 64 KiB)."""


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    url: str
    answered: bool
    error: str | None = None
    witnessed: int = 0
    """Names of this instance in the peer's witness record."""


@dataclass(slots=True)
class Outcome:
    raised: int = 0
    largest_jump: int = 0
    margin: int = 0
    """The given margin, or the largest default margin used."""
    margin_given: bool = False
    kept: int = 0
    """Witnessed names already at or above their floor."""
    unwitnessed: int = 0
    """Names only this server holds: kept as they are (or raised by a given margin)."""
    forced: bool = False
    peers: list[PeerAnswer] = field(default_factory=list)


def floor_batches(floors: Iterable[tuple[str, int]], budget_bytes: int = FRAME_BUDGET_BYTES,
                  max_items: int = MAX_FLOORS) -> Iterator[list[tuple[str, int]]]:
    """The floors in batches whose RaiseFloors frame stays within ``budget_bytes``."""
    batch: list[tuple[str, int]] = []
    size = 0
    for name, value in floors:
        item = len(msgspec.json.encode((name, value))) + 1
        if batch and (size + item > budget_bytes or len(batch) >= max_items):
            yield batch
            batch, size = [], 0
        batch.append((name, value))
        size += item
    if batch:
        yield batch


class _Implausible(PeerError):
    """A peer answered, but with values or rates no real cluster produces."""


KnownNames = Callable[[int], Awaitable[int]]
"""How many names of an instance this admin's own witness record holds (0: none known)."""


def names_slack(known: int) -> int:
    """How many more names than this admin witnessed a peer may list (names made since the
    last poll)."""
    return max(1000, known // 10)


async def _ask(http: httpx.AsyncClient, url: str, instance: int, *, check_rate: bool,
               known_names: KnownNames | None,
               ) -> tuple[Node, dict[str, int], list[tuple[str, Witnessed]]]:
    """What one peer gives: who it is, its own values, its record of ``instance``."""
    reader = PeerReader(http, url)
    node = await reader.node()
    known = await known_names(node.instance) if known_names is not None else 0
    most = known + names_slack(known) if known else None
    current: dict[str, int] = {}
    async for items in reader.sequences():
        for name, value in items:
            if (problem := value_problem(value)) is not None:
                raise _Implausible(f"{url} gave an implausible value for {name!r}: {problem}")
            current[name] = value
        if most is not None and len(current) > most:
            raise _Implausible(f"{url} lists more than {most} names, but this host witnessed "
                               f"{known} of its server (instance {node.instance}): made-up names?")
    seen: list[tuple[str, Witnessed]] = []
    async for page in reader.witnessed(instance):
        if page.stale_s is None:
            raise PeerError(f"{url} has never witnessed instance {instance}")
        window_s = max(page.interval_s, page.stale_s)
        for item in page.items:
            record = Witnessed(item.value, item.rate, window_s)
            if (problem := record_problem(record, check_rate=check_rate)) is not None:
                hint = ' (or give {"margin": "<digits>"}: rates are then not used)' if (
                    "rate" in problem) else ""
                raise _Implausible(f"{url} gave an implausible record of {item.name!r}: "
                                   f"{problem}{hint}")
            seen.append((item.name, record))
    return node, current, seen


async def own_values(control: ControlClient) -> dict[str, int]:
    """Every name of this admin's server with its current value, page by page."""
    own: dict[str, int] = {}
    cursor: str | None = None
    while True:
        mine = await control.list_sequences("", cursor, MAX_PAGE)
        own.update((info.name, info.current) for info in mine.items)
        if mine.next_cursor is None:
            return own
        cursor = mine.next_cursor


def _blind(outcome: Outcome) -> Conflict:
    asked = (f"none of the {len(outcome.peers)} peer(s) gave its record" if outcome.peers
             else "this admin has no peers (--peer)")
    return Conflict(
        f"no peer's record of this server: {asked}, so nothing says what it issued before; "
        "recovering now would unfence it blind and repeat numbers. Bring a peer back, or give "
        'the margin yourself: {"force": true, "margin": "<digits>"}, more than any name may have '
        "issued since its last record (peak rate x time since the backup or the loss, x 4; see "
        "docs/operations.md). Nothing changed: the server stays fenced")


async def recover(control: ControlClient, http: httpx.AsyncClient, peers: Iterable[str], *,
                  margin: int | None, force: bool, deadline_s: float,
                  still_wanted: Callable[[], Awaitable[bool]] | None = None,
                  known_names: KnownNames | None = None) -> Outcome:
    """Run the recovery; Conflict (409) or Unavailable (503) when it must not go on.

    Everything before the release of the fence happens within ``deadline_s``; the fence
    is released only then, and only while ``still_wanted()`` (the operator's request is
    still there). ``known_names``: what this admin witnessed of each peer, to catch a peer
    that lists names its server never had."""
    status = await control.status()
    if not status.fenced:
        raise Conflict("this server is not fenced: recovery raises floors of a server that issues "
                       "nothing; POST /fence first (or /unfence is all you need if its store is intact)")
    outcome = Outcome(margin_given=margin is not None, forced=force)
    try:
        async with asyncio.timeout(deadline_s):
            floors = await _raise(control, http, peers, status, margin=margin, force=force,
                                  outcome=outcome, still_wanted=still_wanted,
                                  known_names=known_names)
    except TimeoutError as exc:
        raise Unavailable(f"the recovery did not finish within {deadline_s:g} s (--recover-timeout); "
                          "the server stays fenced (floors raised so far are kept: they only move "
                          "forward); POST /recover again") from exc
    await _check_wanted(still_wanted, outcome)
    await control.unfence()
    log.warning("recovered: %d floor(s) raised (largest jump %d, margin %s), %d kept, %d held "
                "only by a peer, %d not witnessed; fence released", outcome.raised,
                outcome.largest_jump,
                outcome.margin if margin is not None else f"up to {outcome.margin} (default rule)",
                outcome.kept, floors.peer_only, outcome.unwitnessed)
    return outcome


async def _check_wanted(still_wanted: Callable[[], Awaitable[bool]] | None,
                        outcome: Outcome) -> None:
    """Unavailable when the operator's request was given up (nothing more is changed)."""
    if still_wanted is not None and not await still_wanted():
        log.warning("recovery: the request was given up; the server stays fenced (%d floor(s) "
                    "raised)", outcome.raised)
        raise Unavailable("the request was given up: the server stays fenced")


async def _raise(control: ControlClient, http: httpx.AsyncClient, peers: Iterable[str],
                 status: Status, *, margin: int | None, force: bool, outcome: Outcome,
                 still_wanted: Callable[[], Awaitable[bool]] | None,
                 known_names: KnownNames | None) -> Plan:
    """Collect the peers' parts and raise the floors (the fence stays)."""
    instance, instances, drift = status.instance, status.instances, status.drift
    peers_current: dict[str, int] = {}
    witnessed: defaultdict[str, list[Witnessed]] = defaultdict(list)
    nodes: list[Node] = []
    for url in peers:
        try:
            node, current, seen = await _ask(http, url, instance, check_rate=margin is None,
                                             known_names=known_names)
        except PeerError as exc:
            outcome.peers.append(PeerAnswer(url, False, str(exc)))
            if not force:
                raise Unavailable(
                    f"peer {url} cannot give its part ({exc}); fix it, or POST /recover with "
                    '{"force": true} to recover without it (see docs/operations.md)') from exc
            log.warning("recovery goes on without %s (force): %s", url, exc)
            continue
        nodes.append(node)
        for name, value in current.items():
            if value > peers_current.get(name, 0):
                peers_current[name] = value
        for name, record in seen:
            witnessed[name].append(record)
        outcome.peers.append(PeerAnswer(url, True, witnessed=len(seen)))
    if not nodes and margin is None:
        raise _blind(outcome)
    found = conflicts(Node(THIS_SERVER, instance, instances), nodes)
    if found and not force:
        raise Conflict("the cluster is misconfigured: " + "; ".join(found))
    own = await own_values(control)
    try:
        floors = plan(own, peers_current, witnessed, drift=drift, instances=instances,
                      margin=margin)
    except Implausible as exc:
        raise Conflict(f"{exc}. Nothing changed: the server stays fenced") from exc
    await _check_wanted(still_wanted, outcome)  # the peers took long: is anyone still asking?
    for batch in floor_batches(floors.floors.items()):
        done = await control.raise_floors(batch)
        outcome.raised += done.raised
        outcome.kept += done.kept
    outcome.kept += floors.kept
    outcome.largest_jump = floors.largest_jump
    outcome.margin = margin if margin is not None else max(floors.largest_margin,
                                                           base_margin(drift, instances))
    outcome.unwitnessed = sum(1 for name in own if name not in witnessed
                              and name not in peers_current)
    return floors
