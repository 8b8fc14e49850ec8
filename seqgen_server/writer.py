"""The store writer: batches of marks written on a worker thread while the server serves.

The server hands it one batch at a time (``submit``: the ledger keeps at most one
in flight) and learns of the outcomes from ``written`` when ``wake_fd``, which it
polls next to its sockets, is readable. The thread, its queues and its pipe are a
``Worker`` (seqgen_server.worker, where their invariants are stated).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from seqgen_common.errors import StoreError
from seqgen_server.store import Store
from seqgen_server.worker import Done, Worker

__all__ = ["StoreWriter", "WriteResult"]

log = logging.getLogger(__name__)

_Batch = list[tuple[str, int]]


class WriteResult(NamedTuple):
    ok: bool
    names: int
    seconds: float


class StoreWriter:
    def __init__(self, store: Store, clock: Callable[[], float] = time.perf_counter) -> None:
        self._store = store
        self._clock = clock
        self._worker: Worker[_Batch, WriteResult] = Worker(self._write, "store-writer", capacity=1)
        self.wake_fd = self._worker.wake_fd

    def submit(self, marks: dict[str, int]) -> None:
        """Write ``marks`` in the thread; one batch at a time (RuntimeError for a second)."""
        if not self._worker.submit(list(marks.items())):
            raise RuntimeError("a store write is already in flight")

    def written(self) -> list[WriteResult]:
        """The outcomes of the batches written since the last call (never waits)."""
        return [_outcome(done) for done in self._worker.results()]

    def wait(self) -> WriteResult:
        """The outcome of the batch in flight, waiting for it."""
        return _outcome(self._worker.wait())

    def stop(self) -> None:
        """Finish the batch in flight, then end the thread."""
        self._worker.stop()

    def _write(self, batch: _Batch) -> WriteResult:
        start = self._clock()
        try:
            self._store.write_marks(batch)
        except StoreError as exc:
            log.error("%s", exc)
            return WriteResult(False, len(batch), self._clock() - start)
        return WriteResult(True, len(batch), self._clock() - start)


def _outcome(done: Done[_Batch, WriteResult]) -> WriteResult:
    if done.value is not None:
        return done.value
    log.error("unexpected error writing %d mark(s): %r", len(done.job), done.error)
    return WriteResult(False, len(done.job), 0.0)
