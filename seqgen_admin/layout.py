"""Changing the number of servers (docs/protocol.md, "Changing the number of servers"). Pure.

``resize_plan`` checks that the servers an admin sees can go to ``target``
servers, and says which one retires (a shrink); ``boundaries`` computes, from
every server's current values, the floor of each name under the new layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seqgen_admin.margin import CEILING, Implausible, base_margin

__all__ = ["LayoutError", "LayoutNode", "ResizePlan", "boundaries", "resize_margin", "resize_plan",
           "waiting_to_join"]


class LayoutError(ValueError):
    """The servers cannot go to the asked number now; the message says what is missing."""


@dataclass(frozen=True, slots=True)
class LayoutNode:
    """What one server says of its layout."""

    who: str
    instance: int
    instances: int
    fenced: bool
    resize_to: int | None = None
    """The count of a resize begun on this server and not ended."""
    retired: bool = False


@dataclass(frozen=True, slots=True)
class ResizePlan:
    target: int
    old: int
    """The count the cluster had before this resize."""
    retire: str | None
    """Who retires (a shrink), else None."""
    done: bool
    """Every server is at ``target`` already, with no resize unfinished: nothing to do."""
    undo: int | None = None
    """The count of an unfinished resize that this request undoes (back to ``target``)."""


def resize_plan(nodes: Sequence[LayoutNode], target: int) -> ResizePlan:
    """The plan to go to ``target`` servers, or LayoutError saying why not (nothing changed)."""
    if target < 1:
        raise LayoutError(f"instances must be at least 1, got {target}")
    # a retired server still counts while its resize is unfinished (it retires in this one)
    active = [node for node in nodes if not node.retired or node.resize_to is not None]
    pending = sorted({node.resize_to for node in active if node.resize_to is not None})
    if len(pending) == 1 and pending[0] != target:
        return _undo(active, pending[0], target)
    if any(count != target for count in pending):
        raise LayoutError(
            f"a resize to {pending[0] if pending[0] != target else pending[-1]} servers is "
            "unfinished; finish it first (POST /resize with that number)")
    instances = sorted(node.instance for node in active)
    size = len(active)
    if instances != list(range(1, size + 1)):
        raise LayoutError(
            f"the servers have instances {instances}: a resize needs exactly one server for "
            f"each instance 1..{size} (a peer unreachable, or two servers with one instance?)")
    counts = {node.instances for node in active}
    if counts == {target} and not pending and size == target:
        return ResizePlan(target, target, None, done=True)
    if target == size:  # grow: instance ``size`` is the new server
        old = target - 1
        newcomer = next(node for node in active if node.instance == size)
        if not counts <= {old, target} or newcomer.instances != target:
            raise LayoutError(
                f"to grow to {target} servers, instances 1..{old} must run with --instances "
                f"{old} (or {target}) and the new server with --instance {target} --instances "
                f"{target}; they say {_said(active)}")
        if not (newcomer.fenced or pending):
            raise LayoutError(
                f"the new server ({newcomer.who}) is not fenced: it may issue numbers under "
                f"the new residues before the boundaries; start it with --fenced")
        return ResizePlan(target, old, None, done=False)
    if target == size - 1:  # shrink: instance ``size`` retires
        old = size
        if not counts <= {old, target}:
            raise LayoutError(f"to shrink to {target} servers every server must run with "
                              f"--instances {old} (or {target}); they say {_said(active)}")
        leaving = next(node for node in active if node.instance == size)
        if not pending and leaving.fenced and leaving.instances == size and all(
                node.instances == target for node in active if node is not leaving):
            # the cluster has ``target`` servers; the last is a new one waiting to join (a
            # grow not done yet, or undone): nothing to retire
            return ResizePlan(target, target, None, done=True)
        return ResizePlan(target, old, leaving.who, done=False)
    raise LayoutError(
        f"the cluster has {size} server(s) (instances 1..{size}); a resize changes that by one: "
        f"to grow to {size + 1}, first start instance {size + 1} (fenced) and peer it")


def _undo(active: Sequence[LayoutNode], pending: int, target: int) -> ResizePlan:
    """Back to ``target`` servers from an unfinished resize to ``pending``: only while no
    server of the old layout recorded the new one (LayoutError otherwise)."""
    size = len(active)
    old = size - 1 if pending == size else size  # a grow counts its new server
    if target != old or sorted(node.instance for node in active) != list(range(1, size + 1)):
        raise LayoutError(
            f"a resize to {pending} servers is unfinished; finish it (POST /resize with "
            f"{pending}) or undo it (POST /resize with {old})")
    committed = [node for node in active if node.instance <= old
                 and (node.retired or node.instances != old)]
    if committed:
        raise LayoutError(
            f"the unfinished resize to {pending} servers cannot be undone: {_said(committed)} recorded "
            f"the new layout already; finish it (POST /resize with {pending})")
    return ResizePlan(target, pending, None, done=False, undo=pending)


def _said(nodes: Iterable[LayoutNode]) -> str:
    return ", ".join(f"{node.who}: {node.instance} of {node.instances}" for node in nodes)


def resize_margin(drift: int, old: int, target: int) -> int:
    """The margin above every server's value: the drift part of the /recover rule."""
    return base_margin(drift, max(old, target))


def boundaries(values: Iterable[Iterable[tuple[str, int]]], margin: int) -> dict[str, int]:
    """Per name, the highest value any server holds plus ``margin``; Implausible above CEILING."""
    top: dict[str, int] = {}
    for server in values:
        for name, value in server:
            if value > top.get(name, -1):
                top[name] = value
    floors = {name: value + margin for name, value in top.items()}
    for name, floor in floors.items():
        if floor > CEILING:
            raise Implausible(f"the boundary of {name!r} would be {floor}, above {CEILING}")
    return floors


def waiting_to_join(instance: int, instances: int, peer_counts: Iterable[int]) -> str | None:
    """Why a server must not be unfenced by hand: it is a new server of a grow (its instance
    is above the count the peers serve with), else None."""
    below = sorted({count for count in peer_counts if count < instance <= instances})
    if not below:
        return None
    return (f"this server is instance {instance} of {instances} and its peers serve with "
            f"{below[0]} servers: it waits, fenced, for POST /resize with {instances} "
            "(unfenced now it could issue the numbers of another server)")
