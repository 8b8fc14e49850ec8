"""The timed window of one load worker: wait for the common start, then time and CPU."""

from __future__ import annotations

import os
import time

from benchmarks.commands import Result
from benchmarks.procstat import cpu_seconds

__all__ = ["Window", "sleep_until"]


def sleep_until(start: float) -> None:
    """Sleep until the wall-clock time ``start`` (at once if it has passed)."""
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)


class Window:
    """Opened when the load starts, closed into a Result: seconds and this process's CPU."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self.began = time.perf_counter()
        self._cpu = cpu_seconds(self._pid)

    def close(self, result: Result, end: float | None = None) -> Result:
        """Fill ``result.seconds`` (until ``end``, a perf_counter time, or now) and ``cpu_s``."""
        result.cpu_s = cpu_seconds(self._pid) - self._cpu
        result.seconds = (end if end is not None else time.perf_counter()) - self.began
        return result
