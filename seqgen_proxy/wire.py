"""How the relay judges a backend's error reply. No zmq.

(Client envelopes are split by seqgen_common.frames.take_body, the server's rule,
so a proxy can itself be the host of another proxy; a success reply is read by
seqgen_common.protocol.highest_issued and split_values.)
"""

from __future__ import annotations

from typing import Final

import msgspec

from seqgen_common.errors import RETRY_ELSEWHERE, ErrorCode
from seqgen_common.protocol import encode_error

__all__ = ["MALFORMED_REPLY", "judge_error"]

MALFORMED_REPLY: Final = encode_error(ErrorCode.INTERNAL, "a backend sent a malformed reply")

_error_decoder: Final = msgspec.json.Decoder(tuple[str, str])


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
