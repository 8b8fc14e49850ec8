"""What the server's and the proxy's loops share (seqgen_common.loops)."""

from __future__ import annotations

import pytest

from seqgen_common.errors import RequestError
from seqgen_common.loops import IDLE_POLL_S, NOT_ONE_FRAME, RETRY_S, STOP_FLUSH_S, flush_at_stop, poll_ms
from seqgen_common.protocol import decode_reply


class Clock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_stop_flush_ends_once_nothing_is_held() -> None:
    clock, held = Clock(), [3]

    def flush() -> None:
        held[0] -= 1

    flush_at_stop(lambda: held[0] > 0, flush, clock=clock, sleep=clock.sleep)
    assert held == [0]
    assert clock.sleeps == [RETRY_S] * 3


def test_the_stop_flush_gives_up_after_its_bound() -> None:
    clock, flushes = Clock(), []
    flush_at_stop(lambda: True, lambda: flushes.append(1), clock=clock, sleep=clock.sleep)
    assert STOP_FLUSH_S <= clock.now - 50.0 < STOP_FLUSH_S + 2 * RETRY_S
    assert len(flushes) == len(clock.sleeps) > 1


def test_nothing_held_means_no_wait_at_all() -> None:
    clock = Clock()
    flush_at_stop(lambda: False, lambda: pytest.fail("nothing to flush"), clock=clock,
                  sleep=clock.sleep)
    assert clock.sleeps == []


def test_waits_in_milliseconds_for_zmq() -> None:
    assert poll_ms(RETRY_S) == 2
    assert poll_ms(IDLE_POLL_S) == 100


def test_the_not_one_frame_reply_is_a_bad_request() -> None:
    with pytest.raises(RequestError) as info:
        decode_reply(NOT_ONE_FRAME)
    assert info.value.code == "BAD_REQUEST"
