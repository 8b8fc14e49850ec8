"""One measurement: run loads on the workers, read the CPU of the process under test.

The CPU of a daemon (server, proxy, floor) is read from /proc/PID/stat just
before the loads start and just after the last reply, while it has nothing
else to do; the CPU of a client process is read by that process itself around
its own window. Either is divided by the requests answered (calls made).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from benchmarks.commands import Command, Result
from benchmarks.procstat import cpu_seconds
from benchmarks.results import Row, Sample
from benchmarks.workers import Workers

__all__ = ["alternate", "drain", "measure"]


def _errors(results: list[Result]) -> dict[str, int]:
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.errors)
    return dict(errors)


def _run(workers: Workers, commands: list[Command], pid: int | None) -> tuple[list[Result], float]:
    before = cpu_seconds(pid) if pid is not None else 0.0
    results = workers.run(commands)
    if pid is not None:
        return results, cpu_seconds(pid) - before
    return results, sum(result.cpu_s for result in results)


def measure(workers: Workers, commands: list[Command], pid: int | None = None) -> Sample:
    """Throughput (sum of each load's numbers per second) and CPU per request.

    ``pid``: the daemon under test; None when the load processes themselves are.
    """
    results, cpu_s = _run(workers, commands, pid)
    answered = sum(result.answered for result in results)
    sample = Sample(
        rate=sum(result.numbers / result.seconds for result in results if result.seconds > 0),
        cpu_us=cpu_s / answered * 1e6 if answered else None,
        answered=answered,
        unanswered=sum(result.unanswered for result in results),
        errors=_errors(results),
    )
    sample.extra["window_s"] = max(result.seconds for result in results)
    latencies = [result.latencies_us for result in results if result.latencies_us]
    if latencies:
        sample.extra["p50_us"], sample.extra["p99_us"] = latencies[0]
    requests = sum(result.requests for result in results)
    if requests:
        numbers = sum(result.numbers for result in results)
        hedges = sum(result.hedges for result in results)
        skipped = sum(result.skipped for result in results)
        sample.extra.update(requests=requests, hedges=hedges, skipped=skipped,
                            hedge_share=hedges / requests, skipped_share=skipped / max(numbers, 1))
    return sample


def drain(workers: Workers, commands: list[Command], pid: int) -> Sample:
    """A burst: numbers per second from the first request sent to the last reply received."""
    results, cpu_s = _run(workers, commands, pid)
    answered = sum(result.answered for result in results)
    longest = max(result.seconds for result in results)
    numbers = sum(result.numbers for result in results)
    sample = Sample(
        rate=numbers / longest if longest > 0 else 0.0,
        cpu_us=cpu_s / answered * 1e6 if answered else None,
        answered=answered,
        unanswered=sum(result.unanswered for result in results),
        errors=_errors(results),
    )
    sample.extra["sent"] = sum(result.sent for result in results)
    sample.extra["duplicates"] = sum(result.duplicates for result in results)
    sample.extra["drain_s"] = longest
    return sample


def alternate(row: Row, rounds: int, ours: Callable[[], Sample],
              theirs: Callable[[], Sample] | None = None) -> Row:
    """``rounds`` rounds of seqgen and its floor, the order flipping every round."""
    for number in range(rounds):
        pair = [(row.seqgen, ours)]
        if theirs is not None:
            pair.append((row.floor, theirs))
        if number % 2:
            pair.reverse()
        for samples, run in pair:
            samples.append(run())
    return row
