"""The server's resize steps (docs/protocol.md, "Changing the number of servers") on real
processes: durable across kill -9, refused out of order, and a start with the old count
refused with a message that says what happened."""

from __future__ import annotations

import json

from tests.conftest import Cluster, ServerProc, ask, numbers, request


def control(server: ServerProc, **message: object) -> dict[str, object]:
    reply = request(server.control, json.dumps(message).encode())
    assert reply is not None, "no control reply"
    answer = json.loads(reply[-1])
    assert isinstance(answer, dict)
    return answer


def test_grow_steps_switch_the_residues_and_survive_kill_9(cluster: Cluster) -> None:
    server = cluster.server(1, 2)
    assert numbers(server.bind, "a", count=3) == [1, 3, 5]
    begun = control(server, type="begin_resize", instances=3)
    assert begun == {"type": "layout", "instance": 1, "instances": 2, "fenced": True,
                     "resize_to": 3, "retired": False}
    assert ask(server.bind, ["a", "0"]) == ["UNAVAILABLE", "fenced"]
    refused = control(server, type="unfence")
    assert refused["code"] == "CONFLICT" and "resize to 3" in str(refused["message"])
    assert control(server, type="begin_resize", instances=1)["code"] == "CONFLICT"
    assert control(server, type="end_resize", instances=3)["code"] == "CONFLICT"  # not committed
    server.kill()  # between the steps: the store keeps the fence and the resize
    server = cluster.restart(server)
    assert control(server, type="get_status")["resize_to"] == 3
    assert control(server, type="raise_floors", floors=[["a", 100]])["raised"] == 1
    committed = control(server, type="commit_resize", instances=3)
    assert (committed["instances"], committed["fenced"]) == (3, True)
    server.kill()  # committed, not ended: starts with the store's layout (old flags accepted)
    server = cluster.restart(server)
    assert control(server, type="ping")["instances"] == 3
    ended = control(server, type="end_resize", instances=3)
    assert (ended["fenced"], ended["resize_to"]) == (False, None)
    assert control(server, type="end_resize", instances=3)["fenced"] is False  # a repeat
    got = numbers(server.bind, "a", count=3)
    assert got == [103, 106, 109], "above the boundary, residue 1 of 3"
    server.kill()
    old = cluster.restart(server, wait=False)
    assert old.wait(20) != 0
    assert "was resized from 2 to 3 servers" in old.log()
    assert "--instances 3" in old.log()


def test_a_retired_server_stays_fenced_for_good(cluster: Cluster) -> None:
    server = cluster.server(3, 3)
    assert control(server, type="commit_resize", instances=2, retire=True)["code"] == "CONFLICT"
    control(server, type="begin_resize", instances=2)
    retired = control(server, type="commit_resize", instances=2, retire=True)
    assert retired["retired"] is True
    ended = control(server, type="end_resize", instances=2)
    assert (ended["fenced"], ended["retired"], ended["resize_to"]) == (True, True, None)
    server.kill()
    server = cluster.restart(server)
    status = control(server, type="get_status")
    assert (status["fenced"], status["retired"]) == (True, True)
    assert "retired" in str(control(server, type="unfence")["message"])
    assert control(server, type="begin_resize", instances=3)["code"] == "CONFLICT"
    assert ask(server.bind, ["a", "0"]) == ["UNAVAILABLE", "fenced"]


def test_an_instance_above_the_new_count_must_retire(cluster: Cluster) -> None:
    server = cluster.server(3, 3)
    control(server, type="begin_resize", instances=2)
    refused = control(server, type="commit_resize", instances=2)
    assert refused["code"] == "CONFLICT" and "must retire" in str(refused["message"])
