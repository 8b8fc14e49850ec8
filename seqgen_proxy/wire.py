"""How the relay judges a backend's reply. No zmq.

(Client envelopes are split by seqgen_common.frames.take_body, the server's rule,
so a proxy can itself be the host of another proxy.)

A backend's reply is judged without decoding it in the common case: a success
reply ``[null,"v1",...,"vN"]`` is ascending, so its highest value is the last.
"""

from __future__ import annotations

from typing import Final

import msgspec

from seqgen_common.errors import RETRY_ELSEWHERE, ErrorCode, SeqgenError
from seqgen_common.protocol import decode_reply, encode_error

__all__ = ["MALFORMED_REPLY", "highest_issued", "judge_error"]

MALFORMED_REPLY: Final = encode_error(ErrorCode.INTERNAL, "a backend sent a malformed reply")

_OK_HEAD: Final = b'[null,"'
_OK_TAIL: Final = b'"]'
_error_decoder: Final = msgspec.json.Decoder(tuple[str, str])


def highest_issued(reply: bytes) -> int | None:
    """The highest number in a success reply; None for an error or malformed reply."""
    if reply.startswith(_OK_HEAD) and reply.endswith(_OK_TAIL):
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


def judge_error(reply: bytes) -> tuple[bytes, bool]:
    """For a reply that is not a success: (the reply for the client, retry elsewhere?).

    INTERNAL and UNAVAILABLE are worth another backend; the request errors and
    EXHAUSTED would be the same everywhere. A malformed reply is replaced by an
    INTERNAL error and retried elsewhere.
    """
    try:
        code, _ = _error_decoder.decode(reply)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
        return MALFORMED_REPLY, True
    return reply, code in RETRY_ELSEWHERE
