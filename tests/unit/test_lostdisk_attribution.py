"""benchmarks.lostdisk: which loss a repeat belongs to, and the acknowledgement check."""

from __future__ import annotations

from benchmarks.lostdisk import Cycle, attribute
from benchmarks.lostload import Acks, Repeat


def cycle(lost: int) -> Cycle:
    return Cycle(lost, 10.0, 4000.0, 1400.0, 0, 0.3, 100, "3000", 50, 40, 1, [])


def test_a_number_acknowledged_twice_is_a_repeat() -> None:
    acks = Acks()
    acks.note("a", [1, 4])
    acks.note("b", [1])
    acks.note("a", [7, 4])
    assert [(r.name, r.value) for r in acks.repeats] == [("a", 4)]
    assert acks.counts() == (5, 3, 0)


def test_a_repeat_goes_to_the_last_loss_of_the_instance_that_issued_it() -> None:
    acks = Acks()
    acks.first_used.update({"new/1": 9.5, "new/2": 19.0, "old": 1.0})
    acks.repeats += [Repeat("new/1", 4, 10.5),   # issued by instance 1 (4 % 3), lost at 10
                     Repeat("new/1", 7, 21.0),   # instance 1 again, after instance 2's loss
                     Repeat("new/2", 5, 20.5),   # instance 2, lost at 20
                     Repeat("old", 6, 5.0)]      # before any loss: no cycle's
    losses = [(1, 10.0, {"old"}), (2, 20.0, {"new/2"})]
    first, second = attribute([cycle(1), cycle(2)], losses, acks)
    assert [(r.name, r.numbers, r.seen_by_survivor) for r in first.repeated] == [("new/1", 2, False)]
    assert first.repeated[0].first_used_before_loss_s == 0.5
    assert [(r.name, r.numbers, r.seen_by_survivor) for r in second.repeated] == [("new/2", 1, True)]
    assert first.numbers_repeated == 2 and first.raised == 100
