"""How threads sharing a ``Client`` sleep while their call waits, and are woken.

Each thread sleeps on a lock of its own, kept for all its calls (a
``threading.Event`` per wait costs a condition variable and a new lock each
time). A thread handed a batch to lead is woken at once: its request is
already out. Threads given their number (or error) are woken in turn: the
thread that settled the request wakes the first, and every woken thread wakes
the next before anything else. Woken all at once, each would find the
interpreter lock taken and sleep a second time waiting for it.
"""

from __future__ import annotations

import threading
from collections import deque

from seqgen_client.base import Waiter
from seqgen_client.reqsockets import Conn

__all__ = ["ThreadWaiter", "WakeQueue", "own_lock"]


class WakeQueue:
    """The waiters due to be woken in turn; guarded by the client's lock."""

    __slots__ = ("_due", "_lock")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._due: deque[ThreadWaiter] = deque()

    def __bool__(self) -> bool:
        return bool(self._due)

    def append(self, waiter: ThreadWaiter) -> None:
        """Under the client's lock."""
        self._due.append(waiter)

    def wake_next(self) -> None:
        """Wake the first waiter still asleep, if any (the client's lock is not held)."""
        due = self._due
        if not due:
            return
        with self._lock:
            while due:
                waiter = due.popleft()
                signal = waiter.signal
                if waiter.sleeping and signal is not None:  # not timed out meanwhile
                    waiter.sleeping = False
                    signal.release()
                    return


class ThreadWaiter(Waiter[threading.Lock, Conn]):
    """A waiter whose thread sleeps on its own lock (``signal``), released to wake it."""

    __slots__ = ("queue", "sleeping")
    sleeping: bool
    queue: WakeQueue

    def wake(self) -> None:
        if self.signal is not None and self.sleeping:
            if self.batch is None:  # a number or an error: woken in turn
                self.queue.append(self)
            else:  # a batch to lead, its request already out: at once
                self.sleeping = False
                self.signal.release()


_sleepers = threading.local()


def own_lock() -> threading.Lock:
    """This thread's own lock to sleep on, held (acquired) while not in use."""
    lock: threading.Lock | None = getattr(_sleepers, "lock", None)
    if lock is None:
        lock = _sleepers.lock = threading.Lock()
        lock.acquire()
    return lock
