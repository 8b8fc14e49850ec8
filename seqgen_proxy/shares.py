"""Requests waiting in the proxy, counted in all and per name: one name cannot take the queue.

Pure bookkeeping, no zmq. ``--max-queued`` bounds the requests waiting in the
proxy for room in flight. Counted only in all, one name that floods (a client
asking ``["hot", "0", 1000]`` as fast as it can) filled that queue and every
other client's requests were shed (issue 22). Here a name may hold at most
``share`` of them (half the queue): the other half stays for the other names,
and a request over its name's share is shed like one over the whole queue.
"""

from __future__ import annotations

__all__ = ["Shares"]


class Shares:
    """How many requests wait, in all (``total``) and for each name."""

    __slots__ = ("_by_name", "limit", "share", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """Requests that may wait in all (--max-queued)."""
        self.share = max(1, limit // 2)
        """Requests that may wait for one name."""
        self.total = 0
        self._by_name: dict[str, int] = {}

    def room(self, name: str) -> bool:
        """Whether one more request for ``name`` may wait."""
        return self.total < self.limit and self._by_name.get(name, 0) < self.share

    def add(self, name: str) -> None:
        self.total += 1
        self._by_name[name] = self._by_name.get(name, 0) + 1

    def remove(self, name: str, count: int = 1) -> None:
        self.total -= count
        left = self._by_name.get(name, 0) - count
        if left > 0:
            self._by_name[name] = left
        else:
            self._by_name.pop(name, None)  # memory stays bounded by the names waiting

    def waiting(self, name: str) -> int:
        return self._by_name.get(name, 0)
