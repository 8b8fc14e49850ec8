"""``GET /backup``: the server's snapshot, streamed from its control socket in chunks.

The server makes the snapshot in a thread (SQLite's online backup) and sends
it in chunks of at most 32 KiB; the admin passes them on as they come and asks
the server to delete the snapshot at the end. One stream at a time: a
``Lease`` is held while a stream makes progress, and lapses by itself when a
stream stops without ending (a client that went away before the first byte).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

from seqgen_admin.control_client import ControlClient
from seqgen_common.control import MAX_BACKUP_CHUNK, BackupReady
from seqgen_common.errors import InternalError, SeqgenError

__all__ = ["LEASE_S", "START_TIMEOUT_S", "Lease", "stream"]

log = logging.getLogger(__name__)

START_TIMEOUT_S: Final = 600.0
"""How long the server may take to make a snapshot (a large store takes seconds)."""
LEASE_S: Final = 30.0
"""A stream that makes no progress for this long no longer blocks the next one."""


class Lease:
    """Who streams a snapshot now; lapses after ``LEASE_S`` without progress."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._holder: object | None = None
        self._touched = 0.0

    def take(self, holder: object) -> bool:
        """Take the lease for ``holder``; False while another holder makes progress."""
        if self._holder is not None and self._clock() - self._touched < LEASE_S:
            return False
        self._holder = holder
        self._touched = self._clock()
        return True

    def touch(self, holder: object) -> None:
        if self._holder is holder:
            self._touched = self._clock()

    def release(self, holder: object) -> None:
        if self._holder is holder:
            self._holder = None


async def stream(control: ControlClient, ready: BackupReady, lease: Lease, holder: object,
                 ) -> AsyncIterator[bytes]:
    """The snapshot's bytes; the snapshot is deleted on the server at the end (or abort)."""
    offset = 0
    try:
        while offset < ready.size:
            chunk = await control.read_backup(ready.backup_id, offset, MAX_BACKUP_CHUNK)
            if not chunk.data:
                raise InternalError(f"the snapshot ended at {offset} of {ready.size} bytes")
            yield chunk.data
            offset += len(chunk.data)
            lease.touch(holder)
        log.info("snapshot %s streamed: %d bytes", ready.backup_id, offset)
    finally:
        lease.release(holder)
        with contextlib.suppress(SeqgenError, asyncio.CancelledError):
            await control.end_backup(ready.backup_id)
