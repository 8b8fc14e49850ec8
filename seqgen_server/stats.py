"""Counters a server keeps since it started; reported through the control socket."""

from __future__ import annotations

from collections import Counter

from seqgen_common.control import Counters

__all__ = ["Stats"]


class Stats:
    __slots__ = (
        "catchup_skipped",
        "catchups",
        "control_requests",
        "disk_waits",
        "numbers_issued",
        "requests",
        "reservations_written",
        "skipped_at_start",
        "store_write_failures",
        "store_write_seconds_max",
        "store_write_seconds_sum",
        "store_writes",
    )

    def __init__(self, skipped_at_start: int = 0) -> None:
        self.requests: Counter[str] = Counter()
        self.numbers_issued = 0
        self.catchups = 0
        self.catchup_skipped = 0
        self.skipped_at_start = skipped_at_start
        self.reservations_written = 0
        self.store_writes = 0
        self.store_write_failures = 0
        self.store_write_seconds_sum = 0.0
        self.store_write_seconds_max = 0.0
        self.disk_waits = 0
        self.control_requests = 0

    def store_write(self, ok: bool, names: int, seconds: float) -> None:
        self.store_writes += 1
        self.store_write_seconds_sum += seconds
        self.store_write_seconds_max = max(self.store_write_seconds_max, seconds)
        if ok:
            self.reservations_written += names
        else:
            self.store_write_failures += 1

    def snapshot(self) -> Counters:
        return Counters(
            requests=dict(self.requests),
            numbers_issued=self.numbers_issued,
            catchups=self.catchups,
            catchup_skipped=self.catchup_skipped,
            skipped_at_start=self.skipped_at_start,
            reservations_written=self.reservations_written,
            store_writes=self.store_writes,
            store_write_failures=self.store_write_failures,
            store_write_seconds_sum=self.store_write_seconds_sum,
            store_write_seconds_max=self.store_write_seconds_max,
            disk_waits=self.disk_waits,
            control_requests=self.control_requests,
        )
