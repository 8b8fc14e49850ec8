"""Frame rules of the relay: client envelopes and judging backend error replies."""

from __future__ import annotations

import pytest

from seqgen_common.errors import ErrorCode
from seqgen_common.frames import take_body
from seqgen_common.protocol import encode_error
from seqgen_proxy.wire import MALFORMED_REPLY, judge_error


def test_req_client_envelope() -> None:
    frames = [b"id", b"", b"body"]
    assert take_body(frames) == b"body"
    assert frames == [b"id", b""]


def test_dealer_without_delimiter() -> None:
    frames = [b"id", b"body"]
    assert take_body(frames) == b"body"
    assert frames == [b"id"]


def test_proxy_client_envelope_keeps_its_request_id() -> None:
    frames = [b"proxy-id", b"\x00\x00\x00\x00\x00\x00\x00\x07", b"", b"body"]
    assert take_body(frames) == b"body"
    assert frames == [b"proxy-id", b"\x00\x00\x00\x00\x00\x00\x00\x07", b""]


@pytest.mark.parametrize("frames", [[b"id", b"", b"a", b"b"], [b"id", b""], [b"id"]])
def test_not_exactly_one_body_frame(frames: list[bytes]) -> None:
    assert take_body(frames) is None
    assert frames[0] == b"id"


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        (ErrorCode.INTERNAL, True),
        (ErrorCode.UNAVAILABLE, True),
        (ErrorCode.EXHAUSTED, False),
        (ErrorCode.BAD_NAME, False),
        ("SOME_FUTURE_CODE", False),
    ],
)
def test_judge_error(code: str, retry: bool) -> None:
    reply = encode_error(code, "message")
    assert judge_error(reply) == (reply, retry)


def test_malformed_reply_becomes_internal_and_is_retried() -> None:
    assert judge_error(b"\xff not json") == (MALFORMED_REPLY, True)
    assert judge_error(b'{"a": 1}') == (MALFORMED_REPLY, True)
