"""``POST /recover``: bring a fenced server back without issuing a number twice.

1. This server must be fenced (it issues nothing while the floors are
   computed). Every peer gives its own current values (``GET /sequences``)
   and what its witness saw of this server's instance (``GET /witness/{k}``).
   A peer that cannot (no answer, no witness, never saw this instance) stops
   the recovery (503) unless ``force``; a misconfigured cluster (two servers
   with one instance, different instance counts) stops it too (409).
2. The floors follow the rule of seqgen_admin.margin, raised in bulk
   (RaiseFloors requests under 64 KiB each, durable before each reply).
3. The fence is released.

Floors only move forward and a floor already reached is kept, so a recovery
that failed half way (the server stays fenced) can simply be run again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import httpx
import msgspec

from seqgen_admin.cluster import THIS_SERVER, Node, conflicts
from seqgen_admin.control_client import ControlClient
from seqgen_admin.margin import Witnessed, base_margin, plan
from seqgen_admin.peers import PeerError, PeerReader, failure
from seqgen_common.control import MAX_FLOORS, MAX_PAGE
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
    """Names of this server that no peer witnessed: kept as they are."""
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


async def _readyz(http: httpx.AsyncClient, url: str) -> Node:
    try:
        response = await http.get(f"{url}/readyz")
        body = response.json()
        if response.status_code != 200:
            raise PeerError(f"{url}/readyz: HTTP {response.status_code} {body.get('detail', '')}")
        return Node(url, int(body["instance"]), int(body["instances"]))
    except httpx.HTTPError as exc:
        raise PeerError(failure(f"{url}/readyz", exc)) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PeerError(f"{url}/readyz: {type(exc).__name__}: {exc}") from exc


async def recover(control: ControlClient, http: httpx.AsyncClient, peers: Iterable[str], *,
                  margin: int | None, force: bool) -> Outcome:
    """Run the recovery; Conflict (409) or Unavailable (503) when it must not go on."""
    status = await control.status()
    if not status.fenced:
        raise Conflict("this server is not fenced: recovery raises floors of a server that issues "
                       "nothing; POST /fence first (or /unfence is all you need if its store is intact)")
    instance, instances = status.instance, status.instances
    outcome = Outcome(margin_given=margin is not None, forced=force)
    peers_current: dict[str, int] = {}
    witnessed: defaultdict[str, list[Witnessed]] = defaultdict(list)
    nodes: list[Node] = []
    for url in peers:
        reader = PeerReader(http, url)
        try:
            node = await _readyz(http, url)
            current: dict[str, int] = {}
            async for items in reader.sequences():
                current.update(items)
            seen: list[tuple[str, Witnessed]] = []
            async for page in reader.witnessed(instance):
                if page.stale_s is None:
                    raise PeerError(f"{url} has never witnessed instance {instance}")
                window_s = max(page.interval_s, page.stale_s)
                seen += [(item.name, Witnessed(int(item.value), item.rate, window_s))
                         for item in page.items]
        except (PeerError, ValueError) as exc:
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
    found = conflicts(Node(THIS_SERVER, instance, instances), nodes)
    if found and not force:
        raise Conflict("the cluster is misconfigured: " + "; ".join(found))

    own: dict[str, int] = {}
    cursor: str | None = None
    while True:
        mine = await control.list_sequences("", cursor, MAX_PAGE)
        own.update((info.name, info.current) for info in mine.items)
        if mine.next_cursor is None:
            break
        cursor = mine.next_cursor
    floors = plan(own, peers_current, witnessed, drift=status.drift, instances=instances,
                  margin=margin)
    for batch in floor_batches(floors.floors.items()):
        done = await control.raise_floors(batch)
        outcome.raised += done.raised
        outcome.kept += done.kept
    outcome.kept += floors.kept
    outcome.largest_jump = floors.largest_jump
    outcome.margin = margin if margin is not None else max(floors.largest_margin,
                                                           base_margin(status.drift, instances))
    outcome.unwitnessed = sum(1 for name in own if name not in witnessed)
    await control.unfence()
    log.warning("recovered: %d floor(s) raised (largest jump %d, margin %s), %d kept, %d not "
                "witnessed; fence released", outcome.raised, outcome.largest_jump,
                outcome.margin if margin is not None else f"up to {outcome.margin} (default rule)",
                outcome.kept, outcome.unwitnessed)
    return outcome
