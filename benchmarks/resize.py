"""How long ``POST /resize`` takes (issue 28), measured on real processes.

    .venv/bin/python -m benchmarks.resize [--names 1000] [--json FILE]

Starts instances 1 and 2 of 2, each with ``--names`` sequences (floors raised in bulk
through the control socket) and its admin, and instance 3 of 3 fenced with its admin,
every admin peered with the two others. A client asks for numbers on every server the
whole time. Reports the time of ``POST /resize`` 2 -> 3 and then 3 -> 2, how long the
servers were fenced during it (``fenced_s``, as the coordinator timed it), and the slowest
client call and the failed calls during each.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import msgspec

from benchmarks.daemons import free_endpoint, wait_ready
from benchmarks.plane import free_url, seed, wait_http
from seqgen_client import Client
from seqgen_common.errors import SeqgenError

PY = sys.executable
TOKEN = "t"


class _Calls:
    def __init__(self, endpoints: list[str]) -> None:
        self.slowest_s = 0.0
        self.calls = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(endpoints,), daemon=True)
        self._thread.start()

    def _run(self, endpoints: list[str]) -> None:
        with Client(endpoints) as client:
            while not self._stop.is_set():
                began = time.perf_counter()
                try:
                    client.next("bench/client")
                except SeqgenError:
                    self.failed += 1
                self.calls += 1
                self.slowest_s = max(self.slowest_s, time.perf_counter() - began)

    def reset(self) -> None:
        self.slowest_s, self.calls, self.failed = 0.0, 0, 0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _host(root: Path, k: int, n: int, url: str, peers: list[str], procs: list[subprocess.Popen[bytes]],
          *, fenced: bool = False) -> tuple[str, str]:
    bind, control = free_endpoint(), free_endpoint()
    args = [PY, "-m", "seqgen_server", "--bind", bind, "--control", control, "--instance", str(k),
            "--instances", str(n), "--data", str(root / f"d{k}")]
    procs.append(subprocess.Popen([*args, *(["--fenced"] if fenced else [])],
                                  stderr=subprocess.DEVNULL))
    wait_ready(control, b'{"type":"ping"}', procs[-1])
    admin = [PY, "-m", "seqgen_admin", "--admin", url, "--control", control, "--token", TOKEN,
             "--witness-file", str(root / f"w{k}.db")]
    for peer in peers:
        admin += ["--peer", peer]
    procs.append(subprocess.Popen(admin, stderr=subprocess.DEVNULL))
    return bind, control


def _witnessed(admin: str, instance: int, peer: str, names: int) -> bool:
    """Whether ``admin``'s witness record of ``instance`` (served by ``peer``) has the last
    name at the value that server holds."""
    last = f"name/{names - 1:07d}"
    held = httpx.get(f"{peer}/sequences/{last}", timeout=10).json()["current"]
    page = httpx.get(f"{admin}/witness/{instance}",
                     params={"prefix": "name/", "cursor": f"name/{names - 2:07d}"}, timeout=10)
    items = page.json()["items"] if page.status_code == 200 else []
    return bool(items) and items[-1]["value"] == held


def _caught_up(urls: list[str], serving: list[int], names: int) -> None:
    """Until every admin witnessed every serving peer up to date (the resize is measured
    without the witnesses' catching up after the seed or the previous resize)."""
    while not all(_witnessed(urls[a], k, urls[k - 1], names)
                  for a in range(len(urls)) for k in serving if k != a + 1):
        time.sleep(0.2)


def _resize(url: str, instances: int, calls: _Calls) -> dict[str, object]:
    calls.reset()
    began = time.perf_counter()
    answer = httpx.post(f"{url}/resize", json={"instances": instances}, timeout=600,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    took = time.perf_counter() - began
    if answer.status_code != 200:
        raise RuntimeError(answer.text)
    time.sleep(0.5)  # the calls right after it count too
    body = answer.json()
    return {"resize_s": took, "fenced_s": body["fenced_s"], "prepared": body["prepared"],
            "steps": body["steps"],
            "names": body["names"],
            "slowest_call_s": calls.slowest_s, "calls": calls.calls,
            "failed_calls": calls.failed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.resize")
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sgresize"))
    urls = [free_url() for _ in range(3)]
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, object] = {"names": args.names}
    try:
        binds, controls = [], []
        for k in (1, 2):
            bind, control = _host(root, k, 2, urls[k - 1], [u for u in urls if u != urls[k - 1]],
                                  procs)
            binds.append(bind)
            controls.append(control)
        began = time.perf_counter()
        for k, control in enumerate(controls, 1):
            seed(control, args.names, 10 * k)
        results["seed_s"] = time.perf_counter() - began
        bind, _ = _host(root, 3, 3, urls[2], urls[:2], procs, fenced=True)
        binds.append(bind)
        for url, proc in zip(urls, procs[1::2], strict=True):
            wait_http(url, proc)
        calls = _Calls(binds)
        try:
            _caught_up(urls, [1, 2], args.names)
            results["grow_2_to_3"] = _resize(urls[0], 3, calls)
            _caught_up(urls, [1, 2, 3], args.names)
            results["shrink_3_to_2"] = _resize(urls[1], 2, calls)
        finally:
            calls.stop()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    text = msgspec.json.format(msgspec.json.encode(results)).decode()
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
