"""``POST /resize``: change the number of servers while the cluster serves.

docs/protocol.md ("Changing the number of servers") gives the rule and why no
number repeats. The admin that receives the request coordinates; every admin
(itself included) runs the steps on its own server (``run_step``, behind
``POST /resize/step`` for the peers):

``state``   what the server says of its layout (nothing changes);
``prepare`` while the cluster still serves: this admin reads every server and
            watches their change feeds (seqgen_admin.resize_prep);
``preraise`` still serving: it raises its server's floors to every highest value
            known + the margin (after that, most names need no fenced write);
``drain``   still serving, once every server was pre-raised: it reads the feeds;
``begin``   the fence and the unfinished resize, durable;
``floors``  this admin drains the feeds (all fenced now: only what changed since
            ``prepare``; without a preparation it reads every server in full),
            computes the boundaries and raises its server's floors to them;
``commit`` the new layout (or the retirement) recorded by the server;
``end``    the resize finished there; the fence released unless retired.
``witnessed``, ``lostfloors``  a shrink whose retiring server is lost
           (seqgen_admin.resize_lost, seqgen_admin.resize_retire).
``abort``  (an undo: ``POST /resize`` with the count from before an unfinished
           resize) the resize forgotten there and the fence released, unless
           this server is the new one of a grow (it waits again). Refused where
           the new layout was recorded already (seqgen_admin.layout).

The coordinator checks every server first (all reachable, a layout that can
go to the asked count: seqgen_admin.layout) and changes nothing when one
check fails. A step that fails stops the resize where it is: the servers stay
fenced, each admin's ``/cluster`` shows ``resize_to``, and the same request
finishes it (every step is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import httpx
import msgspec

from seqgen_admin.cluster import THIS_SERVER
from seqgen_admin.control_client import ControlClient
from seqgen_admin.derive import read_answer
from seqgen_admin.layout import LayoutError, LayoutNode, boundaries, resize_margin, resize_plan
from seqgen_admin.margin import Implausible
from seqgen_admin.messages import StepAnswer
from seqgen_admin.peers import PeerError, PeerReader, peer_value
from seqgen_admin.recover import own_values
from seqgen_admin.resize_lost import OwnWitness, raise_lost, witnessed
from seqgen_admin.resize_prep import (
    FeedLost,
    Preparations,
    Prepared,
    prepare,
    preraise,
    raise_all,
    settle,
)
from seqgen_common.errors import Conflict, SeqgenError, Unavailable

__all__ = ["STEP_TIMEOUT_S", "Part", "ResizeOutcome", "Step", "coordinate",
           "parts", "run_step"]

log = logging.getLogger(__name__)

Step = Literal["state", "prepare", "preraise", "drain", "begin", "floors", "commit", "end",
               "abort", "witnessed", "lostfloors"]
STEP_TIMEOUT_S: Final = 600.0
"""The longest one step may take at a peer (``floors`` reads every server: large stores)."""


async def _peer_values(http: httpx.AsyncClient, url: str) -> tuple[int, list[tuple[str, int]]]:
    """The peer's instance and every value its server holds."""
    reader = PeerReader(http, url)
    instance = (await reader.node()).instance
    values: list[tuple[str, int]] = []
    async for items in reader.sequences():
        values.extend(items)
    return instance, values


async def _read_all(client: ControlClient, http: httpx.AsyncClient, peers: Sequence[str],
                    ) -> tuple[dict[str, int], list[list[tuple[str, int]]], set[int]]:
    """Every server in full: this one's values, every server's, the instances read."""
    own_read = asyncio.ensure_future(own_values(client))
    try:
        theirs = await asyncio.gather(*(_peer_values(http, url) for url in peers))
    except BaseException:
        own_read.cancel()
        raise
    own = await own_read
    read: list[list[tuple[str, int]]] = [list(own.items()), *(values for _, values in theirs)]
    return own, read, {k for k, _ in theirs}


async def _settled(client: ControlClient, http: httpx.AsyncClient, prepared: Prepared | None,
                   changes: dict[str, int]) -> Prepared | None:
    """The preparation brought up to date under the fence (what changed since into
    ``changes``), or None (then read in full)."""
    if prepared is None:
        return None
    began = time.monotonic()
    try:
        changed = await settle(client, http, prepared, changes)
    except (FeedLost, SeqgenError) as exc:
        log.warning("resize: the feeds cannot say what changed since prepare (%s); reading "
                    "every server in full under the fence", exc)
        return None
    log.info("resize: %d change(s) since prepare drained in %.3f s", changed,
             time.monotonic() - began)
    return prepared


async def _raise_boundaries(client: ControlClient, http: httpx.AsyncClient, peers: Sequence[str],
                            *, instances: int, margin: int, servers: int,
                            prepared: Prepared | None = None) -> tuple[int, int, int, bool]:
    """Read every server (or what changed since ``prepared``), raise this one's floors to the
    boundaries; (names, raised, jump, whether the preparation was used)."""
    status = await client.status()
    if status.resize_to is None and status.instances == instances:
        return 0, 0, 0, False  # another coordinator finished here already: its boundaries hold
    if status.resize_to != instances:
        raise Conflict(f"no resize to {instances} servers is begun on this server")
    changes: dict[str, int] = {}
    settled = await _settled(client, http, prepared, changes)
    if settled is not None:
        instances_read = settled.instances_read()
    else:
        own, read, instances_read = await _read_all(client, http, peers)
    missing = set(range(1, servers + 1)) - {status.instance, *instances_read}
    if missing:
        raise Conflict(f"this admin does not read instance(s) {sorted(missing)} of the "
                       f"resize's {servers}: every admin must be peered with every other")
    try:
        if settled is not None:  # a floor this server holds already needs no write
            write, names, jump = settled.fenced(changes, margin)
        else:
            floors = boundaries(read, margin)
            write, names = list(floors.items()), len(floors)
            jump = max((floor - own.get(name, 0) for name, floor in floors.items()), default=0)
    except Implausible as exc:
        raise Conflict(str(exc)) from exc
    raised = await raise_all(client, sorted(write))
    return names, raised, jump, settled is not None


async def run_step(client: ControlClient, http: httpx.AsyncClient, peers: Sequence[str], step: Step,
                   *, instances: int, retire: bool = False, margin: int = 0, servers: int = 0,
                   token: str = "", quiet: Callable[[str], None] | None = None,
                   preparations: Preparations | None = None, lost: str = "",
                   margin_given: bool = False, own_witness: OwnWitness | None = None,
                   ) -> StepAnswer:
    """One step on this admin's own server; SeqgenError (Conflict for a step out of order).
    ``quiet`` pauses this admin's polling of its peers for the fenced steps of a resize;
    ``preparations`` keeps what ``prepare`` read for the ``floors`` step of the same
    ``token``; ``lost``, ``margin_given``, ``own_witness``: steps ``witnessed`` and
    ``lostfloors`` (seqgen_admin.resize_lost)."""
    if quiet is not None and step not in ("state", "witnessed"):
        quiet(step)  # from ``prepare`` on: the peers' polling would compete with the steps
    names = raised = jump = used_margin = seen = 0
    used = False
    ready = preparations.get(token, instances) if preparations is not None else None
    if step == "prepare" and preparations is not None and token:
        preparations.clear()
        preparations.put(await prepare(client, http, peers, token=token, instances=instances))
    elif step == "preraise" and ready is not None:
        raised = await preraise(client, http, ready, margin)
    elif step == "drain" and ready is not None:
        await settle(client, http, ready)
        ready.set_base()
    elif step == "begin":
        await client.begin_resize(instances)
    elif step == "floors":
        names, raised, jump, used = await _raise_boundaries(client, http, peers, instances=instances,
                                                      margin=margin, servers=servers,
                                                      prepared=ready)
    elif step == "witnessed":
        seen = await witnessed(own_witness, instances + 1)
    elif step == "lostfloors":
        done = await raise_lost(client, http, peers, own_witness, instances=instances, lost=lost,
                                margin=margin if margin_given else None)
        names, raised, jump, used_margin = done.names, done.raised, done.largest_jump, done.margin
    elif step == "commit":
        await client.commit_resize(instances, retire)
    elif step in ("end", "abort"):
        if preparations is not None:
            preparations.clear()
        if step == "end":
            await client.end_resize(instances)
        else:  # ``servers``: the count the cluster goes back to
            await client.abort_resize(instances, (await client.status()).instance > servers)
    status = await client.status()
    return StepAnswer(instance=status.instance, instances=status.instances,
                      fenced=status.fenced, resize_to=status.resize_to,
                      retired=status.retired, drift=status.drift, names=names, raised=raised,
                      largest_jump=jump, prepared=used, witnessed=seen, margin=used_margin)


class Part(Protocol):
    """One server of the resize, through its admin."""

    who: str

    async def step(self, step: Step, *, instances: int, retire: bool = False, margin: int = 0,
                   servers: int = 0, token: str = "", lost: str = "",
                   margin_given: bool = False) -> StepAnswer: ...


@dataclass
class _Local:
    client: ControlClient
    http: httpx.AsyncClient
    peers: Sequence[str]
    quiet: Callable[[str], None] | None
    preparations: Preparations | None
    own_witness: OwnWitness | None = None
    who: str = THIS_SERVER

    async def step(self, step: Step, *, instances: int, retire: bool = False, margin: int = 0,
                   servers: int = 0, token: str = "", lost: str = "",
                   margin_given: bool = False) -> StepAnswer:
        return await run_step(self.client, self.http, self.peers, step, instances=instances,
                              retire=retire, margin=margin, servers=servers, token=token,
                              quiet=self.quiet, preparations=self.preparations, lost=lost,
                              margin_given=margin_given, own_witness=self.own_witness)


@dataclass
class _Remote:
    http: httpx.AsyncClient
    who: str

    async def step(self, step: Step, *, instances: int, retire: bool = False, margin: int = 0,
                   servers: int = 0, token: str = "", lost: str = "",
                   margin_given: bool = False) -> StepAnswer:
        body: dict[str, object] = {"step": step, "instances": instances, "retire": retire, "margin": margin,
                "servers": servers, "token": token}
        if lost:  # only a lost shrink's steps carry these
            body.update(lost=lost, margin_given=margin_given)
        try:
            response = await self.http.post(f"{self.who}/resize/step", json=body,
                                            timeout=STEP_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise PeerError(f"{self.who}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if response.status_code != 200:
            detail = _detail(response.content)
            if response.status_code == 409:
                raise Conflict(f"{self.who}: {detail}")
            raise PeerError(f"{self.who}: HTTP {response.status_code} {detail}".rstrip())
        try:
            return read_answer(response.content, StepAnswer, peer_value)
        except (msgspec.DecodeError, ValueError) as exc:
            raise PeerError(f"{self.who}: unreadable answer: {exc}") from exc


def _detail(content: bytes) -> str:
    try:
        return str(msgspec.json.decode(content, type=dict[str, Any]).get("detail", ""))[:500]
    except (msgspec.DecodeError, ValueError):
        return ""


def parts(client: ControlClient, http: httpx.AsyncClient, peers: Sequence[str],
          quiet: Callable[[str], None] | None = None,
          preparations: Preparations | None = None, *,
          own_witness: OwnWitness | None = None) -> list[Part]:
    """This admin's server and every peer's."""
    return [_Local(client, http, peers, quiet, preparations, own_witness),
            *(_Remote(http, url) for url in peers)]


@dataclass(slots=True)
class ResizeOutcome:
    instances: int
    old: int
    done_already: bool
    names: int = 0
    largest_jump: int = 0
    margin: int = 0
    fenced_s: float = 0.0
    """From the first ``begin`` to the last ``end``: how long the servers were fenced."""
    prepared: bool = False
    """Every ``floors`` step read only what changed since ``prepare``."""
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds each step took (on every server at once)."""
    retired: str | None = None
    undone: int | None = None
    """The count of the unfinished resize this request undid."""
    servers: list[tuple[str, StepAnswer]] = field(default_factory=list)


async def _each(what: str, steps: Sequence[tuple[Part, Any]],
                timings: dict[str, float] | None = None) -> list[StepAnswer]:
    """Run the steps at once; SeqgenError naming every server where one failed. The time
    taken goes into ``timings`` under ``what``."""
    began = time.monotonic()
    results = await asyncio.gather(*(work for _, work in steps), return_exceptions=True)
    if timings is not None:
        timings[what] = round(time.monotonic() - began, 3)
    log.info("resize step %s on %d server(s): %.3f s", what, len(steps), time.monotonic() - began,
             extra={"step": what, "seconds": round(time.monotonic() - began, 3)})
    failed = [(part.who, result) for (part, _), result in zip(steps, results, strict=True)
              if isinstance(result, BaseException)]
    for _, result in failed:
        if not isinstance(result, Exception):
            raise result
    if failed:
        said = "; ".join(f"{who}: {exc}" for who, exc in failed)
        kind = Conflict if all(isinstance(exc, Conflict) for _, exc in failed) else Unavailable
        raise kind(f"{what} failed ({said})")
    return [result for result in results if isinstance(result, StepAnswer)]


async def _given(answer: StepAnswer | BaseException) -> StepAnswer:
    if isinstance(answer, BaseException):
        raise answer
    return answer


async def coordinate(servers: Sequence[Part], target: int) -> ResizeOutcome:
    """Resize to ``target`` servers; Conflict (409) or Unavailable (503) saying what is missing.

    Before step ``begin`` a failure changes nothing; after it the servers stay fenced and
    the same call finishes the resize.
    """
    asked = await asyncio.gather(*(p.step("state", instances=target) for p in servers),
                                 return_exceptions=True)
    pending = sorted({a.resize_to for a in asked if isinstance(a, StepAnswer) and a.resize_to})
    try:
        states = await _each("asking every server", [(p, _given(a)) for p, a in
                                                     zip(servers, asked, strict=True)])
    except SeqgenError as exc:
        remains = (f"; a resize to {pending[0]} servers is unfinished (those servers stay "
                   "fenced): bring back what does not answer and send the request again"
                   if pending else "")
        raise type(exc)(f"cannot resize, this request changed nothing: {exc.message}"
                        f"{remains}") from exc
    nodes = [LayoutNode(p.who, s.instance, s.instances, s.fenced, s.resize_to, s.retired)
             for p, s in zip(servers, states, strict=True)]
    try:
        plan = resize_plan(nodes, target)
    except LayoutError as exc:
        raise Conflict(f"cannot resize, this request changed nothing: {exc}") from exc
    outcome = ResizeOutcome(target, plan.old, plan.done, retired=plan.retire, undone=plan.undo)
    if plan.done:
        outcome.servers = [(p.who, s) for p, s in zip(servers, states, strict=True)]
        return outcome
    taking = [p for p, s in zip(servers, states, strict=True) if not s.retired or s.resize_to]
    if plan.undo is not None:
        log.warning("undoing the unfinished resize to %d servers: back to %d", plan.undo, target)
        undone = await _each("abort", [(p, p.step("abort", instances=plan.undo, servers=target))
                                       for p in taking])
        outcome.servers = [(p.who, answer) for p, answer in zip(taking, undone, strict=True)]
        return outcome
    staying = [p for p in taking if p.who != plan.retire]
    log.warning("resize %d -> %d servers: fencing %d server(s)", plan.old, target, len(taking))
    unfinished = (f"; the resize to {target} servers is unfinished (the servers stay fenced): "
                  "send the same request again to finish it")
    token = secrets.token_hex(8)
    outcome.margin = resize_margin(max(s.drift for s in states), plan.old, target)
    try:  # while the cluster serves: what the fence then need not wait for
        for step in ("prepare", "preraise", "drain"):
            await _each(step, [(p, p.step(step, instances=target, token=token,
                                           margin=outcome.margin)) for p in staying],
                        outcome.steps)
    except SeqgenError as exc:
        log.warning("resize: the work before the fence failed (%s); what it did not do is "
                    "done under the fence", exc)
    fenced_at = time.monotonic()
    try:
        await _each("begin", [(p, p.step("begin", instances=target)) for p in taking],
                    outcome.steps)
        raised = await _each("floors", [(p, p.step("floors", instances=target,
                                                   margin=outcome.margin, servers=len(taking),
                                                   token=token))
                                        for p in staying], outcome.steps)
        await _each("commit", [(p, p.step("commit", instances=target,
                                          retire=p.who == plan.retire)) for p in taking],
                    outcome.steps)
        ended = await _each("end", [(p, p.step("end", instances=target)) for p in taking],
                            outcome.steps)
    except SeqgenError as exc:
        raise type(exc)(exc.message + unfinished) from exc
    outcome.fenced_s = time.monotonic() - fenced_at
    outcome.prepared = all(answer.prepared for answer in raised)
    outcome.names = max((answer.names for answer in raised), default=0)
    outcome.largest_jump = max((answer.largest_jump for answer in raised), default=0)
    outcome.servers = [(p.who, answer) for p, answer in zip(taking, ended, strict=True)]
    log.warning("resized to %d servers: %d name(s), largest jump %d, margin %d, fenced %.3f s "
                "(%s)", target, outcome.names, outcome.largest_jump, outcome.margin,
                outcome.fenced_s, "read before the fence" if outcome.prepared
                else "read in full under the fence")
    return outcome
