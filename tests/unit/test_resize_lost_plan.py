"""lost_plan: when a shrink may go on without its retiring server (pure)."""

from __future__ import annotations

import pytest

from seqgen_admin.layout import LayoutNode
from seqgen_admin.resize_lost import lost_plan
from seqgen_common.errors import Conflict, SeqgenError, Unavailable

DOWN = ConnectionError("no answer")


def _node(who: str, instance: int, instances: int = 3, resize_to: int | None = None,
          ) -> LayoutNode:
    return LayoutNode(who, instance, instances, resize_to is not None, resize_to)


def test_the_one_admin_that_does_not_answer_is_instance_n() -> None:
    assert lost_plan([("a", _node("a", 1)), ("b", _node("b", 2)), ("c", DOWN)], 2) == ("c", False)


def test_an_unfinished_shrink_is_finished_and_a_finished_one_is_done() -> None:
    pending = [("a", _node("a", 1, 2, 2)), ("b", _node("b", 2, 3, 2)), ("c", DOWN)]
    assert lost_plan(pending, 2) == ("c", False)
    shrunk = [("a", _node("a", 1, 2)), ("b", _node("b", 2, 2)), ("c", DOWN)]
    assert lost_plan(shrunk, 2) == ("c", True)


@pytest.mark.parametrize(("states", "error", "says"), [
    ([("a", _node("a", 1)), ("b", _node("b", 2)), ("c", _node("c", 3))], Conflict, "not lost"),
    ([("a", _node("a", 1)), ("b", DOWN), ("c", DOWN)], Unavailable, "2 admins"),
    ([("a", _node("a", 1)), ("b", _node("b", 3)), ("c", DOWN)], Conflict, "instance 3 answers"),
    ([("a", _node("a", 1, 4)), ("b", _node("b", 2, 4)), ("c", DOWN)], Conflict, "--instances"),
    ([("a", _node("a", 1, 2, 3)), ("b", _node("b", 2, 2, 3)), ("c", DOWN)], Conflict,
     "unfinished grow"),
])
def test_what_does_not_fit_is_refused_and_says_why(
        states: list[tuple[str, LayoutNode | BaseException]], error: type[SeqgenError],
        says: str) -> None:
    with pytest.raises(error, match=says):
        lost_plan(states, 2)


def test_only_a_shrink_by_one() -> None:
    with pytest.raises(Conflict, match="shrink by one"):
        lost_plan([("a", _node("a", 1)), ("b", _node("b", 2)), ("c", DOWN)], 1)
