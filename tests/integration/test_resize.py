"""POST /resize on real processes: grow 2 -> 3 and shrink 3 -> 2 while clients run (directly
and through a proxy), every acknowledged number checked unique; the error cases change
nothing (docs/operations.md, "Change the number of servers")."""

from __future__ import annotations

import time
from collections.abc import Sequence

from seqgen_server.server import RESIZE_HOLD_S
from tests.conftest import Cluster, ask, numbers, wait_until
from tests.integration.operator_support import (
    Host,
    cluster_view,
    free_admin_url,
    peers_reachable,
    restart_admin,
    start_host,
)
from tests.integration.resize_support import Load, resize, status


def _hosts(cluster: Cluster, instances: int, urls: Sequence[str], count: int) -> list[Host]:
    """Instances 1..count of ``instances``, every admin peered with every URL but its own."""
    return [start_host(cluster, k, instances, urls[k - 1], [u for u in urls if u != urls[k - 1]])
            for k in range(1, count + 1)]


def _unchanged(hosts: Sequence[Host], instances: int) -> None:
    for host in hosts:
        got = status(host)
        assert (got["instances"], got["fenced"]) == (instances, False), got
        assert cluster_view(host)["resize_to"] is None


def test_grow_two_to_three_under_load_directly_and_through_a_proxy(cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    one, two = _hosts(cluster, 2, urls, 2)
    missing = resize(one, 3)  # the new server is not there yet: its admin does not answer
    assert missing.status_code == 503, missing.text
    assert urls[2] in missing.json()["detail"] and "changed nothing" in missing.text
    _unchanged([one, two], 2)
    three = start_host(cluster, 3, 3, urls[2], urls[:2], fenced=True)
    assert ask(three.server.bind, ["orders", "0"]) == ["UNAVAILABLE", "fenced"]
    wait_until(peers_reachable(three, 2), 30, "the new admin polled its peers")
    with three.http() as http:
        early = http.post("/unfence")  # it waits for the resize: unfencing it by hand is refused
    assert early.status_code == 409 and "waits, fenced" in early.json()["detail"], early.text
    binds = [host.server.bind for host in (one, two, three)]
    proxy = cluster.proxy(binds)
    load = Load([binds, binds[::-1], [proxy.bind]]).start()  # type: ignore[attr-defined]
    try:
        load.wait_for(300)
        assert resize(one, 4).status_code == 409  # by two: refused, nothing changed
        _unchanged([one, two], 2)
        done = resize(one, 3)
        assert done.status_code == 200, done.text
        body = done.json()
        assert (body["instances"], body["previous"], body["already"]) == (3, 2, False)
        assert body["names"] == 3 and int(body["margin"]) == 10 * 100 * 3
        assert int(body["largest_jump"]) >= int(body["margin"])
        assert body["prepared"] is True and body["fenced_s"] > 0, body  # read before the fence
        load.wait_for(600)
    finally:
        load.stop()
    load.check()
    for host in (one, two, three):
        got = status(host)
        assert (got["instances"], got["fenced"]) == (3, False), got
    third = numbers(three.server.bind, "orders", count=2)
    assert third[0] % 3 == 0 and third[1] == third[0] + 3, "the new server: residue 0 of 3"
    assert third[0] > 3000, "above the boundary"
    assert numbers(one.server.bind, "orders")[0] % 3 == 1, "instance 1: residue 1 of 3"
    again = resize(two, 3)
    assert again.status_code == 200 and again.json()["already"] is True


def test_shrink_three_to_two_under_load_retires_instance_three(cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    hosts = _hosts(cluster, 3, urls, 3)
    binds = [host.server.bind for host in hosts]
    proxy = cluster.proxy(binds)
    load = Load([binds, [proxy.bind]]).start()  # type: ignore[attr-defined]
    try:
        load.wait_for(300)
        done = resize(hosts[1], 2)
        assert done.status_code == 200, done.text
        assert done.json()["retired"] == urls[2]
        assert done.json()["prepared"] is True, done.text
        load.wait_for(600)
    finally:
        load.stop()
    load.check()
    for host in hosts[:2]:
        got = status(host)
        assert (got["instances"], got["fenced"]) == (2, False), got
    view = cluster_view(hosts[2])
    assert (view["retired"], view["fenced"], view["resize_to"]) == (True, True, None)
    with hosts[2].http() as http:
        refused = http.post("/unfence")
    assert refused.status_code == 409 and "retired" in refused.json()["detail"]
    assert ask(hosts[2].server.bind, ["orders", "0"]) == ["UNAVAILABLE", "fenced"]


def test_a_peer_unreachable_changes_nothing(cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    hosts = _hosts(cluster, 3, urls, 3)
    hosts[2].admin.proc.kill()
    answer = resize(hosts[0], 2)
    assert answer.status_code == 503, answer.text
    assert "changed nothing" in answer.json()["detail"]
    _unchanged(hosts[:2], 3)


def test_an_admin_not_peered_with_the_new_server_stops_it_and_the_same_request_finishes(
        cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    one = start_host(cluster, 1, 2, urls[0], [urls[1], urls[2]])
    two = start_host(cluster, 2, 2, urls[1], [urls[0]])  # forgot the new one
    three = start_host(cluster, 3, 3, urls[2], urls[:2], fenced=True)
    stopped = resize(one, 3)
    assert stopped.status_code == 409, stopped.text
    assert "does not read instance(s) [3]" in stopped.text and "unfinished" in stopped.text
    assert cluster_view(two)["resize_to"] == 3
    started = time.monotonic()
    assert ask(one.server.bind, ["orders", "0"]) == ["UNAVAILABLE", "fenced"]
    assert time.monotonic() - started >= RESIZE_HOLD_S  # held for the fence to lift first
    two.admin.proc.kill()
    two = restart_admin(cluster, two, [urls[0], urls[2]])
    done = resize(one, 3)
    assert done.status_code == 200, done.text
    for host in (one, two, three):
        assert (status(host)["instances"], status(host)["fenced"]) == (3, False)
