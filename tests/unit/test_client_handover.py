"""The hand-over of a lane's next batch (``ClientBase._hand_over``): one test per invariant
its docstring states, on the real ``Client`` code with its socket layer in memory.

``Loopback`` replaces only ``Client._send`` and ``Client._receive`` (the two calls that touch
a socket): every request is recorded and answered with the next numbers, so these tests
need no sockets and no threads; everything else (lanes, plan, hand-over, wake-ups) is the
client's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from seqgen_client import Client
from seqgen_client.base import Attempt, Sent
from seqgen_client.failover import PENDING, PendingReply, Reply
from seqgen_client.lanes import Batch, Lanes
from seqgen_client.reqsockets import Conn
from seqgen_client.wakeups import ThreadWaiter
from seqgen_common.errors import SeqgenError, Unavailable
from seqgen_common.limits import MAX_COUNT
from seqgen_common.protocol import encode_values

NAME = "invoice"


class Loopback(Client):
    """A Client whose requests go to a counter in memory instead of a socket."""

    def _setup(self) -> None:
        super()._setup()
        self.sent: list[Attempt] = []
        """Every attempt sent, in order."""
        self.sends = 0
        """How many sends were tried."""
        self.on_send: Callable[[int], None] = lambda _: None
        """Called with the number of each send (1, 2, ...) just before it is tried, the
        client's lock not held: a test makes callers give up or come meanwhile."""
        self.fail_send: SeqgenError | None = None
        self.next_value = 1

    def _send(self, attempt: Attempt, conn: Conn | None) -> tuple[Conn | None, Reply | PendingReply]:
        assert not self._lock.locked(), "a request is sent outside the client's lock"
        self.sends += 1
        self.on_send(self.sends)
        if self.fail_send is not None:
            with self._lock:
                self._give_back(conn, attempt[0], keep=False)
            raise self.fail_send
        self.sent.append(attempt)
        return conn, PENDING

    def _receive(self, attempt: Attempt, conn: Conn | None, at: float, count: int,
                 ) -> tuple[Conn | None, Reply, float]:
        assert not self._lock.locked(), "a reply is received outside the client's lock"
        first, self.next_value = self.next_value, self.next_value + count
        return conn, encode_values(first, 1, count), at


class LockedLanes(Lanes[ThreadWaiter]):
    """Lanes that check the client's lock is held whenever they change."""

    lock: threading.Lock

    def join(self, name: str, caller: ThreadWaiter) -> Batch[ThreadWaiter] | None:
        assert self.lock.locked()
        return super().join(name, caller)

    def settle(self, batch: Batch[ThreadWaiter], values: list[int]) -> Batch[ThreadWaiter] | None:
        assert self.lock.locked()
        return super().settle(batch, values)

    def fail(self, batch: Batch[ThreadWaiter], error: SeqgenError) -> Batch[ThreadWaiter] | None:
        assert self.lock.locked()
        return super().fail(batch, error)

    def abandon(self, batch: Batch[ThreadWaiter], leader: ThreadWaiter | None,
                ) -> Batch[ThreadWaiter] | None:
        assert self.lock.locked()
        return super().abandon(batch, leader)


@pytest.fixture
def client() -> Loopback:
    seq = Loopback("tcp://127.0.0.1:1", hedge=False)
    lanes = LockedLanes(seq.options.prefetch, seq.options.coalesce)
    lanes.lock = seq._lock
    seq._lanes = lanes
    return seq


def caller(seq: Loopback, *, asleep: bool = False) -> ThreadWaiter:
    """A ``next`` call, as ``Client.next`` makes it (asleep: on a lock of its own, held)."""
    now = seq._clock()
    waiter = ThreadWaiter(now, now + seq.options.deadline_s)
    waiter.queue = seq._to_wake
    waiter.sleeping = asleep
    if asleep:
        waiter.signal = threading.Lock()
        waiter.signal.acquire()
    return waiter


def join(seq: Loopback, waiter: ThreadWaiter) -> Batch[ThreadWaiter] | None:
    with seq._lock:
        return seq._lanes.join(NAME, waiter)


def lead_first(seq: Loopback, *waiting: ThreadWaiter) -> ThreadWaiter:
    """A first call leads a request of NAME; ``waiting`` join while it is out."""
    first = caller(seq)
    batch = join(seq, first)
    assert batch is not None
    for waiter in waiting:
        assert join(seq, waiter) is None  # a request of the name is out: they wait
    seq._lead(batch, first, None)
    assert first.result() == 1
    return first


def test_1_the_next_request_is_sent_before_its_leader_is_woken_and_never_again(
        client: Loopback) -> None:
    second, third = caller(client, asleep=True), caller(client, asleep=True)
    lead_first(client, second, third)
    assert len(client.sent) == 2, "the call that settled the first request sent the next"
    assert second.batch is not None and second.batch.callers == [second, third]
    assert isinstance(second.sent, Sent) and second.sent.reply is PENDING
    assert second.sent.count == 2
    assert second.signal is not None and second.signal.acquire(blocking=False), \
        "the leader is woken at once, its request already out"
    assert not third.answered
    batch, sent = client._woken(second)
    assert batch is not None
    client._lead(batch, second, sent)
    assert len(client.sent) == 2, "the leader only received the reply"
    assert (second.result(), third.result()) == (2, 3)
    assert client.stats.requests == 2 and client.stats.coalesced_calls == 2


def test_2_a_caller_that_gave_up_during_the_send_is_passed_over(client: Loopback) -> None:
    second, third = caller(client), caller(client)

    def give_up(sends: int) -> None:
        if sends == 2:  # the second request is being sent: its first caller gives up
            second.given_up = True

    client.on_send = give_up
    lead_first(client, second, third)
    assert second.batch is None and second.sent is None
    assert third.batch is not None and third.sent is not None
    client._lead(third.batch, third, third.sent)
    assert third.result() == 2
    assert len(client.sent) == 2
    assert client.stats.lost_numbers == 1, "the number of the caller that gave up is counted"


def test_3_when_every_caller_gave_up_the_reply_still_reaches_someone_or_is_counted(
        client: Loopback) -> None:
    second, third, late = caller(client), caller(client), caller(client)

    def everyone_gives_up(sends: int) -> None:
        if sends == 2:
            second.given_up = third.given_up = True
            assert join(client, late) is None  # a new call comes meanwhile, and waits

    client.on_send = everyone_gives_up
    lead_first(client, second, third)
    assert second.batch is None and third.batch is None
    assert late.result() == 2, "the settling call took the reply: its first number to the call now waiting"
    assert client.stats.lost_numbers == 1, "the other number is counted lost, not dropped unseen"
    assert len(client.sent) == 2
    with client._lock:
        assert client._lanes.go_alone(NAME), "the lane is free again"


def test_4_a_failed_send_fails_its_batch_and_the_lane_goes_on(client: Loopback) -> None:
    second, third, later = caller(client), caller(client), caller(client)
    refused = Unavailable("cannot use tcp://127.0.0.1:1: no socket")

    def fail_second(sends: int) -> None:
        if sends == 2:
            client.fail_send = refused
            assert join(client, later) is None  # comes while the send fails
        else:
            client.fail_send = None

    client.on_send = fail_second
    lead_first(client, second, third)
    assert second.error is refused and third.error is refused
    with pytest.raises(Unavailable):
        second.result()
    assert later.batch is not None and later.sent is not None, "the following batch was started"
    client._lead(later.batch, later, later.sent)
    assert later.result() == 2


def test_5_a_lane_has_one_request_out_and_the_next_batch_takes_at_most_max_count(
        client: Loopback) -> None:
    waiting = [caller(client) for _ in range(MAX_COUNT + 1)]
    lead_first(client, *waiting)
    assert len(client.sent) == 2
    leader = waiting[0]
    assert leader.batch is not None and leader.sent is not None
    assert leader.batch.count == MAX_COUNT and leader.batch.callers == waiting[:MAX_COUNT]
    assert waiting[-1].batch is None and not waiting[-1].answered, "it waits for the next batch"
    newcomer = caller(client)
    assert join(client, newcomer) is None, "the lane is busy: no second request"
    client._lead(leader.batch, leader, leader.sent)
    assert [w.result() for w in waiting[:MAX_COUNT]] == list(range(2, MAX_COUNT + 2))
    last = waiting[-1]
    assert last.batch is not None and last.batch.callers == [last, newcomer]
    assert len(client.sent) == 3


def test_6_lanes_change_under_the_lock_and_the_answered_are_woken_one_after_the_other(
        client: Loopback) -> None:
    # LockedLanes and Loopback check the lock on every change, send and receive.
    leader = caller(client, asleep=True)
    others = [caller(client, asleep=True) for _ in range(3)]
    lead_first(client, leader, *others)
    assert leader.signal is not None and leader.signal.acquire(blocking=False)
    assert leader.batch is not None
    client._lead(leader.batch, leader, leader.sent)
    assert [o.result() for o in others] == [3, 4, 5]

    def woken() -> list[bool]:
        result = []
        for other in others:
            assert other.signal is not None
            result.append(not other.sleeping)
        return result

    assert woken() == [True, False, False], "the settling thread wakes only the first"
    assert others[0].signal is not None and others[0].signal.acquire(blocking=False)
    assert others[1].signal is not None and not others[1].signal.acquire(blocking=False)
    client._to_wake.wake_next()  # what the first woken thread does first
    assert woken() == [True, True, False]
    client._to_wake.wake_next()
    assert woken() == [True, True, True]
    assert others[2].signal is not None and others[2].signal.acquire(blocking=False)
