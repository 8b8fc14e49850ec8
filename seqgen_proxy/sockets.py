"""Every socket of the proxy is made here (one place for transport security later).

- The frontend is a ROUTER that refuses frames over 64 KiB, like a server's.
- Each backend is a DEALER with ``ZMQ_IMMEDIATE``: a send to a backend that has
  no completed connection fails at once (``zmq.Again``) instead of queueing, so
  a dead backend costs no timeout. ZeroMQ heartbeats drop a connection whose
  peer stopped answering (a frozen process, a lost host), which turns it into a
  backend that refuses sends too. Its queues are sized above the in-flight
  bound, so a healthy backend never refuses a send for being full.
"""

from __future__ import annotations

from typing import Final

import zmq

from seqgen_common.errors import StartupError
from seqgen_common.limits import MAX_FRAME_BYTES

__all__ = ["SocketFactory"]

HEARTBEAT_IVL_MS: Final = 1000
HEARTBEAT_TIMEOUT_MS: Final = 3000
RECONNECT_IVL_MS: Final = 100
RECONNECT_IVL_MAX_MS: Final = 500
QUEUE_SLACK: Final = 64
"""Room for probes above the in-flight bound in a backend's queues."""


class SocketFactory:
    def __init__(self, max_in_flight: int) -> None:
        self._ctx = zmq.Context()
        self._backend_hwm = max_in_flight + QUEUE_SLACK

    def frontend(self, bind: str) -> zmq.Socket[bytes]:
        """The public ROUTER, bound; StartupError when the address cannot be bound."""
        sock: zmq.Socket[bytes] = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        sock.setsockopt(zmq.IPV6, 1)
        try:
            sock.bind(bind)
        except zmq.ZMQError as exc:
            sock.close()
            raise StartupError(f"cannot bind {bind}: {exc}") from exc
        return sock

    def backend(self, host: str) -> zmq.Socket[bytes]:
        """A DEALER connected (asynchronously) to ``host``."""
        sock: zmq.Socket[bytes] = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        sock.setsockopt(zmq.SNDHWM, self._backend_hwm)
        sock.setsockopt(zmq.RCVHWM, self._backend_hwm)
        sock.setsockopt(zmq.IPV6, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        try:
            sock.connect(host)
        except zmq.ZMQError as exc:
            sock.close()
            raise StartupError(f"cannot connect to {host}: {exc}") from exc
        return sock

    def close(self) -> None:
        self._ctx.destroy(linger=0)
