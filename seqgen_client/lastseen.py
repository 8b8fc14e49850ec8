"""The client's memory of the highest number received per name, and the request it makes.

Sending that number as ``last`` lets a server that fell behind catch up past
what another server issued (docs/protocol.md, "Allocation"). Names are validated the first
time they are seen, before anything is sent, with the same codes a server
would use; a name already in the table is known to be valid.
"""

from __future__ import annotations

from seqgen_common.protocol import encode_request, validate_count, validate_name

__all__ = ["LastSeen"]


class LastSeen:
    """name -> highest number received. Not locked: the sync client holds its lock."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def check(self, name: str) -> None:
        """RequestError (BAD_NAME) unless ``name`` is one a server would take."""
        try:
            if name in self._last:
                return
        except TypeError:  # unhashable: certainly not a name
            pass
        validate_name(name)

    def request(self, name: str, count: int = 1) -> bytes:
        """The request frame for ``count`` numbers of ``name``; RequestError if invalid."""
        try:
            last = self._last.get(name)
        except TypeError:  # unhashable: certainly not a name
            last = None
        if last is None:
            validate_name(name)
            last = 0
        if count.__class__ is not int or count != 1:  # next() always asks for a valid count
            validate_count(count)
        return encode_request(name, last, count)

    def record(self, name: str, highest: int) -> None:
        """Remember ``highest`` if it is above what was seen for ``name``."""
        if highest > self._last.get(name, 0):
            self._last[name] = highest

    def get(self, name: str) -> int:
        """The highest number received for ``name`` (0 when none)."""
        return self._last.get(name, 0)
