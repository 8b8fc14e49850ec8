"""Answers to control requests (docs/protocol.md, "Control"); the server loop does the I/O.

``ControlHandler.handle`` turns one decoded request into a reply, or into a
``Deferred`` reply for a floor that must be durable before it is answered.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from seqgen_common import __version__
from seqgen_common.control import (
    ControlError,
    ControlReply,
    ControlRequest,
    GetSequence,
    GetStatus,
    ListSequences,
    Ping,
    Pong,
    RaiseFloor,
    SequenceInfo,
    SequencePage,
    Status,
)
from seqgen_common.errors import Conflict, ControlCode, SeqgenError
from seqgen_server.ledger import Ledger
from seqgen_server.stats import Counters

__all__ = ["ControlHandler", "Deferred"]


class Deferred(NamedTuple):
    """Reply ``info(name)`` once ``value`` is durable for ``name``, INTERNAL if the store fails."""

    name: str
    value: int


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
        store_ok: Callable[[], bool],
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
        self._store_ok = store_ok

    def info(self, name: str) -> SequenceInfo:
        ledger = self._ledger
        mark = ledger.mark.get(name, 0)
        return SequenceInfo(name=name, current=ledger.cur.get(name, mark), durable=mark)

    def handle(self, request: ControlRequest) -> ControlReply | Deferred:
        self._counters.control_requests += 1
        match request:
            case Ping():
                return Pong(version=__version__, instance=self._instance, instances=self._instances)
            case GetStatus():
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
                    store_ok=self._store_ok(),
                    counters=self._counters,
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
                return Deferred(name, value)
            case _:
                return ControlError(code=ControlCode.BAD_REQUEST, message="unknown control request")
