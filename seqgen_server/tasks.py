"""Slow control work in a thread of its own, so that the serving loop never waits for it.

A fence written to the store (an fsync), a snapshot of the whole store, a chunk
read from it: each is submitted as ``work`` (run in the worker thread, one job
at a time, in order) and ``finish`` (run later on the serving thread with the
work's result or exception, returns the control reply). The worker writes a byte
to a pipe whose read end (``wake_fd``) the serving loop polls next to its
sockets, then calls ``done`` to get the replies that are ready.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from seqgen_common.control import ControlReply

__all__ = ["Job", "Tasks"]

log = logging.getLogger(__name__)

STOP_WAIT_S: Final = 30.0
"""At a stop, how long the job in progress may still take."""


class Job(NamedTuple):
    work: Callable[[], Any]
    """Runs in the worker thread."""
    finish: Callable[[Any, BaseException | None], ControlReply]
    """Runs on the serving thread with the work's result (or its exception): the reply."""


class _Done(NamedTuple):
    envelope: list[bytes]
    job: Job
    result: Any
    error: BaseException | None


class Tasks:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[list[bytes], Job] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        self._thread = threading.Thread(target=self._run, name="control-tasks", daemon=True)
        self._thread.start()

    def submit(self, envelope: list[bytes], job: Job) -> None:
        self._jobs.put((envelope, job))

    def done(self) -> list[tuple[list[bytes], ControlReply]]:
        """The replies of finished jobs (their ``finish`` runs here, on the caller's thread)."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        replies: list[tuple[list[bytes], ControlReply]] = []
        while True:
            try:
                done = self._done.get_nowait()
            except queue.Empty:
                return replies
            replies.append((done.envelope, done.job.finish(done.result, done.error)))

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            envelope, job = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = job.work()
            except Exception as exc:  # reported to the caller by finish()
                error = exc
            self._done.put(_Done(envelope, job, result, error))
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # the server stopped without waiting for this job
                return

    def stop(self) -> list[tuple[list[bytes], ControlReply]]:
        """Finish the queued jobs (for at most STOP_WAIT_S), end the thread; their replies."""
        self._jobs.put(None)
        self._thread.join(STOP_WAIT_S)
        if self._thread.is_alive():
            log.warning("a control task is still running at the stop; its reply is dropped")
        replies = self.done()
        os.close(self._wake_w)
        os.close(self.wake_fd)
        return replies
