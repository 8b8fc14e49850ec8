"""The proxy's sockets: one frontend ROUTER, one DEALER per host, and what each host has pending.

Socket options live in seqgen_common.sockets (PUBLIC for the frontend,
BACKEND for the hosts). Here: the context, the CURVE handler of the frontend
(a ``Gatekeeper``, started before the bind, stopped before the context ends),
CURVE towards the hosts, and the DEALER queues sized above the in-flight
bound, so that a healthy host never refuses a send for being full: twice the
bound, because a ZeroMQ pipe learns what its reader took only every half queue,
so a sender may count up to half a queue of messages that are long gone.
Each host's socket has a ``HandshakeWatch``, so a host that refuses the proxy's
CURVE handshake is logged as such, with the reason, when it is marked down.
"""

from __future__ import annotations

import logging
from typing import Final

import zmq

from seqgen_common.curve import CurveClient, CurveServer, Gatekeeper, start_gatekeeper
from seqgen_common.errors import StartupError
from seqgen_common.handshake import HandshakeWatch, open_watched
from seqgen_common.sockets import BACKEND, PUBLIC, open_socket
from seqgen_proxy.inflight import InFlight

__all__ = ["Backend", "Links"]

log = logging.getLogger(__name__)

QUEUE_SLACK: Final = 64
"""Room for probes above the in-flight bound in a host's queues."""


class Backend:
    """One host: its DEALER socket and the attempts waiting on it."""

    __slots__ = ("heard_at", "host", "index", "inflight", "probe_deadline", "probe_id", "socket")

    def __init__(self, index: int, host: str, sock: zmq.Socket[bytes]) -> None:
        self.index = index
        self.host = host
        self.socket = sock
        self.inflight = InFlight()
        self.probe_id: bytes | None = None
        self.probe_deadline = 0.0
        self.heard_at = -1e9
        """When the host last answered anything (a request, a probe, even a late reply)."""


class Links:
    """Opens and closes the proxy's sockets; owns their context."""

    def __init__(self, max_in_flight: int, *, frontend_curve: CurveServer | None = None,
                 backend_curve: CurveClient | None = None) -> None:
        self._ctx = zmq.Context()
        self._backend_hwm = 2 * max_in_flight + QUEUE_SLACK
        self._frontend_curve = frontend_curve
        self._backend_curve = backend_curve
        self._gatekeeper: Gatekeeper | None = None
        self._watches: dict[zmq.Socket[bytes], HandshakeWatch] = {}
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
            self._gatekeeper = start_gatekeeper(self._ctx, curve, "frontend")
        sock: zmq.Socket[bytes] = open_socket(self._ctx, PUBLIC, bind, curve=curve)
        return sock

    def backend(self, host: str) -> zmq.Socket[bytes]:
        """A DEALER connected (asynchronously) to ``host``."""
        try:
            sock: zmq.Socket[bytes]
            sock, watch = open_watched(self._ctx, BACKEND, host, curve=self._backend_curve,
                                       hwm=self._backend_hwm)
        except zmq.ZMQError as exc:
            raise StartupError(f"cannot connect to {host}: {exc}") from exc
        self._watches[sock] = watch
        return sock

    def refusal(self, sock: zmq.Socket[bytes]) -> str | None:
        """Why the host of this backend socket refuses its security handshake, if it does."""
        watch = self._watches.get(sock)
        return watch.check() if watch is not None else None

    def close_backend(self, sock: zmq.Socket[bytes]) -> None:
        """Close a backend socket (and its handshake watch)."""
        watch = self._watches.pop(sock, None)
        if watch is not None:
            watch.close()
        sock.close(linger=0)

    def close(self) -> None:
        for watch in self._watches.values():
            watch.close()
        self._watches.clear()
        if self._gatekeeper is not None:
            self._gatekeeper.stop()
            self._gatekeeper = None
        self._ctx.destroy(linger=0)
