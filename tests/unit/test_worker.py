"""The worker thread of the server (seqgen_server.worker): a test per invariant of its docstring,
then the two workers built on it (the store writer and the control tasks).

No sockets: a real thread and a real pipe; a job that must not finish yet waits on an Event,
and readiness is waited for with select() on the wake pipe, never with a sleep.
"""

from __future__ import annotations

import logging
import select
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seqgen_common.control import ControlError, FenceState
from seqgen_common.errors import ControlCode
from seqgen_server.store import DB_NAME, Store
from seqgen_server.tasks import Job, Tasks
from seqgen_server.worker import Done, Worker
from seqgen_server.writer import StoreWriter, WriteResult

WAIT_S = 30.0
"""How long a test waits for something that happens at once (only a broken worker takes it)."""


def _readable(fd: int, timeout_s: float = 0.0) -> bool:
    return bool(select.select([fd], [], [], timeout_s)[0])


def _collect(worker: Worker[Any, Any], count: int) -> list[Done[Any, Any]]:
    """The next ``count`` results, waiting on the wake pipe as the serving loop does."""
    found: list[Done[Any, Any]] = []
    while len(found) < count:
        assert _readable(worker.wake_fd, WAIT_S), "no wake-up with results outstanding"
        found += worker.results()
    return found


class _Gate:
    """Jobs that wait for the test to let them finish; records where and when each ran."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.ran: list[tuple[int, str]] = []

    def __call__(self, job: int) -> int:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.ran.append((job, threading.current_thread().name))
        self.started.set()
        assert self.open.wait(WAIT_S)
        with self.lock:
            self.running -= 1
        if job < 0:
            raise ValueError(f"job {job} fails")
        return job * 10


@pytest.fixture
def gate() -> _Gate:
    return _Gate()


@pytest.fixture
def worker(gate: _Gate) -> Iterator[Worker[int, int]]:
    made: Worker[int, int] = Worker(gate, "test-worker", capacity=8)
    yield made
    gate.open.set()
    if not made._stopped:
        made.stop(WAIT_S)


def test_1_jobs_run_one_at_a_time_in_order_on_the_worker_thread(
        worker: Worker[int, int], gate: _Gate) -> None:
    jobs = [3, 1, 4, 1, 5, 9, 2, 6]
    assert all(worker.submit(job) for job in jobs)
    gate.open.set()
    done = _collect(worker, len(jobs))
    assert gate.ran == [(job, "test-worker") for job in jobs]
    assert gate.most_at_once == 1
    assert threading.current_thread().name != "test-worker"
    assert [d.job for d in done] == jobs


def test_2_each_job_gives_one_result_and_an_exception_ends_only_its_job(
        worker: Worker[int, int], gate: _Gate) -> None:
    for job in (1, -2, 3):
        assert worker.submit(job)
    gate.open.set()
    done = _collect(worker, 3)
    assert [(d.job, d.value) for d in done] == [(1, 10), (-2, None), (3, 30)]
    assert [type(d.error) for d in done] == [type(None), ValueError, type(None)]
    assert str(done[1].error) == "job -2 fails"
    assert worker.in_hand == 0
    assert not _readable(worker.wake_fd)
    assert worker.results() == []


def test_3_the_wake_pipe_is_readable_exactly_while_a_result_waits(
        worker: Worker[int, int], gate: _Gate) -> None:
    assert not _readable(worker.wake_fd)
    assert worker.submit(7)
    assert gate.started.wait(WAIT_S)
    assert not _readable(worker.wake_fd)  # running, no result yet
    assert worker.results() == []
    gate.open.set()
    assert _readable(worker.wake_fd, WAIT_S)
    assert worker.results() == [Done(7, 70, None)]
    assert not _readable(worker.wake_fd)
    # A result that arrives after a collection wakes the loop again.
    assert worker.submit(8)
    assert _readable(worker.wake_fd, WAIT_S)
    assert worker.results() == [Done(8, 80, None)]


def test_4_at_most_capacity_jobs_in_hand_and_one_more_is_refused_at_once(gate: _Gate) -> None:
    worker: Worker[int, int] = Worker(gate, "bounded", capacity=2)
    try:
        assert worker.submit(1) and worker.submit(2)
        assert not worker.submit(3)  # refused without waiting, though the jobs are blocked
        assert worker.in_hand == 2
        gate.open.set()
        assert _readable(worker.wake_fd, WAIT_S)
        assert [worker.wait().value, worker.wait().value] == [10, 20]
        assert worker.in_hand == 0
        assert worker.submit(3)
        assert [d.value for d in _collect(worker, 1)] == [30]
        assert [job for job, _ in gate.ran] == [1, 2, 3]
    finally:
        gate.open.set()
        worker.stop(WAIT_S)


def test_4_a_result_not_collected_still_holds_its_place(gate: _Gate) -> None:
    gate.open.set()
    worker: Worker[int, int] = Worker(gate, "bounded", capacity=1)
    try:
        assert worker.submit(1)
        assert _readable(worker.wake_fd, WAIT_S)  # done, not collected
        assert not worker.submit(2)
        assert worker.results() == [Done(1, 10, None)]
        assert worker.submit(2)
    finally:
        worker.stop(WAIT_S)


def test_4_wait_without_a_job_in_hand_is_an_error_not_a_hang(worker: Worker[int, int]) -> None:
    with pytest.raises(RuntimeError, match="no job to wait for"):
        worker.wait()


def test_5_stop_finishes_the_jobs_in_hand_returns_their_results_and_takes_no_more(
        worker: Worker[int, int], gate: _Gate) -> None:
    assert worker.submit(1) and worker.submit(2)
    gate.open.set()
    assert worker.stop(WAIT_S) == [Done(1, 10, None), Done(2, 20, None)]
    assert not worker.submit(3)
    assert not any(t.name == "test-worker" for t in threading.enumerate())


def test_5_a_job_still_running_after_the_wait_is_abandoned_with_a_warning(
        gate: _Gate, caplog: pytest.LogCaptureFixture) -> None:
    worker: Worker[int, int] = Worker(gate, "slow-worker", capacity=2)
    assert worker.submit(1)
    assert gate.started.wait(WAIT_S)
    with caplog.at_level(logging.WARNING, logger="seqgen_server.worker"):
        assert worker.stop(0.0) == []
    assert "slow-worker: a job is still running at the stop" in caplog.text
    thread = next(t for t in threading.enumerate() if t.name == "slow-worker")
    gate.open.set()
    thread.join(WAIT_S)  # its wake byte finds the read end closed: the thread ends quietly
    assert not thread.is_alive()


def test_capacity_is_at_least_one(gate: _Gate) -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        Worker(gate, "none", capacity=0)


# ---- the two workers of the server -------------------------------------------------


def test_the_store_writer_writes_one_batch_at_a_time(tmp_path: Path) -> None:
    store = Store.open(tmp_path, 1, 2)
    ticks = iter([10.0, 10.25, 20.0, 20.5])
    writer = StoreWriter(store, clock=lambda: next(ticks))
    try:
        writer.submit({"a": 41, "b": 7})
        with pytest.raises(RuntimeError, match="already in flight"):
            writer.submit({"c": 1})
        assert writer.wait() == WriteResult(True, 2, 0.25)
        writer.submit({"a": 81})
        written: list[WriteResult] = []
        while not written:  # the first wake-up may be the byte of the batch waited for
            assert _readable(writer.wake_fd, WAIT_S)
            written = writer.written()
        assert written == [WriteResult(True, 1, 0.5)]
        assert writer.written() == []
    finally:
        writer.stop()
    assert store.load() == {"a": 81, "b": 7}
    store.close()


def test_a_failed_store_write_is_a_result_not_the_end_of_the_writer(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store.open(tmp_path, 1, 2)
    writer = StoreWriter(store)
    try:
        with sqlite3.connect(tmp_path / DB_NAME) as other:
            other.execute("ALTER TABLE sequences RENAME TO elsewhere")
        writer.submit({"a": 1})
        assert writer.wait().ok is False
        assert "cannot persist" in caplog.text
        with sqlite3.connect(tmp_path / DB_NAME) as other:
            other.execute("ALTER TABLE elsewhere RENAME TO sequences")
        writer.submit({"a": 2})  # the same thread writes again once the store can take it
        assert writer.wait() == WriteResult(True, 1, pytest.approx(0.0, abs=WAIT_S))
    finally:
        writer.stop()
    assert store.load() == {"a": 2}
    store.close()


def test_control_tasks_answer_in_order_and_refuse_past_their_capacity() -> None:
    release = threading.Event()
    tasks = Tasks(capacity=1)

    def fence() -> bool:
        assert release.wait(WAIT_S)
        return True

    def finish(result: Any, error: BaseException | None) -> FenceState:
        assert error is None
        return FenceState(fenced=result)

    try:
        assert tasks.submit([b"first"], Job(fence, finish)) is None
        refused = tasks.submit([b"second"], Job(fence, finish))
        assert isinstance(refused, ControlError)
        assert refused.code == ControlCode.INTERNAL
        assert "busy: 1 slow control requests" in refused.message
        release.set()
        assert _readable(tasks.wake_fd, WAIT_S)
        assert tasks.done() == [([b"first"], FenceState(fenced=True))]
        assert tasks.submit([b"third"], Job(lambda: 1 // 0, lambda _, e: ControlError(
            code=ControlCode.INTERNAL, message=type(e).__name__))) is None
    finally:
        replies = tasks.stop()
    assert replies == [([b"third"], ControlError(code=ControlCode.INTERNAL,
                                                 message="ZeroDivisionError"))]
