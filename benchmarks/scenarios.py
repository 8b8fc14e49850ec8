"""The scenarios of ``benchmarks.bench``, in three groups that share their daemons.

- direct: one seqgen server and one floor server (``floor.py``);
- proxy: a seqgen proxy with 2 servers behind it, and libzmq's ``zmq.proxy``
  with 2 floor servers behind it;
- burst: one seqgen server, and a seqgen proxy in front of it.

Every scenario returns a ``Row``. seqgen and its floor run alternately.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from benchmarks.coalesce import Coalescing
from benchmarks.commands import Command
from benchmarks.daemons import Daemon, Daemons, server_counters
from benchmarks.measure import alternate, drain, measure
from benchmarks.results import Row, Sample, Target, cpu_ratio, rate_ratio
from benchmarks.workers import Workers

__all__ = ["GROUPS", "Bench", "Settings"]

PIPELINE_DEPTH: Final = 64
BURST_PROCESSES: Final = 4
BURST_EACH: Final = 5_000
"""4 processes x 5,000: 20,000 requests in flight (issue 11)."""


@dataclass(frozen=True)
class Settings:
    rounds: int = 3
    seconds: float = 3.0
    prefetch: int = 100
    burst_rounds: int = 3
    """Bursts per burst scenario (a correctness check: replies are lost only now and then)."""
    burst_quiet_s: float = 10.0
    burst_cap_s: float = 120.0


@dataclass
class Bench:
    """What every scenario needs: the load workers, settings, and what coalescing exists."""

    workers: Workers
    settings: Settings
    coalescing: Coalescing
    extra: dict[str, float] = field(default_factory=dict)
    """Figures outside the table (disk waits, scale)."""

    def cmd(self, mode: str, target: Daemon, name: str, *, depth: int = 1, count: int = 1,
            values: bool = False, prefetch: int = 1, coalesce: bool | None = None) -> Command:
        """A load of ``mode`` on ``target`` for one window of the configured length."""
        return Command(mode=mode, endpoint=target.bind, start=0.0, seconds=self.settings.seconds,
                       name=name, depth=depth, count=count, values=values, prefetch=prefetch,
                       coalesce=coalesce)

    def load(self, commands: list[Command], pid: int | None = None) -> Callable[[], Sample]:
        return partial(measure, self.workers, commands, pid)

    def rounds(self, row: Row, ours: Callable[[], Sample], theirs: Callable[[], Sample] | None = None) -> Row:
        return alternate(row, self.settings.rounds, ours, theirs)


def side_ratio(key: str) -> Callable[[Row], float | None]:
    """The median of ``key`` on seqgen's side over the floor's (None when either is missing)."""
    def measure_ratio(row: Row) -> float | None:
        ours, theirs = row.median(key), row.median(key, "floor")
        return ours / theirs if ours is not None and theirs else None

    return measure_ratio


def _cpu_target(limit: float) -> Target:
    return Target("CPU ratio", limit, True, cpu_ratio)


def _rate_target(limit: float, label: str = "throughput ratio") -> Target:
    return Target(label, limit, False, rate_ratio)


# ---- direct: one seqgen server, one floor server --------------------------------------


def direct(bench: Bench, group: Daemons, selected: set[str]) -> Iterator[Row]:
    server = group.seqgen_server()
    floor = group.floor_server()
    cmd = bench.cmd
    if "server-pipelined" in selected:
        def pipelined(target: Daemon) -> Callable[[], Sample]:
            return bench.load([cmd("pipeline", target, "perf", depth=PIPELINE_DEPTH)] * 2, target.pid)

        yield bench.rounds(
            Row("server-pipelined", '2 DEALER processes x 64 in flight, ["perf","0"]', "server",
                "floor server", targets=[_cpu_target(1.15)]),
            pipelined(server), pipelined(floor))
    if "server-lockstep" in selected:
        def lockstep(target: Daemon) -> Callable[[], Sample]:
            return bench.load([cmd("lockstep", target, "perf")] * 4, target.pid)

        yield bench.rounds(
            Row("server-lockstep", '4 REQ processes, lock-step, ["perf","0"]', "server", "floor server",
                targets=[_cpu_target(1.15)]),
            lockstep(server), lockstep(floor))
    if "batch-1000" in selected:
        def batches(target: Daemon) -> Callable[[], Sample]:
            return bench.load([cmd("lockstep", target, "batch", count=1000)], target.pid)

        yield bench.rounds(
            Row("batch-1000", "1 REQ process, lock-step, 1000 numbers per request", "server",
                "floor server", targets=[_rate_target(0.7)]),
            batches(server), batches(floor))
    if "client-next" in selected:
        yield bench.rounds(
            Row("client-next", "Client.next, 1 process, lock-step, vs a raw REQ loop", "client",
                "raw REQ loop (encode, decode, keep last)", unit="calls/s",
                targets=[_cpu_target(1.15), _rate_target(0.9)]),
            bench.load([cmd("client", server, "cli")]),
            bench.load([cmd("lockstep", server, "raw", values=True)]))
    if "prefetch" in selected:
        prefetch = bench.settings.prefetch
        yield bench.rounds(
            Row("prefetch", f"Client(prefetch={prefetch}).next vs Client.next, 1 process", "client",
                "Client.next", unit="calls/s", targets=[_rate_target(1.0)]),
            bench.load([cmd("client", server, "pre", prefetch=prefetch)]),
            bench.load([cmd("client", server, "nopre")]))
    if "async-64" in selected:
        yield bench.rounds(
            Row("async-64", "AsyncClient, 64 concurrent awaits on one name", "client",
                "asyncio DEALER, a future per request id", unit="calls/s",
                targets=[_rate_target(5.0)]),
            bench.load([cmd("async-client", server, "async", depth=64)]),
            bench.load([cmd("async-floor", server, "async", depth=64)]))
    if "threads-16" in selected:
        yield bench.rounds(
            Row("threads-16", "Client shared by 16 threads", "client",
                "16 threads, each its own REQ socket", unit="calls/s", targets=[_rate_target(3.0)]),
            bench.load([cmd("threads-client", server, "threads", depth=16)]),
            bench.load([cmd("threads-raw", server, "threads", depth=16)]))
    if "threads-handoff" in selected:
        # No seqgen code on the left: the least any coalescing client for threads can do,
        # which bounds what threads-16 can reach (benchmarks/handoff.py).
        yield bench.rounds(
            Row("threads-handoff", "16 threads, one REQ courier, a lock per waiting thread",
                "client", "16 threads, each its own REQ socket", unit="calls/s"),
            bench.load([cmd("threads-handoff", server, "handoff", depth=16)]),
            bench.load([cmd("threads-raw", server, "threads", depth=16)]))
    assert server.control is not None
    counters = server_counters(server.control)
    requests = sum(counters["requests"].values())
    bench.extra["disk_wait_share_pct"] = 100.0 * counters["disk_waits"] / max(requests, 1)


# ---- proxy: seqgen proxy + 2 servers, zmq.proxy + 2 floors ----------------------------


def _server_requests(controls: list[str]) -> int:
    return sum(sum(server_counters(control)["requests"].values()) for control in controls)


def proxy(bench: Bench, group: Daemons, selected: set[str]) -> Iterator[Row]:
    servers = [group.seqgen_server(k, 2) for k in (1, 2)]
    hosts = [server.bind for server in servers]
    relay = group.seqgen_proxy(hosts)
    plain = group.seqgen_proxy(hosts, "--no-coalesce") if bench.coalescing.proxy else None
    cmd = bench.cmd
    if "proxy" in selected:
        # The cost of relaying one request: without coalescing, which proxy-coalesce measures.
        device = group.floor_device([group.floor_server().bind, group.floor_server().bind])

        def pipelined(target: Daemon) -> Callable[[], Sample]:
            return bench.load([cmd("pipeline", target, "perf", depth=PIPELINE_DEPTH)] * 2, target.pid)

        yield bench.rounds(
            Row("proxy", "proxy (--no-coalesce) + 2 servers, 2 DEALER processes x 64 in flight",
                "proxy", "zmq.proxy + 2 floor servers",
                targets=[_cpu_target(2.5), _rate_target(0.6)]),
            pipelined(plain or relay), pipelined(device))
    if "proxy-coalesce" in selected:
        controls = [server.control for server in servers if server.control is not None]

        def through(target: Daemon) -> Callable[[], Sample]:
            load = bench.load([cmd("pipeline", target, "co", depth=PIPELINE_DEPTH)] * 4, target.pid)

            def run() -> Sample:
                before = _server_requests(controls)
                sample = load()
                seen = _server_requests(controls) - before
                sample.extra["server_requests_per_s"] = seen / sample.extra["window_s"]
                sample.extra["client_per_server_request"] = sample.answered / max(seen, 1)
                return sample

            return run

        yield bench.rounds(
            Row("proxy-coalesce", "4 DEALER processes x 64 in flight, one name, proxy + 2 servers",
                "proxy", "the same with seqgen-proxy --no-coalesce",
                targets=[Target("client requests per server request", 4.0, False,
                                lambda row: row.median("client_per_server_request")),
                         _rate_target(2.0, "numbers/s vs --no-coalesce")]),
            through(relay), through(plain) if plain is not None else None)
    if "latency" in selected:
        coalescing = bench.coalescing
        on = True if coalescing.client else None
        off_target = plain or relay
        off = bench.load([cmd("client-latency", off_target, "lat",
                              coalesce=False if coalescing.client else None)])

        yield bench.rounds(
            Row("latency", "Client.next, 1 caller, lock-step, through proxy + 2 servers, defaults",
                "client", "coalescing off (Client and proxy)", unit="calls/s",
                targets=[Target("p50 on/off", 1.10, True, side_ratio("p50_us")),
                         Target("p99 on/off", 1.10, True, side_ratio("p99_us"))]),
            bench.load([cmd("client-latency", relay, "lat", coalesce=on)]),
            off if (coalescing.client or coalescing.proxy) else None)


    yield from _hedging(bench, [server.bind for server in servers], selected)


def _hedging(bench: Bench, hosts: list[str], selected: set[str]) -> Iterator[Row]:
    """Hedging in steady state, no fault (issue 27): a client of the 2 servers directly, with
    hedging on (the default) against off: latency at low load, and how many requests were
    hedged and numbers skipped, at low load and under load."""
    both = ",".join(hosts)

    def command(mode: str, hedge: bool, depth: int = 1) -> Command:
        return Command(mode=mode, endpoint=both, start=0.0, seconds=bench.settings.seconds,
                       name="hedge", depth=depth, hedge=hedge, coalesce=False)

    def share(key: str) -> Callable[[Row], float | None]:
        return lambda row: row.median(key)

    shares = [Target("hedged requests", 0.02, True, share("hedge_share")),
              Target("numbers skipped", 0.02, True, share("skipped_share"))]
    if "hedge" in selected:
        yield bench.rounds(
            Row("hedge", "Client.next, 1 caller, lock-step, to 2 servers, hedging on vs off",
                "client", "Client(hedge=False)", unit="calls/s",
                targets=[Target("p50 on/off", 1.10, True, side_ratio("p50_us")),
                         Target("p99 on/off", 1.10, True, side_ratio("p99_us")), *shares]),
            bench.load([command("client-latency", True)]),
            bench.load([command("client-latency", False)]))
    if "hedge-load" in selected:
        yield bench.rounds(
            Row("hedge-load", "AsyncClient, 16 concurrent awaits, coalescing off, to 2 servers, "
                "hedging on vs off", "client", "AsyncClient(hedge=False)", unit="calls/s",
                targets=shares),
            bench.load([command("async-client", True, depth=16)]),
            bench.load([command("async-client", False, depth=16)]))


# ---- burst: 20,000 requests in flight ---------------------------------------------------


def burst(bench: Bench, group: Daemons, selected: set[str]) -> Iterator[Row]:
    server = group.seqgen_server()
    relay = group.seqgen_proxy([server.bind])
    settings = bench.settings
    bursts = 0

    def flood(target: Daemon) -> Callable[[], Sample]:
        def run() -> Sample:
            nonlocal bursts
            bursts += 1
            commands = [
                Command(mode="burst", endpoint=target.bind, start=0.0, name="burst", depth=BURST_EACH,
                        tag=f"{bursts}.{i}", quiet_s=settings.burst_quiet_s, cap_s=settings.burst_cap_s)
                for i in range(BURST_PROCESSES)
            ]
            return drain(bench.workers, commands, target.pid)

        return run

    def unanswered(row: Row) -> float:
        return float(sum(sample.unanswered for sample in row.seqgen))

    for name, target, how in (("burst-direct", server, "one server"), ("burst-proxy", relay,
                                                                          "a proxy to one server")):
        if name in selected:
            yield alternate(
                Row(name, f"4 DEALER processes x 5,000 in flight, new names, to {how}; drain rate",
                    "server" if target is server else "proxy", None,
                    targets=[Target("unanswered (all rounds)", 0, True, unanswered)]),
                settings.burst_rounds, flood(target))


Group = Callable[[Bench, Daemons, set[str]], Iterator[Row]]

GROUPS: Final[list[tuple[Group, list[str]]]] = [
    (direct, ["server-pipelined", "server-lockstep", "batch-1000", "client-next", "prefetch",
              "async-64", "threads-16", "threads-handoff"]),
    (proxy, ["proxy", "proxy-coalesce", "latency", "hedge", "hedge-load"]),
    (burst, ["burst-direct", "burst-proxy"]),
]
"""Each group and the scenarios it runs, in order."""
