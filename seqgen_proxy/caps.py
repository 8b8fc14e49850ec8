"""The cap on ``last`` (docs/protocol.md, "Proxy semantics") as pure logic: no zmq, no clock.

A client's ``last`` makes a server skip ahead ("catch up") to just above it.
A client talking to a proxy could abuse that to push the servers towards the
maximum and exhaust a name, so the proxy forwards ``min(last, highest)`` where
``highest`` is the highest number the proxy itself has relayed for that name.

Memory is bounded: only the ``max_names`` most recently used names are kept.
A name the table does not know (never relayed, or forgotten) has the cap 0.
That is always safe: ``last`` is only a hint to catch up, never a condition of
uniqueness, so a lower ``last`` can never repeat a number; it only means the
servers do not catch up *through this proxy* for that name until the proxy has
relayed a number for it again (which the next reply does).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["CapTable"]


class CapTable:
    """Highest relayed number per name, least recently used names evicted first."""

    __slots__ = ("_highest", "max_names")

    def __init__(self, max_names: int) -> None:
        if max_names < 1:
            raise ValueError(f"max_names must be at least 1, got {max_names}")
        self.max_names = max_names
        self._highest: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._highest)

    def cap(self, name: str, last: int) -> int:
        """``last`` capped at what was relayed for ``name`` (0 when unknown)."""
        highest = self._highest.get(name, 0)
        return last if last <= highest else highest

    def relayed(self, name: str, value: int) -> None:
        """Record that ``value`` was relayed for ``name`` (the name becomes most recent)."""
        table = self._highest
        old = table.get(name)
        if old is None:
            table[name] = value
            if len(table) > self.max_names:
                table.popitem(last=False)
            return
        if value > old:
            table[name] = value
        table.move_to_end(name)
