"""Hostile peers against real daemons: memory, connections and request bodies stay bounded.

What libzmq cannot bound by itself (one multi-part message has no total limit)
is bounded by the mitigations the project ships: --memory-limit-mb and CURVE
with --curve-clients (SECURITY.md states the measured figures).
"""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import zmq

from seqgen_client import Client
from tests.conftest import Cluster, Proc, ServerProc, ask, numbers, request, tcp
from tests.integration.admin_support import bearer, start_admin
from tests.zmtp import connect, frame

MB = 1024 * 1024


def rss_mb(proc: Proc) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """The highest RSS a process reaches while the ``with`` block runs."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(0.02):
            try:
                self.peak_mb = max(self.peak_mb, rss_mb(self.proc))
            except (OSError, AssertionError):
                return

    def __enter__(self) -> PeakRss:
        self.peak_mb = rss_mb(self.proc)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    return host, int(port)


def stream_endless_message(endpoint: str, seconds: float) -> tuple[int, bool]:
    """Send 60 kB frames of one multi-part message that never ends.

    The bytes sent, and whether the daemon dropped the connection (else time ran out).
    """
    sent = 0
    chunk = frame(b"x" * 60_000, more=True)
    try:
        sock = connect(*host_port(endpoint))
    except OSError:
        return 0, True
    with sock:
        give_up_at = time.monotonic() + seconds
        try:
            while time.monotonic() < give_up_at:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            return sent, True
    return sent, False


def test_an_endless_multipart_message_is_bounded_by_the_memory_limit(cluster: Cluster) -> None:
    server = cluster.server(extra=["--memory-limit-mb", "200"])
    assert "at most 200 MB of data" in server.log()
    with PeakRss(server) as rss:
        sent, dropped = stream_endless_message(server.bind, seconds=10)
    assert dropped, f"{sent / MB:.0f} MB went in and the connection still stands"
    assert sent > 100 * MB  # the stream really pushed: the limit, not a stall, ended it
    assert rss.peak_mb < 200 + 100, rss.peak_mb
    assert server.alive()
    assert numbers(server.bind, "after-the-stream") == [1]  # it serves on, unharmed


def test_curve_refuses_unknown_peers_before_reading_a_message(cluster: Cluster, short_tmp: Path) -> None:
    keys = short_tmp / "keys"
    allowed = short_tmp / "allowed"
    for name in ("server", "app"):
        subprocess.run([sys.executable, "-m", "seqgen_client", "keygen", str(keys), "--name", name],
                       check=True, capture_output=True)
    allowed.mkdir()
    (allowed / "app.key").write_bytes((keys / "app.key").read_bytes())
    server = cluster.server(extra=["--curve-secret-key", str(keys / "server.key_secret"),
                                   "--curve-clients", str(allowed)], wait=True)
    with PeakRss(server) as rss:
        before = rss.peak_mb
        sent, dropped = stream_endless_message(server.bind, seconds=2)
    assert dropped and sent < MB, sent  # refused at the handshake, before any message
    assert rss.peak_mb - before < 30, (before, rss.peak_mb)
    with Client(server.bind, server_public_key=keys / "server.key",
                client_secret_key=keys / "app.key_secret") as client:
        assert client.next("curve-after") == 1


def test_junk_from_eight_dealers_keeps_memory_flat(cluster: Cluster) -> None:
    server = cluster.server()
    ctx = zmq.Context()
    socks = []
    for _ in range(8):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.connect(server.bind)
        socks.append(sock)
    junk = b"j" * 65_000
    with PeakRss(server) as rss:
        before = rss.peak_mb
        give_up_at = time.monotonic() + 3
        sent = 0
        while time.monotonic() < give_up_at:
            for sock in socks:
                try:
                    sock.send_multipart([b"", junk], zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    pass
    for sock in socks:
        sock.close()
    ctx.term()
    assert sent > 1000
    assert rss.peak_mb - before < 150, (before, rss.peak_mb)
    assert numbers(server.bind, "after-junk") == [1]


@pytest.fixture
def many_files() -> Iterator[None]:
    """This test process may hold a few thousand connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4500:
        pytest.skip(f"the hard limit of open files is {hard}; the test needs 4500")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_2000_idle_connections_under_a_soft_limit_of_1024(cluster: Cluster, many_files: None) -> None:
    """As under supervisord's default soft limit: the daemons raise it, so nobody is locked out."""
    bind, control = tcp(), tcp()
    args = ["/bin/sh", "-c", 'ulimit -Sn 1024 && exec "$0" "$@"',  # supervisord's default
            sys.executable, "-m", "seqgen_server", "--bind", bind, "--control", control,
            "--instance", "1", "--instances", "1", "--data", str(cluster.root / "data")]
    popen_log = cluster.root / "fds-server.log"
    with open(popen_log, "wb") as log:
        server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while request(control, b'{"type":"ping"}', timeout_s=0.5) is None:
            assert time.monotonic() < deadline and server.poll() is None, popen_log.read_text()
        assert "open files: limit" in popen_log.read_text()
        assert "(was 1024;" in popen_log.read_text()
        idle = [connect(*host_port(bind)) for _ in range(2000)]  # real ZMTP peers, idle
        try:
            started = time.monotonic()
            reply = ask(bind, ["after-2000", "0"], timeout_s=1.0)  # a new client, within 1 s
            assert reply == [None, "1"]
            assert time.monotonic() - started < 1.0
            assert request(control, b'{"type":"ping"}', timeout_s=1.0) is not None
            admin = start_admin(cluster, control)
            assert httpx.get(f"{admin.url}/readyz", timeout=5).status_code == 200
        finally:
            for sock in idle:
                sock.close()
    finally:
        server.kill()
        server.wait()


# ---- the admin: bodies and tokens before anything is read --------------------------------


def raw_http(url: str, head: str, body_chunks: list[bytes] | None = None) -> tuple[int, float]:
    """Send a request head (and maybe some body); the status line's code and the seconds taken."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode())
        for chunk in body_chunks or []:
            try:
                sock.sendall(chunk)
            except OSError:
                break
        response = sock.recv(4096)
    status = int(response.split(b" ", 2)[1])
    return status, time.monotonic() - started


def test_a_huge_write_is_refused_before_its_body_is_read(cluster: Cluster) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control, token="secret")
    before = rss_mb(admin.proc)
    gib = 1024 * MB
    head = ("PUT /sequences/x/floor HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
            f"Content-Length: {gib}\r\n")
    # No token: refused at once, without one byte of the body.
    status, _ = raw_http(admin.url, head + "\r\n")
    assert status in (401, 413)
    # The right token, the same size: 413, still without reading it.
    status, _ = raw_http(admin.url, head + "Authorization: Bearer secret\r\n\r\n")
    assert status == 413
    # A chunked body that never says its size: cut off after 4 KiB.
    chunked = ("PUT /sequences/x/floor HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nAuthorization: Bearer secret\r\n\r\n")
    chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
    status, _ = raw_http(admin.url, chunked, [chunk] * 64)
    assert status == 413
    no_token = chunked.replace("Authorization: Bearer secret\r\n", "")
    status, _ = raw_http(admin.url, no_token, [chunk] * 64)
    assert status == 401
    assert rss_mb(admin.proc) - before < 20
    with httpx.Client(base_url=admin.url, timeout=10) as http:  # small writes work as before
        ok = http.put("/sequences/x/floor", json={"value": "41"}, headers=bearer("secret"))
        assert ok.status_code == 200, ok.text
    assert numbers(server.bind, "x") == [42]


def test_names_are_exact_at_the_admin(cluster: Cluster) -> None:
    server = cluster.server()
    for name in ("x\U0010ffffa", "x\U0010ffff", "y", "x"):
        numbers(server.bind, name)
    admin = start_admin(cluster, server.control, token="secret")
    with httpx.Client(base_url=admin.url, timeout=10) as http:
        page = http.get("/sequences", params={"prefix": "x\U0010ffff"}).json()
        assert [item["name"] for item in page["items"]] == ["x\U0010ffff", "x\U0010ffffa"]
        # Percent-encoded bytes that are not UTF-8 name no sequence: 422, nothing floored.
        bad = http.put("/sequences/%ED%A0%80/floor", json={"value": "5"}, headers=bearer("secret"))
        assert bad.status_code == 422
        assert http.get("/sequences/%EF%BF%BD%EF%BF%BD%EF%BF%BD").status_code == 404


def test_last_with_a_trailing_newline_is_bad_last(cluster: Cluster) -> None:
    server = cluster.server()
    reply = ask(server.bind, b'["a","5\\n"]')
    assert reply[0] == "BAD_LAST", reply
    assert numbers(server.bind, "a") == [1]  # nothing was issued
    assert isinstance(server, ServerProc)
