"""A resize's ``prepare`` step on real processes (seqgen_admin.resize_prep): what a server
issues between the read before the fence and the fence still raises the boundaries, and a
server that restarted in between makes the admin read everything under the fence."""

from __future__ import annotations

from tests.conftest import Cluster, numbers
from tests.integration.operator_support import Host, pair

TOKEN = "00ff00ff00ff00ff"
MARGIN = 7


def _step(host: Host, step: str, **extra: object) -> dict[str, object]:
    with host.http() as http:
        answer = http.post("/resize/step", json={"step": step, "instances": 1, **extra})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body, dict)
    return body


def _current(host: Host, name: str) -> int:
    with host.http() as http:
        answer = http.get(f"/sequences/{name}")
    assert answer.status_code == 200, answer.text
    return int(answer.json()["current"])


def _floors(one: Host, two: Host) -> dict[str, object]:
    for host in (one, two):
        assert _step(host, "begin")["fenced"] is True
    return _step(one, "floors", margin=MARGIN, servers=2, token=TOKEN)


def test_what_moves_after_prepare_is_read_from_the_feeds_under_the_fence(cluster: Cluster) -> None:
    one, two = pair(cluster)
    numbers(one.server.bind, "quiet")
    numbers(two.server.bind, "hot")
    assert _step(one, "prepare", token=TOKEN)["fenced"] is False  # the cluster still serves
    # after the read: far more than the margin on one name, and a name nobody had
    hot = numbers(two.server.bind, "hot", last=1_000_000)[0]
    late = numbers(two.server.bind, "late", count=5)[-1]
    quiet = numbers(one.server.bind, "quiet")[0]
    answer = _floors(one, two)
    assert answer["prepared"] is True, answer  # the feeds, not a full read
    assert answer["names"] == 3
    assert _current(one, "hot") == hot + MARGIN
    assert _current(one, "late") == late + MARGIN
    assert _current(one, "quiet") == quiet + MARGIN


def test_a_server_restarted_after_prepare_is_read_in_full_under_the_fence(
        cluster: Cluster) -> None:
    one, two = pair(cluster)
    numbers(two.server.bind, "hot")
    _step(one, "prepare", token=TOKEN)
    hot = numbers(two.server.bind, "hot", last=5_000_000)[0]
    two.server.kill()  # kill -9: its feed (and this admin's consumer there) is gone
    two.server = cluster.restart(two.server)
    answer = _floors(one, two)
    assert answer["prepared"] is False, answer
    assert _current(one, "hot") > hot + MARGIN - 1
    assert _step(one, "floors", margin=MARGIN, servers=2, token="")["prepared"] is False


def test_floors_raised_before_the_fence_are_not_written_again_under_it(cluster: Cluster) -> None:
    one, two = pair(cluster)
    quiet = numbers(one.server.bind, "quiet")[0]
    before = numbers(two.server.bind, "hot")[0]
    _step(one, "prepare", token=TOKEN)
    pre = _step(one, "preraise", token=TOKEN, margin=MARGIN)
    assert (pre["raised"], pre["fenced"]) == (2, False), pre  # while the cluster serves
    assert _current(one, "quiet") == quiet + MARGIN
    assert _current(one, "hot") == before + MARGIN
    _step(one, "drain", token=TOKEN)
    hot = numbers(two.server.bind, "hot", last=1_000_000)[0]  # moves after the last drain
    answer = _floors(one, two)
    assert (answer["prepared"], answer["names"], answer["raised"]) == (True, 2, 1), answer
    assert _current(one, "hot") == hot + MARGIN  # what moved: the margin above it
    assert _current(one, "quiet") == quiet + MARGIN  # what did not: as pre-raised
