"""Every seqgen socket is made here: its type, its options and why each value was chosen.

One ``Spec`` per kind of socket; ``open_socket`` makes one, sets its options
(then CURVE, when given) and binds or connects it. Every queue has a bound
chosen on purpose (docs/protocol.md, "Bounds", lists them for operators):

PUBLIC (server and proxy ``--bind``, a ROUTER)
    SNDHWM 10,000 replies per connection: a client that reads more slowly than
    the server answers keeps up to 10,000 replies queued (about 1.3 MB) before
    the daemon's own per-peer outbox takes the rest. ``ROUTER_MANDATORY`` makes
    a full queue refuse a send (instead of dropping the reply silently, which a
    ROUTER does by default) and a send to a peer that has left fail.
    RCVHWM 256 requests per connection: ZeroMQ stops reading a connection that
    has 256 unread requests, so a flood costs at most 256 x 64 KiB (16 MiB) per
    connection; a pipelining client is slowed, not refused.
    MAXMSGSIZE 64 KiB per frame (a valid request is far smaller). Heartbeats
    (1 s, 5 s timeout) drop a peer that stopped reading or vanished, so replies
    held for it are not held forever.
CONTROL (a server's ``--control``, a ROUTER): as PUBLIC, for one admin.
BACKEND (the proxy's DEALER to each host): ``IMMEDIATE`` (a send to a host
    without a connection fails at once: no request waits for a dead host),
    queues sized by the caller above its in-flight bound, heartbeats (1 s,
    3 s timeout) to drop a frozen or lost host, fast reconnects (0.1-0.5 s),
    and a connect timeout of 1 s: a connect that a partition swallowed is tried
    again within a second of the network healing, not at TCP's next backed-off
    SYN (seconds to minutes later).
CLIENT_REQ (``Client``, one request at a time per socket) and CLIENT_DEALER
    (``AsyncClient``): queues of 10,000 messages, far above what one process
    keeps in flight; MAXMSGSIZE 64 KiB (a reply is far smaller); a connect
    timeout of 1 s and reconnects of 0.1-1 s, as above; the DEALER, which
    lives across calls, also has heartbeats (1 s, 3 s timeout).
CONTROL_CLIENT (the admin's DEALER to its server): ``IMMEDIATE``, SNDHWM 100
    (an admin never has more calls in flight), MAXMSGSIZE 4 MiB (a page of 1,000
    sequences is up to about 300 KB), reconnects of 0.1-1 s.

Every socket has LINGER 0 (a closed socket drops what it still holds) and
accepts IPv6.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import zmq

from seqgen_common.curve import CurveClient, CurveServer, use_as_client, use_as_server
from seqgen_common.errors import StartupError
from seqgen_common.limits import MAX_FRAME_BYTES

__all__ = [
    "BACKEND",
    "CLIENT_DEALER",
    "CLIENT_REQ",
    "CONTROL",
    "CONTROL_CLIENT",
    "PUBLIC",
    "Spec",
    "open_socket",
]

MAX_CONTROL_REPLY_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Spec:
    """A kind of socket: its type, whether it binds, and its options."""

    type: int
    binds: bool
    options: Mapping[int, int] = field(default_factory=dict)


_COMMON: Final[dict[int, int]] = {zmq.LINGER: 0, zmq.IPV6: 1}

PUBLIC: Final = Spec(zmq.ROUTER, True, {
    **_COMMON,
    zmq.MAXMSGSIZE: MAX_FRAME_BYTES,
    zmq.SNDHWM: 10_000,
    zmq.RCVHWM: 256,
    zmq.ROUTER_MANDATORY: 1,
    zmq.HEARTBEAT_IVL: 1000,
    zmq.HEARTBEAT_TIMEOUT: 5000,
})
CONTROL: Final = Spec(zmq.ROUTER, True, {
    **_COMMON,
    zmq.MAXMSGSIZE: MAX_FRAME_BYTES,
    zmq.SNDHWM: 1000,
    zmq.RCVHWM: 256,
    zmq.ROUTER_MANDATORY: 1,
    zmq.HEARTBEAT_IVL: 1000,
    zmq.HEARTBEAT_TIMEOUT: 5000,
})
BACKEND: Final = Spec(zmq.DEALER, False, {
    **_COMMON,
    zmq.MAXMSGSIZE: MAX_FRAME_BYTES,
    zmq.IMMEDIATE: 1,
    zmq.RECONNECT_IVL: 100,
    zmq.RECONNECT_IVL_MAX: 500,
    zmq.HEARTBEAT_IVL: 1000,
    zmq.HEARTBEAT_TIMEOUT: 3000,
    zmq.CONNECT_TIMEOUT: 1000,
})
_RECONNECT: Final[dict[int, int]] = {
    zmq.CONNECT_TIMEOUT: 1000,
    zmq.RECONNECT_IVL: 100,
    zmq.RECONNECT_IVL_MAX: 1000,
}
CLIENT_REQ: Final = Spec(zmq.REQ, False, {
    **_COMMON,
    **_RECONNECT,
    zmq.MAXMSGSIZE: MAX_FRAME_BYTES,
})
CLIENT_DEALER: Final = Spec(zmq.DEALER, False, {
    **_COMMON,
    **_RECONNECT,
    zmq.MAXMSGSIZE: MAX_FRAME_BYTES,
    zmq.SNDHWM: 10_000,
    zmq.RCVHWM: 10_000,
    zmq.HEARTBEAT_IVL: 1000,
    zmq.HEARTBEAT_TIMEOUT: 3000,
})
CONTROL_CLIENT: Final = Spec(zmq.DEALER, False, {
    **_COMMON,
    zmq.MAXMSGSIZE: MAX_CONTROL_REPLY_BYTES,
    zmq.IMMEDIATE: 1,
    zmq.SNDHWM: 100,
    zmq.RCVHWM: 1000,
    zmq.RECONNECT_IVL: 100,
    zmq.RECONNECT_IVL_MAX: 1000,
})


def open_socket(
    ctx: zmq.Context[Any],
    spec: Spec,
    endpoint: str,
    *,
    curve: CurveServer | CurveClient | None = None,
    hwm: int | None = None,
    before_connect: Callable[[Any], None] | None = None,
) -> Any:
    """A socket of kind ``spec``, bound or connected to ``endpoint``.

    ``hwm`` overrides both queue bounds (the proxy sizes its backends by its
    in-flight bound). ``before_connect`` sees the socket just before it
    connects (seqgen_common.handshake starts watching there, so that no
    handshake goes unseen). A bind that fails raises StartupError (only daemons
    bind); a connect that fails re-raises the zmq.ZMQError. Either way the
    socket is closed first.
    """
    sock = ctx.socket(spec.type)
    try:
        for option, value in spec.options.items():
            sock.setsockopt(option, value)
        if hwm is not None:
            sock.setsockopt(zmq.SNDHWM, hwm)
            sock.setsockopt(zmq.RCVHWM, hwm)
        if isinstance(curve, CurveServer):
            use_as_server(sock, curve)
        elif isinstance(curve, CurveClient):
            use_as_client(sock, curve)
        if spec.binds:
            try:
                sock.bind(endpoint)
            except zmq.ZMQError as exc:
                raise StartupError(f"cannot bind {endpoint}: {exc}") from exc
        else:
            if before_connect is not None:
                before_connect(sock)
            sock.connect(endpoint)
    except BaseException:
        sock.close(linger=0)
        raise
    return sock
