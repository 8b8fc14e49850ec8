"""seqgen against its floors, on this machine, in one run: throughput and CPU per request.

    .venv/bin/python -m benchmarks.bench [--rounds 3] [--seconds 3] [--only NAME,...] [--json FILE]

For every scenario the table gives throughput and the CPU time per request of
the process under test (server, proxy, or client process: user + system time
of all its threads from /proc/PID/stat, divided by the requests it answered),
for seqgen and for its floor, run alternately; medians (min..max) and the
ratios of medians against the targets. ``--quick`` is the smoke run of the
test suite (1 short round): it proves every scenario runs; only gross
differences in its numbers mean anything. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any

import msgspec
import zmq

from benchmarks.coalesce import detect
from benchmarks.daemons import daemons
from benchmarks.results import Row, markdown_table
from benchmarks.scale import scale
from benchmarks.scenarios import GROUPS, Bench, Settings
from benchmarks.workers import Workers

__all__ = ["main"]

SCENARIOS = [name for _, names in GROUPS for name in names] + ["scale"]


def machine() -> dict[str, Any]:
    from seqgen_common import __version__  # noqa: PLC0415

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
        "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version(), "msgspec": msgspec.__version__,
        "seqgen": __version__, "load_average": os.getloadavg(),
    }


def run(settings: Settings, selected: set[str], names: int) -> tuple[list[Row], dict[str, Any]]:
    coalescing = detect()
    print(f"coalescing options: {coalescing.describe()}", flush=True)
    rows: list[Row] = []
    with Workers() as workers:
        bench = Bench(workers, settings, coalescing)
        for group_fn, group_names in GROUPS:
            if not selected & set(group_names):
                continue
            with daemons() as group:
                for row in group_fn(bench, group, selected):
                    print(f"  {row.name}: done", file=sys.stderr, flush=True)
                    rows.append(row)
    extra: dict[str, Any] = dict(bench.extra)
    if "scale" in selected:
        extra.update(scale(names))
    extra["coalescing"] = {"client": coalescing.client, "proxy": coalescing.proxy}
    return rows, extra


def print_report(rows: list[Row], extra: dict[str, Any], meta: dict[str, Any]) -> None:
    print(f"{meta['date']}: {meta['machine']}, {meta['cores']} cores, Python {meta['python']}, "
          f"pyzmq {meta['pyzmq']}, libzmq {meta['libzmq']}, msgspec {meta['msgspec']}, "
          f"seqgen {meta['seqgen']}; load average before {meta['load_average'][0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print(markdown_table(rows))
    for row in rows:
        for side in ("seqgen", "floor"):
            if not row.samples(side):
                continue
            for key in ("p50_us", "p99_us", "server_requests_per_s", "client_per_server_request",
                        "drain_s", "hedge_share", "skipped_share"):
                value = row.median(key, side)
                if value is not None:
                    print(f"- {row.name} ({side}): {key} {value:,.2f} (median)" if "share" not in key
                          else f"- {row.name} ({side}): {key} {value:.4%} (median)")
            if row.values("hedges", side):
                hedges, requests = sum(row.values("hedges", side)), sum(row.values("requests", side))
                print(f"- {row.name} ({side}), all rounds: {hedges:,.0f} hedges in {requests:,.0f} "
                      f"requests, {sum(row.values('skipped', side)):,.0f} numbers skipped")
            lost = sum(sample.unanswered for sample in row.samples(side))
            errors: dict[str, int] = {}
            for sample in row.samples(side):
                for code, n in sample.errors.items():
                    errors[code] = errors.get(code, 0) + n
            if lost or errors or row.name.startswith("burst"):
                answered = sum(sample.answered for sample in row.samples(side))
                print(f"- {row.name} ({side}), all rounds: {answered:,} answered, {lost:,} unanswered, "
                      f"error replies {errors or 'none'}")
        for note in row.notes:
            print(f"- {row.name}: {note}")
    for key, value in extra.items():
        print(f"- {key}: {value:,.3f}" if isinstance(value, float) else f"- {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each side (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of one window (default %(default)s)")
    parser.add_argument("--names", type=int, default=1_000_000, help="names for the scale figure")
    parser.add_argument("--prefetch", type=int, default=100, help="the prefetch scenario's N")
    parser.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]",
                        help=f"run only these scenarios (repeatable): {', '.join(SCENARIOS)}")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 0.4 s, 2 bursts, 2000 names, shorter burst timeouts")
    args = parser.parse_args(argv)
    selected = {name for spec in args.only for name in spec.split(",") if name} or set(SCENARIOS)
    unknown = selected - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    settings = Settings(rounds=args.rounds, seconds=args.seconds, prefetch=args.prefetch,
                        burst_rounds=args.rounds)
    if args.quick:
        # Two bursts each: one often gets every reply even where replies can be lost.
        settings = Settings(rounds=1, seconds=0.4, prefetch=args.prefetch,
                            burst_rounds=2, burst_quiet_s=5.0, burst_cap_s=30.0)
        args.names = 2000
    meta = machine()
    meta.update(rounds=settings.rounds, seconds=settings.seconds, quick=args.quick)
    rows, extra = run(settings, selected, args.names)
    print_report(rows, extra, meta)
    if args.json:
        doc = {"meta": meta, "rows": [row.to_json() for row in rows], "extra": extra}
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
