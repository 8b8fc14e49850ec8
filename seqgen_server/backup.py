"""Snapshots of the store for ``GET /backup``: made, read in chunks and deleted in a thread.

Every method here runs in the control tasks thread (seqgen_server.tasks), one
at a time, never on the serving loop. One snapshot exists at a time, as
``DIR/backup-<id>.db``: a new one replaces the previous one, and leftovers of
an earlier run are deleted at start.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from pathlib import Path
from typing import BinaryIO, Final

from seqgen_common.control import BackupChunk, BackupEnded, BackupReady
from seqgen_common.errors import NotFound, StoreError
from seqgen_server.store import Store

__all__ = ["PATTERN", "Backups"]

log = logging.getLogger(__name__)

PATTERN: Final = "backup-*.db*"
"""The names of snapshot files (and their temporary files) in the data directory."""


class Backups:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._dir = store.data_dir
        self._id: str | None = None
        self._file: BinaryIO | None = None
        for leftover in self._dir.glob(PATTERN):
            with contextlib.suppress(OSError):
                leftover.unlink()
                log.info("deleted the leftover snapshot %s", leftover)

    def _path(self, backup_id: str) -> Path:
        return self._dir / f"backup-{backup_id}.db"

    def start(self) -> BackupReady:
        """Make a new snapshot (replacing the previous one)."""
        if self._id is not None:
            self.end(self._id)
        backup_id = secrets.token_hex(8)
        path = self._path(backup_id)
        self._store.snapshot(path)
        digest = hashlib.sha256()
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            size = path.stat().st_size
            self._file = path.open("rb")
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise StoreError(f"cannot read the snapshot {path}: {exc}") from exc
        self._id = backup_id
        log.info("snapshot %s made: %d bytes", path.name, size)
        return BackupReady(backup_id=backup_id, size=size, sha256=digest.hexdigest())

    def read(self, backup_id: str, offset: int, length: int) -> BackupChunk:
        if backup_id != self._id or self._file is None:
            raise NotFound(f"no snapshot {backup_id!r} (a newer one replaced it, or it was deleted)")
        try:
            self._file.seek(offset)
            data = self._file.read(length)
            eof = self._file.tell() >= self._path(backup_id).stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read the snapshot: {exc}") from exc
        return BackupChunk(backup_id=backup_id, offset=offset, data=data, eof=eof)

    def end(self, backup_id: str) -> BackupEnded:
        if backup_id == self._id:
            if self._file is not None:
                self._file.close()
                self._file = None
            with contextlib.suppress(OSError):
                self._path(backup_id).unlink()
            self._id = None
        return BackupEnded(backup_id=backup_id)

    def close(self) -> None:
        if self._id is not None:
            self.end(self._id)
