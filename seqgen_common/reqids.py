"""Request ids over a DEALER socket, and the shape of the reply that carries one back.

A DEALER sends ``[request_id, b"", body]``; the ROUTER it talks to (a server, a
proxy or a control socket) echoes every frame up to and including the empty
delimiter, so the reply comes back as ``[request_id, b"", reply]`` and can be
matched to its request whatever the order of replies. Ids are 8 bytes,
big-endian, unique for the life of the process that makes them.
"""

from __future__ import annotations

__all__ = ["RequestIds", "split_reply"]


class RequestIds:
    """Unique non-empty request ids (8 bytes) for the life of the process."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> bytes:
        self._next += 1
        return self._next.to_bytes(8, "big")


def split_reply(frames: list[bytes]) -> tuple[bytes, bytes] | None:
    """``(request_id, body)`` of a reply ``[request_id, b"", body]``; None for any other shape."""
    if len(frames) == 3 and not frames[1]:
        return frames[0], frames[2]
    return None
