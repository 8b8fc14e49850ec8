"""Requests on their way to a backend: pure bookkeeping, no zmq, times passed in.

Every attempt to forward a request gets a fresh request id
(``seqgen_common.reqids``); the backend's ROUTER echoes it in front of the reply. A backend's ``InFlight``
table maps the ids it was sent to the waiting ``Pending`` request. A reply
whose id is not in the table of the backend it came from (late, duplicated or
made up) matches nothing and is dropped: it can never reach another client.

All attempts use the same timeout, so adding them in the order they are sent
keeps each table in deadline order: the oldest entry is the next to expire.
An attempt given more time (``extend``) moves to the end with a deadline of
now plus that timeout, which keeps the order.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["InFlight", "Pending"]


class Pending:
    """One client request until it is answered."""

    __slots__ = ("body", "deadline", "envelope", "fallback", "name", "received_at", "sent_at",
                 "tried")

    def __init__(self, envelope: list[bytes], body: bytes, name: str, received_at: float = 0.0,
                 ) -> None:
        self.envelope = envelope
        """The client's routing frames (identity, and the empty delimiter if it sent one)."""
        self.body = body
        """The frame forwarded to the backends (the request with ``last`` capped)."""
        self.name = name
        self.tried = 0
        """Bit mask of the backends tried so far."""
        self.received_at = received_at
        """When the proxy read the request."""
        self.sent_at = 0.0
        """When the current attempt was sent."""
        self.deadline = 0.0
        """When the current attempt times out."""
        self.fallback: bytes | None = None
        """An error reply worth retrying elsewhere; the answer if no other backend does better."""


class InFlight:
    """The attempts sent to one backend and not yet answered, oldest first."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: OrderedDict[bytes, Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, request_id: bytes, pending: Pending, deadline: float) -> None:
        pending.deadline = deadline
        self._items[request_id] = pending

    def extend(self, request_id: bytes, deadline: float) -> None:
        """Give the attempt ``request_id`` until ``deadline`` (no earlier than any other's)."""
        self._items[request_id].deadline = deadline
        self._items.move_to_end(request_id)

    def oldest(self) -> tuple[bytes, Pending] | None:
        """The attempt that expires first, with its id."""
        for request_id, pending in self._items.items():
            return request_id, pending
        return None

    def pop(self, request_id: bytes) -> Pending | None:
        """The request waiting for ``request_id``; None for an unknown or late reply."""
        return self._items.pop(request_id, None)

    def oldest_deadline(self) -> float | None:
        oldest = self.oldest()
        return None if oldest is None else oldest[1].deadline

    def take_all(self) -> list[Pending]:
        """Forget every attempt (their replies will be dropped) and return their requests."""
        taken = list(self._items.values())
        self._items.clear()
        return taken
