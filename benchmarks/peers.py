"""seqgen's clients against PostgreSQL ``nextval`` and Redis ``INCR``, at 1, 4 and 16 processes.

    benchmarks/setup-peers.sh                  # as root: installs and starts both on loopback
    .venv/bin/python -m benchmarks.peers [--rounds 3] [--seconds 3] [--json FILE]

Every system runs with the same number of load processes, each making one call
at a time and getting the number back as an int (AsyncClient: 64 concurrent
awaits per process). seqgen is one durable server with its defaults. The
systems take turns within each round, the order reversed every other round;
the table shows medians (min..max) in numbers per second, then seqgen's ratios
against each peer. A peer that cannot be reached is reported and skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.bench import machine
from benchmarks.coalesce import detect
from benchmarks.commands import Command
from benchmarks.daemons import daemons
from benchmarks.measure import measure
from benchmarks.peerload import SEQUENCE
from benchmarks.workers import Workers

__all__ = ["main"]

DEFAULT_PG = "postgresql://postgres@127.0.0.1:55432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:56379/0"
ASYNC_AWAITS = 64


@dataclass
class System:
    label: str
    mode: str
    endpoint: str
    seqgen: bool
    depth: int = 1
    prefetch: int = 1
    rates: dict[int, list[float]] = field(default_factory=dict)

    def command(self, seconds: float) -> Command:
        return Command(mode=self.mode, endpoint=self.endpoint, start=0.0, seconds=seconds, name="peer",
                       depth=self.depth, prefetch=self.prefetch)

    def median(self, processes: int) -> float | None:
        values = self.rates.get(processes)
        return statistics.median(values) if values else None


def prepare_pg(dsn: str) -> str | None:
    """Create the sequence; None when ready, else why PostgreSQL cannot be used."""
    try:
        import psycopg  # noqa: PLC0415
    except ImportError:
        return "psycopg is not installed (benchmarks/setup-peers.sh installs the bench extra)"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
            row = conn.execute("SHOW server_version").fetchone()
            settings = conn.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
            fsync = settings.fetchone()
    except psycopg.Error as exc:
        return f"cannot reach PostgreSQL at {dsn}: {exc}"
    print(f"PostgreSQL {row[0] if row else '?'}: fsync {fsync[0] if fsync else '?'}, "
          f"synchronous_commit {fsync[1] if fsync else '?'}")
    return None


def prepare_redis(url: str) -> str | None:
    """Check Redis is there and fsyncs every write; None when ready, else why not."""
    try:
        import redis  # noqa: PLC0415
    except ImportError:
        return "redis-py is not installed (benchmarks/setup-peers.sh installs the bench extra)"
    conn = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        fsync = conn.config_get("appendfsync").get("appendfsync")
        version = conn.info("server").get("redis_version")
    except redis.RedisError as exc:
        return f"cannot reach Redis at {url}: {exc}"
    finally:
        conn.close()
    print(f"Redis {version}: appendfsync {fsync}")
    if fsync != "always":
        return f"Redis at {url} runs with appendfsync {fsync}, not always"
    return None


def table(systems: list[System], processes: list[int]) -> str:
    def cell(system: System, n: int) -> str:
        values = system.rates.get(n)
        if not values:
            return "—"
        if len(values) == 1:
            return f"{values[0]:,.0f}"
        return f"{statistics.median(values):,.0f} ({min(values):,.0f}..{max(values):,.0f})"

    heads = " | ".join(f"{n} process{'es' if n > 1 else ''}" for n in processes)
    lines = [f"| numbers/s, median (min..max) | {heads} |", "|---" + "|---:" * len(processes) + "|"]
    lines += [f"| {s.label} | " + " | ".join(cell(s, n) for n in processes) + " |" for s in systems]
    peers = [s for s in systems if not s.seqgen and s.rates]
    for ours in (s for s in systems if s.seqgen):
        for peer in peers:
            ratios = []
            for n in processes:
                a, b = ours.median(n), peer.median(n)
                ratios.append(f"{a / b:.2f}" if a is not None and b else "—")
            lines.append(f"| {ours.label} / {peer.label} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--processes", default="1,4,16", help="comma-separated (default %(default)s)")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL DSN (default %(default)s)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL (default %(default)s)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    processes = [int(n) for n in args.processes.split(",")]
    meta = machine()
    coalescing = detect()
    skipped: dict[str, str] = {}
    with daemons() as group, Workers() as workers:
        server = group.seqgen_server()
        async_label = f"AsyncClient x{ASYNC_AWAITS}"
        print(f"{async_label}: {ASYNC_AWAITS} concurrent awaits per process; coalescing options: "
              f"{coalescing.describe()}")
        systems = [
            System("Client.next", "client", server.bind, True),
            System(async_label, "async-client", server.bind, True, depth=ASYNC_AWAITS),
            System("Client(prefetch=100)", "client", server.bind, True, prefetch=100),
        ]
        for label, mode, endpoint, prepare in (
            ("PostgreSQL nextval", "pg", args.pg, prepare_pg),
            ("Redis INCR", "redis", args.redis, prepare_redis),
        ):
            why = prepare(endpoint)
            if why is None:
                systems.append(System(label, mode, endpoint, False))
            else:
                skipped[label] = why
                print(f"skipped {label}: {why}", file=sys.stderr)
        for n in processes:
            for number in range(args.rounds):
                order = systems if number % 2 == 0 else systems[::-1]
                for system in order:
                    sample = measure(workers, [system.command(args.seconds)] * n)
                    system.rates.setdefault(n, []).append(sample.rate)
                print(f"  {n} process(es), round {number + 1}: done", file=sys.stderr, flush=True)
    print(f"{meta['date']}: {meta['machine']}, {meta['cores']} cores, Python {meta['python']}, "
          f"pyzmq {meta['pyzmq']}, libzmq {meta['libzmq']}, seqgen {meta['seqgen']}")
    print(table(systems, processes))
    for label, why in skipped.items():
        print(f"- skipped {label}: {why}")
    if args.json:
        doc: dict[str, Any] = {
            "meta": meta, "skipped": skipped,
            "systems": [{"label": s.label, "rates": {str(n): v for n, v in s.rates.items()}}
                        for s in systems],
        }
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
