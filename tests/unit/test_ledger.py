"""Reservation bookkeeping: what may be sent, what must be written first."""

from __future__ import annotations

import pytest

from seqgen_common.errors import Conflict, InternalError
from seqgen_common.limits import MAX_VALUE
from seqgen_server.allocator import Allocator
from seqgen_server.ledger import MIN_SPAN, Ledger


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ledger(
    marks: dict[str, int] | None = None, reserve: int = 10, n: int = 2, clock: FakeClock | None = None
) -> Ledger:
    return Ledger(
        Allocator(1, n, drift=100), reserve, dict(marks or {}), max_sequences=100, clock=clock or FakeClock()
    )


def test_new_name_needs_a_write_before_its_first_number() -> None:
    led = ledger()
    alloc = led.issue("a", 0, 1)
    assert alloc.first == 1
    assert not led.is_durable("a", 1)
    batch = led.take_batch()
    assert batch == {"a": 1 + 10 * 2}
    assert led.take_batch() is None  # one batch in flight at a time
    led.batch_done(True)
    assert led.is_durable("a", 21)
    assert not led.is_durable("a", 23)


def test_numbers_inside_the_reservation_need_no_write() -> None:
    led = ledger({"a": 41})
    led.cur["a"] = 1
    for _ in range(10):
        alloc = led.issue("a", 0, 1)
        assert led.is_durable("a", alloc.last)
    assert led.take_batch() is None


def test_refill_is_asked_when_half_the_reservation_is_used() -> None:
    led = ledger({"a": 21}, reserve=10)  # span 20, low water 10
    led.cur["a"] = 9
    led.issue("a", 0, 1)  # 11: 21 - 11 == 10 left, not below the low water
    assert led.take_batch() is None
    alloc = led.issue("a", 0, 1)  # 13: 8 left
    assert led.is_durable("a", alloc.last)
    assert led.take_batch() == {"a": 13 + 20}


def test_refill_is_not_asked_twice_while_in_flight() -> None:
    led = ledger({"a": 21})
    led.cur["a"] = 13
    led.issue("a", 0, 1)
    assert led.take_batch() == {"a": 15 + 20}
    led.issue("a", 0, 1)  # 17: the in-flight mark 35 still covers it by more than half
    led.batch_done(True)
    assert led.take_batch() is None


def test_failed_batch_keeps_the_old_mark() -> None:
    led = ledger({"a": 5})
    led.cur["a"] = 5
    alloc = led.issue("a", 0, 1)
    led.take_batch()
    led.batch_done(False)
    assert not led.is_durable("a", alloc.last)
    assert led.mark["a"] == 5


def test_exact_marks_lower_to_what_was_issued() -> None:
    led = ledger({"a": 41, "b": 7})
    led.cur["a"] = 13
    assert led.exact_marks() == [("a", 13)]


def test_floor_forward_only() -> None:
    led = ledger({"a": 41})
    led.cur["a"] = 13
    with pytest.raises(Conflict):
        led.raise_floor("a", 12)
    assert led.cur["a"] == 13
    led.raise_floor("a", 13)  # equal: nothing changes
    led.raise_floor("a", 100)
    assert led.take_batch() == {"a": 100}
    led.batch_done(True)
    assert led.issue("a", 0, 1).first == 101


def test_max_sequences() -> None:
    led = Ledger(Allocator(1, 1, 0), 10, {"a": 1}, max_sequences=1, clock=FakeClock())
    led.issue("a", 0, 1)
    with pytest.raises(InternalError):
        led.issue("b", 0, 1)
    with pytest.raises(InternalError):
        led.raise_floor("b", 5)


def _drain(led: Ledger, name: str, clock: FakeClock, step_s: float, requests: int) -> list[int]:
    """Issue ``requests`` numbers ``step_s`` apart, completing every batch; the marks written."""
    written = []
    for _ in range(requests):
        clock.now += step_s
        led.issue(name, 0, 1)
        batch = led.take_batch()
        if batch:
            written.append(batch[name])
            led.batch_done(True)
    return written


def test_quiet_name_keeps_a_small_reservation() -> None:
    clock = FakeClock()
    led = ledger(reserve=10_000, n=1, clock=clock)
    _drain(led, "invoice", clock, step_s=60.0, requests=200)
    assert led.span("invoice") == led.min_span == MIN_SPAN
    # what a crash now could skip: the mark minus what was issued
    assert led.mark["invoice"] - led.cur["invoice"] <= MIN_SPAN


def test_busy_name_grows_its_reservation_up_to_reserve() -> None:
    clock = FakeClock()
    led = ledger(reserve=1000, n=2, clock=clock)
    _drain(led, "hot", clock, step_s=0.0001, requests=20_000)
    assert led.span("hot") == led.max_span == 2000
    assert led.mark["hot"] - led.cur["hot"] <= led.max_span


def test_reservation_shrinks_when_a_name_cools_down() -> None:
    clock = FakeClock()
    led = ledger(reserve=1000, n=1, clock=clock)
    _drain(led, "x", clock, step_s=0.0001, requests=5000)
    assert led.span("x") == 1000
    _drain(led, "x", clock, step_s=5.0, requests=2000)
    assert led.span("x") == MIN_SPAN


def test_never_reserves_past_the_maximum() -> None:
    led = ledger({"m": MAX_VALUE - 3}, reserve=10_000, n=1)
    led.cur["m"] = MAX_VALUE - 5
    led.issue("m", 0, 1)
    assert led.take_batch() == {"m": MAX_VALUE}


def test_highest_mark_follows_the_durable_marks_only() -> None:
    led = ledger({"a": 41, "b": 7})
    assert led.highest_mark == 41  # from the store at start
    led.raise_floor("b", 1000)
    assert led.highest_mark == 41  # wanted, not durable yet
    led.take_batch()
    led.batch_done(False)
    assert led.highest_mark == 41  # a failed write raised nothing
    led.raise_floor("b", 2000)
    led.take_batch()
    led.batch_done(True)
    assert led.highest_mark == 2000
    assert ledger().highest_mark == 0
