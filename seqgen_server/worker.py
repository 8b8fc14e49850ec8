"""One worker thread: slow jobs run off the serving loop, their results come back to it.

The server has two: the store writer (seqgen_server.writer: batches of marks)
and the control tasks (seqgen_server.tasks: fences, snapshots, resizes). Each is
a ``Worker``: a thread, a queue of jobs, a queue of results and a pipe whose read
end (``wake_fd``) the serving loop polls next to its sockets.

Invariants (tests/unit/test_worker.py has a test for each):

1. Jobs run one at a time, in the order submitted, on the worker thread and
   nowhere else; ``run`` is the only code that runs there.
2. Each job accepted gives exactly one ``Done``, with ``run``'s value or the
   exception it raised (an exception ends the job, never the thread), and the
   results come out in the order the jobs went in.
3. A result is queued before its wake byte is written, and ``results`` empties
   the pipe before the queue: a result put after that empties the queue leaves a
   byte behind, so whenever a result is waiting, ``wake_fd`` is readable.
4. Bounded: at most ``capacity`` jobs are submitted and not yet collected
   (queued, running, or done and waiting in ``results``); ``submit`` beyond it
   refuses the job (False) at once, for the caller to answer, and never blocks.
   So the pipe never holds more than ``capacity`` bytes and the worker never
   blocks writing to it.
5. ``stop`` takes no job after it: the jobs already accepted are finished (for
   at most ``wait_s``), the thread ends, and the results not collected are
   returned. A job still running after ``wait_s`` is abandoned: its result is
   dropped, and its pipe end is left open for it rather than closed under it.

``submit``, ``results``, ``wait`` and ``stop`` belong to one thread, the one that
serves (the count of jobs in hand is that thread's alone).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Done", "Worker"]

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


class Done(NamedTuple, Generic[J, R]):
    """A finished job: what ``run`` returned, or the exception it raised."""

    job: J
    value: R | None
    error: Exception | None


class Worker(Generic[J, R]):
    def __init__(self, run: Callable[[J], R], name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a worker's capacity is at least 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self._run_job = run
        self._in_hand = 0
        """Jobs submitted whose results were not collected yet (the serving thread's count)."""
        self._stopped = False
        self._jobs: queue.SimpleQueue[tuple[J] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Done[J, R]] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def in_hand(self) -> int:
        """Jobs submitted and not collected: queued, running, or done and not yet taken."""
        return self._in_hand

    def submit(self, job: J) -> bool:
        """Queue ``job``; False (and nothing queued) when ``capacity`` jobs are in hand or after stop."""
        if self._in_hand >= self.capacity or self._stopped:
            return False
        self._in_hand += 1
        self._jobs.put((job,))
        return True

    def results(self) -> list[Done[J, R]]:
        """The results of the jobs finished since the last call, in order (never waits)."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        finished: list[Done[J, R]] = []
        while True:
            try:
                finished.append(self._done.get_nowait())
            except queue.Empty:
                break
        self._in_hand -= len(finished)
        return finished

    def wait(self) -> Done[J, R]:
        """The next result, waiting for it (its wake byte is left for ``results`` to drain)."""
        if not self._in_hand:
            raise RuntimeError(f"{self.name}: no job to wait for")
        done = self._done.get()
        self._in_hand -= 1
        return done

    def stop(self, wait_s: float | None = None) -> list[Done[J, R]]:
        """Take no more jobs, finish those in hand (for at most ``wait_s``), end the thread;
        the results not collected yet."""
        self._stopped = True
        self._jobs.put(None)
        self._thread.join(wait_s)
        abandoned = self._thread.is_alive()
        if abandoned:
            log.warning("%s: a job is still running at the stop; its result is dropped", self.name)
        finished = self.results()
        if not abandoned:
            os.close(self._wake_w)
        os.close(self.wake_fd)
        return finished

    def _loop(self) -> None:
        run, done, wake_w = self._run_job, self._done, self._wake_w
        while (item := self._jobs.get()) is not None:
            job = item[0]
            try:
                finished: Done[J, R] = Done(job, run(job), None)
            except Exception as exc:  # the job's outcome: for its owner to report
                finished = Done(job, None, exc)
            done.put(finished)
            try:
                os.write(wake_w, b"x")
            except OSError:  # abandoned at a stop: the read end is closed
                return
