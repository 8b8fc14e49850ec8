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

The relay's hot path sends and receives with seqgen_common.frames.
"""

from __future__ import annotations

import logging
from typing import Final

import zmq

from seqgen_common.curve import CurveClient, CurveServer, Gatekeeper, use_as_client
from seqgen_common.errors import StartupError
from seqgen_common.frames import bind_public
from seqgen_common.limits import MAX_FRAME_BYTES

__all__ = ["SocketFactory"]

log = logging.getLogger(__name__)


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
        curve = self._frontend_curve
        if curve is not None and self._gatekeeper is None:
            # before the bind: no client may slip in unchecked
            self._gatekeeper = Gatekeeper(self._ctx, curve)
            if curve.allowed is None:
                log.warning("frontend: %s (no --curve-clients)", curve.describe())
            else:
                log.info("frontend: %s", curve.describe())
        return bind_public(self._ctx, bind, curve)

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
