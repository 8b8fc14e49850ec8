"""Recovery without repeats (issue 14): a server that lost its disk, or runs on a stale backup.

Two servers (instances 1 and 2 of 2) with peered admins serve load clients
(separate processes, alternating between the servers and carrying ``last``).
Server 1 loses its store under load and comes back fenced; ``POST /recover``
raises its floors above what it may have issued and releases the fence, while
the load goes on. Every number acknowledged to any client is checked: none
repeats, and each server's numbers keep increasing for each client.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cluster, ServerProc, ask, numbers, wait_until
from tests.integration.operator_support import Host, pair, wait_witnessed, witnessed
from tests.load import check

NAME = "inv"
QUIET = "quiet"
"""A name asked for only with last "0" (as by a new client process): nothing but the recovery
keeps a server that lost its store from handing its numbers out again."""


def start_load(cluster: Cluster, a: Host, b: Host, *, count: int, pause_s: float,
               ) -> tuple[list[subprocess.Popen[bytes]], list[Path], Path]:
    """Two load clients, one starting on each server, until the stop file exists."""
    stop = cluster.root / "stop-load"
    outs = [cluster.root / f"load-{i}.json" for i in range(2)]
    orders = [[a.server.bind, b.server.bind], [b.server.bind, a.server.bind]]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.load", "--count", str(count),
                               "--pause", str(pause_s), "--until", str(stop), str(out), NAME, "120",
                               *order]) for out, order in zip(outs, orders, strict=True)]
    return procs, outs, stop


def issued_by(server: ServerProc, http: httpx.Client) -> int:
    """Numbers issued by the server of ``http``'s admin since it started."""
    response = http.get("/status")
    assert response.status_code == 200, response.text
    return int(response.json()["counters"]["numbers_issued"])


def finish_load(procs: list[subprocess.Popen[bytes]], outs: list[Path], stop: Path,
                also: list[int]) -> list[int]:
    """Stop the clients and check every number acknowledged to them and ``also`` (the test's
    own); returns those of server 1."""
    stop.touch()
    for proc in procs:
        assert proc.wait(30) == 0
    report = check(outs)
    assert report.acknowledged > 100, report
    assert report.out_of_order == 0, "a server went back for a client"
    every = report.all_numbers + also
    assert len(every) == len(set(every)), "a number was acknowledged twice"
    return sorted(v for v in every if v % 2 == 1)


def lose_disk(cluster: Cluster, a: Host) -> ServerProc:
    """kill -9 server 1, delete its data directory, start it --fenced on an empty one."""
    a.server.kill()
    shutil.rmtree(a.server.data)
    return cluster.server(1, 2, data=a.server.data, bind=a.server.bind, control=a.server.control,
                          extra=["--fenced"])


def quiet_numbers(a: Host, b: Host) -> list[int]:
    """Numbers of QUIET from server 1, asked without history, once its witness saw them."""
    got = numbers(a.server.bind, QUIET, last=0, count=20)
    wait_witnessed(b, 1, QUIET, got[-1])
    return got


def recover(a: Host, new: ServerProc, before: int, quiet_before: list[int]) -> int:
    """POST /recover on server 1's admin; then a client with no history gets numbers above
    what server 1 issued before (for NAME at least ``before``); returns the one for NAME."""
    assert ask(new.bind, [NAME, "0"]) == ["UNAVAILABLE", "fenced"]
    with a.http() as http:
        response = http.post("/recover")
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["raised"] >= 1 and body["fenced"] is False, str(body)
    assert body["margin_rule"] == "default" and int(body["margin"]) >= 10 * 100 * 2
    assert body["peers"][0]["answered"] is True
    assert int(body["largest_jump"]) > before
    quiet = numbers(new.bind, QUIET, last=0, count=20)
    assert quiet[0] > quiet_before[-1], (quiet, quiet_before)
    fresh = numbers(new.bind, NAME, last=0)[0]
    assert fresh > before, (fresh, before)
    return fresh


@pytest.mark.parametrize("burst", [False, True], ids=["after-2-intervals", "mid-burst"])
def test_disk_lost_under_load_repeats_nothing(cluster: Cluster, burst: bool) -> None:
    a, b = pair(cluster)
    procs, outs, stop = start_load(cluster, a, b, count=50 if burst else 1,
                                   pause_s=0.0 if burst else 0.002)
    try:
        quiet = quiet_numbers(a, b)
        wait_witnessed(b, 1, NAME, 1)  # a name no witness ever saw keeps the server's own state
        with a.http() as http_a:
            if burst:
                # Full rate: kill while server 1 is handing out bursts of 50.
                start = issued_by(a.server, http_a)
                wait_until(lambda: issued_by(a.server, http_a) > start + 5000, 20,
                           "server 1 under full load")
            else:
                # Two witness polls that saw server 1 move on, then the kill.
                for _ in range(2):
                    seen = witnessed(b, 1).get(NAME, 0)
                    wait_witnessed(b, 1, NAME, seen + 1)
            before = http_a.get(f"/sequences/{NAME}").json()["current"]
            new = lose_disk(cluster, a)
            assert http_a.get(f"/sequences/{NAME}").status_code == 404  # it remembers nothing
            fresh = recover(a, new, int(before), quiet)
            after = issued_by(new, http_a)
            wait_until(lambda: issued_by(new, http_a) > after + 100, 20, "load on the new server 1")
    finally:
        stop.touch()
    odd = finish_load(procs, outs, stop, [fresh])
    assert any(v > fresh for v in odd)  # the load went on on the recovered server


def test_a_stale_backup_is_fenced_and_recovered_without_repeats(cluster: Cluster) -> None:
    a, b = pair(cluster)
    procs, outs, stop = start_load(cluster, a, b, count=1, pause_s=0.002)
    backup = cluster.root / "backup.db"
    try:
        wait_witnessed(b, 1, NAME, 1)
        quiet = quiet_numbers(a, b)
        with a.http() as http_a:
            response = http_a.get("/backup")
            assert response.status_code == 200, response.text
            backup.write_bytes(response.content)
            assert len(response.content) == int(response.headers["content-length"])
            assert hashlib.sha256(response.content).hexdigest() == response.headers["x-seqgen-sha256"]
            at_backup = int(http_a.get(f"/sequences/{NAME}").json()["current"])
            # Keep issuing well past the backup (and past what its durable marks cover).
            wait_witnessed(b, 1, NAME, at_backup + 3000, timeout_s=30)
            quiet += quiet_numbers(a, b)  # issued after the backup: the restore forgets them
            a.server.term()
            for leftover in a.server.data.glob("seqgen.db*"):
                leftover.unlink()
            shutil.copy(backup, a.server.data / "seqgen.db")
            # Started as it is, without --fenced: the snapshot carries its own fence.
            new = cluster.restart(a.server)
            status = http_a.get("/status").json()
            assert status["fenced"] is True
            # It says it runs on a restored backup, not "after a crash" (issue 21).
            assert status["restored"] is True
            assert "started on a restored backup" in new.log()
            assert "did not stop cleanly" not in new.log()
            stale = int(http_a.get(f"/sequences/{NAME}").json()["current"])
            issued = witnessed(b, 1)[NAME]
            assert stale < issued  # served as it is, it would repeat numbers
            fresh = recover(a, new, issued, quiet)
            after = issued_by(new, http_a)
            wait_until(lambda: issued_by(new, http_a) > after + 100, 20, "load on server 1")
    finally:
        stop.touch()
    finish_load(procs, outs, stop, [fresh])
    with sqlite3.connect(backup) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["fenced"] == "1" and meta["clean"] == "0" and meta["instance"] == "1"
    assert meta["restored"] == "1"
    # Once started on, the store is a restored backup no longer: the next start is a restart.
    with sqlite3.connect(new.data / "seqgen.db") as db:
        assert "restored" not in dict(db.execute("SELECT key, value FROM meta"))


def test_a_name_no_witness_saw_is_floored_above_what_a_peer_holds(cluster: Cluster) -> None:
    """Server 1 issues a name after the witness's last poll, server 2 catches up past it (a
    client carrying ``last``), then server 1's disk is lost: the recovery floors the name
    above server 2's value plus the margin, though no record of server 1 has it."""
    a, b = pair(cluster, interval_s=3600)  # one poll at start, then none during the test
    wait_until(lambda: b.http().get("/witness/1").json()["stale_s"] is not None, 15,
               "the witness's first poll")
    issued = numbers(a.server.bind, "late", count=50)
    assert "late" not in witnessed(b, 1)
    held = numbers(b.server.bind, "late", last=issued[-1])[0]  # server 2 catches up
    new = lose_disk(cluster, a)
    with a.http() as http:
        response = http.post("/recover")
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["raised"] >= 1 and int(body["largest_jump"]) >= held + 2000
    fresh = numbers(new.bind, "late", last=0, count=10)
    assert fresh[0] > held + 2000 > issued[-1], (fresh, held, issued)
