"""The ``last`` a proxy forwards (docs/protocol.md, "Proxy semantics") as pure logic: no zmq,
no clock.

A client's ``last`` makes a server skip ahead ("catch up") to just above it.
Two rules meet here:

- **The cap.** A client talking to a proxy could abuse ``last`` to push the
  servers towards the maximum and exhaust a name, so a client's ``last`` counts
  only up to ``highest``, the highest number the proxy itself has relayed for
  that name.
- **The proxy carries ``last`` for its clients.** Many callers send ``"0"``
  (a script, the command line, any process that asks once and exits), so the
  proxy forwards the highest of the client's capped ``last`` and ``highest``.
  A server behind the others then catches up on the first request it gets
  through this proxy, whoever sent it.

The client's capped ``last`` is at most ``highest``, so the highest of the two
is ``highest`` itself: the proxy forwards ``highest`` whatever the client sent,
and a client can neither push the servers past a number really issued nor hold
them back.

Memory is bounded: only the ``max_names`` most recently used names are kept.
A name the table does not know (never relayed, or forgotten) is forwarded with
``last`` 0. That is always safe: ``last`` is only a hint to catch up, never a
condition of uniqueness, so a lower ``last`` can never repeat a number; it only
means the servers do not catch up *through this proxy* for that name until the
proxy has relayed a number for it again (which the next reply does).
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

    def forward(self, name: str, last: int) -> int:
        """The ``last`` to forward for a client that sent ``last``: the highest of ``last``
        capped at what was relayed for ``name`` and what was relayed, which is what was
        relayed (0 when the name is unknown)."""
        highest = self._highest.get(name, 0)
        return max(min(last, highest), highest)

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
