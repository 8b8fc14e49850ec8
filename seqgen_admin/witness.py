"""The witness record: what this host saw each peer issue, durable in a small SQLite file.

Per (instance, name): the highest value seen, when it was seen and the name's
observed rate (numbers per second). Values only ever go up here: a peer that
comes back with less (an empty disk, a restored backup) never lowers what was
witnessed, which is the whole point of the record.

Per instance: ``confirmed_at``, the last time the record was known complete
(a poll of that server, unfenced, drained every change), and ``lost_at``, the
first time after that when it was not (the server did not answer, had
restarted, or was fenced). Between the two lies the time in which the server
may have issued numbers that the record lacks: ``stale_s``.

The rate is a peak that fades: each new value gives the sample
(value - previous) / min(seen_at - previous seen_at, span), where span is the
time since the poll that last drained the peer's changes (a name quiet for an
hour that then bursts is measured over the poll interval in which it moved,
not over the quiet hour), and the rate becomes the
larger of the sample and the previous rate x 60 / (60 + seconds between them).
Changes that are not issues (a resync, a floor raised, a fenced server) update
the value without a sample, and so does a jump faster than any server issues
(``MAX_RATE_PER_S``: a catch-up to a ``last`` far ahead, not a rate). A rate is
read faded to a given time (``page(at=...)``: the loss of the instance, or now),
so a peak fades even while no new value arrives.

``record`` also answers the names whose new value is *below* the record: a
server that went backwards (a restored backup, an unfenced empty store) and may
issue those numbers again.

Every method takes a lock and may block on the disk: the admin calls them
from worker threads. Commits are fsync'd (WAL, synchronous=FULL).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from seqgen_admin.margin import MAX_RATE_PER_S
from seqgen_common.errors import StartupError, StoreError
from seqgen_common.prefix import name_range

__all__ = ["FADE_S", "InstanceState", "Seen", "WitnessItem", "WitnessStore", "faded"]

FORMAT: Final = "1"
FADE_S: Final = 60.0
"""The time scale on which a rate fades (see the module doc)."""

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS witnessed (instance INTEGER NOT NULL, name TEXT NOT NULL, "
    "value INTEGER NOT NULL, seen_at REAL NOT NULL, rate REAL NOT NULL, "
    "PRIMARY KEY (instance, name)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS instances (instance INTEGER PRIMARY KEY, confirmed_at REAL, "
    "lost_at REAL)",
)
# All SET expressions read the row as it was, so ``witnessed.value`` is the previous value.
_RECORD: Final = f"""
INSERT INTO witnessed (instance, name, value, seen_at, rate) VALUES (?1, ?2, ?3, ?4, 0.0)
ON CONFLICT (instance, name) DO UPDATE SET
    rate = CASE WHEN ?5 AND excluded.seen_at > witnessed.seen_at
            AND excluded.value - witnessed.value
                <= {MAX_RATE_PER_S} * min(excluded.seen_at - witnessed.seen_at, ?6)
        THEN max((excluded.value - witnessed.value) / min(excluded.seen_at - witnessed.seen_at, ?6),
                 witnessed.rate * {FADE_S} / ({FADE_S} + excluded.seen_at - witnessed.seen_at))
        ELSE witnessed.rate END,
    value = excluded.value,
    seen_at = excluded.seen_at
WHERE excluded.value > witnessed.value
"""
_CONFIRM: Final = (
    "INSERT INTO instances (instance, confirmed_at, lost_at) VALUES (?, ?, NULL) "
    "ON CONFLICT (instance) DO UPDATE SET "
    "confirmed_at = max(coalesce(confirmed_at, 0), excluded.confirmed_at), lost_at = NULL"
)
_LOSE: Final = (
    "INSERT INTO instances (instance, confirmed_at, lost_at) VALUES (?, NULL, ?) "
    "ON CONFLICT (instance) DO UPDATE SET lost_at = coalesce(lost_at, excluded.lost_at)"
)


_MIN_SPAN_S: Final = 0.001
_NO_SPAN_S: Final = 1e18
"""The span of a change when unknown: the time since the name's last value counts."""
_BEHIND_BATCH: Final = 500
"""Names per query when looking for values below the record."""


def faded(rate: float, seen_at: float, at: float) -> float:
    """``rate`` (a peak seen at ``seen_at``) as it has faded by ``at``."""
    return rate * FADE_S / (FADE_S + max(at - seen_at, 0.0))


class Seen(NamedTuple):
    """One change to record: ``name`` was at ``value``; ``sample``: count it as a rate."""

    name: str
    value: int
    sample: bool


@dataclass(frozen=True, slots=True)
class WitnessItem:
    name: str
    value: int
    seen_at: float
    """Unix time when this value was first seen."""
    rate: float
    """Numbers per second (a fading peak)."""


@dataclass(frozen=True, slots=True)
class InstanceState:
    confirmed_at: float | None
    """Unix time when the record of this instance was last known complete (None: never)."""
    lost_at: float | None
    """Unix time when it was first not, after that (None: it still is)."""

    def stale_s(self, now: float) -> float | None:
        """How long the instance may have issued numbers the record lacks (None: never confirmed)."""
        if self.confirmed_at is None:
            return None
        end = self.lost_at if self.lost_at is not None else now
        return max(end - self.confirmed_at, 0.0)


class WitnessStore:
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> WitnessStore:
        """Open (or create) the record; StartupError when it cannot be used."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(f"cannot open the witness record {path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=2000")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?)", (FORMAT,))
            conn.execute("COMMIT")
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise StartupError(f"the witness record {path} cannot be used ({exc}); move it away "
                               "to start a new one (this host then witnesses from now on)") from exc
        if row is None or row[0] != FORMAT:
            conn.close()
            raise StartupError(f"the witness record {path} has format {row and row[0]}, "
                               f"this admin reads {FORMAT}")
        return cls(path, conn)

    def _write(self, work: str, statements: Iterable[tuple[str, Iterable[tuple[object, ...]]]],
               behind: tuple[int, list[Seen]] | None = None) -> dict[str, int]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    below = self._below(*behind) if behind is not None else {}
                    for sql, rows in statements:
                        conn.executemany(sql, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot {work} in the witness record {self.path}: {exc}") from exc
        return below

    def _below(self, instance: int, seen: list[Seen]) -> dict[str, int]:
        """The names of ``seen`` whose value is below the record (lock held)."""
        values = {s.name: s.value for s in seen}
        below: dict[str, int] = {}
        names = list(values)
        for start in range(0, len(names), _BEHIND_BATCH):
            batch = names[start:start + _BEHIND_BATCH]
            rows = self._conn.execute(
                "SELECT name, value FROM witnessed WHERE instance = ? AND name IN "
                f"({', '.join('?' * len(batch))})", [instance, *batch]).fetchall()
            below.update((name, value) for name, value in rows if values[name] < value)
        return below

    def record(self, instance: int, seen: Iterable[Seen], now: float, *,
               confirmed_at: float | None = None, lost_at: float | None = None,
               span_s: float | None = None) -> dict[str, int]:
        """Record values seen at ``now`` (values only go up), and the instance's state, in
        one durable transaction. ``span_s``: the values moved within that many seconds
        before ``now`` (since the previous poll drained every change), so a rate is measured
        over at most that. Answers the names seen below the record: name -> the recorded
        value."""
        seen = list(seen)
        span = max(span_s, _MIN_SPAN_S) if span_s is not None else _NO_SPAN_S
        statements: list[tuple[str, Iterable[tuple[object, ...]]]] = [
            (_RECORD, [(instance, s.name, s.value, now, s.sample, span) for s in seen])]
        if lost_at is not None:
            statements.append((_LOSE, [(instance, lost_at)]))
        elif confirmed_at is not None:
            statements.append((_CONFIRM, [(instance, confirmed_at)]))
        return self._write("record values", statements, behind=(instance, seen))

    def lost(self, instance: int, at: float) -> None:
        """The record of ``instance`` is not known complete from ``at`` on (unless it already was not)."""
        self._write("record a loss", [(_LOSE, [(instance, at)])])

    def page(self, instance: int, prefix: str, cursor: str | None, limit: int,
             at: float | None = None) -> tuple[list[WitnessItem], str | None]:
        """A page of the record of ``instance`` in name order, and the cursor of the next one;
        rates faded to ``at`` (None: as last sampled)."""
        conditions, names = name_range(prefix, cursor)
        query = (f"SELECT name, value, seen_at, rate FROM witnessed WHERE instance = ? AND "
                 f"{conditions} ORDER BY name LIMIT ?")
        args: list[object] = [instance, *names, limit + 1]
        with self._lock:
            try:
                rows = self._conn.execute(query, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the witness record {self.path}: {exc}") from exc
        items = [WitnessItem(name, value, seen_at,
                             rate if at is None else faded(rate, seen_at, at))
                 for name, value, seen_at, rate in rows[:limit]]
        return items, items[-1].name if len(rows) > limit else None

    def count(self, instance: int) -> int:
        """How many names of ``instance`` the record holds."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT count(*) FROM witnessed WHERE instance = ?",
                                         (instance,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the witness record {self.path}: {exc}") from exc
        return int(row[0])

    def state(self, instance: int) -> InstanceState:
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT confirmed_at, lost_at FROM instances WHERE instance = ?", (instance,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the witness record {self.path}: {exc}") from exc
        return InstanceState(*row) if row is not None else InstanceState(None, None)

    def states(self) -> dict[int, InstanceState]:
        """Every instance with a record: its state."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT instance, confirmed_at, lost_at FROM instances ORDER BY instance"
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the witness record {self.path}: {exc}") from exc
        return {instance: InstanceState(confirmed, lost) for instance, confirmed, lost in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
