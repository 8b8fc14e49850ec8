"""A load worker: ``python -m benchmarks.loadgen``, driven by the orchestrator (``workers``).

It reads one ``Command`` per line (JSON) on stdin, waits for the command's
wall-clock start, runs the load and writes one ``Result`` per line on stdout,
until stdin closes. Workers live for a whole benchmark run, so no measurement
pays for starting Python, and an idle worker costs nothing (it blocks on
stdin). The modes are in ``rawload`` (raw ZeroMQ), ``clientload``
(seqgen_client) and ``peerload`` (PostgreSQL and Redis).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import msgspec
import zmq

from benchmarks import clientload, handoff, peerload, rawload
from benchmarks.commands import Command, Result

__all__ = ["MODES", "main"]

Mode = Callable[[Command, "zmq.Context[zmq.Socket[bytes]]"], Result]

MODES: dict[str, Mode] = {
    "pipeline": rawload.pipeline,
    "lockstep": rawload.lockstep,
    "burst": rawload.burst,
    "threads-raw": rawload.threads_raw,
    "async-floor": rawload.async_floor,
    "threads-handoff": handoff.threads_handoff,
    "client": clientload.client,
    "client-latency": clientload.client_latency,
    "threads-client": clientload.threads_client,
    "async-client": clientload.async_client,
    "pg": peerload.pg,
    "redis": peerload.redis,
}


def run(command: Command, ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    try:
        return MODES[command.mode](command, ctx)
    except Exception:
        return Result(failure=traceback.format_exc(limit=5))


def main() -> None:
    decode = msgspec.json.Decoder(Command).decode
    encode = msgspec.json.Encoder().encode
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        out.write(encode(run(decode(line), ctx)) + b"\n")
        out.flush()
    ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
