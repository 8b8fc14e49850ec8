"""Endpoint rotation, back-off and the per-call plan: pure logic, the clock passed in."""

from __future__ import annotations

import pytest

from seqgen_client.failover import NO_ANSWER, UNSENT, Call, Rotation
from seqgen_common.errors import ErrorCode, InternalError, RequestError, SeqgenError, Unavailable

ENDPOINTS = ("tcp://a:1", "tcp://b:1", "tcp://c:1")


def test_round_robin_from_the_start_index() -> None:
    rotation = Rotation(3, backoff_s=1.0, max_backoff_s=8.0, start=1)
    assert [rotation.pick(0.0) for _ in range(7)] == [1, 2, 0, 1, 2, 0, 1]


def test_a_failed_endpoint_is_skipped_for_its_back_off_then_probed_once() -> None:
    rotation = Rotation(2, backoff_s=1.0, max_backoff_s=8.0)
    assert rotation.pick(10.0) == 0
    rotation.failed(0, started=10.0, now=10.5)
    # During the back-off every call goes to endpoint 1.
    assert [rotation.pick(10.6 + i * 0.1) for i in range(5)] == [1, 1, 1, 1, 1]
    # Back-off over: one call probes 0; the probe is claimed, so the others keep skipping it.
    assert rotation.pick(11.6) == 0
    assert [rotation.pick(11.7), rotation.pick(11.8)] == [1, 1]
    rotation.succeeded(0, started=11.6)
    assert sorted(rotation.pick(12.0) for _ in range(4)) == [0, 0, 1, 1]


def test_back_off_doubles_per_failure_up_to_the_maximum() -> None:
    rotation = Rotation(2, backoff_s=1.0, max_backoff_s=5.0)
    assert [rotation.delay_s(k) for k in (1, 2, 3, 4, 10, 1000)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    now = 0.0
    probes = []
    rotation.failed(0, started=now, now=now)
    while now < 20.0:
        now += 0.25
        if rotation.pick(now) == 0:
            probes.append(now)
            rotation.failed(0, started=now, now=now)  # still dead
    # Probes after 1, 2, 4, then every 5 seconds.
    assert probes == [1.0, 3.0, 7.0, 12.0, 17.0]


def test_failures_of_one_outage_do_not_stack() -> None:
    """Eight threads time out on the same dead endpoint: one failure, not eight."""
    rotation = Rotation(2, backoff_s=1.0, max_backoff_s=64.0)
    for _ in range(8):
        rotation.failed(0, started=0.0, now=1.0)
    assert rotation.pick(1.5, skip={1}) == 0  # only candidate: forced probe, back-off untouched
    assert rotation.pick(2.0) == 0  # one back-off period (1 s) after the failure
    # A success that started before the failure is stale evidence.
    rotation.failed(1, started=2.0, now=3.0)
    rotation.succeeded(1, started=1.0)
    assert rotation._failures[1] == 1  # a peek: 1 is still in its back-off


def test_only_endpoints_in_back_off_left_gives_the_one_due_soonest() -> None:
    rotation = Rotation(3, backoff_s=1.0, max_backoff_s=1.0)
    rotation.failed(0, started=0.0, now=0.5)
    rotation.failed(2, started=0.0, now=0.2)
    assert rotation.pick(0.6, skip={1}) == 2
    assert rotation.pick(0.6, skip={1, 2}) == 0
    assert rotation.pick(0.6, skip={0, 1, 2}) is None


def test_a_hedge_goes_to_the_next_healthy_endpoint_first() -> None:
    rotation = Rotation(3, 1.0, 8.0)
    assert [rotation.pick_hedge(0) for _ in range(4)] == [1, 2, 1, 2]  # never the attempt's own
    rotation.failed(2, 10.0, 10.0)
    assert [rotation.pick_hedge(0) for _ in range(3)] == [1, 1, 1]  # not 2 while 1 is healthy
    assert rotation.pick_hedge(1) == 0
    assert rotation.pick_hedge(2) in (0, 1)


def test_with_no_other_endpoint_healthy_a_hedge_goes_to_the_one_due_soonest() -> None:
    # The attempt on a healthy endpoint is unanswered: that one may just have gone down,
    # while one in back-off is back (after the client's own link was cut off).
    rotation = Rotation(3, 1.0, 8.0)
    rotation.failed(2, 10.0, 10.0)  # due at 11.0
    rotation.failed(1, 10.0, 10.2)  # due at 11.2
    assert rotation.pick_hedge(0) == 2  # 0 is healthy, no other one is
    rotation.failed(0, 10.0, 10.5)  # due at 11.5: every one is suspect
    assert rotation.pick_hedge(0) == 2
    assert rotation.pick_hedge(2) == 1
    assert rotation.pick_hedge(1) == 2
    assert rotation.pick(10.6) == 2  # the hedges left every back-off as it was
    assert rotation.pick(10.6, {2}) == 1
    rotation.succeeded(1, 10.7)
    assert rotation.pick_hedge(0) == 1  # healthy again: the round-robin rule
    assert rotation.pick_hedge(1) == 2
    assert Rotation(1, 1.0, 8.0).pick_hedge(0) is None  # nothing else to hedge to


def test_an_endpoint_that_lost_to_a_hedge_is_probed_every_back_off_not_doubled() -> None:
    rotation = Rotation(2, 1.0, 30.0)
    now = 10.0
    probes = []
    for _ in range(4):  # each probe loses to a hedge again
        rotation.suspect(0, now - 0.05, now)
        rotation.failed(0, now - 0.05, now + 0.95)  # its timeout: the same outage
        assert rotation.pick(now + 0.5) == 1
        now += 1.0
        probes.append(rotation.pick(now))
    assert probes == [0, 0, 0, 0]  # a probe every second, not after 2, 4, 8 s
    rotation.failed(0, now, now + 1.0)  # a timeout of its own (no hedge won): doubles as before
    assert rotation.pick(now + 2.5) == 1


def test_rotation_rejects_no_endpoints() -> None:
    with pytest.raises(ValueError):
        Rotation(0, 1.0, 1.0)


def _call(rotation: Rotation, deadline_s: float = 5.0, timeout_s: float = 1.0) -> Call:
    return Call(rotation, ENDPOINTS, started=0.0, deadline_s=deadline_s, timeout_s=timeout_s)


def test_call_tries_each_endpoint_once_per_pass_until_the_deadline() -> None:
    rotation = Rotation(3, backoff_s=10.0, max_backoff_s=10.0)
    call = _call(rotation, deadline_s=5.0, timeout_s=1.0)
    now = 0.0
    tried = []
    while (planned := call.next(now)) is not None:
        index, timeout_s = planned
        tried.append((index, timeout_s))
        now += timeout_s  # every attempt times out
        call.failed(index, now - timeout_s, now, NO_ANSWER)
    assert [i for i, _ in tried[:3]] == [0, 1, 2]
    assert sorted(i for i, _ in tried[3:5]) == [0, 1]  # a second pass
    assert [t for _, t in tried] == [1.0] * 5
    assert now == pytest.approx(5.0)
    error = call.error()
    assert isinstance(error, Unavailable)
    assert error.code == ErrorCode.UNAVAILABLE
    assert "tcp://a:1" in error.message


def test_the_deadline_caps_the_last_attempt() -> None:
    call = _call(Rotation(2, 1.0, 1.0), deadline_s=1.5, timeout_s=1.0)
    assert call.next(0.0) == (0, 1.0)
    call.failed(0, 0.0, 1.0, NO_ANSWER)
    index, timeout_s = call.next(1.0) or (None, None)
    assert (index, timeout_s) == (1, pytest.approx(0.5))
    call.failed(1, 1.0, 1.5, NO_ANSWER)
    assert call.next(1.5) is None


def test_an_attempt_cut_short_by_the_deadline_does_not_mark_the_endpoint() -> None:
    rotation = Rotation(1, 1.0, 1.0)
    call = Call(rotation, ENDPOINTS[:1], started=0.0, deadline_s=0.3, timeout_s=1.0)
    assert call.next(0.0) == (0, 0.3)
    call.failed(0, 0.0, 0.3, NO_ANSWER)
    assert rotation.pick(0.3, skip={1, 2}) == 0 and rotation.pick(0.3) == 0  # not in back-off


def test_an_endpoint_that_refused_is_not_asked_again_and_its_error_is_raised() -> None:
    rotation = Rotation(2, 1.0, 1.0)
    call = _call(rotation)
    assert call.next(0.0) == (0, 1.0)
    internal = InternalError("disk full")
    call.failed(0, 0.0, 0.01, internal)
    assert rotation.pick(0.01) == 1  # 0 is in its back-off
    assert call.next(0.01) == (1, 1.0)
    call.failed(1, 0.01, 0.02, SeqgenError("no backend", ErrorCode.UNAVAILABLE))
    assert call.next(0.02) is None  # both refused: no point waiting for the deadline
    error = call.error()
    assert error.code == ErrorCode.UNAVAILABLE
    assert error.message == "no backend"


def test_unsent_counts_as_refused_without_an_error_reply() -> None:
    rotation = Rotation(1, 1.0, 1.0)
    call = Call(rotation, ENDPOINTS[:1], started=0.0, deadline_s=5.0, timeout_s=1.0)
    assert call.next(0.0) == (0, 1.0)
    call.failed(0, 0.0, 0.0, UNSENT)
    assert call.next(0.0) is None
    assert isinstance(call.error(), Unavailable)


def test_outcome_judges_each_reply() -> None:
    rotation = Rotation(2, 1.0, 1.0, start=0)
    call = _call(rotation)
    assert call.next(0.0) == (0, 1.0)
    assert call.outcome(0, 0.0, 0.1, b'["INTERNAL","disk full"]', 1) is None  # try elsewhere
    assert call.next(0.1) == (1, 1.0)
    assert call.outcome(1, 0.1, 0.2, b'[null,"5","7"]', 2) == [5, 7]
    with pytest.raises(RequestError):  # the same everywhere: raised at once
        call.outcome(1, 0.2, 0.3, b'["BAD_NAME","no"]', 1)
    assert call.outcome(1, 0.3, 1.3, None, 1) is None  # no answer
    assert call.outcome(1, 1.3, 1.3, UNSENT, 1) is None
    assert call.next(1.3) is None  # both refused in this call
