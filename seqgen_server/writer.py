"""The store writer: a thread that writes batches of marks while the server serves.

The server hands it one batch at a time (``submit``) and learns of the outcome
through ``results``; after each batch the writer writes a byte to a pipe whose
read end (``wake_fd``) the server polls next to its sockets.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from seqgen_common.errors import StoreError
from seqgen_server.store import Store

__all__ = ["StoreWriter", "WriteResult"]

log = logging.getLogger(__name__)


class WriteResult(NamedTuple):
    ok: bool
    names: int
    seconds: float


class StoreWriter:
    def __init__(self, store: Store, clock: Callable[[], float] = time.perf_counter) -> None:
        self._store = store
        self._clock = clock
        self._jobs: queue.SimpleQueue[list[tuple[str, int]] | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[WriteResult] = queue.SimpleQueue()
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, marks: dict[str, int]) -> None:
        self._jobs.put(list(marks.items()))

    def drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            start = self._clock()
            try:
                self._store.write_marks(job)
            except StoreError as exc:
                log.error("%s", exc)
                result = WriteResult(False, len(job), self._clock() - start)
            else:
                result = WriteResult(True, len(job), self._clock() - start)
            self.results.put(result)
            os.write(self._wake_w, b"x")

    def stop(self) -> None:
        """Finish the batch in flight, then end the thread."""
        self._jobs.put(None)
        self._thread.join()
        os.close(self._wake_w)
        os.close(self.wake_fd)
