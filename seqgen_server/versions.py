"""Which seqgen versions may open a store: the rule behind the store's meta data.

A store records the oldest seqgen version that reads it correctly (meta
``oldest_version``), and a server refuses a store whose oldest version is newer than
its own: a newer server wrote something there that it would misread. Releases that
predate the key (0.1.0 and 0.2.0) only open a store whose ``format`` is ``"1"``, so a
store that only newer versions may open also says format ``"2"``, which they refuse.

What a store holds decides its oldest version. Today that is the fence: 0.1.0 does
not know it and would serve from a fenced store (a restored backup, a replaced disk),
so a fenced store may be opened by 0.2.0 and later only. docs/upgrading.md says what
this means for an upgrade and a downgrade.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "FIRST_VERSION",
    "FORMATS",
    "OLDEST_VERSION_KEY",
    "newer",
    "oldest_version",
    "store_meta",
]

OLDEST_VERSION_KEY: Final = "oldest_version"
FIRST_VERSION: Final = "0.1.0"
"""The first release: a store without ``oldest_version`` was last written by 0.1.0 or 0.2.0."""
FENCE_VERSION: Final = "0.2.0"
"""The first version that keeps and honours the fence."""
OPEN_FORMAT: Final = "1"
"""The format of a store that every version may open (the only one 0.1.0 and 0.2.0 open)."""
GUARDED_FORMAT: Final = "2"
"""The format of a store that only versions checking ``oldest_version`` may open."""
FORMATS: Final = frozenset({OPEN_FORMAT, GUARDED_FORMAT})

_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def release(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a version string such as ``0.2.0`` or ``0.3.0.dev1``; None
    for one that says nothing (``0.0.0+unknown``, from a source tree that is not installed)."""
    found = _RELEASE.match(version)
    if found is None or version.endswith("+unknown"):
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def newer(oldest: str, own: str) -> bool:
    """Whether a store that needs ``oldest`` is too new for a server of version ``own``.

    Raises ValueError when ``oldest`` is not a version (a damaged store). An ``own``
    version that is unknown cannot be compared: the store is opened (and the server
    logs its version as unknown at start).
    """
    needed = release(oldest)
    if needed is None:
        raise ValueError(f"not a version: {oldest!r}")
    running = release(own)
    return running is not None and needed > running


def oldest_version(*, fenced: bool) -> str:
    """The oldest seqgen version that reads a store in this state correctly."""
    return FENCE_VERSION if fenced else FIRST_VERSION


def store_meta(*, fenced: bool) -> list[tuple[str, str]]:
    """The meta rows (``oldest_version`` and ``format``) for a store in this state."""
    oldest = oldest_version(fenced=fenced)
    store_format = OPEN_FORMAT if oldest == FIRST_VERSION else GUARDED_FORMAT
    return [(OLDEST_VERSION_KEY, oldest), ("format", store_format)]
