"""Shared fixtures: real seqgen processes on free ports, raw zmq helpers.

Every process is started with ``sys.executable -m PACKAGE`` (the installed code
under test) and is ready when it answers a real request, never after a sleep.
Everything still running at the end of a test is killed.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
import zmq

from seqgen_common.errors import SeqgenError

READY_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tcp() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def request(endpoint: str, *frames: bytes, timeout_s: float = 5.0) -> list[bytes] | None:
    """One REQ round trip on a fresh socket; None when no reply came in time."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(list(frames))
        if sock.poll(int(timeout_s * 1000)):
            return sock.recv_multipart()
        return None
    finally:
        sock.close()


def ask(endpoint: str, body: bytes | object, timeout_s: float = 5.0) -> list[object]:
    """Send one public request (bytes, or a value to JSON-encode); the decoded reply."""
    frame = body if isinstance(body, bytes) else msgspec.json.encode(body)
    reply = request(endpoint, frame, timeout_s=timeout_s)
    assert reply is not None, f"no reply from {endpoint} within {timeout_s}s"
    assert len(reply) == 1, reply
    decoded = msgspec.json.decode(reply[0])
    assert isinstance(decoded, list)
    return decoded


def numbers(endpoint: str, name: str, last: int = 0, count: int | None = None) -> list[int]:
    """Ask for numbers and insist on success."""
    body: list[object] = [name, str(last)] if count is None else [name, str(last), count]
    reply = ask(endpoint, body)
    assert reply[0] is None, reply
    return [int(str(v)) for v in reply[1:]]


class Proc:
    """A real seqgen process started by the fixtures."""

    def __init__(
        self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.popen = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self) -> int:
        self.signal(signal.SIGKILL)
        return self.wait()

    def term(self, timeout_s: float = 10.0) -> int:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def stop(self) -> None:
        self.signal(signal.SIGSTOP)

    def cont(self) -> None:
        self.signal(signal.SIGCONT)

    def wait(self, timeout_s: float = 10.0) -> int:
        try:
            code = self.popen.wait(timeout_s)
        finally:
            self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class ServerProc(Proc):
    def __init__(self, args: Sequence[str], log_path: Path, bind: str, control: str, data: Path):
        super().__init__(args, log_path)
        self.bind = bind
        self.control = control
        self.data = data

    def ping(self, timeout_s: float = 1.0) -> bool:
        return request(self.control, b'{"type":"ping"}', timeout_s=timeout_s) is not None


def require_tools(*tools: str) -> None:
    """Skip the calling test, with the reason, unless every tool is on PATH (and we are root)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH (scripts/test installs them as root)")


def wait_until(check: object, timeout_s: float, what: str, proc: Proc | None = None) -> None:
    """Poll ``check()`` (which makes a real request with its own timeout) until true."""
    deadline = time.monotonic() + timeout_s
    assert callable(check)
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{what}: process exited {proc.popen.returncode}:\n{proc.log()}")
        if check():
            return
        time.sleep(0.02)  # between real probes only
    raise AssertionError(f"{what} not ready after {timeout_s}s" + (f":\n{proc.log()}" if proc else ""))


def in_forked_child(work: Callable[[], object], timeout_s: float = 30.0) -> tuple[int, object]:
    """Run ``work`` in a forked child; (its exit status, what it returned, JSON round-tripped).

    A SeqgenError in the child is reported as its text. A child that does not report
    within ``timeout_s`` (it hangs, e.g. on its parent's sockets) is killed and fails.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_fd)
            report: object
            try:
                report = work()
            except SeqgenError as exc:
                report = str(exc)
            os.write(write_fd, msgspec.json.encode(report))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    data = b""
    try:
        ready, _, _ = select.select([read_fd], [], [], timeout_s)
        if ready:
            while chunk := os.read(read_fd, 65536):
                data += chunk
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    assert ready, f"the forked child did not report within {timeout_s} s"
    return status, msgspec.json.decode(data) if data else None


class Cluster:
    """Starts real servers, proxies and admins; kills what is left at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[Proc] = []
        self._n = 0

    def _log(self, kind: str) -> Path:
        self._n += 1
        return self.root / f"{self._n:02d}-{kind}.log"

    def server(
        self,
        instance: int = 1,
        instances: int = 1,
        *,
        data: Path | None = None,
        bind: str | None = None,
        control: str | None = None,
        drift: int | None = None,
        reserve: int | None = None,
        extra: Sequence[str] = (),
        wait: bool = True,
    ) -> ServerProc:
        bind = bind or tcp()
        control = control or tcp()
        data = data or self.root / f"data-{instance}-of-{instances}-{self._n}"
        args = [
            sys.executable, "-m", "seqgen_server", "--bind", bind, "--control", control,
            "--instance", str(instance), "--instances", str(instances), "--data", str(data),
        ]
        if drift is not None:
            args += ["--drift", str(drift)]
        if reserve is not None:
            args += ["--reserve", str(reserve)]
        args += list(extra)
        proc = ServerProc(args, self._log("server"), bind, control, data)
        self.procs.append(proc)
        if wait:
            wait_until(proc.ping, READY_TIMEOUT_S, "seqgen-server", proc)
        return proc

    def restart(self, old: ServerProc, wait: bool = True) -> ServerProc:
        """The same server (flags, data, endpoints) started again."""
        proc = ServerProc(old.args, self._log("server"), old.bind, old.control, old.data)
        self.procs.append(proc)
        if wait:
            wait_until(proc.ping, READY_TIMEOUT_S, "seqgen-server (restarted)", proc)
        return proc

    def proxy(self, hosts: Sequence[str], *, bind: str | None = None,
              extra: Sequence[str] = (), wait: bool = True) -> Proc:
        bind = bind or tcp()
        args = [sys.executable, "-m", "seqgen_proxy", "--bind", bind]
        for host in hosts:
            args += ["--host", host]
        proc = Proc([*args, *extra], self._log("proxy"))
        proc.bind = bind  # type: ignore[attr-defined]
        self.procs.append(proc)
        if wait:
            # A request the proxy answers itself proves it serves, without using a number.
            wait_until(lambda: request(bind, b"[]", timeout_s=0.5) is not None,
                       READY_TIMEOUT_S, "seqgen-proxy", proc)
        return proc

    def command(
        self, args: Sequence[str], kind: str = "cmd", env: dict[str, str] | None = None
    ) -> Proc:
        """Any other long-running process (admin, supervisord...), tracked for teardown."""
        proc = Proc(args, self._log(kind), env)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.signal(signal.SIGCONT)
                proc.signal(signal.SIGKILL)
                proc.wait()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir (ipc:// paths must stay under ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sg", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster(short_tmp: Path) -> Iterator[Cluster]:
    c = Cluster(short_tmp)
    try:
        yield c
    finally:
        c.close()
