"""A raw ZMTP 3.0 peer over a plain TCP socket, as another ZeroMQ stack would speak it.

Only what the hostile-input tests need: the NULL-mechanism handshake as a DEALER,
and frames written by hand, so a test can send what libzmq's own sockets never
would (a multi-part message that never ends).
"""

from __future__ import annotations

import socket
import struct

__all__ = ["connect", "frame"]

_SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"


def _greeting() -> bytes:
    return _SIGNATURE + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def _ready(socket_type: bytes) -> bytes:
    name = b"Socket-Type"
    body = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(socket_type)) + socket_type
    return bytes([0x04, len(body)]) + body


def frame(data: bytes, *, more: bool) -> bytes:
    """One message frame (long form)."""
    return bytes([0x02 | (0x01 if more else 0)]) + struct.pack(">Q", len(data)) + data


def connect(host: str, port: int, timeout_s: float = 5.0) -> socket.socket:
    """A TCP connection that has done the ZMTP 3.0 NULL handshake as a DEALER."""
    sock = socket.create_connection((host, port), timeout=timeout_s)
    sock.sendall(_greeting())
    peer = b""
    while len(peer) < 64:
        chunk = sock.recv(64 - len(peer))
        if not chunk:
            raise ConnectionError("the peer closed the connection during the greeting")
        peer += chunk
    sock.sendall(_ready(b"DEALER"))
    return sock
