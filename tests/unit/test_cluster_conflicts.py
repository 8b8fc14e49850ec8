"""The conflict rule of the cluster view (seqgen_admin.cluster): one sentence per problem."""

from __future__ import annotations

from seqgen_admin.cluster import Node, conflicts

ME = Node("this server", 1, 2)


def test_a_healthy_cluster_has_no_conflict() -> None:
    assert conflicts(ME, [Node("http://b", 2, 2)]) == []
    assert conflicts(ME, []) == []
    assert conflicts(None, [Node("http://b", 2, 3), Node("http://c", 3, 3)]) == []


def test_an_instance_used_twice_is_one_conflict_whoever_looks() -> None:
    a, b, c = ME, Node("http://b", 2, 2), Node("http://c", 1, 2)
    for own, peers in ((a, [b, c]), (Node("this server", 1, 2), [Node("http://a", 1, 2), b]),
                       (Node("this server", 2, 2), [Node("http://a", 1, 2), c])):
        found = conflicts(own, peers)
        assert len(found) == 1, found
        assert found[0].startswith("instance 1 is used by 2 servers")


def test_different_instance_counts() -> None:
    found = conflicts(ME, [Node("http://b", 2, 3)])
    assert len(found) == 1
    assert "disagree on the number of instances" in found[0]
    assert "this server: 2" in found[0] and "http://b: 3" in found[0]


def test_an_instance_out_of_range() -> None:
    found = conflicts(ME, [Node("http://b", 3, 2)])
    assert found == ["http://b reports instance 3, outside 1..2"]
    assert conflicts(None, [Node("http://b", 0, 2)]) == ["http://b reports instance 0, outside 1..2"]


def test_several_problems_at_once() -> None:
    found = conflicts(ME, [Node("http://b", 1, 2), Node("http://c", 2, 3)])
    assert len(found) == 2
