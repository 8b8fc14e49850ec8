"""Stateless callers and a server held back (issue 24): how close the numbers stay.

    .venv/bin/python -m benchmarks.closeness [--outage 30] [--only direct-2,...] [--json FILE]
    .venv/bin/python -m benchmarks.closeness --quick        # smoke run: a 3 s outage

For each configuration (2 or 3 servers, callers straight to the servers or through two
proxies in front of all of them), every server with its admin, the admins peered with
each other (their default flags: a poll every second, following the peers on):

- stateless callers: threads that make each call with a new ``Client`` (random first
  endpoint, ``last`` "0"), and one thread that runs the ``seqgen next`` command line, a
  new process per call;
- after a warm-up, the last server is stopped (SIGSTOP) for ``--outage`` seconds and
  brought back (SIGCONT); the callers go on for a while after.

An observer reading every number in the order the callers received them reports:

- **largest step back**: the largest drop between two consecutive numbers one caller
  got (the whole run); target at most ``drift x instances``;
- **time to close**: from SIGCONT until the first number of the returned server within
  ``drift`` of the highest the others had issued when its call began; target at most
  2 s. Then the share of its later numbers that were not (between two polls of the
  admins, servers that callers pick at random drift apart: a random walk).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Final

import msgspec

from benchmarks.daemons import Daemons, daemons, free_endpoint
from seqgen_client import Client
from seqgen_common.errors import SeqgenError

__all__ = ["Observed", "Outcome", "analyse", "main"]

DRIFT: Final = 100
"""The servers' default --drift."""
CLOSE_TARGET_S: Final = 2.0
CONFIGS: Final = {"direct-2": (2, False), "direct-3": (3, False),
                  "proxies-2": (2, True), "proxies-3": (3, True)}
NAME: Final = "closeness"
CLIENT_THREADS: Final = 4


@dataclass(frozen=True, slots=True)
class Observed:
    caller: int
    """Which caller (an observer: its calls follow one another)."""
    started: float
    """time.monotonic() when the call began."""
    received: float
    """time.monotonic() when the number came."""
    value: int


@dataclass(frozen=True, slots=True)
class Outcome:
    config: str
    instances: int
    outage_s: float
    calls: int
    process_calls: int
    largest_step_back: int
    step_back_target: int
    time_to_close_s: float | None
    """From SIGCONT to the returned server's first close number (None: it never came)."""
    returned_calls: int
    """Numbers the returned server issued to callers after SIGCONT."""
    beyond_after: float
    """The share of the returned server's numbers after its first close one that were more
    than drift below the others (between two polls of the admins)."""
    rate: float

    def met(self) -> bool:
        return (self.largest_step_back <= self.step_back_target and self.time_to_close_s is not None
                and self.time_to_close_s <= CLOSE_TARGET_S)


def analyse(seen: list[Observed], instances: int, held: int, resumed_at: float, drift: int,
            ) -> tuple[int, float | None, int, float]:
    """(largest step back, time to close, calls the held server answered after resuming,
    the share of its numbers after the first close one that were not close) for the
    numbers ``seen`` (any order), instance ``held`` of ``instances`` resumed at
    ``resumed_at``. Pure.

    A step back is a drop between two consecutive numbers of one caller. A number of the
    held server is close when it is at least the highest number of the others received
    before its call began, minus ``drift`` (numbers received before a call began were
    issued before it: no clock noise between threads counts).
    """
    by_caller: dict[int, list[Observed]] = {}
    for o in seen:
        by_caller.setdefault(o.caller, []).append(o)
    back = 0
    for calls in by_caller.values():
        calls.sort(key=lambda o: o.started)
        back = max(back, max((a.value - b.value for a, b in pairwise(calls)), default=0))
    others = sorted((o for o in seen if o.value % instances != held % instances),
                    key=lambda o: o.received)
    mine = sorted((o for o in seen if o.value % instances == held % instances
                   and o.started >= resumed_at), key=lambda o: o.started)
    highest_other, i = 0, 0
    close_at: float | None = None
    beyond = after = 0
    for o in mine:
        while i < len(others) and others[i].received <= o.started:
            highest_other = max(highest_other, others[i].value)
            i += 1
        close = o.value >= highest_other - drift
        if close_at is None:
            if close:
                close_at = o.started
            continue
        after += 1
        beyond += not close
    ttc = None if close_at is None else max(close_at - resumed_at, 0.0)
    return back, ttc, len(mine), beyond / after if after else 0.0


class Callers:
    """Stateless callers of ``endpoints`` until stopped, every number noted with its time;
    the client threads together make about ``rate`` calls per second."""

    def __init__(self, endpoints: list[str], rate: float) -> None:
        self.endpoints = endpoints
        self._period_s = CLIENT_THREADS / rate
        self.seen: list[Observed] = []
        self.process_calls = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client_calls, args=(i,), daemon=True)
                         for i in range(CLIENT_THREADS)]
        self._threads.append(threading.Thread(target=self._process_calls, args=(CLIENT_THREADS,),
                                              daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _client_calls(self, caller: int) -> None:
        next_at = time.monotonic()
        while not self._stop.wait(max(next_at - time.monotonic(), 0.0)):
            next_at += self._period_s
            started = time.monotonic()
            try:
                with Client(self.endpoints, timeout_s=0.3, deadline_s=5.0) as client:
                    value = client.next(NAME)  # a new Client: it carries nothing
                    received = time.monotonic()
            except SeqgenError:
                continue
            self.seen.append(Observed(caller, started, received, value))

    def _process_calls(self, caller: int) -> None:
        args = [sys.executable, "-m", "seqgen_client", "next", NAME, "--timeout", "0.3",
                "--deadline", "5"]
        for endpoint in self.endpoints:
            args += ["-e", endpoint]
        while not self._stop.is_set():
            started = time.monotonic()
            done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode == 0:
                self.seen.append(Observed(caller, started, time.monotonic(), int(done.stdout)))
                self.process_calls += 1


def free_url() -> str:
    return "http://127.0.0.1:" + free_endpoint().rsplit(":", 1)[1]


def run_config(group: Daemons, config: str, outage_s: float, settle_s: float, after_s: float,
               rate: float) -> Outcome:
    instances, proxied = CONFIGS[config]
    servers = [group.seqgen_server(k, instances) for k in range(1, instances + 1)]
    urls = [free_url() for _ in servers]
    for server, url in zip(servers, urls, strict=True):
        assert server.control is not None
        group.seqgen_admin(server.control, url, [u for u in urls if u != url])
    hosts = [server.bind for server in servers]
    endpoints = ([group.seqgen_proxy(hosts).bind for _ in range(2)] if proxied else hosts)
    callers = Callers(endpoints, rate)
    callers.start()
    held = servers[-1]
    try:
        time.sleep(settle_s)
        os.kill(held.pid, signal.SIGSTOP)
        try:
            time.sleep(outage_s)
        finally:
            os.kill(held.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        time.sleep(after_s)
    finally:
        callers.stop()
    back, ttc, returned, beyond = analyse(callers.seen, instances, instances, resumed_at, DRIFT)
    return Outcome(config, instances, outage_s, len(callers.seen), callers.process_calls, back,
                   DRIFT * instances, ttc, returned, beyond, rate)


def table(outcomes: list[Outcome]) -> str:
    lines = ["| configuration | outage | calls (processes) | largest step back | target | "
             "time to close | target | later numbers beyond drift | met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        ttc = "never" if o.time_to_close_s is None else f"{o.time_to_close_s:.2f} s"
        lines.append(f"| {o.config} | {o.outage_s:g} s | {o.calls:,} ({o.process_calls}) | "
                     f"{o.largest_step_back:,} | ≤ {o.step_back_target} | {ttc} | "
                     f"≤ {CLOSE_TARGET_S:g} s | {o.beyond_after:.1%} | {'yes' if o.met() else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closeness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=30.0, metavar="S",
                        help="how long one server is stopped (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: a 3 s outage, shorter warm-up and tail")
    parser.add_argument("--only", default=",".join(CONFIGS), metavar="NAME[,NAME]",
                        help=f"configurations: {', '.join(CONFIGS)} (default all)")
    parser.add_argument("--rate", type=float, default=200.0, metavar="N",
                        help="calls per second of the client threads together (default "
                        "%(default)s; the `seqgen next` process calls as fast as it can)")
    parser.add_argument("--json", type=Path, help="also write the outcomes as JSON here")
    args = parser.parse_args(argv)
    selected = [name for name in args.only.split(",") if name]
    unknown = set(selected) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(sorted(unknown))}")
    outage_s, settle_s, after_s = (3.0, 2.0, 4.0) if args.quick else (args.outage, 5.0, 8.0)
    outcomes: list[Outcome] = []
    for config in selected:
        with daemons() as group:
            outcome = run_config(group, config, outage_s, settle_s, after_s, args.rate)
        print(f"  {config}: done", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    print(f"stateless callers ({CLIENT_THREADS} threads, a new Client per call, about "
          f"{args.rate:g} calls/s, and one `seqgen next` process per call), drift {DRIFT}, "
          "admins polling every 1 s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(table(outcomes))
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(
            [asdict(o) for o in outcomes])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
