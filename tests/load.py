"""A load client for fault tests, run as a separate process, plus its checker.

``python -m tests.load [--count N] [--pause S] [--until FILE] OUT NAME SECONDS ENDPOINT...``
sends requests round-robin (Lazy Pirate REQ sockets, 0.5 s timeout, each
endpoint once per attempt) for SECONDS (or until FILE exists), asking for N
numbers each (default 1) and pausing S seconds after each (default 0: full
rate), and writes one JSON document to OUT: how many requests it attempted and,
per endpoint, every number acknowledged, in the order received.
``check`` then reports duplicates and order violations over many such files.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import msgspec
import zmq

TIMEOUT_MS = 500


class LoadResult(msgspec.Struct):
    attempted: int
    errors: dict[str, int]
    acked: dict[str, list[int]]
    """endpoint -> numbers acknowledged by it, in the order received"""


_reply = msgspec.json.Decoder(list[str | None])


def hammer(out: Path, name: str, seconds: float, endpoints: list[str], count: int = 1,
           pause_s: float = 0.0, until: Path | None = None) -> None:
    ctx = zmq.Context()
    socks: dict[str, zmq.Socket[bytes]] = {}

    def sock_for(ep: str) -> zmq.Socket[bytes]:
        if ep not in socks:
            s: zmq.Socket[bytes] = ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ep)
            socks[ep] = s
        return socks[ep]

    result = LoadResult(attempted=0, errors={}, acked={ep: [] for ep in endpoints})
    last = 0
    i = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until is not None and until.exists()):
        if pause_s:
            time.sleep(pause_s)
        ep = endpoints[i % len(endpoints)]
        i += 1
        result.attempted += 1
        s = sock_for(ep)
        body = [name, str(last)] if count == 1 else [name, str(last), count]
        s.send(msgspec.json.encode(body))
        if not s.poll(TIMEOUT_MS):
            s.close()  # Lazy Pirate: a REQ socket that timed out is thrown away
            del socks[ep]
            result.errors["timeout"] = result.errors.get("timeout", 0) + 1
            continue
        items = _reply.decode(s.recv())
        if items[0] is not None:
            result.errors[items[0]] = result.errors.get(items[0], 0) + 1
            continue
        values = [int(v) for v in items[1:] if v is not None]
        result.acked[ep].extend(values)
        last = max(last, values[-1])
    out.write_bytes(msgspec.json.encode(result))
    ctx.destroy(linger=0)


@dataclass
class Report:
    attempted: int = 0
    acknowledged: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    all_numbers: list[int] = field(default_factory=list)


def check(paths: list[Path]) -> Report:
    """Read load results; count acknowledged numbers, duplicates and order violations.

    Per client and endpoint, numbers must strictly increase (a server never goes back,
    across restarts too); across everything, no number may repeat.
    """
    report = Report()
    decoder = msgspec.json.Decoder(LoadResult)
    for path in paths:
        result = decoder.decode(path.read_bytes())
        report.attempted += result.attempted
        report.errors.update(result.errors)
        for values in result.acked.values():
            report.acknowledged += len(values)
            report.all_numbers.extend(values)
            report.out_of_order += sum(1 for a, b in pairwise(values) if b <= a)
    report.duplicated = len(report.all_numbers) - len(set(report.all_numbers))
    return report


def crash_gaps(values: list[int], instances: int, normal: int) -> list[int]:
    """Gaps (in own numbers) between consecutive acknowledged numbers of each server that
    are larger than ``normal`` own numbers: what crashes (and lost in-flight replies) skipped."""
    gaps = []
    for residue in range(instances):
        own = sorted(v for v in values if v % instances == residue)
        gaps += [(b - a) // instances - 1 for a, b in pairwise(own) if (b - a) // instances - 1 > normal]
    return gaps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.load")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--until", type=Path, default=None)
    parser.add_argument("out", type=Path)
    parser.add_argument("name")
    parser.add_argument("seconds", type=float)
    parser.add_argument("endpoints", nargs="+")
    ns = parser.parse_args()
    hammer(ns.out, ns.name, ns.seconds, ns.endpoints, ns.count, ns.pause, ns.until)
