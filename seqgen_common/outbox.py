"""Replies a ROUTER could not hand over yet, held per peer until the peer's queue has room.

A public ROUTER has ``ROUTER_MANDATORY`` set (seqgen_common.sockets): a reply
to a peer whose send queue is full raises ``zmq.Again`` instead of being
dropped, and a reply to a peer that has left raises ``EHOSTUNREACH``. The
daemon then holds the reply here and tries again shortly (``flush``); while
the outbox holds ``limit`` replies, it stops reading requests, so the outbox
is bounded and nothing is ever dropped silently. A peer that stays connected
but reads nothing is dropped by ZeroMQ's heartbeat, and its held replies with
it (counted, never issued).

Each held reply carries a ``tag`` (the server: how many numbers it carries)
that ``flush`` hands back once the reply is delivered, so numbers count as
issued only when their reply was handed to the socket.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, NamedTuple

import zmq

from seqgen_common.frames import send_reply

__all__ = ["Flushed", "Outbox"]

DEFAULT_LIMIT: Final = 10_000


class _Held(NamedTuple):
    envelope: list[bytes]
    body: bytes
    tag: int


class Flushed(NamedTuple):
    delivered: list[int]
    """The tags of the replies handed to the socket now."""
    dropped: int
    """Replies dropped because their peer had left."""


class Outbox:
    """Held replies of one ROUTER socket, per peer (the first envelope frame), oldest first."""

    __slots__ = ("_held", "_sock", "limit", "size")

    def __init__(self, sock: zmq.Socket[Any], limit: int = DEFAULT_LIMIT) -> None:
        self._sock = sock
        self._held: dict[bytes, deque[_Held]] = {}
        self.limit = limit
        self.size = 0
        """Replies held now."""

    def __bool__(self) -> bool:
        return self.size > 0

    @property
    def full(self) -> bool:
        """True while no more requests should be read: their replies might not fit."""
        return self.size >= self.limit

    def send(self, envelope: list[bytes], body: bytes, tag: int = 0) -> bool | None:
        """Hand a reply to the socket, or hold it when the peer's queue is full.

        True: handed over now. False: held (its tag comes back from ``flush``).
        None: the peer has left; the reply is gone.
        """
        if self.size and envelope[0] in self._held:  # keep the peer's replies in order
            self._hold(envelope, body, tag)
            return False
        try:
            send_reply(self._sock, envelope, body)
        except zmq.Again:
            self._hold(envelope, body, tag)
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return None
            raise
        return True

    def _hold(self, envelope: list[bytes], body: bytes, tag: int) -> None:
        queue = self._held.get(envelope[0])
        if queue is None:
            queue = self._held[envelope[0]] = deque()
        queue.append(_Held(envelope, body, tag))
        self.size += 1

    def flush(self) -> Flushed:
        """Try the held replies again, each peer's in order."""
        delivered: list[int] = []
        dropped = 0
        for peer in list(self._held):
            queue = self._held[peer]
            while queue:
                held = queue[0]
                try:
                    send_reply(self._sock, held.envelope, held.body)
                except zmq.Again:
                    break
                except zmq.ZMQError as exc:
                    if exc.errno != zmq.EHOSTUNREACH:
                        raise
                    dropped += len(queue)
                    self.size -= len(queue)
                    queue.clear()
                    break
                queue.popleft()
                self.size -= 1
                delivered.append(held.tag)
            if not queue:
                del self._held[peer]
        return Flushed(delivered, dropped)
