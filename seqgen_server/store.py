"""The durable store: one SQLite database in WAL mode with synchronous=FULL.

The store keeps, per name, the durable high-water mark: a number at or above
every number the server has issued or may issue without writing again. A
commit returns only after SQLite has fsync'd the write-ahead log, so a mark
written is a mark kept, through kill -9 and power loss.

Layout of ``--data DIR``::

    DIR/lock         flock'd while a server runs (a second server refuses)
    DIR/seqgen.db    tables ``meta`` (format, instance, instances, clean,
                     oldest_version, fenced once a fence was set, and after a
                     resize resize_to / resized_from / retired) and
                     ``sequences`` (name, mark); plus SQLite's -wal and -shm
    DIR/backup-*.db  a snapshot being streamed by the admin (seqgen_server.backup)

Creating the store is atomic: it is built as ``seqgen.db.new`` (rollback
journal, fsync'd) and renamed into place, so a crash during the very first
start leaves either no store or a complete one. A database that exists but
lacks its meta, cannot be read, belongs to another instance, or may only be
opened by a newer seqgen (its ``oldest_version``, seqgen_server.versions)
stops the server with a StartupError: never a silent reset. A store is created
only when the instance and the instance count are both given (ConfigError
otherwise); an existing store needs neither: they are read from it.

The write-ahead log is bounded: it is checkpointed every WAL_PAGES pages and
cut back to WAL_LIMIT_BYTES, and after a failed write (a full disk) the next
connection checkpoints and truncates it first, so a full disk costs a bounded
amount of space (about half a megabyte) and the server recovers once a
megabyte is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from seqgen_common import __version__
from seqgen_common.errors import ConfigError, StartupError, StoreError
from seqgen_common.prefix import name_range
from seqgen_server.versions import FIRST_VERSION, FORMATS, OLDEST_VERSION_KEY, newer, store_meta

__all__ = ["DB_NAME", "FORMATS", "LOCK_NAME", "Store"]

log = logging.getLogger(__name__)

DB_NAME: Final = "seqgen.db"
NEW_DB_NAME: Final = "seqgen.db.new"
LOCK_NAME: Final = "lock"
WAL_PAGES: Final = 100
"""Checkpoint the write-ahead log once it holds this many pages (400 KiB of 4 KiB pages)."""
WAL_LIMIT_BYTES: Final = 512 * 1024
"""What a checkpointed write-ahead log is cut back to."""

_SCHEMA: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE sequences (name TEXT PRIMARY KEY, mark INTEGER NOT NULL) WITHOUT ROWID",
)
_UPSERT: Final = (
    "INSERT INTO sequences (name, mark) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET mark = excluded.mark"
)
_META_UPSERT: Final = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=2000")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    return conn


def _fsync(path: Path) -> None:
    """fsync a file or a directory (a directory: so that a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _create(data_dir: Path, instance: int, instances: int) -> None:
    """Build a complete store as NEW_DB_NAME, then rename it to DB_NAME (atomic)."""
    new = data_dir / NEW_DB_NAME
    _unlink(new, new.with_name(NEW_DB_NAME + "-journal"))
    conn = sqlite3.connect(new, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [*store_meta(fenced=False), ("instance", str(instance)), ("instances", str(instances)),
             ("clean", "1")],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    _fsync(new)
    os.rename(new, data_dir / DB_NAME)
    _fsync(data_dir)


def _need_instance_flags(data_dir: Path, instance: int | None,
                         instances: int | None) -> tuple[int, int]:
    """Both numbers, given for a new store; ConfigError when one is missing."""
    if instance is None or instances is None:
        raise ConfigError(
            f"{data_dir} holds no store yet, and a new store records its instance for ever: "
            "start it once with --instance K --instances N (this server's number and the "
            "number of servers, e.g. --instance 1 --instances 2); later starts read them from it")
    return instance, instances


def _check_layout(path: Path, meta: dict[str, str], instance: int, instances: int) -> None:
    """StartupError unless the store may serve as ``instance`` of ``instances``.

    The store's own layout is what the server uses. While a resize is unfinished
    (``resize_to``) the counts before and after it are accepted too: the server is
    fenced and the repeated ``POST /resize`` finishes it. Once it is finished the old
    count is refused, saying what happened.
    """
    if (meta["instance"], meta["instances"]) == (str(instance), str(instances)):
        return
    counts = {meta["instances"], meta.get("resize_to"), meta.get("resized_from")}
    if meta.get("resize_to") is not None and meta["instance"] == str(instance) \
            and str(instances) in counts:
        log.warning("store %s is in the middle of a resize to %s servers: starting fenced as "
                    "instance %s of %s (its layout), not of %d", path, meta["resize_to"],
                    meta["instance"], meta["instances"], instances)
        return
    if meta.get("resized_from") == str(instances) and meta["instance"] == str(instance):
        raise StartupError(
            f"store {path} was resized from {instances} to {meta['instances']} servers "
            f"(POST /resize); this server is instance {meta['instance']} of "
            f"{meta['instances']} now. Start it with --instances {meta['instances']} "
            "(the old count would repeat numbers)"
        )
    raise StartupError(
        f"data directory {path.parent} belongs to instance {meta['instance']} of "
        f"{meta['instances']}, but this server was started as instance {instance} of "
        f"{instances}; changing them would repeat numbers. Start it with "
        f"--instance {meta['instance']} --instances {meta['instances']} (to change the number "
        "of servers, use POST /resize: docs/operations.md)"
    )


class Store:
    """The state of one server in its data directory; not thread-safe by itself.

    The server's writer thread owns the write connection; ``page`` uses a
    separate read connection (WAL lets it read while a write is in progress).
    """

    def __init__(self, data_dir: Path, lock_fd: int, conn: sqlite3.Connection) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self._lock_fd = lock_fd
        self._conn: sqlite3.Connection | None = conn
        self._reader: sqlite3.Connection | None = None
        self._side: sqlite3.Connection | None = None
        """For the fence, from one thread at a time (before serving, then the tasks thread)."""
        self.clean_start = True
        self.restored = False
        """The store is a backup from GET /backup, started on for the first time."""
        self.instance = 0
        self.instances = 0
        """This store's place in the cluster, read from its meta (fixed forever)."""
        self.fenced = False
        """The fence recorded in the store (meta ``fenced``)."""
        self.instance = 0
        self.instances = 0
        """The layout recorded in the store (what the server uses)."""
        self.resize_to: int | None = None
        """The count of an unfinished resize (meta ``resize_to``)."""
        self.retired = False
        """A resize retired this server (meta ``retired``)."""

    # ---- opening --------------------------------------------------------------

    @classmethod
    def open(cls, data_dir: Path, instance: int | None, instances: int | None) -> Store:
        """Lock ``data_dir``, create or check the database; raises StartupError.

        ``instance``/``instances`` None: whatever the store says (it must exist then).
        """
        if not (data_dir / DB_NAME).exists():
            _need_instance_flags(data_dir, instance, instances)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StartupError(f"cannot use data directory {data_dir}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock_fd)
            raise StartupError(
                f"data directory {data_dir} is locked by another seqgen-server "
                "(only one server may use a data directory)"
            ) from exc
        try:
            return cls._open_locked(data_dir, lock_fd, instance, instances)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _open_locked(cls, data_dir: Path, lock_fd: int, instance: int | None,
                     instances: int | None) -> Store:
        path = data_dir / DB_NAME
        try:
            if not path.exists():
                instance, instances = _need_instance_flags(data_dir, instance, instances)
                _create(data_dir, instance, instances)
                log.info("created a new store in %s", path)
            else:
                _unlink(data_dir / NEW_DB_NAME)  # a creation that was interrupted earlier
            conn = _connect(path)
            meta = cls._check(conn, path, instance, instances)
        except sqlite3.DatabaseError as exc:
            raise StartupError(
                f"store {path} cannot be read ({exc}); it may be corrupt or truncated. "
                "Restore it from a backup; the server will not start from zero over it"
            ) from exc
        except OSError as exc:
            raise StartupError(f"cannot create or open the store {path}: {exc}") from exc
        store = cls(data_dir, lock_fd, conn)
        store.clean_start = meta.get("clean") == "1"
        store.restored = meta.get("restored") == "1"
        store.fenced = meta.get("fenced") == "1"
        store.instance, store.instances = int(meta["instance"]), int(meta["instances"])
        store.resize_to = int(meta["resize_to"]) if "resize_to" in meta else None
        store.retired = meta.get("retired") == "1"
        store._record_versions(conn, meta)
        return store

    def _record_versions(self, conn: sqlite3.Connection, meta: dict[str, str]) -> None:
        """Give a store of an older version (or one that says too little) its oldest version."""
        wanted = store_meta(fenced=self.fenced)
        if all(meta.get(key) == value for key, value in wanted):
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_META_UPSERT, wanted)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise StartupError(f"cannot record the oldest version in {self.path}: {exc}") from exc
        log.info("store %s: %s", self.path, ", ".join(f"{key} {value}" for key, value in wanted))

    @staticmethod
    def _check(conn: sqlite3.Connection, path: Path, instance: int | None,
               instances: int | None) -> dict[str, str]:
        integrity = conn.execute("PRAGMA quick_check").fetchone()
        if integrity is None or integrity[0] != "ok":
            raise StartupError(f"store {path} failed its integrity check: {integrity}")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "sequences"} <= tables:
            raise StartupError(
                f"store {path} has no seqgen meta data (tables found: {sorted(tables)}); "
                "refusing to start over it. (An empty store is what an interrupted very first "
                "start of seqgen 0.1 left: if that is what happened, nothing was ever issued "
                "from it; delete it and start again.)"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        missing = {"format", "instance", "instances"} - meta.keys()
        if missing:
            raise StartupError(f"store {path} lacks meta data {sorted(missing)}; refusing to start")
        if meta["format"] not in FORMATS:
            raise StartupError(
                f"store {path} has format {meta['format']}, this server reads {sorted(FORMATS)}: "
                "a newer seqgen made it (docs/upgrading.md)"
            )
        oldest = meta.get(OLDEST_VERSION_KEY, FIRST_VERSION)
        try:
            too_new = newer(oldest, __version__)
        except ValueError as exc:
            raise StartupError(f"store {path} has a damaged {OLDEST_VERSION_KEY}: {exc}") from exc
        if too_new:
            raise StartupError(
                f"store {path} may only be opened by seqgen {oldest} or later, and this is "
                f"seqgen-server {__version__}: a newer version used it and wrote what this one "
                f"would misread. Run seqgen {oldest} or later on it (docs/upgrading.md)"
            )
        if instance is not None or instances is not None:  # else: whatever the store says
            _check_layout(path, meta, instance if instance is not None else int(meta["instance"]),
                          instances if instances is not None else int(meta["instances"]))
        return meta

    # ---- reading ----------------------------------------------------------------

    def load(self) -> dict[str, int]:
        """Every name with its durable mark."""
        conn = self._require()
        try:
            return dict(conn.execute("SELECT name, mark FROM sequences"))
        except sqlite3.DatabaseError as exc:
            raise StartupError(f"store {self.path} cannot be read: {exc}") from exc

    def page(self, prefix: str, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` names in order that start with ``prefix`` and sort after ``after``."""
        if self._reader is None:
            self._reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conditions, args = name_range(prefix, after)
        query = f"SELECT name FROM sequences WHERE {conditions} ORDER BY name LIMIT ?"
        try:
            return [row[0] for row in self._reader.execute(query, [*args, limit])]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc

    # ---- writing ----------------------------------------------------------------

    def write_marks(self, marks: Iterable[tuple[str, int]], *, clean: bool | None = None,
                    started: bool = False) -> None:
        """Durably set these marks (and the clean flag) in one transaction; StoreError if not.

        ``started``: a server starts on the store (it is a restored backup no longer).
        """
        try:
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, marks)
                if clean is not None:
                    conn.execute(
                        "UPDATE meta SET value = ? WHERE key = 'clean'", ("1" if clean else "0",)
                    )
                if started:
                    conn.execute("DELETE FROM meta WHERE key = 'restored'")
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except (sqlite3.Error, OSError) as exc:
            # A connection that failed (disk full, I/O error) is reopened next time.
            self._drop_connection()
            raise StoreError(f"cannot persist to {self.path}: {exc}") from exc

    def set_fenced(self, fenced: bool) -> None:
        """Durably record the fence; StoreError if it cannot be persisted.

        Uses a connection of its own (SQLite makes it wait for the writer's
        transaction): call it from one thread at a time.
        """
        self.set_meta(fenced=fenced)

    def set_meta(self, *, fenced: bool, instances: int | None = None,
                 resize_to: int | None = None, end_resize: bool = False,
                 retired: bool = False) -> None:
        """Durably record the fence and, for a resize step, the layout, in one transaction
        (docs/protocol.md, "Changing the number of servers"); StoreError if not. From one
        thread at a time (the side connection, as ``set_fenced``)."""
        rows = [("fenced", "1" if fenced else "0"), *store_meta(fenced=fenced)]
        if resize_to is not None:
            rows.append(("resize_to", str(resize_to)))
        if instances is not None and instances != self.instances:
            rows += [("instances", str(instances)), ("resized_from", str(self.instances))]
        if retired:
            rows.append(("retired", "1"))
        try:
            if self._side is None:
                self._side = _connect(self.path)
            conn = self._side
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_META_UPSERT, rows)
                if end_resize:
                    conn.execute("DELETE FROM meta WHERE key = 'resize_to'")
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        except (sqlite3.Error, OSError) as exc:
            if self._side is not None:
                self._side.close()
                self._side = None
            raise StoreError(f"cannot persist the fence or layout to {self.path}: {exc}") from exc
        self.fenced = fenced
        if resize_to is not None:
            self.resize_to = resize_to
        if instances is not None:
            self.instances = instances
        self.retired = self.retired or retired
        if end_resize:
            self.resize_to = None

    def snapshot(self, target: Path) -> None:
        """A consistent copy of the store as ``target``; StoreError if it cannot be made.

        SQLite's online backup copies every page in one step under one read
        transaction, so the copy is consistent while the writer goes on (WAL).
        The copy is then marked fenced, not clean and restored (a server started
        on it stays fenced until it is recovered, and says it runs on a backup),
        switched to a rollback journal (one self-contained file), fsync'd and
        renamed into place. Each call opens
        connections of its own: call it from one thread at a time.
        """
        tmp = target.with_name(target.name + ".tmp")
        try:
            _unlink(tmp, tmp.with_name(tmp.name + "-journal"))
            source = sqlite3.connect(self.path, isolation_level=None)
            try:
                source.execute("PRAGMA busy_timeout=2000")
                copy = sqlite3.connect(tmp, isolation_level=None)
                try:
                    source.backup(copy)
                    copy.execute("PRAGMA journal_mode=DELETE")
                    copy.execute("PRAGMA synchronous=FULL")
                    copy.execute("BEGIN IMMEDIATE")
                    copy.executemany(_META_UPSERT, [("fenced", "1"), ("clean", "0"), ("restored", "1"),
                                                    *store_meta(fenced=True)])
                    copy.execute("COMMIT")
                finally:
                    copy.close()
            finally:
                source.close()
            _fsync(tmp)
            os.rename(tmp, target)
            _fsync(target.parent)
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                _unlink(tmp)
            raise StoreError(f"cannot make a snapshot of {self.path}: {exc}") from exc

    def _rollback(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("rollback failed", exc_info=True)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = _connect(self.path)
            try:  # after a failed write: give back the log's space before writing again
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                log.debug("close failed", exc_info=True)
            self._conn = None

    def close(self) -> None:
        self._drop_connection()
        if self._side is not None:
            self._side.close()
            self._side = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        os.close(self._lock_fd)
