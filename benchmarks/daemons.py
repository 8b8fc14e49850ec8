"""The processes under test: seqgen servers and proxies, and their floors (``floor``).

Each is started with this Python (``-m PACKAGE``, the installed code under
test) on a free loopback port, with its default flags (log level included),
and is ready when it answers a real request. ``Daemons`` kills them all on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import zmq

__all__ = ["Daemon", "Daemons", "daemons", "free_endpoint", "rpc", "server_counters", "wait_ready"]

REPO: Final = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S: Final = 60.0
_STATUS: Final = b'{"type":"get_status"}'
_PING: Final = b'{"type":"ping"}'


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def rpc(endpoint: str, body: bytes, timeout_s: float = 1.0) -> bytes | None:
    """One REQ round trip on a fresh socket; None when no reply came in time."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(body)
        return sock.recv() if sock.poll(int(timeout_s * 1000)) else None
    finally:
        sock.close()


def wait_ready(endpoint: str, body: bytes, proc: subprocess.Popen[bytes],
               timeout_s: float = READY_TIMEOUT_S) -> float:
    """Seconds until ``endpoint`` answered ``body`` (RuntimeError if ``proc`` exits first)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if rpc(endpoint, body, 0.5) is not None:
            return time.monotonic() - began
    raise RuntimeError(f"{proc.args!r}: {endpoint} not ready after {timeout_s}s")


def server_counters(control: str) -> dict[str, Any]:
    """``counters`` of a server's status, read through its control socket."""
    reply = rpc(control, _STATUS, 5.0)
    if reply is None:
        raise RuntimeError(f"no status from {control}")
    status = msgspec.json.decode(reply)
    counters = status.get("counters") if isinstance(status, dict) else None
    if not isinstance(counters, dict):
        raise RuntimeError(f"unexpected status from {control}: {reply[:200]!r}")
    return counters


class Daemon:
    """One started process: its pid, the endpoint clients use, and (servers) the control one."""

    def __init__(self, proc: subprocess.Popen[bytes], bind: str, control: str | None = None,
                 data: Path | None = None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.bind = bind
        self.control = control
        self.data = data


class Daemons:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._procs: list[subprocess.Popen[bytes]] = []

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{len(self._procs):02d}-{args[0]}.log", "wb")  # noqa: SIM115
        with log:
            proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                                    cwd=REPO, start_new_session=True)
        self._procs.append(proc)
        return proc

    def _wait_ready(self, proc: subprocess.Popen[bytes], endpoint: str, body: bytes) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in self.tmp.glob("*.log"))
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{logs}")
            if rpc(endpoint, body, 0.5) is not None:
                return
        raise RuntimeError(f"{proc.args!r}: {endpoint} not ready after {READY_TIMEOUT_S}s")

    def seqgen_server(self, instance: int = 1, instances: int = 1, data: Path | None = None, *,
                      bind: str | None = None, control: str | None = None,
                      extra: tuple[str, ...] = ()) -> Daemon:
        """A server (on new free endpoints unless ``bind`` and ``control`` are given: a
        restart in place), with ``extra`` flags (``--fenced``)."""
        bind, control = bind or free_endpoint(), control or free_endpoint()
        data = data or self.tmp / f"data-{len(self._procs)}"
        proc = self._start("seqgen_server", "--bind", bind, "--control", control, "--instance", str(instance),
                           "--instances", str(instances), "--data", str(data), *extra)
        self._wait_ready(proc, control, _PING)
        return Daemon(proc, bind, control, data)

    def seqgen_proxy(self, hosts: list[str], *extra: str) -> Daemon:
        bind = free_endpoint()
        args = ["seqgen_proxy", "--bind", bind, *extra]
        for host in hosts:
            args += ["--host", host]
        proc = self._start(*args)
        self._wait_ready(proc, bind, b"[]")  # answered by the proxy itself: uses no number
        return Daemon(proc, bind)

    def seqgen_admin(self, control: str, url: str, peers: list[str], *extra: str) -> Daemon:
        """An admin of the server at ``control`` on ``url``, peered with ``peers``; ready
        when /readyz answers 200 (its server answers it)."""
        args = ["seqgen_admin", "--admin", url, "--control", control,
                "--witness-file", str(self.tmp / f"witness-{len(self._procs)}.db"), *extra]
        for peer in peers:
            args += ["--peer", peer]
        proc = self._start(*args)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/readyz", timeout=0.5).status_code == 200:
                    return Daemon(proc, url)
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{proc.args!r}: {url} not ready after {READY_TIMEOUT_S}s")

    def floor_server(self) -> Daemon:
        bind = free_endpoint()
        proc = self._start("benchmarks.floor", "server", bind)
        self._wait_ready(proc, bind, b'["ready","0"]')
        return Daemon(proc, bind)

    def floor_device(self, backends: list[str]) -> Daemon:
        bind = free_endpoint()
        proc = self._start("benchmarks.floor", "device", bind, *backends)
        self._wait_ready(proc, bind, b'["ready","0"]')
        return Daemon(proc, bind)

    def close(self) -> None:
        for proc in self._procs:
            proc.kill()
            proc.wait()
        self._procs = []


@contextlib.contextmanager
def daemons() -> Iterator[Daemons]:
    """Daemons of one scenario group, in a short temporary directory removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="sgb", dir="/tmp"))
    group = Daemons(tmp)
    try:
        yield group
    finally:
        group.close()
        shutil.rmtree(tmp, ignore_errors=True)
