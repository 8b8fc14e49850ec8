"""What the operator's plane costs (issue 14), measured on real processes.

    .venv/bin/python -m benchmarks.plane [--names 100000] [--json FILE]

Starts one server with ``--names`` sequences (floors raised in bulk through the
control socket) and its admin, and a peer admin that polls it through HTTP
(``GET /changes``) every second, exactly as a witness does. Reports:

- the first full read of the peer (resync) and the size of the witness record;
- one idle poll (nothing changed) and the poll that carries every name changed;
- a snapshot (``GET /backup``) and the slowest public request served during it;
- ``POST /recover`` of every name;
- the server's own time per change-feed request, from its control counters.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgspec
import zmq

from benchmarks.daemons import free_endpoint, rpc, wait_ready
from seqgen_common.control import Floor, RaiseFloors, decode_control_reply, encode_control

PY = sys.executable


def free_url() -> str:
    return "http://127.0.0.1:" + free_endpoint().rsplit(":", 1)[1]


def seed(control: str, names: int, value: int) -> None:
    for start in range(0, names, 1000):
        floors = [Floor(f"name/{i:07d}", value) for i in range(start, min(start + 1000, names))]
        reply = rpc(control, encode_control(RaiseFloors(floors=floors)), 30)
        assert reply is not None and type(decode_control_reply(reply)).__name__ == "FloorsRaised"


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


def witnessed_all(url: str, names: int, value: int) -> bool:
    page = httpx.get(f"{url}/witness/1", params={"prefix": "name/", "cursor": f"name/{names - 2:07d}"},
                     timeout=10).json()
    return bool(page["items"]) and int(page["items"][-1]["value"]) >= value


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plane")
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, float] = {"names": args.names}
    root = Path(tempfile.mkdtemp(prefix="sgplane"))
    bind, control = free_endpoint(), free_endpoint()
    server = subprocess.Popen([PY, "-m", "seqgen_server", "--bind", bind, "--control", control,
                               "--instance", "1", "--instances", "2", "--data", str(root / "d")],
                              stderr=subprocess.DEVNULL)
    procs = [server]
    try:
        wait_ready(control, b'{"type":"ping"}', server)
        began = time.perf_counter()
        seed(control, args.names, 10)
        results["seed_s"] = time.perf_counter() - began
        own, peer = free_url(), free_url()
        procs.append(subprocess.Popen([PY, "-m", "seqgen_admin", "--admin", own, "--control", control,
                                       "--token", "t", "--peer", peer, "--witness-file",
                                       str(root / "own-witness.db")], stderr=subprocess.DEVNULL))
        wait_http(own, procs[-1])
        # The peer: an admin of a server of its own, witnessing ours every second.
        peer_control = free_endpoint()
        procs.append(subprocess.Popen([PY, "-m", "seqgen_server", "--bind", free_endpoint(),
                                       "--control", peer_control, "--instance", "2",
                                       "--instances", "2", "--data", str(root / "p")],
                                      stderr=subprocess.DEVNULL))
        wait_ready(peer_control, b'{"type":"ping"}', procs[-1])
        began = time.perf_counter()
        procs.append(subprocess.Popen([PY, "-m", "seqgen_admin", "--admin", peer, "--control",
                                       peer_control, "--peer", own, "--witness-file",
                                       str(root / "witness.db"), "--token", "t"],
                                      stderr=subprocess.DEVNULL))
        wait_http(peer, procs[-1])
        while not witnessed_all(peer, args.names, 10):
            time.sleep(0.05)
        results["resync_s"] = time.perf_counter() - began
        results["witness_file_mb"] = sum(
            p.stat().st_size for p in root.glob("witness.db*")) / 1e6

        # Polls as the witness makes them, by hand: one consumer of our own.
        with httpx.Client(base_url=own, timeout=60) as http:
            page = http.get("/changes", params={"consumer": "bench"}).json()
            epoch, ack = page["epoch"], page["seq"]
            idle = []
            for _ in range(20):
                began = time.perf_counter()
                page = http.get("/changes", params={"consumer": "bench", "epoch": epoch,
                                                    "ack": ack, "limit": 5000}).json()
                idle.append(time.perf_counter() - began)
                ack = page["seq"]
            results["idle_poll_ms"] = statistics.median(idle) * 1000
            seed(control, args.names, 20)  # every name changes
            began = time.perf_counter()
            pages = 0
            while True:
                page = http.get("/changes", params={"consumer": "bench", "epoch": epoch,
                                                    "ack": ack, "limit": 5000}).json()
                pages += 1
                ack = page["seq"]
                if not page["more"]:
                    break
            results["all_changed_drain_s"] = time.perf_counter() - began
            results["all_changed_pages"] = pages
        began = time.perf_counter()
        while not witnessed_all(peer, args.names, 20):
            time.sleep(0.05)
        results["witness_catch_up_all_changed_s"] = time.perf_counter() - began

        # A snapshot while a client asks for numbers: the slowest answer during it.
        slowest = [0.0]
        done = threading.Event()

        def client() -> None:
            ctx = zmq.Context.instance()
            sock = ctx.socket(zmq.REQ)
            sock.connect(bind)
            while not done.is_set():
                began = time.perf_counter()
                sock.send(b'["during","0"]')
                sock.recv()
                slowest[0] = max(slowest[0], time.perf_counter() - began)
            sock.close()

        thread = threading.Thread(target=client)
        thread.start()
        time.sleep(0.5)
        before, slowest[0] = slowest[0], 0.0
        began = time.perf_counter()
        response = httpx.get(f"{own}/backup", headers={"Authorization": "Bearer t"}, timeout=600)
        results["backup_s"] = time.perf_counter() - began
        done.set()
        thread.join()
        results["backup_mb"] = len(response.content) / 1e6
        results["slowest_request_before_backup_ms"] = before * 1000
        results["slowest_request_during_backup_ms"] = slowest[0] * 1000

        # Recovery of every name (the peer witnessed them all).
        auth = {"Authorization": "Bearer t"}
        assert httpx.post(f"{own}/fence", headers=auth, timeout=10).status_code == 200
        began = time.perf_counter()
        response = httpx.post(f"{own}/recover", headers=auth, timeout=600)
        results["recover_s"] = time.perf_counter() - began
        assert response.status_code == 200, response.text
        results["recover_raised"] = response.json()["raised"]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    for key, value in results.items():
        print(f"{key:40s} {value:12.3f}")
    if args.json:
        args.json.write_bytes(msgspec.json.encode(results))


if __name__ == "__main__":
    main()
