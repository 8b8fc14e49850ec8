"""``Client`` against real seqgen servers: spreading, catch-up, batches, errors, threads, fork."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqgen_client import Client, ExhaustedError, RequestError, SeqgenError, Unavailable
from seqgen_common.limits import MAX_VALUE
from tests.conftest import Cluster, ServerProc, in_forked_child, numbers, tcp, wait_until

DRIFT = 10


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerProc, ServerProc]]:
    """Instances 1 (odd) and 2 (even) of 2, shared by the tests that kill nothing."""
    root = Path(tempfile.mkdtemp(prefix="sgc", dir="/tmp"))
    cluster = Cluster(root)
    try:
        yield cluster.server(1, 2, drift=DRIFT), cluster.server(2, 2, drift=DRIFT)
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def test_calls_spread_over_both_servers(pair: tuple[ServerProc, ServerProc]) -> None:
    odd, even = pair
    with Client([odd.bind, even.bind]) as client:
        values = [client.next("spread") for _ in range(20)]
    assert len(set(values)) == 20
    assert {v % 2 for v in values} == {0, 1}
    # Round-robin: the two servers alternate, so they stay in step.
    assert [v % 2 for v in values[::2]] == [values[0] % 2] * 10
    assert max(values) <= 20 + DRIFT


def test_a_lagging_server_catches_up_through_the_client_s_last(
    pair: tuple[ServerProc, ServerProc],
) -> None:
    odd, even = pair
    ahead = numbers(odd.bind, "catchup", count=100)[-1]  # the odd server issued up to 199
    assert ahead == 199
    with Client([odd.bind, even.bind]) as client:
        values = [client.next("catchup") for _ in range(4)]
        assert client.last("catchup") == max(values)
    first_odd = next(i for i, v in enumerate(values) if v % 2)
    later_evens = [v for v in values[first_odd:] if v % 2 == 0]
    assert later_evens, values
    # Without the client's last the even server would hand out 2, 4, ...
    assert all(v > ahead for v in later_evens), values


def test_next_many_is_one_batch(pair: tuple[ServerProc, ServerProc]) -> None:
    odd, even = pair
    with Client([odd.bind, even.bind]) as client:
        batch = client.next_many("batch", 50)
        one = client.next("batch")
        other = client.next_many("batch", 1000)
    assert len(batch) == 50
    assert batch == list(range(batch[0], batch[0] + 100, 2))  # one server, ascending
    assert len(other) == 1000
    assert other == sorted(other)
    everything = [*batch, one, *other]
    assert len(set(everything)) == len(everything)
    # The batch moved the client's last: the next server caught up past it.
    assert one > batch[-1] and other[0] > batch[-1]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.next(""), "BAD_NAME"),
        (lambda c: c.next("x" * 201), "BAD_NAME"),
        (lambda c: c.next("line\nbreak"), "BAD_NAME"),
        (lambda c: c.next(None), "BAD_NAME"),
        (lambda c: c.next_many("ok", 0), "BAD_COUNT"),
        (lambda c: c.next_many("ok", 1001), "BAD_COUNT"),
        (lambda c: c.next_many("ok", 2.5), "BAD_COUNT"),
    ],
)
def test_invalid_arguments_are_refused_before_anything_is_sent(call: object, code: str) -> None:
    # Nothing listens at this endpoint: anything sent would end in Unavailable after 5 s.
    with Client(tcp(), timeout_s=5.0, deadline_s=5.0) as client:
        started = time.monotonic()
        with pytest.raises(RequestError) as info:
            call(client)  # type: ignore[operator]
        assert time.monotonic() - started < 1.0
    assert info.value.code == code


def test_exhausted_comes_from_the_server_and_issues_nothing(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    assert numbers(server.bind, "edge", last=MAX_VALUE - 3) == [MAX_VALUE - 2]
    with Client(server.bind) as client:
        assert client.next("edge") == MAX_VALUE - 1
        assert client.next("edge") == MAX_VALUE
        with pytest.raises(ExhaustedError) as info:
            client.next("edge")
        assert info.value.code == "EXHAUSTED"
        assert info.value.message  # the server's own words
        # A batch that would pass the maximum issues nothing at all.
        assert numbers(server.bind, "edge2", last=MAX_VALUE - 10) == [MAX_VALUE - 9]
        with pytest.raises(SeqgenError) as batch_info:
            client.next_many("edge2", 20)
        assert batch_info.value.code == "EXHAUSTED"
        assert client.next("edge2") == MAX_VALUE - 8


def test_the_client_is_usable_after_an_error_reply(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    numbers(server.bind, "full", last=MAX_VALUE - 1)
    with Client(server.bind) as client:
        with pytest.raises(ExhaustedError):
            client.next("full")
        assert client.next("fine") == 1


def test_threads_share_one_client(pair: tuple[ServerProc, ServerProc]) -> None:
    odd, even = pair
    results: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def work(out: list[int]) -> None:
        try:
            for _ in range(500):
                out.append(client.next("threads"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    with Client([odd.bind, even.bind]) as client:
        threads = [threading.Thread(target=work, args=(out,)) for out in results]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    values = [v for out in results for v in out]
    assert len(values) == 4000
    assert len(set(values)) == 4000
    assert {v % 2 for v in values} == {0, 1}
    # Each thread sees its numbers of each server strictly increasing.
    for out in results:
        for parity in (0, 1):
            mine = [v for v in out if v % 2 == parity]
            assert mine == sorted(mine) and len(set(mine)) == len(mine)


def test_a_forked_child_reopens_its_sockets(pair: tuple[ServerProc, ServerProc]) -> None:
    odd, even = pair
    with Client([odd.bind, even.bind], timeout_s=2.0, deadline_s=5.0) as client:
        before = [client.next("fork") for _ in range(4)]  # sockets open in the parent
        status, in_child = in_forked_child(lambda: [client.next("fork") for _ in range(4)])
        assert status == 0
        # The child could not have used the parent's sockets (their I/O thread is not there).
        assert isinstance(in_child, list), in_child
        after = [client.next("fork") for _ in range(4)]  # the parent's sockets still work
    everything = before + in_child + after
    assert len(set(everything)) == 12
    # The child inherited the parent's memory of the sequence: it started above it.
    assert min(in_child) > max(before) - DRIFT


def test_a_late_reply_never_reaches_a_later_call(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    with Client(server.bind, timeout_s=0.3, deadline_s=0.3) as client:
        assert client.next_many("late", 2) == [1, 2]
        server.stop()
        with pytest.raises(Unavailable):
            client.next_many("late", 5)
        server.cont()
        # The frozen server now answers the 5 it was asked for, to a socket that is gone.
        # Each later call gets exactly its own reply (a stale one would be 5 numbers).
        for count in (7, 3, 1, 9):
            assert len(client.next_many("late", count)) == count
    assert client.closed


def test_calls_after_close_are_refused(pair: tuple[ServerProc, ServerProc]) -> None:
    client = Client(pair[0].bind)
    assert client.next("closing") > 0
    client.close()
    client.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        client.next("closing")


def test_close_waits_for_calls_in_other_threads(cluster: Cluster) -> None:
    server = cluster.server(1, 1)
    client = Client(server.bind, timeout_s=5.0, deadline_s=5.0)
    assert client.next("inflight") == 1
    server.stop()
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(client.next("inflight")))
    worker.start()
    # The worker holds a socket (a peek at the pool's count: there is no public signal).
    wait_until(lambda: client._in_use == 1, 10, "the worker's call in flight")
    client.close()  # must not pull the socket from under the waiting call
    server.cont()
    worker.join(10)
    assert not worker.is_alive()
    assert result == [2]
