"""What a forked child does with the zmq objects it inherited: nothing, ever.

A child process must not use, close or destroy its parent's zmq sockets and
contexts (their I/O threads live only in the parent). The clients hand them
here when they notice a fork; keeping a reference stops the garbage collector
from finalising them in the child.
"""

from __future__ import annotations

from typing import Final

__all__ = ["keep_from_parent"]

_from_parent: Final[list[object]] = []


def keep_from_parent(*objects: object) -> None:
    """Keep ``objects`` (the parent's zmq state) untouched for the life of this process."""
    _from_parent.append(objects)
