"""How long after a partition heals each client uses the partitioned server again.

    sudo .venv/bin/python -m benchmarks.heal [--partition-s 20] [--clients sync,async,node]
                                             [--only-partitioned] [--node-package DIR]

Two servers on loopback (odd and even). One client process per kind calls ``next``
every 100 ms with both endpoints (or, with ``--only-partitioned``, server 1's alone).
Then an nftables rule drops every packet to and from server 1's port (on loopback
only) for ``--partition-s`` seconds, and is removed. Printed per client: calls during
the partition, calls that failed, calls that waited an attempt timeout, and the seconds
from the heal until its first odd number again. Needs root and ``nft``; it touches only
a table of its own (``seqgen_heal``), which it deletes at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqgen_client import Client

REPO = Path(__file__).resolve().parents[1]
TABLE = "seqgen_heal"
INTERVAL_S = 0.1

PYTHON_CALLER = """
import asyncio, json, sys, time
from seqgen_client import AsyncClient, Client
kind, endpoints = sys.argv[1], json.loads(sys.argv[2])
def record(t0, value, error):
    print(json.dumps([t0, time.monotonic(), value, error]), flush=True)
if kind == "sync":
    with Client(endpoints) as client:
        while True:
            t0 = time.monotonic()
            try:
                record(t0, client.next("heal"), None)
            except Exception as exc:
                record(t0, None, type(exc).__name__)
            time.sleep(max(0.0, t0 + INTERVAL_S - time.monotonic()))
else:
    async def main():
        async with AsyncClient(endpoints) as client:
            while True:
                t0 = time.monotonic()
                try:
                    record(t0, await client.next("heal"), None)
                except Exception as exc:
                    record(t0, None, type(exc).__name__)
                await asyncio.sleep(max(0.0, t0 + INTERVAL_S - time.monotonic()))
    asyncio.run(main())
""".replace("INTERVAL_S", repr(INTERVAL_S))

NODE_CALLER = """
const seqgen = require(process.argv[1]);
const client = seqgen(JSON.parse(process.argv[2]));
const now = () => Number(process.hrtime.bigint()) / 1e9;
(async () => {
  for (;;) {
    const t0 = now();
    try {
      const value = await client.next('heal');
      process.stdout.write(`[${t0},${now()},${value},null]\\n`);
    } catch (err) {
      process.stdout.write(JSON.stringify([t0, now(), null, err.code || err.name]) + '\\n');
    }
    await new Promise((r) => setTimeout(r, Math.max(0, (t0 + INTERVAL_S - now()) * 1000)));
  }
})();
""".replace("INTERVAL_S", repr(INTERVAL_S))


def nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


def partition(port: int) -> None:
    """Drop every packet to and from ``port`` on loopback, both ways (a silent partition)."""
    nft(f"""table inet {TABLE} {{
  chain input {{
    type filter hook input priority -10;
    iifname "lo" tcp dport {port} drop
    iifname "lo" tcp sport {port} drop
  }}
  chain output {{
    type filter hook output priority -10;
    oifname "lo" tcp dport {port} drop
    oifname "lo" tcp sport {port} drop
  }}
}}""")


def heal() -> None:
    subprocess.run(["nft", "delete", "table", "inet", TABLE], check=False, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partition-s", type=float, default=20.0)
    parser.add_argument("--after-s", type=float, default=20.0)
    parser.add_argument("--clients", default="sync,async,node")
    parser.add_argument("--only-partitioned", action="store_true",
                        help="give the clients server 1 alone: no failover and no back-off to "
                             "hide how long their sockets take to come back")
    parser.add_argument("--node-package", default=str(REPO / "clients" / "node"),
                        help="the Node.js client to measure (a checkout's clients/node)")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("nft") is None:
        print("needs root and nft", file=sys.stderr)
        return 2
    kinds = args.clients.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="heal"))
    ports = [free_port(), free_port()]
    endpoints = [f"tcp://127.0.0.1:{p}" for p in ports]
    procs: list[subprocess.Popen[bytes]] = []
    clients: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for k, endpoint in enumerate(endpoints, start=1):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "seqgen_server", "--bind", endpoint,
                 "--control", f"tcp://127.0.0.1:{free_port()}", "--instance", str(k),
                 "--instances", "2", "--data", str(tmp / f"s{k}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            with Client([endpoint], deadline_s=30.0) as ready:
                ready.next("ready")  # the server answers a real request
        listed = json.dumps(endpoints[:1] if args.only_partitioned else endpoints)
        for kind in kinds:
            out = tmp / f"{kind}.jsonl"
            argv = ([shutil.which("node") or "node", "-e", NODE_CALLER, args.node_package, listed]
                    if kind == "node" else [sys.executable, "-c", PYTHON_CALLER, kind, listed])
            with open(out, "wb") as f:
                clients[kind] = (subprocess.Popen(argv, stdout=f, cwd=REPO), out)
        time.sleep(3.0)
        t_cut = time.monotonic()
        partition(ports[0])
        time.sleep(args.partition_s)
        heal()
        t_heal = time.monotonic()
        time.sleep(args.after_s)
    finally:
        heal()
        for proc, _ in clients.values():
            proc.kill()
        for proc in procs:
            proc.kill()
    print(f"partition of server 1 for {args.partition_s:g} s, then {args.after_s:g} s after healing; "
          f"clients given {'server 1 alone' if args.only_partitioned else 'both servers'}")
    print("| client | calls during | failed | waited a timeout | back in use after (s) |")
    print("|---|---:|---:|---:|---:|")
    for kind, (_, out) in clients.items():
        calls = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        during = [c for c in calls if t_cut <= c[0] < t_heal]
        failed = sum(1 for c in during if c[2] is None)
        slow = sum(1 for c in during if c[1] - c[0] >= 0.9)
        back = next((c[1] - t_heal for c in calls if c[0] >= t_heal and c[2] is not None and c[2] % 2 == 1),
                    None)
        shown = f"> {args.after_s:g}" if back is None else f"{back:.2f}"
        print(f"| {kind} | {len(during)} | {failed} | {slow} | {shown} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
