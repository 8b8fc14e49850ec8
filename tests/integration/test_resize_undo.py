"""Undoing a resize that stopped half way (docs/operations.md, "Change the number of
servers"): ``POST /resize`` with the count from before, while no server of the old layout
recorded the new one; refused once one did. Real processes, clients running, every
acknowledged number checked unique."""

from __future__ import annotations

from tests.conftest import Cluster, ask
from tests.integration.operator_support import cluster_view, free_admin_url, start_host
from tests.integration.resize_support import Load, resize, status
from tests.integration.test_resize_faults import (
    _as_coordinator_until,
    _grow_ready,
    _step,
    grown_without_repeats,
    repeats_allowed_failures,
)


def test_a_grow_stopped_before_commit_is_undone_and_can_be_done_again(cluster: Cluster) -> None:
    hosts = _grow_ready(cluster)
    load = Load([[host.server.bind for host in hosts]]).start()
    try:
        load.wait_for(200)
        _as_coordinator_until(hosts, 3, "floors")  # then the coordinator is gone
        undone = resize(hosts[1], 2)
        assert undone.status_code == 200, undone.text
        body = undone.json()
        assert (body["undone"], body["instances"], body["names"]) == (3, 2, 0), body
        for host in hosts[:2]:
            got = status(host)
            assert (got["instances"], got["fenced"], got["resize_to"]) == (2, False, None), got
        new = cluster_view(hosts[2])  # the new server waits again, fenced
        assert (new["fenced"], new["resize_to"], new["retired"]) == (True, None, False), new
        assert ask(hosts[2].server.bind, ["orders", "0"]) == ["UNAVAILABLE", "fenced"]
        again = resize(hosts[1], 2)  # nothing is unfinished now: nothing to do
        assert again.status_code == 200 and again.json()["already"] is True, again.text
        load.wait_for(300)  # the old layout serves
        done = resize(hosts[0], 3)
        assert done.status_code == 200, done.text
        load.wait_for(300)
    finally:
        load.stop()
    grown_without_repeats(load, hosts)


def test_an_undo_is_refused_once_a_server_recorded_the_new_layout(cluster: Cluster) -> None:
    hosts = _grow_ready(cluster)
    load = Load([[host.server.bind for host in hosts]]).start()
    try:
        load.wait_for(200)
        _as_coordinator_until(hosts, 3, "floors")
        assert _step(hosts[0], "commit", 3).status_code == 200  # then the coordinator died
        refused = resize(hosts[1], 2)
        assert refused.status_code == 409, refused.text
        assert "cannot be undone" in refused.text and "POST /resize with 3" in refused.text
        assert status(hosts[1])["resize_to"] == 3 and status(hosts[1])["fenced"] is True
        # the server refuses it too (a coordinator that saw the state before the commit)
        aborted = _step(hosts[0], "abort", 3, servers=2)
        assert aborted.status_code == 409 and "finished" in aborted.text, aborted.text
        done = resize(hosts[1], 3)
        assert done.status_code == 200, done.text
        load.wait_for(300)
    finally:
        load.stop()
    grown_without_repeats(load, hosts)


def test_a_shrink_stopped_after_begin_is_undone(cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    hosts = [start_host(cluster, k, 3, urls[k - 1], [u for u in urls if u != urls[k - 1]])
             for k in (1, 2, 3)]
    load = Load([[host.server.bind for host in hosts]]).start()
    try:
        load.wait_for(200)
        for host in hosts:
            assert _step(host, "begin", 2).status_code == 200
        assert "unfinished" in resize(hosts[0], 1).text  # neither finish nor undo: refused
        undone = resize(hosts[2], 3)
        assert undone.status_code == 200, undone.text
        assert undone.json()["undone"] == 2
        load.wait_for(300)
    finally:
        load.stop()
    repeats_allowed_failures(load)
    for host in hosts:
        got = status(host)
        assert (got["instances"], got["fenced"], got["resize_to"], got["retired"]) == (
            3, False, None, False), got
