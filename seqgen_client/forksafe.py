"""Fork safety: which process a client's zmq state belongs to, and keeping the parent's.

A child process must not use, close or destroy its parent's zmq sockets and
contexts (their I/O threads live only in the parent). ``generation`` counts the
forks of this process's line: it grows in every child (``os.register_at_fork``),
so a client that remembers the generation it opened its sockets in notices a
fork with one comparison per call (cheaper than asking for the pid). The
parent's objects are handed to ``keep_from_parent``: keeping a reference stops
the garbage collector from finalising them in the child.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["current", "keep_from_parent"]

_from_parent: Final[list[object]] = []
_generation = [0]


def _forked() -> None:
    _generation[0] += 1


os.register_at_fork(after_in_child=_forked)


def current() -> int:
    """The fork generation of this process (0 in a process that was not forked)."""
    return _generation[0]


def keep_from_parent(*objects: object) -> None:
    """Keep ``objects`` (the parent's zmq state) untouched for the life of this process."""
    _from_parent.append(objects)
