"""Answers to control requests (docs/protocol.md, "Control"); the server loop does the I/O.

``ControlHandler.handle`` turns one decoded request into a reply, into a
``Deferred`` reply for floors that must be durable before they are answered,
or into a ``Job`` for slow work (the fence written to the store, snapshots)
that the server runs in its tasks thread (seqgen_server.tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, cast

from seqgen_common import __version__
from seqgen_common.control import (
    AbortResize,
    BeginResize,
    Change,
    ChangePage,
    CommitResize,
    ControlError,
    ControlReply,
    ControlRequest,
    EndBackup,
    EndResize,
    Fence,
    FenceState,
    FloorsRaised,
    GetSequence,
    GetStatus,
    Layout,
    ListSequences,
    Ping,
    Pong,
    RaiseFloor,
    RaiseFloors,
    ReadBackup,
    SequenceInfo,
    SequencePage,
    StartBackup,
    Status,
    Unfence,
    WatchChanges,
)
from seqgen_common.errors import Conflict, ControlCode, NotFound, SeqgenError
from seqgen_server.backup import Backups
from seqgen_server.changes import ChangeFeed
from seqgen_server.ledger import Ledger
from seqgen_server.stats import Counters
from seqgen_server.store import Store
from seqgen_server.tasks import Job

__all__ = ["ControlHandler", "Deferred", "Fencing"]


class Deferred(NamedTuple):
    """Reply once ``value`` is durable for ``name`` (INTERNAL if the store fails): with
    ``answer``, or ``info(name)`` when it is None."""

    name: str
    value: int
    answer: ControlReply | None = None


class Fencing(NamedTuple):
    """How the handler reads, sets and persists the server's fence."""

    get: Callable[[], bool]
    set: Callable[[bool], None]
    """Sets the fence in force (on the serving thread)."""
    persist: Callable[[bool], None]
    """Makes it durable (in the tasks thread); raises StoreError."""
    beginning: Callable[[int | None], None]
    """A resize to that many servers is beginning (None: its begin step ended): until the
    store records ``resize_to``, the public socket holds requests as it does afterwards."""


def _failed(exc: BaseException) -> ControlError:
    if isinstance(exc, NotFound):
        return ControlError(code=ControlCode.NOT_FOUND, message=exc.message)
    if isinstance(exc, Conflict):
        return ControlError(code=ControlCode.CONFLICT, message=exc.message)
    message = exc.message if isinstance(exc, SeqgenError) else "unexpected error; see the server log"
    return ControlError(code=ControlCode.INTERNAL, message=message)


def _reply_or_error(result: object, error: BaseException | None) -> ControlReply:
    if error is not None:
        return _failed(error)
    return cast("ControlReply", result)


class ControlHandler:
    def __init__(
        self,
        *,
        instance: int,
        instances: int,
        drift: int,
        reserve: int,
        data_dir: Path,
        ledger: Ledger,
        counters: Counters,
        page_names: Callable[[str, str | None, int], list[str]],
        clock: Callable[[], float],
        clean_start: bool,
        restored: bool,
        store_ok: Callable[[], bool],
        fencing: Fencing,
        feed: ChangeFeed,
        backups: Backups,
        store: Store | None = None,
    ) -> None:
        self._instance = instance
        self._instances = instances
        self._drift = drift
        self._reserve = reserve
        self._data_dir = data_dir
        self._ledger = ledger
        self._counters = counters
        self._page_names = page_names
        self._clock = clock
        self._started = clock()
        self._clean_start = clean_start
        self._restored = restored
        self._store_ok = store_ok
        self._fencing = fencing
        self._fence_changes = 0
        """Fence and Unfence requests so far: an Unfence releases only if none came after it."""
        self._feed = feed
        self._backups = backups
        self._store = store
        """The layout and resize state (docs/protocol.md, "Changing the number of servers")."""

    def close(self) -> None:
        """Delete a snapshot that is still there (after the tasks thread stopped)."""
        self._backups.close()

    def info(self, name: str) -> SequenceInfo:
        ledger = self._ledger
        mark = ledger.mark.get(name, 0)
        return SequenceInfo(name=name, current=ledger.cur.get(name, mark), durable=mark)

    def handle(self, request: ControlRequest) -> ControlReply | Deferred | Job:
        self._counters.control_requests += 1
        match request:
            case Ping():
                return Pong(version=__version__, instance=self._instance, instances=self._instances)
            case GetStatus():
                self._counters.highest_mark = self._ledger.highest_mark
                return Status(
                    version=__version__,
                    instance=self._instance,
                    instances=self._instances,
                    drift=self._drift,
                    reserve=self._reserve,
                    uptime_s=round(self._clock() - self._started, 3),
                    data_dir=str(self._data_dir),
                    sequences=len(self._ledger),
                    clean_start=self._clean_start,
                    restored=self._restored,
                    store_ok=self._store_ok(),
                    counters=self._counters,
                    fenced=self._fencing.get(),
                    resize_to=self._store.resize_to if self._store else None,
                    retired=self._store.retired if self._store else False,
                )
            case ListSequences(prefix=prefix, cursor=cursor, limit=limit):
                try:
                    names = self._page_names(prefix, cursor, limit + 1)
                except SeqgenError as exc:
                    return ControlError(code=ControlCode.INTERNAL, message=exc.message)
                more = len(names) > limit
                names = names[:limit]
                return SequencePage(
                    items=[self.info(name) for name in names],
                    next_cursor=names[-1] if more else None,
                )
            case GetSequence(name=name):
                if name not in self._ledger.cur:
                    return ControlError(code=ControlCode.NOT_FOUND,
                                        message=f"no sequence named {name!r}")
                return self.info(name)
            case RaiseFloor(name=name, value=value):
                try:
                    self._ledger.raise_floor(name, value)
                except Conflict as exc:
                    return ControlError(code=ControlCode.CONFLICT, message=exc.message)
                except SeqgenError as exc:
                    return ControlError(code=ControlCode.INTERNAL, message=exc.message)
                self._feed.note_floors((name,))
                return Deferred(name, value)
            case RaiseFloors(floors=floors):
                return self._raise_floors([(f.name, f.value) for f in floors])
            case Fence():
                return self._fence()
            case Unfence():
                return self._unfence()
            case WatchChanges(consumer=consumer, epoch=epoch, ack=ack, limit=limit):
                return self._changes(consumer, epoch, ack, limit)
            case StartBackup():
                return Job(self._backups.start, _reply_or_error)
            case ReadBackup(backup_id=backup_id, offset=offset, length=length):
                return Job(lambda: self._backups.read(backup_id, offset, length), _reply_or_error)
            case EndBackup(backup_id=backup_id):
                return Job(lambda: self._backups.end(backup_id), _reply_or_error)
            case BeginResize(instances=instances):
                return self._begin_resize(instances)
            case CommitResize(instances=instances, retire=retire):
                return self._commit_resize(instances, retire)
            case EndResize(instances=instances):
                return self._end_resize(instances)
            case AbortResize(instances=instances, stay_fenced=stay_fenced):
                return self._abort_resize(instances, stay_fenced)
            case _:
                return ControlError(code=ControlCode.BAD_REQUEST, message="unknown control request")

    # ---- the operator's plane -------------------------------------------------------

    def _raise_floors(self, floors: list[tuple[str, int]]) -> ControlReply | Deferred:
        """Raise each floor that moves its name forward; reply once all of them are durable.

        Every raised floor above its durable mark is in the ledger's ``wanted``
        batch now (raise_floor puts it there), so they all become durable with
        that one batch. The reply waits on one of them that only that batch can
        make durable (its value is above what the batch in flight writes), or,
        when the batch in flight covers them all, on any of them.
        """
        ledger = self._ledger
        raised: list[tuple[str, int]] = []
        kept = 0
        try:
            for name, value in floors:
                if value <= ledger.cur.get(name, -1):
                    kept += 1
                    continue
                ledger.raise_floor(name, value)
                raised.append((name, value))
        except SeqgenError as exc:
            self._feed.note_floors(name for name, _ in raised)
            return ControlError(code=ControlCode.INTERNAL,
                                message=f"{exc.message} (after raising {len(raised)} floor(s))")
        self._feed.note_floors(name for name, _ in raised)
        answer = FloorsRaised(raised=len(raised), kept=kept)
        waiting = [(name, value) for name, value in raised if not ledger.is_durable(name, value)]
        if not waiting:
            return answer
        for name, value in waiting:
            if ledger.in_flight.get(name, 0) < value:
                return Deferred(name, value, answer)
        return Deferred(*waiting[0], answer)

    def _fence(self) -> Job:
        fencing = self._fencing
        self._fence_changes += 1
        fencing.set(True)  # in force at once; durable before the reply

        def finish(_: object, error: BaseException | None) -> ControlReply:
            if error is not None:
                return ControlError(
                    code=ControlCode.INTERNAL,
                    message=f"the fence is in force but not durable (a restart would lift it): {error}")
            return FenceState(fenced=fencing.get())

        return Job(lambda: fencing.persist(True), finish)

    def _unfence(self) -> Job:
        fencing = self._fencing
        self._fence_changes += 1
        mine = self._fence_changes

        def finish(_: object, error: BaseException | None) -> ControlReply:
            if isinstance(error, Conflict):
                return _failed(error)
            if error is not None:
                return ControlError(code=ControlCode.INTERNAL,
                                    message=f"still fenced: the release could not be persisted: {error}")
            if self._fence_changes == mine:  # no Fence came after this Unfence
                fencing.set(False)
            return FenceState(fenced=fencing.get())

        def release() -> None:
            store = self._store
            if store is not None and store.retired:
                raise Conflict("this server was retired by a resize: it stays fenced for good")
            if store is not None and store.resize_to is not None:
                raise Conflict(f"a resize to {store.resize_to} servers is unfinished here: "
                               "POST /resize with that number finishes it and unfences")
            fencing.persist(False)

        return Job(release, finish)

    # ---- resize (docs/protocol.md, "Changing the number of servers") -----------------
    # The checks run in the tasks thread, in order with the fence's writes.

    def _layout(self) -> Layout:
        store = self._require_store()
        return Layout(instance=self._instance, instances=self._instances,
                      fenced=self._fencing.get(), resize_to=store.resize_to, retired=store.retired)

    def _require_store(self) -> Store:
        assert self._store is not None, "a server handler has its store"
        return self._store

    def _layout_or_error(self, _: object, error: BaseException | None) -> ControlReply:
        return self._layout() if error is None else _failed(error)

    def _begin_resize(self, instances: int) -> Job:
        store = self._require_store()
        self._fence_changes += 1
        self._fencing.set(True)  # in force at once, whatever follows
        self._fencing.beginning(instances)  # held, not refused, while the store records it

        def begin() -> None:
            if store.resize_to not in (None, instances):
                raise Conflict(f"a resize to {store.resize_to} servers is unfinished here; "
                               "finish it first")
            if store.retired and store.resize_to is None:
                raise Conflict("this server was retired by a resize: it takes part in no other")
            store.set_meta(fenced=True, resize_to=instances)

        def begun(result: object, error: BaseException | None) -> ControlReply:
            self._fencing.beginning(None)  # from now on the store's resize_to says it
            return self._layout_or_error(result, error)

        return Job(begin, begun)

    def _commit_resize(self, instances: int, retire: bool) -> Job:
        store = self._require_store()

        def commit() -> None:
            if store.resize_to is None and (store.instances == instances or store.retired):
                return  # committed and ended already (a late repeat)
            if store.resize_to != instances:
                raise Conflict(f"no resize to {instances} servers was begun here")
            if retire:
                store.set_meta(fenced=True, retired=True)
            elif self._instance > instances:
                raise Conflict(f"instance {self._instance} cannot be one of {instances} servers; "
                               "it must retire")
            else:
                store.set_meta(fenced=True, instances=instances)

        def finish(_: object, error: BaseException | None) -> ControlReply:
            if error is None and not store.retired and store.instances != self._instances:
                self._ledger.relayout(store.instances)  # fenced: nothing is issued meanwhile
                self._instances = store.instances
            return self._layout_or_error(None, error)

        return Job(commit, finish)

    def _end_resize(self, instances: int) -> Job:
        store = self._require_store()
        self._fence_changes += 1
        mine = self._fence_changes

        def end() -> bool:
            if store.resize_to is None:
                # ended already (a repeat, or another coordinator's End came first, whose
                # release a later request may have held back): the store says what holds
                return not (store.retired or store.fenced) and store.instances == instances
            if store.resize_to != instances:
                raise Conflict(f"the resize unfinished here is to {store.resize_to} servers")
            if not store.retired and store.instances != instances:
                raise Conflict(f"the resize to {instances} servers is not committed here")
            store.set_meta(fenced=store.retired, end_resize=True)
            return not store.retired

        def finish(release: object, error: BaseException | None) -> ControlReply:
            if error is None and release and self._fence_changes == mine:
                self._fencing.set(False)
            return self._layout_or_error(None, error)

        return Job(end, finish)

    def _abort_resize(self, instances: int, stay_fenced: bool) -> Job:
        store = self._require_store()
        self._fence_changes += 1
        mine = self._fence_changes

        def abort() -> bool:
            if store.resize_to is None:
                return False  # nothing unfinished here (a repeat): nothing changes
            if store.resize_to != instances:
                raise Conflict(f"the resize unfinished here is to {store.resize_to} servers")
            if store.retired or (store.instances == instances and not stay_fenced):
                raise Conflict(f"this server recorded the layout of {instances} servers "
                               "already: the resize can only be finished (POST /resize with "
                               f"{instances})")
            store.set_meta(fenced=stay_fenced, end_resize=True)
            return not stay_fenced

        def finish(release: object, error: BaseException | None) -> ControlReply:
            if error is None and release and self._fence_changes == mine:
                self._fencing.set(False)
            return self._layout_or_error(None, error)

        return Job(abort, finish)

    def _changes(self, consumer: str, epoch: str | None, ack: int, limit: int) -> ChangePage:
        ledger, feed = self._ledger, self._feed
        feed.merge(ledger.take_changed())
        poll = feed.poll(consumer, epoch, ack, limit)
        cur = ledger.cur
        return ChangePage(
            version=__version__, instance=self._instance, instances=self._instances,
            epoch=feed.epoch, fenced=self._fencing.get(), seq=poll.seq, resync=poll.resync,
            more=poll.more,
            items=[Change(name, cur.get(name, 0), jumped) for name, jumped in poll.names],
        )
