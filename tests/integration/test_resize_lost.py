"""POST /resize {"instances": N-1, "retiring_lost": true} on real processes: instance 3 is
killed (server and admin, its store deleted) under load and the survivors shrink to 2
without it, covering what it issued by their witness records of it + the margin; the
refusals change nothing (docs/operations.md, "Shrink when the retiring host is lost")."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

import httpx

from tests.conftest import Cluster, numbers
from tests.integration.operator_support import (
    Host,
    cluster_view,
    free_admin_url,
    start_host,
    wait_witnessed,
)
from tests.integration.resize_support import Load, resize, status


def _shrink_lost(host: Host, instances: int, margin: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"instances": instances, "retiring_lost": True}
    if margin is not None:
        body["margin"] = margin
    with host.http(60.0) as http:
        return http.post("/resize", json=body)


def _unchanged(hosts: Sequence[Host], instances: int) -> None:
    for host in hosts:
        got = status(host)
        assert (got["instances"], got["fenced"]) == (instances, False), got
        assert cluster_view(host)["resize_to"] is None


def test_shrink_without_a_lost_instance_three_under_load_repeats_nothing(
        cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    # not following the peers: the survivors know "solo" from their witness records alone
    hosts = [start_host(cluster, k, 3, urls[k - 1], [u for u in urls if u != urls[k - 1]],
                        admin_extra=["--no-follow-peers"]) for k in (1, 2, 3)]
    one, two, three = hosts
    binds = [host.server.bind for host in hosts]
    # "solo" only instance 3 serves: the survivors know it only from their witness records
    solo = [v for _ in range(10) for v in numbers(binds[2], "solo", count=1000)]
    assert all(v % 3 == 0 for v in solo)
    for host in (one, two):
        wait_witnessed(host, 3, "solo", max(solo))
    load = Load([binds, binds[::-1], [binds[2], binds[0], binds[1]]]).start()
    try:
        load.wait_for(300)
        alive = _shrink_lost(one, 2)  # instance 3 answers: it is not lost
        assert alive.status_code == 409 and "not lost" in alive.json()["detail"], alive.text
        for name in load.names:  # instance 3's last numbers of every name, acknowledged
            load.acked.extend((name, v) for v in numbers(binds[2], name, count=50))
        three.server.kill()
        three.admin.proc.kill()
        killed_at = len(load.acked)
        shutil.rmtree(three.server.data)  # the host is lost for good
        load.wait_for(200)
        plain = resize(one, 2)  # without the operator's word: refused, nothing changed
        assert plain.status_code == 503 and "changed nothing" in plain.text, plain.text
        _unchanged([one, two], 3)
        done = _shrink_lost(two, 2)
        assert done.status_code == 200, done.text
        shrunk_at = len(load.acked)
        body = done.json()
        assert (body["instances"], body["previous"], body["retired"]) == (2, 3, urls[2]), body
        assert int(body["margin"]) >= 10 * 100 * 3, body
        load.wait_for(600)
    finally:
        load.stop()
    load.check()  # no number twice, including the ones instance 3 issued
    for host in (one, two):
        got = status(host)
        assert (got["instances"], got["fenced"]) == (2, False), got
    before = load.acked[:killed_at]
    after = load.acked[shrunk_at:]
    for name in load.names:
        by_three = [v for n, v in before if n == name and v % 3 == 0]
        assert by_three, f"instance 3 issued no {name} before it died: the test proves nothing"
        issued = [v for n, v in after if n == name]
        assert issued and min(issued) > max(by_three), (name, min(issued), max(by_three))
    # the residues changed: survivors now issue multiples of 3 (instance 3's old residue)
    assert any(v % 3 == 0 for _, v in after)
    odd = numbers(one.server.bind, "solo", count=2)
    even = numbers(two.server.bind, "solo", count=2)
    assert odd[0] % 2 == 1 and even[0] % 2 == 0, (odd, even)
    assert min(odd[0], even[0]) > max(solo), "a survivor reissued what only instance 3 issued"
    again = _shrink_lost(one, 2)
    assert again.status_code == 200 and again.json()["already"] is True, again.text


def test_without_any_witness_record_only_an_explicit_margin_shrinks(cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    one = start_host(cluster, 1, 3, urls[0], urls[1:])
    two = start_host(cluster, 2, 3, urls[1], [urls[0], urls[2]])  # instance 3 never answered
    numbers(one.server.bind, "orders", count=5)
    with one.http() as http:
        stray = http.post("/resize", json={"instances": 2, "margin": "5000"})
    assert stray.status_code == 409 and "retiring_lost" in stray.json()["detail"], stray.text
    blind = _shrink_lost(one, 2)
    assert blind.status_code == 409, blind.text
    assert "no surviving admin holds a witness record of instance 3" in blind.json()["detail"]
    assert "changed nothing" in blind.json()["detail"]
    _unchanged([one, two], 3)
    given = _shrink_lost(one, 2, margin="5000")
    assert given.status_code == 200, given.text
    assert given.json()["margin"] == "5000", given.text
    for host in (one, two):
        got = status(host)
        assert (got["instances"], got["fenced"]) == (2, False), got
    first = numbers(one.server.bind, "orders")[0]
    assert first % 2 == 1 and first > 5000, first
    assert numbers(two.server.bind, "orders")[0] > 5000


def test_a_shrink_stalled_by_the_death_of_instance_three_finishes_with_retiring_lost(
        cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    hosts = [start_host(cluster, k, 3, urls[k - 1], [u for u in urls if u != urls[k - 1]])
             for k in (1, 2, 3)]
    one, two, three = hosts
    issued = {k: numbers(host.server.bind, "orders", count=100) for k, host in
              enumerate(hosts, 1)}
    for host in (one, two):
        wait_witnessed(host, 3, "orders", max(issued[3]))
    for host in hosts:  # a shrink begun everywhere (step begin), then instance 3 dies
        with host.http() as http:
            begun = http.post("/resize/step", json={"step": "begin", "instances": 2})
        assert begun.status_code == 200 and begun.json()["resize_to"] == 2, begun.text
    three.server.kill()
    three.admin.proc.kill()
    shutil.rmtree(three.server.data)
    stuck = resize(one, 2)
    assert stuck.status_code == 503 and "unfinished" in stuck.json()["detail"], stuck.text
    done = _shrink_lost(one, 2)
    assert done.status_code == 200, done.text
    for host in (one, two):
        got = status(host)
        assert (got["instances"], got["fenced"]) == (2, False), got
        assert cluster_view(host)["resize_to"] is None
    top = max(v for values in issued.values() for v in values)
    after = numbers(one.server.bind, "orders", count=3) + numbers(two.server.bind, "orders",
                                                                  count=3)
    assert min(after) > top and len(set(after)) == 6, (after, top)
