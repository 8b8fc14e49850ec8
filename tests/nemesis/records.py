"""What a nemesis client process records about each call, and how it is read back."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec


class WorkerConfig(msgspec.Struct, frozen=True):
    label: str
    kind: Literal["sync", "async", "node-promise", "node-callback"]
    """``Client`` threads, ``AsyncClient`` tasks, or the Node.js client's Promise or callback
    calls (tests/nemesis/worker.js)."""
    endpoints: list[str]
    name: str
    rate_per_s: float
    """Calls per second of the whole process (spread over its threads or tasks)."""
    concurrency: int
    """Threads sharing one Client, or tasks sharing one AsyncClient."""
    out: str
    max_duration_s: float
    """The process stops by itself after this, whatever happens."""


class CallRecord(msgspec.Struct, array_like=True, frozen=True):
    """One call: started and ended (time.monotonic, the same clock in every namespace)."""

    t0: float
    t1: float
    value: int | None
    """The number received; None when the call failed."""
    error: str | None = None
    """The error code (or exception type) of a failed call."""


_decoder = msgspec.json.Decoder(CallRecord)


def read_calls(path: Path) -> list[CallRecord]:
    """Every complete line of a worker's output (a line being written is left for later)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    calls = []
    for line in data.split(b"\n")[:-1]:
        if line:
            calls.append(_decoder.decode(line))
    return calls
