"""The recovery rule: how far to raise each floor of a server that may have lost numbers. Pure.

A server that lost its store (or runs on a restored backup) may have issued,
before the loss, numbers above anything it remembers. Its peers know two
things: their own current values, and what their witnesses last saw this
server issue (``Witnessed``: the value, the name's observed rate, and how old the
record may have been when the server was lost). For every name that some
witness saw or some peer holds:

    top    = max(every witnessed value, every peer's own current value)
    margin = the given margin, else
             max(10 x drift x instances, ceil(4 x rate x window_s))
             (rate and window_s from the witness that asks for the most;
             a name no witness saw has no rate: 10 x drift x instances)
    floor  = top + margin

and the floor is raised when it is above this server's own current value. With
a given margin, a name only this server holds is raised to its own value plus
the margin too (a restored backup with no peer left). A floor above ``CEILING``
(the top quarter of the range) is refused (``Implausible``): it would leave a
name almost no numbers, and no real load gets there. docs/operations.md
explains the rule and the risk that remains.

What a peer says is checked first (``record_problem``, ``value_problem``): a
value in the top quarter of the range, a rate that is not a finite number from
0 to ``MAX_RATE_PER_S``, a window that is not a finite number of seconds: the
peer's answer is implausible, and recovery does not use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from seqgen_common.limits import MAX_VALUE

__all__ = [
    "CEILING",
    "DRIFT_FACTOR",
    "MAX_RATE_PER_S",
    "RATE_FACTOR",
    "Implausible",
    "Plan",
    "Witnessed",
    "base_margin",
    "default_margin",
    "plan",
    "record_problem",
    "value_problem",
]

DRIFT_FACTOR: Final = 10
"""The margin covers at least this many times drift x instances."""
RATE_FACTOR: Final = 4
"""...and at least this many times what the name's observed rate issues in the witness's window."""
MAX_RATE_PER_S: Final = 1e8
"""No server issues more numbers per second for one name (a request is at most 1,000 numbers;
a server answers well under 100,000 requests a second). A faster "rate" is a jump, not a rate."""
CEILING: Final = MAX_VALUE - MAX_VALUE // 4
"""No value a peer reports, and no floor, goes above this (three quarters of the range)."""


class Implausible(ValueError):
    """A value, a rate or a floor no real cluster produces: recovery refuses to use it."""


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
    """Names whose own current value is already at or above their floor."""
    peer_only: int = 0
    """Names raised that no witness saw but a peer holds."""


def value_problem(value: int) -> str | None:
    """Why a value a peer reports is implausible (None: it is not)."""
    if not 0 <= value <= CEILING:
        return f"the value {value} is in the top quarter of the range (above {CEILING})"
    return None


def record_problem(record: Witnessed, *, check_rate: bool = True) -> str | None:
    """Why a witness record is implausible (None: it is not); ``check_rate`` False when a
    given margin replaces the rates."""
    problem = value_problem(record.value)
    if problem is not None:
        return problem
    if not math.isfinite(record.window_s) or record.window_s < 0:
        return f"the window {record.window_s!r} s is not a finite number of seconds"
    if check_rate and not (math.isfinite(record.rate) and 0 <= record.rate <= MAX_RATE_PER_S):
        return (f"the rate {record.rate!r} is not a number of numbers per second from 0 to "
                f"{MAX_RATE_PER_S:g}")
    return None


def base_margin(drift: int, instances: int) -> int:
    return DRIFT_FACTOR * drift * instances


def default_margin(drift: int, instances: int, seen: Sequence[Witnessed]) -> int:
    """The default margin of one name, from the records of it (plausible ones: see
    ``record_problem``)."""
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
    Implausible when a floor would go above ``CEILING``.
    """
    result = Plan()
    names = set(peers_current).union(name for name, seen in witnessed.items() if seen)
    if margin is not None:
        names.update(own)
    for name in sorted(names):
        seen = witnessed.get(name, ())
        current = own.get(name, 0)
        held = peers_current.get(name)
        top = max([held if held is not None else 0, *(record.value for record in seen)])
        if not seen and held is None:  # only this server holds it (a given margin)
            top = current
        used = margin if margin is not None else default_margin(drift, instances, seen)
        floor = top + used
        if floor > CEILING:
            raise Implausible(
                f"the floor of {name!r} would be {floor} ({top} + margin {used}), in the top "
                f"quarter of the range (above {CEILING}): a name there is nearly used up; "
                "check the peers' values (GET /witness, GET /sequences) or give a smaller margin")
        if floor <= current:
            result.kept += 1
            continue
        result.floors[name] = floor
        result.peer_only += 1 if not seen and held is not None else 0
        result.largest_jump = max(result.largest_jump, floor - current)
        result.largest_margin = max(result.largest_margin, used)
    return result
