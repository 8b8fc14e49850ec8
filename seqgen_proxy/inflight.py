"""Requests on their way to a backend: pure bookkeeping, no zmq, times passed in.

Every attempt to forward a request gets a fresh request id
(``seqgen_common.reqids``); the backend's ROUTER echoes it in front of the reply. A backend's ``InFlight``
table maps the ids it was sent to the waiting ``Job`` (seqgen_proxy.jobs). A reply
whose id is not in the table of the backend it came from (late, duplicated or
made up) matches nothing and is dropped: it can never reach another client.

All attempts use the same timeout, so adding them in the order they are sent
keeps each table in deadline order: the oldest entry is the next to expire.
An attempt given more time (``extend``) moves to the end with a deadline of
now plus that timeout, which keeps the order.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqgen_proxy.jobs import Job

__all__ = ["InFlight"]


class InFlight:
    """The attempts sent to one backend and not yet answered, oldest first."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: OrderedDict[bytes, Job] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, request_id: bytes, pending: Job, deadline: float) -> None:
        pending.deadline = deadline
        self._items[request_id] = pending

    def extend(self, request_id: bytes, deadline: float) -> None:
        """Give the attempt ``request_id`` until ``deadline`` (no earlier than any other's)."""
        self._items[request_id].deadline = deadline
        self._items.move_to_end(request_id)

    def oldest(self) -> tuple[bytes, Job] | None:
        """The attempt that expires first, with its id."""
        for request_id, pending in self._items.items():
            return request_id, pending
        return None

    def pop(self, request_id: bytes) -> Job | None:
        """The request waiting for ``request_id``; None for an unknown or late reply."""
        return self._items.pop(request_id, None)

    def oldest_deadline(self) -> float | None:
        oldest = self.oldest()
        return None if oldest is None else oldest[1].deadline

    def take_all(self) -> list[Job]:
        """Forget every attempt (their replies will be dropped) and return their requests."""
        taken = list(self._items.values())
        self._items.clear()
        return taken
