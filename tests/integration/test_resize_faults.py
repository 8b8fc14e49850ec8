"""A resize interrupted at each step (its coordinator gone: kill -9 of the admin, or a
server killed mid-way), and the request sent to two admins at once: /cluster shows what
remains, the same request finishes it, and no number is issued twice, while clients run."""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Sequence

import httpx
import pytest

from tests.conftest import Cluster, ServerProc, ask, wait_until
from tests.integration.operator_support import (
    Host,
    cluster_view,
    free_admin_url,
    restart_admin,
    start_host,
)
from tests.integration.resize_support import Load, resize, status

STEPS = ("begin", "floors", "commit")


def _grow_ready(cluster: Cluster) -> list[Host]:
    """Instances 1 and 2 of 2 serving, instance 3 of 3 fenced, every admin peered with all."""
    urls = [free_admin_url() for _ in range(3)]
    hosts = [start_host(cluster, k, 2, urls[k - 1], [u for u in urls if u != urls[k - 1]])
             for k in (1, 2)]
    hosts.append(start_host(cluster, 3, 3, urls[2], urls[:2], fenced=True))
    return hosts


def _step(host: Host, step: str, instances: int, **extra: object) -> httpx.Response:
    with host.http() as http:
        return http.post("/resize/step", json={"step": step, "instances": instances, **extra})


def _as_coordinator_until(hosts: Sequence[Host], instances: int, last: str) -> None:
    """What a coordinator does up to and including ``last``, then it is gone (kill -9)."""
    for step in STEPS[:STEPS.index(last) + 1]:
        for host in hosts:
            extra = {"margin": 3000, "servers": len(hosts)} if step == "floors" else {}
            answer = _step(host, step, instances, **extra)
            assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("last", STEPS)
def test_a_grow_interrupted_after_each_step_is_finished_by_the_same_request(
        cluster: Cluster, last: str) -> None:
    hosts = _grow_ready(cluster)
    binds = [host.server.bind for host in hosts]
    load = Load([binds]).start()
    try:
        load.wait_for(200)
        _as_coordinator_until(hosts, 3, last)
        for host in hosts:  # what remains is visible, and nothing can unfence it
            assert cluster_view(host)["resize_to"] == 3
            with host.http() as http:
                assert http.post("/unfence").status_code == 409
        # the servers held or refused meanwhile; a server killed now keeps the resize
        hosts[0].server.kill()
        hosts[0].server = cluster.restart(hosts[0].server)
        assert status(hosts[0])["resize_to"] == 3
        done = resize(hosts[1], 3)
        assert done.status_code == 200, done.text
        load.wait_for(300)
    finally:
        load.stop()
    grown_without_repeats(load, hosts)


def grown_without_repeats(load: Load, hosts: list[Host]) -> None:
    """No number twice, and every server serves as one of 3, unfenced, no resize left."""
    repeats_allowed_failures(load)
    for host in hosts:
        got = status(host)
        assert (got["instances"], got["fenced"], got["resize_to"]) == (3, False, None), got


def repeats_allowed_failures(load: Load) -> None:
    """No number twice. (Calls may fail while the coordinator is gone: the servers stay
    fenced until the request is sent again, so only uniqueness is checked here.)"""
    seen: set[tuple[str, int]] = set()
    for item in load.acked:
        assert item not in seen, f"{item} issued twice"
        seen.add(item)


def test_a_shrink_whose_end_reached_one_server_only(cluster: Cluster) -> None:
    urls = [free_admin_url() for _ in range(3)]
    hosts = [start_host(cluster, k, 3, urls[k - 1], [u for u in urls if u != urls[k - 1]])
             for k in (1, 2, 3)]
    load = Load([[host.server.bind for host in hosts]]).start()
    try:
        load.wait_for(200)
        for step in ("begin", "floors"):
            for host in hosts[:2]:
                extra = {"margin": 3000, "servers": 3} if step == "floors" else {}
                assert _step(host, step, 2, **extra).status_code == 200
            if step == "begin":
                assert _step(hosts[2], "begin", 2).status_code == 200
        for host, retire in zip(hosts, (False, False, True), strict=True):
            assert _step(host, "commit", 2, retire=retire).status_code == 200
        assert _step(hosts[0], "end", 2).json()["fenced"] is False  # then the coordinator died
        load.wait_for(100)  # instance 1 serves under the new layout; 2 is still fenced
        assert cluster_view(hosts[1])["resize_to"] == 2
        done = resize(hosts[0], 2)
        assert done.status_code == 200, done.text
        load.wait_for(200)
    finally:
        load.stop()
    repeats_allowed_failures(load)
    assert cluster_view(hosts[2])["retired"] is True
    assert ask(hosts[2].server.bind, ["orders", "0"]) == ["UNAVAILABLE", "fenced"]


def test_the_request_sent_to_two_admins_at_once(cluster: Cluster) -> None:
    hosts = _grow_ready(cluster)
    load = Load([[host.server.bind for host in hosts]]).start()
    answers: list[httpx.Response] = []
    try:
        load.wait_for(200)
        threads = [threading.Thread(target=lambda h=host: answers.append(resize(h, 3)))
                   for host in hosts[:2]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        load.wait_for(300)
    finally:
        load.stop()
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    load.check()
    for host in hosts:
        got = status(host)
        assert (got["instances"], got["fenced"], got["resize_to"]) == (3, False, None), got


@pytest.mark.parametrize("moment", ["fenced", "committed"])
def test_kill_9_of_the_coordinating_admin_mid_resize(cluster: Cluster, moment: str) -> None:
    """The coordinator is killed once a server shows the resize begun (or committed); the
    request sent to another admin finishes it."""
    hosts = _grow_ready(cluster)
    load = Load([[host.server.bind for host in hosts]]).start()
    try:
        load.wait_for(200)
        thread = threading.Thread(target=lambda: _quietly(hosts[0]), daemon=True)
        thread.start()
        watch = hosts[1]

        def reached() -> bool:
            got = status(watch)
            return bool((got["resize_to"] == 3 and (moment == "fenced" or got["instances"] == 3))
                        or (got["instances"] == 3 and got["resize_to"] is None))

        wait_until(reached, 60, "the resize under way")
        hosts[0].admin.proc.kill()
        thread.join(30)
        missing = resize(hosts[2], 3)  # its server is out of reach while its admin is down
        assert missing.status_code == 503
        if status(watch)["resize_to"] == 3:
            assert "a resize to 3 servers is unfinished" in missing.json()["detail"]
        hosts[0] = restart_admin(cluster, hosts[0], [h.admin.url for h in hosts[1:]])
        done = resize(hosts[2], 3)
        assert done.status_code == 200, done.text
        load.wait_for(300)
    finally:
        load.stop()
    grown_without_repeats(load, hosts)


def _quietly(host: Host) -> None:
    with contextlib.suppress(httpx.HTTPError):  # its admin is killed under it
        resize(host, 3)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_server_killed_at_a_random_moment_of_a_grow_then_a_shrink(cluster: Cluster,
                                                                     seed: int) -> None:
    """kill -9 of a random server at a random moment of each resize; it is started again
    with the flags it had (the old count), and the request is sent until it answers 200."""
    rng = random.Random(seed)
    hosts = _grow_ready(cluster)
    load = Load([[host.server.bind for host in hosts]]).start()
    try:
        for target, coordinator in ((3, hosts[0]), (2, hosts[1])):
            load.wait_for(200)
            victim = rng.choice(hosts if target == 3 else hosts[:2])
            answers: list[httpx.Response] = []
            thread = threading.Thread(target=_send, args=(coordinator, target, answers))
            thread.start()
            time.sleep(rng.uniform(0.0, 0.3))  # a random moment of the resize, by design
            victim.server.kill()
            victim.server = _restart_as_told(cluster, victim.server)
            thread.join(120)
            for _ in range(5):
                if answers and answers[-1].status_code == 200:
                    break
                answers.append(resize(coordinator, target))
            assert answers[-1].status_code == 200, [a.text for a in answers]
            print(f"resize to {target}: killed {victim.server.data.name}, answers "
                  f"{[a.status_code for a in answers]}")
            load.wait_for(200)
    finally:
        load.stop()
    repeats_allowed_failures(load)
    for host in hosts[:2]:
        got = status(host)
        assert (got["instances"], got["fenced"], got["resize_to"]) == (2, False, None), got
    assert status(hosts[2])["retired"] is True


def _send(host: Host, instances: int, answers: list[httpx.Response]) -> None:
    answers.append(resize(host, instances))


def _restart_as_told(cluster: Cluster, server: ServerProc) -> ServerProc:
    """Start the server again with its flags; if it refuses the old count (its resize was
    finished), with the count its message names, as an operator would."""
    proc = cluster.restart(server, wait=False)
    wait_until(lambda: not proc.alive() or proc.ping(), 30, "the killed server, started again")
    if proc.alive():
        return proc
    told = re.search(r"Start it with --instances (\d+)", proc.log())
    assert told is not None, proc.log()
    args = list(server.args)
    args[args.index("--instances") + 1] = told.group(1)
    again = ServerProc(args, server.log_path.with_suffix(".again.log"), server.bind,
                       server.control, server.data)
    cluster.procs.append(again)
    wait_until(again.ping, 30, "the killed server, with the new count", again)
    return again
