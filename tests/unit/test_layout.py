"""Changing the number of servers: the plan, the boundaries, and the promise that no number
is issued twice across the old and the new layout (docs/protocol.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqgen_admin.layout import (
    LayoutError,
    LayoutNode,
    boundaries,
    resize_margin,
    resize_plan,
    waiting_to_join,
)
from seqgen_admin.margin import CEILING, Implausible
from seqgen_server.allocator import Allocator


def _nodes(*specs: tuple[int, int, bool]) -> list[LayoutNode]:
    return [LayoutNode(f"s{k}", k, n, fenced) for k, n, fenced in specs]


def test_grow_needs_the_new_server_fenced() -> None:
    plan = resize_plan(_nodes((1, 2, False), (2, 2, False), (3, 3, True)), 3)
    assert (plan.old, plan.retire, plan.done) == (2, None, False)
    with pytest.raises(LayoutError, match="not fenced"):
        resize_plan(_nodes((1, 2, False), (2, 2, False), (3, 3, False)), 3)


def test_grow_without_the_new_server_says_what_is_missing() -> None:
    with pytest.raises(LayoutError, match="start instance 3"):
        resize_plan(_nodes((1, 2, False), (2, 2, False)), 3)
    with pytest.raises(LayoutError, match=r"instances \[1, 3\]"):
        resize_plan(_nodes((1, 2, False), (3, 3, True)), 3)


def test_shrink_retires_the_highest_instance() -> None:
    plan = resize_plan(_nodes((1, 3, False), (2, 3, False), (3, 3, False)), 2)
    assert (plan.old, plan.retire, plan.done) == (3, "s3", False)


def test_by_more_than_one_is_refused() -> None:
    with pytest.raises(LayoutError, match="by one"):
        resize_plan(_nodes((1, 3, False), (2, 3, False), (3, 3, False)), 1)
    with pytest.raises(LayoutError, match="at least 1"):
        resize_plan(_nodes((1, 1, False)), 0)


def test_done_and_unfinished() -> None:
    assert resize_plan(_nodes((1, 3, False), (2, 3, False), (3, 3, False)), 3).done
    nodes = [LayoutNode("s1", 1, 3, True, resize_to=3), LayoutNode("s2", 1, 2, True),
             LayoutNode("s3", 3, 3, True, resize_to=3)]
    with pytest.raises(LayoutError, match="exactly one server"):
        resize_plan(nodes, 3)
    unfinished = [LayoutNode("s1", 1, 3, False), LayoutNode("s2", 2, 3, True, resize_to=3),
                  LayoutNode("s3", 3, 3, True, resize_to=3)]
    assert not resize_plan(unfinished, 3).done
    with pytest.raises(LayoutError, match="unfinished"):
        resize_plan(unfinished, 2)


def test_an_unfinished_resize_is_undone_only_while_no_old_server_recorded_the_new_layout(
        ) -> None:
    grow = [LayoutNode("s1", 1, 2, True, resize_to=3), LayoutNode("s2", 2, 2, False),
            LayoutNode("s3", 3, 3, True, resize_to=3)]
    plan = resize_plan(grow, 2)
    assert (plan.undo, plan.old, plan.target, plan.done) == (3, 3, 2, False)
    shrink = [LayoutNode(f"s{k}", k, 3, True, resize_to=2) for k in (1, 2, 3)]
    assert resize_plan(shrink, 3).undo == 2
    retired = [*shrink[:2], LayoutNode("s3", 3, 3, True, resize_to=2, retired=True)]
    with pytest.raises(LayoutError, match="cannot be undone: s3"):
        resize_plan(retired, 3)
    committed = [LayoutNode("s1", 1, 3, True, resize_to=3), *grow[1:]]
    with pytest.raises(LayoutError, match="cannot be undone: s1"):
        resize_plan(committed, 2)
    with pytest.raises(LayoutError, match=r"finish it \(POST /resize with 3\) or undo it"):
        resize_plan(grow, 4)
    waiting = [LayoutNode("s1", 1, 2, False), LayoutNode("s2", 2, 2, False),
               LayoutNode("s3", 3, 3, True)]  # after the undo: the new server waits again
    assert resize_plan(waiting, 2).done
    assert resize_plan(waiting, 3).old == 2


def test_a_retired_server_counts_until_its_resize_ended() -> None:
    middle = [LayoutNode("s1", 1, 2, True, resize_to=2), LayoutNode("s2", 2, 2, True, resize_to=2),
              LayoutNode("s3", 3, 3, True, resize_to=2, retired=True)]
    assert resize_plan(middle, 2).retire == "s3"
    ended = [LayoutNode("s1", 1, 2, False), LayoutNode("s2", 2, 2, False),
             LayoutNode("s3", 3, 3, True, retired=True)]
    assert resize_plan(ended, 2).done


def test_boundaries_are_the_highest_value_plus_the_margin() -> None:
    floors = boundaries([[("a", 5), ("b", 9)], [("a", 8)], []], margin=100)
    assert floors == {"a": 108, "b": 109}
    assert resize_margin(drift=100, old=2, target=3) == 3000
    with pytest.raises(Implausible):
        boundaries([[("a", CEILING)]], margin=1)


_step = st.tuples(st.integers(0, 3), st.integers(0, 400), st.integers(1, 5))


def _run(allocators: list[Allocator], cur: list[dict[str, int]], steps: list[tuple[int, int, int]],
         issued: list[tuple[str, int]], name: str) -> None:
    for server, last, count in steps:
        index = server % len(allocators)
        got = allocators[index].allocate(cur[index].get(name, 0), last, count)
        issued.extend((name, v) for v in range(got.first, got.last + 1, allocators[index].instances))
        cur[index][name] = got.last


@settings(max_examples=300, deadline=None)
@given(old=st.integers(1, 4), grow=st.booleans(), drift=st.integers(0, 50),
       before=st.lists(_step, max_size=30), after=st.lists(_step, max_size=30),
       again=st.lists(_step, max_size=30), new_name=st.booleans())
def test_no_number_is_issued_twice_across_a_resize(
        old: int, grow: bool, drift: int, before: list[tuple[int, int, int]],
        after: list[tuple[int, int, int]], again: list[tuple[int, int, int]],
        new_name: bool) -> None:
    """Any history under n servers, a resize to n +- 1 with the boundaries of the rule, any
    history under the new layout (and a second resize back): every number at most once.
    Clients send any ``last`` they like (catch-ups)."""
    target = old + 1 if grow or old == 1 else old - 1
    name = "n"
    issued: list[tuple[str, int]] = []
    layout = [Allocator(k, old, drift) for k in range(1, old + 1)]
    cur: list[dict[str, int]] = [{} for _ in layout]
    _run(layout, cur, before, issued, name)
    for history, (frm, to) in ((after, (old, target)), (again, (target, old))):
        margin = resize_margin(drift, frm, to)
        floors = boundaries([list(values.items()) for values in cur], margin)
        layout = [Allocator(k, to, drift) for k in range(1, to + 1)]
        # the new layout's servers: the survivors keep their values, a newcomer has none;
        # every one of them gets every boundary as its floor
        cur = [{**(cur[k] if k < len(cur) else {})} for k in range(to)]
        for values in cur:
            for key, floor in floors.items():
                values[key] = max(values.get(key, 0), floor)
        # a name no server knew at the resize starts from nothing under the new layout
        _run(layout, cur, history, issued, "fresh" if new_name else name)
    assert len(issued) == len(set(issued))


def test_a_new_server_waits_for_the_resize() -> None:
    assert "waits, fenced" in str(waiting_to_join(3, 3, [2, 2]))
    assert waiting_to_join(2, 2, [2]) is None  # an ordinary server
    assert waiting_to_join(1, 3, [2, 2]) is None  # resized already; others not yet: its residue is its own
    assert waiting_to_join(3, 3, []) is None
