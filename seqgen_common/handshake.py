"""Why a connection's security handshake failed, from libzmq's socket monitor.

A server that refuses a client's CURVE handshake (a key not in ``--curve-clients``, a plain
client at a CURVE server, a CURVE client at a plain one, the wrong server public key) sends
no reply at all: without this, the client can only time out. libzmq reports each
handshake on the socket monitor (``EVENT_HANDSHAKE_SUCCEEDED`` and
``EVENT_HANDSHAKE_FAILED_NO_DETAIL`` / ``_PROTOCOL`` / ``_AUTH``); ``HandshakeWatch``
reads those events of one connecting socket when an attempt got no answer, so the
client raises AuthError within one attempt timeout and the proxy logs which backend
refused it and why.
"""

from __future__ import annotations

import contextlib
from typing import Any, Final

import zmq
from zmq.utils.monitor import recv_monitor_message

from seqgen_common.sockets import Spec, open_socket

__all__ = ["EVENTS", "HandshakeWatch", "describe_failure", "open_watched"]

EVENTS: Final = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                 | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_FAILED: Final = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                  | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MISMATCH: Final = ("the client's and the server's CURVE settings do not match: a plain client at "
                    "a CURVE server, a CURVE client at a plain server, or the wrong server "
                    "public key")


def describe_failure(event: int, value: int) -> str:
    """An operator's sentence for one handshake failure event and its value."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (f"the server refused this client's CURVE public key (ZAP status {value}): "
                "the key is not in the server's --curve-clients (an ephemeral key never is)")
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return f"the security handshake failed (ZMTP protocol error 0x{value:x}): {_MISMATCH}"
    return f"the server ended the security handshake: {_MISMATCH}"


class HandshakeWatch:
    """The handshakes of one connecting socket (its monitor is closed with ``close``)."""

    __slots__ = ("_monitor", "_sock", "refusal")

    def __init__(self, sock: zmq.Socket[Any]) -> None:
        self._sock = sock
        self._monitor: zmq.Socket[Any] = sock.get_monitor_socket(EVENTS)
        self.refusal: str | None = None
        """Why the last handshake failed; None when none did, or the last one succeeded."""

    def check(self) -> str | None:
        """Read the events so far (never blocks); why the handshake is refused, or None."""
        monitor = self._monitor
        try:
            while monitor.poll(0):
                message = recv_monitor_message(monitor, zmq.NOBLOCK)
                event, value = int(message["event"]), int(message["value"])
                if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self.refusal = None
                elif event & _FAILED:
                    self.refusal = describe_failure(event, value)
        except zmq.ZMQError:
            pass  # the socket is being closed: what was read stands
        return self.refusal

    def close(self) -> None:
        """Stop monitoring and close the monitor socket (before the watched socket closes)."""
        with contextlib.suppress(zmq.ZMQError):
            self._sock.disable_monitor()
        self._monitor.close(linger=0)


def open_watched(ctx: zmq.Context[Any], spec: Spec, endpoint: str,
                 **options: Any) -> tuple[Any, HandshakeWatch]:
    """``open_socket`` for a connecting socket, its handshakes watched from before the connect
    (the watch is closed too when the socket cannot be opened)."""
    watches: list[HandshakeWatch] = []
    try:
        sock = open_socket(ctx, spec, endpoint,
                           before_connect=lambda s: watches.append(HandshakeWatch(s)), **options)
    except BaseException:
        for watch in watches:
            watch.close()
        raise
    return sock, watches[0]
