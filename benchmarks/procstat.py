"""CPU time and memory of a process, read from /proc (Linux only).

``cpu_seconds(pid)`` is utime + stime from ``/proc/PID/stat``: the kernel sums
them over every thread of the process, dead or alive, so ZeroMQ's I/O threads
and the server's store writer are included. Reading it before and after a
timed window and dividing by the requests answered in between gives the CPU
time per request, a number that other processes competing for the cores barely
move (unlike throughput, which drops whenever the process under test waits for
a core).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["cpu_seconds", "rss_mb"]


@functools.cache
def _ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = text[text.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _ticks_per_s()


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for process {pid}")
