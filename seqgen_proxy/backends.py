"""Which backend gets a request, and which are up: pure logic, times passed in.

Backends are numbered 0..n-1. A request carries the set of backends it has
already tried as a bit mask, so each backend is tried at most once per request.

- ``choose`` goes round-robin over the healthy backends; when every healthy one
  was tried it falls back to the unhealthy ones (the relay's sockets refuse a
  send at once to a backend that is not connected, so this costs nothing when
  it is really down, and it finds a backend that came back before its probe).
- ``failed`` marks a backend down and schedules its first probe;
  ``probes_due`` lists the down backends whose probe is due, ``probe_sent``
  and ``probe_failed`` reschedule it; ``answered`` marks it up again.
"""

from __future__ import annotations

__all__ = ["BackendPool"]


class BackendPool:
    __slots__ = (
        "_healthy", "_next", "_next_probe_at", "_probing", "count", "down", "probe_interval_s",
    )

    def __init__(self, count: int, probe_interval_s: float) -> None:
        if count < 1:
            raise ValueError(f"need at least one backend, got {count}")
        self.count = count
        self.probe_interval_s = probe_interval_s
        self._healthy = [True] * count
        self._next = 0
        self._next_probe_at = [0.0] * count
        self._probing = [False] * count
        self.down = 0
        """How many backends are marked down."""

    def is_healthy(self, index: int) -> bool:
        return self._healthy[index]

    def _next_healthy(self, skip: int) -> int | None:
        """Round-robin: the next healthy backend not in ``skip`` (a bit mask), or None."""
        count, healthy = self.count, self._healthy
        start = self._next
        for step in range(count):
            index = (start + step) % count
            if healthy[index] and not skip >> index & 1:
                self._next = (index + 1) % count
                return index
        return None

    def choose_healthy(self, skip: int) -> int | None:
        """A healthy backend not in ``skip`` (a bit mask), round-robin; None if there is none
        (a hedge goes only to a backend known to be up)."""
        return self._next_healthy(skip)

    def choose(self, tried: int) -> int | None:
        """The backend for the next attempt of a request that tried ``tried``; None if all were."""
        index = self._next_healthy(tried)
        if index is not None:
            return index
        count, start = self.count, self._next
        for step in range(count):
            index = (start + step) % count
            if not tried >> index & 1:
                return index
        return None

    def choose_free(self, busy: int) -> int | None:
        """A backend for a new job of a name whose jobs are out on ``busy`` (a bit mask).

        Round-robin over the healthy backends not in ``busy``; when no backend is
        healthy, any not in ``busy`` (a send there fails at once, so the client
        hears so at once). None when the name must wait for one of its jobs.
        """
        if self.down == self.count:
            return self.choose(busy)
        return self._next_healthy(busy)

    def answered(self, index: int) -> bool:
        """The backend answered: it is healthy. True when it was down until now."""
        self._probing[index] = False
        if self._healthy[index]:
            return False
        self._healthy[index] = True
        self.down -= 1
        return True

    def failed(self, index: int, now: float) -> bool:
        """The backend did not take or answer a request. True when it was up until now."""
        self._probing[index] = False
        self._next_probe_at[index] = now + self.probe_interval_s
        if not self._healthy[index]:
            return False
        self._healthy[index] = False
        self.down += 1
        return True

    def probes_due(self, now: float) -> list[int]:
        """Down backends that should be probed now (none while a probe is out)."""
        if not self.down:
            return []
        return [
            index for index in range(self.count)
            if not self._healthy[index] and not self._probing[index]
            and self._next_probe_at[index] <= now
        ]

    def probe_sent(self, index: int) -> None:
        self._probing[index] = True

    def probe_failed(self, index: int, now: float) -> None:
        """The probe could not be sent or was not answered in time: probe again later."""
        self._probing[index] = False
        self._next_probe_at[index] = now + self.probe_interval_s

    def next_probe_at(self) -> float | None:
        """When the earliest probe is due, None when nothing needs probing."""
        if not self.down:
            return None
        due = [
            self._next_probe_at[index] for index in range(self.count)
            if not self._healthy[index] and not self._probing[index]
        ]
        return min(due) if due else None
