"""Counting into the server's ``Counters`` (defined once, in seqgen_common.control)."""

from __future__ import annotations

from seqgen_common.control import Counters

__all__ = ["Counters", "record_store_write", "started_with"]


def started_with(skipped_at_start: int) -> Counters:
    """Fresh counters for a server that skipped ``skipped_at_start`` own numbers at start."""
    return Counters(skipped_at_start=skipped_at_start)


def record_store_write(counters: Counters, ok: bool, names: int, seconds: float) -> None:
    """One store transaction of ``names`` marks took ``seconds``; ``ok`` if it committed."""
    counters.store_writes += 1
    counters.store_write_seconds_sum += seconds
    counters.store_write_seconds_max = max(counters.store_write_seconds_max, seconds)
    if ok:
        counters.reservations_written += names
    else:
        counters.store_write_failures += 1
