"""seqgen against the pyzmq floor, on this machine, in one run.

    .venv/bin/python -m benchmarks.bench [--runs 3] [--seconds 3] [--names 1000000] [--json FILE]

Each scenario runs seqgen and its floor alternately (``--runs`` times each, the
order flipping every run) and reports the medians, their spread (min..max)
and the ratio of medians against the target. ``--quick`` is a smoke run for
the test suite: it proves every scenario works, its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec
import zmq

from seqgen_common.control import GetStatus, Ping, Status, decode_control_reply, encode_control

PY = sys.executable


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def rpc(endpoint: str, body: bytes, timeout_s: float = 1.0) -> bytes | None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(body)
        return sock.recv() if sock.poll(int(timeout_s * 1000)) else None
    finally:
        sock.close()


def wait_ready(endpoint: str, body: bytes, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> float:
    """Seconds until ``endpoint`` answered ``body``."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        if rpc(endpoint, body, 0.5) is not None:
            return time.perf_counter() - began
    raise RuntimeError(f"{endpoint} not ready after {timeout_s}s")


class Procs:
    """Processes of one scenario; all killed on exit."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([PY, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def seqgen_server(
        self, instance: int = 1, instances: int = 1, data: Path | None = None
    ) -> tuple[str, str]:
        bind, control = free_endpoint(), free_endpoint()
        data = data or self.tmp / f"data-{len(self.procs)}"
        proc = self.start("seqgen_server", "--bind", bind, "--control", control, "--instance", str(instance),
                          "--instances", str(instances), "--data", str(data), "--log-level", "WARNING")
        wait_ready(control, encode_control(Ping()), proc)
        return bind, control

    def seqgen_proxy(self, hosts: list[str]) -> str:
        bind = free_endpoint()
        args = ["seqgen_proxy", "--bind", bind, "--log-level", "WARNING"]
        for host in hosts:
            args += ["--host", host]
        wait_ready(bind, b"[]", self.start(*args))
        return bind

    def floor_server(self) -> str:
        bind = free_endpoint()
        wait_ready(bind, b'["ready","0"]', self.start("benchmarks.floor", "server", bind))
        return bind

    def floor_device(self, backends: list[str]) -> str:
        bind = free_endpoint()
        wait_ready(bind, b'["ready","0"]', self.start("benchmarks.floor", "device", bind, *backends))
        return bind

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def scenario_procs() -> Iterator[Procs]:
    tmp = Path(tempfile.mkdtemp(prefix="sgb", dir="/tmp"))
    procs = Procs(tmp)
    try:
        yield procs
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)


def load(mode: str, endpoint: str, processes: int, seconds: float, name: str, n: int) -> float:
    """Numbers per second from ``processes`` load generators running together."""
    start = time.time() + 0.5 + 0.1 * processes
    gens = [
        subprocess.Popen([PY, "-m", "benchmarks.loadgen", mode, endpoint, str(start), str(seconds),
                          f"{name}-{i}" if mode == "client" else name, str(n)],
                         stdout=subprocess.PIPE)
        for i in range(processes)
    ]
    total = 0.0
    for gen in gens:
        out, _ = gen.communicate(timeout=seconds + 60)
        if gen.returncode != 0:
            raise RuntimeError(f"load generator {mode} failed")
        result = msgspec.json.decode(out.splitlines()[-1])
        total += result["numbers"] / result["seconds"]
    return total


@dataclass
class Row:
    scenario: str
    target: float
    seqgen: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    unit: str = "numbers/s"

    @property
    def ratio(self) -> float:
        return statistics.median(self.seqgen) / statistics.median(self.floor)


def compare(row: Row, runs: int, ours: Callable[[], float], theirs: Callable[[], float]) -> Row:
    for run in range(runs):
        pair = [(row.seqgen, ours), (row.floor, theirs)]
        for results, measure in pair if run % 2 == 0 else reversed(pair):
            results.append(measure())
    return row


def status(control: str) -> Status:
    reply = rpc(control, encode_control(GetStatus()), 5)
    assert reply is not None
    decoded = decode_control_reply(reply)
    assert isinstance(decoded, Status)
    return decoded


def run_all(args: argparse.Namespace) -> tuple[list[Row], dict[str, float]]:
    rows: list[Row] = []
    extra: dict[str, float] = {}
    s, runs = args.seconds, args.runs
    with scenario_procs() as p:
        bind, control = p.seqgen_server()
        floor = p.floor_server()
        rows.append(compare(Row("direct, 4 lock-step REQ clients", 0.9), runs,
                            lambda: load("lockstep", bind, 4, s, "lock", 1),
                            lambda: load("lockstep", floor, 4, s, "lock", 1)))
        rows.append(compare(Row("direct, 2 DEALER clients x 64 in flight", 0.9), runs,
                            lambda: load("pipeline", bind, 2, s, "pipe", 64),
                            lambda: load("pipeline", floor, 2, s, "pipe", 64)))
        rows.append(compare(Row("batches of 1000, 1 lock-step client", 0.7), runs,
                            lambda: load("lockstep", bind, 1, s, "batch", 1000),
                            lambda: load("lockstep", floor, 1, s, "batch", 1000)))
        counters = status(control).counters
        ok = counters.requests.get("OK", 0)
        extra["disk_wait_share_pct"] = 100.0 * counters.disk_waits / max(ok, 1)
        rows.append(compare(Row("Client.next vs raw REQ, 1 process", 0.9), runs,
                            lambda: load("client", bind, 1, s, "cli", 1),
                            lambda: load("lockstep", bind, 1, s, "raw", 1)))
        if args.prefetch:
            rows.append(compare(Row(f"Client(prefetch={args.prefetch}) vs Client.next", 1.0), runs,
                                lambda: load("client", bind, 1, s, "pre", args.prefetch),
                                lambda: load("client", bind, 1, s, "nopre", 1)))
    with scenario_procs() as p:
        servers = [p.seqgen_server(k, 2)[0] for k in (1, 2)]
        proxy = p.seqgen_proxy(servers)
        device = p.floor_device([p.floor_server(), p.floor_server()])
        rows.append(compare(Row("proxy + 2 servers vs zmq.proxy + 2 floors, 4 lock-step", 0.6), runs,
                            lambda: load("lockstep", proxy, 4, s, "px", 1),
                            lambda: load("lockstep", device, 4, s, "px", 1)))
    extra.update(scale(args.names))
    return rows, extra


def scale(names: int) -> dict[str, float]:
    """RSS and restart time of a server holding ``names`` sequences."""
    from seqgen_server.store import Store  # noqa: PLC0415

    with scenario_procs() as p:
        data = p.tmp / "scale"
        store = Store.open(data, 1, 1)
        chunk = 100_000
        for begin in range(0, names, chunk):
            end = min(begin + chunk, names)
            store.write_marks((f"customer-{i:08d}", 1000 + i) for i in range(begin, end))
        store.close()
        began = time.perf_counter()
        bind, control = p.seqgen_server(1, 1, data)
        restart_s = time.perf_counter() - began
        for i in range(0, names, max(names // 1000, 1)):  # touch a sample of them
            reply = rpc(bind, msgspec.json.encode([f"customer-{i:08d}", "0"]), 5)
            assert reply is not None and reply.startswith(b"[null"), reply
        pid = p.procs[-1].pid
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:"))
        assert status(control).sequences == names
    return {"scale_names": names, "scale_rss_mb": rss_kb / 1024, "scale_restart_s": restart_s}


def print_table(rows: list[Row], extra: dict[str, float]) -> None:
    def fmt(values: list[float]) -> str:
        return f"{statistics.median(values):>10,.0f} ({min(values):,.0f}..{max(values):,.0f})"

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}")
    print(f"{'scenario':58} {'seqgen median (spread)':>32} {'floor median (spread)':>32} {'ratio':>6} target")
    for row in rows:
        met = "ok" if row.ratio >= row.target else "MISSED"
        print(f"{row.scenario:58} {fmt(row.seqgen):>32} {fmt(row.floor):>32} {row.ratio:6.2f} "
              f">= {row.target:.1f} {met}")
    for key, value in extra.items():
        print(f"{key}: {value:,.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one run (default %(default)s)")
    parser.add_argument("--names", type=int, default=1_000_000, help="names for the scale test")
    parser.add_argument("--prefetch", type=int, default=0, help="also measure Client(prefetch=N)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run of 0.3 s, 2000 names")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.names = 1, 0.3, 2000
    rows, extra = run_all(args)
    print_table(rows, extra)
    if args.json:
        doc = {"rows": [{**asdict(r), "ratio": r.ratio} for r in rows], "extra": extra}
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(doc)))


if __name__ == "__main__":
    main()
