"""seqgen-admin when things go wrong: no token, the server down, stopped or killed, SIGTERM."""

from __future__ import annotations

import concurrent.futures
import signal
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seqgen_admin.config import TOKEN_ENV
from tests.conftest import READY_TIMEOUT_S, Cluster, numbers, request, wait_until
from tests.integration.admin_support import bearer, start_admin

SERVER_BACKED = ("/readyz", "/status", "/sequences", "/sequences/some-name")
SHORT_TIMEOUT_S = 0.5
"""--control-timeout where a test waits for many 503s."""
HANG_S = SHORT_TIMEOUT_S + 10.0
"""Far above the control timeout: a call that takes this long hangs (behaviour, not speed)."""
"""An unavailable answer must come within the control timeout (plus slack for a busy machine)."""


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def test_no_token_configured_refuses_every_write(cluster: Cluster) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control)
    with admin.client() as http:
        for headers in ({}, bearer("anything"), {"Authorization": "Basic eDp5"}):
            response = http.put("/sequences/inv/floor", json={"value": "100"}, headers=headers)
            assert response.status_code == 403, headers
            assert "SEQGEN_ADMIN_TOKEN" in response.json()["detail"]
        assert http.put("/sequences/inv/floor", json={"value": "x"}).status_code == 403
        assert http.get("/sequences/inv").status_code == 404  # nothing was written
        assert http.get("/status").status_code == 200  # reads work without a token


def test_token_from_the_environment(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    server = cluster.server()
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    admin = start_admin(cluster, server.control)
    with admin.client() as http:
        assert http.put("/sequences/e/floor", json={"value": "9"}).status_code == 401
        assert http.put("/sequences/e/floor", json={"value": "9"},
                        headers=bearer("other")).status_code == 401
        ok = http.put("/sequences/e/floor", json={"value": "9"}, headers=bearer("from-env"))
        assert ok.status_code == 200
    assert numbers(server.bind, "e") == [10]


def test_server_down_answers_503_fast_and_recovers(cluster: Cluster) -> None:
    server = cluster.server()
    numbers(server.bind, "some-name", count=2)
    admin = start_admin(cluster, server.control, token="t", control_timeout_s=SHORT_TIMEOUT_S)
    with admin.client() as http:
        for path in SERVER_BACKED:
            assert http.get(path).status_code == 200, path
        server.kill()
        for path in SERVER_BACKED:
            started = time.monotonic()
            response = http.get(path)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, path
            assert elapsed < HANG_S, (path, elapsed)
            assert response.headers["retry-after"] == "1"
            assert "did not answer" in response.json()["detail"]
        floor = http.put("/sequences/some-name/floor", json={"value": "50"}, headers=bearer("t"))
        assert floor.status_code == 503
        assert http.get("/healthz").status_code == 200  # the admin itself is fine
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
        assert families["seqgen_server_up"].samples[0].value == 0
        assert "seqgen_requests" not in families
        assert "seqgen_admin_http_requests" in families
        # Many requests at once while down: all 503, none waits for another.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            started = time.monotonic()
            codes = list(pool.map(lambda _: http.get("/status").status_code, range(8)))
            assert codes == [503] * 8
            assert time.monotonic() - started < HANG_S

        restarted = cluster.restart(server)
        wait_until(lambda: ready(admin.url), READY_TIMEOUT_S, "admin sees the server again",
                   admin.proc)
        # Killed: it restarts from its durable mark, past what it issued.
        assert int(http.get("/sequences/some-name").json()["current"]) >= 2
        assert http.get("/status").status_code == 200
        assert restarted.alive()
        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
        assert families["seqgen_server_up"].samples[0].value == 1


def test_server_not_running_when_the_admin_starts(cluster: Cluster) -> None:
    server = cluster.server()
    server.kill()
    admin = start_admin(cluster, server.control, control_timeout_s=SHORT_TIMEOUT_S)
    with admin.client() as http:
        assert http.get("/readyz").status_code == 503
        cluster.restart(server)
        wait_until(lambda: ready(admin.url), READY_TIMEOUT_S, "admin after the server starts",
                   admin.proc)


def test_stopped_server_then_late_replies_are_not_mixed_up(cluster: Cluster) -> None:
    server = cluster.server()
    for name in ("late/a", "late/b"):
        numbers(server.bind, name)
    numbers(server.bind, "late/b")
    admin = start_admin(cluster, server.control, control_timeout_s=SHORT_TIMEOUT_S)
    with admin.client() as http:
        server.stop()
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(
                    lambda p: http.get(p).status_code,
                    ["/sequences/late/a", "/sequences/late/b", "/status", "/readyz"]))
            assert codes == [503] * 4
        finally:
            server.cont()
        # The server now answers the queued requests late; those replies must be dropped,
        # never handed to the calls below.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for _ in range(5):
                a, b, s = pool.map(http.get, ["/sequences/late/a", "/sequences/late/b", "/status"])
                assert a.json()["current"] == "1"
                assert b.json()["current"] == "2"
                assert "counters" in s.json()


def test_floor_is_durable_across_a_server_kill_9(cluster: Cluster) -> None:
    server = cluster.server(reserve=1000)
    numbers(server.bind, "durable/old", count=3)
    admin = start_admin(cluster, server.control, token="t")
    with admin.client() as http:
        for name, value in (("durable/new", "700000"), ("durable/old", "123456789012")):
            response = http.put(f"/sequences/{name}/floor", json={"value": value},
                                headers=bearer("t"))
            assert response.status_code == 200
            assert response.json()["durable"] == value  # durable before the reply
        server.kill()
        cluster.restart(server)
        wait_until(lambda: ready(admin.url), READY_TIMEOUT_S, "restarted server", admin.proc)
        assert numbers(server.bind, "durable/new")[0] > 700000
        assert numbers(server.bind, "durable/old")[0] > 123456789012
        status = http.get("/status").json()
        assert status["clean_start"] is False
        refused = http.put("/sequences/durable/new/floor", json={"value": "700000"},
                           headers=bearer("t"))
        assert refused.status_code == 409


def test_sigterm_and_sigint_stop_the_admin_cleanly(cluster: Cluster) -> None:
    server = cluster.server()
    for sig in (signal.SIGTERM, signal.SIGINT):
        admin = start_admin(cluster, server.control)
        admin.proc.signal(sig)
        assert admin.proc.wait(10) == 0, admin.proc.log()
        log = admin.proc.log()
        assert "Traceback" not in log
        assert "seqgen_admin" in log  # it logs through logging, with logger names


def test_bad_flags_exit_with_status_2(cluster: Cluster) -> None:
    for args in (["--admin", "tcp://127.0.0.1:1"], ["--control", "http://x"],
                 ["--token", "has space"], ["--control-timeout", "0"]):
        proc = cluster.command([sys.executable, "-m", "seqgen_admin", *args], "admin-bad")
        assert proc.wait(15) == 2, args
        assert "seqgen-admin: error:" in proc.log()


def test_port_in_use_fails_to_start(cluster: Cluster) -> None:
    server = cluster.server()
    admin = start_admin(cluster, server.control)
    proc = cluster.command([sys.executable, "-m", "seqgen_admin", "--admin", admin.url,
                            "--control", server.control], "admin-dup")
    assert proc.wait(15) != 0
    assert admin.proc.alive()


def test_control_socket_refuses_invalid_floor_names(cluster: Cluster) -> None:
    server = cluster.server()
    for name in ('"bad\\u0001name"', '"' + "é" * 101 + '"'):
        reply = request(server.control,
                        b'{"type":"raise_floor","name":' + name.encode() + b',"value":5}')
        assert reply is not None
        assert b'"code":"BAD_REQUEST"' in reply[0], reply
    listing = request(server.control, b'{"type":"list_sequences"}')
    assert listing is not None and b'"items":[]' in listing[0]
