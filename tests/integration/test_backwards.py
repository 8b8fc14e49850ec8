"""Backwards is an alarm (issue 22): a server serving below what a witness recorded.

Server 1 is restored from a backup and unfenced as it is (the mistake the runbook warns
against): its peer's admin shows a conflict, logs it and exports it as a metric, at once
and before any repeated number is asked for, and server 1's own admin shows what its peer
reports; a recovery clears it.
"""

from __future__ import annotations

import shutil

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cluster, numbers, wait_until
from tests.integration.operator_support import Host, cluster_view, pair, wait_witnessed


def backwards_metric(host: Host) -> float:
    with host.http() as http:
        text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return families["seqgen_cluster_backwards"].samples[0].value


def backwards_conflicts(host: Host) -> list[str]:
    found = cluster_view(host)["conflicts"]
    assert isinstance(found, list)
    return [str(c) for c in found if "went backwards" in str(c)]


def test_a_server_unfenced_on_a_stale_backup_is_a_conflict(cluster: Cluster) -> None:
    a, b = pair(cluster)
    first = numbers(a.server.bind, "bk", count=10)
    backup = cluster.root / "backup.db"
    with a.http() as http:
        response = http.get("/backup")
        assert response.status_code == 200, response.text
        backup.write_bytes(response.content)
    later = numbers(a.server.bind, "bk", count=1000)  # beyond the backup and its durable marks
    wait_witnessed(b, 1, "bk", later[-1])
    assert backwards_conflicts(b) == [] and backwards_metric(b) == 0
    a.server.term()
    for leftover in a.server.data.glob("seqgen.db*"):
        leftover.unlink()
    shutil.copy(backup, a.server.data / "seqgen.db")
    new = cluster.restart(a.server)
    with a.http() as http:
        assert http.get("/status").json()["fenced"] is True
        stale = int(http.get("/sequences/bk").json()["current"])
        assert first[-1] <= stale < later[-1]
        assert http.post("/unfence").status_code == 200  # the mistake
    wait_until(lambda: backwards_conflicts(b) != [], 15, "the backwards conflict")
    (conflict,) = backwards_conflicts(b)
    assert a.admin.url in conflict and "'bk'" in conflict and str(later[-1]) in conflict
    assert backwards_metric(b) == 1
    assert "went BACKWARDS" in b.admin.proc.log()
    # Its own admin shows what its peer reports of it (through the peer's /changes).
    wait_until(lambda: backwards_conflicts(a) != [], 15, "the conflict on the server's own admin")
    (reported,) = backwards_conflicts(a)
    assert reported.startswith(f"{b.admin.url} reports: ") and "'bk'" in reported
    # The way out: fence, recover. The floors go above the record; the conflict clears.
    with a.http() as http:
        assert http.post("/fence").status_code == 200
        response = http.post("/recover")
        assert response.status_code == 200, response.text
    wait_until(lambda: backwards_conflicts(b) == [], 15, "the conflict clears")
    assert backwards_metric(b) == 0
    wait_until(lambda: backwards_conflicts(a) == [], 15, "the conflict clears on its own admin")
    assert numbers(new.bind, "bk", last=0)[0] > later[-1]
