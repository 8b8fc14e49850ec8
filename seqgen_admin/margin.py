"""The recovery rule: how far to raise each floor of a server that may have lost numbers. Pure.

A server that lost its store (or runs on a restored backup) may have issued,
before the loss, numbers above anything it remembers. Its peers know two
things: their own current values, and what their witnesses last saw this
server issue (``Witnessed``: the value, the name's observed rate, and how old the
record may have been when the server was lost). For every name that some
witness saw:

    top    = max(every witnessed value, every peer's own current value)
    margin = the given margin, else
             max(10 x drift x instances, ceil(4 x rate x window_s))
             (rate and window_s from the witness that asks for the most)
    floor  = min(top + margin, MAX_VALUE)

and the floor is raised when it is above this server's own current value. A
name no witness saw keeps this server's own state. docs/operations.md explains
the rule and the risk that remains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from seqgen_common.limits import MAX_VALUE

__all__ = ["DRIFT_FACTOR", "RATE_FACTOR", "Plan", "Witnessed", "base_margin", "default_margin", "plan"]

DRIFT_FACTOR = 10
"""The margin covers at least this many times drift x instances."""
RATE_FACTOR = 4
"""...and at least this many times what the name's observed rate issues in the witness's window."""


@dataclass(frozen=True, slots=True)
class Witnessed:
    """One witness's record of one name of the lost server."""

    value: int
    rate: float
    """Numbers per second the witness observed (0 when unknown)."""
    window_s: float
    """How long the lost server may have issued after this record: at least the witness interval."""


@dataclass(slots=True)
class Plan:
    floors: dict[str, int] = field(default_factory=dict)
    """The floors to raise: name -> value."""
    largest_jump: int = 0
    """The largest floor minus the server's own current value."""
    largest_margin: int = 0
    """The largest margin used for a raised floor."""
    kept: int = 0
    """Witnessed names whose own current value is already at or above their floor."""


def base_margin(drift: int, instances: int) -> int:
    return DRIFT_FACTOR * drift * instances


def default_margin(drift: int, instances: int, seen: Sequence[Witnessed]) -> int:
    """The default margin of one name, from the records of it."""
    by_rate = max((record.rate * record.window_s for record in seen), default=0.0)
    return max(base_margin(drift, instances), math.ceil(RATE_FACTOR * by_rate))


def plan(
    own: Mapping[str, int],
    peers_current: Mapping[str, int],
    witnessed: Mapping[str, Sequence[Witnessed]],
    *,
    drift: int,
    instances: int,
    margin: int | None = None,
) -> Plan:
    """The floors that make the lost server issue nothing it may have issued before.

    ``own``: its current values; ``peers_current``: the highest current value
    of each name among the peers; ``witnessed``: every record of each name;
    ``margin``: the operator's margin, or None for the default rule.
    """
    result = Plan()
    for name, seen in witnessed.items():
        if not seen:
            continue
        top = max(peers_current.get(name, 0), *(record.value for record in seen))
        used = margin if margin is not None else default_margin(drift, instances, seen)
        floor = min(top + used, MAX_VALUE)
        current = own.get(name, 0)
        if floor <= current:
            result.kept += 1
            continue
        result.floors[name] = floor
        result.largest_jump = max(result.largest_jump, floor - current)
        result.largest_margin = max(result.largest_margin, used)
    return result
