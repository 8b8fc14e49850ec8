"""Callers in one process, each calling until the window closes: one lock-step caller,
asyncio tasks, or threads.

Used by the client-side scenarios (and their floors, and the peers) whose
process under test is the load process itself: its CPU per call is what they
report.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

from benchmarks.commands import Command, Result
from benchmarks.window import Window, sleep_until

__all__ = ["async_callers", "lockstep_caller", "thread_callers"]

GRACE_S: Final = 10.0
"""How long after the window a caller may still be waiting before the load gives up."""


def lockstep_caller(cmd: Command, call: Callable[[], object]) -> Result:
    """``call()`` once before the window opens (connected, warmed up), then in a loop until
    the window closes."""
    call()
    sleep_until(cmd.start)
    window = Window()
    deadline = window.began + cmd.seconds
    clock = time.perf_counter
    calls = 0
    while clock() < deadline:
        call()
        calls += 1
    result = window.close(Result())
    result.ok = result.numbers = calls
    return result


async def async_callers(cmd: Command, call: Callable[[], Awaitable[object]]) -> Result:
    """``cmd.depth`` tasks awaiting ``call()`` in turn until the window closes."""
    await asyncio.sleep(max(0.0, cmd.start - time.time()))
    window = Window()
    deadline = window.began + cmd.seconds
    clock = time.perf_counter

    async def caller() -> int:
        done = 0
        while clock() < deadline:
            await call()
            done += 1
        return done

    result = Result()
    try:
        counts = await asyncio.wait_for(
            asyncio.gather(*(caller() for _ in range(cmd.depth))), cmd.seconds + GRACE_S
        )
    except TimeoutError:
        result.unanswered = cmd.depth
        counts = []
    window.close(result)
    result.ok = result.numbers = sum(counts)
    return result


def thread_callers(cmd: Command, make_call: Callable[[int], Callable[[], object]]) -> Result:
    """``cmd.depth`` threads, thread i calling ``make_call(i)()`` until the window closes.

    ``make_call`` runs before the window opens (a thread's own socket is made there).
    A thread whose call raises stops; it is counted in ``unanswered``.
    """
    calls = [make_call(i) for i in range(cmd.depth)]
    counts = [0] * cmd.depth
    failed = [False] * cmd.depth
    sleep_until(cmd.start)
    window = Window()
    deadline = window.began + cmd.seconds

    def run(index: int) -> None:
        call = calls[index]
        clock = time.perf_counter
        done = 0
        try:
            while clock() < deadline:
                call()
                done += 1
        except Exception:
            failed[index] = True
        counts[index] = done

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(cmd.depth)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(cmd.seconds + GRACE_S)
    result = window.close(Result())
    result.ok = result.numbers = sum(counts)
    result.unanswered = sum(failed) + sum(thread.is_alive() for thread in threads)
    return result
