"""The admin cannot be blinded (issue 22): idle and slowloris connections, with real sockets.

An attacker on another loopback address (127.0.0.2) opens 1,000 connections to server 1's
admin: half never send a byte, half send a request head one line at a time and never end
it. Meanwhile /healthz, /readyz and /status answer 200 from 127.0.0.1, and server 2's admin
keeps polling server 1's (its witness polls). The connections over the per-address cap
get 503 at once; those within it are closed by the header timeout.
"""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Cluster, numbers, wait_until
from tests.integration.operator_support import (
    Host,
    cluster_view,
    free_admin_url,
    start_host,
    wait_witnessed,
)

ATTACKER = "127.0.0.2"
CONNECTIONS = 1000
HEADER_TIMEOUT_S = 2.0
PER_CLIENT = 16


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 4 * CONNECTIONS) if hard != resource.RLIM_INFINITY else 4 * CONNECTIONS
    if wanted < 2 * CONNECTIONS:
        pytest.skip(f"needs {2 * CONNECTIONS} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def attack(url: str) -> list[socket.socket]:
    """CONNECTIONS sockets from ATTACKER: even ones idle, odd ones with half a request head."""
    parts = urlsplit(url)
    sockets: list[socket.socket] = []
    for i in range(CONNECTIONS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((ATTACKER, 0))
        sock.settimeout(5)
        sock.connect((parts.hostname, parts.port))
        if i % 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def drip(sockets: list[socket.socket]) -> None:
    """One more header line on every slowloris socket still open."""
    for i, sock in enumerate(sockets):
        if i % 2 and sock.fileno() != -1:
            try:
                sock.send(b"X-a: b\r\n")
            except OSError:
                sock.close()


def closed_or_refused(sock: socket.socket) -> bytes | None:
    """What the admin sent before it closed ``sock`` (None: still open and silent)."""
    if sock.fileno() == -1:
        return b""
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except BlockingIOError:
        return None
    except OSError:
        pass
    sock.close()
    return got


def test_idle_and_slowloris_connections_do_not_blind_the_admin(cluster: Cluster,
                                                               many_files: None) -> None:
    urls = [free_admin_url(), free_admin_url()]
    extra = ["--header-timeout", str(HEADER_TIMEOUT_S), "--max-connections-per-client",
             str(PER_CLIENT)]
    a = start_host(cluster, 1, 2, urls[0], [urls[1]], admin_extra=extra)
    b: Host = start_host(cluster, 2, 2, urls[1], [urls[0]], admin_extra=extra)
    sockets = attack(a.admin.url)
    try:
        with httpx.Client(base_url=a.admin.url, timeout=5) as http:
            for path in ("/healthz", "/readyz", "/status", "/metrics"):
                assert http.get(path).status_code == 200, path
        # The peer's witness polls still get through: it sees what server 1 issues now.
        got = numbers(a.server.bind, "during-attack", count=5)
        wait_witnessed(b, 1, "during-attack", got[-1])
        peer = cluster_view(b)["peers"]
        assert isinstance(peer, list) and peer[0]["reachable"] is True
        drip(sockets)
        answers = [closed_or_refused(sock) for sock in sockets]
        closed = [answer for answer in answers if answer is not None]
        assert len(closed) >= CONNECTIONS - PER_CLIENT, len(closed)
        # (A slowloris socket may lose the answer to a reset: it sent bytes nobody read.)
        refused = [answer for answer in answers[::2] if answer is not None
                   and answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer]
        assert len(refused) >= CONNECTIONS // 2 - PER_CLIENT, len(refused)
        # The ones within the cap: closed by the header timeout, dripping or not.

        def all_closed() -> bool:
            drip(sockets)
            return all(closed_or_refused(sock) is not None for sock in sockets)
        wait_until(all_closed, HEADER_TIMEOUT_S + 10, "the header timeout closes the rest")
        with httpx.Client(base_url=a.admin.url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
    finally:
        for sock in sockets:
            sock.close()
    assert "--max-connections-per-client" in a.admin.proc.log()
