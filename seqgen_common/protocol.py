"""The public wire protocol (docs/protocol.md): typed requests, replies and codecs.

A request is one frame of UTF-8 JSON, ``[name, last]`` or ``[name, last, count]``;
a reply is ``[null, "v1", ..., "vN"]`` or ``["CODE", "message"]``.

This module owns the compact success reply ``[null,"v1",...,"vN"]`` that servers
send: it is built (``encode_values``), read (``decode_reply``), cut for
coalesced clients (``split_values``) and its highest number found
(``highest_issued``) here only, each without a JSON decode in the common case
and with a proper decode of any other well-formed spelling.

``decode_request`` is total: any bytes give either a valid ``Request`` or one
``RequestError`` whose code says which part was wrong. The common case is a
single typed msgspec decode; only a request that fails it is taken apart again
to find the precise code.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec

from seqgen_common.errors import ErrorCode, RequestError, SeqgenError, error_for
from seqgen_common.limits import MAX_COUNT, MAX_NAME_BYTES, MAX_VALUE

__all__ = [
    "CONTROL_SOCKET_MISTAKE",
    "NAME_PATTERN",
    "OK_HEAD",
    "OK_SEP",
    "OK_START",
    "OK_TAIL",
    "Request",
    "decode_reply",
    "decode_request",
    "encode_error",
    "encode_request",
    "encode_values",
    "highest_issued",
    "is_control_reply",
    "name_problem",
    "split_values",
    "validate_count",
    "validate_name",
]

NAME_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]+$"
"""The name rule as a regular expression (for schemas): no C0 or C1 control character or
DEL (Unicode category Cc); with it, 1 to MAX_NAME_BYTES UTF-8 bytes (``name_problem``)."""
OK_START: Final = b"[null"
"""Every success reply starts thus, in any spelling; no error reply does."""
OK_HEAD: Final = b'[null,"'
"""The compact success reply ``[null,"v1",...,"vN"]``: its head, separator and tail."""
OK_SEP: Final = b'","'
OK_TAIL: Final = b'"]'
_NAME: Final = re.compile(NAME_PATTERN)
_DIGITS: Final = re.compile(r"[0-9]+")
_MAX_DIGITS: Final = len(str(MAX_VALUE))

# msgspec matches patterns with re.search, where "$" also matches before a final newline.
Last = Annotated[str, msgspec.Meta(min_length=1, pattern=r"^[0-9]+\Z")]
Count = Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a sequence name, for a person; None when it is valid.

    The one name rule of seqgen: the server, the proxy, the clients, the control
    protocol and the admin all ask here.
    """
    if name.isascii() and 0 < len(name) <= MAX_NAME_BYTES and name.isprintable():
        return None  # the common case in two C calls (ASCII printable: no C0 control, no DEL)
    if not name:
        return "name must be a non-empty string"
    if len(name) > MAX_NAME_BYTES or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"name is longer than {MAX_NAME_BYTES} UTF-8 bytes"
    if not _NAME.fullmatch(name):
        return "name contains control characters"
    try:
        name.encode()
    except UnicodeEncodeError:
        return "name is not valid Unicode"
    return None


class Request(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """``[name, last, count]``; ``count`` may be left out (it is then 1)."""

    name: str
    last: Last
    count: Count = 1

    def __post_init__(self) -> None:
        if name_problem(self.name) is not None:
            raise ValueError("bad name")
        # Up to 18 digits cannot pass MAX_VALUE: only longer ones need the full check.
        if len(self.last) > _MAX_DIGITS - 1 and _last_value(self.last) is None:
            raise ValueError("bad last")

    @property
    def last_value(self) -> int:
        """``last`` as an int (validated on decode)."""
        return int(self.last)


def _last_value(text: str) -> int | None:
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:
        return None
    value = int(digits)
    return value if value <= MAX_VALUE else None


_request_decoder: Final = msgspec.json.Decoder(Request)
_items_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
_any_decoder: Final = msgspec.json.Decoder()
_int_decoder: Final = msgspec.json.Decoder(int)
_encoder: Final = msgspec.json.Encoder()


def validate_name(name: object) -> str:
    """The name if it is valid, else RequestError(BAD_NAME)."""
    if not isinstance(name, str):
        raise RequestError("name must be a non-empty string", ErrorCode.BAD_NAME)
    problem = name_problem(name)
    if problem is not None:
        raise RequestError(problem, ErrorCode.BAD_NAME)
    return name


def validate_last(last: object) -> int:
    """``last`` (a digit string) as an int, else RequestError(BAD_LAST)."""
    if not isinstance(last, str) or not _DIGITS.fullmatch(last):
        raise RequestError("last must be a string of base-10 digits", ErrorCode.BAD_LAST)
    value = _last_value(last)
    if value is None:
        raise RequestError(f"last must be between 0 and {MAX_VALUE}", ErrorCode.BAD_LAST)
    return value


def validate_count(count: object) -> int:
    """The count if it is an integer in 1..MAX_COUNT, else RequestError(BAD_COUNT)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise RequestError(f"count must be an integer from 1 to {MAX_COUNT}", ErrorCode.BAD_COUNT)
    return count


def decode_request(frame: bytes) -> Request:
    """Decode one request frame; raises RequestError with the precise code."""
    try:
        return _request_decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError, RecursionError):
        pass
    _diagnose(frame)
    # _diagnose found nothing wrong although the typed decode failed.
    raise RequestError("request is not valid", ErrorCode.BAD_REQUEST)


def _diagnose(frame: bytes) -> None:
    """Raise the RequestError that says what is wrong with ``frame``."""
    try:
        frame.decode("utf-8")
        items = _items_decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RequestError(
            "request must be a UTF-8 JSON array [name, last] or [name, last, count]",
            ErrorCode.BAD_REQUEST,
        ) from exc
    if not 2 <= len(items) <= 3:
        raise RequestError(
            f"request must have 2 or 3 elements, got {len(items)}", ErrorCode.BAD_REQUEST
        )
    validate_name(_element(items[0], ErrorCode.BAD_NAME))
    validate_last(_element(items[1], ErrorCode.BAD_LAST))
    if len(items) == 3:
        try:
            count: object = _int_decoder.decode(items[2])
        except (msgspec.DecodeError, ValueError, RecursionError):
            count = None
        validate_count(count)


def _element(raw: msgspec.Raw, code: ErrorCode) -> object:
    try:
        value: object = _any_decoder.decode(raw)
    except (msgspec.DecodeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, str):
        raise RequestError("expected a JSON string", code)
    return value


def encode_request(name: str, last: int, count: int = 1) -> bytes:
    """A request frame (count is left out when it is 1, as the seed protocol does)."""
    if count == 1:
        return _encoder.encode((name, str(last)))
    return _encoder.encode((name, str(last), count))


def encode_values(first: int, step: int, count: int) -> bytes:
    """The compact success reply for ``count`` numbers ``first, first + step, ...``."""
    if count == 1:
        return b'[null,"%d"]' % first
    # msgspec writes a list of str faster than bytes joins do (measured: 60 vs 69 us per 1000)
    return _encoder.encode([None, *(str(v) for v in range(first, first + step * count, step))])


def encode_error(code: ErrorCode | str, message: str) -> bytes:
    """An error reply ``["CODE", "message"]``."""
    return _encoder.encode((str(code), message))


_reply_decoder: Final = msgspec.json.Decoder(list[str | None])


def _is_digits(value: str | None) -> bool:
    return value is not None and value.isascii() and value.isdigit()


CONTROL_SOCKET_MISTAKE: Final = (
    "this endpoint is a seqgen-server's control socket (the one its seqgen-admin uses, "
    "--control, port 6412 by default), not a public socket: point the client at the "
    "server's --bind address (port 6410 by default) or at a proxy")
"""What a client says when the reply is the control protocol's (a JSON object with a type)."""


def is_control_reply(frame: bytes) -> bool:
    """True for a frame of the control protocol (``{"type": ...}``), which never answers a client."""
    if not frame.startswith(b"{"):
        return False
    try:
        decoded = msgspec.json.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("type"), str)


def decode_reply(frame: bytes, count: int | None = None) -> list[int]:
    """Values of a success reply; raises the matching SeqgenError for an error reply.

    With ``count``, a success reply must carry exactly that many values. A reply
    that is not well formed raises SeqgenError(INTERNAL).
    """
    if frame.startswith(OK_HEAD) and frame.endswith(OK_TAIL):
        # The compact form servers send, read without a JSON decode (measured: 1.1 us less
        # per reply, 0.4 us more for one number); bytes.isdigit() takes ASCII digits only.
        digits = frame[7:-2]
        if count == 1 and digits.isdigit():
            return [int(digits)]
        parts = digits.split(OK_SEP)
        if (count is None or len(parts) == count) and all(part.isdigit() for part in parts):
            return [int(part) for part in parts]
    try:
        items = _reply_decoder.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as exc:
        if is_control_reply(frame):
            raise SeqgenError(CONTROL_SOCKET_MISTAKE, ErrorCode.INTERNAL) from exc
        raise SeqgenError("malformed reply from server", ErrorCode.INTERNAL) from exc
    if not items:
        raise SeqgenError("empty reply from server", ErrorCode.INTERNAL)
    head = items[0]
    if head is not None:
        message = items[1] if len(items) > 1 and items[1] is not None else ""
        raise error_for(head, message)
    values = items[1:]
    if not values or not all(map(_is_digits, values)):
        raise SeqgenError("malformed values in reply", ErrorCode.INTERNAL)
    if count is not None and len(values) != count:
        raise SeqgenError(
            f"the server sent {len(values)} number(s) for a request of {count}", ErrorCode.INTERNAL
        )
    return [int(v) for v in values if v is not None]


def highest_issued(reply: bytes) -> int | None:
    """The highest number in a success reply; None for an error or malformed reply.

    A compact reply is ascending (servers issue in order), so its highest number is
    its last, read without a decode.
    """
    if reply.startswith(OK_HEAD) and reply.endswith(OK_TAIL):
        digits = reply[reply.rfind(b'"', 0, -2) + 1 : -2]
        if digits.isdigit():
            return int(digits)
    if not reply.startswith(b"["):
        return None
    # Not in the compact form our servers send: decode it properly.
    try:
        values = decode_reply(reply)
    except SeqgenError:
        return None
    return max(values)


def split_values(reply: bytes, counts: list[int]) -> tuple[list[bytes], int] | None:
    """A success ``reply`` cut in order into one compact success reply per count, with the
    reply's last number (its highest); None for an error or malformed reply, or when it
    does not carry ``sum(counts)`` numbers."""
    if reply.startswith(OK_HEAD) and reply.endswith(OK_TAIL):
        values = reply[len(OK_HEAD):-len(OK_TAIL)].split(OK_SEP)
    else:  # not in the compact form our servers send: decode it properly
        try:
            values = [b"%d" % v for v in decode_reply(reply)]
        except SeqgenError:
            return None
    if len(values) != sum(counts) or not all(v.isdigit() for v in values):
        return None
    parts = []
    start = 0
    for count in counts:
        parts.append(OK_HEAD + OK_SEP.join(values[start:start + count]) + OK_TAIL)
        start += count
    return parts, int(values[-1])
