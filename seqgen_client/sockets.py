"""How both clients set up a socket to one endpoint (the one place for socket options).

Options that concern every connection (the CURVE keys, for instance) belong
here, so the blocking and the asyncio client cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import zmq

from seqgen_client.options import ClientOptions
from seqgen_common.curve import use_as_client
from seqgen_common.limits import MAX_FRAME_BYTES

__all__ = ["connect"]


def connect(sock: zmq.Socket[Any], endpoint: str, options: ClientOptions) -> None:
    """Configure a fresh socket and connect it to ``endpoint``; closes it on failure."""
    try:
        sock.setsockopt(zmq.LINGER, 0)  # a closed socket drops what it still holds
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)  # a reply is far below 64 KiB
        sock.setsockopt(zmq.IPV6, 1)
        if options.curve is not None:
            use_as_client(sock, options.curve)
        sock.connect(endpoint)
    except zmq.ZMQError:
        sock.close(linger=0)
        raise
