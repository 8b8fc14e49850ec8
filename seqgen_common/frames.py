"""Frames on the public sockets, shared by the server and the proxy.

- ``take_body`` splits a message from a ROUTER into its envelope and body by
  the rule of DESIGN section 2 (pure; no I/O).
- ``bind_public`` makes the public ROUTER: frames over 64 KiB refused,
  LINGER 0, IPv6 allowed, optionally a CURVE server; StartupError if the
  address cannot be bound.
- ``receive`` and ``send_reply`` are the hot path: they call pyzmq's
  low-level (``zmq.backend``) socket methods with plain int flags, since the
  high-level ones wrap every flag in an enum, which costs more per frame than
  the send itself.
"""

from __future__ import annotations

from typing import Final

import zmq
from zmq.backend import Socket as _BackendSocket

from seqgen_common.curve import CurveServer, use_as_server
from seqgen_common.errors import StartupError
from seqgen_common.limits import MAX_FRAME_BYTES

__all__ = [
    "MORE", "MORE_NOBLOCK", "NOBLOCK", "bind_public", "has_message", "receive", "send_reply", "take_body",
]

MORE: Final = int(zmq.SNDMORE)
NOBLOCK: Final = int(zmq.NOBLOCK)
MORE_NOBLOCK: Final = MORE | NOBLOCK

_send = _BackendSocket.send
_recv = _BackendSocket.recv
_get = _BackendSocket.get
_EVENTS: Final = int(zmq.EVENTS)
_POLLIN: Final = int(zmq.POLLIN)


def take_body(frames: list[bytes]) -> bytes | None:
    """Split a ROUTER message in place: ``frames`` keeps the envelope.

    The envelope is everything up to and including the first empty frame after
    the peer's identity (a REQ, or a DEALER that sends the delimiter, or several
    hops of them); a DEALER without the delimiter gets its identity alone.
    Returns the one body frame, or None when there is not exactly one (the
    envelope is then still right for the error reply).
    """
    if len(frames) == 3 and not frames[1]:  # the common case: a REQ client
        return frames.pop()
    try:
        end = frames.index(b"", 1) + 1
    except ValueError:
        end = 1
    body = frames[end:]
    del frames[end:]
    return body[0] if len(body) == 1 else None


def receive(sock: zmq.Socket[bytes]) -> list[bytes]:
    """One whole message; raises zmq.Again when none is waiting."""
    frame = _recv(sock, NOBLOCK, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = _recv(sock, NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return frames


def has_message(sock: zmq.Socket[bytes]) -> bool:
    """Whether ``receive`` would find a message now."""
    events = _get(sock, _EVENTS)
    return isinstance(events, int) and bool(events & _POLLIN)


def send_reply(sock: zmq.Socket[bytes], envelope: list[bytes], body: bytes) -> None:
    """``envelope`` then ``body`` as one message (a ROUTER drops what it cannot route)."""
    for frame in envelope:
        _send(sock, frame, MORE)
    _send(sock, body, 0)


def bind_public(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str,
                curve: CurveServer | None = None) -> zmq.Socket[bytes]:
    """A bound ROUTER for public requests (or the control socket, without ``curve``)."""
    sock: zmq.Socket[bytes] = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.IPV6, 1)
    if curve is not None:
        use_as_server(sock, curve)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close()
        raise StartupError(f"cannot bind {endpoint}: {exc}") from exc
    return sock
