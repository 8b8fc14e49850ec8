"""Every socket of the proxy is made here (one place for transport security).

- The frontend is a ROUTER that refuses frames over 64 KiB, like a server's.
- With CURVE, the frontend is a CURVE server (its ZAP handler, a
  ``Gatekeeper``, starts before the bind and stops before the context ends)
  and every backend DEALER, also each one reopened after a timeout, is a CURVE
  client of its host.
- Each backend is a DEALER with ``ZMQ_IMMEDIATE``: a send to a backend that has
  no completed connection fails at once (``zmq.Again``) instead of queueing, so
  a dead backend costs no timeout. ZeroMQ heartbeats drop a connection whose
  peer stopped answering (a frozen process, a lost host), which turns it into a
  backend that refuses sends too. Its queues are sized above the in-flight
  bound, so a healthy backend never refuses a send for being full.

The relay's hot path sends frame by frame with plain int flags (pyzmq's enum
flags cost more than the send itself when or-ed per frame) and receives with
``receive``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import zmq

from seqgen_common.curve import CurveClient, CurveServer, Gatekeeper, use_as_client, use_as_server
from seqgen_common.errors import StartupError
from seqgen_common.limits import MAX_FRAME_BYTES

__all__ = ["MORE", "MORE_NOBLOCK", "NOBLOCK", "SocketFactory", "receive"]

log = logging.getLogger(__name__)

MORE: Final = int(zmq.SNDMORE)
MORE_NOBLOCK: Final = int(zmq.SNDMORE | zmq.NOBLOCK)
NOBLOCK: Final = int(zmq.NOBLOCK)

HEARTBEAT_IVL_MS: Final = 1000
HEARTBEAT_TIMEOUT_MS: Final = 3000
RECONNECT_IVL_MS: Final = 100
RECONNECT_IVL_MAX_MS: Final = 500
QUEUE_SLACK: Final = 64
"""Room for probes above the in-flight bound in a backend's queues."""


class SocketFactory:
    def __init__(self, max_in_flight: int, *, frontend_curve: CurveServer | None = None,
                 backend_curve: CurveClient | None = None) -> None:
        self._ctx = zmq.Context()
        self._backend_hwm = max_in_flight + QUEUE_SLACK
        self._frontend_curve = frontend_curve
        self._backend_curve = backend_curve
        self._gatekeeper: Gatekeeper | None = None
        if backend_curve is not None:
            log.info("hosts: CURVE with host public key %s, %s client key %s",
                     backend_curve.server_key.decode(),
                     "an ephemeral (no --curve-client-key)" if backend_curve.ephemeral else "the",
                     backend_curve.keys.public.decode())

    def frontend(self, bind: str) -> zmq.Socket[bytes]:
        """The public ROUTER, bound; StartupError when the address cannot be bound."""
        sock: zmq.Socket[bytes] = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        sock.setsockopt(zmq.IPV6, 1)
        if self._frontend_curve is not None:
            if self._gatekeeper is None:  # before the bind: no client may slip in unchecked
                try:
                    self._gatekeeper = Gatekeeper(self._ctx, self._frontend_curve)
                except StartupError:
                    sock.close()
                    raise
                if self._frontend_curve.allowed is None:
                    log.warning("frontend: %s (no --curve-clients)", self._frontend_curve.describe())
                else:
                    log.info("frontend: %s", self._frontend_curve.describe())
            use_as_server(sock, self._frontend_curve)
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
        if self._backend_curve is not None:
            use_as_client(sock, self._backend_curve)
        try:
            sock.connect(host)
        except zmq.ZMQError as exc:
            sock.close()
            raise StartupError(f"cannot connect to {host}: {exc}") from exc
        return sock

    def close(self) -> None:
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
            self._gatekeeper = None
        self._ctx.destroy(linger=0)


def receive(recv: Callable[..., zmq.Frame]) -> list[bytes]:
    """One whole message from a socket's ``recv``; raises zmq.Again when there is none.

    Each frame tells whether more follow, which is cheaper than asking the socket.
    """
    frame = recv(NOBLOCK, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = recv(NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return frames
