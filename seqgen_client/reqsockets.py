"""The blocking client's pooled REQ sockets (``Client``): what a socket is set to, and an
attempt that lost its race to a hedge, whose socket waits for its reply."""

from __future__ import annotations

import math

import zmq

from seqgen_common.handshake import HandshakeWatch

__all__ = ["Conn", "Lost", "ms"]


class Conn:
    """A pooled REQ socket, the timeouts it is set to and its handshakes."""

    __slots__ = ("rcv_ms", "sock", "timeout_s", "watch")

    def __init__(self, sock: zmq.Socket[bytes], watch: HandshakeWatch) -> None:
        self.sock = sock
        self.timeout_s = -1.0
        self.rcv_ms = -1
        """Its receive timeout: the attempt's, or the hedge delay (``Client._receive``)."""
        self.watch = watch
        """Its security handshakes (seqgen_common.handshake): was a silence a refusal?"""

    def close(self) -> None:
        self.watch.close()
        self.sock.close(linger=0)


class Lost:
    """An attempt that lost its race to the other attempt of its request (``Client._race``):
    its socket is read once its reply comes (a late answer, counted) or closed at ``end``."""

    __slots__ = ("at", "conn", "count", "end", "index")

    def __init__(self, index: int, conn: Conn, at: float, end: float, count: int) -> None:
        self.index = index
        self.conn = conn
        self.at = at
        self.end = end
        self.count = count


def ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))
