"""The client's memory of the highest number received per name, and the request it makes.

Sending that number as ``last`` lets a server that fell behind catch up past
what another server issued (DESIGN section 3). Names are validated the first
time they are seen, before anything is sent, with the same codes a server
would use; a name already in the table is known to be valid.
"""

from __future__ import annotations

from typing import Final

import msgspec

from seqgen_common.errors import ErrorCode, SeqgenError
from seqgen_common.protocol import decode_reply, encode_request, validate_count, validate_name

__all__ = ["LastSeen", "values_of"]


class LastSeen:
    """name -> highest number received. Not locked: the sync client holds its lock."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def request(self, name: str, count: int = 1) -> bytes:
        """The request frame for ``count`` numbers of ``name``; RequestError if invalid."""
        try:
            last = self._last.get(name)
        except TypeError:  # unhashable: certainly not a name
            last = None
        if last is None:
            validate_name(name)
            last = 0
        validate_count(count)
        return encode_request(name, last, count)

    def record(self, name: str, highest: int) -> None:
        """Remember ``highest`` if it is above what was seen for ``name``."""
        if highest > self._last.get(name, 0):
            self._last[name] = highest

    def get(self, name: str) -> int:
        """The highest number received for ``name`` (0 when none)."""
        return self._last.get(name, 0)


def _is_digits(value: str | None) -> bool:
    return value is not None and value.isascii() and value.isdigit()


_reply_decoder: Final = msgspec.json.Decoder(list[str | None])


def values_of(reply: bytes, count: int) -> list[int]:
    """The numbers in a reply to a request for ``count``; the server's error otherwise."""
    try:
        items = _reply_decoder.decode(reply)
    except (msgspec.DecodeError, UnicodeDecodeError):
        items = []
    if len(items) == count + 1 and items[0] is None:
        values = items[1:]
        if all(map(_is_digits, values)):
            return [int(value) for value in values if value is not None]
    # Not the success reply expected: the shared decoder tells what it is.
    decoded = decode_reply(reply)
    raise SeqgenError(
        f"the server sent {len(decoded)} number(s) for a request of {count}", ErrorCode.INTERNAL
    )
