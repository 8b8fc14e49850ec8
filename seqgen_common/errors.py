"""Error codes of the public and control protocols, and the one exception tree of seqgen.

Every error a seqgen call can meet on the wire, in the store or at start is
one of these; zmq, msgspec and sqlite3 errors are translated at the boundary
with ``raise ... from exc``::

    SeqgenError                 base: .code (an ErrorCode or ControlCode) and .message
    ├── RequestError            the request is invalid (BAD_REQUEST, BAD_NAME,
    │                           BAD_LAST, BAD_COUNT); nothing was issued
    ├── ExhaustedError          EXHAUSTED: the numbers would pass 2**63 - 1
    ├── Unavailable             UNAVAILABLE: no server answered in time, or every
    │   │                       one that answered was overloaded or fenced
    │   └── PeerError           (seqgen_admin.peers) another server's admin did not
    │                           give what was asked
    ├── InternalError           INTERNAL: anything else; nothing was issued
    │   └── StoreError          the store cannot persist (disk full, I/O error)
    ├── NotFound                control NOT_FOUND: the server has no such sequence
    ├── Conflict                control CONFLICT: a floor below what was issued;
    │                           nothing changed
    └── StartupError            a daemon refuses to start (bad flags, locked or
                                foreign data directory, corrupt store);
                                never sent on the wire

Outside the tree, and only for mistakes in the calling code (never for
anything a server or the network does): ``TypeError`` and ``ValueError``
for bad constructor arguments (an endpoint that is not a ZeroMQ URI, a
negative timeout, an unreadable CURVE key file) and ``ValueError`` for a call
on a closed client, as Python's own file objects do.

``error_for(code, message)`` turns an error reply (public or control) back
into the matching exception, so a client raises the class the server used.
``RETRY_ELSEWHERE`` is the one set of codes after which another endpoint may
still succeed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "AUTH",
    "RETRY_ELSEWHERE",
    "AuthError",
    "ConfigError",
    "Conflict",
    "ControlCode",
    "ErrorCode",
    "ExhaustedError",
    "InternalError",
    "NotFound",
    "RequestError",
    "SeqgenError",
    "StartupError",
    "StoreError",
    "Unavailable",
    "error_for",
]


class ErrorCode(StrEnum):
    """The CODE of a public error reply ``["CODE", "message"]``."""

    BAD_REQUEST = "BAD_REQUEST"
    BAD_NAME = "BAD_NAME"
    BAD_LAST = "BAD_LAST"
    BAD_COUNT = "BAD_COUNT"
    EXHAUSTED = "EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


AUTH: Final = "AUTH"
"""The code of AuthError: raised by the clients, never sent by a server (a server that refuses
a CURVE handshake sends nothing)."""


class ControlCode(StrEnum):
    """The code of a control ``ControlError`` reply."""

    BAD_REQUEST = "BAD_REQUEST"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INTERNAL = "INTERNAL"


REQUEST_CODES: Final = frozenset(
    {ErrorCode.BAD_REQUEST, ErrorCode.BAD_NAME, ErrorCode.BAD_LAST, ErrorCode.BAD_COUNT}
)
RETRY_ELSEWHERE: Final = frozenset({ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE})
"""Codes that say "this endpoint cannot serve now; nothing was issued": another may."""


class SeqgenError(Exception):
    """Base of every seqgen error; ``code`` is what goes on the wire."""

    default_code: str = ErrorCode.INTERNAL

    def __init__(self, message: str, code: str | None = None) -> None:
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
    """No server answered within the deadline (or all that answered could not serve)."""

    default_code = ErrorCode.UNAVAILABLE


class AuthError(SeqgenError):
    """Every endpoint asked refused the client's CURVE handshake (code ``AUTH``): wrong keys,
    a plain client at a CURVE server or the reverse. Nothing was issued; retrying will not
    help until the keys change."""

    default_code = AUTH


class InternalError(SeqgenError):
    """The server failed for a reason of its own; nothing was issued."""

    default_code = ErrorCode.INTERNAL


class StoreError(InternalError):
    """The durable store could not persist or read state."""


class NotFound(SeqgenError):
    """The server has no sequence of that name (control protocol)."""

    default_code = ControlCode.NOT_FOUND


class Conflict(SeqgenError):
    """A floor below what was already issued (control protocol); nothing changed."""

    default_code = ControlCode.CONFLICT

    def __init__(self, message: str, code: str | None = None, *, current: int = 0) -> None:
        super().__init__(message, code)
        self.current = current
        """The highest number already issued for the name (0 when unknown)."""


class StartupError(SeqgenError):
    """A daemon refuses to start; the message says why and what to do (exit status 1)."""


class ConfigError(StartupError):
    """A daemon refuses to start because of what it was given (exit status 2, as a bad flag)."""


_BY_CODE: Final[dict[str, type[SeqgenError]]] = {
    **dict.fromkeys(REQUEST_CODES, RequestError),
    ErrorCode.EXHAUSTED: ExhaustedError,
    ErrorCode.UNAVAILABLE: Unavailable,
    ErrorCode.INTERNAL: InternalError,
    AUTH: AuthError,
    ControlCode.NOT_FOUND: NotFound,
    ControlCode.CONFLICT: Conflict,
}


def error_for(code: str, message: str) -> SeqgenError:
    """The exception that matches an error reply's code (unknown codes stay SeqgenError)."""
    return _BY_CODE.get(code, SeqgenError)(message, code)
