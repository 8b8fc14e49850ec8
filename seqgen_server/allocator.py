"""The allocation rule (docs/protocol.md, "Allocation") as pure logic: no I/O, no zmq, no clock.

Instance k of n issues only numbers v >= 1 with v % n == k % n. Per name the
server keeps ``cur``, the highest number it issued. For ``last`` = L and
``count`` = c::

    base = L   if L - cur > drift   (catch up past what another server issued)
           cur otherwise
    v1   = smallest own number > base;  v(i+1) = v(i) + n
    cur  = vc
"""

from __future__ import annotations

from typing import NamedTuple

from seqgen_common.errors import ExhaustedError
from seqgen_common.limits import MAX_VALUE

__all__ = ["Allocation", "Allocator", "next_own"]


def next_own(base: int, instance: int, instances: int) -> int:
    """The smallest number v > base with v % instances == instance % instances."""
    residue = instance % instances
    return base + 1 + (residue - base - 1) % instances


class Allocation(NamedTuple):
    first: int
    """The first number issued; the others follow at steps of ``instances``."""
    last: int
    """The last number issued: the new ``cur``."""
    skipped: int
    """Own numbers skipped by a catch-up (0 without one)."""


class Allocator:
    """The rule for one server: ``instance`` of ``instances`` with ``drift``."""

    __slots__ = ("_residue", "drift", "instance", "instances")

    def __init__(self, instance: int, instances: int, drift: int) -> None:
        if instances < 1 or not 1 <= instance <= instances:
            raise ValueError(f"instance must be in 1..{instances}, got {instance}")
        if drift < 0:
            raise ValueError(f"drift must be >= 0, got {drift}")
        self.instance = instance
        self.instances = instances
        self.drift = drift
        self._residue = instance % instances

    def relayout(self, instances: int) -> None:
        """Follow the residues of ``instances`` servers from now on (a resize, while fenced)."""
        if not 1 <= self.instance <= instances:
            raise ValueError(f"instance {self.instance} cannot be one of {instances}")
        self.instances = instances
        self._residue = self.instance % instances

    def allocate(self, cur: int, last: int, count: int) -> Allocation:
        """Where ``count`` numbers start and end; ExhaustedError if they pass MAX_VALUE."""
        n = self.instances
        catch_up = last - cur > self.drift
        base = last if catch_up else cur
        first = base + 1 + (self._residue - base - 1) % n
        end = first + (count - 1) * n
        if end > MAX_VALUE:
            raise ExhaustedError(
                f"{count} more number(s) would pass the maximum {MAX_VALUE}; nothing was issued"
            )
        skipped = 0
        if catch_up:
            # own numbers between cur and base that were jumped over
            skipped = (first - next_own(cur, self.instance, n)) // n
        return Allocation(first, end, skipped)
