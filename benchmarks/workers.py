"""The orchestrator's side of the load workers (``benchmarks.loadgen`` processes).

Workers are started on first need and reused for every measurement. ``run``
hands one command to each of as many workers as it needs, all with the same
wall-clock start a moment ahead, and waits for every result, never longer
than the commands can take plus a margin: a stuck worker is killed and the
measurement fails, so a benchmark never hangs.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Final

import msgspec

from benchmarks.commands import Command, Result

__all__ = ["LoadFailed", "Workers"]

REPO: Final = Path(__file__).resolve().parents[1]
LEAD_S: Final = 0.25
"""Time between handing out the commands and the start of the window (to make sockets)."""
MARGIN_S: Final = 60.0
"""How much longer than its window a command may take before its worker is killed."""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Result).decode


class LoadFailed(RuntimeError):
    """A load worker failed, died, or did not answer in time."""


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadgen"], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout

    def send(self, command: Command) -> None:
        self.stdin.write(_encode(command) + b"\n")
        self.stdin.flush()

    def receive(self, deadline: float, what: str) -> Result:
        ready, _, _ = select.select([self.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = self.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            raise LoadFailed(f"load worker {self.proc.pid} ({what}) died or took too long")
        result = _decode(line)
        if result.failure is not None:
            raise LoadFailed(f"load worker {self.proc.pid} ({what}) failed:\n{result.failure}")
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stdout.close()


class Workers:
    """A pool of load worker processes; ``with Workers() as w: w.run([...])``."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []

    def run(self, commands: list[Command]) -> list[Result]:
        """Run ``commands`` together, one per worker, from a common start; their results."""
        while len(self._idle) < len(commands):
            self._idle.append(_Worker())
        start = time.time() + LEAD_S
        longest = max(max(c.seconds, c.cap_s if c.mode == "burst" else 0.0) for c in commands)
        deadline = time.monotonic() + LEAD_S + longest + MARGIN_S
        workers = self._idle[: len(commands)]
        for worker, command in zip(workers, commands, strict=True):
            worker.send(msgspec.structs.replace(command, start=start))
        try:
            return [worker.receive(deadline, command.mode)
                    for worker, command in zip(workers, commands, strict=True)]
        except LoadFailed:
            self.close()  # the others may still be busy: start afresh next time
            raise

    def close(self) -> None:
        for worker in self._idle:
            worker.close()
        self._idle = []

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
