"""Slow control work in a thread of its own, so that the serving loop never waits for it.

A fence written to the store (an fsync), a snapshot of the whole store, a chunk
read from it: each is submitted as ``work`` (run in the worker thread, one job
at a time, in order) and ``finish`` (run later on the serving thread with the
work's result or exception, returns the control reply). The serving loop polls
``wake_fd`` next to its sockets and calls ``done`` for the replies that are
ready. The thread, its queues and its pipe are a ``Worker``
(seqgen_server.worker, where their invariants are stated); at most MAX_TASKS
jobs are in hand, and ``submit`` answers one more at once with an ``INTERNAL``
error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

from seqgen_common.control import ControlError, ControlReply
from seqgen_common.errors import ControlCode
from seqgen_server.worker import Done, Worker

__all__ = ["MAX_TASKS", "Job", "Tasks"]

STOP_WAIT_S: Final = 30.0
"""At a stop, how long the job in progress may still take."""
MAX_TASKS: Final = 64
"""Slow control jobs in hand at once (queued, running or with a reply to send); past it
the request is answered INTERNAL at once."""


class Job(NamedTuple):
    work: Callable[[], Any]
    """Runs in the worker thread."""
    finish: Callable[[Any, BaseException | None], ControlReply]
    """Runs on the serving thread with the work's result (or its exception): the reply."""


_Item = tuple[list[bytes], Job]
"""A request's envelope and its job."""


def _work(item: _Item) -> Any:
    return item[1].work()


class Tasks:
    def __init__(self, capacity: int = MAX_TASKS) -> None:
        self._worker: Worker[_Item, Any] = Worker(_work, "control-tasks", capacity)
        self.wake_fd = self._worker.wake_fd

    def submit(self, envelope: list[bytes], job: Job) -> ControlError | None:
        """Queue ``job``: None, or the reply to send now when ``capacity`` jobs are in hand."""
        if self._worker.submit((envelope, job)):
            return None
        return ControlError(code=ControlCode.INTERNAL,
                            message=f"busy: {self._worker.capacity} slow control requests "
                            "(fence, snapshot, resize) are in hand; try again")

    def done(self) -> list[tuple[list[bytes], ControlReply]]:
        """The replies of finished jobs (their ``finish`` runs here, on the caller's thread)."""
        return [_reply(done) for done in self._worker.results()]

    def stop(self) -> list[tuple[list[bytes], ControlReply]]:
        """Finish the queued jobs (for at most STOP_WAIT_S), end the thread; their replies."""
        return [_reply(done) for done in self._worker.stop(STOP_WAIT_S)]


def _reply(done: Done[_Item, Any]) -> tuple[list[bytes], ControlReply]:
    envelope, job = done.job
    return envelope, job.finish(done.value, done.error)
