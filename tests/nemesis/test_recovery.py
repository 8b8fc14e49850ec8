"""After a long partition heals, every client kind uses the server again at once.

The smallest network that shows it: one server host, one client host. On the
client host run a sync Client, an AsyncClient and the Node.js client (both call
forms) straight to the server, and a sync Client through a proxy (on the client
host) to the same server. Every
IP packet between the two hosts vanishes in the switch (nftables on the bridge) for
``PARTITION_S``, then they flow again. Each client must get
a number again within ``RECOVERY_LIMIT_S`` of healing: its calls keep trying
the only endpoint, and the proxy probes its host every 0.25 s.

What breaks it (found by the nemesis suite): a socket that keeps one TCP
connection across the partition. Packets sent into the partition are
retransmitted with exponential back-off (0.2 s, doubling), so once the network
is back the connection stays silent until the next retransmission, and
whatever was queued on it during the partition is delivered late. A pending
connect() waits for its next SYN retransmission the same way (1 s apart at
first, then doubling: 8 and 16 s apart after about 20 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from tests.nemesis import netns
from tests.nemesis.cluster import PORT, Worker, WorkerSpec, node_missing, public, worker_program
from tests.nemesis.outcome import skip_reason
from tests.nemesis.records import WorkerConfig
from tests.nemesis.render import REPO

pytestmark = pytest.mark.nemesis

PARTITION_S = 21.0
"""Long enough for TCP's timers to back off to many seconds, and chosen so that healing falls
well between two retransmissions: a SYN at about 19 s after the cut and the next at 32 to 35 s
(with or without the kernel's tcp_syn_linear_timeouts), data at 12.6 s and 25.4 s."""
RECOVERY_LIMIT_S = 2.0
OBSERVE_S = 20.0
"""How long after healing the recovery is watched (past the next retransmissions)."""
CALL_RATE_S = 5.0
PROXY_PORT = 6400


@dataclass
class Recovery:
    seconds: dict[str, float | None]
    """client -> seconds from healing to its first number (None: none within OBSERVE_S)"""
    failed_before_heal: dict[str, int]


def _wait_numbers(workers: dict[str, Worker], since: float, timeout_s: float) -> dict[str, float | None]:
    """Per client: when (after ``since``) its first successful call ended; real numbers only."""
    deadline = time.monotonic() + timeout_s
    first: dict[str, float | None] = dict.fromkeys(workers)
    while time.monotonic() < deadline and any(v is None for v in first.values()):
        for label, worker in workers.items():
            if first[label] is None:
                ok = [c.t1 for c in worker.calls() if c.value is not None and c.t0 >= since]
                first[label] = min(ok) - since if ok else None
        time.sleep(0.1)  # between reads of the clients' real results
    return first


@pytest.fixture(scope="module")
def recovery() -> Iterator[Recovery]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    netns.remove_leftovers()
    tag = f"{netns.PREFIX}{os.getpid()}-r"
    root = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
    net = netns.Network(tag)
    procs: list[subprocess.Popen[bytes]] = []
    workers: dict[str, Worker] = {}
    try:
        net.build({"srv": 11, "cli": 21})
        server = public(net.hosts["srv"].address)
        with open(root / "server.log", "wb") as out:
            procs.append(subprocess.Popen(
                net.exec_argv("srv", [sys.executable, "-m", "seqgen_server", "--bind",
                                      f"tcp://0.0.0.0:{PORT}", "--instance", "1", "--instances", "1",
                                      "--data", str(root / "data")]),
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO))
        with open(root / "proxy.log", "wb") as out:
            procs.append(subprocess.Popen(
                net.exec_argv("cli", [sys.executable, "-m", "seqgen_proxy", "--bind",
                                      f"tcp://127.0.0.1:{PROXY_PORT}", "--host", server]),
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO))
        paths = {"sync-direct": ("sync", server), "async-direct": ("async", server),
                 "sync-proxy": ("sync", f"tcp://127.0.0.1:{PROXY_PORT}")}
        if node_missing() is None:
            paths |= {"node-promise-direct": ("node-promise", server),
                      "node-callback-direct": ("node-callback", server)}
        for label, (kind, endpoint) in paths.items():
            config = WorkerConfig(label=label, kind=kind, endpoints=[endpoint],  # type: ignore[arg-type]
                                  name="recovery", rate_per_s=CALL_RATE_S, concurrency=1,
                                  out=str(root / f"{label}.jsonl"), max_duration_s=120.0)
            spec = WorkerSpec("cli", kind, "direct", 1)  # type: ignore[arg-type]
            argv = net.exec_argv("cli", [*worker_program(spec), msgspec.json.encode(config).decode()])
            workers[label] = Worker(spec, config, argv, root / f"{label}.log")
        ready = _wait_numbers(workers, 0.0, 60.0)
        assert all(v is not None for v in ready.values()), f"clients never got a number: {ready}"
        # A silent partition (a firewall, a routed network): IP packets vanish in the switch,
        # ARP still works, so nothing tells either host that the other is unreachable.
        srv, cli = net.hosts["srv"].address, net.hosts["cli"].address
        net.switch_drop([f"ip saddr {cli} ip daddr {srv} drop", f"ip saddr {srv} ip daddr {cli} drop"])
        cut = time.monotonic()
        time.sleep(PARTITION_S)  # the partition lasts; the clients keep calling
        net.heal_switch()
        healed = time.monotonic()
        seconds = _wait_numbers(workers, healed, OBSERVE_S)
        failed = {label: sum(1 for c in w.calls() if c.value is None and cut <= c.t0 < healed)
                  for label, w in workers.items()}
        print(f"recovery after a {PARTITION_S:g} s partition (s): {seconds}; failed calls: {failed}")
        yield Recovery(seconds, failed)
    finally:
        for worker in workers.values():
            worker.stop(10)
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        net.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _check(recovery: Recovery, label: str) -> None:
    # The partition was real: every call during it failed over to nothing.
    assert recovery.failed_before_heal[label] > 0, recovery
    seconds = recovery.seconds[label]
    assert seconds is not None and seconds <= RECOVERY_LIMIT_S, (
        f"{label}: first number {seconds} s after the partition healed "
        f"(limit {RECOVERY_LIMIT_S} s; None: not within {OBSERVE_S} s); all: {recovery.seconds}")


def test_sync_client_uses_the_server_again_at_once(recovery: Recovery) -> None:
    _check(recovery, "sync-direct")


def test_async_client_uses_the_server_again_at_once(recovery: Recovery) -> None:
    _check(recovery, "async-direct")


def test_proxy_uses_the_server_again_at_once(recovery: Recovery) -> None:
    _check(recovery, "sync-proxy")


def test_node_client_uses_the_server_again_at_once(recovery: Recovery) -> None:
    """Both call forms of the Node.js client, with the Python clients' limit."""
    if node_missing() is not None:
        pytest.skip(f"no Node.js client here: {node_missing()}")
    _check(recovery, "node-promise-direct")
    _check(recovery, "node-callback-direct")
