"""Misconfigurations of a cluster, found from what each server says of itself. Pure logic.

Uniqueness holds while every server has a different ``instance`` and all have
the same ``instances`` (and each instance is in 1..instances). ``conflicts``
turns what this admin knows (its own server and the peers that answered) into
one sentence per problem, for people: one misconfigured server gives one
conflict, whichever admin looks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Node", "conflicts"]

THIS_SERVER = "this server"


@dataclass(frozen=True, slots=True)
class Node:
    """What one server says of itself (through its admin)."""

    who: str
    """``this server`` or the peer's URL."""
    instance: int
    instances: int


def conflicts(own: Node | None, peers: Sequence[Node]) -> list[str]:
    """Every misconfiguration among ``own`` (None while it does not answer) and ``peers``."""
    nodes = ([own] if own is not None else []) + list(peers)
    found: list[str] = []
    by_instance: defaultdict[int, list[str]] = defaultdict(list)
    for node in nodes:
        by_instance[node.instance].append(node.who)
    for instance, who in sorted(by_instance.items()):
        if len(who) > 1:
            found.append(f"instance {instance} is used by {len(who)} servers ({', '.join(who)}): "
                         "they can issue the same numbers; stop all but one and give the others "
                         "their own instance")
    counts = sorted({node.instances for node in nodes})
    if len(counts) > 1:
        said = ", ".join(f"{node.who}: {node.instances}" for node in nodes)
        found.append(f"the servers disagree on the number of instances ({said}): every server "
                     "must have the same --instances")
    reference = own.instances if own is not None else None
    for node in nodes:
        limit = reference if reference is not None else node.instances
        if not 1 <= node.instance <= limit:
            found.append(f"{node.who} reports instance {node.instance}, outside 1..{limit}")
    return found
