"""The operator's plane against real servers and admins (issue 14): the cluster view and its
conflicts, the fence, the witness record, recovery's refusals, backups and auth."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

from seqgen_client import Client
from seqgen_common.control import Floor, RaiseFloors, encode_control
from tests.conftest import Cluster, ask, numbers, request, wait_until
from tests.integration.admin_support import bearer, start_admin
from tests.integration.operator_support import (
    TOKEN,
    Host,
    cluster_view,
    free_admin_url,
    metric,
    pair,
    peers_reachable,
    restart_admin,
    start_host,
    wait_witnessed,
    witnessed,
)


def page_of(host: Host, instance: int = 1) -> dict[str, Any]:
    with host.http() as http:
        response = http.get(f"/witness/{instance}")
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


# ---- the cluster view ----------------------------------------------------------------


def test_two_peered_servers_see_each_other_without_conflicts(cluster: Cluster) -> None:
    a, b = pair(cluster)
    wait_until(peers_reachable(a, 1), 15, "admin 1 sees server 2")
    view = cluster_view(a)
    assert (view["instance"], view["instances"], view["reachable"]) == (1, 2, True)
    assert view["conflicts"] == []
    (peer,) = view["peers"]  # type: ignore[misc]
    assert peer["url"] == b.admin.url
    assert (peer["instance"], peer["instances"], peer["fenced"]) == (2, 2, False)
    assert peer["version"] == view["version"] and peer["last_seen"].endswith("Z")
    assert metric(a, "seqgen_cluster_peers_reachable") == 1
    assert metric(a, "seqgen_cluster_conflicts") == 0
    # A peer that goes away shows as unreachable, with the reason.
    b.server.kill()
    wait_until(peers_reachable(a, 0), 15, "admin 1 notices server 2 is gone")
    (peer,) = cluster_view(a)["peers"]  # type: ignore[misc]
    assert peer["reachable"] is False and "503" in peer["error"]
    assert metric(a, "seqgen_cluster_peers_reachable") == 0


def test_an_instance_used_twice_is_a_conflict_within_two_intervals(cluster: Cluster) -> None:
    interval_s = 1.0
    urls = [free_admin_url() for _ in range(3)]
    a = start_host(cluster, 1, 2, urls[0], [urls[1], urls[2]], interval_s=interval_s)
    b = start_host(cluster, 2, 2, urls[1], [urls[0], urls[2]], interval_s=interval_s)
    wait_until(peers_reachable(a, 1), 15, "admin 1 sees server 2")
    assert cluster_view(a)["conflicts"] == []
    # The mistake: a third server started as instance 1 again, and peered in.
    c = start_host(cluster, 1, 2, urls[2], [urls[0], urls[1]], interval_s=interval_s)
    with c.http() as http:
        assert http.get("/readyz").status_code == 200
    started = time.monotonic()
    wait_until(lambda: cluster_view(a)["conflicts"] != [], 10, "admin 1 sees the conflict")
    assert time.monotonic() - started <= 2 * interval_s
    for host in (a, b, c):
        wait_until(lambda h=host: cluster_view(h)["conflicts"] != [], 10, "every admin sees it")
        (conflict,) = cluster_view(host)["conflicts"]  # type: ignore[misc]
        assert conflict.startswith("instance 1 is used by 2 servers"), conflict
        assert metric(host, "seqgen_cluster_conflicts") == 1
    # Fixed (the third server stops): the conflict goes away.
    c.server.kill()
    wait_until(lambda: cluster_view(a)["conflicts"] == [], 15, "the conflict clears")
    assert metric(a, "seqgen_cluster_conflicts") == 0


# ---- the fence ----------------------------------------------------------------------


def test_a_fenced_server_sends_clients_to_the_other_at_once(cluster: Cluster) -> None:
    a, b = pair(cluster)
    with a.http() as http:
        response = http.post("/fence")
        assert response.status_code == 200 and response.json() == {"fenced": True}
        assert http.get("/status").json()["fenced"] is True
    assert ask(a.server.bind, ["x", "0"]) == ["UNAVAILABLE", "fenced"]
    assert ask(a.server.bind, b"not even json") == ["UNAVAILABLE", "fenced"]
    timeout_s = 5.0  # far above what a fenced answer takes: a call that waited it timed out
    with Client([a.server.bind, b.server.bind], timeout_s=timeout_s, deadline_s=20) as client:
        for _ in range(10):
            started = time.monotonic()
            value = client.next("fenced/x")
            assert time.monotonic() - started < timeout_s
            assert value % 2 == 0  # from server 2 (even numbers)
    with a.http() as http:
        before = http.get("/status").json()["counters"]["requests"]["UNAVAILABLE"]
    proxy = cluster.proxy([a.server.bind, b.server.bind])
    through = [numbers(proxy.bind, "fenced/p")[0] for _ in range(200)]  # type: ignore[attr-defined]
    assert all(v % 2 == 0 for v in through)  # the proxy moves on to server 2 too
    with a.http() as http:
        counters = http.get("/status").json()["counters"]
        assert counters["requests"]["UNAVAILABLE"] >= 3
        # The proxy leaves a fenced server to its probes (every 0.25 s), instead of trying
        # it first for each of the 200 requests.
        assert counters["requests"]["UNAVAILABLE"] - before < 50
        assert counters["numbers_issued"] == 0
        assert http.post("/unfence").json() == {"fenced": False}
    assert numbers(a.server.bind, "fenced/x")[0] % 2 == 1


def test_the_fence_survives_a_restart_and_a_crash(cluster: Cluster) -> None:
    a, _ = pair(cluster)
    issued = numbers(a.server.bind, "f", count=3)
    with a.http() as http:
        assert http.post("/fence").status_code == 200
        a.server.kill()  # kill -9 right after the answer: the fence was durable before it
        server = cluster.restart(a.server)
        assert ask(server.bind, ["f", "0"]) == ["UNAVAILABLE", "fenced"]
        assert server.term() == 0
        server = cluster.restart(server)
        assert ask(server.bind, ["f", "0"]) == ["UNAVAILABLE", "fenced"]
        assert http.get("/status").json()["fenced"] is True
        assert http.post("/unfence").json() == {"fenced": False}
        assert numbers(server.bind, "f")[0] > issued[-1]
        assert server.term() == 0
        server = cluster.restart(server)
        assert numbers(server.bind, "f")[0] > issued[-1]  # released for good


# ---- the witness record ---------------------------------------------------------------


def test_the_witness_record_is_durable_and_never_goes_back(cluster: Cluster) -> None:
    a, b = pair(cluster)
    got = numbers(a.server.bind, "w/a", count=5)
    wait_witnessed(b, 1, "w/a", got[-1])
    with b.http() as http:
        page = http.get("/witness/1", params={"prefix": "w/"}).json()
    (item,) = page["items"]
    assert (item["name"], item["value"]) == ("w/a", str(got[-1]))
    assert page["confirmed_at"] is not None and page["lost_at"] is None
    assert page["stale_s"] is not None and page["interval_s"] == 0.2
    # The admin restarts: the record is still there.
    b.admin.proc.term()
    b = restart_admin(cluster, b, [a.admin.url])
    assert witnessed(b, 1)["w/a"] == got[-1]
    # Server 1 loses its store: its peer's record of it stays as it was.
    a.server.kill()
    for path in a.server.data.glob("seqgen.db*"):
        path.unlink()
    server = cluster.restart(a.server)
    with a.http() as http:
        wait_until(lambda: http.get("/readyz").status_code == 200, 15, "server 1 back")
    wait_until(lambda: cluster_view(b)["peers"][0]["reachable"], 15, "admin 2 sees it again")  # type: ignore[index]
    assert numbers(server.bind, "w/a") == [1]  # unrecovered, it repeats (what recovery is for)
    issued_at = datetime.now(UTC)

    def polled_since() -> bool:
        confirmed = page_of(b)["confirmed_at"]
        return confirmed is not None and datetime.fromisoformat(confirmed) > issued_at

    wait_until(polled_since, 15, "a poll of server 1 after it issued 1")
    assert witnessed(b, 1)["w/a"] == got[-1]
    with b.http() as http:
        assert http.get("/witness/3").json() == {
            "instance": 3, "items": [], "next_cursor": None, "interval_s": 0.2,
            "confirmed_at": None, "lost_at": None, "stale_s": None}


def test_an_admin_without_peers_witnesses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    record = tmp_path / "witness.db"
    admin = start_admin(cluster, server.control, token=TOKEN,
                        extra=["--witness-file", str(record)])
    with admin.client() as http:
        assert http.get("/witness/1").status_code == 404
        view = http.get("/cluster").json()
    assert view["peers"] == [] and view["conflicts"] == [] and view["instance"] == 1
    assert not record.exists()  # no file without --peer


# ---- recovery's refusals ----------------------------------------------------------------


def test_recover_refuses_an_unfenced_server_and_a_silent_peer(cluster: Cluster) -> None:
    a, b = pair(cluster)
    got = numbers(a.server.bind, "r", count=3)
    wait_witnessed(b, 1, "r", got[-1])
    with a.http() as http:
        refused = http.post("/recover")
        assert refused.status_code == 409 and "not fenced" in refused.json()["detail"]
        assert http.post("/fence").status_code == 200
        b.admin.proc.kill()  # the peer's admin is gone
        silent = http.post("/recover", json={})
        assert silent.status_code == 503, silent.text
        assert b.admin.url in silent.json()["detail"] and "force" in silent.json()["detail"]
        assert http.get("/status").json()["fenced"] is True  # nothing changed
        # Forced, without any peer's record and without a margin: never unfenced blind.
        blind = http.post("/recover", json={"force": True})
        assert blind.status_code == 409, blind.text
        assert '"margin"' in blind.json()["detail"] and "blind" in blind.json()["detail"]
        assert http.get("/status").json()["fenced"] is True
        forced = http.post("/recover", json={"force": True, "margin": "10"})
        assert forced.status_code == 200, forced.text
        body = forced.json()
        # The given margin raises the names only this server holds too.
        assert body["forced"] is True and body["raised"] == 1 and body["margin"] == "10"
        assert body["margin_rule"] == "given" and body["unwitnessed"] == 1
        assert body["peers"] == [{"url": b.admin.url, "answered": False,
                                  "error": body["peers"][0]["error"], "witnessed": 0}]
        assert http.get("/status").json()["fenced"] is False
    assert numbers(a.server.bind, "r")[0] > got[-1] + 10  # its own value plus the margin


def test_recover_with_a_given_margin(cluster: Cluster) -> None:
    a, b = pair(cluster)
    got = numbers(a.server.bind, "m", count=3)
    wait_witnessed(b, 1, "m", got[-1])
    with a.http() as http:
        assert http.post("/fence").status_code == 200
        for body in ({"margin": "-1"}, {"margin": 5}, {"force": "yes"}, {"other": 1}):
            assert http.post("/recover", json=body).status_code == 422, body
        response = http.post("/recover", json={"margin": "100000"})
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["raised"] == 1 and body["margin"] == "100000" and body["margin_rule"] == "given"
    assert body["largest_jump"] == "100000"  # the floor (5 + 100000) minus its own 5
    assert numbers(a.server.bind, "m") == [got[-1] + 100000 + 2]  # its next odd number


# ---- backups ---------------------------------------------------------------------------


def test_backup_streams_a_consistent_snapshot_while_the_server_serves(
    cluster: Cluster, tmp_path: Path
) -> None:
    a, _ = pair(cluster)
    names = [f"b/{i:05d}" for i in range(3000)]
    for name in names[:50]:
        numbers(a.server.bind, name, count=2)
    for start in range(50, len(names), 1000):  # many names at once, by the control socket
        floors = RaiseFloors(floors=[Floor(name, 7) for name in names[start:start + 1000]])
        reply = request(a.server.control, encode_control(floors))
        assert reply is not None and msgspec.json.decode(reply[0])["type"] == "floors_raised"
    served = 0
    with httpx.Client(base_url=a.admin.url, timeout=30, headers=bearer(TOKEN)) as http:
        with http.stream("GET", "/backup") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/octet-stream"
            size = int(response.headers["content-length"])
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if served < 5:
                    numbers(a.server.bind, "b/during")  # the server serves meanwhile
                    served += 1
        assert len(data) == size
        assert hashlib.sha256(data).hexdigest() == response.headers["x-seqgen-sha256"]
        # The snapshot is gone from the data directory once streamed.
        assert list(a.server.data.glob("backup-*")) == []
    path = tmp_path / "copy.db"
    path.write_bytes(data)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        marks = dict(db.execute("SELECT name, mark FROM sequences"))
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert len(data) > 32 * 1024  # more than one chunk
    assert all(marks[name] >= 3 for name in names[:50])
    assert all(marks[name] >= 7 for name in names[50:])
    assert meta["fenced"] == "1" and meta["clean"] == "0"


# ---- auth ------------------------------------------------------------------------------

WRITES = (("POST", "/fence"), ("POST", "/unfence"), ("POST", "/recover"), ("GET", "/backup"))
READS = ("/cluster", "/witness/1", "/changes?consumer=auth-test")


def test_every_new_endpoint_enforces_its_auth(cluster: Cluster, tmp_path: Path) -> None:
    server = cluster.server()
    peer = free_admin_url()
    extra = ["--peer", peer, "--witness-file", str(tmp_path / "w.db")]
    with_token = start_admin(cluster, server.control, token=TOKEN, extra=extra)
    with with_token.client() as http:
        for method, path in WRITES:
            for headers in ({}, bearer("wrong"), {"Authorization": f"Basic {TOKEN}"}):
                response = http.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
        for path in READS:
            assert http.get(path).status_code == 200, path
        assert http.get("/status").json()["fenced"] is False  # nothing was written
        assert http.post("/fence", headers=bearer(TOKEN)).status_code == 200
    without = start_admin(cluster, server.control, extra=extra)
    with without.client() as http:
        for method, path in WRITES:
            for headers in ({}, bearer(TOKEN)):
                response = http.request(method, path, headers=headers)
                assert response.status_code == 403, (method, path)
                detail = response.json()["detail"]
                assert "SEQGEN_ADMIN_TOKEN" in detail and "GET /backup" in detail
                assert "writes are disabled" not in detail
        for path in READS:
            assert http.get(path).status_code == 200, path
        assert http.get("/status").json()["fenced"] is True
