"""What the two event loops share: the server's (seqgen_server.server) and the proxy's
(seqgen_proxy.relay). No zmq.

Both loops read a ROUTER in bursts, poll with a short wait while replies are
held for clients whose queues are full and a longer one when idle, answer a
message that is not one frame the same way, and at a stop give the replies
still held a bounded time to leave. The values are chosen once, here, in
seconds (the loops turn them into the milliseconds zmq polls take).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from seqgen_common.errors import ErrorCode
from seqgen_common.protocol import encode_error

__all__ = ["BURST", "IDLE_POLL_S", "NOT_ONE_FRAME", "RETRY_S", "STOP_FLUSH_S", "flush_at_stop",
           "poll_ms"]

BURST: Final = 256
"""Messages taken from one socket before looking at the others again."""
IDLE_POLL_S: Final = 0.1
"""Longest poll: how soon a stop request is noticed."""
RETRY_S: Final = 0.002
"""Poll timeout while replies are held: how soon a full client queue is tried again."""
STOP_FLUSH_S: Final = 1.0
"""At a stop, how long held replies may still wait for their clients."""
NOT_ONE_FRAME: Final = encode_error(ErrorCode.BAD_REQUEST, "a request is exactly one frame")
"""The reply to a message whose body is not exactly one frame."""


def poll_ms(seconds: float) -> int:
    """``seconds`` as a zmq poll timeout (whole milliseconds, rounded)."""
    return round(seconds * 1000)


def flush_at_stop(held: Callable[[], bool], flush: Callable[[], object], *,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], object] = time.sleep) -> None:
    """At a stop: ``flush`` the held replies every RETRY_S while any is ``held``, for at most
    STOP_FLUSH_S; what is still held then is dropped by the caller."""
    give_up_at = clock() + STOP_FLUSH_S
    while held() and clock() < give_up_at:
        flush()
        sleep(RETRY_S)
