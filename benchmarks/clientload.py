"""Load through seqgen_client: the process under test is this load process itself.

``coalesce`` is passed to the client only when the command sets it (the
option may not exist in the version under test; the orchestrator checks).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import zmq

from benchmarks.callers import async_callers, lockstep_caller, thread_callers
from benchmarks.commands import Command, Result
from benchmarks.window import Window, sleep_until

__all__ = ["async_client", "client", "client_latency", "threads_client"]


def _options(cmd: Command) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if cmd.prefetch > 1:
        options["prefetch"] = cmd.prefetch
    if cmd.coalesce is not None:
        options["coalesce"] = cmd.coalesce
    if cmd.hedge is not None:
        options["hedge"] = cmd.hedge
    return options


def _counted(result: Result, stats: Any) -> Result:
    """The client's own counters (hedging) into the result."""
    result.requests, result.hedges, result.skipped = stats.requests, stats.hedges, stats.lost_numbers
    return result


def client(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``Client.next`` in a loop, one caller (lock-step)."""
    from seqgen_client import Client  # noqa: PLC0415 - raw-socket workers never import it

    with Client([cmd.endpoint], **_options(cmd)) as seq:
        next_number, name = seq.next, cmd.name
        return lockstep_caller(cmd, lambda: next_number(name))


def client_latency(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``Client.next`` one call at a time; p50 and p99 of a call in µs."""
    from seqgen_client import Client  # noqa: PLC0415

    with Client(cmd.endpoint.split(","), **_options(cmd)) as seq:
        seq.next(cmd.name)
        sleep_until(cmd.start)
        window = Window()
        deadline = window.began + cmd.seconds
        clock = time.perf_counter_ns
        samples: list[int] = []
        while clock() / 1e9 < deadline:
            began = clock()
            seq.next(cmd.name)
            samples.append(clock() - began)
        result = _counted(window.close(Result()), seq.stats)
    result.ok = result.numbers = len(samples)
    if len(samples) >= 2:
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        result.latencies_us = [cuts[49] / 1000, cuts[98] / 1000]
    return result


def threads_client(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """One ``Client`` shared by ``depth`` threads, each calling ``next`` in a loop."""
    from seqgen_client import Client  # noqa: PLC0415

    with Client([cmd.endpoint], **_options(cmd)) as seq:
        seq.next(cmd.name)
        name = cmd.name
        next_number = seq.next
        return thread_callers(cmd, lambda _index: lambda: next_number(name))


def async_client(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """One ``AsyncClient``, ``depth`` concurrent tasks awaiting ``next`` on one name."""
    return asyncio.run(_async_client(cmd))


async def _async_client(cmd: Command) -> Result:
    from seqgen_client import AsyncClient  # noqa: PLC0415

    async with AsyncClient(cmd.endpoint.split(","), **_options(cmd)) as seq:
        await seq.next(cmd.name)
        name = cmd.name
        next_number = seq.next
        return _counted(await async_callers(cmd, lambda: next_number(name)), seq.stats)
