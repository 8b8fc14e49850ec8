"""A nemesis client process: paced calls with the real Client or AsyncClient, each one recorded.

    python -m tests.nemesis.worker '<WorkerConfig as JSON>'

runs until its standard input closes (or ``max_duration_s`` passes) and appends
one JSON line per finished call to ``out`` (flushed every quarter second), so
the test can read the history while the process runs. Exit status 0 once the
calls in flight have finished and everything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from pathlib import Path

import msgspec

from seqgen_client import AsyncClient, Client, SeqgenError
from tests.nemesis.records import CallRecord, WorkerConfig

FLUSH_INTERVAL_S = 0.25


class Recorder:
    """Collects records from threads or tasks and appends them to the output file."""

    def __init__(self, out: Path) -> None:
        self._file = open(out, "ab")  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        self._pending: list[CallRecord] = []
        self._encoder = msgspec.json.Encoder()

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        with self._lock:
            records, self._pending = self._pending, []
        if records:
            self._file.write(b"".join(self._encoder.encode(r) + b"\n" for r in records))
            self._file.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()


def _failure(exc: BaseException) -> str:
    return exc.code if isinstance(exc, SeqgenError) else type(exc).__name__


class Pace:
    """Start times ``interval_s`` apart; a call that overran starts the next at once, no burst."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.next_at = time.monotonic()

    def wait_s(self) -> float:
        now = time.monotonic()
        self.next_at = max(self.next_at + self.interval_s, now)
        return self.next_at - now


def run_sync(config: WorkerConfig, recorder: Recorder, stop: threading.Event) -> None:
    interval_s = config.concurrency / config.rate_per_s

    def loop(client: Client) -> None:
        pace = Pace(interval_s)
        while not stop.wait(pace.wait_s()):
            t0 = time.monotonic()
            try:
                value = client.next(config.name)
            except Exception as exc:  # every failure is part of the history
                recorder.add(CallRecord(t0, time.monotonic(), None, _failure(exc)))
            else:
                recorder.add(CallRecord(t0, time.monotonic(), value))

    with Client(config.endpoints) as client:
        threads = [threading.Thread(target=loop, args=(client,), daemon=True)
                   for _ in range(config.concurrency)]
        for thread in threads:
            thread.start()
        while not stop.wait(FLUSH_INTERVAL_S):
            recorder.flush()
        for thread in threads:
            thread.join()


async def run_async(config: WorkerConfig, recorder: Recorder, stop: threading.Event) -> None:
    interval_s = config.concurrency / config.rate_per_s
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(stopped.set)),
                     daemon=True).start()

    async def calls(client: AsyncClient) -> None:
        pace = Pace(interval_s)
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), pace.wait_s())
            if stopped.is_set():
                return
            t0 = time.monotonic()
            try:
                value = await client.next(config.name)
            except Exception as exc:
                recorder.add(CallRecord(t0, time.monotonic(), None, _failure(exc)))
            else:
                recorder.add(CallRecord(t0, time.monotonic(), value))

    async def flusher() -> None:
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), FLUSH_INTERVAL_S)
            recorder.flush()

    async with AsyncClient(config.endpoints) as client:
        await asyncio.gather(flusher(), *(calls(client) for _ in range(config.concurrency)))


def main(argv: list[str]) -> int:
    config = msgspec.json.decode(argv[0], type=WorkerConfig)
    recorder = Recorder(Path(config.out))
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    limit = threading.Timer(config.max_duration_s, stop.set)
    limit.daemon = True
    limit.start()
    try:
        if config.kind == "sync":
            run_sync(config, recorder, stop)
        else:
            asyncio.run(run_async(config, recorder, stop))
    finally:
        stop.set()
        limit.cancel()
        recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
