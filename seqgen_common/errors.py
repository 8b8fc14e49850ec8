"""Error codes of the public protocol and the one exception tree of seqgen.

Every process raises and catches exceptions from this tree only; zmq, msgspec
and sqlite3 errors are translated at the boundary with ``raise ... from exc``::

    SeqgenError                 base: .code (an ErrorCode) and .message
    ├── RequestError            the request is invalid (BAD_REQUEST, BAD_NAME,
    │                           BAD_LAST, BAD_COUNT); nothing was issued
    ├── ExhaustedError          EXHAUSTED: the numbers would pass 2**63 - 1
    ├── Unavailable             UNAVAILABLE: no server answered in time
    ├── InternalError           INTERNAL: anything else; nothing was issued
    │   └── StoreError          the store cannot persist (disk full, I/O error)
    └── StartupError            a daemon refuses to start (bad flags, locked or
                                foreign data directory, corrupt store);
                                never sent on the wire

``error_for(code, message)`` turns a wire error reply back into the matching
exception, so clients raise the same classes the server used.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The CODE of an error reply ``["CODE", "message"]``."""

    BAD_REQUEST = "BAD_REQUEST"
    BAD_NAME = "BAD_NAME"
    BAD_LAST = "BAD_LAST"
    BAD_COUNT = "BAD_COUNT"
    EXHAUSTED = "EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


REQUEST_CODES = frozenset(
    {ErrorCode.BAD_REQUEST, ErrorCode.BAD_NAME, ErrorCode.BAD_LAST, ErrorCode.BAD_COUNT}
)


class SeqgenError(Exception):
    """Base of every seqgen error; ``code`` is what goes on the wire."""

    default_code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code: str = str(code) if code is not None else str(self.default_code)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class RequestError(SeqgenError):
    """The request was invalid; ``code`` tells which part."""

    default_code = ErrorCode.BAD_REQUEST


class ExhaustedError(SeqgenError):
    """The numbers asked for would pass the 64-bit maximum; nothing was issued."""

    default_code = ErrorCode.EXHAUSTED


class Unavailable(SeqgenError):
    """No server answered within the deadline."""

    default_code = ErrorCode.UNAVAILABLE


class InternalError(SeqgenError):
    """The server failed for a reason of its own; nothing was issued."""

    default_code = ErrorCode.INTERNAL


class StoreError(InternalError):
    """The durable store could not persist or read state."""


class StartupError(SeqgenError):
    """A daemon refuses to start; the message says why and what to do."""


def error_for(code: str, message: str) -> SeqgenError:
    """The exception that matches an error reply's code (unknown codes stay SeqgenError)."""
    if code in REQUEST_CODES:
        return RequestError(message, code)
    if code == ErrorCode.EXHAUSTED:
        return ExhaustedError(message)
    if code == ErrorCode.UNAVAILABLE:
        return Unavailable(message)
    if code == ErrorCode.INTERNAL:
        return InternalError(message)
    return SeqgenError(message, code)
