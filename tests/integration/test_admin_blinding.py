"""The admin cannot be blinded (issue 22): idle and slowloris connections, with real sockets.

An attacker on other loopback addresses (127.0.0.2, or ten of them) opens 1,000
connections to server 1's admin: half never send a byte, half send a request head one
line at a time and never end it. Meanwhile /healthz, /readyz, /status and /metrics answer
200, from 127.0.0.1 and from the attacker's own address, and server 2's admin keeps
polling server 1's (its witness polls). Idle connections beyond the caps were closed for
newer ones; the rest are closed by the header timeout.
"""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cluster, numbers, wait_until
from tests.integration.admin_support import start_admin
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
MAX_IDLE = 50
"""seqgen_admin.app: MAX_CONNECTIONS // 2."""


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 4 * CONNECTIONS) if hard != resource.RLIM_INFINITY else 4 * CONNECTIONS
    if wanted < 2 * CONNECTIONS:
        pytest.skip(f"needs {2 * CONNECTIONS} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def attack(url: str, addresses: list[str]) -> list[socket.socket]:
    """CONNECTIONS sockets from ``addresses`` in turn: even ones idle, odd ones with half a
    request head."""
    parts = urlsplit(url)
    sockets: list[socket.socket] = []
    for i in range(CONNECTIONS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((addresses[i % len(addresses)], 0))
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


def closed(sock: socket.socket) -> bytes | None:
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


def get(url: str, path: str, source: str, timeout_s: float = 5.0) -> int:
    """GET ``path`` on a fresh connection from the address ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, timeout=timeout_s, transport=transport) as http:
        return http.get(path).status_code


@pytest.mark.parametrize("addresses", [1, 10], ids=["one-address", "ten-addresses"])
def test_idle_and_slowloris_connections_do_not_blind_the_admin(
        cluster: Cluster, many_files: None, addresses: int) -> None:
    urls = [free_admin_url(), free_admin_url()]
    extra = ["--header-timeout", str(HEADER_TIMEOUT_S), "--max-connections-per-client",
             str(PER_CLIENT)]
    a = start_host(cluster, 1, 2, urls[0], [urls[1]], admin_extra=extra)
    b: Host = start_host(cluster, 2, 2, urls[1], [urls[0]], admin_extra=extra)
    attackers = [f"127.0.0.{2 + i}" for i in range(addresses)]
    sockets = attack(a.admin.url, attackers)
    try:
        # Probes from elsewhere, and from an attacker's own address, are answered.
        for source in ("127.0.0.1", attackers[0]):
            for path in ("/healthz", "/readyz", "/status", "/metrics"):
                assert get(a.admin.url, path, source) == 200, (path, source)
        # The peer's witness polls still get through: it sees what server 1 issues now.
        got = numbers(a.server.bind, "during-attack", count=5)
        wait_witnessed(b, 1, "during-attack", got[-1])
        peer = cluster_view(b)["peers"]
        assert isinstance(peer, list) and peer[0]["reachable"] is True
        drip(sockets)
        still_open = [sock for sock in sockets if closed(sock) is None]
        # At most MAX_IDLE idle connections in all, PER_CLIENT per address: the rest were
        # closed for newer ones.
        assert len(still_open) <= min(MAX_IDLE, PER_CLIENT * addresses), len(still_open)

        def all_closed() -> bool:  # the rest: by the header timeout, dripping or not
            drip(sockets)
            return all(closed(sock) is not None for sock in sockets)

        wait_until(all_closed, HEADER_TIMEOUT_S + 10, "the header timeout closes the rest")
        assert get(a.admin.url, "/healthz", attackers[0]) == 200
        with httpx.Client(base_url=a.admin.url, timeout=5) as http:
            text = http.get("/metrics").text
        seen = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert seen["seqgen_admin_connections_evicted_total"] >= CONNECTIONS - MAX_IDLE
        assert seen["seqgen_admin_connections_timed_out_total"] >= 1
        assert seen["seqgen_admin_connections_refused_total"] == 0  # nothing was being answered
        assert 1 <= seen["seqgen_admin_connections_open"] <= 10  # this scrape, peer polls
    finally:
        for sock in sockets:
            sock.close()
    assert "closing the longest idle" in a.admin.proc.log()


def test_an_address_whose_connections_are_all_being_answered_gets_503(cluster: Cluster) -> None:
    """Two requests from one address wait on a stopped server; a third connection from it
    is refused at once, before any of its bytes is read; other addresses are served."""
    server = cluster.server(1, 1)
    # The two requests wait on the stopped server for the whole control timeout: long, so
    # that a busy machine still finds both being answered when the third connects.
    admin = start_admin(cluster, server.control, control_timeout_s=20.0,
                        extra=["--max-connections-per-client", "2"])
    source = "127.0.0.9"
    server.stop()
    # Both requests are on the wire before the probes below: an answered /healthz from
    # another address then means the admin has read them (one event loop, in order). A
    # third connection made while one of them was still unread would close that one as
    # idle instead of being refused.
    slow = [send_request(admin.url, "/status", source) for _ in range(2)]
    try:
        wait_until(lambda: get(admin.url, "/healthz", "127.0.0.1") == 200
                   and third(admin.url, source).startswith(b"HTTP/1.1 503"), 15,
                   "the third connection refused")
        assert b"too many connections" in third(admin.url, source)
        assert [status_of(sock) for sock in slow] == [503, 503]  # the server did not answer
    finally:
        for sock in slow:
            sock.close()
        server.cont()
    assert get(admin.url, "/healthz", source) == 200
    assert "refusing more" in admin.proc.log()


def send_request(url: str, path: str, source: str) -> socket.socket:
    """A whole GET of ``path`` sent from ``source`` on a raw connection (answer not read)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30,
                                    source_address=(source, 0))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 "Connection: close\r\n\r\n".encode())
    return sock


def status_of(sock: socket.socket) -> int:
    """The status code of the answer on ``sock`` (read until the admin closes it)."""
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return int(got.split(b" ", 2)[1])


def third(url: str, source: str) -> bytes:
    """What a raw connection from ``source`` gets before it is closed (or within 1 s)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=1,
                                  source_address=(source, 0)) as sock:
        got = b""
        try:
            while chunk := sock.recv(4096):
                got += chunk
        except TimeoutError:
            pass
        return got
