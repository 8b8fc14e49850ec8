"""Load on the peers of benchmarks/peers.py: PostgreSQL ``nextval`` and Redis ``INCR``.

One connection per worker, one call at a time, each returning the number as an
int, like ``Client.next``. psycopg and redis are imported only here (the
``bench`` extra); the other workers never need them.
"""

from __future__ import annotations

import zmq

from benchmarks.callers import lockstep_caller
from benchmarks.commands import Command, Result

__all__ = ["SEQUENCE", "pg", "redis"]

SEQUENCE = "seqgen_bench"
"""The PostgreSQL sequence and the Redis key the peers count with."""


def pg(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``SELECT nextval(...)`` over TCP, autocommit (each call its own transaction)."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(cmd.endpoint, autocommit=True, prepare_threshold=0) as conn:
        cur = conn.cursor()
        query = f"SELECT nextval('{SEQUENCE}')"

        def call() -> int:
            cur.execute(query)
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

        return lockstep_caller(cmd, call)


def redis(cmd: Command, _ctx: zmq.Context[zmq.Socket[bytes]]) -> Result:
    """``INCR`` over TCP; the server runs with ``appendfsync always`` (see setup-peers.sh)."""
    import redis as redis_py  # noqa: PLC0415

    conn = redis_py.Redis.from_url(cmd.endpoint)
    try:
        return lockstep_caller(cmd, lambda: int(conn.incr(SEQUENCE)))
    finally:
        conn.close()
